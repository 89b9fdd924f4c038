"""keras_gumbel.ops: noise, the functional sampler, masking helper, argument checks."""

import math

import keras
import numpy as np
import pytest
import scipy.stats
from helpers import softmax
from helpers import to_numpy

import keras_gumbel
from keras_gumbel import _sampling
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
