"""Masks over the categories: `-inf` logits that keep fully masked rows finite.

Private: `keras_gumbel.ops` re-exports `mask_logits`; import it from there. The Numerics and Seeds that "the module
docstring" names in the docstrings below are those of `keras_gumbel.ops`.
"""

import math

from keras import ops

from keras_gumbel import _sampling


def mask_logits(logits, mask, axis=-1):
    """Sets masked categories to `-inf`, keeping rows with no valid category finite.

    Masked entries become `-inf` (never sampled, zero mass, zero gradient). A
    row whose mask is all `False` would then be all `-inf`, which gives NaN
    downstream; its logits are set to 0 instead (a uniform, finite row), so
    that padding rows cannot poison a batch. Multiply the sampler's output by
    `keras.ops.any(mask, axis, keepdims=True)` if such rows should be zero.

    Args:
        logits: Floating tensor.
        mask: Boolean tensor broadcastable to `logits`; `True` keeps a category.
        axis: The category axis.

    Returns:
        A tensor with the shape and dtype of `logits`.

    Examples:
        >>> import keras, keras_gumbel
        >>> logits = keras.ops.convert_to_tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
        >>> mask = keras.ops.convert_to_tensor(
        ...     [[True, False, True], [False, False, False]]
        ... )
        >>> masked = keras_gumbel.ops.mask_logits(logits, mask)
        >>> keras.ops.convert_to_numpy(masked).tolist()
        [[1.0, -inf, 3.0], [0.0, 0.0, 0.0]]
    """
    logits = ops.convert_to_tensor(logits)
    _sampling.compute_dtype_for(logits.dtype)  # a TypeError for integer logits (-inf has no integer value)
    mask = ops.cast(mask, "bool")
    any_valid = ops.any(mask, axis=axis, keepdims=True)
    masked = ops.where(mask, logits, ops.full_like(logits, -math.inf))
    return ops.where(any_valid, masked, ops.zeros_like(logits))
