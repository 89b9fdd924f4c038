"""Multi-head attention whose heads are kept or dropped by learned Hard Concrete gates."""

import keras
from keras import ops

from keras_gumbel.layers.hard_concrete_gate import HardConcreteGate
from keras_gumbel.ops import _hard_concrete

# The gate's arguments, as `HeadGatedAttention` takes them and its config holds them (`seed` is the dropout's).
_GATE_ARGUMENTS = ("temperature", "stretch", "initial_keep_probability", "sample_at_inference", "trainable_temperature")


@keras.saving.register_keras_serializable(package="keras_gumbel")
class HeadGatedAttention(keras.layers.MultiHeadAttention):
    """`keras.layers.MultiHeadAttention` with a learned Hard Concrete gate on each head.

    Each head's output (its attention-weighted values, before the output projection) is multiplied by the head's
    gate, a `HardConcreteGate` over the heads (`head_gate`): exactly 0 or 1 with positive probability in training,
    one draw per call shared by the batch, deterministic at inference. With
    `keras_gumbel.pruning.SparsityController` a model learns which heads it needs, and
    `keras_gumbel.pruning.prune(model)` turns the layer into a plain `MultiHeadAttention` with the gated-off heads
    removed (their query, key and value projections too) and the kept gates folded into the output projection.

    Args:
        num_heads: Number of attention heads, as `keras.layers.MultiHeadAttention`'s.
        key_dim: Size of each head for the query and key, as `keras.layers.MultiHeadAttention`'s.
        temperature: The head gate's temperature (`HardConcreteGate`; 2/3 in the paper).
        stretch: The head gate's `(low, high)` stretch, `(-0.1, 1.1)` in the paper.
        initial_keep_probability: `P(gate > 0)` of every head at the start.
        sample_at_inference: If `True`, sample the head gates at inference too.
        trainable_temperature: If `True`, the head gate's temperature is learned.
        gate_seed: Integer seed of the head gate's `keras.random.SeedGenerator` (`seed` is the dropout's).
        fixed: Whether the head gate's inference gates are fixed (`HardConcreteGate.fix_gates`): saved in the
            config.
        **kwargs: `keras.layers.MultiHeadAttention`'s other arguments (`value_dim`, `dropout`, `use_bias`,
            `output_shape`, `attention_axes`, initializers, `seed`, ...) and the base layer's.

    Call arguments:
        query, value, key, masks, training, ...: As `keras.layers.MultiHeadAttention`'s call.

    Examples:
        >>> import keras, keras_gumbel
        >>> attention = keras_gumbel.HeadGatedAttention(4, key_dim=8, gate_seed=0)
        >>> x = keras.ops.ones((2, 5, 16))
        >>> tuple(attention(x, x, training=True).shape)
        (2, 5, 16)
        >>> kept = attention.head_gate.expected_kept()  # 4 heads, P(kept) 0.9
        >>> round(float(kept), 2)
        3.6
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        temperature=_hard_concrete.TEMPERATURE,
        stretch=_hard_concrete.STRETCH,
        initial_keep_probability=0.9,
        sample_at_inference=False,
        trainable_temperature=False,
        gate_seed=None,
        fixed=False,
        **kwargs,
    ):
        super().__init__(num_heads, key_dim, **kwargs)
        self.head_gate = HardConcreteGate(
            temperature=temperature,
            stretch=stretch,
            initial_keep_probability=initial_keep_probability,
            sample_at_inference=sample_at_inference,
            trainable_temperature=trainable_temperature,
            seed=gate_seed,
            fixed=fixed,
            dtype=self.dtype_policy,
            name=f"{self.name}_head_gate",  # errors about the gate name the layer it is in
        )

    @property
    def temperature(self):
        """The head gate's temperature variable (what `TemperatureAnnealing` assigns)."""
        return self.head_gate.temperature

    def build(self, query_shape, value_shape, key_shape=None):
        super().build(query_shape, value_shape, key_shape)
        self.head_gate.build((self.num_heads,))

    def _compute_attention(self, query, key, value, attention_mask=None, training=None, *args, **kwargs):
        output, scores = super()._compute_attention(query, key, value, attention_mask, training, *args, **kwargs)
        # `output`: [batch, positions..., heads, value_dim]; the gate multiplies its last axis, the heads.
        gated = self.head_gate(ops.moveaxis(output, -2, -1), training=training)
        return ops.moveaxis(gated, -1, -2), scores

    def get_config(self):
        config = super().get_config()
        gate = self.head_gate.get_config()
        config.update({name: gate[name] for name in _GATE_ARGUMENTS})
        config.update({"gate_seed": gate["seed"], "fixed": gate["fixed"]})
        return config
