"""The estimator registry: names in registration order, get with arguments, serialization, registering one's own.

Runs on every backend (names and configs only; no estimator is run here).
"""

import ast
import pathlib

import keras
import pytest

from keras_gumbel import estimators
from keras_gumbel.estimators import registry

ESTIMATORS_INIT = pathlib.Path(estimators.__file__)


@pytest.fixture
def clean_registry():
    """Leaves the registry and Keras' custom objects as they were, whatever a test registers."""
    registered, custom = dict(registry._REGISTRY), dict(keras.saving.get_custom_objects())
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(registered)
    keras.saving.get_custom_objects().clear()
    keras.saving.get_custom_objects().update(custom)


def _families_in_import_order():
    """The estimator modules `estimators/__init__.py` imports first, in its order (the registry's order)."""
    families = []
    for node in ast.parse(ESTIMATORS_INIT.read_text()).body:
        if isinstance(node, ast.Import):
            break  # `import importlib`: the families' list ends here
        if isinstance(node, ast.ImportFrom) and node.module == "keras_gumbel.estimators":
            families += [f"keras_gumbel.estimators.{alias.name}" for alias in node.names]
    return families


def test_names_follow_the_order_the_families_register_in():
    names = estimators.names()
    assert len(set(names)) == len(names)
    modules = [registry.entry(name)[0].__module__ for name in names]
    # Each family's names together, the families in the order estimators/__init__.py imports them, then the rest.
    blocks = [module for index, module in enumerate(modules) if index == 0 or modules[index - 1] != module]
    assert len(blocks) == len(set(blocks)), f"a family's names are split: {modules}"
    families = [module for module in _families_in_import_order() if module in blocks]
    assert blocks[: len(families)] == families
    # Within pathwise.py the decorators apply from the bottom up, as its comment says.
    assert names[:4] == ("gumbel_softmax", "straight_through", "gumbel_rao", "reinmax")


def test_get_makes_the_class_with_the_arguments_the_name_fixes_and_those_given():
    estimator = estimators.get("straight_through", temperature=0.5, num_draws=3)
    assert isinstance(estimator, estimators.Pathwise)
    assert estimator.get_config() == {"relaxation": "straight_through", "temperature": 0.5, "num_draws": 3}
    assert isinstance(estimators.get("reinforce_leave_one_out").baseline, estimators.LeaveOneOut)
    assert estimators.get("reinforce").baseline is None
    # Each call makes a new estimator (their state is not shared between models).
    assert estimators.get("reinforce") is not estimators.get("reinforce")


def test_entry_gives_a_copy_of_the_fixed_arguments():
    cls, fixed = registry.entry("gumbel_rao")
    assert cls is estimators.Pathwise and fixed == {"relaxation": "gumbel_rao"}
    fixed["relaxation"] = "reinmax"
    assert registry.entry("gumbel_rao")[1] == {"relaxation": "gumbel_rao"}


def test_get_passes_an_estimator_through_and_reads_a_config():
    estimator = estimators.Pathwise("reinmax", temperature=2.0)
    assert estimators.get(estimator) is estimator
    restored = estimators.get(estimators.serialize(estimator))
    assert type(restored) is estimators.Pathwise and restored.get_config() == estimator.get_config()


@pytest.mark.parametrize(
    "identifier, arguments, error, match",
    [
        ("no_such_estimator", {}, ValueError, r"Expected one of the registered names \('gumbel_softmax', "),
        ("gumbel_rao", {"relaxation": "reinmax"}, ValueError, r"'gumbel_rao' fixes \['relaxation'\] itself"),
        (estimators.Pathwise(), {"temperature": 2.0}, ValueError, r"Arguments \['temperature'\] are for a name"),
        ({"class_name": "Pathwise"}, {"temperature": 2.0}, ValueError, r"are for a name; received a config"),
        (3, {}, TypeError, r"a registered name, a serialized config or an Estimator\. Received: estimator=3"),
        (None, {}, TypeError, r"Received: estimator=None"),
    ],
)
def test_get_errors_name_what_was_wrong(identifier, arguments, error, match):
    with pytest.raises(error, match=match):
        estimators.get(identifier, **arguments)


def test_serialize_names_the_class_as_keras_registered_it():
    config = estimators.serialize(estimators.get("vimco"))
    assert config["registered_name"] == "keras_gumbel>VIMCO"
    assert config["config"] == estimators.get("vimco").get_config()


def test_deserialize_refuses_the_config_of_something_else():
    config = keras.saving.serialize_keras_object(keras.layers.Dense(2))
    with pytest.raises(TypeError, match=r"Expected the config of an Estimator"):
        estimators.deserialize(config)


@pytest.mark.parametrize("name", ["", "Mine", "my estimator", 3, None])
def test_register_refuses_names_get_could_not_use(name):
    with pytest.raises(ValueError, match=r"Invalid value received for argument `name`. Expected a lower-case name"):
        estimators.register(name)


def test_an_estimator_of_ones_own_joins_the_registry_and_keras_serialization(clean_registry):
    @estimators.register("my_tempered", scale=2.0)
    @estimators.register("my_estimator")
    class MyEstimator(estimators.Estimator):
        def __init__(self, scale=1.0):
            self.scale = scale

        def get_config(self):
            return {"scale": self.scale}

    assert estimators.names()[-2:] == ("my_estimator", "my_tempered")
    assert estimators.get("my_tempered").scale == 2.0
    assert estimators.get("my_estimator", scale=3.0).scale == 3.0
    config = estimators.serialize(estimators.get("my_tempered"))
    # Registered with Keras under its own package (its module's first name), never under keras_gumbel's.
    assert config["registered_name"] == f"{MyEstimator.__module__.split('.')[0]}>MyEstimator"
    restored = estimators.deserialize(config)
    assert type(restored) is MyEstimator and restored.scale == 2.0


def test_a_class_already_registered_with_keras_round_trips(clean_registry):
    @estimators.register("my_packaged")
    @keras.saving.register_keras_serializable(package="my_package")
    class Packaged(estimators.Estimator):
        pass

    assert type(estimators.deserialize(estimators.serialize(Packaged()))) is Packaged


def test_a_name_cannot_be_taken_by_another_class_but_a_reloaded_one_replaces_itself(clean_registry):
    with pytest.raises(ValueError, match=r"The estimator name 'vimco' is already registered to VIMCO"):

        @estimators.register("vimco")
        class Impostor(estimators.Estimator):
            pass

    def define(scale):
        # The same class defined anew (a module reloaded): same qualified name and module.
        class Reloaded(estimators.Estimator):
            default_scale = scale

        return Reloaded

    first = estimators.register("my_reloaded")(define(1.0))
    second = estimators.register("my_reloaded")(define(2.0))
    assert first is not second
    assert type(estimators.get("my_reloaded")) is second
    assert estimators.names().count("my_reloaded") == 1


def test_a_users_class_named_as_ours_does_not_take_our_keras_name(clean_registry):
    @estimators.register("my_score_function")
    class ScoreFunction(estimators.Estimator):  # the name of keras_gumbel's
        pass

    assert keras.saving.get_registered_name(estimators.ScoreFunction) == "keras_gumbel>ScoreFunction"
    assert keras.saving.get_registered_object("keras_gumbel>ScoreFunction") is estimators.ScoreFunction
    restored = estimators.deserialize(estimators.serialize(estimators.ScoreFunction(baseline="leave_one_out")))
    assert type(restored) is estimators.ScoreFunction


def test_register_refuses_what_is_not_an_estimator_and_keeps_no_name(clean_registry):
    class Plain:
        pass

    with pytest.raises(TypeError, match="subclass of keras_gumbel.estimators.Estimator"):
        estimators.register("plain")(Plain)
    assert "plain" not in estimators.names()


def test_get_names_an_argument_the_estimator_does_not_take():
    with pytest.raises(TypeError, match=r"'disarm' \(DisARM\) takes no argument \['foo'\]"):
        estimators.get("disarm", foo=1)


def test_an_estimator_with_arguments_but_no_get_config_is_refused_when_saved(clean_registry):
    @estimators.register("my_forgetful")
    class Forgetful(estimators.Estimator):
        def __init__(self, beta=0.5):
            self.beta = beta

    with pytest.raises(NotImplementedError, match=r"Forgetful takes the arguments \['beta'\].*get_config"):
        estimators.serialize(Forgetful(beta=2.0))


def test_the_test_leaves_no_name_behind():
    # Runs after the registering tests (file order): the fixture removed what they registered.
    assert not [name for name in estimators.names() if name.startswith("my_")]
    assert not [name for name in keras.saving.get_custom_objects() if name.endswith(("MyEstimator", "Packaged"))]
