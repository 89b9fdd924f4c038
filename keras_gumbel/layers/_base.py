"""The bases of the Gumbel layers.

`TemperatureLayer`: the temperature variable, seed generator and their checks
and config (every Gumbel layer; what `TemperatureAnnealing` looks for).
`CategoricalLayer(TemperatureLayer)`: a category axis, masks over it and the
TFP distribution (`GumbelSoftmax`, `StraightThroughGumbel`). `RelaxedBernoulli`
(no category axis) and `GumbelAttention` (a set axis of its own) are
`TemperatureLayer`s.
"""

import contextlib

import keras
from keras import ops

from keras_gumbel import _backend
from keras_gumbel import _deprecation
from keras_gumbel import _sampling
from keras_gumbel import _validation
from keras_gumbel import ops as gumbel_ops
from keras_gumbel.layers._seed_state import TrackSeedState

# A learned temperature is kept at or above this value: below it the relaxed
# gradient's variance explodes and float32 softmax saturates.
MIN_LEARNED_TEMPERATURE = 0.05


@keras.saving.register_keras_serializable(package="keras_gumbel")
class MinValue(keras.constraints.Constraint):
    """Clips a weight from below at `min_value` (the learned temperature's floor)."""

    def __init__(self, min_value):
        self.min_value = float(min_value)

    def __call__(self, w):
        return ops.maximum(w, ops.cast(self.min_value, w.dtype))

    def get_config(self):
        return {"min_value": self.min_value}


def renamed_argument(kwargs, layer, old, new, value, default, since="0.3.0"):
    """The value of argument `new`, or that of its deprecated name `old` popped from `kwargs`, with a FutureWarning.

    A layer takes the old name through `**kwargs` (before passing them to
    `keras.layers.Layer`), so that it stays out of the signature and of
    `get_config()`, while a config saved before the rename, which has the old
    key, still loads: `from_config` passes it here.
    """
    if old not in kwargs:
        return value
    old_value = kwargs.pop(old)
    if value != default:
        raise TypeError(f"{layer}() got both `{old}` (its old name) and `{new}`: pass `{new}`.")
    _deprecation.warn(
        f"`{layer}({old}=...)` is deprecated since keras-gumbel {since} {_deprecation._REMOVED}: use `{new}=`."
    )
    return old_value


class TemperatureLayer(TrackSeedState, keras.layers.Layer):
    """A layer that samples with a temperature: the state every Gumbel layer holds.

    The temperature variable (float32, never autocast; read at or above
    `min_temperature`: the temperature floor, `2**-104`, or
    `MIN_LEARNED_TEMPERATURE` if `trainable_temperature`), the seed generator
    (its state saved with the weights), `sample_at_inference`, their checks and
    config. `TemperatureAnnealing` anneals every `TemperatureLayer` of a model.
    Subclasses implement `call` and document themselves.
    """

    min_learned_temperature = MIN_LEARNED_TEMPERATURE

    @property
    def min_temperature(self):
        """The floor at which `call()` reads the temperature variable: 0.05 if learned, else `2**-104` (4.9e-32)."""
        return MIN_LEARNED_TEMPERATURE if self.trainable_temperature else _validation.MIN_TEMPERATURE

    def __init__(
        self,
        temperature=1.0,
        sample_at_inference=False,
        trainable_temperature=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        temperature = _validation.check_temperature(temperature)
        self.sample_at_inference = _validation.check_bool("sample_at_inference", sample_at_inference)
        self.trainable_temperature = _validation.check_bool("trainable_temperature", trainable_temperature)
        if trainable_temperature and temperature < MIN_LEARNED_TEMPERATURE:
            raise ValueError(
                _validation.invalid(
                    "temperature",
                    f"a value >= {MIN_LEARNED_TEMPERATURE} (the floor of a learned temperature) "
                    "when `trainable_temperature=True`",
                    temperature,
                )
            )
        if isinstance(seed, keras.random.SeedGenerator):
            raise TypeError(
                _validation.invalid("seed", "None or an integer (the layer makes its own SeedGenerator)", seed)
            )
        self.seed = _validation.check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(_backend.fold_seed(self.seed))
        # float32 whatever the dtype policy, and never autocast to float16:
        # temperatures such as 1e-4 and 1e3 must keep their value.
        self.temperature = self.add_weight(
            name="temperature",
            shape=(),
            initializer=keras.initializers.Constant(temperature),
            dtype="float32",
            trainable=trainable_temperature,
            autocast=False,
            constraint=MinValue(MIN_LEARNED_TEMPERATURE) if trainable_temperature else None,
        )

    def build(self, input_shape):
        self.built = True

    def _current_temperature(self):
        """The temperature variable as `call()` applies it: at least `min_temperature`.

        A learned temperature's constraint applies after each optimizer step;
        the clamp also covers values assigned by hand or by a schedule. Any
        other is floored by the kernels too (`_sampling.floored_temperature`):
        a value assigned below the floor is read as the floor here as well, so
        that `get_config()` and `distribution()` agree with the samples.
        """
        return _sampling.floored_temperature(self.temperature, floor=self.min_temperature)

    def _add_noise(self, training):
        return bool(training) or self.sample_at_inference

    def _draws(self, inputs, training):
        """The scope of a call's draws: at inference (`sample_at_inference=True`) the runtime's own random op.

        See `_backend.sampling_at_inference`: what an exported model can hold
        (ONNX, LiteRT, OpenVINO, `torch.export`), or an error at export time
        where the export would freeze the noise.
        """
        if training or not self.sample_at_inference:
            return contextlib.nullcontext()
        return _backend.sampling_at_inference(self, inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                # The current value (as applied: a learned one at or above its floor),
                # so a clone keeps an annealed or learned temperature.
                "temperature": float(ops.convert_to_numpy(self._current_temperature())),
                "sample_at_inference": self.sample_at_inference,
                "trainable_temperature": self.trainable_temperature,
                "seed": self.seed,
            }
        )
        return config


class CategoricalLayer(TemperatureLayer):
    """A `TemperatureLayer` over a category axis: Categorical(logits) relaxed or sampled along `axis`.

    Adds the category axis, Keras masks over it and `distribution()`.
    Subclasses set `_hard` (one-hot forward) or `log_space` (the log of the
    relaxed sample), or override `_draw`.
    """

    _hard = False
    log_space = False

    def __init__(self, temperature=1.0, axis=-1, **kwargs):
        # The public layers spell out their arguments; the rest are TemperatureLayer's.
        super().__init__(temperature=temperature, **kwargs)
        self.axis = _validation.check_int("axis", axis)
        self.supports_masking = True

    def build(self, input_shape):
        _validation.check_axis(self.axis, len(input_shape))
        self.built = True

    def call(self, inputs, training=None, mask=None):
        inputs = ops.convert_to_tensor(inputs)
        axis = _validation.check_category_axis(inputs, self.axis, name="inputs")
        if mask is not None:
            inputs = _mask_categories(inputs, mask, axis)
        with self._draws(inputs, training):
            return self._draw(
                inputs, self._current_temperature(), axis, self._add_noise(training), differentiable=bool(training)
            )

    def _draw(self, inputs, temperature, axis, add_noise, differentiable=True):
        """The sample (or, without noise, the deterministic output) for checked inputs.

        At inference (`training` false) a hard output carries no gradient (`differentiable=False`): nothing trains
        there, and exporters cannot read a custom gradient.
        """
        return _sampling.categorical(
            inputs,
            temperature,
            axis=axis,
            hard=self._hard,
            seed=self.seed_generator,
            add_noise=add_noise,
            log_space=self.log_space,
            differentiable=differentiable,
        )

    def distribution(self, logits):
        """The TFP distribution this layer samples from during training.

        The category axis is moved last, where TFP's event axis is.
        Requires `tensorflow-probability[tf]`.

        Args:
            logits: The logits the layer would receive.

        Returns:
            `tfd.RelaxedOneHotCategorical(temperature, logits)` for the relaxed
            layer (`tfd.ExpRelaxedOneHotCategorical`, the law of the log-space
            samples, with `log_space=True`), `tfd.OneHotCategorical(logits)`
            for the straight-through one.
        """
        from keras_gumbel import distributions

        logits = ops.convert_to_tensor(logits)
        axis = _validation.check_category_axis(logits, self.axis)
        if self._hard:
            return distributions.one_hot_categorical(logits, axis=axis, dtype=logits.dtype)
        temperature = distributions.layer_temperature(self, logits.dtype)
        return distributions.relaxed_one_hot_categorical(logits, temperature, axis=axis, log_space=self.log_space)

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config


def _mask_categories(inputs, mask, axis):
    """Applies a Keras mask that covers the category axis: masked categories get `-inf` logits.

    A mask with the rank of `inputs` marks categories directly. The usual Keras
    mask has one axis less (it marks positions, e.g. `[batch, time]` for
    `[batch, time, features]`): it covers the category axis only if that is
    not the last axis (categories over time steps), and is otherwise a
    per-position mask that passes through. A row with no unmasked category
    gets uniform logits (`ops.mask_logits`), as `keras.layers.Softmax` does.
    """
    rank, mask_rank = len(inputs.shape), len(mask.shape)
    if mask_rank == rank - 1 and axis < rank - 1:
        mask = ops.expand_dims(mask, -1)
    elif mask_rank != rank:
        return inputs
    return gumbel_ops.mask_logits(inputs, mask, axis=axis)
