"""keras_gumbel.ops: noise, the samplers (categorical, Gumbel-Rao, ReinMax, subsets, binary, log space), checks."""

import itertools
import math

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
from helpers import gradient
from helpers import numpy_sinkhorn
from helpers import softmax
from helpers import to_numpy

import keras_gumbel
from keras_gumbel import _sampling
from keras_gumbel import _validation
from keras_gumbel import diagnostics
from keras_gumbel import ops as gumbel_ops

P_VALUE_FLOOR = 1e-3  # a correct sampler fails a test with a random seed 1 time in 1000


class TestGumbelNoise:
    def test_follows_the_standard_gumbel_law(self):
        noise = to_numpy(gumbel_ops.gumbel_noise((50_000,), seed=keras.random.SeedGenerator(0)))
        assert scipy.stats.kstest(noise, scipy.stats.gumbel_r.cdf).pvalue > P_VALUE_FLOOR
        # Mean is the Euler-Mascheroni constant, variance pi^2 / 6; 5 standard errors.
        standard_error = math.sqrt(math.pi**2 / 6 / noise.size)
        assert abs(noise.mean() - np.euler_gamma) < 5 * standard_error

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_is_finite_and_bounded_by_the_uniform_interval(self, dtype):
        noise = to_numpy(gumbel_ops.gumbel_noise((1_000_000,), seed=keras.random.SeedGenerator(1), dtype=dtype))
        assert noise.dtype == np.dtype(dtype)
        assert np.isfinite(noise).all()
        # u in [tiny, 1): g = -log(-log(u)) >= -log(-log(tiny)).
        tiny = np.finfo(dtype).tiny
        assert noise.min() >= -np.log(-np.log(tiny)) - 1e-6

    def test_the_uniform_floor_replaces_the_zero_the_raw_kernel_draws(self):
        # The raw float32 uniform kernel returns u = 0 with probability 2**-23: seed 0's million
        # draws hold one. Without the floor it would give g = -inf; with it, exactly -log(-log(tiny)).
        noise = to_numpy(gumbel_ops.gumbel_noise((1_000_000,), seed=0))
        assert np.isfinite(noise).all()
        tiny = np.finfo("float32").tiny
        assert noise.min() == np.float32(-np.log(-np.log(np.float32(tiny))))

    def test_a_seed_generator_gives_a_stream_and_an_int_the_same_draw(self):
        generator = keras.random.SeedGenerator(7)
        first, second = (to_numpy(gumbel_ops.gumbel_noise((8,), seed=generator)) for _ in range(2))
        assert not np.allclose(first, second)
        replay = keras.random.SeedGenerator(7)
        np.testing.assert_array_equal(first, to_numpy(gumbel_ops.gumbel_noise((8,), seed=replay)))
        np.testing.assert_array_equal(
            to_numpy(gumbel_ops.gumbel_noise((8,), seed=3)), to_numpy(gumbel_ops.gumbel_noise((8,), seed=3))
        )

    def test_rejects_other_dtypes(self):
        with pytest.raises(ValueError, match="dtype"):
            gumbel_ops.gumbel_noise((3,), dtype="float16")


class TestGumbelSoftmax:
    @pytest.mark.parametrize("shape", [(5,), (1, 5), (2, 3, 4, 5)])
    @pytest.mark.parametrize("hard", [False, True])
    def test_shapes_and_simplex(self, shape, hard):
        logits = np.random.default_rng(0).normal(size=shape).astype("float32")
        sample = to_numpy(gumbel_ops.gumbel_softmax(logits, temperature=0.7, hard=hard, seed=1))
        assert sample.shape == shape
        np.testing.assert_allclose(sample.sum(axis=-1), 1.0, rtol=1e-5)
        assert (sample >= 0).all()
        if hard:
            assert set(np.unique(sample)) <= {0.0, 1.0}

    @pytest.mark.parametrize("axis", [0, 1, -2])
    def test_axis_other_than_last(self, axis):
        logits = np.random.default_rng(1).normal(size=(4, 6, 3)).astype("float32")
        hard = to_numpy(gumbel_ops.gumbel_softmax(logits, hard=True, axis=axis, seed=2))
        np.testing.assert_array_equal(hard.sum(axis=axis), np.ones(np.delete(logits.shape, axis)))
        relaxed = to_numpy(gumbel_ops.gumbel_softmax(logits, axis=axis, seed=2))
        np.testing.assert_allclose(relaxed.sum(axis=axis), 1.0, rtol=1e-5)
        # The hard sample is the argmax of the relaxed one drawn with the same noise.
        np.testing.assert_array_equal(hard.argmax(axis=axis), relaxed.argmax(axis=axis))

    def test_hard_is_an_exact_one_hot_even_when_probabilities_are_close(self):
        # y_hard - stop_gradient(y) + y is not exactly one-hot in floating point; ours is.
        logits = np.random.default_rng(2).normal(size=(4096, 7)).astype("float32")
        sample = to_numpy(gumbel_ops.gumbel_softmax(logits, temperature=3.0, hard=True, seed=3))
        assert set(np.unique(sample)) == {0.0, 1.0}
        np.testing.assert_array_equal(sample.sum(-1), 1.0)

    def test_minus_inf_is_never_selected_and_gets_zero_mass(self):
        logits = np.tile(np.array([[0.0, -np.inf, 0.5, -np.inf]], "float32"), (20_000, 1))
        for hard in (False, True):
            sample = to_numpy(gumbel_ops.gumbel_softmax(logits, hard=hard, seed=4))
            assert (sample[:, [1, 3]] == 0).all()
            assert np.isfinite(sample).all()

    def test_all_minus_inf_rows_and_nan_rows_give_nan_rows(self):
        logits = np.array([[0.0, 1.0, 2.0], [-np.inf] * 3, [np.nan, 1.0, 2.0], [1.0, np.inf, 2.0]], "float32")
        relaxed = to_numpy(gumbel_ops.gumbel_softmax(logits, seed=5))
        hard = to_numpy(gumbel_ops.gumbel_softmax(logits, hard=True, seed=5))
        assert np.isfinite(relaxed[0]).all() and np.isfinite(hard[0]).all()
        assert np.isnan(relaxed[1]).all()
        for row in (1, 2, 3):
            assert np.isnan(hard[row]).all(), row
            assert np.isnan(relaxed[row]).any(), row

    def test_mask_logits_keeps_fully_masked_rows_finite(self):
        logits = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]], "float32")
        mask = np.array([[True, False, True], [False, False, False]])
        masked = gumbel_ops.mask_logits(logits, mask)
        np.testing.assert_array_equal(to_numpy(masked), [[1.0, -np.inf, 3.0], [0.0, 0.0, 0.0]])
        for hard in (False, True):
            sample = to_numpy(gumbel_ops.gumbel_softmax(masked, hard=hard, seed=6))
            assert np.isfinite(sample).all()
            assert sample[0, 1] == 0.0

    def test_float16_and_bfloat16_logits_keep_their_dtype(self):
        for dtype in ("float16", "bfloat16"):
            logits = keras.ops.cast(np.array([[1e4, -1e4, 0.0]]), dtype)
            for hard in (False, True):
                sample = gumbel_ops.gumbel_softmax(logits, temperature=1e-4, hard=hard, seed=7)
                assert keras.backend.standardize_dtype(sample.dtype) == dtype
                assert np.isfinite(to_numpy(keras.ops.cast(sample, "float32"))).all()

    def test_deterministic_path_without_noise(self):
        logits = np.log(np.array([[0.1, 0.2, 0.7]], "float32"))
        relaxed = _sampling.categorical(keras.ops.convert_to_tensor(logits), 0.5, 1, False, None, add_noise=False)
        np.testing.assert_allclose(to_numpy(relaxed), softmax(logits / 0.5), rtol=1e-5)

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            ({"temperature": 0.0}, ValueError, "temperature=0.0"),
            ({"temperature": -1.0}, ValueError, "temperature=-1.0"),
            ({"temperature": float("nan")}, ValueError, "temperature=nan"),
            ({"temperature": float("inf")}, ValueError, "temperature=inf"),
            ({"temperature": True}, TypeError, "temperature=True"),
            ({"axis": 2}, ValueError, "axis=2"),
            ({"axis": -3}, ValueError, "axis=-3"),
            ({"axis": 1.0}, TypeError, "axis=1.0"),
            ({"hard": "yes"}, TypeError, "hard='yes'"),
            ({"seed": "abc"}, TypeError, "seed='abc'"),
            ({"seed": 2**63}, ValueError, "seed=9223372036854775808"),
            # NumPy numbers are checked like Python ones; other types get a TypeError, not a TF trace.
            ({"temperature": np.float32(0.0)}, ValueError, "temperature=0.0"),
            ({"temperature": np.int64(-1)}, ValueError, "temperature=-1.0"),
            ({"temperature": np.bool_(True)}, TypeError, "temperature=True"),
            ({"temperature": "0.5"}, TypeError, "temperature='0.5'"),
            ({"temperature": None}, TypeError, "temperature=None"),
            # float32 holds the temperature: 1e-40 would round to 0 and 1e39 to inf.
            ({"temperature": 1e-40}, ValueError, "temperature=1e-40"),
            ({"temperature": 1e39}, ValueError, "temperature=1e\\+39"),
        ],
    )
    def test_bad_arguments_name_argument_and_value(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            gumbel_ops.gumbel_softmax(np.zeros((2, 3), "float32"), **kwargs)

    def test_numpy_numbers_and_tensors_are_accepted_as_arguments(self):
        logits = np.log(np.array([[0.1, 0.2, 0.7]], "float32"))
        expected = to_numpy(gumbel_ops.gumbel_softmax(logits, temperature=0.5, seed=3))
        for temperature in (np.float32(0.5), np.array(0.5), keras.ops.convert_to_tensor(0.5), keras.Variable(0.5)):
            sample = gumbel_ops.gumbel_softmax(logits, temperature=temperature, axis=np.int64(-1), seed=np.int64(3))
            np.testing.assert_allclose(to_numpy(sample), expected, rtol=1e-6)

    def test_mask_logits_rejects_integer_logits_and_noise_an_undefined_shape(self):
        with pytest.raises(TypeError, match="int32"):
            gumbel_ops.mask_logits(np.array([[1, 2]], "int32"), np.array([[True, False]]))
        with pytest.raises(ValueError, match="shape=\\(2, None\\)"):
            gumbel_ops.gumbel_noise((2, None))

    def test_integer_logits_raise_a_type_error(self):
        with pytest.raises(TypeError, match="floating-point logits.*int32"):
            gumbel_ops.gumbel_softmax(np.array([[1, 2, 3]], "int32"))


OPS_ON_LOGITS = {
    "gumbel_softmax": lambda x: keras_gumbel.ops.gumbel_softmax(x, seed=1),
    "gumbel_softmax(hard)": lambda x: keras_gumbel.ops.gumbel_softmax(x, hard=True, seed=1),
    "gumbel_rao": lambda x: keras_gumbel.ops.gumbel_rao(x, seed=1),
    "reinmax": lambda x: keras_gumbel.ops.reinmax(x, seed=1),
    "relaxed_bernoulli": lambda x: keras_gumbel.ops.relaxed_bernoulli(x, seed=1),
    "gumbel_top_k": lambda x: keras_gumbel.ops.gumbel_top_k(x, 1, seed=1),
    "relaxed_top_k": lambda x: keras_gumbel.ops.relaxed_top_k(x, 1, seed=1),
}


@pytest.mark.parametrize("name", sorted(set(OPS_ON_LOGITS) - {"relaxed_bernoulli"}))
def test_zero_categories_are_a_named_error(name):
    expected = r"`(logits|k)`.*(at least one category|at most the number of categories \(0\))"
    with pytest.raises(ValueError, match=expected):
        OPS_ON_LOGITS[name](np.zeros((2, 0), "float32"))


def test_a_layer_refuses_zero_categories_by_name():
    with pytest.raises(ValueError, match="`inputs`. Expected at least one category along axis 1"):
        keras_gumbel.StraightThroughGumbel()(np.zeros((2, 0), "float32"), training=True)


@pytest.mark.parametrize("name", sorted(OPS_ON_LOGITS))
def test_unknown_rank_inside_tf_function_is_a_named_error(name):
    import tensorflow as tf

    traced = tf.function(OPS_ON_LOGITS[name], input_signature=[tf.TensorSpec(None, tf.float32)], autograph=False)
    with pytest.raises(ValueError, match="`logits`. Expected a tensor of known rank"):
        traced(np.zeros((2, 3), "float32"))


# Every op that takes a temperature, called on logits [..., K] (square matrices for the Sinkhorn ones) with a seed.
TEMPERATURE_OPS = {
    "gumbel_softmax": lambda x, t: gumbel_ops.gumbel_softmax(x, t, seed=1),
    "gumbel_softmax(hard)": lambda x, t: gumbel_ops.gumbel_softmax(x, t, hard=True, seed=1),
    "log_gumbel_softmax": lambda x, t: gumbel_ops.log_gumbel_softmax(x, t, seed=1),
    "gumbel_rao": lambda x, t: gumbel_ops.gumbel_rao(x, t, num_draws=3, seed=1),
    "reinmax": lambda x, t: gumbel_ops.reinmax(x, t, seed=1),
    "relaxed_top_k": lambda x, t: gumbel_ops.relaxed_top_k(x, 3, t, seed=1),
    "relaxed_bernoulli": lambda x, t: gumbel_ops.relaxed_bernoulli(x, t, seed=1),
    "relaxed_bernoulli(hard)": lambda x, t: gumbel_ops.relaxed_bernoulli(x, t, hard=True, seed=1),
    "relaxed_bernoulli_logits": lambda x, t: gumbel_ops.relaxed_bernoulli_logits(x, t, seed=1),
    "sinkhorn": lambda x, t: gumbel_ops.sinkhorn(x, t),
    "gumbel_sinkhorn": lambda x, t: gumbel_ops.gumbel_sinkhorn(x, t, seed=1),
}
FLOOR = _validation.MIN_TEMPERATURE


def floor_logits(name):
    """N(0, 25) logits (the scores of 4 x 4 matrices for the Sinkhorn ops): / 2e-38 they overflowed float32."""
    rng = np.random.default_rng(8)
    shape = (500, 4, 4) if "sinkhorn" in name else (2000, 10)
    return (5.0 * rng.normal(size=shape)).astype("float32")


@pytest.mark.parametrize("name", sorted(TEMPERATURE_OPS))
def test_at_the_temperature_floor_every_op_gives_its_zero_temperature_limit_finitely(name):
    logits = floor_logits(name)
    output = to_numpy(TEMPERATURE_OPS[name](logits, FLOOR))
    assert np.isfinite(output).all()
    if name.startswith("gumbel_sinkhorn"):
        np.testing.assert_allclose(output.sum(-2), 1.0, rtol=1e-5)  # the last Sinkhorn round normalises columns
    elif name == "sinkhorn":
        np.testing.assert_allclose(output, numpy_sinkhorn(logits, FLOOR, 20), atol=1e-6)
    elif "bernoulli" in name:
        exact = to_numpy(gumbel_ops.relaxed_bernoulli(logits, hard=True, seed=1))  # the same noise: 1[logits + L > 0]
        np.testing.assert_array_equal(output > 0 if name.endswith("logits") else output, exact)
    elif name == "relaxed_top_k":
        np.testing.assert_array_equal(output, to_numpy(gumbel_ops.relaxed_top_k(logits, 3, hard=True, seed=1)))
    else:
        exact = to_numpy(gumbel_ops.gumbel_softmax(logits, hard=True, seed=1))  # one_hot(argmax(logits + g))
        np.testing.assert_array_equal(np.exp(output) if name == "log_gumbel_softmax" else output, exact)


@pytest.mark.parametrize("below", [2e-38, 0.0, -0.07], ids=["2e-38", "0", "-0.07"])
@pytest.mark.parametrize("name", sorted(TEMPERATURE_OPS))
def test_a_temperature_tensor_below_the_floor_is_read_as_the_floor(name, below):
    # A tensor cannot be checked inside a compiled function. At 2e-38 and 0 the ops gave NaN; at -0.07 the relaxed
    # samples peaked on the argmin, and the straight-through gradients were sign-flipped.
    logits = floor_logits(name)[:50]
    weights = np.random.default_rng(9).normal(size=logits.shape).astype("float32")
    for temperature in (keras.ops.convert_to_tensor(below), keras.Variable(below)):
        np.testing.assert_array_equal(
            to_numpy(TEMPERATURE_OPS[name](logits, temperature)), to_numpy(TEMPERATURE_OPS[name](logits, FLOOR))
        )
    objective = lambda t: lambda x: keras.ops.sum(keras.ops.multiply(TEMPERATURE_OPS[name](x, t), weights))
    below_floor = gradient(objective(keras.ops.convert_to_tensor(below)), logits)
    assert np.isfinite(below_floor).all()
    np.testing.assert_array_equal(below_floor, gradient(objective(FLOOR), logits))


class TestLogSpaceSamples:
    """log_gumbel_softmax and relaxed_bernoulli_logits: the relaxed samples before they round to 0 and 1."""

    logits = np.log(np.array([[0.1, 0.2, 0.7]], "float32"))

    def test_they_are_the_log_and_logit_of_the_same_samples(self):
        batch = np.tile(self.logits, (256, 1))
        log_sample = to_numpy(gumbel_ops.log_gumbel_softmax(batch, 0.5, seed=4))
        np.testing.assert_allclose(np.exp(log_sample), to_numpy(gumbel_ops.gumbel_softmax(batch, 0.5, seed=4)), 1e-5)
        logit = to_numpy(gumbel_ops.relaxed_bernoulli_logits(batch, 0.5, seed=4))
        expected = to_numpy(gumbel_ops.relaxed_bernoulli(batch, 0.5, seed=4))
        np.testing.assert_allclose(1 / (1 + np.exp(-logit)), expected, rtol=1e-5, atol=1e-7)

    @pytest.mark.parametrize("temperature", [0.1, 0.5, 2.0])
    def test_their_laws_are_logistic(self, temperature):
        # (logits + L) / t ~ Logistic(logits / t, 1 / t); and z_i - z_j = (l_i + g_i - l_j - g_j) / t, a
        # difference of two Gumbels over t, is Logistic((l_i - l_j) / t, 1 / t).
        batch = np.tile(self.logits, (20_000, 1))
        logit = to_numpy(gumbel_ops.relaxed_bernoulli_logits(batch, temperature, seed=5))[:, 0]
        law = scipy.stats.logistic(loc=self.logits[0, 0] / temperature, scale=1 / temperature)
        assert scipy.stats.kstest(logit, law.cdf).pvalue > P_VALUE_FLOOR
        log_sample = to_numpy(gumbel_ops.log_gumbel_softmax(batch, temperature, seed=6))
        difference = log_sample[:, 2] - log_sample[:, 0]
        law = scipy.stats.logistic(loc=(self.logits[0, 2] - self.logits[0, 0]) / temperature, scale=1 / temperature)
        assert scipy.stats.kstest(difference, law.cdf).pvalue > P_VALUE_FLOOR

    def test_they_stay_finite_where_float32_samples_round_to_0_and_1(self):
        batch = np.tile(self.logits * 10, (10_000, 1))
        relaxed = to_numpy(gumbel_ops.gumbel_softmax(batch, 0.1, seed=7))
        assert ((relaxed == 0) | (relaxed == 1)).any()  # where log-densities of the relaxed sample are infinite
        assert np.isfinite(to_numpy(gumbel_ops.log_gumbel_softmax(batch, 0.1, seed=7))).all()
        assert np.isfinite(to_numpy(gumbel_ops.relaxed_bernoulli_logits(batch, 0.1, seed=7))).all()


# Subsets: Gumbel-top-k against exact sampling without replacement; the relaxed k-hot.

PROBABILITIES = np.array([0.1, 0.2, 0.3, 0.4])
LOGITS = np.log(PROBABILITIES).astype("float32")


def ordered_pair_probability(i, j):
    """Exact: draw i, then j from the categories left, renormalised."""
    return PROBABILITIES[i] * PROBABILITIES[j] / (1 - PROBABILITIES[i])


def test_gumbel_top_k_follows_sampling_without_replacement():
    num_samples = 100_000
    indices = to_numpy(
        gumbel_ops.gumbel_top_k(np.tile(LOGITS, (num_samples, 1)), 2, seed=keras.random.SeedGenerator(0))
    )
    assert indices.shape == (num_samples, 2) and (indices[:, 0] != indices[:, 1]).all()
    pairs = list(itertools.permutations(range(4), 2))
    observed = [np.sum((indices[:, 0] == i) & (indices[:, 1] == j)) for i, j in pairs]
    expected = [ordered_pair_probability(i, j) * num_samples for i, j in pairs]
    assert sum(expected) == pytest.approx(num_samples)
    assert scipy.stats.chisquare(observed, expected).pvalue > 1e-3


def test_hard_relaxed_top_k_is_the_k_hot_of_the_same_gumbel_top_k_draw():
    batch = np.tile(LOGITS, (256, 1))
    k_hot = to_numpy(gumbel_ops.relaxed_top_k(batch, 2, temperature=0.3, hard=True, seed=7))
    indices = to_numpy(gumbel_ops.gumbel_top_k(batch, 2, seed=7))  # same integer seed: same noise
    np.testing.assert_array_equal(k_hot, np.eye(4)[indices].sum(axis=1))


@pytest.mark.parametrize("temperature", [0.1, 1.0, 5.0])
def test_relaxed_k_hot_is_non_negative_and_sums_to_k(temperature):
    sample = to_numpy(gumbel_ops.relaxed_top_k(np.tile(LOGITS, (512, 1)), 3, temperature=temperature, seed=1))
    assert (sample >= 0).all()
    np.testing.assert_allclose(sample.sum(-1), 3.0, rtol=1e-4)


def test_low_temperature_relaxed_k_hot_approaches_the_hard_one():
    batch = np.tile(LOGITS, (512, 1))
    soft = to_numpy(gumbel_ops.relaxed_top_k(batch, 2, temperature=1e-3, seed=3))
    hard = to_numpy(gumbel_ops.relaxed_top_k(batch, 2, temperature=1e-3, hard=True, seed=3))
    assert np.mean(np.abs(soft - hard).max(-1) < 1e-2) > 0.98


def test_hard_k_hot_inclusion_frequencies_and_gradient():
    num_samples = 100_000
    k_hot = to_numpy(gumbel_ops.relaxed_top_k(np.tile(LOGITS, (num_samples, 1)), 2, hard=True, seed=4))
    # P(category c is among the 2 drawn) = sum of the ordered pairs that contain c.
    inclusion = [
        sum(ordered_pair_probability(i, j) for i, j in itertools.permutations(range(4), 2) if c in (i, j))
        for c in range(4)
    ]
    counts = k_hot.sum(0)
    standard_errors = np.sqrt(np.array(inclusion) * (1 - np.array(inclusion)) * num_samples)
    assert (np.abs(counts - np.array(inclusion) * num_samples) < 5 * standard_errors).all()
    variable = tf.Variable(np.tile(LOGITS, (8, 1)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(gumbel_ops.relaxed_top_k(variable, 2, temperature=0.5, hard=True, seed=5) * [1.0, 2, 3, 4])
    gradient = tape.gradient(loss, variable).numpy()
    assert np.isfinite(gradient).all() and np.abs(gradient).sum() > 0
    # Straight-through: the hard k-hot's gradient is the relaxed k-hot's for the same noise.
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(gumbel_ops.relaxed_top_k(variable, 2, temperature=0.5, seed=5) * [1.0, 2, 3, 4])
    np.testing.assert_allclose(gradient, tape.gradient(loss, variable).numpy(), rtol=1e-6)


@pytest.mark.parametrize("temperature", [0.3, 1.0, 3.0])
def test_relaxed_k_hot_is_xie_and_ermons_recursion_on_the_same_noise(temperature):
    # gumbel_noise with the same integer seed draws the noise relaxed_top_k adds.
    batch = np.tile(LOGITS, (64, 1))
    weights = batch + to_numpy(gumbel_ops.gumbel_noise(batch.shape, seed=12)).astype("float64")
    expected = np.zeros_like(weights)
    for _ in range(3):
        step = np.exp(weights / temperature - (weights / temperature).max(-1, keepdims=True))
        step /= step.sum(-1, keepdims=True)
        expected += step
        weights = weights + np.log(np.maximum(1 - step, np.finfo("float32").tiny))
    sample = to_numpy(gumbel_ops.relaxed_top_k(batch, 3, temperature=temperature, seed=12))
    np.testing.assert_allclose(sample, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("temperature", [0.3, 1.0])
def test_relaxed_k_hot_gradient_is_the_recursions_gradient(temperature):
    # The recursion written naively with log(1 - step), in float64 where its gradient is still accurate.
    batch = np.tile(LOGITS, (32, 1)).astype("float64")
    noise = to_numpy(gumbel_ops.gumbel_noise(batch.shape, seed=13)).astype("float64")
    upstream = np.random.default_rng(0).normal(size=batch.shape)
    variable = tf.Variable(batch)
    with tf.GradientTape() as tape:
        weights, taken = variable + noise, 0.0
        for _ in range(2):
            step = tf.nn.softmax(weights / temperature)
            taken += step
            weights = weights + tf.math.log(1 - step)
        naive = tf.reduce_sum(taken * upstream)
    expected = tape.gradient(naive, variable).numpy()
    variable32 = tf.Variable(batch.astype("float32"))
    with tf.GradientTape() as tape:
        ours = tf.reduce_sum(gumbel_ops.relaxed_top_k(variable32, 2, temperature=temperature, seed=13) * upstream)
    np.testing.assert_allclose(tape.gradient(ours, variable32).numpy(), expected, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_relaxed_k_hot_gradients_are_finite_at_extreme_temperatures(dtype):
    # Fully taken categories: log(1 - step) had a gradient of 1e10 here, infinite once cast to float16.
    logits = (np.random.default_rng(0).standard_normal((1024, 40)) * 1e4).astype(dtype)
    variable = tf.Variable(logits)
    with tf.GradientTape() as tape:
        sample = gumbel_ops.relaxed_top_k(variable, 4, temperature=1e-4, seed=1)
        loss = tf.reduce_sum(tf.cast(sample, "float32") * np.random.default_rng(1).standard_normal(logits.shape))
    assert np.isfinite(tape.gradient(loss, variable).numpy()).all()


@pytest.mark.parametrize("k, error", [(0, ValueError), (5, ValueError), (1.5, TypeError)])
def test_bad_k(k, error):
    with pytest.raises(error, match="k="):
        gumbel_ops.gumbel_top_k(LOGITS[None], k)


def test_scalar_logits_get_a_clear_error():
    for sampler in (gumbel_ops.gumbel_top_k, gumbel_ops.relaxed_top_k):
        with pytest.raises(ValueError, match="rank >= 1"):
            sampler(np.float32(1.0), 1)


# Gumbel-Rao and ReinMax, measured with keras_gumbel.diagnostics.

ESTIMATOR_LOGITS = np.array([0.5, -0.3, 0.2, 0.0], "float32")
ESTIMATOR_VALUES = np.arange(4.0, dtype="float32")


def nonlinear_f(z):
    """A non-linear function of the sample: relaxed samples see a different objective."""
    return (keras.ops.sum(z * ESTIMATOR_VALUES, axis=-1) - 1.5) ** 2


class TestGumbelRao:
    def test_forward_is_an_exact_categorical_sample(self):
        import scipy.stats
        from helpers import softmax
        from helpers import to_numpy

        from keras_gumbel import ops as gumbel_ops

        logits = np.log(np.array([0.1, 0.2, 0.3, 0.4], "float32"))
        sample = to_numpy(
            gumbel_ops.gumbel_rao(np.tile(logits, (50_000, 1)), num_draws=3, seed=keras.random.SeedGenerator(0))
        )
        assert set(np.unique(sample)) == {0.0, 1.0}
        np.testing.assert_array_equal(sample.sum(-1), 1.0)
        assert scipy.stats.chisquare(sample.sum(0), softmax(logits) * 50_000).pvalue > 1e-3

    @pytest.mark.slow
    def test_one_draw_is_straight_through_and_more_draws_lower_the_error(self):
        # Same mean as straight-through (a Rao-Blackwellisation), less variance as num_draws grows.
        kwargs = {"num_estimates": 50_000, "temperature": 0.5}
        straight_through = diagnostics.gradient_bias_variance(
            "straight_through", ESTIMATOR_LOGITS, nonlinear_f, **kwargs
        )
        results = {
            k: diagnostics.gradient_bias_variance("gumbel_rao", ESTIMATOR_LOGITS, nonlinear_f, num_draws=k, **kwargs)
            for k in (1, 3, 30)
        }
        standard_error = np.sqrt(straight_through["variance"] / kwargs["num_estimates"])
        for result in results.values():
            assert np.linalg.norm(result["mean"] - straight_through["mean"]) < 5 * 2 * standard_error
        assert results[1]["variance"] == pytest.approx(straight_through["variance"], rel=0.1)
        assert results[1]["mse"] > results[3]["mse"] > results[30]["mse"]
        assert results[30]["variance"] < 0.7 * results[1]["variance"]

    def test_masked_categories_are_never_chosen_and_get_zero_gradient(self):
        import tensorflow as tf

        from keras_gumbel import ops as gumbel_ops

        # A -inf logit used to make the whole row NaN (-inf - (-inf) in the conditional noise).
        logits = tf.Variable(np.tile(np.array([[0.0, -np.inf, 1.0, 0.5]], "float32"), (2_000, 1)))
        with tf.GradientTape() as tape:
            sample = gumbel_ops.gumbel_rao(logits, num_draws=4, seed=keras.random.SeedGenerator(5))
            loss = tf.reduce_sum(sample * ESTIMATOR_VALUES)
        sample, gradient = sample.numpy(), tape.gradient(loss, logits).numpy()
        np.testing.assert_array_equal(sample.sum(-1), 1.0)
        assert (sample[:, 1] == 0).all()
        import scipy.stats
        from helpers import softmax

        valid = np.array([0.0, 1.0, 0.5])
        assert scipy.stats.chisquare(sample[:, [0, 2, 3]].sum(0), softmax(valid) * 2_000).pvalue > 1e-3
        assert np.isfinite(gradient).all() and (gradient[:, 1] == 0).all() and np.abs(gradient).sum() > 0

    def test_an_integer_seed_works_in_tf_function_and_gives_the_same_draw(self):
        import tensorflow as tf

        from keras_gumbel import ops as gumbel_ops

        logits = np.zeros((64, 5), "float32")
        # It used to build a SeedGenerator (a variable) on every call, which tf.function refuses.
        draw = tf.function(lambda x: gumbel_ops.gumbel_rao(x, seed=3))
        first, second = draw(logits).numpy(), draw(logits).numpy()
        np.testing.assert_array_equal(first, second)
        np.testing.assert_array_equal(first, gumbel_ops.gumbel_rao(logits, seed=3).numpy())
        assert len(np.unique(first.argmax(-1))) > 1

    def test_bad_num_draws(self):
        from keras_gumbel import ops as gumbel_ops

        with pytest.raises(ValueError, match="num_draws=0"):
            gumbel_ops.gumbel_rao(np.zeros((2, 3), "float32"), num_draws=0)


class TestReinMax:
    LINEAR_WEIGHTS = np.array([1.0, -2.0, 0.5, 3.0], "float32")

    def linear(self, z):
        return keras.ops.sum(z * self.LINEAR_WEIGHTS, axis=-1)

    def test_forward_is_an_exact_categorical_sample(self):
        import scipy.stats
        from helpers import softmax
        from helpers import to_numpy

        from keras_gumbel import ops as gumbel_ops

        sample = to_numpy(
            gumbel_ops.reinmax(np.tile(ESTIMATOR_LOGITS, (50_000, 1)), seed=keras.random.SeedGenerator(1))
        )
        assert set(np.unique(sample)) == {0.0, 1.0}
        assert scipy.stats.chisquare(sample.sum(0), softmax(ESTIMATOR_LOGITS) * 50_000).pvalue > 1e-3

    def test_unbiased_for_linear_functions_at_temperature_one(self):
        # E[2 J((p + D) / 2) - J(p) / 2] = J(p) when D ~ Categorical(p): exact for linear f, unlike straight-through.
        reinmax = diagnostics.gradient_bias_variance("reinmax", ESTIMATOR_LOGITS, self.linear, num_estimates=50_000)
        assert reinmax["bias"] < 5 * reinmax["bias_standard_error"]
        straight_through = diagnostics.gradient_bias_variance(
            "straight_through", ESTIMATOR_LOGITS, self.linear, num_estimates=50_000
        )
        assert straight_through["bias"] > 10 * straight_through["bias_standard_error"]

    def test_mean_gradient_equals_the_enumerated_expectation_of_the_formula(self):
        # An independent NumPy form of the estimator, averaged exactly over the K possible samples.
        p0 = np.exp(ESTIMATOR_LOGITS) / np.exp(ESTIMATOR_LOGITS).sum()
        temperature = 2.0
        p_tempered = np.exp(ESTIMATOR_LOGITS / temperature) / np.exp(ESTIMATOR_LOGITS / temperature).sum()
        upstream = self.LINEAR_WEIGHTS.astype(np.float64)

        def jacobian_product(p):
            return p * (upstream - p @ upstream)

        expected = 0.0
        for k in range(4):
            p1 = 0.5 * (p_tempered + np.eye(4)[k])
            gradient = 2 * jacobian_product(p1) - 0.5 * jacobian_product(p0)
            expected = expected + p0[k] * (gradient - gradient.mean())
        estimates = diagnostics.gradient_estimates(
            "reinmax", ESTIMATOR_LOGITS, self.linear, num_estimates=50_000, temperature=temperature
        )
        standard_errors = estimates.std(0) / np.sqrt(len(estimates))
        assert (np.abs(estimates.mean(0) - expected) < 5 * standard_errors + 1e-6).all()
