"""GumbelSoftmax: the op as a layer, the Concrete law of its samples, their limits in the temperature, and the
log-space form (finite where float32 samples round to 0 and 1) with its TFP distribution.

The modes, state, masks and errors shared with StraightThroughGumbel are in test_base.py; the config round trip
is in the layer contract.
"""

import keras
import numpy as np
import pytest
import scipy.special
from helpers import softmax
from helpers import to_numpy

import keras_gumbel
from keras_gumbel import GumbelSoftmax

tensorflow_only = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TFP distributions")
PROBABILITIES = np.array([0.1, 0.2, 0.7])
NUM_ROWS = 20_000


def _rows(probabilities=PROBABILITIES, num_rows=NUM_ROWS):
    return np.tile(np.log(probabilities).astype("float32"), (num_rows, 1))


def test_a_training_call_is_the_gumbel_softmax_op_on_the_layers_stream():
    logits = _rows(num_rows=8)
    layer = GumbelSoftmax(temperature=0.5, seed=4)
    generator = keras.random.SeedGenerator(4)
    for _ in range(2):  # the same stream: each call a new draw, the same draws as the op's
        expected = keras_gumbel.ops.gumbel_softmax(logits, 0.5, seed=generator)
        np.testing.assert_array_equal(to_numpy(layer(logits, training=True)), to_numpy(expected))


def test_the_sample_argmax_follows_the_categorical_law():
    samples = to_numpy(GumbelSoftmax(temperature=2.0, seed=1)(_rows(), training=True))
    np.testing.assert_allclose(samples.sum(-1), 1.0, rtol=1e-5)
    frequencies = np.bincount(samples.argmax(-1), minlength=3) / NUM_ROWS
    # argmax(logits + g) ~ Categorical(softmax(logits)) at any temperature; 5 binomial standard errors.
    np.testing.assert_array_less(np.abs(frequencies - PROBABILITIES), 5 * np.sqrt(PROBABILITIES * 0.9 / NUM_ROWS))


@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
def test_two_category_samples_follow_the_binary_concrete_law(temperature):
    # Maddison et al. (2017): for two categories y_0 = sigmoid((l_0 - l_1 + L) / t), L ~ Logistic(0, 1), so
    # P(y_0 <= y) = sigmoid(t * logit(y) - (l_0 - l_1)).
    logits = _rows(np.array([0.3, 0.7]))
    y0 = to_numpy(GumbelSoftmax(temperature=temperature, seed=2)(logits, training=True))[:, 0].astype("float64")
    points = np.array([0.05, 0.2, 0.5, 0.8, 0.95])
    expected = scipy.special.expit(temperature * scipy.special.logit(points) - np.log(0.3 / 0.7))
    empirical = (y0[:, None] <= points).mean(0)
    np.testing.assert_array_less(np.abs(empirical - expected), 5 * np.sqrt(expected * (1 - expected) / NUM_ROWS))


def test_low_temperatures_give_nearly_one_hot_samples_and_high_ones_nearly_uniform_ones():
    logits = _rows(num_rows=2_000)
    cold = to_numpy(GumbelSoftmax(temperature=0.01, seed=3)(logits, training=True))
    assert np.mean(cold.max(-1) > 0.99) > 0.95
    hot = to_numpy(GumbelSoftmax(temperature=1000.0, seed=3)(logits, training=True))
    # |logits + g| is below about 20 here: every entry within 1% of 1/3.
    np.testing.assert_allclose(hot, 1 / 3, rtol=0.01)


def test_inference_is_the_tempered_softmax_unless_sampling_is_kept():
    logits = _rows(num_rows=4)
    layer = GumbelSoftmax(temperature=0.5, seed=0)
    np.testing.assert_allclose(to_numpy(layer(logits)), softmax(logits / 0.5), rtol=1e-6)
    sampling = GumbelSoftmax(temperature=0.5, seed=0, sample_at_inference=True)
    assert not np.array_equal(to_numpy(sampling(logits)), to_numpy(sampling(logits)))


def test_log_space_gives_the_log_of_the_same_sample():
    logits = _rows(num_rows=64)
    sample = to_numpy(GumbelSoftmax(temperature=0.5, seed=5)(logits, training=True))
    log_sample = to_numpy(GumbelSoftmax(temperature=0.5, seed=5, log_space=True)(logits, training=True))
    np.testing.assert_allclose(np.exp(log_sample), sample, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(scipy.special.logsumexp(log_sample, axis=-1), 0.0, atol=1e-5)
    inference = to_numpy(GumbelSoftmax(temperature=0.5, log_space=True)(logits))
    np.testing.assert_allclose(inference, np.log(softmax(logits / 0.5)), rtol=1e-5, atol=1e-6)


def test_log_space_stays_finite_where_the_sample_rounds_to_zero_and_one():
    logits = np.array([[0.0, -40.0, -80.0]] * 16, "float32")
    sample = to_numpy(GumbelSoftmax(temperature=0.1, seed=6)(logits, training=True))
    assert (sample == 0.0).any()  # float32 underflow: log(sample) would be -inf
    log_sample = to_numpy(GumbelSoftmax(temperature=0.1, seed=6, log_space=True)(logits, training=True))
    assert np.isfinite(log_sample).all()


def test_log_space_is_in_the_config_and_checked():
    layer = GumbelSoftmax(log_space=True)
    assert layer.get_config()["log_space"] is True
    assert GumbelSoftmax.from_config(layer.get_config()).log_space is True
    assert GumbelSoftmax().get_config()["log_space"] is False
    with pytest.raises(TypeError, match=r"argument `log_space`. Expected a bool. Received: log_space='yes'"):
        GumbelSoftmax(log_space="yes")


@tensorflow_only
def test_the_distribution_is_the_relaxed_categorical_whose_log_prob_scores_the_samples():
    tfd = pytest.importorskip("tensorflow_probability").distributions
    logits = _rows(num_rows=4)
    relaxed = GumbelSoftmax(temperature=0.5, seed=7)
    distribution = relaxed.distribution(logits)
    assert isinstance(distribution, tfd.RelaxedOneHotCategorical)
    np.testing.assert_allclose(to_numpy(distribution.temperature), 0.5)
    np.testing.assert_allclose(to_numpy(distribution.logits_parameter()), logits)

    log_space = GumbelSoftmax(temperature=0.5, seed=7, log_space=True)
    exp_distribution = log_space.distribution(logits)
    assert isinstance(exp_distribution, tfd.ExpRelaxedOneHotCategorical)
    log_sample = log_space(logits, training=True)
    np.testing.assert_allclose(to_numpy(exp_distribution.temperature), 0.5)
    # The same law as the relaxed sample's: TFP's Concrete is its ExpConcrete through exp, whose Jacobian (over
    # the K coordinates, as TFP's Exp bijector counts it) gives log p(z) = log p(y) + sum(z) for y = exp(z).
    expected = to_numpy(distribution.log_prob(keras.ops.exp(log_sample))) + to_numpy(log_sample).sum(-1)
    np.testing.assert_allclose(to_numpy(exp_distribution.log_prob(log_sample)), expected, rtol=1e-4, atol=1e-4)


@tensorflow_only
def test_the_distribution_follows_an_annealed_temperature():
    layer = GumbelSoftmax(temperature=1.0)
    distribution = layer.distribution(_rows(num_rows=2))
    layer.temperature.assign(0.25)
    np.testing.assert_allclose(to_numpy(distribution.temperature), 0.25)
