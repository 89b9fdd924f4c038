"""The subset samplers: k categories without replacement (Gumbel-top-k) and its relaxed k-hot.

Private: `keras_gumbel.ops` re-exports `gumbel_top_k` and `relaxed_top_k`; import them from there. The Numerics and
Seeds that "the module docstring" names in the docstrings below are those of `keras_gumbel.ops`.
"""

from keras import ops

from keras_gumbel import _backend
from keras_gumbel import _sampling
from keras_gumbel import _validation


def gumbel_top_k(logits, k, seed=None):
    """Samples k distinct categories without replacement (the Gumbel-top-k trick).

    The indices of the k largest `logits + g`, g ~ Gumbel(0, 1), in decreasing
    order, are distributed as k draws without replacement from
    `Categorical(softmax(logits))`, each draw renormalised over the categories
    left (Kool et al., 2019). The category axis is the last one. Masked
    (`-inf`) categories come after every unmasked one: a row with fewer than
    k unmasked categories fills its last places with masked ones (check
    against the mask if that can happen).

    Args:
        logits: Floating tensor [..., K].
        k: Integer, 1 <= k <= K.
        seed: `None`, an integer, a `keras.random.SeedGenerator` or a seed
            tensor (a JAX key): see Seeds in the module docstring.

    Returns:
        An int32 tensor [..., k] of category indices, the first drawn first.

    Reference:
        - [Kool, van Hoof, Welling, 2019. Stochastic Beams and Where to Find Them](https://arxiv.org/abs/1903.06059)
    """
    logits, k, _ = _sampling.top_k_arguments(logits, k)
    perturbed = _sampling.perturb(logits, _sampling.check_seed(seed))
    return ops.cast(ops.top_k(perturbed, k, sorted=True)[1], "int32")


def relaxed_top_k(logits, k, temperature=1.0, hard=False, seed=None):
    """A relaxed k-hot sample: k categories without replacement, differentiably (Xie & Ermon, 2019).

    With perturbed logits `w = logits + g`, g ~ Gumbel(0, 1), it sums k
    successive softmaxes, each one discounting what the previous took:

        a_1 = softmax(w / t);  a_{i+1} = softmax((w + log(1 - a_1 - ... - a_i)) / t)
        y = a_1 + ... + a_k

    `y` is non-negative, sums to k, and tends to the k-hot of the top k of `w`
    (a Gumbel-top-k sample) as `t -> 0`. An entry can exceed 1 (when two
    perturbed logits are within about `t` of each other, or at high
    temperatures), as in Xie & Ermon's relaxation. With `hard=True` the forward value is
    that exact k-hot and the gradient is that of `y` (straight-through).
    The category axis is the last one. A row with fewer than k unmasked
    (finite) categories cannot hold k distinct picks: the relaxed sample then
    piles the remaining mass on unmasked ones, and the hard k-hot includes
    masked ones (as `gumbel_top_k` does).

    Args:
        logits: Floating tensor [..., K].
        k: Integer, 1 <= k <= K.
        temperature: Positive temperature.
        hard: Exact k-hot forward, relaxed gradient backward.
        seed: `None`, an integer, a `keras.random.SeedGenerator` or a seed
            tensor (a JAX key): see Seeds in the module docstring.

    Returns:
        A tensor with the shape and dtype of `logits`.

    Reference:
        - [Xie, Ermon, 2019. Reparameterizable Subset Sampling via Continuous Relaxations](https://arxiv.org/abs/1901.10517)
    """
    temperature = _sampling.check_temperature(temperature)
    _validation.check_bool("hard", hard)
    logits, k, out_dtype = _sampling.top_k_arguments(logits, k)
    inverse_temperature = _sampling.inverse_temperature(temperature, logits.dtype)
    perturbed = _sampling.perturb(logits, _sampling.check_seed(seed))
    taken = ops.zeros_like(perturbed)
    weights = perturbed
    for _ in range(k):
        scaled = ops.multiply(weights, inverse_temperature)
        log_step = ops.log_softmax(scaled, axis=-1)
        taken = _backend.add(taken, ops.exp(log_step))
        # Discount what was taken: weights + log(1 - step).
        weights = _backend.add(weights, _sampling.log_one_minus_softmax(scaled, log_step))
    if hard:
        indices = ops.top_k(perturbed, k)[1]
        k_hot = ops.sum(ops.one_hot(indices, ops.shape(perturbed)[-1], dtype=perturbed.dtype), axis=-2)
        taken = _sampling.with_gradient_of(k_hot, taken)
    return ops.cast(taken, out_dtype)
