"""get_config round trips, .keras save/load, mixed precision, the TFP bridge."""

import keras
import numpy as np
import pytest
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
