"""What the coupled-sample estimators share (estimators/_discrete.py): their uniforms, reward and noise shapes,
the surrogate whose gradient is the mean estimate, the antithetic sample count and the policy's logits.

All but the policy test run on every backend.
"""

import keras
import numpy as np
import pytest
from helpers import gradient
from helpers import to_numpy

from keras_gumbel.estimators import _discrete


def _float64_available():
    if keras.backend.backend() != "jax":
        return True
    import jax

    return bool(jax.config.jax_enable_x64)  # JAX computes float64 as float32 unless x64 is enabled


FLOAT64 = pytest.param(
    "float64", marks=pytest.mark.skipif(not _float64_available(), reason="float64 is disabled (JAX without x64)")
)


@pytest.mark.parametrize("dtype", ["float32", FLOAT64])
def test_uniforms_lie_in_tiny_to_one_and_follow_the_uniform_law(dtype):
    n = 100_000
    u = to_numpy(_discrete.uniform((n,), seed=keras.random.SeedGenerator(3), dtype=dtype))
    assert u.dtype == np.dtype(dtype)
    assert u.min() >= np.finfo(dtype).tiny and u.max() < 1.0
    assert np.isfinite(np.log(u)).all() and np.isfinite(np.log1p(-u)).all()
    # Mean 1/2 and variance 1/12; standard errors sqrt(1/12 / n) and sqrt(1/180 / n); 5 of them.
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) < 5 * np.sqrt(1 / 180 / n)


def test_uniforms_from_a_seed_generator_form_a_stream_and_an_integer_replays_its_draw():
    generator = keras.random.SeedGenerator(7)
    first, second = (to_numpy(_discrete.uniform((4,), seed=generator)) for _ in range(2))
    assert not np.array_equal(first, second)
    replay = keras.random.SeedGenerator(7)
    np.testing.assert_array_equal(to_numpy(_discrete.uniform((4,), seed=replay)), first)
    np.testing.assert_array_equal(to_numpy(_discrete.uniform((4,), seed=5)), to_numpy(_discrete.uniform((4,), seed=5)))


def test_a_reward_per_sample_is_broadcast_over_the_event_axes():
    reference = np.zeros((3, 2, 4, 5), "float32")  # noise [n, B, D, K]
    reward = np.arange(6, dtype="float32").reshape(3, 2)
    expanded = to_numpy(_discrete.per_sample("rewards", reward, reference))
    assert expanded.shape == (3, 2, 1, 1)
    np.testing.assert_array_equal(expanded[..., 0, 0], reward)
    assert to_numpy(_discrete.per_sample("rewards", np.float32(2.0), reference)).shape == (1, 1, 1, 1)


@pytest.mark.parametrize("shape", [(2, 3), (3, 2, 4, 5, 1), (3, 1, 4)])
def test_a_reward_that_is_not_one_value_per_sample_is_refused_with_the_noise_shape(shape):
    with pytest.raises(ValueError, match=r"argument `rewards`. Expected one value per sample: .*\(3, 2, 4, 5\)"):
        _discrete.per_sample("rewards", np.zeros(shape, "float32"), np.zeros((3, 2, 4, 5), "float32"))


@pytest.mark.parametrize(
    "noise_shape, logits_shape, event_axes",
    [((6, 2, 3), (2, 3), 0), ((6, 2, 3), (1, 3), 0), ((2, 3), (2, 3), 0), ((6, 2, 3, 4), (2, 3), 1)],
)
def test_noise_ending_with_the_logits_shape_is_accepted(noise_shape, logits_shape, event_axes):
    _discrete.check_noise("noise", np.zeros(noise_shape), np.zeros(logits_shape), event_axes)


@pytest.mark.parametrize("noise_shape", [(6, 3, 2), (3,), (6, 2, 4)])
def test_noise_not_ending_with_the_logits_shape_is_refused(noise_shape):
    with pytest.raises(ValueError, match=r"argument `noise`. Expected a shape that ends with the shape of `logits`"):
        _discrete.check_noise("noise", np.zeros(noise_shape), np.zeros((2, 3)))


def test_the_surrogate_loss_has_minus_the_mean_estimate_as_gradient():
    rng = np.random.default_rng(0)
    estimates = rng.normal(size=(5, 2, 3)).astype("float32")  # [n, B, K] per-sample gradient estimates
    logits = rng.normal(size=(2, 3)).astype("float32")

    value = to_numpy(_discrete.surrogate_loss(logits, estimates, reward_rank=2))
    np.testing.assert_allclose(value, -(estimates * logits).sum(-1).mean(), rtol=1e-5)
    # Summed over an input's logits, averaged over samples and inputs: d/dlogits = -sum_n estimates / (n * B).
    got = gradient(lambda x: _discrete.surrogate_loss(x, estimates, reward_rank=2), logits)
    np.testing.assert_allclose(got, -estimates.sum(0) / (5 * 2), rtol=1e-5)


def test_the_surrogate_loss_passes_no_gradient_to_the_estimates():
    logits = np.array([[0.5, -1.0]], "float32")

    def loss(estimates):  # plus 0 * sum(estimates): a gradient of zeros rather than None where none flows
        return keras.ops.add(_discrete.surrogate_loss(logits, estimates, reward_rank=1), 0.0 * keras.ops.sum(estimates))

    got = gradient(loss, np.ones((1, 2), "float32"))
    np.testing.assert_array_equal(got, np.zeros((1, 2)))


@pytest.mark.parametrize("num_samples", [2, 4, 10])
def test_an_even_number_of_samples_is_accepted(num_samples):
    assert _discrete.check_even_samples("ARM", num_samples) == num_samples


@pytest.mark.parametrize("num_samples", [1, 3])
def test_an_odd_number_of_samples_is_refused_with_the_reason(num_samples):
    with pytest.raises(ValueError, match=rf"an even number >= 2 for ARM: it evaluates antithetic pairs.*{num_samples}"):
        _discrete.check_even_samples("ARM", num_samples)


@pytest.mark.parametrize("num_samples", [0, 2.0, "2"])
def test_a_number_of_samples_that_is_no_positive_integer_is_refused(num_samples):
    with pytest.raises((ValueError, TypeError), match=r"`num_samples`"):
        _discrete.check_even_samples("ARM", num_samples)
