"""Argument checks shared by ops, layers, schedules and callbacks.

Messages follow Keras' wording: "Invalid value received for argument `name`.
Expected ... Received: name=value".
"""

import math
import numbers


def invalid(name, expected, value):
    return f"Invalid value received for argument `{name}`. Expected {expected}. Received: {name}={value!r}"


def _as_number(value):
    """A NumPy scalar or 0-d array as a Python number; anything else unchanged."""
    if hasattr(value, "ndim") and hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        if type(value).__module__.startswith("numpy"):
            return value.item()
    return value


def check_real(name, value, expected, condition):
    """Returns `value` as a float: a TypeError unless it is a real number, a ValueError unless `condition(value)`.

    Python and NumPy numbers (and 0-d NumPy arrays) are accepted; bools are not.
    """
    value = _as_number(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(invalid(name, expected, value))
    value = float(value)
    if not condition(value):
        raise ValueError(invalid(name, expected, value))
    return value


def check_positive_finite(name, value):
    """Returns `value` as a float after checking that it is a finite number > 0."""
    return check_real(name, value, "a positive finite float", lambda v: math.isfinite(v) and v > 0)


def check_non_negative(name, value):
    """Returns `value` as a float after checking that it is a finite number >= 0."""
    return check_real(name, value, "a non-negative finite float", lambda v: math.isfinite(v) and v >= 0)


# Temperatures are held and applied in float32.
_FLOAT32_MAX = 3.4028234663852886e38  # (2 - 2**-23) * 2**127

# The temperature floor, 2**-104 (about 4.9e-32). The kernels scale logits by 1 / temperature before the softmax
# (or sigmoid, or Sinkhorn) normalises them, and float32 overflows past 2**128: at the floor, logits * 2**104 is
# finite for every |logits + noise| < 2**24 (exactly: a power of two scales without rounding). Float32 numbers of
# 2**24 and more are 2 or more apart, too coarse to hold the Gumbel noise (standard deviation 1.28), so no logits that
# float32 can sample from overflow at any temperature from the floor up; below it, logits of 5 overflowed at 2e-38
# and the softmax gave NaN. Constructors, ops, schedules and `TemperatureAnnealing` refuse a number below the floor; a
# temperature tensor or variable below it (0, negative: `layer.temperature.assign(-0.07)`) is read as the floor
# (`_sampling.floored_temperature`).
MIN_TEMPERATURE = 2.0**-104


def check_temperature(value, name="temperature"):
    """A positive finite temperature from `MIN_TEMPERATURE` (2**-104, about 4.9e-32) to float32's largest number."""
    value = check_positive_finite(name, value)
    if not MIN_TEMPERATURE <= value <= _FLOAT32_MAX:
        raise ValueError(
            invalid(
                name,
                f"a float between {MIN_TEMPERATURE:.6g} (the temperature floor, 2**-104) and {_FLOAT32_MAX:.6g} "
                "(float32's largest number)",
                value,
            )
        )
    return value


def check_int(name, value, minimum=None):
    value = _as_number(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(invalid(name, "an integer", value))
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(invalid(name, f"an integer >= {minimum}", value))
    return value


def check_bool(name, value):
    value = _as_number(value)
    if not isinstance(value, bool):
        raise TypeError(invalid(name, "a bool", value))
    return value


def check_axis(axis, rank):
    """Normalises `axis` for a tensor of known `rank`; raises for one out of range."""
    if rank is not None and not -rank <= axis < rank:
        raise ValueError(invalid("axis", f"an axis in [{-rank}, {rank}) for logits of rank {rank}", axis))
    return axis if rank is None or axis >= 0 else axis + rank


def rank(tensor, name="logits"):
    """The rank of `tensor`; a ValueError naming `name` if it is unknown (a tf.function traced without shapes)."""
    try:
        return len(tensor.shape)
    except ValueError:  # TensorFlow: "Cannot take the length of shape with unknown rank."
        raise ValueError(
            invalid(
                name,
                "a tensor of known rank (in a tf.function, give its input_signature a shape such as [None, K])",
                "<a tensor of unknown rank>",
            )
        ) from None


def check_category_axis(tensor, axis, name="logits"):
    """Normalises the category `axis` of `tensor`: a known rank, an axis in range, at least one category."""
    axis = check_axis(check_int("axis", axis), rank(tensor, name))
    if tensor.shape[axis] == 0:
        raise ValueError(
            invalid(name, f"at least one category along axis {axis}", f"<a tensor of shape {tuple(tensor.shape)}>")
        )
    return axis


def check_seed(value, tensors=False):
    """Checks a `seed` argument: `None`, an integer or a `keras.random.SeedGenerator`.

    With `tensors=True` (the ops), arrays and tensors pass through too:
    `_backend.normalize_seed` checks them as the running backend's random ops
    take them (a JAX key, a seed tensor of two integers).
    """
    import keras

    if value is None or isinstance(value, keras.random.SeedGenerator):
        return value
    value = _as_number(value)
    if tensors and hasattr(value, "shape") and hasattr(value, "dtype"):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        expected = "None, an integer or a keras.random.SeedGenerator"
        if tensors:
            expected = "None, an integer, a keras.random.SeedGenerator or a seed tensor (a JAX key, or two integers)"
        raise TypeError(invalid("seed", expected, value))
    if not -(2**63) <= value < 2**63:
        raise ValueError(invalid("seed", "an integer that fits in 64 bits", value))
    return int(value)


def static_shape(tensor):
    """A tensor's static shape as a tuple of ints and `None`s, or `None` where even the rank is unknown."""
    shape = tensor.shape
    if getattr(shape, "rank", 0) is None:  # a tf.TensorShape of unknown rank
        return None
    return tuple(size if isinstance(size, int) else None for size in shape)


def invalid_shape(name, expected, shape):
    """The Keras wording of `invalid`, with the shape (not the whole tensor) as the received value."""
    return f"Invalid value received for argument `{name}`. Expected {expected}. Received: {name}.shape={shape}"


def check_same_shape(name, tensor, reference_name, reference, per="sample"):
    """Refuses `tensor` whose static shape is not that of `reference` (sizes unknown when traced are skipped).

    A run-time assert would cost every step on every backend; mismatched ranks
    and known sizes are what broadcasting would silently turn into wrong terms.
    """
    shape, reference_shape = static_shape(tensor), static_shape(reference)
    if shape is None or reference_shape is None:
        return
    if len(shape) != len(reference_shape) or any(
        size is not None and other is not None and size != other for size, other in zip(shape, reference_shape)
    ):
        expected = f"the shape of `{reference_name}`, {reference_shape} (one value per {per})"
        raise ValueError(invalid_shape(name, expected, shape))
