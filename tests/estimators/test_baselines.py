"""Baselines: unbiasedness and variance against exact enumeration, values, state, the Baseline objects and `get`.

Backend-agnostic: CI also runs this file under KERAS_BACKEND=jax and torch (and without TensorFlow installed);
the estimates drawn with TensorFlow Probability run on the TensorFlow backend only.
"""

import itertools
import math

import keras
import numpy as np
import pytest
from helpers import softmax
from helpers import to_numpy

import keras_gumbel
from keras_gumbel.estimators import baselines

BACKEND = keras.backend.backend()
tensorflow_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="draws with TensorFlow Probability")

# A small categorical problem with positive rewards, where a baseline matters.
LOGITS = np.array([0.3, -0.2, 0.5, 0.0], "float32")
PAYOFF = np.array([6.0, 7.0, 8.0, 9.0], "float32")
PROBABILITIES = softmax(LOGITS)
EXACT_GRADIENT = PROBABILITIES * (PAYOFF - PROBABILITIES @ PAYOFF)  # d/dlogits of sum_k p_k f_k


def per_input_gradient_estimates(baseline_kind, num_inputs=4000, num_samples=4, seed=0, return_baseline=False):
    """Score-function estimates of grad E[f], one per input (the mean over its samples).

    With `return_baseline`, also the moving average's value (a constant here; 0 for the other kinds).
    """
    import tensorflow as tf
    import tensorflow_probability as tfp

    tfd = tfp.distributions
    theta = tf.Variable(np.tile(LOGITS, (num_inputs, 1)))
    distribution = tfd.OneHotCategorical(logits=theta, dtype="float32")
    actions = distribution.sample(num_samples, seed=tf.constant([seed, 1]))  # [S, B, K]
    rewards = tf.reduce_sum(actions * PAYOFF, -1)  # [S, B]
    with tf.GradientTape() as tape:
        log_prob = distribution.log_prob(actions)
        baseline = None
        if baseline_kind == "leave_one_out":
            baseline = keras_gumbel.leave_one_out_baseline(rewards, axis=0)
        elif baseline_kind == "moving_average":
            average = keras_gumbel.MovingAverageBaseline(decay=0.9)
            warm_up = tf.reduce_sum(tfd.OneHotCategorical(logits=LOGITS).sample(200, seed=[seed, 2]) * PAYOFF, -1)
            for batch in tf.split(tf.cast(warm_up, "float32"), 20):
                average(batch, training=True)
            baseline = average(rewards, training=False)
        terms = keras_gumbel.score_function_terms(log_prob, rewards, baseline)
        # The loss of input b is the mean of its samples' terms; summing over
        # inputs keeps them apart in the gradient of the (per-input) logits.
        per_input_loss = tf.reduce_sum(tf.reduce_mean(terms, axis=0))
    estimates = -tape.gradient(per_input_loss, theta).numpy()  # [B, K]: estimates of +grad E[f]
    if return_baseline:
        constant = float(baseline.numpy()) if baseline_kind == "moving_average" else 0.0
        return estimates, constant
    return estimates


@tensorflow_only
@pytest.mark.parametrize("baseline_kind", [None, "leave_one_out", "moving_average"])
def test_estimate_is_unbiased_against_exact_enumeration(baseline_kind):
    estimates = per_input_gradient_estimates(baseline_kind)
    standard_errors = estimates.std(axis=0) / math.sqrt(len(estimates))
    assert (np.abs(estimates.mean(axis=0) - EXACT_GRADIENT) < 5 * standard_errors).all(), (
        estimates.mean(axis=0),
        EXACT_GRADIENT,
        standard_errors,
    )


def exact_estimator_variance(baseline_kind, num_samples=4, constant=0.0):
    """Total variance (trace of the covariance) of one input's estimate, by enumerating all joint samples."""
    one_hot = np.eye(4)
    second_moment, mean = 0.0, np.zeros(4)
    for joint in itertools.product(range(4), repeat=num_samples):
        probability = np.prod(PROBABILITIES[list(joint)])
        rewards = PAYOFF[list(joint)].astype("float64")
        if baseline_kind == "leave_one_out":
            baselines = (rewards.sum() - rewards) / (num_samples - 1)
        else:
            baselines = np.full(num_samples, constant)
        estimate = np.mean([(r - b) * (one_hot[a] - PROBABILITIES) for a, r, b in zip(joint, rewards, baselines)], 0)
        second_moment += probability * estimate @ estimate
        mean += probability * estimate
    np.testing.assert_allclose(mean, EXACT_GRADIENT, rtol=1e-5)  # every one of these is unbiased
    return second_moment - mean @ mean


@tensorflow_only
def test_baselines_lower_the_variance_as_exact_enumeration_says():
    for kind in (None, "leave_one_out", "moving_average"):
        estimates, baseline = per_input_gradient_estimates(kind, return_baseline=True)
        # The measured total variance and its standard error (from the per-input squared deviations).
        squared_deviations = ((estimates - estimates.mean(0)) ** 2).sum(-1)
        measured = squared_deviations.mean()
        standard_error = squared_deviations.std() / np.sqrt(len(squared_deviations))
        exact = exact_estimator_variance(kind, constant=baseline)
        assert abs(measured - exact) < 5 * standard_error, (kind, measured, exact, standard_error)
    # The reductions these figures add up to (exact): leave-one-out ~41x, a constant baseline at E[r] ~67x.
    expected_reward = PROBABILITIES @ PAYOFF
    assert exact_estimator_variance(None) / exact_estimator_variance("leave_one_out") > 40
    assert exact_estimator_variance(None) / exact_estimator_variance(None, constant=expected_reward) > 60


def test_leave_one_out_values_and_errors():
    rewards = np.array([[1.0, 10.0], [3.0, 20.0], [5.0, 30.0]], "float32")
    np.testing.assert_allclose(
        keras_gumbel.leave_one_out_baseline(rewards, axis=0), [[4.0, 25.0], [3.0, 20.0], [2.0, 15.0]]
    )
    with pytest.raises(ValueError, match="at least 2 samples"):
        keras_gumbel.leave_one_out_baseline(np.ones((1, 5), "float32"), axis=0)


def test_moving_average_baseline_is_bias_corrected_and_saved(tmp_path):
    average = keras_gumbel.MovingAverageBaseline(decay=0.5)
    assert float(average(keras.ops.convert_to_tensor([4.0]), training=True)) == 0.0  # nothing seen yet
    assert float(average(keras.ops.convert_to_tensor([2.0]), training=True)) == pytest.approx(4.0)  # bias-corrected
    # After 4 then 2: (0.5 * 0.5 * 4 + 0.5 * 2) / (1 - 0.25) = 2.666...
    assert float(average(keras.ops.convert_to_tensor([100.0]), training=False)) == pytest.approx(8 / 3)
    model = keras.Sequential([keras.Input(()), average])
    model.save_weights(tmp_path / "baseline.weights.h5")
    restored = keras.Sequential([keras.Input(()), keras_gumbel.MovingAverageBaseline(decay=0.5)])
    restored.load_weights(tmp_path / "baseline.weights.h5")
    assert float(restored.layers[0].value()) == pytest.approx(8 / 3)
    with pytest.raises(ValueError, match="decay=1.0"):
        keras_gumbel.MovingAverageBaseline(decay=1.0)


# The Baseline objects. Rewards [S, B] = [3, 2] of 3 samples of 2 inputs.
REWARDS = np.array([[1.0, 10.0], [3.0, 20.0], [5.0, 30.0]], "float32")
INPUTS = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")


def test_get_turns_every_baseline_argument_into_one_object():
    assert baselines.get(None) is None
    assert isinstance(baselines.get("leave_one_out"), baselines.LeaveOneOut)
    average = baselines.get("moving_average")
    assert isinstance(average, keras_gumbel.MovingAverageBaseline) and average.decay == 0.99
    for baseline in (average, baselines.LeaveOneOut()):
        assert baselines.get(baseline) is baseline
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    learned = baselines.get(model)
    assert isinstance(learned, baselines.Learned) and learned.model is model and learned.layer() is model
    with pytest.raises(ValueError, match="baseline='mean'"):
        baselines.get("mean")
    with pytest.raises(TypeError, match="baseline=3"):
        baselines.get(3)
    with pytest.raises(TypeError, match="model=3"):
        baselines.Learned(3)


def test_leave_one_out_object_gives_the_others_mean_and_no_loss():
    baseline = baselines.LeaveOneOut()
    value, loss, metrics = baseline.estimate(REWARDS, INPUTS, training=True)
    np.testing.assert_allclose(to_numpy(value), [[4.0, 25.0], [3.0, 20.0], [2.0, 15.0]])
    assert loss == 0.0 and baseline.layer() is None
    assert set(metrics) == set(baseline.metric_names) == {"baseline"}
    assert float(to_numpy(metrics["baseline"])) == pytest.approx(REWARDS.mean())
    baseline.check_num_samples(2)
    with pytest.raises(ValueError, match="num_samples=1"):
        baseline.check_num_samples(1)


def test_moving_average_object_updates_only_when_training_and_keeps_its_name_and_config():
    average = keras_gumbel.MovingAverageBaseline(decay=0.5)
    assert isinstance(average, baselines.Baseline) and average.layer() is average
    value, loss, metrics = average.estimate(REWARDS, INPUTS, training=True)
    assert float(to_numpy(value)) == 0.0 and loss == 0.0 and set(metrics) == {"baseline"}
    value, _, _ = average.estimate(REWARDS * 0, INPUTS, training=False)
    assert float(to_numpy(value)) == pytest.approx(REWARDS.mean())  # the first batch's mean, bias-corrected
    assert float(to_numpy(average.count)) == 1.0  # not updated by the evaluation
    average.check_num_samples(1)
    config = keras.saving.serialize_keras_object(average)
    assert config["registered_name"] == "keras_gumbel>MovingAverageBaseline" and config["config"]["decay"] == 0.5
    assert keras.saving.deserialize_keras_object(config).decay == 0.5


def test_learned_baseline_predicts_per_input_and_is_trained_by_its_loss():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="ones")])
    baseline = baselines.Learned(model)
    value, loss, metrics = baseline.estimate(REWARDS, INPUTS, training=True)
    # One value per input, [1, B]: 1 for both inputs (a kernel of ones, a zero bias).
    np.testing.assert_allclose(to_numpy(value), [[1.0, 1.0]])
    assert float(to_numpy(loss)) == pytest.approx(np.mean((1.0 - REWARDS) ** 2))
    assert set(metrics) == set(baseline.metric_names) == {"baseline", "baseline_loss"}
    assert float(to_numpy(metrics["baseline"])) == pytest.approx(1.0)
    wide = baselines.Learned(keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)]))
    with pytest.raises(ValueError, match="one reward per input"):
        wide.estimate(REWARDS, INPUTS)


def test_the_baseline_interface_asks_for_an_estimate():
    class NoEstimate(baselines.Baseline):
        pass

    baseline = NoEstimate()
    assert baseline.layer() is None and baseline.metric_names == ("baseline",)
    baseline.check_num_samples(1)
    with pytest.raises(NotImplementedError, match="NoEstimate must implement `estimate`"):
        baseline.estimate(REWARDS, INPUTS)
