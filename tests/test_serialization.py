"""get_config round trips, .keras save/load, mixed precision, the TFP bridge."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from helpers import to_numpy

import keras_gumbel

LAYERS = [keras_gumbel.GumbelSoftmax, keras_gumbel.StraightThroughGumbel]


def small_model(layer):
    inputs = keras.Input((6,))
    logits = keras.layers.Dense(4, name="logits")(inputs)
    return keras.Model(inputs, layer(logits))


@pytest.mark.parametrize("layer_class", LAYERS)
class TestSerialization:
    def test_get_config_round_trips(self, layer_class):
        layer = layer_class(
            temperature=0.4, axis=1, sample_at_inference=True, trainable_temperature=True, seed=3, name="choice"
        )
        config = layer.get_config()
        clone = layer_class.from_config(config)
        assert clone.get_config() == config
        for key, value in {
            "temperature": 0.4,
            "axis": 1,
            "sample_at_inference": True,
            "trainable_temperature": True,
            "seed": 3,
            "name": "choice",
        }.items():
            assert config[key] == pytest.approx(value) if isinstance(value, float) else config[key] == value

    def test_config_carries_the_current_temperature(self, layer_class):
        layer = layer_class(temperature=2.0)
        layer.temperature.assign(0.7)
        assert layer.get_config()["temperature"] == pytest.approx(0.7)

    def test_registered_and_deserialized_by_name(self, layer_class):
        serialized = keras.saving.serialize_keras_object(layer_class(temperature=0.5))
        restored = keras.saving.deserialize_keras_object(serialized)
        assert type(restored) is layer_class
        assert float(restored.temperature.numpy()) == pytest.approx(0.5)

    def test_keras_file_round_trip_restores_temperature_weights_and_seed_state(self, layer_class, tmp_path):
        model = small_model(layer_class(temperature=1.0, seed=5))
        model.compile("adam", "mse")
        x = np.random.default_rng(0).normal(size=(32, 6)).astype("float32")
        model.fit(x, np.zeros((32, 4), "float32"), verbose=0)
        layer = model.layers[-1]
        layer.temperature.assign(0.37)
        path = tmp_path / "model.keras"
        model.save(path)
        restored = keras.models.load_model(path)
        restored_layer = restored.layers[-1]
        assert float(restored_layer.temperature.numpy()) == pytest.approx(0.37)
        np.testing.assert_array_equal(to_numpy(model(x)), to_numpy(restored(x)))
        # Same seed-generator state: the next training-mode draws agree.
        np.testing.assert_array_equal(to_numpy(model(x, training=True)), to_numpy(restored(x, training=True)))

    @pytest.mark.parametrize("policy", ["float16", "bfloat16", "mixed_float16", "mixed_bfloat16"])
    def test_dtype_policies_give_finite_outputs_and_train(self, layer_class, policy):
        keras.config.set_dtype_policy(policy)
        model = small_model(layer_class(temperature=0.1, seed=0))
        compute_dtype = keras.mixed_precision.dtype_policy().compute_dtype
        x = np.random.default_rng(1).normal(size=(64, 6)).astype("float32") * 100
        out = model(x, training=True)
        assert keras.backend.standardize_dtype(out.dtype) == compute_dtype
        assert np.isfinite(to_numpy(keras.ops.cast(out, "float32"))).all()
        assert keras.backend.standardize_dtype(model.layers[-1].temperature.dtype) == "float32"
        model.compile(keras.optimizers.SGD(0.01), "mse")
        history = model.fit(x, np.full((64, 4), 0.25, "float32"), epochs=2, verbose=0)
        assert np.isfinite(history.history["loss"]).all()


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

    def test_log_space_configs_round_trip_and_exclude_straight_through(self):
        for layer in (keras_gumbel.GumbelSoftmax(log_space=True), keras_gumbel.RelaxedBernoulli(log_space=True)):
            assert type(layer).from_config(layer.get_config()).log_space is True
        with pytest.raises(ValueError, match="`log_space`"):
            keras_gumbel.RelaxedBernoulli(straight_through=True, log_space=True)
