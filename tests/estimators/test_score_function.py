"""The score-function maths and the ScoreFunction estimator: values, gradients, shape checks, the old import path.

Backend-agnostic: CI also runs this file under KERAS_BACKEND=jax and torch (and without TensorFlow installed);
the tests that use tf.GradientTape, tf.function or TensorFlow Probability run on the TensorFlow backend only.
"""

import keras
import numpy as np
import pytest
from helpers import gradient
from helpers import softmax
from helpers import to_numpy

import keras_gumbel
from keras_gumbel import estimators
from keras_gumbel import reinforce

BACKEND = keras.backend.backend()
tensorflow_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="uses tf.GradientTape / tf.function / TFP")

LOGITS = np.array([0.3, -0.2, 0.5, 0.0], "float32")


@tensorflow_only
def test_loss_gradient_of_a_constant_reward_is_zero_with_leave_one_out():
    import tensorflow as tf
    import tensorflow_probability as tfp

    tfd = tfp.distributions
    theta = tf.Variable(LOGITS)
    distribution = tfd.OneHotCategorical(logits=theta, dtype="float32")
    actions = distribution.sample(8, seed=[3, 4])
    rewards = tf.fill([8], 5.0)
    with tf.GradientTape() as tape:
        loss = keras_gumbel.score_function_loss(
            distribution.log_prob(actions), rewards, keras_gumbel.leave_one_out_baseline(rewards)
        )
    np.testing.assert_allclose(tape.gradient(loss, theta).numpy(), 0.0, atol=1e-7)


@tensorflow_only
def test_reward_and_baseline_get_no_gradient():
    import tensorflow as tf

    reward = tf.Variable([1.0, 2.0])
    baseline = tf.Variable(0.5)
    log_prob = tf.Variable([-0.1, -0.2])
    with tf.GradientTape(persistent=True) as tape:
        loss = keras_gumbel.score_function_loss(log_prob, reward, baseline)
    assert tape.gradient(loss, reward) is None and tape.gradient(loss, baseline) is None
    np.testing.assert_allclose(tape.gradient(loss, log_prob).numpy(), [-0.25, -0.75])


def test_score_function_loss_is_backend_agnostic_math():
    log_prob = np.log(np.array([0.2, 0.5, 0.5], "float32"))
    reward = np.array([1.0, 0.0, 2.0], "float32")
    expected = -np.mean(reward * log_prob)
    assert float(reinforce.score_function_loss(log_prob, reward)) == pytest.approx(expected)
    assert float(reinforce.score_function_loss(log_prob, reward, 1.0)) == pytest.approx(
        -np.mean((reward - 1) * log_prob)
    )


def test_score_function_refuses_rewards_and_baselines_that_broadcast_to_a_larger_shape():
    log_prob = np.log(np.array([0.2, 0.5, 0.5, 0.8], "float32"))
    reward = np.array([1.0, 0.0, 2.0, 3.0], "float32")
    # [B, 1] against [B] broadcast to [B, B]: every sample was credited with the batch's mean reward.
    for function in (reinforce.score_function_terms, reinforce.score_function_loss):
        with pytest.raises(ValueError, match=r"`rewards`.*`log_prob`.*\(4,\).*rewards\.shape=\(4, 1\)"):
            function(log_prob, reward[:, None])
        with pytest.raises(ValueError, match=r"`rewards`.*\(4,\).*rewards\.shape=\(2,\)"):
            function(log_prob, reward[:2])
        with pytest.raises(ValueError, match=r"`baseline`.*the terms.*\(4,\).*baseline\.shape=\(4, 1\)"):
            function(log_prob, reward, reward[:, None])
    # Python lists and NumPy arrays are accepted; a scalar baseline (a moving average) still broadcasts.
    expected = -np.mean((reward - 1.5) * log_prob)
    assert float(reinforce.score_function_loss(log_prob.tolist(), reward.tolist(), 1.5)) == pytest.approx(expected)
    assert float(reinforce.score_function_loss(log_prob, reward, np.float32(1.5))) == pytest.approx(expected)
    # A per-input baseline [1, B] or [B] against [S, B] rewards (a learned baseline) keeps the shape [S, B].
    log_probs, rewards = np.tile(log_prob, (3, 1)), np.tile(reward, (3, 1))
    for baseline in (np.ones((1, 4), "float32"), np.ones(4, "float32")):
        assert tuple(reinforce.score_function_terms(log_probs, rewards, baseline).shape) == (3, 4)
    with pytest.raises(ValueError, match=r"`baseline`.*\(3, 4\).*baseline\.shape=\(4, 4\)"):
        reinforce.score_function_terms(log_probs, rewards, np.ones((4, 4), "float32"))


def test_a_scalar_reward_broadcasts_and_the_old_keyword_still_works_with_a_warning():
    log_prob = np.log(np.array([[0.2, 0.5], [0.5, 0.8], [0.1, 0.3]], "float32"))  # [S, B]
    # A constant reward is the same for every sample: a scalar, as optax's constant-function tests pass it.
    terms = reinforce.score_function_terms(log_prob, np.float32(2.0))
    np.testing.assert_allclose(to_numpy(terms), -2.0 * log_prob, rtol=1e-6)
    loss = reinforce.score_function_loss(log_prob, 2.0, np.ones(2, "float32"))  # with a per-input baseline
    assert float(loss) == pytest.approx(-np.mean(log_prob))
    with pytest.warns(FutureWarning, match=r"score_function_loss\(reward=...\)` is deprecated.*use `rewards=`"):
        old = reinforce.score_function_loss(log_prob=log_prob, reward=np.ones((3, 2), "float32"))
    assert float(old) == pytest.approx(-np.mean(log_prob))
    with pytest.raises(TypeError, match="both `reward`.*and `rewards`"):
        reinforce.score_function_terms(log_prob, reward=1.0, rewards=1.0)


@tensorflow_only
def test_score_function_checks_what_static_shapes_allow_under_tf_function():
    import tensorflow as tf

    vector, column = tf.TensorSpec([None], tf.float32), tf.TensorSpec([None, 1], tf.float32)
    # The ranks differ whatever the batch size: refused when traced.
    wrong = tf.function(reinforce.score_function_loss, input_signature=[vector, column])
    with pytest.raises(ValueError, match=r"rewards\.shape=\(None, 1\)"):
        wrong.get_concrete_function()
    # Unknown sizes of the same rank are not checked at run time: these trace and run.
    right = tf.function(reinforce.score_function_loss, input_signature=[vector, vector, tf.TensorSpec([], tf.float32)])
    loss = right(tf.math.log([0.5, 0.25]), tf.constant([1.0, 2.0]), tf.constant(1.0))
    assert float(loss) == pytest.approx(-np.mean(np.array([0.0, 1.0]) * np.log([0.5, 0.25])))


def test_the_old_reinforce_module_and_the_package_export_the_same_objects():
    for name in reinforce.__all__:
        assert getattr(reinforce, name) is getattr(estimators, name) is getattr(keras_gumbel, name), name
    assert "estimators" in keras_gumbel.__all__ and "reinforce" in keras_gumbel.__all__


# The ScoreFunction estimator. Rewards [S, B] = [3, 2] of 3 samples of 2 inputs.
LOG_PROB = np.log(np.array([[0.2, 0.5], [0.5, 0.25], [0.3, 0.25]], "float32"))
REWARDS = np.array([[1.0, 10.0], [3.0, 20.0], [5.0, 30.0]], "float32")


class CategoricalEntropy:
    """What ScoreFunction reads of a distribution for its entropy bonus: `entropy()`, one value per input."""

    def __init__(self, probabilities):
        self.probabilities = np.asarray(probabilities, "float32")

    def entropy(self):
        return keras.ops.convert_to_tensor(-(self.probabilities * np.log(self.probabilities)).sum(-1))


def score_function_loss_of(estimator, log_prob=LOG_PROB, distribution=None, training=True):
    return estimator.loss(distribution, None, log_prob, REWARDS, None, training=training)


def test_score_function_without_a_baseline_is_the_score_function_loss():
    estimator = estimators.ScoreFunction()
    loss, metrics = score_function_loss_of(estimator)
    expected = -np.mean(REWARDS * LOG_PROB)
    assert estimator.metric_names == ("loss",) and set(metrics) == {"loss"}
    assert float(to_numpy(loss)) == pytest.approx(expected)
    assert float(to_numpy(metrics["loss"])) == pytest.approx(expected)
    assert estimator.layers == [] and estimator.baseline is None
    estimator.check_num_samples(1)  # any number of samples


def test_score_function_with_leave_one_out_subtracts_the_others_mean():
    estimator = estimators.ScoreFunction(baseline="leave_one_out")
    assert isinstance(estimator.baseline, estimators.LeaveOneOut)
    loss, metrics = score_function_loss_of(estimator)
    others_mean = (REWARDS.sum(0) - REWARDS) / 2
    assert estimator.metric_names == ("loss", "baseline") and set(metrics) == set(estimator.metric_names)
    assert float(to_numpy(loss)) == pytest.approx(-np.mean((REWARDS - others_mean) * LOG_PROB))
    assert float(to_numpy(metrics["baseline"])) == pytest.approx(others_mean.mean())
    with pytest.raises(ValueError, match="num_samples=1"):
        estimator.check_num_samples(1)
    # Its gradient in log_prob is the advantage over S * B, on every backend.
    np.testing.assert_allclose(
        gradient(lambda lp: score_function_loss_of(estimator, lp)[0], LOG_PROB),
        -(REWARDS - others_mean) / REWARDS.size,
        rtol=1e-6,
    )


def test_entropy_bonus_is_subtracted_and_reported_and_the_loss_metric_is_the_surrogate_alone():
    probabilities = softmax(np.array([[0.0, 1.0, 2.0], [0.5, 0.5, 0.5]]))
    distribution = CategoricalEntropy(probabilities)
    entropy = float(-(probabilities * np.log(probabilities)).sum(-1).mean())
    estimator = estimators.ScoreFunction(baseline="leave_one_out", entropy_weight=0.5)
    loss, metrics = score_function_loss_of(estimator, distribution=distribution)
    assert estimator.metric_names == ("loss", "baseline", "entropy")
    surrogate = float(to_numpy(score_function_loss_of(estimators.ScoreFunction("leave_one_out"))[0]))
    assert float(to_numpy(metrics["entropy"])) == pytest.approx(entropy, rel=1e-6)
    assert float(to_numpy(metrics["loss"])) == pytest.approx(surrogate, rel=1e-6)
    assert float(to_numpy(loss)) == pytest.approx(surrogate - 0.5 * entropy, rel=1e-6)


def test_score_function_with_a_learned_baseline_adds_its_mean_squared_error():
    dense = keras.layers.Dense(1, kernel_initializer="zeros", bias_initializer="ones")
    model = keras.Sequential([keras.Input((3,)), dense])
    estimator = estimators.ScoreFunction(baseline=model)
    assert isinstance(estimator.baseline, estimators.Learned) and estimator.layers == [model]
    inputs = np.zeros((2, 3), "float32")  # the baseline predicts 1 for both inputs
    loss, metrics = estimator.loss(None, None, LOG_PROB, REWARDS, inputs, training=True)
    assert estimator.metric_names == ("loss", "baseline", "baseline_loss")
    mean_squared_error = np.mean((1.0 - REWARDS) ** 2)
    surrogate = -np.mean((REWARDS - 1.0) * LOG_PROB)
    assert float(to_numpy(metrics["baseline_loss"])) == pytest.approx(mean_squared_error)
    assert float(to_numpy(metrics["loss"])) == pytest.approx(surrogate)
    assert float(to_numpy(loss)) == pytest.approx(surrogate + mean_squared_error)


def test_moving_average_layers_and_errors():
    average = estimators.MovingAverageBaseline(decay=0.5)
    estimator = estimators.ScoreFunction(baseline=average)
    assert estimator.baseline is average and estimator.layers == [average]
    assert estimators.ScoreFunction(baseline="moving_average").metric_names == ("loss", "baseline")
    with pytest.raises(ValueError, match="entropy_weight=-1"):
        estimators.ScoreFunction(entropy_weight=-1.0)
    with pytest.raises(ValueError, match="baseline='mean'"):
        estimators.ScoreFunction(baseline="mean")


def test_the_estimator_interface_asks_for_a_loss():
    class NoLoss(estimators.Estimator):
        pass

    estimator = NoLoss()
    assert estimator.metric_names == () and estimator.layers == []
    estimator.check_num_samples(1)
    with pytest.raises(NotImplementedError, match="NoLoss must implement `loss`"):
        estimator.loss(None, None, LOG_PROB, REWARDS, None)
