"""The Hard Concrete (L0) gate: learned keep-or-drop of units, channels or heads."""

import math

import keras
import numpy as np
from keras import ops

from keras_gumbel import _sampling
from keras_gumbel import _validation
from keras_gumbel.layers._base import TemperatureLayer
from keras_gumbel.ops import _hard_concrete


@keras.saving.register_keras_serializable(package="keras_gumbel")
class HardConcreteGate(TemperatureLayer):
    """Multiplies the last axis of its input by learned gates that are exactly 0 (drop) or exactly 1 (keep).

    Placed after a layer, as `Dropout` is, it holds one gate per unit (the units of a `Dense`, the filters of a
    `Conv2D`: the last axis; with `block=True` one gate for a whole residual block; `HeadGatedAttention` gates the
    heads of an attention layer with one) with a learned location `log_alpha`. In training each call draws the gates
    from the Hard Concrete distribution of Louizos, Welling & Kingma (2018),

        s = sigmoid((log_alpha + L) / temperature),  L ~ Logistic(0, 1)
        z = clip(s * (high - low) + low, 0, 1),

    one draw per call shared by the whole batch (a unit is kept or dropped for the batch, as structured pruning
    needs): exact 0s and 1s forward with positive probability, the relaxed gradient in between. The probability that
    a gate is non-zero has a closed form (`probability_nonzero()`), so the expected number of kept units is a
    differentiable penalty (`expected_kept()`), which `keras_gumbel.pruning.SparsityController` drives to the
    sparsity asked for. At inference the gate is deterministic, `clip(sigmoid(log_alpha) * (high - low) + low, 0,
    1)` (the paper's estimator; `sample_at_inference=True` keeps sampling), and
    `keras_gumbel.pruning.prune(model)` removes the units whose gate is 0 and folds the others into the next layer.

    The temperature is the layer's temperature variable (beta, 2/3 in the paper), which
    `keras_gumbel.TemperatureAnnealing` can anneal like the other layers'.

    Args:
        temperature: Positive temperature beta (2/3 in the paper).
        stretch: `(low, high)` with `low < 0 < 1 < high`: the interval the relaxed sample is stretched to before
            the clip to `[0, 1]`; `(-0.1, 1.1)` in the paper.
        initial_keep_probability: `P(gate > 0)` of every gate at the start, in (0, 1): `log_alpha` starts at
            `logit(p) + temperature * log(-low / high)`.
        sample_at_inference: If `True`, sample the gates at inference too.
        trainable_temperature: If `True`, the temperature is learned (kept >= 0.05).
        seed: Integer seed of the layer's `keras.random.SeedGenerator`.
        block: If `True`, one gate for the whole input instead of one per unit: placed at the end of a residual
            branch, before the `Add` (`x + gate(f(x))`), it keeps or removes the whole block.
        fixed: Whether the inference gates are the fixed ones (`fix_gates`, held in the weight `fixed_gates`)
            rather than computed from `log_alpha`: set by `fix_gates`, saved in the config.
        **kwargs: Base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: Floating tensor `[..., units]`.
        training: Python bool: sampled gates (`True`) or the deterministic ones (`False`, `None`).

    Returns:
        `inputs` times the gates (broadcast over every axis but the last; a block gate over every axis).

    Examples:
        >>> import keras, keras_gumbel
        >>> gate = keras_gumbel.HardConcreteGate(seed=0)
        >>> outputs = gate(keras.ops.ones((2, 4)), training=True)
        >>> round(float(gate.expected_kept()), 2)  # 4 units, P(kept) = 0.9
        3.6

    Reference:
        - [Louizos, Welling & Kingma, 2018. Learning Sparse Neural Networks through L0 Regularization](
          https://arxiv.org/abs/1712.01312)
    """

    def __init__(
        self,
        temperature=_hard_concrete.TEMPERATURE,
        stretch=_hard_concrete.STRETCH,
        initial_keep_probability=0.9,
        sample_at_inference=False,
        trainable_temperature=False,
        seed=None,
        block=False,
        fixed=False,
        **kwargs,
    ):
        super().__init__(
            temperature=temperature,
            sample_at_inference=sample_at_inference,
            trainable_temperature=trainable_temperature,
            seed=seed,
            **kwargs,
        )
        self.stretch = _hard_concrete.check_stretch(stretch)
        self.initial_keep_probability = _validation.check_real(
            "initial_keep_probability",
            initial_keep_probability,
            "a probability strictly between 0 and 1",
            lambda p: 0.0 < p < 1.0,
        )
        self.supports_masking = True
        self.block = _validation.check_bool("block", block)
        self.fixed = _validation.check_bool("fixed", fixed)

    def build(self, input_shape):
        units = 1 if self.block else input_shape[-1]
        if units is None:
            raise ValueError(
                _validation.invalid("inputs", "a tensor whose last axis (the gated units) is known", input_shape)
            )
        low, high = self.stretch
        p = self.initial_keep_probability
        start = math.log(p / (1.0 - p)) + float(ops.convert_to_numpy(self.temperature)) * math.log(-low / high)
        self.log_alpha = self.add_weight(
            name="log_alpha", shape=(units,), initializer=keras.initializers.Constant(start), dtype="float32"
        )
        # The inference gates once `fix_gates` rounded them (`fixed`): saved with the weights.
        self.fixed_gates = self.add_weight(
            name="fixed_gates", shape=(units,), initializer="ones", dtype="float32", trainable=False
        )
        self.built = True

    def call(self, inputs, training=None):
        inputs = ops.convert_to_tensor(inputs)
        add_noise = self._add_noise(training)
        if self.fixed and not add_noise:
            gates = self.fixed_gates
        else:
            with self._draws(inputs, training):
                temperature, seed = self._current_temperature(), self.seed_generator
                gates = _sampling.hard_concrete(self.log_alpha, temperature, self.stretch, seed, add_noise)
        return ops.multiply(inputs, ops.cast(gates, inputs.dtype))

    def probability_nonzero(self):
        """`P(gate > 0)` of each gate, `[units]`, in closed form, differentiable in `log_alpha` and the temperature."""
        return _sampling.hard_concrete_tail(self.log_alpha, self._current_temperature(), self.stretch)

    def expected_kept(self):
        """The expected number of non-zero gates (the expected L0 norm): the sum of `probability_nonzero()`."""
        return ops.sum(self.probability_nonzero())

    def mean_gates(self):
        """`E[gate]` of each gate, a NumPy array `[units]`: `integral_0^1 P(gate > v) dv`, by 64-point quadrature."""
        nodes, weights = np.polynomial.legendre.leggauss(64)
        thresholds = (0.5 * (nodes + 1.0)).astype("float32")  # on (0, 1)
        log_alpha = ops.expand_dims(self.log_alpha, -1)
        tail = _sampling.hard_concrete_tail(log_alpha, self._current_temperature(), self.stretch, thresholds)
        return (0.5 * ops.convert_to_numpy(tail).astype("float64") @ weights).astype("float32")

    def fix_gates(self, keep):
        """Fixes the inference gates: `E[gate]` for the units in `keep` (a boolean mask), exactly 0 for the others.

        What `pruning.SparsityController` does at the end of training to meet its target exactly (the units kept
        are those with the highest `log_alpha` across the model); `pruning.prune` then removes the others.
        Training (`training=True`) still samples; `fixed` is saved in the config, the gates with the weights.
        """
        keep = np.asarray(keep, bool)
        if keep.shape != tuple(self.log_alpha.shape):
            expected = f"a boolean mask of shape {tuple(self.log_alpha.shape)}"
            raise ValueError(_validation.invalid("keep", expected, f"<shape {keep.shape}>"))
        self.fixed_gates.assign(np.where(keep, self.mean_gates(), 0.0).astype("float32"))
        self.fixed = True

    def gates(self):
        """The gates the layer applies at inference, a NumPy array `[units]` (the fixed ones, after `fix_gates`)."""
        if self.fixed:
            return ops.convert_to_numpy(self.fixed_gates)
        return ops.convert_to_numpy(_sampling.hard_concrete(self.log_alpha, 1.0, self.stretch, None, False))

    def kept_units(self):
        """The indices of the units whose inference gate is non-zero (those `pruning.prune` keeps), in order."""
        return np.flatnonzero(self.gates() > 0)

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "stretch": list(self.stretch),
                "initial_keep_probability": self.initial_keep_probability,
                "block": self.block,
                "fixed": self.fixed,
            }
        )
        return config
