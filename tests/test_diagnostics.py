"""keras_gumbel.diagnostics: the exact gradient, and the measured bias/variance trade-off of every estimator."""

import itertools
import math

import keras
import numpy as np
import pytest

from keras_gumbel import diagnostics

LOGITS = np.array([0.5, -0.3, 0.2, 0.0], "float32")
VALUES = np.arange(4.0, dtype="float32")
BIT_LOGITS = np.array([0.5, -0.3, 0.2], "float32")
WEIGHTS = np.array([0.5, 1.0, 1.5], "float32")


def f(z):
    """A non-linear function of the sample: relaxed samples see a different objective."""
    return (keras.ops.sum(z * VALUES, axis=-1) - 1.5) ** 2


def f_bits(b):
    """A non-linear, non-separable function of 3 bits."""
    return (keras.ops.sum(b * WEIGHTS, axis=-1) - 1.2) ** 2


def _numpy_f(values):
    return np.asarray(keras.ops.convert_to_numpy(f(keras.ops.convert_to_tensor(values))), np.float64)


def _numpy_f_bits(values):
    return np.asarray(keras.ops.convert_to_numpy(f_bits(keras.ops.convert_to_tensor(values))), np.float64)


def _bits_distribution(logits):
    """Every value of the bits [8, 3] and its probability, written out."""
    values = np.array(list(itertools.product((0.0, 1.0), repeat=len(logits))), "float32")
    p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    return values, np.prod(np.where(values > 0.5, p, 1.0 - p), axis=1)


def _finite_differences(function, logits, step=1e-5):
    logits = logits.astype(np.float64)
    eye = np.eye(len(logits))
    return np.array([(function(logits + step * e) - function(logits - step * e)) / (2 * step) for e in eye])


def _softmax(logits):
    p = np.exp(logits - logits.max())
    return p / p.sum()


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


def test_exact_gradient_of_bits_matches_finite_differences_of_the_written_out_expectation():
    def expectation(logits):
        values, probabilities = _bits_distribution(logits)
        return probabilities @ _numpy_f_bits(values)

    exact = diagnostics.exact_gradient(BIT_LOGITS, f_bits, variable="binary")
    np.testing.assert_allclose(exact, _finite_differences(expectation, BIT_LOGITS), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("variable", ["categorical", "binary"])
def test_exact_gradient_of_the_multi_sample_bound_matches_finite_differences(variable):
    # E over pairs (z_1, z_2) of log((exp f(z_1) + exp f(z_2)) / 2), written out as a double loop.
    def bound(logits):
        if variable == "categorical":
            values, probabilities = np.eye(len(logits), dtype="float32"), _softmax(logits)
            rewards = _numpy_f(values)
        else:
            values, probabilities = _bits_distribution(logits)
            rewards = _numpy_f_bits(values)
        return sum(
            probabilities[i] * probabilities[j] * np.log((np.exp(rewards[i]) + np.exp(rewards[j])) / 2)
            for i in range(len(values))
            for j in range(len(values))
        )

    logits, function = (LOGITS, f) if variable == "categorical" else (BIT_LOGITS, f_bits)
    exact = diagnostics.exact_gradient(logits, function, variable=variable, bound_samples=2)
    np.testing.assert_allclose(exact, _finite_differences(bound, logits), rtol=1e-6, atol=1e-9)
    # A different objective from E[f]: its gradient differs (by 0.020 and 0.016 in the largest component here).
    assert np.abs(exact - diagnostics.exact_gradient(logits, function, variable=variable)).max() > 0.01


# Every unbiased estimator, with the samples per estimate it is measured with and the evaluations of f that costs:
# (estimator, variable, num_samples, evaluations per estimate).
UNBIASED = [
    ("reinforce", "binary", 1, 1),
    ("reinforce_leave_one_out", "binary", 4, 4),
    ("vimco", "categorical", 3, 3),
    ("vimco", "binary", 3, 3),
    ("unordered_set", "categorical", 2, 2),
    ("unordered_set", "binary", 3, 3),
    ("arm", "binary", 4, 4),
    ("disarm", "binary", 4, 4),
    ("arsm", "categorical", 1, 7),  # 1 + 4 * 3 / 2 per Dirichlet draw
    ("arsm", "binary", 2, 4),  # two categories a bit: 1 + 1 per draw
    ("rebar", "categorical", 1, 3),  # f at the sample and at the two relaxed draws
    ("rebar", "binary", 2, 6),
    ("relax", "categorical", 2, 2),
    ("relax", "binary", 2, 2),
]


def _problem(variable):
    return (LOGITS, f) if variable == "categorical" else (BIT_LOGITS, f_bits)


@pytest.mark.parametrize("estimator, variable, num_samples, evaluations", UNBIASED, ids=lambda v: str(v))
def test_unbiased_estimators_are_unbiased_against_enumeration_and_cost_what_they_say(
    estimator, variable, num_samples, evaluations
):
    logits, function = _problem(variable)
    result = diagnostics.gradient_bias_variance(
        estimator, logits, function, num_estimates=20_000, temperature=0.5, num_samples=num_samples, variable=variable
    )
    # Each component of the mean within 4.5 of its standard errors (sqrt(variance / 20,000)); and the norm too.
    assert result["bias_z"] < 4.5, result
    assert result["bias"] < 5 * result["bias_standard_error"], result
    assert result["variance"] > 1e-3  # they are estimates, not the exact value
    assert result["evaluations"] == evaluations
    assert result["target"] == (f"E[log mean_{num_samples} exp f]" if estimator == "vimco" else "E[f]")


@pytest.mark.parametrize("variable", ["categorical", "binary"])
def test_gumbel_softmax_is_detected_as_biased_on_both_variables(variable):
    logits, function = _problem(variable)
    result = diagnostics.gradient_bias_variance(
        "gumbel_softmax", logits, function, num_estimates=20_000, temperature=1.0, num_samples=1, variable=variable
    )
    # The same test the unbiased ones pass, failed by far: a real bias, not noise.
    assert result["bias_z"] > 10, result
    assert result["evaluations"] == 1


@pytest.mark.parametrize("variable", ["categorical", "binary"])
def test_the_pathwise_estimators_run_on_bits_and_straight_through_is_closer_than_the_relaxation(variable):
    logits, function = _problem(variable)
    results = {
        name: diagnostics.gradient_bias_variance(
            name, logits, function, num_estimates=20_000, temperature=0.5, num_samples=1, variable=variable
        )
        for name in ("gumbel_softmax", "straight_through", "gumbel_rao", "reinmax")
    }
    for result in results.values():
        assert result["evaluations"] == 1 and np.isfinite(result["mse"])
    # Gumbel-Rao averages straight-through's relaxed gradient over conditional draws: the same mean, less variance.
    assert results["gumbel_rao"]["variance"] < results["straight_through"]["variance"]
    difference = np.linalg.norm(results["gumbel_rao"]["mean"] - results["straight_through"]["mean"])
    assert difference < 5 * math.hypot(
        results["gumbel_rao"]["bias_standard_error"], results["straight_through"]["bias_standard_error"]
    )


@pytest.mark.parametrize("variable, evaluations", [("categorical", 4), ("binary", 8)])
def test_enumeration_is_exact_at_the_cost_of_the_whole_support(variable, evaluations):
    logits, function = _problem(variable)
    result = diagnostics.gradient_bias_variance("enumerate", logits, function, num_estimates=500, variable=variable)
    assert result["bias"] < 1e-5 and result["variance"] < 1e-10, result
    assert result["evaluations"] == evaluations


def test_unordered_set_with_k_equal_to_the_number_of_categories_is_exact():
    result = diagnostics.gradient_bias_variance("unordered_set", LOGITS, f, num_estimates=500, num_samples=4)
    assert result["bias"] < 1e-5 and result["variance"] < 1e-10, result


def test_vimco_estimates_its_bound_not_the_expectation():
    def spread(z):  # rewards 0 to 15: log-mean-exp of two of them is far from their mean
        return 3.0 * f(z)

    result = diagnostics.gradient_bias_variance("vimco", LOGITS, spread, num_estimates=20_000, num_samples=2)
    assert result["bias_z"] < 4.5, result
    # Against grad E[f] its mean is off by far more than its sampling error (8.7 standard errors when written).
    expectation = diagnostics.exact_gradient(LOGITS, spread)
    assert np.linalg.norm(result["mean"] - expectation) > 5 * result["bias_standard_error"]


@pytest.mark.slow
@pytest.mark.parametrize("estimator, variable", [("relax", "categorical"), ("relax", "binary")])
def test_a_short_variance_training_lowers_relax_variance_and_keeps_it_unbiased(estimator, variable):
    logits, function = _problem(variable)
    kwargs = dict(num_estimates=20_000, temperature=0.5, num_samples=2, variable=variable)
    untrained = diagnostics.gradient_bias_variance(estimator, logits, function, **kwargs)
    trained = diagnostics.gradient_bias_variance(estimator, logits, function, control_variate_steps=200, **kwargs)
    assert trained["bias_z"] < 4.5, trained
    # Its surrogate starts at 0 (plain REINFORCE); trained, it removes much of the variance. The variance of the
    # variance estimate is ~sqrt(2 / 20,000) relative (for light tails): a factor 1.5 is far beyond it.
    assert trained["variance"] < untrained["variance"] / 1.5, (untrained["variance"], trained["variance"])


def test_estimators_for_each_variable():
    assert diagnostics.estimators_for("binary") == diagnostics.ESTIMATORS
    categorical = diagnostics.estimators_for("categorical")
    assert set(diagnostics.ESTIMATORS) - set(categorical) == {"arm", "disarm"}
    # The names of earlier versions come first, in their order.
    assert diagnostics.ESTIMATORS[:6] == (
        "gumbel_softmax",
        "straight_through",
        "gumbel_rao",
        "reinmax",
        "reinforce",
        "reinforce_leave_one_out",
    )


def test_bad_arguments_of_the_new_estimators_and_variables():
    with pytest.raises(ValueError, match="variable='ternary'"):
        diagnostics.gradient_estimates("reinforce", LOGITS, f, variable="ternary")
    with pytest.raises(ValueError, match="variable='ternary'"):
        diagnostics.estimators_for("ternary")
    with pytest.raises(ValueError, match="binary variables only.*estimator='disarm'"):
        diagnostics.gradient_estimates("disarm", LOGITS, f)
    with pytest.raises(ValueError, match="num_samples"):  # ARM evaluates pairs
        diagnostics.gradient_estimates("arm", BIT_LOGITS, f_bits, num_samples=3, variable="binary")
    with pytest.raises(ValueError, match="num_samples"):  # VIMCO's baselines need a second sample
        diagnostics.gradient_estimates("vimco", LOGITS, f, num_samples=1)
    with pytest.raises(ValueError, match="control_variate_steps=5"):
        diagnostics.gradient_estimates("reinforce", LOGITS, f, control_variate_steps=5)
    with pytest.raises(ValueError, match="logits="):
        diagnostics.gradient_estimates("arm", np.zeros(17, "float32"), f_bits, variable="binary")
    with pytest.raises(ValueError, match="logits="):
        diagnostics.exact_gradient(np.array([0.0, -np.inf], "float32"), f_bits, variable="binary")
    with pytest.raises(ValueError, match="bound_samples=8"):  # 4^8 tuples
        diagnostics.exact_gradient(np.zeros(8, "float32"), f, bound_samples=8)
    with pytest.raises(TypeError, match="seed="):
        diagnostics.gradient_estimates("vimco", LOGITS, f, seed=keras.random.SeedGenerator(1))
    with pytest.raises(ValueError, match="one value per row"):
        diagnostics.exact_gradient(BIT_LOGITS, lambda b: b, variable="binary")
