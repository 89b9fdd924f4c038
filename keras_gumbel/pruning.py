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
  the end of training), or `fix_to_expected(gates)`: each gate rounded to its expected kept units (FLOP, CoFi).
- `prune(model)`: a plain Keras model with the gated-off units, filters, input features, attention heads
  (`HeadGatedAttention`) and residual blocks (`HardConcreteGate(block=True)`) removed and the inference gates folded
  into the weights: no keras_gumbel layer inside, the same inference output.
"""

import keras
import numpy as np
from keras import ops

from keras_gumbel import _validation
from keras_gumbel._tf_private import attention_gate_dense
from keras_gumbel._tf_private import flatten_layers
from keras_gumbel._tf_private import functional_graph
from keras_gumbel.layers.hard_concrete_gate import HardConcreteGate
from keras_gumbel.layers.head_gated_attention import HeadGatedAttention

__all__ = [
    "SparsityController",
    "SparsityPenalty",
    "cost",
    "expected_cost",
    "expected_sparsity",
    "fix_to_expected",
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
    """The expected parameters or multiply-adds of the model's weighted layers once gated parts are removed.

    Counts the `Dense`, `Conv1D`, `Conv2D` and `MultiHeadAttention` layers (`HeadGatedAttention` included), in
    closed form. A weight joins an input unit to an output unit and is kept when both are; gates are independent, so
    a layer's expected kept kernel is `E[kept inputs] * E[kept outputs]` times its kernel's spatial size, where
    `E[kept]` of a gated axis is the sum of its gates' `probability_nonzero()` and an ungated axis counts whole (an
    input after `Flatten` counts each kept channel at every position); an attention layer's cost is its expected
    kept heads times a head's cost (its query, key, value and output projections, and its attention) plus the
    output bias; a layer inside a residual block gated by a `HardConcreteGate(block=True)` counts times the
    probability that the block is kept. Biases follow their outputs. Multiply-adds are per example: a
    convolution's kernel times its output positions, an attention head's projections at each position and its
    `query positions x key positions` scores and sums; biases excluded.

    Args:
        model: A gated model (a functional model or a built Sequential: what `prune` carries).
        measure: `"parameters"` or `"flops"` (multiply-adds per example).

    Returns:
        `(expected, dense)`: the expected kept cost as a differentiable scalar tensor, and the cost with every unit
        kept, a float. `1 - expected / dense` is the expected sparsity in that measure; `cost(model, measure)`
        counts the same at the gates' inference values, which `cost(prune(model), measure)` equals.
    """
    _check_measure(measure)
    return _cost(_analyse(model), lambda gate: gate.expected_kept(), measure)


def cost(model, measure="parameters"):
    """The parameters or multiply-adds per example of a model's weighted layers, counted (see `expected_cost`).

    On a gated model, the gated-off units, heads and blocks are left out (the gates' inference values): the cost of
    `prune(model)`. On a plain model, every `Dense`, convolution and attention layer counts whole.
    """
    _check_measure(measure)
    return int(round(float(ops.convert_to_numpy(_cost(_analyse(model), _kept_count, measure)[0]))))


def _kept_count(gate):
    """The number of a gate's units `prune` keeps: a unit gate's `_kept`, a block gate's 1 or 0."""
    return float(len(gate.kept_units() if gate.block else _kept(gate)[0]))


def _check_measure(measure, allowed=("parameters", "flops")):
    if measure not in allowed:
        raise ValueError(_validation.invalid("measure", f"one of {allowed}", measure))


def _kernel_size(layer, outputs, measure):
    """A weighted layer's parameters (`"parameters"`) or multiply-adds per example (`"flops"`) per pair of an input
    and an output unit: its kernel's spatial size, times its output positions for multiply-adds."""
    size = int(np.prod(layer.kernel.shape[:-2]))
    return size * int(np.prod(outputs[0].shape[1:-1])) if measure == "flops" else size


def _attention_cost(layer, inputs, measure):
    """`(per head, fixed)`: an attention layer's parameters or multiply-adds per kept head, and those of no head
    (the output bias). Each projection's kernel is `[inputs..., heads, head size]` (the output's `[heads, value
    size, outputs...]`); per example, a projection runs at each position of its input, the attention at each pair
    of a query and a key position."""
    query_positions = int(np.prod(inputs[0].shape[1:-1]))
    key_positions = int(np.prod(inputs[1].shape[1:-1]))
    heads = layer.num_heads
    per_head, fixed = 0.0, 0.0
    projections = [(layer.query_dense, query_positions), (layer.key_dense, key_positions)]
    projections += [(layer.value_dense, key_positions), (layer.output_dense, query_positions)]
    gate_dense = attention_gate_dense(layer)
    if gate_dense is not None:
        projections.append((gate_dense, query_positions))
    for dense, positions in projections:
        kernel = float(np.prod(dense.kernel.shape)) / heads
        bias = 0.0 if dense.bias is None else float(np.prod(dense.bias.shape))
        if measure == "flops":
            per_head += kernel * positions
        elif dense is layer.output_dense:
            per_head, fixed = per_head + kernel, fixed + bias
        else:
            per_head += kernel + bias / heads
    if measure == "flops":
        per_head += query_positions * key_positions * (layer.key_dim + layer.value_dim)
    return per_head, fixed


def _cost(analysis, kept, measure):
    """`(kept cost, dense cost)` over an `_analyse`d model; `kept(gate)`: a gate's kept units (a count or a tensor)."""
    expected, dense = 0.0, 0.0
    for layer, inputs, outputs in analysis.weighted:
        blocks = analysis.blocks.get(id(layer), ())
        if isinstance(layer, keras.layers.MultiHeadAttention):
            per_head, fixed = _attention_cost(layer, inputs, measure)
            gate = layer.head_gate if isinstance(layer, HeadGatedAttention) else None
            heads = float(layer.num_heads) if gate is None else kept(gate)
            kept_cost = ops.add(ops.multiply(heads, per_head), fixed)
            full = layer.num_heads * per_head + fixed
        else:
            width_in, width_out = layer.kernel.shape[-2], layer.kernel.shape[-1]
            before, positions = analysis.gate_before.get(id(layer), (None, 1))
            after = analysis.gate_after.get(id(layer))
            e_in = float(width_in) if before is None else ops.multiply(kept(before), float(positions))
            e_out = float(width_out) if after is None else kept(after)
            size = float(_kernel_size(layer, outputs, measure))
            kept_cost = ops.multiply(ops.multiply(e_in, e_out), size)
            full = float(width_in) * float(width_out) * size
            if measure == "parameters" and layer.use_bias:
                kept_cost = ops.add(kept_cost, e_out)
                full += float(width_out)
        for gate in blocks:
            kept_cost = ops.multiply(kept_cost, kept(gate))
        expected = ops.add(expected, kept_cost)
        dense += full
    return ops.convert_to_tensor(expected), dense


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
        analysis = _analyse(model)

        def sparsity_of(count):
            counts = dict(zip((id(layer) for layer in gate_layers), (int(k.sum()) for k in keep_of(count))))
            kept, dense = _cost(analysis, lambda gate: float(counts[id(gate)]), measure)
            return 1.0 - float(ops.convert_to_numpy(kept)) / dense

        low, high = 0, len(scores)  # the most units kept with sparsity_of(count) >= target (it falls as count grows)
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if sparsity_of(middle) >= target else (low, middle - 1)
        keep_count, reached = low, sparsity_of(low)
    for layer, keep in zip(gate_layers, keep_of(keep_count)):
        layer.fix_gates(keep)
    return reached


def fix_to_expected(gate_layers):
    """Fixes each gate's inference gates to its expected number of kept units: FLOP's and CoFi's top-k rounding.

    Each gate keeps its `round(expected_kept())` units with the highest `log_alpha`, at their mean gate, and sets the
    others to exactly 0 (`HardConcreteGate.fix_gates`). Unlike `fix_to_sparsity`, which meets a target across the
    model, each layer keeps the width its gates learned; the total lands near the controller's target, not on it.
    Returns the fraction of the gates' units that are off.
    """
    gate_layers = list(gate_layers)
    dropped, units = 0, 0
    for layer in gate_layers:
        log_alpha = np.asarray(ops.convert_to_numpy(layer.log_alpha))
        count = int(round(float(ops.convert_to_numpy(layer.expected_kept()))))
        keep = np.zeros(log_alpha.shape, bool)
        keep[np.argsort(-log_alpha, kind="stable")[:count]] = True
        layer.fix_gates(keep)
        dropped, units = dropped + int((~keep).sum()), units + keep.size
    return dropped / units


_ROUNDINGS = ("model", "per_gate", None)


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


@keras.saving.register_keras_serializable(package="keras_gumbel")
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
        rounding: How the inference gates are fixed when training ends: `"model"` (the default) meets the target
            exactly (`fix_to_sparsity`: the `round((1 - target) * units)` units with the highest `log_alpha` across
            the model kept, at their mean gate, the others 0; for parameters or FLOPs, the most units within the
            target); `"per_gate"`, FLOP's and CoFi's top-k, keeps in each gate its expected number of kept units
            (`fix_to_expected`: the pruned model then lands near the target, each layer at the width its gates
            learned); `None` leaves the paper's deterministic gates. The multipliers bring the expected sparsity
            near the target; the rounding lands the pruned model.
    """

    def __init__(
        self, target, warmup_steps=1000, multiplier_rate=0.05, damping=20.0, measure="units", rounding="model"
    ):
        super().__init__()
        self.target = _validation.check_real("target", target, "a sparsity in [0, 1)", lambda value: 0.0 <= value < 1.0)
        self.warmup_steps = _validation.check_int("warmup_steps", warmup_steps, minimum=0)
        self.multiplier_rate = _validation.check_positive_finite("multiplier_rate", multiplier_rate)
        self.damping = _validation.check_non_negative("damping", damping)
        _check_measure(measure, ("units", "parameters", "flops"))
        self.measure = measure
        if rounding not in _ROUNDINGS:
            raise ValueError(_validation.invalid("rounding", f"one of {_ROUNDINGS}", rounding))
        self.rounding = rounding

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
            analysis = _analyse(model)  # once: the penalty reads it at every step

            def expected():
                kept, dense = _cost(analysis, lambda gate: gate.expected_kept(), self.measure)
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
        if self.rounding == "model":
            fix_to_sparsity(self.penalty._gates, self.target, self.model, self.measure)
        elif self.rounding == "per_gate":
            fix_to_expected(self.penalty._gates)

    def get_config(self):
        return {
            "target": self.target,
            "warmup_steps": self.warmup_steps,
            "multiplier_rate": self.multiplier_rate,
            "damping": self.damping,
            "measure": self.measure,
            "rounding": self.rounding,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

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
_COSTED = (*_WEIGHTED, keras.layers.MultiHeadAttention)  # the layers `cost` counts


def prune(model):
    """A plain Keras model with the gated-off units, heads and blocks removed and the inference gates folded in.

    Walks the model's graph (a functional model or a built Sequential) and rebuilds it without keras_gumbel layers:

    - a `HardConcreteGate` on the units of a `Dense` or the filters of a `Conv1D`/`Conv2D` (right after it, a
      `Dropout` between allowed), whose output reaches one `Dense` or convolution through pooling and `Flatten`
      layers only: the units whose inference gate is 0 are removed from the layer before it (kernel columns or
      filters, bias) and from the next weighted layer (its input rows or channels), and the gate's values are
      folded into the latter (`gate * (x W)` is `x (gate * W)`; max and average pooling and `Flatten` commute with
      a non-negative scale per channel);
    - a `HardConcreteGate` on the model's input features (or on the output of a layer that other layers read
      too), whose output reaches one `Dense` or convolution as above: the pruned model gathers the kept features
      there (`x[..., kept]`; on PyTorch a product with a 0/1 selection matrix, which `cost` does not count), and
      the next weighted layer keeps their rows, scaled by their gates;
    - a `HeadGatedAttention`: a `keras.layers.MultiHeadAttention` with the gated-off heads removed (their query,
      key, value and output projections) and the kept gates folded into the output projection;
    - a `HardConcreteGate(block=True)` feeding an `Add` (a residual block `x + gate(f(x))`): a block whose gate is
      0 is removed (the `Add` passes `x` on, and `f` is not computed), a kept one is scaled by its gate (a
      `Rescaling` layer where the gate is not 1);
    - layers that are the identity at inference (`Dropout`, `SparsityPenalty`) are dropped; every other layer is
      copied with its weights.

    The result holds no keras_gumbel layer, computes the gated model's inference output (to float rounding), is
    smaller and exports anywhere. `cost(result, measure)` equals `cost(model, measure)`.

    Raises:
        ValueError: For a gate the pruning cannot carry (a unit gate whose output reaches a layer other than a
            `Dense` or convolution, pooling, `Flatten` or `Dropout`, or more than one layer, or the model's output;
            a block gate not feeding an `Add`), naming it, or a model without a layer graph.
    """
    analysis = _analyse(model)
    dead = set()  # ids of the rebuilt tensors of removed blocks

    def rebuild(layer, *args, **kwargs):
        if isinstance(layer, HardConcreteGate) and id(layer) in analysis.gathered:
            return _gather_features(args[0], _kept(layer)[0])
        if isinstance(layer, _PASS_THROUGH) or (isinstance(layer, HardConcreteGate) and not layer.block):
            return args[0]  # a unit gate's values are folded into the weighted layer after it
        if isinstance(layer, HardConcreteGate):
            (gate,) = layer.gates()
            if gate == 0.0:
                dead.add(id(args[0]))
            return args[0] if gate in (0.0, 1.0) else keras.layers.Rescaling(float(gate), name=layer.name)(args[0])
        if isinstance(layer, keras.layers.Add) and any(id(x) in dead for x in args[0]):
            alive = [x for x in args[0] if id(x) not in dead]
            if len(alive) <= 1:
                return alive[0] if alive else ops.zeros_like(args[0][0])
            args = (alive, *args[1:])  # an Add of the kept branches, copied below
        if isinstance(layer, HeadGatedAttention):
            return _pruned_attention(layer, args, kwargs)
        if isinstance(layer, _WEIGHTED):
            before, positions = analysis.gate_before.get(id(layer), (None, 1))
            return _pruned_weighted(layer, before, positions, analysis.gate_after.get(id(layer)), args, kwargs)
        copy = type(layer).from_config(layer.get_config())
        outputs = copy(*args, **kwargs)
        copy.set_weights(layer.get_weights())
        return outputs

    rebuilt = keras.models.clone_model(analysis.functional, clone_function=lambda layer: layer, call_function=rebuild)
    return keras.Model(rebuilt.input, rebuilt.output, name=f"{model.name}_pruned")


def _gather_features(x, kept):
    """`x[..., kept]`, as Keras ops every export format of the backend holds: one gather on TensorFlow and JAX; on
    PyTorch a product with the 0/1 selection matrix (exact: one 1 per column), since litert-torch cannot convert
    PyTorch's `take` (its index check compares int64 with int32)."""
    if keras.backend.backend() != "torch":
        return ops.take(x, np.asarray(kept, "int32"), axis=-1)
    return ops.matmul(x, np.eye(x.shape[-1], dtype=x.dtype)[:, kept])


def _kept(gate):
    """`(kept indices, their gates)` of a unit gate: its non-zero units, or its first unit at gate 0 where none is
    (a layer keeps at least one unit; the 0 folded into the next layer removes its contribution)."""
    values, kept = gate.gates(), gate.kept_units()
    kept = kept if len(kept) else np.zeros(1, int)
    return kept, values[kept]


def _pruned_weighted(layer, before, positions, after, args, kwargs):
    """A copy of a `Dense` or convolution with the units of the gate `after` it kept and the rows of the gate
    `before` it (laid out at `positions` places by a `Flatten`) kept and scaled by their gates."""
    kernel = np.array(ops.convert_to_numpy(layer.kernel))
    bias = np.array(ops.convert_to_numpy(layer.bias)) if layer.use_bias else None
    if before is not None:
        kept, scale = _kept(before)
        units = int(before.log_alpha.shape[0])
        rows = (np.arange(positions)[:, None] * units + kept[None, :]).ravel()  # [positions, units] -> rows
        kernel = np.take(kernel, rows, axis=-2) * np.tile(scale, positions)[:, None].astype(kernel.dtype)
    if after is not None:
        kept, _ = _kept(after)
        kernel = kernel[..., kept]
        bias = None if bias is None else bias[kept]
    config = layer.get_config()
    config["units" if isinstance(layer, keras.layers.Dense) else "filters"] = kernel.shape[-1]
    pruned = type(layer).from_config(config)
    outputs = pruned(*args, **kwargs)
    pruned.set_weights([kernel] if bias is None else [kernel, bias])
    return outputs


def _pruned_attention(layer, args, kwargs):
    """A `keras.layers.MultiHeadAttention` with the kept heads of a `HeadGatedAttention`, their gates folded into
    the output projection (each projection's head axis: -2 of the query, key and value kernels and biases, 0 of
    the output kernel)."""
    kept, scale = _kept(layer.head_gate)
    config = keras.layers.MultiHeadAttention.get_config(layer)  # the attention's own config, not its gate's
    config.update(num_heads=len(kept), value_dim=layer.value_dim, output_shape=layer.output_dense.kernel.shape[2:])
    pruned = keras.layers.MultiHeadAttention.from_config(config)
    outputs = pruned(*args, **kwargs)
    pairs = [(layer.query_dense, pruned.query_dense), (layer.key_dense, pruned.key_dense)]
    pairs += [(layer.value_dense, pruned.value_dense)]
    if attention_gate_dense(layer) is not None:
        pairs.append((attention_gate_dense(layer), attention_gate_dense(pruned)))
    for source, target in pairs:
        target.set_weights([np.take(ops.convert_to_numpy(w), kept, axis=-2) for w in source.weights])
    kernel, *bias = (ops.convert_to_numpy(w) for w in layer.output_dense.weights)
    folded = kernel[kept] * scale.reshape((-1,) + (1,) * (kernel.ndim - 1)).astype(kernel.dtype)
    pruned.output_dense.set_weights([folded, *bias])
    return outputs


class _Analysis:
    """What `prune` and the costs need of a model's graph (`_analyse`)."""

    def __init__(self, functional):
        self.functional = functional
        self.weighted = []  # (layer, input tensors, output tensors) of each Dense, convolution and attention
        self.gate_before = {}  # id(weighted layer) -> (the unit gate on its inputs, positions a Flatten laid out)
        self.gate_after = {}  # id(weighted layer) -> the unit gate on its outputs
        self.blocks = {}  # id(layer) -> the block gates of the residual blocks it is in
        self.gathered = set()  # ids of the unit gates not after a weighted layer alone: the pruned model gathers


def _analyse(model):
    """Reads a model's graph: its weighted layers, which unit gate is before and after each, which block gates
    hold each layer. Raises, naming the gate or layer, for a gate `prune` cannot carry."""
    functional, calls = functional_graph(model)
    analysis = _Analysis(functional)
    producer = {id(tensor): (layer, inputs) for layer, inputs, outputs in calls for tensor in outputs}
    consumers = {}
    for layer, inputs, _ in calls:
        for tensor in inputs:
            consumers.setdefault(id(tensor), []).append((layer, inputs))
    outputs_of = {}
    for layer, inputs, outputs in calls:
        if id(layer) in outputs_of and isinstance(layer, (HardConcreteGate, *_COSTED)):
            raise ValueError(
                f"prune: the layer {layer.name!r} is called more than once; prune carries gated and weighted layers "
                "called once."
            )
        outputs_of[id(layer)] = outputs
        if isinstance(layer, _COSTED):
            analysis.weighted.append((layer, inputs, outputs))
    model_outputs = {id(tensor) for tensor in functional.outputs}

    def only_consumer(tensor):
        found = consumers.get(id(tensor), [])
        return found[0] if len(found) == 1 and id(tensor) not in model_outputs else (None, None)

    for layer, inputs, outputs in calls:
        if not isinstance(layer, HardConcreteGate):
            continue
        if layer.block:
            consumer, add_inputs = only_consumer(outputs[0])
            if not isinstance(consumer, keras.layers.Add):
                raise ValueError(
                    f"prune: the block HardConcreteGate {layer.name!r} does not feed an Add alone; a block gate "
                    "ends a residual branch: `x + gate(f(x))`."
                )
            skip = [tensor for tensor in add_inputs if tensor is not outputs[0]]
            _mark_block(layer, inputs[0], skip, producer, analysis)
            continue
        # Back through the identities to the weighted layer whose units it gates (its output used by the gate alone).
        gated = inputs[0]
        source = producer.get(id(gated), (None,))[0]
        while isinstance(source, _PASS_THROUGH) and only_consumer(gated)[0] is not None:
            gated = producer[id(gated)][1][0]
            source = producer.get(id(gated), (None,))[0]
        # On through pooling, Flatten and the identities to the one weighted layer whose inputs it gates.
        tensor, positions = outputs[0], 1
        while True:
            consumer, consumer_inputs = only_consumer(tensor)
            if isinstance(consumer, _WEIGHTED):
                break
            if not isinstance(consumer, (*_PASS_THROUGH, *_PER_CHANNEL)):
                reached = "the model's output or several layers" if consumer is None else repr(consumer.name)
                raise ValueError(
                    f"prune: the HardConcreteGate {layer.name!r} reaches {reached}; prune carries a unit gate whose "
                    "output reaches one Dense or convolution layer, through pooling, Flatten or Dropout only."
                )
            if isinstance(consumer, keras.layers.Flatten):
                positions = int(np.prod(consumer_inputs[0].shape[1:-1]))
            tensor = outputs_of[id(consumer)][0]
        if isinstance(source, _WEIGHTED) and only_consumer(gated)[0] is not None:
            analysis.gate_after[id(source)] = layer  # its units removed from the layer before it
        else:
            analysis.gathered.add(id(layer))  # features of an input or another layer: gathered at the gate
        analysis.gate_before[id(consumer)] = (layer, positions)
    return analysis


def _mark_block(gate, branch_output, skip, producer, analysis):
    """Records `gate` on every layer of its residual branch: the layers `branch_output` depends on that the `Add`'s
    other inputs (`skip`, the skip path) do not."""
    shared, stack = set(), list(skip)
    while stack:
        tensor = stack.pop()
        if id(tensor) not in shared:
            shared.add(id(tensor))
            stack.extend(producer.get(id(tensor), (None, []))[1])
    stack = [branch_output]
    while stack:
        tensor = stack.pop()
        if id(tensor) in shared or id(tensor) not in producer:
            continue
        shared.add(id(tensor))  # visited
        layer, inputs = producer[id(tensor)]
        analysis.blocks[id(layer)] = analysis.blocks.get(id(layer), ()) + (gate,)
        stack.extend(inputs)
