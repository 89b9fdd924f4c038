"""GumbelAttention: modes and `hard`, the temperature switch at inference, masking, gradients, errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import softmax
from helpers import to_numpy

import keras_gumbel

RNG = np.random.default_rng(0)
QUERY = RNG.normal(size=(4, 8)).astype("float32")
KEYS = RNG.normal(size=(4, 6, 8)).astype("float32")
VALUES = RNG.normal(size=(4, 6, 3)).astype("float32")
SCORES = np.einsum("bd,bnd->bn", QUERY, KEYS) / np.sqrt(8)
# Every kind of weights: Gumbel-Softmax, straight-through (hard), soft, and the deterministic argmax.
CONFIGURATIONS = {
    "gumbel_softmax": {},
    "hard": {"hard": True},
    "softmax": {"mode": "softmax"},
    "softmax, hard": {"mode": "softmax", "hard": True},
}


def test_inference_temperature_switches_between_soft_and_hard_attention():
    layer = keras_gumbel.GumbelAttention(mode="gumbel_softmax", temperature=1.0, seed=0)
    out, weights = layer(QUERY, KEYS, VALUES, return_attention_weights=True)
    np.testing.assert_allclose(to_numpy(weights), softmax(SCORES), rtol=1e-5)
    np.testing.assert_allclose(to_numpy(out), np.einsum("bn,bnv->bv", softmax(SCORES), VALUES), rtol=1e-4, atol=1e-6)
    layer.temperature.assign(1e-3)
    _, hard = layer(QUERY, KEYS, VALUES, return_attention_weights=True)
    np.testing.assert_allclose(to_numpy(hard), np.eye(6)[SCORES.argmax(-1)], atol=1e-6)


def test_hard_attends_to_exactly_one_element():
    layer = keras_gumbel.GumbelAttention(hard=True, seed=1)
    out, weights = layer(QUERY, KEYS, VALUES, training=True, return_attention_weights=True)
    weights = to_numpy(weights)
    assert set(np.unique(weights)) == {0.0, 1.0}
    np.testing.assert_allclose(to_numpy(out), VALUES[np.arange(4), weights.argmax(-1)], rtol=1e-6)
    _, mode = layer(QUERY, KEYS, VALUES, return_attention_weights=True)
    np.testing.assert_array_equal(to_numpy(mode), np.eye(6)[SCORES.argmax(-1)])


def test_softmax_mode_never_adds_noise_and_noise_at_inference_is_optional():
    soft = keras_gumbel.GumbelAttention(mode="softmax", seed=2)
    np.testing.assert_array_equal(
        to_numpy(soft(QUERY, KEYS, training=True)), to_numpy(soft(QUERY, KEYS, training=True))
    )
    noisy = keras_gumbel.GumbelAttention(hard=True, sample_at_inference=True, seed=3)
    query, keys = np.zeros((256, 8), "float32"), RNG.normal(size=(256, 6, 8)).astype("float32")
    assert not np.array_equal(to_numpy(noisy(query, keys)), to_numpy(noisy(query, keys)))


def test_mask_excludes_elements():
    mask = np.ones((4, 6), bool)
    mask[:, SCORES.argmax(-1)] = False
    for name, configuration in CONFIGURATIONS.items():
        layer = keras_gumbel.GumbelAttention(seed=4, **configuration)
        for training in (False, True):
            _, weights = layer(QUERY, KEYS, VALUES, mask=mask, training=training, return_attention_weights=True)
            assert (to_numpy(weights)[~mask] == 0).all(), name


def test_gradients_reach_the_query_projection_in_every_mode():
    for name, configuration in CONFIGURATIONS.items():
        layer = keras_gumbel.GumbelAttention(seed=5, **configuration)
        query = tf.Variable(QUERY)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.sin(3 * layer(query, KEYS, VALUES, training=True)))
        gradient = tape.gradient(loss, query).numpy()
        assert np.isfinite(gradient).all() and np.abs(gradient).sum() > 0, name


def test_gradients_are_the_exact_soft_attention_gradient_and_the_relaxed_one_for_hard():
    c = RNG.normal(size=(3,)).astype("float32")

    def query_gradient(mode, hard=False, seed=12, temperature=0.7):
        layer = keras_gumbel.GumbelAttention(mode=mode, hard=hard, temperature=temperature, seed=seed)
        query = tf.Variable(QUERY)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(query, KEYS, VALUES, training=True) * c)  # linear in the output
        return tape.gradient(loss, query).numpy()

    # Soft attention, by hand: dL/dq = K^T [J(w) (V c)] / (t sqrt(d)), w = softmax(scores / t).
    weights = softmax(SCORES / 0.7)
    upstream = VALUES @ c  # [batch, set]
    d_scores = weights * (upstream - (weights * upstream).sum(-1, keepdims=True)) / 0.7
    expected = np.einsum("bn,bnd->bd", d_scores, KEYS) / np.sqrt(8)
    np.testing.assert_allclose(query_gradient("softmax"), expected, rtol=1e-4, atol=1e-6)
    # hard=True's backward is the relaxed weights' gradient: for the same noise (same seed), or with none.
    np.testing.assert_allclose(query_gradient("gumbel_softmax", hard=True), query_gradient("gumbel_softmax"), rtol=1e-5)
    np.testing.assert_allclose(query_gradient("softmax", hard=True), expected, rtol=1e-4, atol=1e-6)


def test_functional_model_with_attention_weights_and_errors():
    query, keys, values = keras.Input((8,)), keras.Input((None, 8)), keras.Input((None, 3))
    layer = keras_gumbel.GumbelAttention(hard=True, temperature=0.5, seed=6, name="pick")
    out, weights = layer(query, keys, values, return_attention_weights=True)
    assert tuple(out.shape) == (None, 3) and tuple(weights.shape) == (None, None)
    with pytest.raises(ValueError, match="mode='hard'"):
        keras_gumbel.GumbelAttention(mode="hard")
    with pytest.raises(TypeError, match="hard=1"):
        keras_gumbel.GumbelAttention(hard=1)


def test_keras_masks_of_keys_are_honoured_and_empty_sets_give_zeros():
    tokens, query = keras.Input((3,), dtype="int32"), keras.Input((4,))
    keys = keras.layers.Embedding(10, 4, mask_zero=True)(tokens)
    for name, configuration in CONFIGURATIONS.items():
        layer = keras_gumbel.GumbelAttention(seed=7, **configuration)
        out, weights = layer(query, keys, return_attention_weights=True)
        model = keras.Model([query, tokens], [out, weights])
        ids = np.tile([[1, 2, 0], [0, 0, 0]], (64, 1))
        for training in (False, True):
            outputs = model([np.ones((128, 4), "float32"), ids], training=training)
            out_value, weight_value = (to_numpy(t) for t in outputs)
            # Padding (token 0) is never attended; a set of padding only gets zero weights and a zero output.
            assert (weight_value[ids == 0] == 0).all(), name
            np.testing.assert_allclose(weight_value[0::2].sum(-1), 1.0, rtol=1e-5)
            assert (weight_value[1::2] == 0).all() and (out_value[1::2] == 0).all()


def test_empty_sets_keep_gradients_finite():
    mask = np.ones((4, 6), bool)
    mask[1] = False
    query = tf.Variable(QUERY)
    layer = keras_gumbel.GumbelAttention(hard=True, seed=8)
    with tf.GradientTape() as tape:
        output = layer(query, KEYS, VALUES, mask=mask, training=True)
        loss = tf.reduce_sum(output)
    gradient = tape.gradient(loss, query).numpy()
    assert (output.numpy()[1] == 0).all() and np.isfinite(output.numpy()).all()
    assert np.isfinite(gradient).all() and (gradient[1] == 0).all()


def test_unknown_feature_size_in_a_traced_function():
    layer = keras_gumbel.GumbelAttention(mode="softmax", seed=9)
    spec = [tf.TensorSpec([None, None]), tf.TensorSpec([None, None, None])]
    attend = tf.function(lambda q, k: layer(q, k, return_attention_weights=True)[1], input_signature=spec)
    np.testing.assert_allclose(attend(QUERY, KEYS).numpy(), softmax(SCORES), rtol=1e-5)


def test_softmax_mode_with_hard_is_the_deterministic_argmax():
    layer = keras_gumbel.GumbelAttention(mode="softmax", hard=True, seed=10)
    argmax = np.eye(6)[SCORES.argmax(-1)]
    for training in (True, True, False):  # no noise, in training either
        _, weights = layer(QUERY, KEYS, VALUES, training=training, return_attention_weights=True)
        np.testing.assert_array_equal(to_numpy(weights), argmax)


def test_mode_straight_through_is_a_deprecated_spelling_of_hard():
    # `mode="straight_through"` (before 0.3.0) still works until 0.4.0: it warns and is `hard=True`.
    match = r'GumbelAttention\'s mode="straight_through" is deprecated.*use GumbelAttention\(hard=True\)'
    with pytest.warns(FutureWarning, match=match):
        old = keras_gumbel.GumbelAttention(mode="straight_through", temperature=0.7, seed=11, name="pick")
    with pytest.warns(FutureWarning, match=match):
        positional = keras_gumbel.GumbelAttention("straight_through", 0.7, seed=11, name="pick")
    new = keras_gumbel.GumbelAttention(hard=True, temperature=0.7, seed=11, name="pick")
    assert (old.mode, old.hard) == ("gumbel_softmax", True)
    assert old.get_config() == positional.get_config() == new.get_config()
    query = tf.Variable(QUERY)
    for _ in range(2):  # the same stream, draw after draw, and the same gradient
        draws, gradients = [], []
        for layer in (old, new):
            with tf.GradientTape() as tape:
                draws.append(layer(query, KEYS, VALUES, training=True, return_attention_weights=True)[1])
                loss = tf.reduce_sum(tf.sin(3 * draws[-1]) * SCORES)
            gradients.append(tape.gradient(loss, query).numpy())
        np.testing.assert_array_equal(draws[0].numpy(), draws[1].numpy())
        np.testing.assert_array_equal(gradients[0], gradients[1])


def test_assigning_the_old_modes_switches_hard_as_before():
    # Code written for 0.2 switches a trained layer between the three modes (examples/hard_attention.py did).
    layer = keras_gumbel.GumbelAttention(mode="softmax")
    with pytest.warns(FutureWarning, match="straight_through"):
        layer.mode = "straight_through"
    assert (layer.mode, layer.hard) == ("gumbel_softmax", True)
    np.testing.assert_array_equal(
        to_numpy(layer(QUERY, KEYS, return_attention_weights=True)[1]), np.eye(6)[SCORES.argmax(-1)]
    )
    layer.mode = "softmax"  # soft again, as 0.2 read it
    assert (layer.mode, layer.hard) == ("softmax", False)
    np.testing.assert_allclose(
        to_numpy(layer(QUERY, KEYS, return_attention_weights=True)[1]), softmax(SCORES), rtol=1e-5
    )
    layer.hard = True  # the new spelling: mode and hard are independent
    layer.mode = "gumbel_softmax"
    assert layer.hard is True
    with pytest.raises(ValueError, match="mode='hard'"):
        layer.mode = "hard"


def test_a_config_saved_before_0_3_0_loads_and_is_written_with_hard():
    config = keras_gumbel.GumbelAttention(hard=True, temperature=0.7, seed=11).get_config()
    old_config = {key: value for key, value in config.items() if key != "hard"}
    old_config["mode"] = "straight_through"
    with pytest.warns(FutureWarning, match="straight_through"):
        layer = keras_gumbel.GumbelAttention.from_config(old_config)
    assert layer.get_config() == config
    assert (config["mode"], config["hard"]) == ("gumbel_softmax", True)


class TestSeveralQueries:
    """Transformer-style queries [batch, num_queries, d], as keras.layers.Attention takes them."""

    rng = np.random.default_rng(7)
    query = rng.normal(size=(3, 5, 8)).astype("float32")
    keys = rng.normal(size=(3, 6, 8)).astype("float32")
    values = rng.normal(size=(3, 6, 2)).astype("float32")

    def test_softmax_mode_is_keras_dot_product_attention(self):
        layer = keras_gumbel.GumbelAttention(mode="softmax")
        ours = to_numpy(layer(self.query, self.keys, self.values))
        keras_attention = keras.layers.Attention()([self.query / np.sqrt(8.0), self.values, self.keys])
        assert ours.shape == (3, 5, 2)
        np.testing.assert_allclose(ours, to_numpy(keras_attention), rtol=1e-5, atol=1e-6)

    def test_each_query_is_its_own_single_query_call(self):
        layer = keras_gumbel.GumbelAttention(hard=True)
        mask = np.ones((3, 6), bool)
        mask[:, 0] = False
        out, weights = layer(self.query, self.keys, self.values, mask=mask, return_attention_weights=True)
        assert tuple(weights.shape) == (3, 5, 6)
        for q in range(5):
            single_out, single_weights = layer(
                self.query[:, q], self.keys, self.values, mask=mask, return_attention_weights=True
            )
            np.testing.assert_array_equal(to_numpy(weights)[:, q], to_numpy(single_weights))
            np.testing.assert_allclose(to_numpy(out)[:, q], to_numpy(single_out), rtol=1e-6)
        assert (to_numpy(weights)[..., 0] == 0).all()

    def test_every_query_samples_from_its_own_scores(self):
        layer = keras_gumbel.GumbelAttention(hard=True, seed=3)
        # Two queries with opposite preferences over a set of two, 20,000 examples each.
        query = np.tile(np.array([[[1.0], [-1.0]]], "float32"), (20_000, 1, 1))
        keys = np.tile(np.array([[[0.0], [np.log(3.0)]]], "float32"), (20_000, 1, 1))  # p = 1/4, 3/4 for query 1
        _, weights = layer(query, keys, training=True, return_attention_weights=True)
        frequencies = to_numpy(weights).mean(0)
        tolerance = 5 * np.sqrt(0.25 * 0.75 / 20_000)  # five standard errors
        np.testing.assert_allclose(frequencies, [[0.25, 0.75], [0.75, 0.25]], atol=tolerance)

    def test_in_a_functional_model(self):
        query, keys = keras.Input((None, 8)), keras.Input((6, 8))
        output = keras_gumbel.GumbelAttention(mode="gumbel_softmax", seed=0)(query, keys)
        model = keras.Model([query, keys], output)
        assert model.output_shape == (None, None, 8)
        assert to_numpy(model([self.query, self.keys])).shape == (3, 5, 8)

    @pytest.mark.parametrize("shape", [(3,), (3, 5, 2, 8)])
    def test_other_query_ranks_are_named_errors(self, shape):
        with pytest.raises(ValueError, match="`query`"):
            keras_gumbel.GumbelAttention()(np.zeros(shape, "float32"), self.keys)
