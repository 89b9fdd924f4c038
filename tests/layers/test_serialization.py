"""GumbelSoftmax and StraightThroughGumbel: .keras save/load after fit, training under mixed precision; .keras files
written before 0.3.0, with the old spellings of `hard=True`.

The config round trip, registration and the contract of every layer: tests/layers/test_contract.py.
"""

import json
import zipfile

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


def _with_old_spelling(config, old_spelling):
    """Rewrites, in a model's config, each layer config that has `hard` as 0.2.0 wrote it (`old_spelling`)."""
    if isinstance(config, list):
        return [_with_old_spelling(item, old_spelling) for item in config]
    if not isinstance(config, dict):
        return config
    config = {key: _with_old_spelling(value, old_spelling) for key, value in config.items()}
    if config.get("hard") is True and "seed" in config:  # a keras_gumbel layer's own config
        config = old_spelling({key: value for key, value in config.items() if key != "hard"})
    return config


OLD_SPELLINGS = {
    "RelaxedBernoulli(straight_through=True)": (
        lambda: keras_gumbel.RelaxedBernoulli(hard=True, seed=5),
        lambda config: {**config, "straight_through": True},
    ),
    'GumbelAttention(mode="straight_through")': (
        lambda: keras_gumbel.GumbelAttention(hard=True, seed=5),
        lambda config: {**config, "mode": "straight_through"},
    ),
}


@pytest.mark.parametrize("name", sorted(OLD_SPELLINGS))
def test_a_keras_file_written_before_0_3_0_loads_with_a_warning(name, tmp_path):
    make, old_spelling = OLD_SPELLINGS[name]
    inputs = keras.Input((4,))
    layer = make()
    if isinstance(layer, keras_gumbel.GumbelAttention):  # the inputs are the scores: keys [batch, 4, 1], query 1
        query, keys = keras.ops.ones_like(inputs[:, :1]), keras.ops.expand_dims(inputs, -1)
        outputs = layer(query, keys, return_attention_weights=True)[1]
    else:
        outputs = layer(inputs)
    model = keras.Model(inputs, outputs)
    model.save(tmp_path / "new.keras")
    # The same file as 0.2.0 wrote it: the layer's config has the old key, or value, and no `hard`.
    with zipfile.ZipFile(tmp_path / "new.keras") as new, zipfile.ZipFile(tmp_path / "old.keras", "w") as old:
        for item in new.infolist():
            content = new.read(item)
            if item.filename == "config.json":
                content = json.dumps(_with_old_spelling(json.loads(content), old_spelling))
            old.writestr(item, content)
    assert "hard" not in zipfile.ZipFile(tmp_path / "old.keras").read("config.json").decode()
    with pytest.warns(FutureWarning, match=r"deprecated since keras-gumbel 0\.3\.0"):
        restored = keras.models.load_model(tmp_path / "old.keras")
    (restored_layer,) = [other for other in restored.layers if type(other) is type(layer)]
    assert restored_layer.get_config() == layer.get_config()  # written with `hard` only, from now on
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    np.testing.assert_array_equal(to_numpy(model(x)), to_numpy(restored(x)))
    # The seed stream continues as in the saved model: the next training draws agree, exact 0/1 values.
    drawn, redrawn = to_numpy(model(x, training=True)), to_numpy(restored(x, training=True))
    np.testing.assert_array_equal(drawn, redrawn)
    assert set(np.unique(drawn)) == {0.0, 1.0}
