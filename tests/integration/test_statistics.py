"""The laws the samplers must follow, checked with fixed seeds.

Thresholds: a p-value floor of 1e-3 (a correct sampler would fail 1 time in
1000 with a random seed; the seeds are fixed so the suite is deterministic),
and means within 5 standard errors computed from the sample itself.
"""

import math

import keras
import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp
from helpers import softmax
from helpers import to_numpy

import keras_gumbel

P_VALUE_FLOOR = 1e-3
LOGITS = np.log(np.array([0.1, 0.2, 0.3, 0.4], "float32"))


def draw(layer_class, logits, num_samples, temperature=1.0, seed=0, training=True):
    layer = layer_class(temperature=temperature, seed=seed)
    batch = np.broadcast_to(logits, (num_samples, *np.shape(logits))).astype("float32")
    return to_numpy(layer(batch, training=training))


def concrete_density(y, probabilities, temperature):
    """Maddison et al. (2017), eq. (1): the density of a Concrete sample on the simplex."""
    y = np.asarray(y, dtype=np.float64)
    if (y <= 0).any():  # the boundary of the simplex, where quadrature may land
        return 0.0
    k = len(probabilities)
    numerator = math.factorial(k - 1) * temperature ** (k - 1) * np.prod(probabilities * y ** (-temperature - 1))
    return numerator / np.sum(probabilities * y ** (-temperature)) ** k


@pytest.mark.slow
def test_straight_through_frequencies_follow_softmax_of_logits():
    num_samples = 200_000
    samples = draw(keras_gumbel.StraightThroughGumbel, LOGITS, num_samples, seed=1)
    assert set(np.unique(samples)) == {0.0, 1.0}
    counts = samples.sum(axis=0)
    expected = softmax(LOGITS) * num_samples
    assert scipy.stats.chisquare(counts, expected).pvalue > P_VALUE_FLOOR


@pytest.mark.slow
@pytest.mark.parametrize("temperature", [0.3, 1.0, 2.5])
def test_relaxed_samples_follow_tfp_relaxed_one_hot_categorical(temperature):
    num_samples = 20_000
    ours = draw(keras_gumbel.GumbelSoftmax, LOGITS, num_samples, temperature=temperature, seed=2)
    reference = tfp.distributions.RelaxedOneHotCategorical(temperature, logits=LOGITS)
    theirs = reference.sample(num_samples, seed=(3, 0)).numpy()  # a stateless seed: the same draw in any test order
    # Every coordinate's marginal (a two-sample KS test each, Bonferroni over 4).
    for k in range(len(LOGITS)):
        assert scipy.stats.ks_2samp(ours[:, k], theirs[:, k]).pvalue > P_VALUE_FLOOR / 4, k
    # A fixed random projection catches differences in the joint law too.
    direction = np.random.default_rng(0).normal(size=len(LOGITS))
    assert scipy.stats.ks_2samp(ours @ direction, theirs @ direction).pvalue > P_VALUE_FLOOR


@pytest.mark.slow
@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
def test_binary_relaxed_samples_follow_the_concrete_density(temperature):
    # For two categories the Concrete density of Maddison et al. integrates to
    # P(y_0 <= t); we integrate it numerically and test the sample against it.
    probabilities = np.array([0.3, 0.7])
    num_samples = 50_000
    samples = draw(keras_gumbel.GumbelSoftmax, np.log(probabilities), num_samples, temperature=temperature, seed=4)
    first = samples[:, 0].astype(np.float64)

    def density_of_first(t):
        return concrete_density([t, 1.0 - t], probabilities, temperature)

    edges = np.quantile(first, np.linspace(0, 1, 21))
    edges[0], edges[-1] = 0.0, 1.0
    probability_per_bin = np.array(
        [scipy.integrate.quad(density_of_first, lo, hi, limit=200)[0] for lo, hi in zip(edges[:-1], edges[1:])]
    )
    assert probability_per_bin.sum() == pytest.approx(1.0, abs=1e-6)
    counts = np.histogram(first, bins=edges)[0]
    assert scipy.stats.chisquare(counts, probability_per_bin * num_samples).pvalue > P_VALUE_FLOOR


@pytest.mark.slow
def test_three_category_relaxed_samples_follow_the_concrete_density():
    # Cells of the 2-simplex (y_0, y_1): the density integrated over each cell
    # against the fraction of samples falling in it.
    probabilities = np.array([0.2, 0.3, 0.5])
    temperature = 0.8
    num_samples = 50_000
    samples = draw(keras_gumbel.GumbelSoftmax, np.log(probabilities), num_samples, temperature=temperature, seed=5)
    cuts = [0.0, 0.1, 0.3, 0.6, 1.0]
    observed, expected = [], []
    for a_lo, a_hi in zip(cuts[:-1], cuts[1:]):
        for b_lo, b_hi in zip(cuts[:-1], cuts[1:]):
            if a_lo + b_lo >= 1.0:
                continue
            mass = scipy.integrate.dblquad(
                lambda b, a: concrete_density([a, b, 1.0 - a - b], probabilities, temperature),
                a_lo,
                a_hi,
                lambda a, lo=b_lo: lo,
                lambda a, hi=b_hi: min(hi, 1.0 - a),
                epsabs=1e-7,
            )[0]
            inside = (samples[:, 0] >= a_lo) & (samples[:, 0] < a_hi) & (samples[:, 1] >= b_lo) & (samples[:, 1] < b_hi)
            observed.append(inside.sum())
            expected.append(mass * num_samples)
    observed, expected = np.array(observed), np.array(expected)
    assert expected.sum() == pytest.approx(num_samples, rel=1e-4)
    assert scipy.stats.chisquare(observed, expected * observed.sum() / expected.sum()).pvalue > P_VALUE_FLOOR


def test_layer_distribution_log_prob_is_the_concrete_density_at_our_samples():
    # Checks the TFP bridge (`layer.distribution`) against the density written out; the law of the
    # samples themselves is tested against TFP samples and the integrated density above.
    layer = keras_gumbel.GumbelSoftmax(temperature=0.6, seed=6)
    samples = draw(keras_gumbel.GumbelSoftmax, LOGITS, 50, temperature=0.6, seed=6)
    log_prob = to_numpy(layer.distribution(np.broadcast_to(LOGITS, (50, 4))).log_prob(samples))
    ours = np.log([concrete_density(y, softmax(LOGITS), 0.6) for y in samples])
    np.testing.assert_allclose(log_prob, ours, rtol=1e-3, atol=1e-3)


@pytest.mark.slow
def test_pathwise_gradient_is_unbiased_for_the_relaxed_objective():
    # Two categories: y_0 = sigmoid((delta + L) / t), L ~ Logistic(0, 1). The
    # exact d/d(delta) E[y_0] is an integral over L, computed by quadrature; the
    # mean of the layer's gradients over many draws must match it.
    temperature, delta = 0.7, 0.4

    def expected_first(d):
        integrand = lambda noise: scipy.special.expit((d + noise) / temperature) * scipy.stats.logistic.pdf(noise)
        return scipy.integrate.quad(integrand, -60, 60, limit=400)[0]

    step = 1e-4
    exact = (expected_first(delta + step) - expected_first(delta - step)) / (2 * step)
    num_samples = 100_000
    logits = tf.Variable(np.tile([[delta, 0.0]], (num_samples, 1)).astype("float32"))
    layer = keras_gumbel.GumbelSoftmax(temperature=temperature, seed=7)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(layer(logits, training=True)[:, 0])
    per_sample = tape.gradient(total, logits).numpy()[:, 0]
    standard_error = per_sample.std() / math.sqrt(num_samples)
    assert abs(per_sample.mean() - exact) < 5 * standard_error


def probability_of_a_gap_above(epsilon, logits=LOGITS):
    """P(the largest perturbed logit leads the second by more than epsilon), exactly.

    Winning by more than epsilon is winning the Gumbel-max race with logit l_i - epsilon:
    sum_i e^(l_i - eps) / (e^(l_i - eps) + sum_{j != i} e^(l_j)).
    """
    weights = np.exp(logits.astype("float64"))
    shifted = weights * np.exp(-epsilon)
    return float(np.sum(shifted / (shifted + weights.sum() - weights)))


def test_low_temperature_gives_one_hot_and_high_temperature_uniform():
    num_samples, temperature = 10_000, 1e-3
    cold = draw(keras_gumbel.GumbelSoftmax, LOGITS, num_samples, temperature=temperature, seed=8)
    # max(y) > 0.999 holds when every other perturbed logit trails the winner by more than t ln(999 (K - 1)):
    # at least that probability, less 5 standard errors.
    bound = probability_of_a_gap_above(temperature * np.log(999 * 3))
    one_hot = (cold.max(axis=1) > 0.999).mean()
    assert one_hot > bound - 5 * np.sqrt(bound * (1 - bound) / num_samples)
    frequencies = np.bincount(cold.argmax(1), minlength=4) / num_samples
    p = softmax(LOGITS)
    assert (np.abs(frequencies - p) < 5 * np.sqrt(p * (1 - p) / num_samples)).all()
    hot_temperature = 1e4
    hot = draw(keras_gumbel.GumbelSoftmax, LOGITS, num_samples, temperature=hot_temperature, seed=9)
    # Within a row the perturbed logits span at most the logits' range plus the float32 noise range
    # [-4.47, 16.64]: every entry lies within 0.25 (e^(span / t) - 1) of 1/4.
    span = float(LOGITS.max() - LOGITS.min()) + 4.47 + 16.64
    np.testing.assert_allclose(hot, 0.25, atol=0.25 * np.expm1(span / hot_temperature))
    mean_of_hot = draw(keras_gumbel.GumbelSoftmax, LOGITS, 1, temperature=1e4, training=False)
    np.testing.assert_allclose(mean_of_hot, 0.25, atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_no_non_finite_values_over_dtypes_temperatures_and_extreme_logits(dtype):
    rng = np.random.default_rng(10)
    logits = rng.uniform(-1e4, 1e4, size=(512, 8))
    logits[:, 3] = 1e4
    logits[:, 4] = -1e4
    logits[::2, 5] = -np.inf
    logits[1::3, 6] = -np.inf
    logits = keras.ops.cast(logits, dtype)
    for temperature in [1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3]:
        for layer_class in (keras_gumbel.GumbelSoftmax, keras_gumbel.StraightThroughGumbel):
            layer = layer_class(temperature=temperature, seed=11, dtype=dtype)
            variable = tf.Variable(logits)
            with tf.GradientTape() as tape:
                out = layer(variable, training=True)
                loss = tf.reduce_sum(tf.cast(out, "float32") * tf.range(8, dtype="float32"))
            gradient = tape.gradient(loss, variable)
            out = to_numpy(keras.ops.cast(out, "float32"))
            assert np.isfinite(out).all(), (layer_class.__name__, temperature)
            np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-2 if dtype in ("float16", "bfloat16") else 1e-5)
            assert (out[::2, 5] == 0).all()
            grad = to_numpy(keras.ops.cast(gradient, "float32"))
            assert np.isfinite(grad).all(), (layer_class.__name__, temperature)
