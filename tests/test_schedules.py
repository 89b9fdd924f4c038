"""keras_gumbel.schedules: formulas, Python/tensor agreement, serialization, errors."""

import math

import keras
import numpy as np
import pytest
from helpers import to_numpy

from keras_gumbel import schedules

STEPS = [0, 1, 499, 500, 501, 999, 1000, 5_000, 20_000, 10**6]


def reference(schedule, step):
    """The docstring formulas, written out independently."""
    config = schedule.get_config()
    if isinstance(schedule, schedules.Constant):
        return config["temperature"]
    every = config["update_every"]
    held = every * math.floor(step / every)
    if isinstance(schedule, schedules.ExponentialDecay):
        return max(config["minimum"], config["initial"] * math.exp(-config["rate"] * held))
    fraction = min(1.0, held / config["decay_steps"])
    if isinstance(schedule, schedules.LinearDecay):
        return config["initial"] + (config["final"] - config["initial"]) * fraction
    return config["final"] + (config["initial"] - config["final"]) * (1 + math.cos(math.pi * fraction)) / 2


ALL = [
    schedules.ExponentialDecay(initial=1.0, rate=1e-4, minimum=0.5, update_every=500),
    schedules.ExponentialDecay(initial=2.0, rate=3e-5, minimum=0.1),
    schedules.LinearDecay(initial=2.0, final=0.5, decay_steps=10_000, update_every=100),
    schedules.CosineDecay(initial=5.0, final=0.3, decay_steps=4_000),
    schedules.Constant(0.7),
]


@pytest.mark.parametrize("schedule", ALL, ids=repr)
def test_python_and_tensor_values_follow_the_formula(schedule):
    expected = [reference(schedule, step) for step in STEPS]
    np.testing.assert_allclose([schedule(step) for step in STEPS], expected, rtol=1e-12)
    as_tensor = to_numpy(schedule(keras.ops.convert_to_tensor(STEPS, "int64")))
    np.testing.assert_allclose(as_tensor, expected, rtol=1e-5)


@pytest.mark.parametrize("schedule", ALL, ids=repr)
def test_serialization_round_trips(schedule):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert type(restored) is type(schedule)
    assert restored.get_config() == schedule.get_config()


def test_jang_schedule_is_held_between_updates_and_floored():
    schedule = schedules.ExponentialDecay(initial=1.0, rate=1e-4, minimum=0.5, update_every=1000)
    assert schedule(999) == 1.0
    assert schedule(1000) == pytest.approx(math.exp(-0.1))
    assert schedule(10**7) == 0.5


def test_linear_and_cosine_reach_final_and_stay():
    for schedule_class in (schedules.LinearDecay, schedules.CosineDecay):
        schedule = schedule_class(initial=2.0, final=0.5, decay_steps=100)
        assert schedule(0) == 2.0
        assert schedule(100) == pytest.approx(0.5)
        assert schedule(10_000) == pytest.approx(0.5)
        assert schedule(50) == pytest.approx(1.25)


FLOOR = 2.0**-104  # the temperature floor


@pytest.mark.parametrize(
    "schedule, low",
    [
        (schedules.LinearDecay(1.0, final=FLOOR, decay_steps=10), FLOOR),
        (schedules.LinearDecay(1.0, final=1e-20, decay_steps=10), 1e-20),
        (schedules.CosineDecay(FLOOR, final=1.0, decay_steps=10), FLOOR),
    ],
    ids=["linear-to-floor", "linear-to-1e-20", "cosine-from-floor"],
)
def test_decays_stay_between_initial_and_final(schedule, low):
    # `initial + (final - initial) * fraction` rounds: 1.0 + (2**-104 - 1.0) is 0.0, a temperature below the floor,
    # which stopped TemperatureAnnealing at that step and which a custom loop assigned.
    steps = list(range(12))
    python = [schedule(step) for step in steps]
    tensor = to_numpy(schedule(keras.ops.convert_to_tensor(steps)))
    assert min(python) == low and max(python) == 1.0
    assert tensor.min() == np.float32(low) and tensor.max() == 1.0


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: schedules.ExponentialDecay(initial=0.0), ValueError, "initial=0.0"),
        (lambda: schedules.ExponentialDecay(rate=-1.0), ValueError, "rate=-1.0"),
        (lambda: schedules.ExponentialDecay(minimum=float("nan")), ValueError, "minimum=nan"),
        (lambda: schedules.ExponentialDecay(update_every=0), ValueError, "update_every=0"),
        (lambda: schedules.LinearDecay(decay_steps=2.5), TypeError, "decay_steps=2.5"),
        (lambda: schedules.CosineDecay(final=-0.5), ValueError, "final=-0.5"),
        (lambda: schedules.Constant("hot"), TypeError, "temperature='hot'"),
    ],
)
def test_bad_arguments_name_argument_and_value(make, error, match):
    with pytest.raises(error, match=match):
        make()
