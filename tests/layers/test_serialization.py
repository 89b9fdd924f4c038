"""GumbelSoftmax and StraightThroughGumbel: .keras save/load after fit, training under mixed precision.

The config round trip, registration and the contract of every layer: tests/layers/test_contract.py.
"""

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
