"""`Pathwise`: each relaxation is its op (the same sample and gradient for the same seed), and the estimator is as
biased as documented: a gradient that is not the expected reward's, a value that is for the exact samples.

The sample tests run on every backend; `estimate` reads a TFP policy (TensorFlow).
"""

import keras
import numpy as np
import pytest
from helpers import gradient
from helpers import to_numpy

import keras_gumbel
from keras_gumbel import estimators
from keras_gumbel.estimators import Pathwise
from keras_gumbel.estimators.pathwise import RELAXATIONS

TEMPERATURE, NUM_DRAWS, SEED = 0.7, 5, 11
LOGITS = np.array([[1.0, 0.0, -1.0], [0.5, 2.0, -0.5]], "float32")
WEIGHTS = np.array([1.0, -1.0, 2.0], "float32")  # a reward linear in the action: w . a

tensorflow_only = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a TFP policy (TensorFlow)")


def _op(relaxation, logits, seed):
    ops = keras_gumbel.ops
    if relaxation == "gumbel_rao":
        return ops.gumbel_rao(logits, TEMPERATURE, num_draws=NUM_DRAWS, seed=seed)
    if relaxation == "reinmax":
        return ops.reinmax(logits, TEMPERATURE, seed=seed)
    return ops.gumbel_softmax(logits, TEMPERATURE, hard=relaxation == "straight_through", seed=seed)


def _binary_op(relaxation, logits, seed):
    if relaxation in ("gumbel_softmax", "straight_through"):
        hard = relaxation == "straight_through"
        return keras_gumbel.ops.relaxed_bernoulli(logits, TEMPERATURE, hard=hard, seed=seed)
    # The two-category embedding: logits [l, 0], category 0 the bit 1.
    two = keras.ops.stack([logits, keras.ops.zeros_like(logits)], axis=-1)
    return _op(relaxation, two, seed)[..., 0]


def _weighted(sample, weights):
    return keras.ops.sum(keras.ops.multiply(sample, weights))


@pytest.mark.parametrize("relaxation", RELAXATIONS)
def test_each_relaxation_samples_and_differentiates_as_its_op_for_the_same_seed(relaxation):
    estimator = Pathwise(relaxation, temperature=TEMPERATURE, num_draws=NUM_DRAWS)
    np.testing.assert_array_equal(
        to_numpy(estimator.sample(LOGITS, False, SEED)), to_numpy(_op(relaxation, LOGITS, SEED))
    )
    got = gradient(lambda x: _weighted(estimator.sample(x, False, SEED), WEIGHTS), LOGITS)
    expected = gradient(lambda x: _weighted(_op(relaxation, x, SEED), WEIGHTS), LOGITS)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert np.isfinite(got).all() and np.abs(got).sum() > 0


@pytest.mark.parametrize("relaxation", RELAXATIONS)
def test_each_relaxation_of_bits_is_the_binary_concrete_or_the_two_category_embedding(relaxation):
    estimator = Pathwise(relaxation, temperature=TEMPERATURE, num_draws=NUM_DRAWS)
    bits = LOGITS[:, :2]  # independent bits' log-odds
    sample = to_numpy(estimator.sample(bits, True, SEED))
    np.testing.assert_array_equal(sample, to_numpy(_binary_op(relaxation, bits, SEED)))
    if relaxation != "gumbel_softmax":
        assert set(np.unique(sample)) <= {0.0, 1.0}  # the exact Bernoulli sample forward
    got = gradient(lambda x: _weighted(estimator.sample(x, True, SEED), WEIGHTS[:2]), bits)
    expected = gradient(lambda x: _weighted(_binary_op(relaxation, x, SEED), WEIGHTS[:2]), bits)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_the_straight_through_gradient_is_the_relaxed_one_at_the_same_noise():
    relaxed, straight = Pathwise("gumbel_softmax", TEMPERATURE), Pathwise("straight_through", TEMPERATURE)
    np.testing.assert_allclose(
        gradient(lambda x: _weighted(straight.sample(x, False, SEED), WEIGHTS), LOGITS),
        gradient(lambda x: _weighted(relaxed.sample(x, False, SEED), WEIGHTS), LOGITS),
        rtol=1e-5,
        atol=1e-6,  # float32 gradients of order 0.01, computed along two paths
    )


def test_config_names_and_repr():
    for name in ("gumbel_softmax", "straight_through", "gumbel_rao", "reinmax"):
        estimator = estimators.get(name)
        assert type(estimator) is Pathwise and estimator.relaxation == name
    estimator = Pathwise("gumbel_rao", temperature=0.5, num_draws=3)
    assert Pathwise.from_config(estimator.get_config()).get_config() == estimator.get_config()
    assert repr(estimator) == "Pathwise(relaxation='gumbel_rao', temperature=0.5, num_draws=3)"
    assert Pathwise().get_config() == {"relaxation": "gumbel_softmax", "temperature": 1.0, "num_draws": 10}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"relaxation": "rebar"}, r"Expected one of \('gumbel_softmax', 'straight_through', 'gumbel_rao', 'reinmax'\)"),
        ({"temperature": 0.0}, r"argument `temperature`"),
        ({"num_draws": 0}, r"argument `num_draws`"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Pathwise(**kwargs)


def test_num_samples_must_be_a_positive_integer():
    Pathwise().check_num_samples(1)
    with pytest.raises(ValueError, match=r"argument `num_samples`"):
        Pathwise().check_num_samples(0)


def _tfd():
    return pytest.importorskip("tensorflow_probability").distributions


def _linear_reward(actions):
    return keras.ops.sum(keras.ops.multiply(actions, WEIGHTS[: actions.shape[-1]]), axis=-1)


@tensorflow_only
@pytest.mark.parametrize("relaxation", RELAXATIONS)
def test_estimate_is_minus_the_mean_reward_of_the_ops_samples_with_their_gradient(relaxation):
    import tensorflow as tf

    tfd, seed, num_samples = _tfd(), tf.constant([3, 4], tf.int32), 4
    estimator = Pathwise(relaxation, temperature=TEMPERATURE, num_draws=NUM_DRAWS)
    logits = tf.Variable(LOGITS)
    with tf.GradientTape(persistent=True) as tape:
        policy = tfd.OneHotCategorical(logits=logits, dtype="float32")
        loss, metrics, rewards = estimator.estimate(policy, _linear_reward, None, num_samples, seed, None)
        tiled = tf.repeat(logits[None], num_samples, axis=0)  # [S, B, K], as the estimator draws them
        expected_rewards = _linear_reward(_op(relaxation, tiled, seed))
        expected_loss = -tf.reduce_mean(expected_rewards)
    assert metrics == {} and tuple(rewards.shape) == (num_samples, 2)
    np.testing.assert_allclose(to_numpy(rewards), to_numpy(expected_rewards), rtol=1e-6)
    np.testing.assert_allclose(float(loss), float(expected_loss), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(loss, logits), tape.gradient(expected_loss, logits), rtol=1e-5, atol=1e-7)


@tensorflow_only
@pytest.mark.parametrize("relaxation", ["gumbel_softmax", "straight_through"])
def test_estimate_of_a_bernoulli_policy_differentiates_through_the_relaxed_bits(relaxation):
    import tensorflow as tf

    tfd, seed = _tfd(), tf.constant([5, 6], tf.int32)
    logits = tf.Variable(LOGITS)
    with tf.GradientTape(persistent=True) as tape:
        policy = tfd.Independent(tfd.Bernoulli(logits=logits, dtype="float32"), 1)
        loss, _, rewards = Pathwise(relaxation, TEMPERATURE).estimate(policy, _linear_reward, None, 2, seed, None)
        expected = -tf.reduce_mean(_linear_reward(_binary_op(relaxation, tf.repeat(logits[None], 2, axis=0), seed)))
    assert tuple(rewards.shape) == (2, 2)
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(loss, logits), tape.gradient(expected, logits), rtol=1e-5, atol=1e-7)


@tensorflow_only
def test_estimate_refuses_an_index_categorical_policy():
    tfd = _tfd()
    with pytest.raises(TypeError, match=r"Pathwise works with a policy distribution that is a tfd.Bernoulli"):
        Pathwise().estimate(tfd.Categorical(logits=LOGITS), _linear_reward, None, 1, None, None)


def _per_sample_gradients(relaxation, temperature, num_rows):
    """Per-sample gradient estimates of E[w . a] at logits [1, 0, -1], and -loss: one row of logits per sample."""
    import tensorflow as tf

    logits = tf.Variable(np.tile(LOGITS[:1], (num_rows, 1)))
    with tf.GradientTape() as tape:
        policy = _tfd().OneHotCategorical(logits=logits, dtype="float32")
        estimator = Pathwise(relaxation, temperature=temperature, num_draws=NUM_DRAWS)
        loss, _, rewards = estimator.estimate(policy, _linear_reward, None, 1, tf.constant([1, 2], tf.int32), None)
    # loss = -mean over rows: row i's gradient is -(its estimate) / num_rows.
    return -num_rows * tape.gradient(loss, logits).numpy(), to_numpy(rewards)[0]


def _exact_gradient():
    p = np.exp(LOGITS[0]) / np.exp(LOGITS[0]).sum()
    return p * (WEIGHTS - p @ WEIGHTS), p @ WEIGHTS  # grad_logits E[w . a] = J(p) w, and E[w . a]


NUM_ROWS = 20_000
REINMAX = ("reinmax", 0.5)  # at temperature 1 ReinMax is unbiased for a linear reward (below)


@tensorflow_only
@pytest.mark.parametrize("relaxation, temperature", [(r, 1.0) for r in RELAXATIONS if r != "reinmax"] + [REINMAX])
def test_the_gradient_is_biased_as_documented(relaxation, temperature):
    estimates, _ = _per_sample_gradients(relaxation, temperature, NUM_ROWS)
    exact, _ = _exact_gradient()
    standard_error = estimates.std(0) / np.sqrt(NUM_ROWS)
    # The bias is tens of standard errors here; 6 keeps chance out.
    assert np.max(np.abs(estimates.mean(0) - exact) / standard_error) > 6


@tensorflow_only
def test_reinmax_at_temperature_one_is_unbiased_for_a_linear_reward():
    # E_D[J((p + D) / 2)] = 3/4 J(p) for D ~ Categorical(p), so E[2 J(p1) w - J(p0) w / 2] = J(p) w exactly:
    # the second-order correction removes straight-through's bias for rewards linear in the action.
    estimates, _ = _per_sample_gradients("reinmax", 1.0, NUM_ROWS)
    exact, _ = _exact_gradient()
    standard_error = estimates.std(0) / np.sqrt(NUM_ROWS)
    np.testing.assert_array_less(np.abs(estimates.mean(0) - exact), 5 * standard_error)


@tensorflow_only
@pytest.mark.parametrize("relaxation", RELAXATIONS)
def test_the_loss_is_the_expected_reward_for_exact_samples_and_biased_for_relaxed_ones(relaxation):
    _, rewards = _per_sample_gradients(relaxation, 1.0, NUM_ROWS)
    _, expected = _exact_gradient()
    distance = abs(rewards.mean() - expected) / (rewards.std() / np.sqrt(NUM_ROWS))
    if relaxation == "gumbel_softmax":
        assert distance > 5  # E[w . softmax(logits + g)] is not E[w . a]
    else:
        assert distance < 5


@tensorflow_only
def test_gumbel_rao_has_straight_throughs_mean_gradient_with_less_variance():
    straight, _ = _per_sample_gradients("straight_through", 1.0, NUM_ROWS)
    rao, _ = _per_sample_gradients("gumbel_rao", 1.0, NUM_ROWS)
    standard_error = np.sqrt((straight.var(0) + rao.var(0)) / NUM_ROWS)
    np.testing.assert_array_less(np.abs(straight.mean(0) - rao.mean(0)), 5 * standard_error)
    # Variances from 20,000 samples are within a few percent; Rao-Blackwellising over 5 draws roughly halves them.
    np.testing.assert_array_less(rao.var(0), 0.8 * straight.var(0))
