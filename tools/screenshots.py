"""Renders the docs site's main pages to PNG with headless Chromium, for a person to look at.

The HTML checks (tests/docs/test_site.py) catch what can be named; a look catches the rest (a layout that
breaks, a code block cut at the right edge, a table that reads badly). Chromium comes from the distribution's
packages (Debian: `apt-get install chromium`); nothing is downloaded at run time.

    python -m mkdocs build --strict --site-dir /tmp/site
    python tools/screenshots.py --site /tmp/site --output /tmp/screenshots
    python tools/screenshots.py --site /tmp/site --pages api/ops/ --height 6000

Without `--site` it builds the site first (into a temporary directory). Each page gives `<output>/<page>.png`
(`index.png`, `api.png`, `api_ops.png`, ...), `--width` by `--height` pixels: Chromium's command line shoots the
window, not the whole page, so raise `--height` to see a long page to its end.
"""

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

# The home page, each guide and the API reference's pages: every page of the nav.
PAGES = (
    "",
    "layers/",
    "temperature/",
    "reinforce/",
    "estimators/",
    "scaling/",
    "examples/",
    "benchmarks/",
    "design/",
    "api/",
    "api/ops/",
    "api/schedules/",
    "api/estimators/",
    "api/diagnostics/",
    "api/distributions/",
    "api/reinforce/",
)
ROOT = pathlib.Path(__file__).resolve().parents[1]


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("No Chromium found: install the distribution's package (Debian: apt-get install chromium).")


def build_site(directory):
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(directory)]
    subprocess.run(command, cwd=ROOT, env=env, check=True)


def screenshot(browser, page_file, png, width, height, profile):
    command = [
        browser,
        "--headless",
        "--no-sandbox",  # as root in a container; the pages are our own files
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        f"--screenshot={png}",
        page_file.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or not png.is_file():
        sys.exit(f"Chromium failed on {page_file}:\n{result.stderr}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--site", type=pathlib.Path, help="a built site (default: build one)")
    parser.add_argument("--output", type=pathlib.Path, default=pathlib.Path("screenshots"))
    parser.add_argument("--pages", nargs="+", default=PAGES, help="site-relative page directories")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2000)
    args = parser.parse_args()

    browser = chromium()
    args.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        site = args.site
        if site is None:
            site = pathlib.Path(scratch) / "site"
            build_site(site)
        profile = pathlib.Path(scratch) / "profile"
        for page in args.pages:
            page_file = (site / page / "index.html").resolve()
            if not page_file.is_file():
                sys.exit(f"No page {page_file}: build the site first, or check --pages.")
            png = args.output / (page.strip("/").replace("/", "_") + ".png" if page.strip("/") else "index.png")
            screenshot(browser, page_file, png.resolve(), args.width, args.height, profile)
            print(png)


if __name__ == "__main__":
    main()
