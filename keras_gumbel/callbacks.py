"""TemperatureAnnealing: a Keras callback that sets the temperature of Gumbel layers by schedule."""

import math

import keras

from keras_gumbel import _tf_private
from keras_gumbel import _validation
from keras_gumbel.layers._base import TemperatureLayer


class TemperatureAnnealing(keras.callbacks.Callback):
    """Anneals the temperature of the model's Gumbel layers during `fit`.

    Before each training batch the callback reads the optimizer's step count
    (`model.optimizer.iterations`), evaluates the schedule at that step and
    assigns the result to each selected layer's `temperature` variable. The
    compiled train step reads the variable, so nothing is retraced, with or
    without `jit_compile=True`. Counting optimizer steps means resuming (a
    second `fit`, `initial_epoch`, `BackupAndRestore`, a reloaded `.keras`
    model with its optimizer) continues the schedule instead of restarting it.

    With `steps_per_execution=N`, Keras runs N steps per call of the compiled
    function and calls the callback once per call: the temperature is then set
    at the first step of each block of N and held for the block.

    Layers that learn their temperature (`trainable_temperature=True`) are
    left to their optimizer: they are skipped when `layers` is not given, and
    naming one in `layers` is a `ValueError` (the two would overwrite each
    other every step).

    At the end of each epoch the current temperature is written into the epoch
    logs as `temperature` (History and later-listed callbacks such as
    `CSVLogger` and `TensorBoard` see it: list this callback before them).

    Args:
        schedule: A `keras_gumbel.schedules.TemperatureSchedule`, any callable
            `step -> temperature`, or a
            `keras.optimizers.schedules.LearningRateSchedule`. Each value must
            be a temperature the layers' constructors accept (finite, from the
            temperature floor `2**-104`, about 4.9e-32, to float32's largest
            number, 3.4e38); any other is a `ValueError` naming the step and
            the value, never assigned.
        layers: `None` (every Gumbel layer of the model whose temperature is
            not learned, nested models included), or a list of layers or layer
            names.
        update_every: Positive integer: assign a new value every this many
            optimizer steps (the schedule is still evaluated at the exact step).
        verbose: 0 quiet, 1 prints each change of temperature.

    Examples:
        ```python
        schedule = keras_gumbel.schedules.ExponentialDecay(
            1.0, rate=3e-5, minimum=0.5, update_every=500
        )
        annealing = keras_gumbel.TemperatureAnnealing(schedule)
        model.fit(x, y, epochs=100, callbacks=[annealing])
        ```

    Reference:
        - [Jang et al., 2017](https://arxiv.org/abs/1611.01144), section 4.
    """

    def __init__(self, schedule, layers=None, update_every=1, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(_validation.invalid("schedule", "a schedule or a callable step -> temperature", schedule))
        if layers is not None and (isinstance(layers, (str, keras.layers.Layer)) or not hasattr(layers, "__iter__")):
            raise TypeError(_validation.invalid("layers", "None or a list of layers or layer names", layers))
        self.schedule = schedule
        self.layers = None if layers is None else list(layers)
        self.update_every = _validation.check_int("update_every", update_every, minimum=1)
        self.verbose = _validation.check_int("verbose", verbose, minimum=0)
        self._annealed = []
        self._last_update_step = None

    @property
    def annealed_layers(self):
        """The layers this callback sets (known once training has begun)."""
        return list(self._annealed)

    def on_train_begin(self, logs=None):
        self._annealed = self._select_layers()
        self._last_update_step = None

    def on_train_batch_begin(self, batch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if (
            self._last_update_step is not None
            and step // self.update_every == self._last_update_step // self.update_every
        ):
            return
        temperature = self._temperature_at(step)
        previous = self.current_temperature() if self.verbose else None  # a device read only when printing
        for layer in self._annealed:
            layer.temperature.assign(temperature)
        self._last_update_step = step
        if self.verbose and (previous is None or not math.isclose(previous, temperature, rel_tol=1e-6)):
            io_print(f"\nStep {step}: TemperatureAnnealing set the temperature to {temperature:.6g}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._annealed:
            logs["temperature"] = self.current_temperature()

    def current_temperature(self):
        """The temperature of the first annealed layer, or None before training."""
        if not self._annealed:
            return None
        return float(keras.ops.convert_to_numpy(self._annealed[0].temperature))

    def _temperature_at(self, step):
        value = self.schedule(step)
        try:
            value = float(keras.ops.convert_to_numpy(value))
        except (TypeError, ValueError) as error:
            raise TypeError(f"The schedule returned {value!r} at step {step}; expected a number.") from error
        try:
            return _validation.check_temperature(value)  # the rule the layers' constructors apply
        except ValueError as error:
            raise ValueError(f"The schedule returned temperature={value!r} at step {step}: {error}") from None

    def _select_layers(self):
        found = [layer for layer in _all_layers(self.model) if isinstance(layer, TemperatureLayer)]
        if self.layers is None:
            selected = [layer for layer in found if not layer.trainable_temperature]
            if not selected:
                learned = [layer.name for layer in found]
                reason = (
                    f"its Gumbel layers {learned} all learn their temperature (trainable_temperature=True)"
                    if learned
                    else "it holds no keras_gumbel layer with a temperature"
                )
                raise ValueError(f"TemperatureAnnealing has nothing to anneal in model {self.model.name!r}: {reason}.")
            return selected
        by_name = {layer.name: layer for layer in found}
        selected = []
        for item in self.layers:
            layer = by_name.get(item) if isinstance(item, str) else item
            if layer is None:
                raise ValueError(
                    _validation.invalid("layers", f"names of Gumbel layers of the model, among {sorted(by_name)}", item)
                )
            if not any(layer is candidate for candidate in found):
                raise ValueError(
                    _validation.invalid("layers", "Gumbel layers that belong to the model being trained", layer.name)
                )
            if layer.trainable_temperature:
                raise ValueError(
                    f"Layer {layer.name!r} learns its temperature (trainable_temperature=True); annealing it too "
                    "would overwrite each optimizer step. Remove it from `layers` or set trainable_temperature=False."
                )
            selected.append(layer)
        if not selected:
            raise ValueError(_validation.invalid("layers", "a non-empty list", self.layers))
        return selected


def _all_layers(model):
    """Every layer inside `model`, nested models and layers included."""
    return _tf_private.flatten_layers(model)


def io_print(message):
    print(message)
