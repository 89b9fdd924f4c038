"""Every registered estimator is a Keras citizen: config round trips, `.keras` files, ModelCheckpoint, exact resumes.

The resume tests train a `ReinforceModel` in `fit` with `ModelCheckpoint("ckpt.keras")`, load the file with
`keras.models.load_model` and continue: the weights (policy, estimator's layers, optimizer) and the sampling
stream must equal those of the same run without the interruption. TensorFlow only (`ReinforceModel`); the
config round trips of the estimators and baselines run on every backend.
"""

import keras
import numpy as np
import pytest

import keras_gumbel
from keras_gumbel import estimators

NUM_CONTEXTS, NUM_ACTIONS = 5, 4
BEST_ACTION = (np.arange(NUM_CONTEXTS) + 1) % NUM_ACTIONS
CONTEXTS = np.eye(NUM_CONTEXTS, dtype="float32")[np.random.default_rng(0).integers(NUM_CONTEXTS, size=128)]
tensorflow_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="ReinforceModel needs the TensorFlow backend"
)


@keras.saving.register_keras_serializable(package="keras_gumbel_tests")
def bandit_reward(contexts, actions):
    """One-hot actions: 1 for the context's best action. Bits: the number of bits equal to the best action's bits."""
    best = keras.ops.take(keras.ops.convert_to_tensor(BEST_ACTION), keras.ops.argmax(contexts, axis=-1))
    target = keras.ops.one_hot(best, NUM_ACTIONS)
    return keras.ops.sum(actions * target + (1.0 - actions) * (1.0 - target), axis=-1) / NUM_ACTIONS


def unregistered_reward(contexts, actions):
    return bandit_reward(contexts, actions)


def policy():
    return keras.Sequential([keras.Input((NUM_CONTEXTS,)), keras.layers.Dense(NUM_ACTIONS)])


def distribution_for(name):
    """Bernoulli bits for the estimators made for binary variables only, one-hot categories otherwise."""
    cls, _ = estimators.registry.entry(name)
    return "one_hot_categorical" if "categorical" in cls.variables else "bernoulli"


def reinforce_model(name, **kwargs):
    keras.utils.set_random_seed(0)  # the policy's initial weights
    model = keras_gumbel.ReinforceModel(
        policy(),
        kwargs.pop("reward_fn", bandit_reward),
        num_samples=4,
        estimator=estimators.get(name),
        distribution=distribution_for(name),
        seed=0,
        **kwargs,
    )
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    return model


def fit(model, epochs, initial_epoch=0, callbacks=()):
    return model.fit(
        CONTEXTS, epochs=epochs, initial_epoch=initial_epoch, batch_size=32, shuffle=False, verbose=0,
        callbacks=list(callbacks),
    )  # fmt: skip


def assert_same_training_state(model, reference):
    # Variable paths differ (a loaded model's layers are named anew); their order and values may not.
    assert [tuple(v.shape) for v in model.weights] == [tuple(v.shape) for v in reference.weights]
    assert len(model.optimizer.variables) == len(reference.optimizer.variables)
    for variable, expected in zip(model.weights, reference.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), keras.ops.convert_to_numpy(expected))
    for variable, expected in zip(model.optimizer.variables, reference.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), keras.ops.convert_to_numpy(expected))
    state, expected_state = model.seed_generator.state, reference.seed_generator.state
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(state), keras.ops.convert_to_numpy(expected_state))


@pytest.mark.parametrize("name", estimators.names())
def test_every_registered_estimator_round_trips_its_config_and_its_name(name):
    estimator = estimators.get(name)
    config = estimators.serialize(estimator)
    assert config["registered_name"] == f"keras_gumbel>{type(estimator).__name__}"
    restored = estimators.deserialize(config)
    assert type(restored) is type(estimator)
    assert estimators.serialize(restored) == config
    assert estimators.get(config).get_config() == estimator.get_config()
    # Through Keras' own entry points too, as a model's config reaches it.
    through_keras = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(estimator))
    assert type(through_keras) is type(estimator)


# Two run in the fast suite (one with a baseline, one coupled-sample estimator); every one runs in the slow suite.
FAST_RESUMES = ("reinforce_leave_one_out", "disarm")


@tensorflow_only
@pytest.mark.parametrize(
    "name", [n if n in FAST_RESUMES else pytest.param(n, marks=pytest.mark.slow) for n in estimators.names()]
)
def test_every_registered_estimator_resumes_from_model_checkpoint_exactly(name, tmp_path):
    reference = reinforce_model(name)
    fit(reference, epochs=2)
    path = str(tmp_path / "ckpt.keras")
    interrupted = reinforce_model(name)
    fit(interrupted, epochs=1, callbacks=[keras.callbacks.ModelCheckpoint(path)])
    resumed = keras.models.load_model(path)
    assert type(resumed.estimator) is type(interrupted.estimator)
    assert resumed.estimator.get_config() == interrupted.estimator.get_config()
    assert_same_training_state(resumed, interrupted)
    fit(resumed, epochs=2, initial_epoch=1)
    assert_same_training_state(resumed, reference)
    assert int(resumed.optimizer.iterations.numpy()) == 2 * len(CONTEXTS) // 32


@tensorflow_only
@pytest.mark.parametrize(
    "baseline", [pytest.param("leave_one_out", marks=pytest.mark.slow), "moving_average", "learned"]
)
def test_every_baseline_resumes_from_a_keras_file_exactly(baseline, tmp_path):
    def model():
        keras.utils.set_random_seed(0)
        learned = keras.Sequential([keras.Input((NUM_CONTEXTS,)), keras.layers.Dense(1)])
        chosen = learned if baseline == "learned" else baseline
        return keras_gumbel.ReinforceModel(policy(), bandit_reward, num_samples=4, baseline=chosen, seed=0)

    reference, interrupted = model(), model()
    for each in (reference, interrupted):
        each.compile(optimizer=keras.optimizers.Adam(0.05))
    fit(reference, epochs=2)
    fit(interrupted, epochs=1)
    interrupted.save(tmp_path / "m.keras")
    resumed = keras.models.load_model(tmp_path / "m.keras")
    fit(resumed, epochs=2, initial_epoch=1)
    assert_same_training_state(resumed, reference)
    assert type(resumed.estimator.baseline) is type(reference.estimator.baseline)


@tensorflow_only
@pytest.mark.parametrize(
    "filepath, options",
    [
        ("ckpt_{epoch:02d}.keras", {}),
        ("best.keras", {"save_best_only": True, "monitor": "reward", "mode": "max"}),
        ("best.keras", {"save_best_only": True, "monitor": "loss"}),
        ("ckpt.weights.h5", {"save_weights_only": True}),
    ],
)
def test_model_checkpoint_path_forms(filepath, options, tmp_path):
    model = reinforce_model("disarm")
    fit(model, epochs=2, callbacks=[keras.callbacks.ModelCheckpoint(str(tmp_path / filepath), **options)])
    saved = sorted(p.name for p in tmp_path.iterdir())
    if "{epoch" in filepath:
        assert saved == ["ckpt_01.keras", "ckpt_02.keras"]
        restored = keras.models.load_model(tmp_path / "ckpt_02.keras")
    elif options.get("save_weights_only"):
        restored = reinforce_model("disarm")
        restored.load_weights(tmp_path / filepath)
    else:
        restored = keras.models.load_model(tmp_path / filepath)
    if not options.get("save_best_only"):
        assert_same_training_state(restored, model) if not options.get("save_weights_only") else None
        np.testing.assert_array_equal(restored.policy.get_weights()[0], model.policy.get_weights()[0])
    assert isinstance(restored.estimator, estimators.DisARM)


@tensorflow_only
def test_a_lambda_reward_fails_at_save_time_naming_it_and_the_way_out(tmp_path):
    model = reinforce_model("reinforce", reward_fn=lambda contexts, actions: bandit_reward(contexts, actions))
    fit(model, epochs=1)
    with pytest.raises(ValueError, match=r"cannot save `reward_fn`, a lambda.*register_keras_serializable"):
        model.save(tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()
    model.save_weights(tmp_path / "m.weights.h5")  # the weights alone still save


@tensorflow_only
def test_a_reward_keras_cannot_find_by_name_fails_at_save_time(tmp_path):
    import tensorflow as tf

    class Rewards:
        def reward(self, contexts, actions):
            return bandit_reward(contexts, actions)

    for reward_fn in (Rewards().reward, tf.function(bandit_reward)):
        model = reinforce_model("reinforce", reward_fn=reward_fn)
        fit(model, epochs=1)
        with pytest.raises(ValueError, match=r"cannot save `reward_fn`.*plain Python function"):
            model.save(tmp_path / "m.keras")
        assert not (tmp_path / "m.keras").exists()


@tensorflow_only
def test_a_pathwise_estimator_with_a_reward_without_gradient_says_so():
    import tensorflow as tf

    def argmax_reward(contexts, actions):  # no gradient with respect to the actions
        return tf.cast(tf.equal(tf.argmax(actions, -1), tf.argmax(contexts, -1) % NUM_ACTIONS), tf.float32)

    model = reinforce_model("straight_through", reward_fn=argmax_reward)
    with pytest.raises(ValueError, match=r"No gradient reaches.*differentiable in the actions"):
        fit(model, epochs=1)


@tensorflow_only
def test_an_unregistered_reward_loads_with_custom_objects_and_otherwise_names_itself(tmp_path):
    model = reinforce_model("reinforce", reward_fn=unregistered_reward)
    fit(model, epochs=1)
    model.save(tmp_path / "m.keras")
    with pytest.raises(TypeError, match=r"could not load its `reward_fn`, 'unregistered_reward'.*custom_objects"):
        keras.models.load_model(tmp_path / "m.keras")
    custom_objects = {"unregistered_reward": unregistered_reward}
    restored = keras.models.load_model(tmp_path / "m.keras", custom_objects=custom_objects)
    assert restored._objective.reward_fn is unregistered_reward
    assert_same_training_state(restored, model)


@tensorflow_only
def test_make_train_step_state_resumes_from_a_tf_checkpoint_exactly(tmp_path):
    import tensorflow as tf

    def step_for():
        keras.utils.set_random_seed(0)
        return keras_gumbel.make_train_step(policy(), bandit_reward, "adam", num_samples=4, estimator="relax", seed=0)

    def train(step, batches):
        for batch in batches:
            step(tf.constant(CONTEXTS[32 * batch : 32 * (batch + 1)]))

    reference = step_for()
    train(reference, range(4))
    interrupted = step_for()
    train(interrupted, range(2))
    path = tf.train.Checkpoint(step=interrupted.state).save(str(tmp_path / "ckpt"))
    resumed = step_for()
    tf.train.Checkpoint(step=resumed.state).restore(path).assert_existing_objects_matched()
    train(resumed, range(2, 4))
    variables = resumed.objective.trainable_variables()
    assert len(variables) == 2 + 5  # the policy's, RELAX's temperature and network
    expected_variables = reference.objective.trainable_variables() + reference.optimizer.variables
    for variable, expected in zip(
        variables + resumed.optimizer.variables + [resumed.state.seed_generator_state],
        expected_variables + [reference.state.seed_generator_state],
    ):
        np.testing.assert_array_equal(variable.numpy(), expected.numpy())


@pytest.mark.parametrize("baseline", [None, "leave_one_out", "moving_average"])
def test_baselines_round_trip_their_config(baseline):
    chosen = estimators.baselines.get(baseline)
    config = estimators.baselines.serialize(chosen)
    restored = estimators.baselines.get(config)
    assert type(restored) is type(chosen)
    assert estimators.baselines.serialize(restored) == config


def test_get_refuses_unknown_names_and_arguments_a_name_fixes():
    with pytest.raises(ValueError, match=r"Expected one of the registered names .*'disarm'.*Received: estimator='dis'"):
        estimators.get("dis")
    with pytest.raises(ValueError, match="fixes \\['baseline'\\]"):
        estimators.get("reinforce_leave_one_out", baseline="moving_average")
    with pytest.raises(TypeError, match="Received: estimator=3"):
        estimators.get(3)
    assert estimators.get("relax", hidden_units=7).hidden_units == 7
