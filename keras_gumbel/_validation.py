"""Argument checks shared by ops, layers, schedules and callbacks.

Messages follow Keras' wording: "Invalid value received for argument `name`.
Expected ... Received: name=value".
"""

import math
import numbers


def invalid(name, expected, value):
    return f"Invalid value received for argument `{name}`. Expected {expected}. Received: {name}={value!r}"


def check_positive_finite(name, value):
    """Returns `value` as a float after checking that it is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(invalid(name, "a positive finite float", value))
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(invalid(name, "a positive finite float", value))
    return value


def check_int(name, value, minimum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(invalid(name, "an integer", value))
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(invalid(name, f"an integer >= {minimum}", value))
    return value


def check_bool(name, value):
    if not isinstance(value, bool):
        raise TypeError(invalid(name, "a bool", value))
    return value


def check_axis(axis, rank):
    """Normalises `axis` for a tensor of known `rank`; raises for one out of range."""
    if rank is not None and not -rank <= axis < rank:
        raise ValueError(invalid("axis", f"an axis in [{-rank}, {rank}) for logits of rank {rank}", axis))
    return axis if rank is None or axis >= 0 else axis + rank


def check_seed(value):
    import keras

    if value is None or isinstance(value, keras.random.SeedGenerator):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(invalid("seed", "None, an integer or a keras.random.SeedGenerator", value))
    return int(value)
