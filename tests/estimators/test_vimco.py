"""VIMCO: equal to TFP's csiszar_vimco on the same samples, unbiased for grad E[bound] by exact enumeration, errors.

Backend-agnostic (CI also runs it under KERAS_BACKEND=jax and torch); the comparison with TFP runs on TensorFlow only.
"""

import itertools

import keras
import numpy as np
import pytest
from helpers import gradient
from helpers import to_numpy

from keras_gumbel import estimators

BACKEND = keras.backend.backend()
tensorflow_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="compares with TensorFlow Probability")

NUM_CATEGORIES = 3
# The parameters: the proposal's logits, then a per-category score in the log-weights.
THETA = np.array([0.4, -0.3, 0.1, 1.2, -0.5, 0.7], "float32")


def log_weights_and_log_prob(theta, indices):
    """For samples `indices` [S, T] of Categorical(theta[:K]): l = 2 * score[z] - log q(z), and log q(z); [S, T]."""
    logits, score = theta[:NUM_CATEGORIES], theta[NUM_CATEGORIES:]
    log_q = keras.ops.log_softmax(logits)
    log_prob = keras.ops.take(log_q, indices)
    return keras.ops.subtract(keras.ops.multiply(2.0, keras.ops.take(score, indices)), log_prob), log_prob


@pytest.mark.parametrize("num_samples", [2, 3])
def test_the_gradient_is_unbiased_for_the_gradient_of_the_expected_bound(num_samples):
    # Every tuple of S samples, K^S of them: the mean of VIMCO's gradient, weighted by the tuples' probabilities,
    # must be the exact gradient of E[-L], where L depends on theta through the log-weights too.
    tuples = np.array(list(itertools.product(range(NUM_CATEGORIES), repeat=num_samples)), "int32").T  # [S, T]
    probabilities = np.exp(THETA[:NUM_CATEGORIES] - np.logaddexp.reduce(THETA[:NUM_CATEGORIES]))
    tuple_probabilities = np.prod(probabilities[tuples], axis=0)  # [T]

    def expected_estimate(theta):
        total = 0.0
        for column, weight in enumerate(tuple_probabilities):
            log_weights, log_prob = log_weights_and_log_prob(theta, tuples[:, column : column + 1])
            total = keras.ops.add(
                total,
                keras.ops.multiply(float(weight), estimators.vimco_loss(log_prob=log_prob, log_weights=log_weights)),
            )
        return total

    def exact_objective(theta):
        log_weights, log_prob = log_weights_and_log_prob(theta, tuples)
        bound = keras.ops.logsumexp(log_weights, axis=0) - np.log(num_samples)  # [T]
        return keras.ops.negative(keras.ops.sum(keras.ops.exp(keras.ops.sum(log_prob, axis=0)) * bound))

    expected, exact = gradient(expected_estimate, THETA), gradient(exact_objective, THETA)
    assert np.abs(exact).min() > 1e-3  # every parameter matters
    np.testing.assert_allclose(expected, exact, rtol=1e-4, atol=1e-6)


def test_the_value_is_the_negative_bound_and_a_constant_log_weight_gives_no_score_gradient():
    log_weights = np.log(np.array([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]], "float32"))  # S = 3, B = 2
    value = estimators.vimco_loss(log_prob=np.zeros_like(log_weights), log_weights=log_weights)
    assert float(value) == pytest.approx(-(np.log(3.0) + np.log(2.0)) / 2, rel=1e-6)
    # Equal log-weights: every L - L_{-s} is 0, so log_prob gets no gradient.
    constant = np.full((4, 5), 1.5, "float32")
    grad = gradient(
        lambda log_prob: estimators.vimco_loss(log_prob=log_prob, log_weights=constant), np.zeros((4, 5), "float32")
    )
    np.testing.assert_allclose(grad, 0.0, atol=1e-7)


def test_the_score_term_of_the_best_sample_is_positive_and_the_others_negative():
    # Minimising the loss raises the log-probability of the sample that lifts the bound most.
    log_weights = np.array([[0.0], [4.0], [1.0]], "float32")
    grad = gradient(
        lambda log_prob: estimators.vimco_loss(log_prob=log_prob, log_weights=log_weights), np.zeros((3, 1), "float32")
    )
    assert grad[1, 0] < 0 < grad[0, 0]


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="at least 2 samples per input.*log_weights.shape=\\(1, 4\\)"):
        estimators.vimco_loss(log_prob=np.zeros((1, 4), "float32"), log_weights=np.zeros((1, 4), "float32"))
    with pytest.raises(ValueError, match="log_prob.shape=\\(3, 2\\)"):
        estimators.vimco_loss(log_prob=np.zeros((3, 2), "float32"), log_weights=np.zeros((3, 4), "float32"))
    with pytest.raises(ValueError, match="num_samples=1"):
        estimators.VIMCO().check_num_samples(1)
    with pytest.raises(TypeError, match="subtract_log_prob"):
        estimators.VIMCO(subtract_log_prob="yes")


@tensorflow_only
@pytest.mark.parametrize("num_samples, batch_size", [(2, 1), (6, 5)])
def test_equal_to_tfp_csiszar_vimco_on_the_same_samples(num_samples, batch_size):
    import tensorflow as tf
    import tensorflow_probability as tfp

    tfd = tfp.distributions
    rng = np.random.default_rng(num_samples)
    logits = tf.Variable(rng.normal(size=(batch_size, 4)).astype("float32"))
    decoder = tf.Variable(rng.normal(size=(4,)).astype("float32"))
    drawn = []

    def joint_log_prob(z):  # log p(x, z): differentiable in the decoder's parameters
        drawn.append(z)
        return 3.0 * tf.reduce_sum(z * decoder, -1)

    with tf.GradientTape(persistent=True) as tape:
        q = tfd.OneHotCategorical(logits=logits, dtype="float32")
        theirs = tf.reduce_mean(tfp.vi.csiszar_vimco(tfp.vi.kl_reverse, joint_log_prob, q, num_samples, seed=(1, 2)))
        z = drawn[0][:, 0]  # TFP draws [S, num_batch_draws=1, B, K]
        log_prob = q.log_prob(z)
        ours = estimators.vimco_loss(log_prob=log_prob, log_weights=joint_log_prob(z) - log_prob)
    np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-6)
    for variable in (logits, decoder):
        np.testing.assert_allclose(
            tape.gradient(ours, variable).numpy(), tape.gradient(theirs, variable).numpy(), rtol=1e-5, atol=1e-6
        )


@tensorflow_only
def test_the_estimator_subtracts_the_log_prob_when_asked():
    import tensorflow as tf

    rewards = tf.constant([[0.5, 1.0], [2.0, -1.0], [0.0, 0.3]])
    log_prob = tf.Variable([[-1.0, -0.5], [-0.2, -2.0], [-1.5, -0.1]])
    with tf.GradientTape(persistent=True) as tape:
        plain, _ = estimators.VIMCO().loss(None, None, log_prob, rewards, None)
        subtracted, _ = estimators.VIMCO(subtract_log_prob=True).loss(None, None, log_prob, rewards, None)
        expected = estimators.vimco_loss(log_prob=log_prob, log_weights=rewards - log_prob)
    assert float(subtracted) == pytest.approx(float(expected))
    np.testing.assert_allclose(tape.gradient(subtracted, log_prob), tape.gradient(expected, log_prob), rtol=1e-6)
    assert float(plain) == pytest.approx(float(estimators.vimco_loss(log_prob=log_prob, log_weights=rewards)))
    assert to_numpy(tape.gradient(plain, log_prob)).shape == (3, 2)


def test_the_old_positional_order_still_works_with_a_warning_and_keywords_take_the_new_one():
    log_weights = np.log(np.array([[1.0, 2.0], [3.0, 0.5], [2.0, 2.0]], "float32"))
    log_prob = np.log(np.array([[0.2, 0.5], [0.3, 0.1], [0.5, 0.4]], "float32"))
    expected = float(estimators.vimco_loss(log_prob=log_prob, log_weights=log_weights))
    with pytest.warns(FutureWarning, match=r"read in the old order, \(log_weights, log_prob\).*by keyword"):
        old = float(estimators.vimco_loss(log_weights, log_prob))
    assert old == pytest.approx(expected)
    # The per-input terms: their mean is the loss, one per input.
    terms = estimators.vimco_terms(log_prob=log_prob, log_weights=log_weights)
    assert tuple(terms.shape) == (2,)
    assert float(keras.ops.mean(terms)) == pytest.approx(expected)
