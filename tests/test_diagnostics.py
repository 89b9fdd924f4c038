"""keras_gumbel.diagnostics: the exact gradient, and the measured bias/variance trade-off."""

import keras
import numpy as np
import pytest

from keras_gumbel import diagnostics

LOGITS = np.array([0.5, -0.3, 0.2, 0.0], "float32")
VALUES = np.arange(4.0, dtype="float32")


def f(z):
    """A non-linear function of the sample: relaxed samples see a different objective."""
    return (keras.ops.sum(z * VALUES, axis=-1) - 1.5) ** 2


def test_exact_gradient_matches_finite_differences_of_the_enumerated_expectation():
    def expectation(logits):
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return p @ ((VALUES - 1.5) ** 2)

    step = 1e-5
    logits = LOGITS.astype(np.float64)
    numerical = [
        (expectation(logits + step * np.eye(4)[k]) - expectation(logits - step * np.eye(4)[k])) / (2 * step)
        for k in range(4)
    ]
    np.testing.assert_allclose(diagnostics.exact_gradient(LOGITS, f), numerical, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("estimator", ["reinforce", "reinforce_leave_one_out"])
def test_reinforce_is_unbiased(estimator):
    result = diagnostics.gradient_bias_variance(estimator, LOGITS, f, num_estimates=20_000)
    assert result["bias"] < 5 * result["bias_standard_error"]


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["gumbel_softmax", "straight_through"])
def test_gumbel_estimators_trade_bias_for_variance_as_temperature_falls(estimator):
    results = [
        diagnostics.gradient_bias_variance(estimator, LOGITS, f, num_estimates=20_000, temperature=t)
        for t in (1.0, 0.5, 0.1)
    ]
    biases = [r["bias"] for r in results]
    variances = [r["variance"] for r in results]
    assert biases[0] > biases[1] > biases[2]  # the relaxation's bias shrinks with the temperature
    assert variances[0] < variances[1] < variances[2]  # and the variance grows
    # At temperature 1 the bias is far beyond sampling error: a real bias, not noise.
    assert results[0]["bias"] > 10 * results[0]["bias_standard_error"]


def test_leave_one_out_lowers_reinforce_variance():
    plain = diagnostics.gradient_bias_variance("reinforce", LOGITS, lambda z: f(z) + 10.0, num_estimates=20_000)
    loo = diagnostics.gradient_bias_variance(
        "reinforce_leave_one_out", LOGITS, lambda z: f(z) + 10.0, num_estimates=20_000
    )
    # 4 samples per estimate alone would divide the variance by 4; the baseline does far more.
    assert plain["variance"] / loo["variance"] > 20


def test_bad_arguments():
    with pytest.raises(ValueError, match="estimator='gumbel'"):
        diagnostics.gradient_estimates("gumbel", LOGITS, f)
    with pytest.raises(ValueError, match="temperature=0"):
        diagnostics.gradient_estimates("gumbel_softmax", LOGITS, f, temperature=0.0)


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
        straight_through = diagnostics.gradient_bias_variance("straight_through", LOGITS, f, **kwargs)
        results = {
            k: diagnostics.gradient_bias_variance("gumbel_rao", LOGITS, f, num_draws=k, **kwargs) for k in (1, 3, 30)
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
            loss = tf.reduce_sum(sample * VALUES)
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

        sample = to_numpy(gumbel_ops.reinmax(np.tile(LOGITS, (50_000, 1)), seed=keras.random.SeedGenerator(1)))
        assert set(np.unique(sample)) == {0.0, 1.0}
        assert scipy.stats.chisquare(sample.sum(0), softmax(LOGITS) * 50_000).pvalue > 1e-3

    def test_unbiased_for_linear_functions_at_temperature_one(self):
        # E[2 J((p + D) / 2) - J(p) / 2] = J(p) when D ~ Categorical(p): exact for linear f, unlike straight-through.
        reinmax = diagnostics.gradient_bias_variance("reinmax", LOGITS, self.linear, num_estimates=50_000)
        assert reinmax["bias"] < 5 * reinmax["bias_standard_error"]
        straight_through = diagnostics.gradient_bias_variance(
            "straight_through", LOGITS, self.linear, num_estimates=50_000
        )
        assert straight_through["bias"] > 10 * straight_through["bias_standard_error"]

    def test_mean_gradient_equals_the_enumerated_expectation_of_the_formula(self):
        # An independent NumPy form of the estimator, averaged exactly over the K possible samples.
        p0 = np.exp(LOGITS) / np.exp(LOGITS).sum()
        temperature = 2.0
        p_tempered = np.exp(LOGITS / temperature) / np.exp(LOGITS / temperature).sum()
        upstream = self.LINEAR_WEIGHTS.astype(np.float64)

        def jacobian_product(p):
            return p * (upstream - p @ upstream)

        expected = 0.0
        for k in range(4):
            p1 = 0.5 * (p_tempered + np.eye(4)[k])
            gradient = 2 * jacobian_product(p1) - 0.5 * jacobian_product(p0)
            expected = expected + p0[k] * (gradient - gradient.mean())
        estimates = diagnostics.gradient_estimates(
            "reinmax", LOGITS, self.linear, num_estimates=50_000, temperature=temperature
        )
        standard_errors = estimates.std(0) / np.sqrt(len(estimates))
        assert (np.abs(estimates.mean(0) - expected) < 5 * standard_errors + 1e-6).all()


@pytest.mark.parametrize("gradient_estimator", ["gumbel_rao", "reinmax"])
def test_straight_through_layer_selects_the_gradient_estimator(gradient_estimator):
    import scipy.stats
    import tensorflow as tf
    from helpers import softmax

    import keras_gumbel

    layer = keras_gumbel.StraightThroughGumbel(seed=0, gradient_estimator=gradient_estimator, num_draws=4)
    assert keras_gumbel.StraightThroughGumbel.from_config(layer.get_config()).get_config() == layer.get_config()
    variable = tf.Variable(np.tile(LOGITS, (20_000, 1)))
    with tf.GradientTape() as tape:
        sample = layer(variable, training=True)
        loss = tf.reduce_sum(sample * VALUES)
    sample, gradient = sample.numpy(), tape.gradient(loss, variable).numpy()
    assert set(np.unique(sample)) == {0.0, 1.0}
    assert scipy.stats.chisquare(sample.sum(0), softmax(LOGITS) * 20_000).pvalue > 1e-3
    assert np.isfinite(gradient).all() and np.abs(gradient).sum() > 0
    # The backward pass is the chosen estimator's: the op's gradient for the same seed stream, not straight-through's.
    from keras_gumbel import ops as gumbel_ops

    estimators = {
        "gumbel_rao": lambda x, seed: gumbel_ops.gumbel_rao(x, num_draws=4, seed=seed),
        "reinmax": lambda x, seed: gumbel_ops.reinmax(x, seed=seed),
        "straight_through": lambda x, seed: gumbel_ops.gumbel_softmax(x, hard=True, seed=seed),
    }
    expected = {}
    for name in (gradient_estimator, "straight_through"):
        with tf.GradientTape() as tape:
            reference = estimators[name](variable, keras.random.SeedGenerator(0))
            loss = tf.reduce_sum(reference * VALUES)
        np.testing.assert_array_equal(reference.numpy(), sample)  # the same draws
        expected[name] = tape.gradient(loss, variable).numpy()
    np.testing.assert_allclose(gradient, expected[gradient_estimator], rtol=1e-5, atol=1e-7)
    assert np.abs(gradient - expected["straight_through"]).max() > 1e-3
    np.testing.assert_array_equal(layer(LOGITS[None]).numpy(), np.eye(4)[[LOGITS.argmax()]])
    with pytest.raises(ValueError, match="gradient_estimator='rao'"):
        keras_gumbel.StraightThroughGumbel(gradient_estimator="rao")


def test_reinmax_refuses_a_trainable_temperature():
    import keras_gumbel

    # Its gradient formula gives the temperature no gradient: the variable would silently never move.
    with pytest.raises(ValueError, match="trainable_temperature=True"):
        keras_gumbel.StraightThroughGumbel(gradient_estimator="reinmax", trainable_temperature=True)
    keras_gumbel.StraightThroughGumbel(gradient_estimator="gumbel_rao", trainable_temperature=True)


def test_f_of_shape_n_by_1_is_read_as_one_value_per_row_and_other_shapes_are_refused():
    keepdims = lambda z: (keras.ops.sum(z * VALUES, axis=-1, keepdims=True) - 1.5) ** 2
    np.testing.assert_allclose(diagnostics.exact_gradient(LOGITS, keepdims), diagnostics.exact_gradient(LOGITS, f))
    # It used to broadcast [N] against [N, 1] into [N, N]: REINFORCE's estimate was off by 30x.
    result = diagnostics.gradient_bias_variance("reinforce_leave_one_out", LOGITS, keepdims, num_estimates=2000)
    assert result["bias"] < 5 * result["bias_standard_error"]
    with pytest.raises(ValueError, match="one value per row"):
        diagnostics.exact_gradient(LOGITS, lambda z: z)
    with pytest.raises(ValueError, match="logits="):
        diagnostics.gradient_estimates("reinforce", np.zeros((2, 4), "float32"), f)
    with pytest.raises(ValueError, match="logits="):
        diagnostics.exact_gradient(np.array([0.0, np.nan, 0.0]), f)
