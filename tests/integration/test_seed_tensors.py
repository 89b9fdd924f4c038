"""Seed tensors, the functional way to seed an op, on every backend and inside its compiler.

Every op takes the seeds `keras.random` takes: on JAX a key (`jax.random.key`, or the
two integers of `jax.random.PRNGKey`), on TensorFlow two integers as `tf.random.stateless_*`
takes them, on PyTorch two integers `[a, b]` (drawn as the integer seed `(a + b) mod 2**31`).
Inside `jax.jit` and `tf.function` the key is a traced argument, so each call draws from
the key it is given. CI runs this file under KERAS_BACKEND=tensorflow, jax and torch.
"""

import keras
import numpy as np
import pytest
import scipy.stats
from helpers import gradient
from helpers import softmax
from helpers import to_numpy

import keras_gumbel
from keras_gumbel import ops as gumbel_ops

BACKEND = keras.backend.backend()
LOGITS = np.log(np.array([0.1, 0.2, 0.3, 0.4], "float32"))

# Every op that draws, as a function of (logits, seed).
OPS = {
    "gumbel_softmax": lambda x, seed: gumbel_ops.gumbel_softmax(x, 0.5, seed=seed),
    "gumbel_softmax_hard": lambda x, seed: gumbel_ops.gumbel_softmax(x, 0.5, hard=True, seed=seed),
    "log_gumbel_softmax": lambda x, seed: gumbel_ops.log_gumbel_softmax(x, 0.5, seed=seed),
    "gumbel_rao": lambda x, seed: gumbel_ops.gumbel_rao(x, 0.5, num_draws=3, seed=seed),
    "reinmax": lambda x, seed: gumbel_ops.reinmax(x, 0.5, seed=seed),
    "gumbel_top_k": lambda x, seed: gumbel_ops.gumbel_top_k(x, 2, seed=seed),
    "relaxed_top_k": lambda x, seed: gumbel_ops.relaxed_top_k(x, 2, 0.5, seed=seed),
    "relaxed_bernoulli": lambda x, seed: gumbel_ops.relaxed_bernoulli(x, 0.5, seed=seed),
    "relaxed_bernoulli_logits": lambda x, seed: gumbel_ops.relaxed_bernoulli_logits(x, 0.5, seed=seed),
}


def make_seed(index):
    """The backend's native seed tensor number `index`."""
    if BACKEND == "jax":
        import jax

        return jax.random.key(index)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.constant([index, 7], tf.int32)
    return keras.ops.convert_to_tensor(np.array([index, 7], "int32"))


def compiled(function):
    """`function(x, seed)` compiled the backend's functional way, the seed a traced argument."""
    if BACKEND == "jax":
        import jax

        return jax.jit(function)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(function)
    return function  # PyTorch's seed tensor is read on the host: eager only.


def batch(rows):
    return np.tile(LOGITS, (rows, 1))


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("compile_it", [False, True], ids=["eager", "compiled"])
def test_the_same_key_gives_the_same_draw_and_another_key_another(name, compile_it):
    function = compiled(OPS[name]) if compile_it else OPS[name]
    x = batch(64)
    first, again, other = (to_numpy(function(x, make_seed(i))) for i in (3, 3, 4))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    # Compiled and eager draw the same values from the same key.
    np.testing.assert_allclose(to_numpy(compiled(OPS[name])(x, make_seed(3))), to_numpy(OPS[name](x, make_seed(3))))


@pytest.mark.parametrize("name", sorted(set(OPS) - {"gumbel_top_k"}))
def test_gradients_flow_through_every_op_seeded_with_a_key(name):
    x = batch(32)
    weights = np.random.default_rng(1).normal(size=x.shape).astype("float32")

    def objective(logits):
        return keras.ops.sum(keras.ops.multiply(OPS[name](logits, make_seed(2)), weights))

    eager = gradient(objective, x)
    assert np.isfinite(eager).all() and np.abs(eager).sum() > 0
    if BACKEND == "jax":
        import jax

        # jit(grad) with the key a traced argument: the same gradient as eager.
        jitted = jax.jit(jax.grad(lambda logits, key: keras.ops.sum(OPS[name](logits, key) * weights)))
        np.testing.assert_allclose(np.asarray(jitted(x, make_seed(2))), eager, rtol=1e-5, atol=1e-6)


def test_a_key_draws_the_categorical_law_and_different_keys_draw_independently():
    rows = 20_000
    sample = compiled(OPS["gumbel_softmax_hard"])
    first = to_numpy(sample(batch(rows), make_seed(11)))
    probabilities = softmax(LOGITS)
    assert scipy.stats.chisquare(first.sum(0), probabilities * rows).pvalue > 1e-3
    # Two keys' choices for the same row agree with probability sum(p^2) if independent (0.3 here).
    second = to_numpy(sample(batch(rows), make_seed(12)))
    agreements = int((first * second).sum())
    assert scipy.stats.binomtest(agreements, rows, float((probabilities**2).sum())).pvalue > 1e-3


def test_gumbel_rao_draws_its_conditional_noise_from_a_key_of_its_own():
    # With the key's own stream reused, the conditional noise would be the sample's noise: its gradient
    # (the average over draws of relaxed samples) would then depend on the key only through that one draw.
    x = batch(2_000)
    weights = np.random.default_rng(0).normal(size=x.shape).astype("float32")

    def objective(seed):
        return lambda logits: keras.ops.sum(
            keras.ops.multiply(gumbel_ops.gumbel_rao(logits, 0.5, num_draws=1, seed=seed), weights)
        )

    def straight_through(seed):
        return lambda logits: keras.ops.sum(
            keras.ops.multiply(gumbel_ops.gumbel_softmax(logits, 0.5, hard=True, seed=seed), weights)
        )

    # The forward sample is the same as the hard Gumbel-Softmax's with the same key ...
    np.testing.assert_array_equal(
        to_numpy(gumbel_ops.gumbel_rao(x, seed=make_seed(5))),
        to_numpy(gumbel_ops.gumbel_softmax(x, hard=True, seed=make_seed(5))),
    )
    # ... but the backward pass relaxes at a fresh conditional draw, not at the forward's noise.
    assert not np.allclose(gradient(objective(make_seed(5)), x), gradient(straight_through(make_seed(5)), x))


@pytest.mark.parametrize(
    "seed, message",
    [
        (np.zeros(3, "int32"), "shape \\(3,\\)"),
        (np.zeros(2, "float32"), "dtype float32"),
        (np.zeros((2, 2), "int32"), "shape \\(2, 2\\)"),
    ],
)
def test_bad_seed_tensors_are_refused_with_the_argument_named(seed, message):
    with pytest.raises(ValueError, match=f"argument `seed`.*{message}"):
        gumbel_ops.gumbel_softmax(batch(2), seed=seed)


def test_a_float_seed_is_refused_naming_the_accepted_kinds():
    with pytest.raises(TypeError, match="argument `seed`.*seed tensor"):
        gumbel_ops.gumbel_softmax(batch(2), seed=1.5)


@pytest.mark.skipif(BACKEND != "jax", reason="JAX's stateless_call and jax.jit")
def test_a_layer_in_a_pure_jax_loop_draws_a_new_sample_each_step():
    import jax

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras_gumbel.StraightThroughGumbel(temperature=0.5, seed=1)(inputs))
    trainable = [v.value for v in model.trainable_variables]
    state = [v.value for v in model.non_trainable_variables]

    @jax.jit
    def step(state, x):
        outputs, state = model.stateless_call(trainable, state, x, training=True)
        return outputs, state

    x = batch(1_000)
    first, state = step(state, x)
    second, state = step(state, x)
    assert not np.array_equal(np.asarray(first), np.asarray(second))
    # The stream is the layer's SeedGenerator state: replaying it replays the draws.
    replay, _ = step([v.value for v in model.non_trainable_variables], x)
    np.testing.assert_array_equal(np.asarray(replay), np.asarray(first))
    counts = np.asarray(first).sum(0) + np.asarray(second).sum(0)
    assert scipy.stats.chisquare(counts, softmax(LOGITS) * 2_000).pvalue > 1e-3
