"""RelaxedBernoulli: the binary Concrete law against TFP, exact (`hard=True`) samples, modes, the TFP bridge."""

import keras
import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp
from helpers import to_numpy

import keras_gumbel

LOGITS = np.array([-1.5, 0.0, 0.8], "float32")


@pytest.mark.parametrize("temperature", [0.3, 1.0, 3.0])
def test_relaxed_samples_follow_tfp_relaxed_bernoulli(temperature):
    layer = keras_gumbel.RelaxedBernoulli(temperature=temperature, seed=0)
    ours = to_numpy(layer(np.tile(LOGITS, (20_000, 1)), training=True))
    theirs = tfp.distributions.RelaxedBernoulli(temperature, logits=LOGITS).sample(20_000, seed=(1, 0)).numpy()
    for column in range(len(LOGITS)):
        assert scipy.stats.ks_2samp(ours[:, column], theirs[:, column]).pvalue > 1e-3 / len(LOGITS)


def test_relaxed_samples_follow_the_exact_binary_concrete_cdf():
    # P(y <= s) = P(L <= t * logit(s) - logits) = sigmoid(t * logit(s) - logits).
    temperature, logit = 0.7, 0.8
    layer = keras_gumbel.RelaxedBernoulli(temperature=temperature, seed=2)
    samples = to_numpy(layer(np.full((50_000,), logit, "float32"), training=True)).astype(np.float64)

    def cdf(s):
        return scipy.special.expit(temperature * scipy.special.logit(np.clip(s, 1e-300, 1 - 1e-16)) - logit)

    assert scipy.stats.kstest(samples, cdf).pvalue > 1e-3


def test_hard_samples_are_exact_bernoulli_draws():
    num_samples = 100_000
    layer = keras_gumbel.RelaxedBernoulli(hard=True, seed=3)
    samples = to_numpy(layer(np.tile(LOGITS, (num_samples, 1)), training=True))
    assert set(np.unique(samples)) == {0.0, 1.0}
    probabilities = scipy.special.expit(LOGITS.astype(np.float64))
    standard_errors = np.sqrt(probabilities * (1 - probabilities) / num_samples)
    assert (np.abs(samples.mean(0) - probabilities) < 5 * standard_errors).all()


def test_hard_gradient_is_the_relaxed_gradient_for_the_same_noise():
    variable = tf.Variable(np.tile(LOGITS, (64, 1)))
    weights = tf.constant(np.random.default_rng(0).normal(size=(64, 3)).astype("float32"))
    gradients, outputs = [], []
    for hard in (False, True):
        layer = keras_gumbel.RelaxedBernoulli(temperature=0.6, hard=hard, seed=4)
        with tf.GradientTape() as tape:
            out = layer(variable, training=True)
            loss = tf.reduce_sum(out * weights)
        outputs.append(out.numpy())
        gradients.append(tape.gradient(loss, variable).numpy())
    np.testing.assert_allclose(gradients[0], gradients[1], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(outputs[1], (outputs[0] > 0.5).astype("float32"))


def test_inference_modes_and_extremes():
    relaxed = keras_gumbel.RelaxedBernoulli(temperature=0.5)
    np.testing.assert_allclose(to_numpy(relaxed(LOGITS)), scipy.special.expit(LOGITS / 0.5), rtol=1e-5)
    exact = keras_gumbel.RelaxedBernoulli(hard=True)
    np.testing.assert_array_equal(to_numpy(exact(LOGITS)), [0.0, 0.0, 1.0])
    extreme = np.array([-1e4, 1e4, -np.inf, np.inf], "float32")
    for hard in (False, True):
        for temperature in (1e-4, 1.0, 1e3):
            layer = keras_gumbel.RelaxedBernoulli(temperature=temperature, hard=hard, seed=5)
            out = to_numpy(layer(np.tile(extreme, (16, 1)), training=True))
            assert np.isfinite(out).all()
            np.testing.assert_array_equal(out[:, 2:], np.tile([0.0, 1.0], (16, 1)))
    assert np.isnan(to_numpy(exact(np.array([np.nan], "float32")))).all()


def test_distribution_and_annealing():
    layer = keras_gumbel.RelaxedBernoulli(temperature=0.4, hard=True, seed=6, name="bits")
    assert isinstance(layer.distribution(LOGITS), tfp.distributions.Bernoulli)
    assert isinstance(keras_gumbel.RelaxedBernoulli().distribution(LOGITS), tfp.distributions.RelaxedBernoulli)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras_gumbel.RelaxedBernoulli(seed=7)(keras.layers.Dense(3)(inputs)))
    model.compile("sgd", "mse")
    schedule = keras_gumbel.schedules.Constant(0.25)
    model.fit(np.ones((8, 3)), np.ones((8, 3)), verbose=0, callbacks=[keras_gumbel.TemperatureAnnealing(schedule)])
    assert float(model.layers[-1].temperature.numpy()) == pytest.approx(0.25)


def test_bad_arguments():
    with pytest.raises(TypeError, match="hard=1"):
        keras_gumbel.RelaxedBernoulli(hard=1)
    with pytest.raises(ValueError, match="temperature=-1"):
        keras_gumbel.RelaxedBernoulli(temperature=-1.0)
    with pytest.raises(TypeError, match="floating-point logits"):
        keras_gumbel.RelaxedBernoulli()(np.array([1, 2], "int32"))


def test_straight_through_is_a_deprecated_name_of_hard():
    # `straight_through=` (before 0.3.0) still works until 0.4.0: it warns and makes the layer `hard=True` makes.
    with pytest.warns(FutureWarning, match=r"RelaxedBernoulli\(straight_through=\.\.\.\)` is deprecated.*use `hard=`"):
        old = keras_gumbel.RelaxedBernoulli(temperature=0.6, straight_through=True, seed=4, name="bits")
    new = keras_gumbel.RelaxedBernoulli(temperature=0.6, hard=True, seed=4, name="bits")
    assert old.hard is True and old.get_config() == new.get_config()
    variable = tf.Variable(np.tile(LOGITS, (64, 1)))
    for _ in range(2):  # the same stream, draw after draw, and the same gradient
        draws, gradients = [], []
        for layer in (old, new):
            with tf.GradientTape() as tape:
                draws.append(layer(variable, training=True))
                loss = tf.reduce_sum(tf.sin(3 * draws[-1]))
            gradients.append(tape.gradient(loss, variable).numpy())
        np.testing.assert_array_equal(draws[0].numpy(), draws[1].numpy())
        np.testing.assert_array_equal(gradients[0], gradients[1])
    with pytest.raises(TypeError, match="both `straight_through`.*and `hard`"):
        keras_gumbel.RelaxedBernoulli(straight_through=True, hard=True)
    # The attribute too: read (without a warning: Keras reads every attribute when it saves a layer) and assigned.
    with pytest.warns(FutureWarning, match=r"RelaxedBernoulli\.straight_through` is deprecated.*use `hard`"):
        new.straight_through = False
    assert new.hard is False and new.straight_through is False
    np.testing.assert_allclose(to_numpy(new(LOGITS)), scipy.special.expit(LOGITS / 0.6), rtol=1e-5)


def test_a_config_saved_before_0_3_0_loads_and_is_written_with_hard():
    config = keras_gumbel.RelaxedBernoulli(temperature=0.6, hard=True, seed=4).get_config()
    old_config = {("straight_through" if key == "hard" else key): value for key, value in config.items()}
    with pytest.warns(FutureWarning, match="straight_through"):
        layer = keras_gumbel.RelaxedBernoulli.from_config(old_config)
    assert layer.hard is True
    assert layer.get_config() == config and "straight_through" not in config
