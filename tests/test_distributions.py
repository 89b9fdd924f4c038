"""keras_gumbel.distributions: the TFP bridge of the layers, Plackett-Luce, and what it says when TFP is missing."""

import itertools
import sys

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp

import keras_gumbel


class TestDistributionBridge:
    def test_relaxed_layer_returns_relaxed_one_hot_categorical_with_its_temperature(self):
        layer = keras_gumbel.GumbelSoftmax(temperature=0.3)
        logits = np.log([[0.2, 0.8]]).astype("float32")
        distribution = layer.distribution(logits)
        assert isinstance(distribution, tfp.distributions.RelaxedOneHotCategorical)
        assert float(tf.convert_to_tensor(distribution.temperature)) == pytest.approx(0.3)
        np.testing.assert_allclose(distribution.logits.numpy(), logits)

    def test_straight_through_layer_returns_one_hot_categorical(self):
        layer = keras_gumbel.StraightThroughGumbel()
        logits = np.log([[0.2, 0.8]]).astype("float32")
        distribution = layer.distribution(logits)
        assert isinstance(distribution, tfp.distributions.OneHotCategorical)
        sample = layer(logits, training=True)
        expected = float(np.log(np.sum(np.array([0.2, 0.8]) * sample.numpy()[0])))
        assert float(distribution.log_prob(sample)[0]) == pytest.approx(expected, rel=1e-5)

    def test_samples_have_the_dtype_of_the_logits(self):
        logits = np.log([[0.2, 0.8]])  # float64
        for layer in (keras_gumbel.GumbelSoftmax(), keras_gumbel.StraightThroughGumbel()):
            assert layer.distribution(logits).sample().dtype == tf.float64

    def test_category_axis_is_moved_last(self):
        layer = keras_gumbel.GumbelSoftmax(axis=0)
        logits = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
        distribution = layer.distribution(logits)
        assert tuple(distribution.event_shape) == (5,)
        assert tuple(distribution.batch_shape) == (3,)
        sample = layer(logits, training=True)
        assert np.isfinite(distribution.log_prob(tf.transpose(sample)).numpy()).all()

    @pytest.mark.parametrize(
        "make",
        [
            lambda: keras_gumbel.GumbelSoftmax(temperature=0.7, trainable_temperature=True),
            lambda: keras_gumbel.RelaxedBernoulli(temperature=0.7, trainable_temperature=True),
        ],
        ids=["GumbelSoftmax", "RelaxedBernoulli"],
    )
    def test_distribution_follows_the_temperature_variable(self, make):
        # Built outside the tape (as TFP's own tests check): the learned temperature still gets its gradient.
        layer = make()
        logits = np.log([[0.2, 0.3, 0.5]]).astype("float32")
        distribution = layer.distribution(logits)
        sample = distribution.sample(seed=(1, 2))
        with tf.GradientTape() as tape:
            log_prob = tf.reduce_sum(distribution.log_prob(sample))
        (gradient,) = tape.gradient(log_prob, layer.trainable_variables)
        assert gradient is not None and np.isfinite(gradient.numpy()) and gradient.numpy() != 0
        # The same as the density built inside the tape.
        with tf.GradientTape() as tape:
            expected = tf.reduce_sum(layer.distribution(logits).log_prob(sample))
        np.testing.assert_allclose(gradient.numpy(), tape.gradient(expected, layer.trainable_variables)[0].numpy())
        # An assignment (annealing) after the distribution was built is seen; a learned one is floored at 0.05.
        layer.temperature.assign(2.0)
        assert float(tf.convert_to_tensor(distribution.temperature)) == pytest.approx(2.0)
        layer.temperature.assign(0.01)
        assert float(tf.convert_to_tensor(distribution.temperature)) == pytest.approx(0.05)

    @pytest.mark.parametrize("layer_class", [keras_gumbel.GumbelSoftmax, keras_gumbel.RelaxedBernoulli])
    def test_log_space_samples_have_finite_log_probabilities_and_entropy_gradients(self, layer_class):
        # At temperature 0.1 float32 samples hold exact 0s and 1s: their log-probability is infinite.
        logits = tf.Variable(np.log(np.tile([[0.1, 0.2, 0.7]], (2000, 1))).astype("float32"))
        plain = layer_class(temperature=0.1, seed=1)
        sample = plain(logits, training=True)
        assert not np.isfinite(plain.distribution(logits).log_prob(sample).numpy()).all()
        layer = layer_class(temperature=0.1, seed=1, log_space=True, trainable_temperature=True)
        with tf.GradientTape() as tape:
            log_sample = layer(logits, training=True)
            entropy_estimate = -tf.reduce_mean(layer.distribution(logits).log_prob(log_sample))
        gradients = tape.gradient(entropy_estimate, [logits, layer.temperature.value])
        assert np.isfinite(entropy_estimate.numpy())
        assert all(g is not None and np.isfinite(g.numpy()).all() for g in gradients)
        expected = {keras_gumbel.GumbelSoftmax: tfp.distributions.ExpRelaxedOneHotCategorical}
        assert isinstance(layer.distribution(logits), expected.get(layer_class, tfp.distributions.Logistic))

    def test_log_space_configs_round_trip_and_exclude_hard(self):
        for layer in (keras_gumbel.GumbelSoftmax(log_space=True), keras_gumbel.RelaxedBernoulli(log_space=True)):
            assert type(layer).from_config(layer.get_config()).log_space is True
        with pytest.raises(ValueError, match="`log_space`"):
            keras_gumbel.RelaxedBernoulli(hard=True, log_space=True)


def test_a_missing_tfp_is_an_import_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_probability", None)  # `import tensorflow_probability` fails
    with pytest.raises(ImportError, match=r"pip install 'keras-gumbel\[tensorflow\]'"):
        keras_gumbel.GumbelSoftmax().distribution(np.zeros((1, 3), "float32"))


class TestPlackettLuce:
    """`ops.gumbel_top_k` over all K categories is a Plackett-Luce sample: the same law as `tfd.PlackettLuce`."""

    @pytest.mark.parametrize("probabilities", [[0.1, 0.2, 0.3, 0.4], [0.6, 0.25, 0.15], [0.05, 0.05, 0.3, 0.6]])
    def test_gumbel_top_k_orderings_follow_tfps_plackett_luce(self, probabilities):
        # Exact probabilities of all K! orderings from PlackettLuce.log_prob; 60,000 draws, chi-square p > 1e-4
        # (a correct sampler fails one such check in 10,000 seeds; the seed is fixed).
        logits = np.log(np.array(probabilities, "float32"))
        size, num_draws = len(probabilities), 60_000
        orderings = np.array(list(itertools.permutations(range(size))), "int32")
        law = keras_gumbel.distributions.plackett_luce(logits)
        exact = law.prob(orderings).numpy().astype(np.float64)
        np.testing.assert_allclose(exact.sum(), 1.0, rtol=1e-5)
        draws = keras_gumbel.ops.gumbel_top_k(np.tile(logits, (num_draws, 1)), k=size, seed=7).numpy()
        codes = {tuple(ordering): index for index, ordering in enumerate(orderings.tolist())}
        counts = np.bincount([codes[tuple(row)] for row in draws.tolist()], minlength=len(orderings))
        assert (exact * num_draws >= 5).all()  # the chi-square approximation holds for every ordering
        assert scipy.stats.chisquare(counts, exact / exact.sum() * num_draws).pvalue > 1e-4

    def test_log_prob_is_the_sequential_softmax_product(self):
        # P(p) = prod_i s_{p_i} / sum_{j not yet placed} s_j (written out, independently of TFP).
        logits = np.random.default_rng(0).normal(size=(3, 5)).astype("float32")
        sample = keras_gumbel.ops.gumbel_top_k(logits, k=5, seed=1).numpy()
        scores = np.exp(logits.astype(np.float64))
        expected = []
        for row, ordering in zip(scores, sample):
            left = row[ordering][::-1].cumsum()[::-1]  # the scores still unplaced at each place
            expected.append(np.log(row[ordering] / left).sum())
        law = keras_gumbel.distributions.plackett_luce(logits)
        assert tuple(law.batch_shape) == (3,) and tuple(law.event_shape) == (5,)
        np.testing.assert_allclose(law.log_prob(sample).numpy(), expected, rtol=1e-5)

    def test_category_axis_is_moved_last_and_samples_are_int32_orderings(self):
        logits = np.random.default_rng(1).normal(size=(4, 2)).astype("float32")  # 4 categories on axis 0
        law = keras_gumbel.distributions.plackett_luce(logits, axis=0)
        assert tuple(law.batch_shape) == (2,) and tuple(law.event_shape) == (4,)
        sample = law.sample(seed=(3, 4)).numpy()
        assert sample.dtype == np.int32
        np.testing.assert_array_equal(np.sort(sample, -1), np.tile(np.arange(4), (2, 1)))
