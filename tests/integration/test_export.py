"""SavedModel export, tf.saved_model.save, resumed training from .keras, and the XLA sampling path."""

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
from helpers import softmax
from helpers import to_numpy

import keras_gumbel

LAYERS = [keras_gumbel.GumbelSoftmax, keras_gumbel.StraightThroughGumbel]
X = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")


def model_with(layer):
    inputs = keras.Input((6,))
    return keras.Model(inputs, layer(keras.layers.Dense(4)(inputs)))


@pytest.mark.parametrize("layer_class", LAYERS)
def test_export_serves_the_deterministic_inference_output(layer_class, tmp_path):
    model = model_with(layer_class(temperature=0.5, seed=0))
    model.export(str(tmp_path / "served"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "served"))
    first, second = served.serve(X).numpy(), served.serve(X).numpy()
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, to_numpy(model(X)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_export_with_sample_at_inference_keeps_sampling(layer_class, tmp_path):
    model = model_with(layer_class(seed=0, sample_at_inference=True))
    model.export(str(tmp_path / "served"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "served"))
    draws = [served.serve(X).numpy() for _ in range(3)]
    assert not np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[1], draws[2])
    np.testing.assert_allclose(draws[0].sum(-1), 1.0, rtol=1e-5)


def test_served_straight_through_samples_follow_the_categorical_law(tmp_path):
    logits = np.log(np.array([[0.1, 0.2, 0.3, 0.4]], "float32"))
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras_gumbel.StraightThroughGumbel(seed=1, sample_at_inference=True)(inputs))
    model.export(str(tmp_path / "served"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "served"))
    counts = sum(served.serve(np.repeat(logits, 5000, axis=0)).numpy().sum(0) for _ in range(4))
    assert scipy.stats.chisquare(counts, softmax(logits)[0] * 20_000).pvalue > 1e-3


def test_tf_saved_model_save_of_a_module_with_a_stochastic_signature(tmp_path):
    class Sampler(tf.Module):
        def __init__(self):
            super().__init__()
            self.layer = keras_gumbel.StraightThroughGumbel(seed=2, sample_at_inference=True)

        @tf.function(input_signature=[tf.TensorSpec([None, 5], tf.float32)])
        def sample(self, logits):
            return self.layer(logits)

    module = Sampler()
    module.sample(tf.zeros((1, 5)))
    tf.saved_model.save(module, str(tmp_path / "module"))  # failed with "untracked resource" before tracking
    loaded = tf.saved_model.load(str(tmp_path / "module"))
    draws = [loaded.sample(tf.zeros((64, 5))).numpy() for _ in range(2)]
    assert not np.array_equal(*draws)
    np.testing.assert_array_equal(draws[0].sum(-1), 1.0)


def test_tf_saved_model_save_and_checkpoint_of_a_keras_model(tmp_path):
    model = model_with(keras_gumbel.GumbelSoftmax(seed=3, sample_at_inference=True))
    tf.saved_model.save(model, str(tmp_path / "model"))
    loaded = tf.saved_model.load(str(tmp_path / "model"))
    signature = loaded.signatures["serving_default"]
    outputs = [next(iter(signature(tf.constant(X)).values())).numpy() for _ in range(2)]
    assert not np.array_equal(*outputs)
    layer = model.layers[-1]
    checkpoint = tf.train.Checkpoint(layer=layer)
    path = checkpoint.save(str(tmp_path / "checkpoint" / "ckpt"))
    state = layer.seed_generator.state.numpy().copy()
    layer(X[:, :4], training=True)  # advances the stream
    checkpoint.restore(path)
    np.testing.assert_array_equal(layer.seed_generator.state.numpy(), state)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_reloaded_keras_model_continues_training_exactly(layer_class, tmp_path):
    y = np.eye(4, dtype="float32")[np.random.default_rng(1).integers(4, size=16)]
    model = model_with(layer_class(temperature=0.8, seed=4))
    model.compile(keras.optimizers.Adam(0.01), "mse")
    model.fit(X, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    model.layers[-1].temperature.assign(0.6)
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    assert float(restored.layers[-1].temperature.numpy()) == pytest.approx(0.6)
    for each in (model, restored):
        each.fit(X, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for before, after in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_allclose(before, after, rtol=1e-6, atol=1e-7)


def test_weights_file_restores_the_seed_state(tmp_path):
    model = model_with(keras_gumbel.GumbelSoftmax(seed=5))
    model(X, training=True)
    model.save_weights(tmp_path / "model.weights.h5")
    expected = to_numpy(model(X, training=True))
    fresh = model_with(keras_gumbel.GumbelSoftmax(seed=5))
    fresh.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_array_equal(to_numpy(fresh(X, training=True)), expected)


class TestXLA:
    """Under jit_compile=True the noise comes from XLA's native bit generator: check it as carefully."""

    def test_layers_compile_and_draw_new_noise_each_call(self):
        for layer_class in LAYERS:
            layer = layer_class(seed=6)
            compiled = tf.function(lambda logits, layer=layer: layer(logits, training=True), jit_compile=True)
            logits = tf.zeros((256, 5))
            first, second = compiled(logits).numpy(), compiled(logits).numpy()
            assert not np.array_equal(first, second)
            np.testing.assert_allclose(first.sum(-1), 1.0, rtol=1e-5)

    def test_noise_follows_the_gumbel_law(self):
        generator = keras.random.SeedGenerator(7)
        compiled = tf.function(lambda: keras_gumbel.ops.gumbel_noise((50_000,), seed=generator), jit_compile=True)
        first, second = compiled().numpy(), compiled().numpy()
        assert scipy.stats.kstest(first, scipy.stats.gumbel_r.cdf).pvalue > 1e-3
        assert scipy.stats.kstest(second, scipy.stats.gumbel_r.cdf).pvalue > 1e-3
        assert abs(np.corrcoef(first, second)[0, 1]) < 5 / np.sqrt(first.size)

    def test_straight_through_frequencies_follow_softmax(self):
        logits = np.log(np.array([0.1, 0.2, 0.3, 0.4], "float32"))
        layer = keras_gumbel.StraightThroughGumbel(seed=8)
        compiled = tf.function(lambda batch: layer(batch, training=True), jit_compile=True)
        counts = compiled(np.tile(logits, (100_000, 1))).numpy().sum(0)
        assert scipy.stats.chisquare(counts, softmax(logits) * 100_000).pvalue > 1e-3

    def test_gradients_compile(self):
        layer = keras_gumbel.GumbelSoftmax(temperature=0.5, seed=9)
        logits = tf.Variable(tf.zeros((32, 5)))

        @tf.function(jit_compile=True)
        def gradient():
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(layer(logits, training=True) * tf.range(5.0))
            return tape.gradient(loss, logits)

        values = gradient().numpy()
        assert np.isfinite(values).all() and np.abs(values).sum() > 0
