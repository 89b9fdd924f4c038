"""Attention to one element of a set, with Gumbel-Softmax or (`hard=True`) straight-through weights."""

import keras
from keras import ops

from keras_gumbel import _deprecation
from keras_gumbel import _sampling
from keras_gumbel import _validation
from keras_gumbel import ops as gumbel_ops
from keras_gumbel.layers._base import TemperatureLayer

MODES = ("gumbel_softmax", "softmax")


@keras.saving.register_keras_serializable(package="keras_gumbel")
class GumbelAttention(TemperatureLayer):
    """Attends to one element of a set: scores from query and keys, sampled weights, a sum of values.

        scores = keys . query / sqrt(d)      [batch, (queries,) set size]
        weights = sampler(scores)            (see mode and hard, below)
        output = sum_i weights_i * values_i  [batch, (queries,) value dim]

    One query per example ([batch, d]) or several, as in a Transformer
    ([batch, num_queries, d], as `keras.layers.Attention` takes them): each
    query samples its own choice.

    `mode` picks the weights:

    - `"gumbel_softmax"`: `softmax((scores + g) / temperature)` in training, and
      at inference `softmax(scores / temperature)`: the temperature switches the
      served layer between soft attention (high) and hard attention (low);
    - `"softmax"`: ordinary soft attention `softmax(scores / temperature)`, no
      noise ever (for comparison; the temperature still sharpens it).

    `hard=True` attends to one element exactly: the one-hot of the argmax of
    those weights forward (of `scores + g` in training, of `scores` at
    inference), their gradient backward (straight-through). With the default
    mode that is the straight-through Gumbel-Softmax; with `"softmax"`, the
    deterministic argmax.

    `sample_at_inference=True` keeps the noise at inference (a stochastic
    choice at test time). Masked elements are never attended: `mask`, or the
    Keras masks of `keys` and `values` (an `Embedding(..., mask_zero=True)`
    upstream), which Keras passes as `keys_mask` / `values_mask`. A set with no
    unmasked element gets zero weights and a zero output.

    Args:
        mode: `"gumbel_softmax"` or `"softmax"` (no noise). The old
            `mode="straight_through"` still works until 0.4.0, with a
            `FutureWarning`: it is `hard=True` with `"gumbel_softmax"`.
        temperature: Positive finite float, in the variable `layer.temperature`:
            at least the floor `2**-104`, and read as the floor if assigned below
            it (see `GumbelSoftmax`).
        sample_at_inference: Keep the noise at inference.
        trainable_temperature: Learn the temperature (kept >= 0.05).
        seed: Integer seed of the layer's `keras.random.SeedGenerator`.
        hard: If `True`, exactly one element: one-hot weights forward, the
            relaxed gradient backward.
        **kwargs: Base layer keyword arguments.

    Call arguments:
        query: [batch, d], or [batch, num_queries, d].
        keys: [batch, set size, d].
        values: [batch, set size, value dim]; defaults to `keys`.
        mask: Optional boolean [batch, set size]; False elements get weight 0.
        training: Python bool.
        return_attention_weights: Also return the weights [batch, set size]
            ([batch, num_queries, set size] for several queries).
        keys_mask: The Keras mask of `keys` [batch, set size], filled in by
            Keras; combined with `mask`.
        values_mask: The Keras mask of `values`, as `keys_mask`.

    Returns:
        [batch, value dim] ([batch, num_queries, value dim] for several
        queries), or `(output, weights)`.

    Examples:
        >>> import keras, keras_gumbel
        >>> attention = keras_gumbel.GumbelAttention(hard=True, seed=0)
        >>> query = keras.ops.convert_to_tensor([[1.0, 0.0]])
        >>> keys = keras.ops.convert_to_tensor([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]])
        >>> values = keras.ops.convert_to_tensor([[[10.0], [20.0], [30.0]]])
        >>> output, weights = attention(
        ...     query, keys, values, return_attention_weights=True
        ... )

        At inference, the argmax of the scores: exactly one element.

        >>> keras.ops.convert_to_numpy(weights).tolist()
        [[1.0, 0.0, 0.0]]
        >>> keras.ops.convert_to_numpy(output).tolist()
        [[10.0]]

    Reference:
        - [Jang et al., 2017](https://arxiv.org/abs/1611.01144); the reference post's attention view.
    """

    def __init__(
        self,
        mode="gumbel_softmax",
        temperature=1.0,
        sample_at_inference=False,
        trainable_temperature=False,
        seed=None,
        hard=False,
        **kwargs,
    ):
        super().__init__(
            temperature=temperature,
            sample_at_inference=sample_at_inference,
            trainable_temperature=trainable_temperature,
            seed=seed,
            **kwargs,
        )
        self.hard = _validation.check_bool("hard", hard)
        self._hard_by_old_mode = False
        self.mode = mode
        self.supports_masking = True  # keys' and values' Keras masks arrive as keys_mask / values_mask

    @property
    def mode(self):
        """`"gumbel_softmax"` (sampled weights) or `"softmax"` (no noise)."""
        return self._mode

    @mode.setter
    def mode(self, mode):
        # Before 0.3.0 `"straight_through"` was a third mode, given, assigned or in a saved config: now `hard=True`.
        # A layer made hard that way is made soft again by assigning another mode, as it was then.
        hard, by_old_mode = self.hard, mode == "straight_through"
        if by_old_mode:
            _deprecation.warn(
                'GumbelAttention\'s mode="straight_through" is deprecated since keras-gumbel 0.3.0 '
                f'{_deprecation._REMOVED}: use GumbelAttention(hard=True) (with mode="gumbel_softmax", the default).'
            )
            mode, hard = "gumbel_softmax", True
        elif self._hard_by_old_mode:
            hard = False
        if mode not in MODES:
            raise ValueError(_validation.invalid("mode", f"one of {MODES}", mode))
        self._mode, self.hard, self._hard_by_old_mode = mode, hard, by_old_mode

    def compute_mask(self, *args, **kwargs):
        # The set axis is reduced away: no mask goes on downstream.
        return None

    def build(self, query_shape, keys_shape=None, values_shape=None):
        self.built = True

    def call(
        self,
        query,
        keys,
        values=None,
        mask=None,
        training=None,
        return_attention_weights=False,
        keys_mask=None,
        values_mask=None,
    ):
        query = ops.convert_to_tensor(query)
        keys = ops.convert_to_tensor(keys)
        values = keys if values is None else ops.convert_to_tensor(values)
        single_query = _check_ranks(query, keys, values)
        if single_query:
            query = ops.expand_dims(query, 1)  # [batch, 1, d]
        depth = ops.cast(ops.shape(query)[-1], query.dtype)  # static or, if unknown, dynamic
        scores = ops.divide(ops.einsum("bqd,bnd->bqn", query, keys), ops.sqrt(depth))
        masks = [ops.cast(m, "bool") for m in (mask, keys_mask, values_mask) if m is not None]
        any_valid = None
        if masks:
            mask = masks[0]
            for other in masks[1:]:
                mask = ops.logical_and(mask, other)
            mask = ops.expand_dims(mask, 1)  # the same set for every query
            # Empty sets get finite (uniform) scores here and zero weights below.
            scores = gumbel_ops.mask_logits(scores, mask, axis=2)
            any_valid = ops.any(mask, axis=2, keepdims=True)
        add_noise = self.mode != "softmax" and self._add_noise(training)
        with self._draws(scores, training):
            weights = _sampling.categorical(
                scores,
                self._current_temperature(),
                axis=2,
                hard=self.hard,
                seed=self.seed_generator,
                add_noise=add_noise,
                differentiable=bool(training),
            )
        if any_valid is not None:
            weights = ops.where(any_valid, weights, ops.zeros_like(weights))
        output = ops.einsum("bqn,bnv->bqv", ops.cast(weights, values.dtype), values)
        if single_query:
            output, weights = output[:, 0], weights[:, 0]
        return (output, weights) if return_attention_weights else output

    def compute_output_spec(
        self,
        query,
        keys,
        values=None,
        mask=None,
        training=None,
        return_attention_weights=False,
        keys_mask=None,
        values_mask=None,
    ):
        values = keys if values is None else values
        queries = tuple(query.shape[:-1])  # (batch,) or (batch, num_queries)
        output = keras.KerasTensor((*queries, values.shape[-1]), dtype=self.compute_dtype)
        if return_attention_weights:
            return output, keras.KerasTensor((*queries, keys.shape[1]), dtype=self.compute_dtype)
        return output

    def compute_output_shape(self, query_shape, keys_shape, values_shape=None):
        """`[batch, (num_queries,) value dim]`: the query's leading axes and the values' last (the keys' if none)."""
        values_shape = keys_shape if values_shape is None else values_shape
        return (*tuple(query_shape)[:-1], tuple(values_shape)[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode, "hard": self.hard})
        return config


def _check_ranks(query, keys, values):
    """True for one query per example ([batch, d]), False for several ([batch, num_queries, d])."""
    for name, tensor, ranks, expected in (
        ("query", query, (2, 3), "[batch, d] or [batch, num_queries, d]"),
        ("keys", keys, (3,), "[batch, set size, d]"),
        ("values", values, (3,), "[batch, set size, value dim]"),
    ):
        if _validation.rank(tensor, name) not in ranks:
            raise ValueError(
                _validation.invalid(name, f"a tensor of shape {expected}", f"<shape {tuple(tensor.shape)}>")
            )
    return len(query.shape) == 2
