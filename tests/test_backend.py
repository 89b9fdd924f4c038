"""keras_gumbel._backend: the backend-specific routes agree with the backend-agnostic definitions."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import softmax
from helpers import to_numpy

from keras_gumbel import _backend


@pytest.mark.parametrize("num_classes", [4, 16, 17, 100])  # both sides of the short-row route
def test_softmax_routes_agree_with_softmax(num_classes):
    x = np.random.default_rng(0).normal(size=(8, num_classes)).astype("float32")
    np.testing.assert_allclose(to_numpy(_backend.softmax(x, -1)), softmax(x), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_max_keeps_nan_and_accepts_an_empty_batch(jit_compile):
    maximum = tf.function(lambda x: _backend.max(x, axis=1), jit_compile=jit_compile)
    values = maximum(tf.constant([[1.0, np.nan, 2.0], [0.0, 3.0, 1.0]])).numpy()
    assert np.isnan(values[0]) and values[1] == 3.0
    assert maximum(tf.zeros((0, 3))).shape == (0,)


def test_uniforms_lie_in_tiny_to_one_and_xla_draws_its_own_stream():
    eager = to_numpy(_backend.uniform_positive((100_000,), seed=3))
    assert eager.min() >= np.finfo("float32").tiny and eager.max() < 1
    xla = tf.function(lambda: _backend.uniform_positive((100_000,), seed=3), jit_compile=True)().numpy()
    assert xla.min() >= np.finfo("float32").tiny and xla.max() < 1
    assert not np.array_equal(eager, xla)  # documented: the same seed, another stream under XLA


@pytest.mark.parametrize("seed", [-1, 2**31, 2**63 - 1])
def test_fold_seed_keeps_tensorflow_seeds_and_folds_elsewhere(seed):
    folded = _backend.fold_seed(seed)
    assert folded == (seed if keras.backend.backend() == "tensorflow" else seed % 2**31)
    assert _backend.fold_seed(None) is None
