"""ReinforceModel as a Keras model: its call, its metrics (the logged gradient norm is the applied gradient's),
its config (functions by registered name, the estimator serialized) and the errors that say what to do.

Training to a goal, files and resuming are in test_training.py and test_saving.py. TensorFlow backend only.
"""

import keras
import numpy as np
import pytest
from helpers import to_numpy

from keras_gumbel import estimators
from keras_gumbel.estimators import ReinforceModel

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="ReinforceModel needs TensorFlow")
tf = pytest.importorskip("tensorflow")

CONTEXTS = np.eye(3, dtype="float32")[[0, 1, 2, 0, 1, 2, 0, 1]]
PAYOFF = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], "float32")


def payoff_reward(contexts, actions):
    return tf.reduce_sum(actions * tf.matmul(contexts, PAYOFF), -1)


@pytest.fixture
def registered_reward():
    """`payoff_reward` registered with Keras for the test, and unregistered after it."""
    custom = keras.saving.get_custom_objects()
    before = dict(custom)
    registered = keras.saving.register_keras_serializable(package="test_reinforce_model")(payoff_reward)
    yield registered
    custom.clear()
    custom.update(before)


def _policy():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, kernel_initializer="zeros")])


def test_call_is_the_policys_output():
    policy = _policy()
    policy.layers[0].kernel.assign(np.arange(6, dtype="float32").reshape(3, 2))
    model = ReinforceModel(policy, payoff_reward, seed=0)
    np.testing.assert_array_equal(to_numpy(model(CONTEXTS)), to_numpy(policy(CONTEXTS)))


def test_metrics_are_the_objectives_then_the_greedy_reward_and_gradient_norm():
    model = ReinforceModel(_policy(), payoff_reward, num_samples=2, estimator="reinforce_leave_one_out", seed=0)
    names = [metric.name for metric in model.metrics]
    assert names[:2] == ["loss", "reward"] and names[-2:] == ["greedy_reward", "gradient_norm"]


def test_the_logged_gradient_norm_is_that_of_the_applied_step():
    model = ReinforceModel(_policy(), payoff_reward, num_samples=4, baseline="leave_one_out", seed=1)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5))
    before = [w.copy() for w in model.get_weights()]
    logs = model.train_on_batch(CONTEXTS, return_dict=True)
    steps = [after - start for after, start in zip(model.get_weights(), before)]
    # SGD moves each weight by -learning_rate * gradient.
    applied = np.sqrt(sum((step**2).sum() for step in steps)) / 0.5
    assert applied > 0
    np.testing.assert_allclose(logs["gradient_norm"], applied, rtol=1e-5)


def test_the_config_round_trips_with_the_estimator_and_the_reward_by_name(registered_reward):
    estimator = estimators.get("reinforce_leave_one_out", entropy_weight=0.01)
    model = ReinforceModel(
        _policy(),
        registered_reward,
        num_samples=3,
        distribution="categorical",
        seed=5,
        estimator=estimator,
        name="bandit",
    )
    config = model.get_config()
    assert config["reward_fn"]["config"] == keras.saving.get_registered_name(registered_reward)
    assert {key: config[key] for key in ("num_samples", "distribution", "seed", "name")} == {
        "num_samples": 3,
        "distribution": "categorical",
        "seed": 5,
        "name": "bandit",
    }
    assert config["estimator"] == estimators.serialize(estimator)
    restored = ReinforceModel.from_config(config)
    assert restored._objective.reward_fn is registered_reward
    assert restored.estimator.get_config() == estimator.get_config()
    assert restored.get_config() == config


def test_a_lambda_reward_cannot_be_saved_and_the_error_says_what_to_do():
    model = ReinforceModel(_policy(), lambda contexts, actions: tf.zeros(tf.shape(actions)[:1]), seed=0)
    with pytest.raises(ValueError, match=r"cannot save `reward_fn`, a lambda: .*register_keras_serializable"):
        model.get_config()


def test_a_reward_that_is_neither_function_nor_configurable_object_cannot_be_saved():
    class Payoff:
        def __call__(self, contexts, actions):
            return payoff_reward(contexts, actions)

    model = ReinforceModel(_policy(), Payoff(), seed=0)
    with pytest.raises(ValueError, match=r"cannot save `reward_fn`=.*plain function.*`get_config` and `from_config`"):
        model.get_config()


def test_an_unregistered_reward_fails_to_load_naming_itself_and_custom_objects(registered_reward):
    config = ReinforceModel(_policy(), registered_reward, seed=0).get_config()
    config["reward_fn"] = dict(config["reward_fn"], config="not_registered_reward")
    with pytest.raises(
        (TypeError, ValueError),
        match=r"could not load its `reward_fn`, 'not_registered_reward'.*"
        r"custom_objects",
    ):
        ReinforceModel.from_config(config)


def test_sample_weight_is_refused_with_the_way_to_weigh_rewards():
    model = ReinforceModel(_policy(), payoff_reward, seed=0)
    with pytest.raises(ValueError, match=r"does not use `sample_weight`.*scale the rewards in `reward_fn`"):
        model.compute_loss(CONTEXTS, None, model(CONTEXTS), sample_weight=np.ones(8, "float32"))


def test_build_builds_an_unbuilt_policy_and_the_estimators_weights():
    policy = keras.Sequential([keras.layers.Dense(2)])
    model = ReinforceModel(policy, payoff_reward, estimator="relax", seed=0)
    assert not policy.built and not model.built
    model.build((None, 3))
    assert policy.built and model.built
    assert model.estimator.layers and all(layer.built for layer in model.estimator.layers)


def test_compute_loss_adds_the_models_losses_to_the_estimators():
    policy = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2, kernel_initializer="ones", kernel_regularizer="l2")]
    )
    model = ReinforceModel(policy, payoff_reward, num_samples=2, seed=3)
    plain = ReinforceModel(_policy(), payoff_reward, num_samples=2, seed=3)
    plain.policy.set_weights(policy.get_weights())
    outputs = model(CONTEXTS)
    regularised = float(model.compute_loss(CONTEXTS, None, outputs))
    unregularised = float(plain.compute_loss(CONTEXTS, None, plain(CONTEXTS)))
    np.testing.assert_allclose(regularised - unregularised, 0.01 * 6, rtol=1e-5)  # l2 = 0.01 * sum(ones**2)
