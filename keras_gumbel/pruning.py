"""Learned structured sparsity: a controller that reaches the sparsity asked for, and the physically pruned model.

- `gates(model)`: the `HardConcreteGate` layers of a model, in order.
- `expected_sparsity(gates)`: `1 - (expected kept units) / (units)`, in closed form and differentiable.
- `sparsity(model)`: the fraction of units whose inference gate is exactly 0 (what `prune` removes).
- `expected_cost(model, "parameters" | "flops")`: the expected kept parameters or multiply-adds, in closed form
  (differentiable: a penalty of its own), and `cost(model, ...)`: the same counted on a plain model.
- `SparsityController(target, ...)`: a callback that adds the Lagrangian penalty
  `lambda_1 (s - t) + lambda_2 (s - t)^2` (s the expected sparsity, t the target, warmed up from 0) to the loss,
  with `lambda_1`, `lambda_2` moved by gradient ascent after each batch (Wang, Wohlwend & Lei, 2020; CoFi), and
  puts the sparsity in the logs.
- `fix_to_sparsity(gates, target)`: the inference gates rounded to meet the target exactly (the controller does it at
  the end of training).
- `prune(model)`: a plain Keras model with the gated-off units or filters removed and the inference gates folded
  into the next layer's weights (chains of `Dense`, `Conv1D`, `Conv2D`, pooling, `Flatten`): no keras_gumbel layer
  inside, the same inference output.
"""

import keras
import numpy as np
from keras import ops

from keras_gumbel import _validation
from keras_gumbel._tf_private import flatten_layers
from keras_gumbel.layers.hard_concrete_gate import HardConcreteGate

__all__ = [
    "SparsityController",
    "SparsityPenalty",
    "cost",
    "expected_cost",
    "expected_sparsity",
    "fix_to_sparsity",
    "gates",
    "prune",
    "sparsity",
]


def gates(model):
    """The `HardConcreteGate` layers of `model` (nested models included), in the order Keras lists its layers."""
    return [layer for layer in flatten_layers(model) if isinstance(layer, HardConcreteGate)]


def expected_sparsity(gate_layers):
    """`1 - sum(expected kept units) / sum(units)` over `gate_layers`: a differentiable scalar in [0, 1]."""
    gate_layers = list(gate_layers)
    if not gate_layers:
        raise ValueError(_validation.invalid("gate_layers", "at least one built HardConcreteGate", gate_layers))
    kept = sum(layer.expected_kept() for layer in gate_layers)
    units = sum(int(layer.log_alpha.shape[0]) for layer in gate_layers)
    return ops.subtract(1.0, ops.divide(kept, float(units)))


def expected_cost(model, measure="parameters"):
    """The expected parameters or multiply-adds of the weighted layers once gated units are removed, in closed form.

    For the chains `prune` carries (`Dense`, `Conv1D`, `Conv2D`, with gates after them and pooling or `Flatten`
    between). A weight joins an input unit to an output unit and is kept when both are; gates are independent, so
    a layer's expected kept kernel is `E[kept inputs] * E[kept outputs]` times its kernel's spatial size, where
    `E[kept]` of a gated axis is the sum of its gates' `probability_nonzero()` and an ungated axis counts whole (an
    input after `Flatten` counts each kept channel at every position). Biases follow their outputs. Multiply-adds
    are per example: a convolution's kernel times its output positions; biases excluded.

    Args:
        model: A gated model (`prune`'s chains).
        measure: `"parameters"` or `"flops"` (multiply-adds per example).

    Returns:
        `(expected, dense)`: the expected kept cost as a differentiable scalar tensor, and the cost with every unit
        kept, a float. `1 - expected / dense` is the expected sparsity in that measure; `prune(model)` then has
        `cost(pruned, measure)` of it (at the gates' inference values).
    """
    _check_measure(measure)
    return _cost(_plan(model), lambda gate: gate.expected_kept(), measure)


def _check_measure(measure, allowed=("parameters", "flops")):
    if measure not in allowed:
        raise ValueError(_validation.invalid("measure", f"one of {allowed}", measure))


def _kernel_size(layer, measure):
    """A weighted layer's parameters (`"parameters"`) or multiply-adds per example (`"flops"`) per pair of an input
    and an output unit: its kernel's spatial size, times its output positions for multiply-adds."""
    size = int(np.prod(layer.kernel.shape[:-2]))
    return size * int(np.prod(layer.output.shape[1:-1])) if measure == "flops" else size


def _cost(plan, kept, measure):
    """`(kept cost, dense cost)` over a `_plan`; `kept(gate)`: a gate's kept units (a count or a tensor)."""
    expected, dense = 0.0, 0.0
    for layer, before, positions, after in plan:
        if not isinstance(layer, _WEIGHTED):
            continue
        width_in, width_out = layer.kernel.shape[-2], layer.kernel.shape[-1]
        e_in = float(width_in) if before is None else ops.multiply(kept(before), float(positions))
        e_out = float(width_out) if after is None else kept(after)
        size = float(_kernel_size(layer, measure))
        expected = ops.add(expected, ops.multiply(ops.multiply(e_in, e_out), size))
        dense += float(width_in) * float(width_out) * size
        if measure == "parameters" and layer.use_bias:
            expected = ops.add(expected, e_out)
            dense += float(width_out)
    return ops.convert_to_tensor(expected), dense


def cost(model, measure="parameters"):
    """The parameters or multiply-adds per example of a model's `Dense` and convolution layers, counted."""
    _check_measure(measure)
    total = 0
    for layer in flatten_layers(model):
        if isinstance(layer, _WEIGHTED):
            total += int(layer.kernel.shape[-2]) * int(layer.kernel.shape[-1]) * _kernel_size(layer, measure)
            total += int(layer.bias.shape[0]) if measure == "parameters" and layer.use_bias else 0
    return total


def sparsity(model):
    """The fraction of gated units whose inference gate is exactly 0: the units `prune(model)` removes."""
    layers = gates(model)
    if not layers:
        raise ValueError(f"The model {model.name!r} holds no HardConcreteGate.")
    units = sum(int(layer.log_alpha.shape[0]) for layer in layers)
    dropped = sum(int((layer.gates() == 0).sum()) for layer in layers)
    return dropped / units


def fix_to_sparsity(gate_layers, target, model=None, measure="units"):
    """Fixes the inference gates of `gate_layers` so that the pruned model meets the sparsity `target`.

    The units kept are those with the highest `log_alpha` across all the gates (the most likely to be on), each at
    its mean gate `E[gate]`; the others are exactly 0, and `prune` removes them. With `measure="units"`, exactly
    `round(target * units)` units are off; with `"parameters"` or `"flops"` (which need the `model`), the most
    units whose kept cost stays within `(1 - target)` of the dense cost are kept. Returns the sparsity reached,
    in the measure.
    """
    gate_layers = list(gate_layers)
    target = _validation.check_real("target", target, "a sparsity in [0, 1)", lambda value: 0.0 <= value < 1.0)
    _check_measure(measure, ("units", "parameters", "flops"))
    scores = np.concatenate([np.asarray(ops.convert_to_numpy(layer.log_alpha)) for layer in gate_layers])
    order = np.argsort(-scores, kind="stable")
    sizes = [int(layer.log_alpha.shape[0]) for layer in gate_layers]

    def keep_of(count):
        keep = np.zeros(len(scores), bool)
        keep[order[:count]] = True
        return np.split(keep, np.cumsum(sizes)[:-1])

    if measure == "units":
        keep_count = len(scores) - int(round(target * len(scores)))
        reached = 1.0 - keep_count / len(scores)
    else:
        if model is None:
            raise ValueError(_validation.invalid("model", f"the gated model, to count its {measure}", model))
        plan = _plan(model)

        def sparsity_of(count):
            counts = dict(zip((id(layer) for layer in gate_layers), (int(k.sum()) for k in keep_of(count))))
            kept, dense = _cost(plan, lambda gate: float(counts[id(gate)]), measure)
            return 1.0 - float(ops.convert_to_numpy(kept)) / dense

        low, high = 0, len(scores)  # the most units kept with sparsity_of(count) >= target (it falls as count grows)
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if sparsity_of(middle) >= target else (low, middle - 1)
        keep_count, reached = low, sparsity_of(low)
    for layer, keep in zip(gate_layers, keep_of(keep_count)):
        layer.fix_gates(keep)
    return reached


@keras.saving.register_keras_serializable(package="keras_gumbel")
class SparsityPenalty(keras.layers.Layer):
    """Holds the controller's state in the model and adds its Lagrangian penalty to the loss (used by the controller).

    A layer, so that the multipliers and the target are model variables: read inside compiled train steps on every
    backend (JAX's too), saved with the weights, and assigned by `SparsityController` between steps without
    retracing. Call it on any tensor of the model (it returns it unchanged).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.multipliers = self.add_weight(name="multipliers", shape=(2,), initializer="zeros", trainable=False)
        self.target = self.add_weight(name="target", shape=(), initializer="zeros", trainable=False)
        self.attach(())

    def attach(self, gate_layers, expected=None):
        """Sets the gates, and the expected sparsity the penalty reads (default: of their units), out of tracking."""
        object.__setattr__(self, "_gates", tuple(gate_layers))
        object.__setattr__(self, "_expected", expected or (lambda: expected_sparsity(self._gates)))

    def expected_sparsity(self):
        """The expected sparsity the penalty holds to its target (in the controller's measure)."""
        return self._expected()

    def penalty(self):
        gap = ops.subtract(self.expected_sparsity(), self.target)
        return ops.add(ops.multiply(self.multipliers[0], gap), ops.multiply(self.multipliers[1], ops.square(gap)))

    def call(self, inputs, training=None):
        if training and self._gates:
            self.add_loss(self.penalty())
        return inputs


class SparsityController(keras.callbacks.Callback):
    """Trains a gated model to the sparsity asked for: a Lagrangian penalty whose multipliers rise until it is met.

    The loss gets `lambda_1 (s - t) + lambda_2 (s - t)^2`, where `s` is the expected sparsity in the `measure`
    (`pruning.expected_sparsity(gates)`, the expected fraction of gated units that are off, or `1 -
    expected_cost(model, measure) / dense cost` for parameters or FLOPs) and `t` the target, raised linearly from 0
    to `target` over `warmup_steps` batches. After each batch the multipliers move by gradient *ascent* on the penalty,
    `lambda_1 += rate * (s - t)`, `lambda_2 += rate * (s - t)^2`: while the model is denser than asked,
    `lambda_1` falls, and the penalty's gradient pushes `log_alpha` down harder (the formulation of Wang, Wohlwend &
    Lei, 2020, and CoFi, whose multipliers an optimizer moves with a negated learning rate; here the callback
    takes that step, so the model's optimizer is untouched).

    The model must hold a `SparsityPenalty` layer (build it with one, e.g. `x = pruning.SparsityPenalty()(x)`);
    the controller finds it and the gates. `logs` get `sparsity` (the expected
    sparsity), `sparsity_target` (the warmed-up target), `lambda_1` and `lambda_2`; and after each epoch
    `pruned_sparsity`, the fraction of units whose inference gate is exactly 0.

    Args:
        target: The sparsity asked for, in [0, 1): the fraction of gated units to remove, or of the parameters or
            multiply-adds of the `Dense` and convolution layers (`measure`).
        warmup_steps: Batches over which the target rises from 0 to `target`.
        multiplier_rate: The ascent step of the multipliers.
        damping: The starting `lambda_2`: a quadratic pull towards the target from the first step, which damps
            the overshoot an integrating `lambda_1` gives (0: the plain formulation, both multipliers from 0). On
            scikit-learn's digits (a 64-128-64-10 MLP, Adam at 0.01, 880 steps) the expected sparsity ended at
            0.60 and 0.77 for targets 0.5 and 0.8 without it, at 0.53 and 0.78 with 20.
        measure: `"units"` (the default), `"parameters"` or `"flops"` (multiply-adds per example; `prune`'s chains).
        round_at_end: At the end of training, fix the inference gates to meet the target exactly
            (`fix_to_sparsity`: the `round((1 - target) * units)` units with the highest `log_alpha` kept, at their
            mean gate; the others 0): the multipliers bring the expected sparsity near the target, the rounding
            lands the pruned model on it (to one unit; for parameters or FLOPs, the most units within the target).
    """

    def __init__(
        self, target, warmup_steps=1000, multiplier_rate=0.05, damping=20.0, measure="units", round_at_end=True
    ):
        super().__init__()
        self.target = _validation.check_real("target", target, "a sparsity in [0, 1)", lambda value: 0.0 <= value < 1.0)
        self.warmup_steps = _validation.check_int("warmup_steps", warmup_steps, minimum=0)
        self.multiplier_rate = _validation.check_positive_finite("multiplier_rate", multiplier_rate)
        self.damping = _validation.check_non_negative("damping", damping)
        _check_measure(measure, ("units", "parameters", "flops"))
        self.measure = measure
        self.round_at_end = _validation.check_bool("round_at_end", round_at_end)

    def set_model(self, model):
        super().set_model(model)
        penalties = [layer for layer in flatten_layers(model) if isinstance(layer, SparsityPenalty)]
        if len(penalties) != 1:
            raise ValueError(
                f"SparsityController needs a model with exactly one SparsityPenalty layer; {model.name!r} has "
                f"{len(penalties)}. Add one to the model (`x = keras_gumbel.pruning.SparsityPenalty()(x)`)."
            )
        self.penalty = penalties[0]
        expected = None
        if self.measure != "units":

            def expected():
                kept, dense = expected_cost(model, self.measure)
                return ops.subtract(1.0, ops.divide(kept, dense))

        self.penalty.attach(gates(model), expected)
        if not self.penalty._gates:
            raise ValueError(f"SparsityController: the model {model.name!r} holds no HardConcreteGate.")

    def current_target(self):
        """The warmed-up target at the optimizer's step count (saved with the model: a resumed `fit` goes on)."""
        if self.warmup_steps == 0:
            return self.target
        step = int(ops.convert_to_numpy(self.model.optimizer.iterations))
        return self.target * min(1.0, step / self.warmup_steps)

    def on_train_begin(self, logs=None):
        # A fresh run starts the multipliers at (0, damping); a resumed one (a loaded model whose optimizer has
        # stepped) keeps the multipliers it saved.
        if int(ops.convert_to_numpy(self.model.optimizer.iterations)) == 0:
            self.penalty.multipliers.assign([0.0, self.damping])

    def on_train_batch_begin(self, batch, logs=None):
        self.penalty.target.assign(self.current_target())

    def on_train_batch_end(self, batch, logs=None):
        # On JAX, `fit` keeps the variables' values in its own state between batches: sync them into the variables
        # (to read the gates) and have the next step read the variables back (the multipliers and target we assign).
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()
        gap = float(ops.convert_to_numpy(self.penalty.expected_sparsity())) - self.current_target()
        lambda_1, lambda_2 = ops.convert_to_numpy(self.penalty.multipliers)
        self.penalty.multipliers.assign(
            [lambda_1 + self.multiplier_rate * gap, lambda_2 + self.multiplier_rate * gap**2]
        )

    def on_train_end(self, logs=None):
        if self.round_at_end:
            fix_to_sparsity(self.penalty._gates, self.target, self.model, self.measure)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        lambda_1, lambda_2 = (float(value) for value in ops.convert_to_numpy(self.penalty.multipliers))
        logs.update(
            {
                "sparsity": float(ops.convert_to_numpy(self.penalty.expected_sparsity())),
                "sparsity_target": self.current_target(),
                "pruned_sparsity": sparsity(self.model),
                "lambda_1": lambda_1,
                "lambda_2": lambda_2,
            }
        )


_PASS_THROUGH = (keras.layers.Dropout, keras.layers.GaussianNoise, keras.layers.GaussianDropout, SparsityPenalty)
# Layers that act on each channel alone and commute with a non-negative scale of it: a gate's zero channels stay
# zero through them, and its values can be folded into the next layer's weights.
_PER_CHANNEL = (
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.Flatten,
)
_WEIGHTED = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D)


def prune(model):
    """A plain Keras model with the gated-off units removed and the inference gates folded into the weights.

    For a `keras.Sequential` (or a functional chain of single-input layers) of `Dense`, `Conv1D` and `Conv2D`
    layers, each optionally followed by a `HardConcreteGate` on its units or filters, with pooling and `Flatten`
    layers between them: a gate's units whose inference gate is 0 are removed from the layer before it (kernel
    columns or filters, bias) and from the next weighted layer (its input rows or channels), and the gate's values
    are folded into those (`gate * (x W)` is `x (gate * W)`; max and average pooling and `Flatten` commute with a
    non-negative scale per channel). The result holds no keras_gumbel layer, computes the gated model's inference
    output (to float rounding), is smaller and exports anywhere. Layers that are the identity at inference
    (`Dropout`, `SparsityPenalty`) are dropped.

    Raises:
        ValueError: For a layer the pruning cannot carry (a gate not after a `Dense` or convolution, a layer other
            than pooling or `Flatten` between a gate and the next weighted layer, a model that ends with a gate),
            naming it.
    """
    inputs = keras.Input(model.input_shape[1:], dtype=model.inputs[0].dtype)
    x = inputs
    for layer, before, positions, after in _plan(model):
        if not isinstance(layer, _WEIGHTED):
            x = type(layer).from_config(layer.get_config())(x)
            continue
        kernel = np.array(ops.convert_to_numpy(layer.kernel))
        bias = np.array(ops.convert_to_numpy(layer.bias)) if layer.use_bias else None
        if before is not None:
            # The gate's kept units, at every position a Flatten laid them out at ([positions, units] -> rows), each
            # row scaled by its gate.
            kept, units = before.kept_units(), int(before.log_alpha.shape[0])
            rows = (np.arange(positions)[:, None] * units + kept[None, :]).ravel()
            scale = np.tile(before.gates()[kept], positions)
            kernel = np.take(kernel, rows, axis=-2) * scale[:, None].astype(kernel.dtype)
        if after is not None:
            kernel = kernel[..., after.kept_units()]
            bias = None if bias is None else bias[after.kept_units()]
        config = layer.get_config()
        config["units" if isinstance(layer, keras.layers.Dense) else "filters"] = kernel.shape[-1]
        pruned = type(layer).from_config(config)
        x = pruned(x)
        pruned.set_weights([kernel] if bias is None else [kernel, bias])
    return keras.Model(inputs, x, name=f"{model.name}_pruned")


def _plan(model):
    """What `prune` carries of a chain, in order: `(layer, gate before, positions, gate after)` for each weighted
    layer (the gate whose units are its inputs, laid out at `positions` places by a `Flatten`, and the gate on its
    outputs, each None where there is none), `(layer, None, 1, None)` for the pooling and `Flatten` layers; gates and
    the layers that are the identity at inference left out. Raises, naming the layer, for what it cannot carry."""
    layers = [layer for layer in _chain(model) if not isinstance(layer, _PASS_THROUGH)]
    plan, pending, positions = [], None, 1
    for index, layer in enumerate(layers):
        if isinstance(layer, HardConcreteGate):
            previous = layers[index - 1] if index else None
            if not isinstance(previous, _WEIGHTED) or pending is not None:
                raise ValueError(
                    f"prune: the HardConcreteGate {layer.name!r} does not follow a Dense or convolution layer; "
                    "prune carries gates placed right after one (a Dropout between them is fine)."
                )
            plan[-1] = plan[-1][:3] + (layer,)
            pending = layer
        elif isinstance(layer, _WEIGHTED):
            plan.append((layer, pending, positions, None))
            pending, positions = None, 1
        elif isinstance(layer, _PER_CHANNEL):
            if pending is not None and isinstance(layer, keras.layers.Flatten):
                positions = int(np.prod(layer.input.shape[1:-1]))
            plan.append((layer, None, 1, None))
        else:
            raise ValueError(
                f"prune: cannot carry the layer {layer.name!r} ({type(layer).__name__}); it prunes chains of Dense "
                "and convolution layers with HardConcreteGates after them, and pooling or Flatten between."
            )
    if pending is not None:
        raise ValueError("prune: the model ends with a HardConcreteGate; a gate must be followed by a weighted layer.")
    return plan


def _chain(model):
    """The layers of a Sequential or functional chain, in order (a branching model is refused)."""
    if isinstance(model, keras.Sequential):
        return list(model.layers)
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    previous = model.inputs
    for layer in layers:
        try:
            follows = len(previous) == 1 and layer.input is previous[0]
        except (AttributeError, ValueError):  # a layer called several times has no single `input`
            follows = False
        if not follows:
            raise ValueError(
                f"prune: the layer {layer.name!r} does not take the previous layer's output alone; prune carries "
                "chains of single-input layers (a Sequential model, or a functional model without branches)."
            )
        previous = [layer.output]
    return layers
