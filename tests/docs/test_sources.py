"""The docs' Markdown sources and the packaging they describe, checked without building the site.

`test_site.py` checks the built pages (where the `[docs]` extra is installed); these checks run everywhere:

- `docs/api/index.md`, the page of `keras_gumbel`, has an entry for each name in `keras_gumbel.__all__`: a
  mkdocstrings entry (`::: keras_gumbel.NAME`) for a function or class, a row linking to its page, with its
  docstring's summary, for a module;
- the extra that docs/temperature.md names for TensorBoard installs it (TensorFlow 2.21 no longer does).
"""

import configparser
import inspect
import pathlib
import re
import types

import keras_gumbel

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _api_index():
    return (ROOT / "docs" / "api" / "index.md").read_text(encoding="utf-8")


def test_the_keras_gumbel_api_page_has_an_entry_for_every_name_in_its_all():
    page = _api_index()
    entries = set(re.findall(r"^::: keras_gumbel\.(\w+)\s*$", page, re.MULTILINE))
    rows = dict(re.findall(r"^\| \[`keras_gumbel\.(\w+)`\]\(\1\.md\) \| (.+?) \|$", page, re.MULTILINE))
    missing = []
    for name in keras_gumbel.__all__:
        value = getattr(keras_gumbel, name)
        if isinstance(value, types.ModuleType):
            summary = inspect.getdoc(value).splitlines()[0]
            if rows.get(name) != summary or not (ROOT / "docs" / "api" / f"{name}.md").is_file():
                missing.append(f"{name} (a row `| [`keras_gumbel.{name}`]({name}.md) | {summary} |`)")
        elif name not in entries:
            missing.append(f"{name} (`::: keras_gumbel.{name}`)")
    assert not missing, f"names in keras_gumbel.__all__ without an entry on docs/api/index.md: {missing}"
    # The page is keras_gumbel's: it documents nothing that is not in its __all__.
    extra = sorted(entries.union(rows) - set(keras_gumbel.__all__))
    assert not extra, f"docs/api/index.md has entries for names outside keras_gumbel.__all__: {extra}"


def _extras():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    extras = {}
    for name, lines in config["options.extras_require"].items():
        requirements = [line.strip() for line in lines.splitlines()]
        extras[name] = {re.split(r"[\[<>=!~; ]", line)[0] for line in requirements if line and line[0] != "#"}
    return extras


def test_the_extra_the_temperature_guide_names_for_tensorboard_installs_it():
    # keras.callbacks.TensorBoard fails in tf.summary.scalar without the `tensorboard` package.
    guide = (ROOT / "docs" / "temperature.md").read_text(encoding="utf-8")
    section = guide[guide.index("### In TensorBoard") :]
    section = section[: section.index("\n#")] if "\n#" in section else section
    commands = re.findall(r"pip install -e '\.\[([\w,]+)\]'", section)
    assert commands, "docs/temperature.md's TensorBoard section names no extra to install"
    extras = _extras()
    for command in commands:
        installed = set().union(*(extras[extra] for extra in command.split(",")))
        assert "tensorboard" in installed, f"pip install -e '.[{command}]' does not install tensorboard"
    # The README's commands (`.[tensorflow,examples]`, `.[tensorflow,test,examples]`) make that environment.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in re.findall(r"pip install -e '\.\[([\w,]+)\]'", readme):
        if "tensorflow" in command.split(",") and "examples" in command.split(","):
            assert "tensorboard" in set().union(*(extras[extra] for extra in command.split(",")))
