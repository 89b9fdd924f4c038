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
    "ops": {"ops", "_sampling", "_sinkhorn", "_backend", "_validation"},
    "layers": {"ops", "_sampling", "_backend", "_validation", "_deprecation", "_tf_private", "distributions", "layers"},
    "schedules": {"_validation"},
    "callbacks": {"layers", "_tf_private", "_validation"},
    "estimators": {
        "ops",
        "_sampling",
        "_backend",
        "_validation",
        "_deprecation",
        "layers",
        "distributions",
        "estimators",
    },
    "reinforce": {"estimators"},
    "pruning": {"layers", "_validation", "_tf_private"},
    "distributions": {"_backend"},
    "diagnostics": {"diagnostics", "ops", "estimators", "reinforce", "distributions", "_backend", "_validation"},
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


def _underscore_name(name):
    return isinstance(name, str) and name.isidentifier() and name.startswith("_") and not name.startswith("__")


def _private_tensorflow_and_keras_attributes():
    """The underscore attributes of Keras' and TensorFlow's objects, and every one `_tf_private` reaches for.

    Read from live objects (a layer, a model, a seed generator, variables, an optimizer, a metric, a callback,
    TensorFlow's trackables), so a hook a new release adds is covered too; `_tf_private`'s own keeps the list whole
    on backends where TensorFlow's trackables are absent.
    """
    import keras

    names = set()
    for node in ast.walk(ast.parse((PACKAGE / "_tf_private.py").read_text())):
        name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "value", None)
        if _underscore_name(name):
            names.add(name)
    objects = [
        keras.layers.Layer(),
        keras.Model(),
        keras.random.SeedGenerator(0),
        keras.Variable(0.0),
        keras.optimizers.SGD(),
        keras.metrics.Mean(),
        keras.callbacks.Callback(),
    ]
    try:
        import tensorflow as tf

        objects += [tf.Module(), tf.Variable(0.0), tf.train.Checkpoint()]
    except ImportError:  # the JAX or PyTorch backend without TensorFlow: _tf_private's names suffice
        pass
    for obj in objects:
        names |= {name for name in dir(obj) if _underscore_name(name)}
    return names


def _private_uses(tree, private):
    """(line, what) for each use of a private TF/Keras attribute in a module's syntax tree.

    Flagged: a method of that name in a class (overriding a private hook, as `_trackable_children` once was),
    `obj._name` or `super()._name` on anything but `self`/`cls`, `self._name` that the module does not define
    itself, and the name as a string (`getattr(layer, "_seed_generators")`).
    """
    defined = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    defined.add(target.id)
                elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                    defined.add(target.attr)
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in private:
                    uses.append((item.lineno, f"overrides {item.name} in {node.name}"))
        elif isinstance(node, ast.Attribute) and node.attr in private:
            on_self = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            if not on_self or node.attr not in defined:
                uses.append((node.lineno, f"reads .{node.attr}"))
        elif isinstance(node, ast.Constant) and node.value in private:
            uses.append((node.lineno, f"names {node.value!r}"))
    return uses


def test_only_tf_private_uses_private_attributes_of_tensorflow_or_keras_objects():
    private = _private_tensorflow_and_keras_attributes()
    assert {"_trackable_children", "_seed_generators", "_flatten_layers"} <= private
    found = [
        f"{path.relative_to(PACKAGE)}:{line} {what}"
        for path in MODULES
        if path.name != "_tf_private.py"
        for line, what in _private_uses(ast.parse(path.read_text()), private)
    ]
    assert not found, "private TensorFlow/Keras attributes outside keras_gumbel/_tf_private.py:\n" + "\n".join(found)


def test_the_private_attribute_check_catches_an_overridden_hook_and_a_reach_inside():
    private = _private_tensorflow_and_keras_attributes()
    source = (
        "class Mixin:\n"
        "    def _trackable_children(self, save_type='checkpoint', **kwargs):\n"
        "        return super()._trackable_children(save_type, **kwargs)\n"
        "def generators(layer):\n"
        "    return layer._seed_generators + getattr(layer, '_seed_generators')\n"
    )
    assert sorted(line for line, _ in _private_uses(ast.parse(source), private)) == [2, 3, 5, 5]


TESTS = pathlib.Path(__file__).resolve().parent


# Private modules whose public face is another module: they are tested through it, in its test module.
TESTED_THROUGH = {"estimators/_relaxation.py": "test_relax.py"}


def _test_modules_for(path):
    """The test module names that count for a module: its own; a package's private parts also the package's."""
    relative = path.relative_to(PACKAGE)
    names = {f"test_{path.stem.lstrip('_')}.py"}
    if path.stem.startswith("_") and len(relative.parts) > 1:
        # ops/_categorical.py is keras_gumbel.ops, whose __init__ re-exports it: tests/test_ops.py tests it.
        names.add(f"test_{relative.parts[0]}.py")
    if str(relative) in TESTED_THROUGH:
        names.add(TESTED_THROUGH[str(relative)])
    return names


def test_each_module_has_a_test_module_of_its_name():
    """keras_gumbel/<path>/<module>.py has a tests/**/test_<module>.py (a leading underscore dropped).

    A private module of a package (`ops/_categorical.py`) counts as tested by the package's test module
    (`test_ops.py`) too, and one in `TESTED_THROUGH` by its public face's.
    """
    test_modules = {path.name for path in TESTS.rglob("test_*.py")}
    missing = [
        f"  keras_gumbel/{path.relative_to(PACKAGE)}: none of {sorted(_test_modules_for(path))} under tests/"
        for path in MODULES
        if path.name != "__init__.py" and not _test_modules_for(path) & test_modules
    ]
    assert not missing, "modules without a test module of their own (one per package module):\n" + "\n".join(missing)
