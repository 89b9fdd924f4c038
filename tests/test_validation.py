"""keras_gumbel._validation: the checks' ranges and their Keras-worded messages."""

import numpy as np
import pytest
import tensorflow as tf

from keras_gumbel import _validation


@pytest.mark.parametrize("value", [1e-38, 0.0, -1.0, float("nan"), float("inf"), 1e39])
def test_temperatures_float32_cannot_hold_are_refused(value):
    with pytest.raises(ValueError, match=r"Invalid value received for argument `temperature`.*Received: temperature="):
        _validation.check_temperature(value)


@pytest.mark.parametrize("value", [1.2e-38, np.float32(0.5), np.float64(3e38), 7])
def test_temperatures_float32_holds_are_accepted_as_floats(value):
    assert isinstance(_validation.check_temperature(value), float)


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
