"""keras_gumbel._sampling: the kernels behind the ops and layers (exact forwards, the custom-gradient helper)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import gradient
from helpers import to_numpy

from keras_gumbel import _sampling
from keras_gumbel import ops as gumbel_ops


@pytest.mark.parametrize("jit_compile", [False, True], ids=["tf.function", "xla"])
def test_hard_samples_stay_exact_under_graph_rewrites(jit_compile):
    # The reproducer: `one_hot * (max - max + 1)` came out 0.99999994 (347 entries) and rows summing to 0
    # or 2 under tf.function, where TensorFlow's optimiser rewrites arithmetic; selects cannot be rewritten.
    compiled = tf.function(
        lambda x, t: gumbel_ops.gumbel_softmax(x, temperature=t, hard=True, seed=1), jit_compile=jit_compile
    )
    rng = np.random.default_rng(0)
    sample = compiled(tf.constant(rng.standard_normal((100_000, 4)).astype("float32")), 1.0).numpy()
    assert np.isin(sample, (0.0, 1.0)).all()
    sample = compiled(tf.constant(rng.standard_normal((1000, 8)).astype("float32") * 1e4), 1e-4).numpy()
    np.testing.assert_array_equal(sample.sum(1), 1.0)


def test_rows_without_a_valid_choice_are_nan_rows_in_every_mode():
    logits = np.array([[1.0, np.nan, 2.0], [-np.inf] * 3, [0.0, np.inf, 1.0], [0.0, -np.inf, 1.0]], "float32")
    for jit_compile in (False, True):  # XLA's max skips NaN: _backend.max puts it back
        one_hot = tf.function(lambda x: _sampling.one_hot_of_argmax(x, 1), jit_compile=jit_compile)(logits).numpy()
        assert np.isnan(one_hot[:3]).all()
        np.testing.assert_array_equal(one_hot[3], [0.0, 0.0, 1.0])


def test_with_gradient_of_gives_the_value_forward_and_the_surrogates_gradient_backward():
    value = np.array([[0.0, 1.0, 0.0]], "float32")
    weights = np.array([[1.0, 2.0, 3.0]], "float32")

    def objective(x):
        surrogate = keras.ops.multiply(x, x)  # gradient 2x
        output = _sampling.with_gradient_of(keras.ops.convert_to_tensor(value), surrogate)
        return keras.ops.sum(keras.ops.multiply(output, weights))

    x = np.array([[0.5, -1.0, 2.0]], "float32")
    np.testing.assert_array_equal(to_numpy(_sampling.with_gradient_of(value, x * x)), value)
    np.testing.assert_allclose(gradient(objective, x), 2 * x * weights, rtol=1e-6)
