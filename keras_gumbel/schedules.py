"""Temperature schedules: serializable maps from the training step to a temperature.

Each schedule is a callable `schedule(step) -> temperature`. Given a Python
number it computes in Python (cheap, for callbacks); given a tensor it computes
with `keras.ops` (usable inside compiled functions). Use them with
`keras_gumbel.TemperatureAnnealing`, or call them in a custom loop and assign
the result to a layer's `temperature` variable.

Examples:
    >>> import keras_gumbel
    >>> schedule = keras_gumbel.schedules.ExponentialDecay(
    ...     1.0, rate=1e-4, minimum=0.5, update_every=500
    ... )
    >>> [round(schedule(step), 4) for step in (0, 499, 500, 10_000, 100_000)]
    [1.0, 1.0, 0.9512, 0.5, 0.5]
"""

import math
import numbers

import keras
from keras import ops

from keras_gumbel import _validation

__all__ = ["TemperatureSchedule", "ExponentialDecay", "LinearDecay", "CosineDecay", "Constant"]


class _PythonMath:
    floor, exp, cos = math.floor, math.exp, math.cos
    maximum, minimum = max, min

    @staticmethod
    def cast(x):
        return float(x)


class _TensorMath:
    floor, exp, cos = ops.floor, ops.exp, ops.cos
    maximum, minimum = ops.maximum, ops.minimum

    @staticmethod
    def cast(x):
        return ops.cast(x, "float32")


class TemperatureSchedule:
    """Base class: subclasses implement `temperature_at(step, xp)` and `get_config()`.

    `xp` provides `floor`, `exp`, `cos`, `maximum`, `minimum` and `cast`, for
    Python numbers or for tensors, so that each formula is written once.
    """

    def __call__(self, step):
        if isinstance(step, numbers.Number):
            return self.temperature_at(float(step), _PythonMath)
        return self.temperature_at(_TensorMath.cast(step), _TensorMath)

    def temperature_at(self, step, xp):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


def _steps_held(step, update_every, xp):
    """The step rounded down to a multiple of `update_every` (the schedule is held in between)."""
    return xp.floor(step / update_every) * update_every


@keras.saving.register_keras_serializable(package="keras_gumbel")
class ExponentialDecay(TemperatureSchedule):
    """Jang et al.'s schedule: exponential decay held every `update_every` steps, floored at `minimum`.

        temperature = max(minimum, initial * exp(-rate * N * floor(step / N)))
        N = update_every

    Jang et al. (2017) used initial 1.0, rate 1e-5 to 1e-4, minimum 0.5 and
    N = 500 to 1000 for their categorical VAE. wav2vec 2.0's
    `max(2 * 0.999995**step, 0.5)` is `ExponentialDecay(2.0,
    rate=-math.log(0.999995), minimum=0.5)`; the concrete autoencoder's
    `T0 * (TB / T0)**(step / B)` (held at TB after B steps) is
    `ExponentialDecay(T0, rate=math.log(T0 / TB) / B, minimum=TB)`.

    Args:
        initial: Positive temperature at step 0.
        rate: Non-negative decay rate per step.
        minimum: Positive floor.
        update_every: Positive integer N.
    """

    def __init__(self, initial=1.0, rate=1e-4, minimum=0.5, update_every=1):
        self.initial = _validation.check_temperature(initial, "initial")
        self.rate = _validation.check_non_negative("rate", rate)
        self.minimum = _validation.check_temperature(minimum, "minimum")
        self.update_every = _validation.check_int("update_every", update_every, minimum=1)

    def temperature_at(self, step, xp):
        held = _steps_held(step, self.update_every, xp)
        return xp.maximum(self.minimum, self.initial * xp.exp(-self.rate * held))

    def get_config(self):
        return {"initial": self.initial, "rate": self.rate, "minimum": self.minimum, "update_every": self.update_every}


class _DecayToFinal(TemperatureSchedule):
    """Shared arguments of the schedules that go from `initial` to `final` in `decay_steps`."""

    def __init__(self, initial=1.0, final=0.5, decay_steps=10_000, update_every=1):
        self.initial = _validation.check_temperature(initial, "initial")
        self.final = _validation.check_temperature(final, "final")
        self.decay_steps = _validation.check_int("decay_steps", decay_steps, minimum=1)
        self.update_every = _validation.check_int("update_every", update_every, minimum=1)

    def _fraction(self, step, xp):
        return xp.minimum(1.0, _steps_held(step, self.update_every, xp) / self.decay_steps)

    def _between_ends(self, value, xp):
        """`value` kept between `initial` and `final`, which it can leave by rounding.

        `initial + (final - initial) * fraction` loses a `final` far below
        `initial`: 1.0 + (2**-104 - 1.0) is 0.0, a temperature below the floor.
        """
        low, high = min(self.initial, self.final), max(self.initial, self.final)
        return xp.minimum(xp.maximum(value, low), high)

    def get_config(self):
        return {
            "initial": self.initial,
            "final": self.final,
            "decay_steps": self.decay_steps,
            "update_every": self.update_every,
        }


@keras.saving.register_keras_serializable(package="keras_gumbel")
class LinearDecay(_DecayToFinal):
    """Linear interpolation from `initial` to `final` over `decay_steps`, then `final`.

        fraction = min(1, N * floor(step / N) / decay_steps),  N = update_every
        temperature = initial + (final - initial) * fraction

    Args:
        initial: Positive temperature at step 0.
        final: Positive temperature from `decay_steps` on.
        decay_steps: Positive integer.
        update_every: Positive integer N.
    """

    def temperature_at(self, step, xp):
        return self._between_ends(self.initial + (self.final - self.initial) * self._fraction(step, xp), xp)


@keras.saving.register_keras_serializable(package="keras_gumbel")
class CosineDecay(_DecayToFinal):
    """Half a cosine from `initial` to `final` over `decay_steps`, then `final`.

        fraction = min(1, N * floor(step / N) / decay_steps),  N = update_every
        temperature = final + (initial - final) * (1 + cos(pi * fraction)) / 2

    Args:
        initial: Positive temperature at step 0.
        final: Positive temperature from `decay_steps` on.
        decay_steps: Positive integer.
        update_every: Positive integer N.
    """

    def temperature_at(self, step, xp):
        value = self.final + (self.initial - self.final) * 0.5 * (1.0 + xp.cos(math.pi * self._fraction(step, xp)))
        return self._between_ends(value, xp)


@keras.saving.register_keras_serializable(package="keras_gumbel")
class Constant(TemperatureSchedule):
    """The same temperature at every step.

    Args:
        temperature: Positive temperature.
    """

    def __init__(self, temperature=1.0):
        self.temperature = _validation.check_temperature(temperature)

    def temperature_at(self, step, xp):
        return self.temperature if xp is _PythonMath else ops.full_like(step, self.temperature)

    def get_config(self):
        return {"temperature": self.temperature}
