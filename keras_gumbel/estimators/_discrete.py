"""What the coupled-sample estimators (ARM, DisARM, ARSM, REBAR, RELAX) share: their noise and their distributions.

Private. `uniform` draws the uniforms every one of them starts from, from any
seed the training helpers or a user give; `compute_logits` casts a policy's
logits to the dtype the noise is computed in; `per_sample`, `surrogate_loss` turn per-sample gradient estimates
into a loss whose gradient is their mean.
"""

import keras
from keras import ops

from keras_gumbel import _backend
from keras_gumbel import _sampling
from keras_gumbel import _validation


def uniform(shape, seed, dtype="float32"):
    """Uniforms on `[tiny, 1)` (so that `log(u)` and `log(1 - u)` are finite) from any seed.

    Args:
        shape: The shape of the draw.
        seed: `None`, an integer, a `keras.random.SeedGenerator`, or a seed
            tensor (on TensorFlow an int32 [2] stateless seed: the step's seed
            the training helpers pass to `Estimator.estimate`).
        dtype: A floating dtype.
    """
    return _backend.uniform_positive(shape, seed=_backend.fold_seed(seed), dtype=keras.backend.standardize_dtype(dtype))


def as_float(tensor):
    """`tensor` as a tensor of a floating dtype: float16, bfloat16, float32 and float64 kept, anything else float32."""
    tensor = ops.convert_to_tensor(tensor)
    if keras.backend.standardize_dtype(tensor.dtype) not in ("float16", "bfloat16", "float32", "float64"):
        tensor = ops.cast(tensor, "float32")
    return tensor


def as_float_pair(logits, noise):
    """`logits` as a floating tensor (`as_float`) and `noise` cast to its dtype."""
    logits = as_float(logits)
    return logits, ops.cast(ops.convert_to_tensor(noise), logits.dtype)


def compute_logits(logits):
    """The policy's logits in the dtype the noise is computed in: float64 kept, anything else float32.

    As the layers compute (`_sampling.compute_dtype_for`): float16 and bfloat16
    cannot hold the noise's range.
    """
    logits = ops.convert_to_tensor(logits)
    return ops.cast(logits, _sampling.compute_dtype_for(logits.dtype))


def per_sample(name, reward, reference):
    """`reward` with trailing axes of size 1 added up to the rank of `reference`, after checking its shape.

    A reward has one value per sample: its shape is the leading part of the
    shape of the noise (`reference`), e.g. [n, B] for noise [n, B, D]; it is
    broadcast over the remaining (event) axes.
    """
    reward = ops.convert_to_tensor(reward)
    reward_shape, reference_shape = _validation.static_shape(reward), _validation.static_shape(reference)
    if reward_shape is not None and reference_shape is not None:
        prefix = reference_shape[: len(reward_shape)]
        fits = len(reward_shape) <= len(reference_shape) and all(
            r is None or p is None or r == p for r, p in zip(reward_shape, prefix)
        )
        if not fits:
            expected = (
                f"one value per sample: a shape that is the leading part of the noise's shape, {reference_shape} "
                f"(e.g. {reference_shape[:2]} for noise [num_samples, batch_size, ...])"
            )
            raise ValueError(_validation.invalid_shape(name, expected, reward_shape))
    for _ in range(len(reference.shape) - len(reward.shape)):
        reward = ops.expand_dims(reward, -1)
    return reward


def check_noise(name, noise, logits, event_axes=0):
    """Checks that the trailing axes of `noise` are those of `logits` (plus `event_axes` more)."""
    noise_shape, logits_shape = _validation.static_shape(noise), _validation.static_shape(logits)
    if noise_shape is None or logits_shape is None:
        return
    trailing = noise_shape[len(noise_shape) - len(logits_shape) - event_axes :]
    if len(noise_shape) < len(logits_shape) + event_axes or not all(
        n is None or lg is None or n == lg or lg == 1 for n, lg in zip(trailing, logits_shape)
    ):
        expected = f"a shape that ends with the shape of `logits`, {logits_shape} (e.g. [num_samples, *logits.shape])"
        raise ValueError(_validation.invalid_shape(name, expected, noise_shape))


def surrogate_loss(logits, gradient, reward_rank):
    """A scalar whose gradient with respect to `logits` is `-mean(gradient)` over the samples.

    `gradient` holds per-sample estimates of `grad_logits E[reward]` (its
    first `reward_rank` axes index the samples and inputs, the rest are those
    of one input's logits); the loss is `-sum(stop_gradient(gradient) *
    logits)` summed over an input's logits and averaged over the rest, as
    `score_function_loss` averages its terms.
    """
    logits = ops.convert_to_tensor(logits)
    gradient = ops.stop_gradient(ops.cast(gradient, logits.dtype))
    terms = ops.multiply(gradient, logits)
    event_axes = tuple(range(reward_rank, len(terms.shape)))
    if event_axes:
        terms = ops.sum(terms, axis=event_axes)
    return ops.negative(ops.mean(terms))


def check_even_samples(owner, num_samples):
    num_samples = _validation.check_int("num_samples", num_samples, minimum=1)
    if num_samples < 2 or num_samples % 2:
        raise ValueError(
            _validation.invalid(
                "num_samples",
                f"an even number >= 2 for {owner}: it evaluates antithetic pairs, two samples each",
                num_samples,
            )
        )
    return num_samples
