"""The permutation ops: `max_weight_assignment` against scipy, `sinkhorn` against a NumPy Sinkhorn, `gumbel_sinkhorn`.

Backend-agnostic (CI runs this file on TensorFlow, JAX and PyTorch) except the
tests that name a TensorFlow mode (tf.function, XLA, a served SavedModel).
"""

import itertools
import math

import keras
import numpy as np
import pytest
import scipy.optimize
import scipy.special
import scipy.stats
from helpers import gradient
from helpers import numpy_sinkhorn
from helpers import to_numpy

import keras_gumbel

ops = keras_gumbel.ops
BACKEND = keras.backend.backend()
tensorflow_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="a TensorFlow mode")


def _float64_available():
    if BACKEND != "jax":
        return True
    import jax

    return bool(jax.config.jax_enable_x64)  # JAX computes float64 as float32 unless x64 is enabled


FLOAT64 = _float64_available()


def scipy_assignment(weights):
    """Columns of scipy's maximum-weight assignment of each matrix; -inf entries forbidden (None if impossible)."""
    results = []
    for matrix in np.asarray(weights, np.float64).reshape(-1, *weights.shape[-2:]):
        cost = np.where(np.isneginf(matrix), 1e12, -matrix)
        rows, columns = scipy.optimize.linear_sum_assignment(cost)
        results.append(columns if np.isfinite(matrix[rows, columns]).all() else None)
    return results


# ---------------------------------------------------------------------------------------------------------------
# The exact assignment.


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 10, 15, 20])
def test_assignment_is_scipys_on_random_matrices(size):
    # Continuous random weights: ties have probability 0, so the optimum is unique and the permutations must agree.
    weights = np.random.default_rng(size).normal(size=(200, size, size)).astype("float32")
    ours = to_numpy(ops.max_weight_assignment(weights))
    assert ours.shape == (200, size) and ours.dtype == np.int32
    np.testing.assert_array_equal(ours, np.stack(scipy_assignment(weights)))


@pytest.mark.parametrize("size", [25, 40])
def test_assignment_is_scipys_on_larger_uniform_matrices(size):
    weights = np.random.default_rng(size).uniform(size=(20, size, size)).astype("float32")
    np.testing.assert_array_equal(to_numpy(ops.max_weight_assignment(weights)), np.stack(scipy_assignment(weights)))


def test_assignment_reaches_the_optimum_on_matrices_full_of_ties():
    # Small integers: many optimal permutations; ours must be one of them (a permutation with scipy's total).
    weights = np.random.default_rng(0).integers(0, 3, size=(300, 6, 6)).astype("float32")
    ours = to_numpy(ops.max_weight_assignment(weights))
    for matrix, columns, best in zip(weights, ours, scipy_assignment(weights)):
        assert sorted(columns) == list(range(6))
        assert matrix[np.arange(6), columns].sum() == matrix[np.arange(6), best].sum()


def test_assignment_avoids_forbidden_entries_whenever_it_can():
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(400, 6, 6)).astype("float32")
    weights[rng.uniform(size=weights.shape) < 0.45] = -np.inf
    ours = to_numpy(ops.max_weight_assignment(weights))
    hard = to_numpy(ops.sinkhorn(weights, hard=True))
    feasible = 0
    for columns, sample, best in zip(ours, hard, scipy_assignment(weights)):
        assert sorted(columns) == list(range(6))  # always a permutation
        if best is None:  # every permutation meets a -inf: no valid choice
            assert np.isnan(sample).all()
            continue
        feasible += 1
        np.testing.assert_array_equal(columns, best)
        np.testing.assert_array_equal(sample, np.eye(6, dtype="float32")[best])
    assert 100 < feasible < 400  # both kinds occur


def test_assignment_keeps_batch_shapes_and_accepts_an_empty_batch():
    weights = np.random.default_rng(2).normal(size=(2, 3, 4, 4)).astype("float32")
    ours = to_numpy(ops.max_weight_assignment(weights))
    assert ours.shape == (2, 3, 4)
    np.testing.assert_array_equal(ours.reshape(6, 4), np.stack(scipy_assignment(weights)))
    assert to_numpy(ops.max_weight_assignment(np.zeros((0, 4, 4), "float32"))).shape == (0, 4)
    assert to_numpy(ops.max_weight_assignment(np.zeros((4, 4), "float32"))).shape == (4,)


@pytest.mark.skipif(not FLOAT64, reason="float64 is disabled (JAX without x64)")
def test_assignment_in_float64_separates_what_float32_cannot():
    # The swap wins by 2e-12, which float64 weights hold (float32 would round it away: a tie).
    weights = np.array([[1.0, 1.0 + 2e-12], [1.0, 1.0]])
    assert scipy_assignment(weights)[0].tolist() == [1, 0]
    np.testing.assert_array_equal(to_numpy(ops.max_weight_assignment(keras.ops.cast(weights, "float64"))), [1, 0])


# ---------------------------------------------------------------------------------------------------------------
# The Sinkhorn operator and the samples.


@pytest.mark.parametrize("temperature, num_iterations", [(1.0, 1), (0.5, 20), (0.1, 50), (3.0, 5)])
def test_sinkhorn_is_menas_sinkhorn(temperature, num_iterations):
    log_alpha = np.random.default_rng(3).normal(size=(16, 6, 6)).astype("float32")
    ours = to_numpy(ops.sinkhorn(log_alpha, temperature, num_iterations))
    np.testing.assert_allclose(ours, numpy_sinkhorn(log_alpha, temperature, num_iterations), rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(ours.sum(-2), 1.0, rtol=1e-5)  # the last normalisation is over the columns


def test_sinkhorn_converges_to_a_doubly_stochastic_matrix_and_at_low_temperature_to_the_assignment():
    log_alpha = np.random.default_rng(4).normal(size=(32, 5, 5)).astype("float32")
    converged = to_numpy(ops.sinkhorn(log_alpha, 1.0, num_iterations=200))
    np.testing.assert_allclose(converged.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(converged.sum(-2), 1.0, atol=1e-5)
    # Mena et al., theorem 1: S(X / t) -> M(X), the assignment's permutation matrix, as t -> 0.
    exact = np.eye(5)[np.stack(scipy_assignment(log_alpha))]
    errors = [
        np.abs(to_numpy(ops.sinkhorn(log_alpha, temperature, num_iterations=1000)) - exact).mean()
        for temperature in (0.3, 0.1, 0.03, 0.01)
    ]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.01, errors
    cold = to_numpy(ops.sinkhorn(log_alpha, 0.01, num_iterations=1000))
    np.testing.assert_array_equal(cold.argmax(-1), exact.argmax(-1))


def test_forbidden_entries_get_zero_mass_and_zero_gradient():
    log_alpha = np.random.default_rng(5).normal(size=(8, 4, 4)).astype("float32")
    log_alpha[:, 0, 1] = log_alpha[:, 2, 3] = -np.inf
    upstream = np.random.default_rng(6).normal(size=log_alpha.shape).astype("float32")
    for hard in (False, True):
        sample = to_numpy(ops.gumbel_sinkhorn(log_alpha, 0.5, hard=hard, seed=1))
        assert (sample[:, 0, 1] == 0).all() and (sample[:, 2, 3] == 0).all()
        grad = gradient(
            lambda x, hard=hard: keras.ops.sum(
                keras.ops.multiply(ops.gumbel_sinkhorn(x, 0.5, hard=hard, seed=1), upstream)
            ),
            log_alpha,
        )
        assert np.isfinite(grad).all()
        assert (grad[:, 0, 1] == 0).all() and (grad[:, 2, 3] == 0).all()
        assert np.abs(grad).sum() > 0


@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_sinkhorn_is_sinkhorn_of_the_perturbed_scores(hard):
    # An integer seed draws the same noise in every op: gumbel_noise(shape, seed) is the g of gumbel_sinkhorn.
    log_alpha = np.random.default_rng(7).normal(size=(64, 5, 5)).astype("float32")
    perturbed = log_alpha + to_numpy(ops.gumbel_noise(log_alpha.shape, seed=11))
    sample = to_numpy(ops.gumbel_sinkhorn(log_alpha, 0.7, 15, hard=hard, seed=11))
    if hard:
        np.testing.assert_array_equal(sample, np.eye(5, dtype="float32")[np.stack(scipy_assignment(perturbed))])
    else:
        np.testing.assert_allclose(sample, numpy_sinkhorn(perturbed, 0.7, 15), rtol=2e-4, atol=1e-6)


def test_hard_samples_are_the_assignment_of_the_relaxed_ones_and_share_their_gradient():
    # log S = (X + g) / t + a_i + b_j: the assignment of log S is that of X + g, at any temperature.
    log_alpha = np.random.default_rng(8).normal(size=(2000, 4, 4)).astype("float32")
    soft = to_numpy(ops.gumbel_sinkhorn(log_alpha, 0.3, 10, seed=12))
    hard = to_numpy(ops.gumbel_sinkhorn(log_alpha, 0.3, 10, hard=True, seed=12))
    assert np.isin(hard, (0.0, 1.0)).all()
    np.testing.assert_array_equal(hard.sum(-1), 1.0)
    np.testing.assert_array_equal(hard.sum(-2), 1.0)
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(hard.argmax(-1), np.stack(scipy_assignment(np.log(soft))))
    upstream = np.random.default_rng(9).normal(size=(64, 4, 4)).astype("float32")
    gradients = [
        gradient(
            lambda x, h=h: keras.ops.sum(
                keras.ops.multiply(ops.gumbel_sinkhorn(x, 0.3, 10, hard=h, seed=13), upstream)
            ),
            x,
        )
        for h, x in ((False, log_alpha[:64]), (True, log_alpha[:64]))
    ]
    np.testing.assert_allclose(gradients[0], gradients[1], rtol=1e-5, atol=1e-7)


def test_hard_samples_follow_the_gumbel_matching_law():
    # P(sigma) = P(sigma maximises sum_i X[i, sigma(i)] + g[i, sigma(i)]): against a NumPy Monte Carlo of the
    # same law by enumerating the 6 permutations, a two-sample chi-square (20,000 draws each).
    log_alpha = np.array([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0], [-0.5, 1.0, 0.2]], "float32")
    num_draws = 20_000
    ours = to_numpy(ops.gumbel_sinkhorn(np.tile(log_alpha, (num_draws, 1, 1)), hard=True, seed=14)).argmax(-1)
    permutations = np.array(list(itertools.permutations(range(3))))
    noise = np.random.default_rng(15).gumbel(size=(num_draws, 3, 3))
    totals = (log_alpha + noise)[:, np.arange(3), permutations].sum(-1)  # [draws, 6]
    codes = {tuple(p): code for code, p in enumerate(permutations.tolist())}
    ours_counts = np.bincount([codes[tuple(row)] for row in ours.tolist()], minlength=6)
    table = np.stack([ours_counts, np.bincount(totals.argmax(-1), minlength=6)])
    assert table.min() > 100  # every permutation is likely enough for the chi-square approximation
    assert scipy.stats.chi2_contingency(table).pvalue > 1e-4


def test_low_precision_scores_are_computed_in_float32_and_returned_in_their_dtype():
    log_alpha = np.random.default_rng(16).normal(size=(8, 4, 4))
    for dtype in ("float16", "bfloat16") + (("float64",) if FLOAT64 else ()):
        x = keras.ops.cast(log_alpha, dtype)
        for hard in (False, True):
            sample = ops.gumbel_sinkhorn(x, 0.5, hard=hard, seed=2)
            assert keras.backend.standardize_dtype(sample.dtype) == dtype
            values = to_numpy(keras.ops.cast(sample, "float32"))
            assert np.isfinite(values).all()
            if hard:
                np.testing.assert_array_equal(values.sum(-1), 1.0)


def test_invalid_scores_give_nan_for_the_hard_matrix():
    log_alpha = np.zeros((3, 3, 3), "float32")
    log_alpha[0, 1, 1] = np.nan
    log_alpha[1, 0, 2] = np.inf
    hard = to_numpy(ops.sinkhorn(log_alpha, hard=True))
    assert np.isnan(hard[:2]).all()
    np.testing.assert_array_equal(hard[2].sum(-1), 1.0)


# ---------------------------------------------------------------------------------------------------------------
# Errors.


@pytest.mark.parametrize("name", ["sinkhorn", "gumbel_sinkhorn", "max_weight_assignment"])
@pytest.mark.parametrize("shape", [(4,), (), (3, 4), (2, 3, 4), (0, 0)])
def test_scores_that_are_not_square_matrices_are_a_named_error(name, shape):
    argument = "weights" if name == "max_weight_assignment" else "log_alpha"
    with pytest.raises(ValueError, match=f"`{argument}`.*square"):
        getattr(ops, name)(np.zeros(shape, "float32"))


def test_integer_scores_are_a_type_error():
    with pytest.raises(TypeError, match="floating-point"):
        ops.gumbel_sinkhorn(np.zeros((3, 3), "int32"))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"temperature": 0.0}, ValueError, "temperature"),
        ({"temperature": -1.0}, ValueError, "temperature"),
        ({"temperature": math.nan}, ValueError, "temperature"),
        ({"temperature": "1"}, TypeError, "temperature"),
        ({"num_iterations": 0}, ValueError, "num_iterations"),
        ({"num_iterations": 2.5}, TypeError, "num_iterations"),
        ({"num_iterations": True}, TypeError, "num_iterations"),
        ({"hard": 1}, TypeError, "hard"),
        ({"seed": 1.5}, TypeError, "seed"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=f"`{match}`"):
        ops.gumbel_sinkhorn(np.zeros((3, 3), "float32"), **kwargs)


@tensorflow_only
def test_an_unknown_matrix_size_in_a_tf_function_is_a_named_error():
    import tensorflow as tf

    traced = tf.function(ops.gumbel_sinkhorn, input_signature=[tf.TensorSpec([None, None, None])])
    with pytest.raises(ValueError, match="known size N"):
        traced.get_concrete_function()


# ---------------------------------------------------------------------------------------------------------------
# Where users run it (the samplers join the execution-mode matrix; these are the deterministic ops).


@tensorflow_only
@pytest.mark.parametrize("jit_compile", [False, True])
def test_assignment_in_a_tf_function_and_under_xla(jit_compile):
    import tensorflow as tf

    weights = np.random.default_rng(17).normal(size=(50, 8, 8)).astype("float32")
    compiled = tf.function(ops.max_weight_assignment, jit_compile=jit_compile)
    np.testing.assert_array_equal(compiled(weights).numpy(), np.stack(scipy_assignment(weights)))
    hard = tf.function(lambda x: ops.sinkhorn(x, 0.5, hard=True), jit_compile=jit_compile)(weights).numpy()
    np.testing.assert_array_equal(hard, np.eye(8, dtype="float32")[np.stack(scipy_assignment(weights))])


@tensorflow_only
def test_assignment_in_a_served_savedmodel(tmp_path):
    import tensorflow as tf

    module = tf.Module()
    module.assign = tf.function(ops.max_weight_assignment, input_signature=[tf.TensorSpec([None, 6, 6])])
    tf.saved_model.save(module, str(tmp_path))
    text = (tmp_path / "saved_model.pb").read_bytes()
    assert b"PyFunc" not in text and b"EagerPyFunc" not in text  # no Python callback
    served = tf.saved_model.load(str(tmp_path))
    weights = np.random.default_rng(18).normal(size=(30, 6, 6)).astype("float32")
    np.testing.assert_array_equal(served.assign(weights).numpy(), np.stack(scipy_assignment(weights)))


@pytest.mark.skipif(BACKEND != "jax", reason="jax.jit")
def test_assignment_under_jax_jit():
    import jax

    weights = np.random.default_rng(19).normal(size=(50, 8, 8)).astype("float32")
    np.testing.assert_array_equal(
        np.asarray(jax.jit(ops.max_weight_assignment)(weights)), np.stack(scipy_assignment(weights))
    )
