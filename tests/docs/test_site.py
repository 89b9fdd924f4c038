"""The docs site as a reader sees it: checks on the built HTML, not only on the build.

`mkdocs build --strict` passes on a site whose examples render as blockquotes of prose, whose API reference
misses public names and whose tables have empty columns. These tests parse the built pages (with the standard
library's html.parser) and fail on exactly that:

- a doctest that renders as a blockquote (Markdown reads `>>>` as three nested quotes), or a documented object
  whose docstring holds a doctest that no code block of its entry shows;
- a public name (in `keras_gumbel.__all__`, and in the `__all__` of every public module and subpackage found
  there, recursively) with no anchor on the API pages;
- a relative link or image whose file or `#anchor` does not exist;
- a table column that is empty on every row (the "Type" column of untyped docstrings);
- a line of code wider than the content column.

The site is the one in `$KERAS_GUMBEL_SITE` (CI builds it once, then runs these tests), or else one built here
with `mkdocs build --strict` (skipped where the `[docs]` extra is not installed).
"""

import collections
import importlib.util
import inspect
import os
import pathlib
import posixpath
import subprocess
import sys
import types
import urllib.parse
from html.parser import HTMLParser

import pytest

import keras_gumbel

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Characters of code that fit on one line of a code block. Material's content column is about 690 px wide at
# every window width that shows both sidebars (the widest it gets), and a code line there holds 80 characters
# of its 13.6 px monospace font; 79 leaves room for the API pages' indented blocks.
CODE_WIDTH = 79

# Columns a table can have and fit it: Material gives each cell at least 5rem (100 px at its 20 px root size),
# and a table of 7 already runs past the right edge, where its last column is cut off.
TABLE_COLUMNS = 6

# HTML elements that have no end tag.
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Element:
    def __init__(self, tag, attrs, parent):
        self.tag = tag
        self.attrs = dict(attrs)
        self.parent = parent
        self.children = []  # Elements and strings

    def text(self):
        return "".join(child if isinstance(child, str) else child.text() for child in self.children)

    def iter(self, tag=None):
        for child in self.children:
            if isinstance(child, Element):
                if tag is None or child.tag == tag:
                    yield child
                yield from child.iter(tag)

    def ancestors(self):
        node = self.parent
        while node is not None:
            yield node
            node = node.parent


class _TreeBuilder(HTMLParser):
    """A forgiving DOM: void elements close themselves, an end tag closes up to its open start tag."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.open = [self.root]

    def handle_starttag(self, tag, attrs):
        element = Element(tag, attrs, self.open[-1])
        self.open[-1].children.append(element)
        if tag not in _VOID:
            self.open.append(element)

    def handle_startendtag(self, tag, attrs):
        self.open[-1].children.append(Element(tag, attrs, self.open[-1]))

    def handle_endtag(self, tag):
        for depth in range(len(self.open) - 1, 0, -1):
            if self.open[depth].tag == tag:
                del self.open[depth:]
                return

    def handle_data(self, data):
        self.open[-1].children.append(data)


class Page:
    def __init__(self, site, path):
        self.path = path  # relative to the site, posix
        builder = _TreeBuilder()
        builder.feed((site / path).read_text(encoding="utf-8"))
        self.root = builder.root
        self.ids = {e.attrs["id"]: e for e in self.root.iter() if e.attrs.get("id")}
        self.ids.update({e.attrs["name"]: e for e in self.root.iter("a") if e.attrs.get("name")})

    def content(self):
        """The article, without Material's navigation, header and footer."""
        return next(self.root.iter("article"), self.root)


def _build_site(directory):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None:
        pytest.skip("the docs extra is not installed: pip install -e '.[docs]'")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(directory)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if os.environ.get("KERAS_GUMBEL_SITE"):
        directory = pathlib.Path(os.environ["KERAS_GUMBEL_SITE"])
        assert (directory / "index.html").is_file(), f"KERAS_GUMBEL_SITE={directory} holds no built site"
    else:
        directory = tmp_path_factory.mktemp("site")
        _build_site(directory)
    pages = {}
    for file in sorted(directory.rglob("*.html")):
        path = file.relative_to(directory).as_posix()
        pages[path] = Page(directory, path)
    return directory, pages


def _api_pages(pages):
    return {path: page for path, page in pages.items() if path.startswith("api/")}


def public_names():
    """`{dotted path: object}` for each name in `keras_gumbel.__all__` and, recursively, in its public modules'.

    A module without `__all__` exports the functions and classes it defines whose names do not start with `_`.
    """
    names = {}
    seen = set()

    def visit(module):
        if module.__name__ in seen:
            return
        seen.add(module.__name__)
        exported = getattr(module, "__all__", None)
        if exported is None:
            exported = [
                name
                for name, value in vars(module).items()
                if not name.startswith("_")
                and (inspect.isfunction(value) or inspect.isclass(value))
                and value.__module__ == module.__name__
            ]
        for name in exported:
            value = getattr(module, name)
            names[f"{module.__name__}.{name}"] = value
            if isinstance(value, types.ModuleType) and value.__name__.startswith("keras_gumbel."):
                visit(value)

    visit(keras_gumbel)
    return names


def _resolve(path):
    """The object a dotted `keras_gumbel...` anchor names, or None."""
    parts = path.split(".")
    if parts[0] != "keras_gumbel":
        return None
    value = keras_gumbel
    for part in parts[1:]:
        try:
            value = getattr(value, part)
        except AttributeError:
            return None
    return value


def test_the_api_reference_has_an_entry_for_every_public_name(site):
    _, pages = site
    api_pages = _api_pages(pages).values()
    anchors = {anchor for page in api_pages for anchor in page.ids if anchor.startswith("keras_gumbel")}
    documented = {id(value) for value in map(_resolve, anchors) if value is not None}
    names = public_names()
    assert "keras_gumbel.GumbelSoftmax" in names and "keras_gumbel.ops.gumbel_softmax" in names  # it recurses
    # A name is covered by its own anchor or by the anchor of another public path to the same object
    # (keras_gumbel.ReinforceModel is keras_gumbel.estimators.ReinforceModel).
    missing = sorted(path for path, value in names.items() if path not in anchors and id(value) not in documented)
    assert not missing, f"public names without an entry on the API pages (docs/api/): {missing}"


def doctests_outside_code(pages):
    found = []
    for path, page in pages.items():
        for quote in page.content().iter("blockquote"):
            # A `>>>` prompt outside a code block renders as three nested blockquotes.
            if any(ancestor.tag == "blockquote" for ancestor in quote.ancestors()):
                continue
            if next(quote.iter("blockquote"), None) is not None or ">>>" in quote.text():
                found.append(f"{path}: {' '.join(quote.text().split())[:120]}")
        for element in page.content().iter():
            in_code = any(node.tag in ("code", "pre") for node in (element, *element.ancestors()))
            for child in element.children:
                if isinstance(child, str) and ">>>" in child and not in_code:
                    found.append(f"{path}: a '>>>' outside code: {child.strip()[:120]}")
    return found


def test_no_doctest_renders_as_a_blockquote(site):
    _, pages = site
    found = doctests_outside_code(pages)
    assert not found, "doctests that do not render as code:\n" + "\n".join(found)


def test_every_documented_doctest_shows_as_code(site):
    _, pages = site
    missing = []
    for page_path, page in _api_pages(pages).items():
        for anchor, heading in page.ids.items():
            if not heading.tag.startswith("h") or not anchor.startswith("keras_gumbel"):
                continue
            value = _resolve(anchor)
            doc = inspect.getdoc(value) if value is not None else None
            if not doc or ">>>" not in doc:
                continue
            # mkdocstrings wraps each object in <div class="doc doc-object ..."> holding its heading and contents.
            entry = heading.parent
            code = "".join(pre.text() for pre in entry.iter("pre"))
            if ">>>" not in code:
                missing.append(f"{page_path}#{anchor}")
    assert not missing, f"entries whose docstring has a doctest that no code block shows: {missing}"


def _target(site_dir, page_path, url):
    """The site-relative file and fragment a relative URL on a page points to, or None for an external URL."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme or parsed.netloc or url.startswith("//"):
        return None
    path = urllib.parse.unquote(parsed.path)
    if path:
        # An absolute path (404.html has them: it is served at any depth) starts at the site's root.
        base = "" if path.startswith("/") else posixpath.dirname(page_path)
        path = posixpath.normpath(posixpath.join(base, path.lstrip("/")))
        if (site_dir / path).is_dir():
            path = posixpath.join(path, "index.html")
    else:
        path = page_path
    return path, urllib.parse.unquote(parsed.fragment)


def broken_links(site_dir, pages):
    broken = []
    for page_path, page in pages.items():
        for element in page.root.iter():
            url = element.attrs.get("src" if element.tag == "script" else "href")
            target = None if url is None else _target(site_dir, page_path, url)
            if target is None:
                continue
            path, fragment = target
            if path.startswith(".."):
                broken.append(f"{page_path}: {url} (outside the site)")
            elif not (site_dir / path).is_file():
                broken.append(f"{page_path}: {url} (no file {path})")
            elif fragment and path in pages and fragment not in pages[path].ids:
                broken.append(f"{page_path}: {url} (no anchor #{fragment} in {path})")
    return broken


def test_internal_links_and_anchors_resolve(site):
    site_dir, pages = site
    broken = broken_links(site_dir, pages)
    assert not broken, "broken internal links:\n" + "\n".join(broken)


def images(site_dir, pages):
    """(shown, missing): the number of local images the pages show, and those whose file is missing or empty."""
    shown, missing = 0, []
    for page_path, page in pages.items():
        for image in page.root.iter("img"):
            target = _target(site_dir, page_path, image.attrs.get("src") or "")
            if target is None:
                continue
            shown += 1
            file = site_dir / target[0]
            if not image.attrs.get("src") or not file.is_file() or file.stat().st_size == 0:
                missing.append(f"{page_path}: {image.attrs.get('src')!r}")
    return shown, missing


def test_every_image_exists(site):
    shown, missing = images(*site)
    assert shown > 0, "the site shows no image: the figures are gone"
    assert not missing, "missing images:\n" + "\n".join(missing)


def empty_columns(pages):
    empty = collections.Counter()
    for page_path, page in pages.items():
        for table in page.content().iter("table"):
            headers = [" ".join(th.text().split()) for th in table.iter("th")]
            rows = [[" ".join(td.text().split()) for td in row.iter("td")] for row in table.iter("tr")]
            rows = [row for row in rows if row]
            if not rows:
                continue
            for column in range(max(map(len, rows))):
                if all(column >= len(row) or not row[column] for row in rows):
                    name = headers[column] if column < len(headers) else f"column {column + 1}"
                    empty[f"{page_path}: the column {name!r} of a table {headers} is empty on every row"] += 1
    return [f"{line} ({count} tables)" for line, count in empty.items()]


def test_no_table_has_an_empty_column(site):
    _, pages = site
    empty = empty_columns(pages)
    assert not empty, "\n".join(empty)


def wide_code(pages):
    wide = collections.defaultdict(list)
    for page_path, page in pages.items():
        for pre in page.content().iter("pre"):
            for line in pre.text().splitlines():
                if len(line.rstrip()) > CODE_WIDTH:
                    wide[page_path].append(f"  ({len(line.rstrip())}) {line.rstrip()}")
    return [f"{path}:\n" + "\n".join(lines) for path, lines in wide.items()]


def test_code_fits_the_content_width(site):
    _, pages = site
    wide = wide_code(pages)
    assert not wide, f"code lines over {CODE_WIDTH} characters (they scroll or are cut off):\n" + "\n".join(wide)


def wide_tables(pages):
    wide = []
    for page_path, page in pages.items():
        for table in page.content().iter("table"):
            cells = [[c for c in row.children if getattr(c, "tag", None) in ("th", "td")] for row in table.iter("tr")]
            columns = max(map(len, cells), default=0)
            if columns > TABLE_COLUMNS:
                headers = [" ".join(th.text().split()) for th in table.iter("th")]
                wide.append(f"{page_path}: a table of {columns} columns {headers}")
    return wide


def test_tables_fit_the_content_width(site):
    _, pages = site
    wide = wide_tables(pages)
    assert not wide, f"tables of more than {TABLE_COLUMNS} columns (the last ones are cut off):\n" + "\n".join(wide)


def test_the_checks_find_the_defects_they_name(tmp_path):
    """Each check, on a two-page site holding one defect of its kind next to its correct form."""
    wide = "x" * (CODE_WIDTH + 1)
    (tmp_path / "other").mkdir()
    (tmp_path / "figure.png").write_bytes(b"png")
    (tmp_path / "index.html").write_text(
        f"""<html><body><article>
        <blockquote><blockquote><blockquote><p>import keras</p></blockquote></blockquote></blockquote>
        <pre><code><span>&gt;&gt;&gt;</span> import keras</code></pre>
        <a href="other/#here">good</a><a href="other/#nowhere">no anchor</a><a href="gone/">no page</a>
        <a href="https://arxiv.org/abs/1611.01144">external</a><br>
        <img src="figure.png"><img src="missing.png">
        <table><tr><th>Name</th><th>Type</th></tr><tr><td>a</td><td> </td></tr></table>
        <table><tr>{"<td>1</td>" * (TABLE_COLUMNS + 1)}</tr></table>
        <table><tr>{"<td>1</td>" * TABLE_COLUMNS}</tr></table>
        <pre><code>{wide}</code></pre><pre><code>{wide[1:]}</code></pre>
        </article></body></html>"""
    )
    (tmp_path / "other" / "index.html").write_text('<html><body><article><h2 id="here">x</h2></article></body></html>')
    pages = {path: Page(tmp_path, path) for path in ("index.html", "other/index.html")}

    assert doctests_outside_code(pages) == ["index.html: import keras"]
    assert broken_links(tmp_path, pages) == [
        "index.html: other/#nowhere (no anchor #nowhere in other/index.html)",
        "index.html: gone/ (no file gone)",
    ]
    assert images(tmp_path, pages) == (2, ["index.html: 'missing.png'"])
    assert empty_columns(pages) == [
        "index.html: the column 'Type' of a table ['Name', 'Type'] is empty on every row (1 tables)"
    ]
    assert wide_code(pages) == [f"index.html:\n  ({CODE_WIDTH + 1}) {wide}"]
    assert wide_tables(pages) == [f"index.html: a table of {TABLE_COLUMNS + 1} columns []"]
