"""keras_gumbel._validation: the checks' ranges and their Keras-worded messages."""

import numpy as np
import pytest
import tensorflow as tf

from keras_gumbel import _validation


@pytest.mark.parametrize("value", [2e-38, 1.2e-38, 1e-38, 0.0, -1.0, float("nan"), float("inf"), 1e39])
def test_temperatures_below_the_floor_or_beyond_float32_are_refused(value):
    with pytest.raises(ValueError, match=r"Invalid value received for argument `temperature`.*Received: temperature="):
        _validation.check_temperature(value)


@pytest.mark.parametrize("value", [2.0**-104, np.float32(0.5), np.float64(3e38), 7])
def test_temperatures_from_the_floor_to_the_float32_maximum_are_accepted_as_floats(value):
    assert isinstance(_validation.check_temperature(value), float)


def test_the_floor_keeps_scaled_float32_logits_finite():
    # The floor's reason: logits / floor is finite for every float32 |logits| < 2**24, and overflows at 2**24.
    inverse = np.float32(1.0) / np.float32(_validation.MIN_TEMPERATURE)
    with np.errstate(over="ignore"):
        assert np.isfinite(np.float32(2**24 - 1) * inverse) and np.isinf(np.float32(2**24) * inverse)


def test_a_temperature_below_the_floor_is_refused_with_the_floor_named():
    # temperature=2e-38 used to pass: N(0, 25) logits / 2e-38 overflowed and 60% of the outputs were NaN.
    expected = (
        r"Invalid value received for argument `temperature`\. Expected a float between 4\.93038e-32 \(the temperature "
        r"floor, 2\*\*-104\) and 3\.40282e\+38 \(float32's largest number\)\. Received: temperature=2e-38$"
    )
    with pytest.raises(ValueError, match=expected):
        _validation.check_temperature(2e-38)


@pytest.mark.parametrize("value", ["1.0", None, True, tf.constant(0.5)])
def test_non_numbers_are_type_errors(value):
    with pytest.raises(TypeError, match="`temperature`"):
        _validation.check_temperature(value)


def test_seeds():
    assert _validation.check_seed(np.int64(3)) == 3 and _validation.check_seed(None) is None
    with pytest.raises(ValueError, match="64 bits"):
        _validation.check_seed(2**63)
    with pytest.raises(TypeError, match="`seed`"):
        _validation.check_seed(1.5)


def test_category_axis():
    logits = tf.zeros((2, 3))
    assert _validation.check_category_axis(logits, -1) == 1
    with pytest.raises(ValueError, match=r"an axis in \[-2, 2\)"):
        _validation.check_category_axis(logits, 2)
    with pytest.raises(ValueError, match="at least one category along axis 1"):
        _validation.check_category_axis(tf.zeros((2, 0)), -1)
    unknown = tf.function(lambda x: _validation.rank(x), input_signature=[tf.TensorSpec(None)])
    with pytest.raises(ValueError, match="a tensor of known rank"):
        unknown(logits)
