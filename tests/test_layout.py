"""The layout of docs/design.md holds: each module imports only what its row there allows.

Imports inside functions count too (the lazy ones). A new module gets a row here and in docs/design.md.
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "keras_gumbel"

ALLOWED = {
    "_validation": set(),
    "_deprecation": set(),
    "_tf_private": set(),
    "_backend": {"_tf_private"},
    "_sampling": {"_backend", "_validation"},
    "_sinkhorn": {"_sampling", "_backend", "_validation"},
    "ops": {"_sampling", "_sinkhorn", "_backend", "_validation"},
    "layers": {"ops", "_sampling", "_backend", "_validation", "_deprecation", "_tf_private", "distributions", "layers"},
    "schedules": {"_validation"},
    "callbacks": {"layers", "_tf_private", "_validation"},
    "estimators": {"ops", "_backend", "_validation", "_deprecation", "layers", "distributions", "estimators"},
    "reinforce": {"estimators"},
    "distributions": {"_backend"},
    "diagnostics": {"ops", "estimators", "reinforce", "distributions", "_backend", "_validation"},
}


def _ours_imported_by(path):
    """The top-level keras_gumbel modules (or subpackages) a file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "keras_gumbel":
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("keras_gumbel.")}
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_imports_only_what_the_design_allows(path):
    relative = path.relative_to(PACKAGE)
    name = relative.parts[0].removesuffix(".py")
    assert name in ALLOWED, f"{relative} has no row in the layout (tests/test_layout.py and docs/design.md)"
    imported = _ours_imported_by(path)
    assert imported <= ALLOWED[name], f"{relative} imports {sorted(imported - ALLOWED[name])}, outside its row"


def test_only_the_backend_modules_name_private_tensorflow_or_keras_paths():
    for path in MODULES:
        text = path.read_text()
        for private in ("keras.src", "tensorflow.python", "tensorflow.compiler", "._flatten_layers"):
            if private in text:
                assert path.name == "_tf_private.py", f"{path.relative_to(PACKAGE)} names {private}"
