"""Exact enumeration: the exact expectation and gradient, the supports it builds, its refusals.

Backend-agnostic (CI also runs it under KERAS_BACKEND=jax and torch); the estimator's tests use TFP (TensorFlow only).
"""

import itertools

import keras
import numpy as np
import pytest
from helpers import gradient
from helpers import softmax
from helpers import to_numpy

from keras_gumbel import estimators

BACKEND = keras.backend.backend()
tensorflow_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="builds TFP distributions")

LOGITS = np.array([[0.3, -0.2, 0.5, 0.0], [1.0, 0.0, -1.0, 0.5]], "float32")  # B = 2, K = 4
REWARDS = np.array([[1.0, -2.0], [0.5, 3.0], [4.0, 0.0], [-1.0, 1.0]], "float32")  # [K, B]


def test_the_loss_and_its_gradient_are_exact():
    def loss(logits):
        return estimators.enumeration_loss(keras.ops.transpose(keras.ops.log_softmax(logits)), REWARDS)

    probabilities = softmax(LOGITS)
    expected = np.sum(probabilities * REWARDS.T, -1)  # [B]
    assert float(loss(LOGITS)) == pytest.approx(-expected.mean(), rel=1e-6)
    # d/dlogits of -mean_b sum_k p_k r_k = -p_k (r_k - E[r]) / B.
    exact = -probabilities * (REWARDS.T - expected[:, None]) / len(LOGITS)
    np.testing.assert_allclose(gradient(loss, LOGITS), exact, rtol=1e-5, atol=1e-7)


def test_gradients_through_the_reward_are_kept():
    log_prob = np.log(softmax(LOGITS)).T.astype("float32")
    grad = gradient(lambda reward: estimators.enumeration_loss(log_prob, reward), REWARDS)
    np.testing.assert_allclose(grad, -np.exp(log_prob) / 2, rtol=1e-6)


def test_shape_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"rewards.shape=\(4, 1\)"):
        estimators.enumeration_loss(np.zeros((4, 2), "float32"), np.zeros((4, 1), "float32"))
    with pytest.raises(ValueError, match="log_prob"):
        estimators.exact_expectation(np.float32(0.0), np.float32(1.0))
    with pytest.raises(ValueError, match="max_configurations=0"):
        estimators.Enumerate(max_configurations=0)


def joint_reward_table(num_values, shape, seed):
    """A reward for every joint value of the variables: a dict from the tuple of values to a number."""
    rng = np.random.default_rng(seed)
    return {values: float(rng.normal()) for values in itertools.product(range(num_values), repeat=int(np.prod(shape)))}


def estimate_with(distribution, reward_of, batch_size, flatten, max_configurations=4096):
    """Calls Enumerate.estimate as the training helpers do; returns (loss, metrics, rewards, tape, variables)."""
    import tensorflow as tf

    def evaluate(actions):
        flat = flatten(actions.numpy())  # [C, B, N] of values
        return tf.constant([[reward_of[tuple(row)] for row in sample] for sample in flat], "float32")

    def log_prob(actions):
        value = tf.cast(distribution.log_prob(actions), "float32")
        return tf.reduce_sum(tf.reshape(value, tf.concat([tf.shape(value)[:2], [-1]], 0)), -1)

    return estimators.Enumerate(max_configurations).estimate(distribution, evaluate, log_prob, 1, None, None)


@tensorflow_only
@pytest.mark.parametrize("kind", ["one_hot", "categorical", "independent_one_hot", "bernoulli"])
def test_the_estimator_enumerates_the_joint_support_and_its_gradient_is_exact(kind):
    import tensorflow as tf
    import tensorflow_probability as tfp

    tfd = tfp.distributions
    rng = np.random.default_rng(0)
    batch_size = 3
    if kind == "bernoulli":
        variables, num_values = (3,), 2
        logits = tf.Variable(rng.normal(size=(batch_size, 3)).astype("float32"))
        make = lambda: tfd.Independent(tfd.Bernoulli(logits=logits, dtype="float32"), 1)  # noqa: E731
        flatten = lambda a: a.reshape(*a.shape[:2], -1).astype(int)  # noqa: E731
        per_variable_log_p = lambda: tf.stack([tf.math.log_sigmoid(-logits), tf.math.log_sigmoid(logits)], -1)  # noqa: E731
    else:
        variables = (2,) if kind == "independent_one_hot" else ()
        num_values = 3
        logits = tf.Variable(rng.normal(size=(batch_size, *variables, 3)).astype("float32"))
        per_variable_log_p = lambda: tf.reshape(tf.nn.log_softmax(logits), (batch_size, -1, 3))  # noqa: E731
        if kind == "categorical":
            make = lambda: tfd.Categorical(logits=logits)  # noqa: E731
            flatten = lambda a: a.reshape(*a.shape[:2], -1)  # noqa: E731
        else:
            make = lambda: tfd.OneHotCategorical(logits=logits, dtype="float32")  # noqa: E731
            if variables:
                make = lambda: tfd.Independent(tfd.OneHotCategorical(logits=logits, dtype="float32"), 1)  # noqa: E731
            flatten = lambda a: a.argmax(-1).reshape(*a.shape[:2], -1)  # noqa: E731
    num_variables = int(np.prod(variables))
    reward_of = joint_reward_table(num_values, variables, seed=1)

    def exact_loss():  # the expectation written out: joint values weighted by products of per-variable probabilities
        log_p, exact = per_variable_log_p(), 0.0  # [B, N, V]
        for values in itertools.product(range(num_values), repeat=num_variables):
            joint = tf.reduce_sum(tf.stack([log_p[:, n, v] for n, v in enumerate(values)], -1), -1)  # [B]
            exact += tf.exp(joint) * reward_of[values]
        return -tf.reduce_mean(exact)

    with tf.GradientTape(persistent=True) as tape:
        loss, metrics, rewards = estimate_with(make(), reward_of, batch_size, flatten)
        expected = exact_loss()
    assert tuple(rewards.shape) == (num_values**num_variables, batch_size)
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-5)
    np.testing.assert_allclose(float(metrics["reward"]), -float(expected), rtol=1e-5)
    np.testing.assert_allclose(
        to_numpy(tape.gradient(loss, logits)), to_numpy(tape.gradient(expected, logits)), rtol=1e-4, atol=1e-7
    )


@tensorflow_only
def test_the_estimator_refuses_too_large_a_support_and_unknown_distributions():
    import tensorflow_probability as tfp

    tfd = tfp.distributions
    twenty_latents = tfd.Independent(tfd.OneHotCategorical(logits=np.zeros((2, 20, 10), "float32")), 1)
    with pytest.raises(ValueError, match=r"10\^20 = 100000000000000000000 configurations.*max_configurations=4096"):
        estimators.Enumerate().estimate(twenty_latents, None, None, 1, None, None)
    with pytest.raises(TypeError, match="OneHotCategorical, tfd.Categorical or tfd.Bernoulli"):
        estimators.Enumerate().estimate(tfd.Normal(np.zeros(2, "float32"), 1.0), None, None, 1, None, None)
