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
