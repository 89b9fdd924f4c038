"""Backend-agnostic Gumbel-Softmax operations, written with `keras.ops` only.

These are the pure functions the layers are built on; use them directly
outside layers, for example inside a custom training step:

>>> import keras, keras_gumbel
>>> logits = keras.ops.log([[0.2, 0.3, 0.5]])
>>> sample = keras_gumbel.ops.gumbel_softmax(logits, temperature=0.5, seed=1)
>>> tuple(sample.shape)
(1, 3)

Numerics, for every function here:

- Gumbel noise is `-log(-log(u))` with `u` uniform on `[tiny, 1)` (as TFP
  draws it), so it is always finite; it is drawn in float32 (float64 for
  float64 logits) whatever the dtype of the logits, and the softmax is computed
  in that dtype too. Results are cast back to the dtype of the logits.
- `-inf` logits mark masked categories: they are never selected, get exactly
  zero mass and zero gradient.
- A row whose logits are all `-inf` has no category to choose: like
  `softmax`, it gives NaN (the whole row, in the relaxed and hard forms). If a
  row can be fully masked (padding), build the logits with `mask_logits`,
  which keeps such rows finite.
- NaN or `+inf` logits are invalid input and are not hidden: the row's output
  holds NaN (the whole row for `hard=True`) and so does its gradient.

These checks cost nothing extra: detecting and repairing all-masked rows inside
the sampler would add two passes over the data to every call (about 7-10% of
the forward and backward time in `benchmarks/speed.py`).
"""

import math

import keras
from keras import ops

from keras_gumbel import _backend
from keras_gumbel import _validation

__all__ = [
    "gumbel_noise",
    "gumbel_softmax",
    "log_gumbel_softmax",
    "gumbel_rao",
    "reinmax",
    "gumbel_top_k",
    "relaxed_top_k",
    "relaxed_bernoulli",
    "relaxed_bernoulli_logits",
    "mask_logits",
]


def gumbel_noise(shape, seed=None, dtype="float32"):
    """Draws standard Gumbel(0, 1) noise that is always finite.

    `g = -log(-log(u))` with `u` uniform on `[tiny, 1)`: `u = 0` cannot occur,
    so `g` is never infinite (in float32 it lies in about [-4.5, 15.9]: 23 random bits give u <= 1 - 2**-23).

    Args:
        shape: Shape of the sample.
        seed: `None` (Keras' global generator), an integer (the same draw on
            every call, as in `keras.random`) or a `keras.random.SeedGenerator`
            (a reproducible stream of different draws).
        dtype: `"float32"` (the default) or `"float64"`.

    Returns:
        A tensor of the given shape and dtype.
    """
    dtype = keras.backend.standardize_dtype(dtype)
    if dtype not in ("float32", "float64"):
        raise ValueError(_validation.invalid("dtype", '"float32" or "float64"', dtype))
    if isinstance(shape, (list, tuple)) and any(dim is None for dim in shape):
        raise ValueError(
            _validation.invalid("shape", "a fully defined shape (for dynamic sizes pass keras.ops.shape(x))", shape)
        )
    return ops.negative(_log_exponential(shape, _validation.check_seed(seed), dtype))


def gumbel_softmax(logits, temperature=1.0, hard=False, axis=-1, seed=None):
    """Samples from the Gumbel-Softmax (Concrete) distribution.

    The relaxed sample is

        y = softmax((logits + g) / temperature, axis),  g ~ Gumbel(0, 1).

    With `hard=True` the forward value is the exact one-hot of
    `argmax(logits + g)`, a sample of `Categorical(logits)`, and the gradient
    is that of the relaxed `y` (the straight-through Gumbel-Softmax estimator).
    This is the contract of PyTorch's `F.gumbel_softmax`, with a seed.

    Args:
        logits: Floating tensor of unnormalised log-probabilities. `-inf` masks
            a category. Integer logits raise a `TypeError`.
        temperature: Positive finite float (checked), or a scalar tensor
            (not checked: it is the caller's to keep positive).
        hard: If `True`, return one-hot samples with the relaxed gradient.
        axis: The category axis.
        seed: `None`, an integer (the same draw on every call) or a
            `keras.random.SeedGenerator` (a reproducible stream).

    Returns:
        A tensor with the shape and dtype of `logits`.

    Reference:
        - [Jang et al., 2017](https://arxiv.org/abs/1611.01144)
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712)
    """
    temperature = _check_temperature(temperature)
    _validation.check_bool("hard", hard)
    seed = _validation.check_seed(seed)
    logits = ops.convert_to_tensor(logits)
    axis = _validation.check_category_axis(logits, axis)
    return sample(logits, temperature, axis=axis, hard=hard, seed=seed, add_noise=True)


def log_gumbel_softmax(logits, temperature=1.0, axis=-1, seed=None):
    """The log of a Gumbel-Softmax sample, computed in log space (the ExpConcrete distribution).

        z = log_softmax((logits + g) / temperature, axis),  g ~ Gumbel(0, 1)

    `exp(z)` is `gumbel_softmax(logits, temperature, axis=axis, seed=seed)`
    (the same noise for the same seed), but `z` keeps what the relaxed sample
    rounds away: at low temperatures a float32 relaxed sample holds exact 0s
    and 1s, whose log-density is infinite (and an entropy or KL term's
    gradient NaN), while `z` stays finite. Score relaxed samples with
    `tfp.distributions.ExpRelaxedOneHotCategorical(temperature, logits)`'s
    `log_prob(z)` (or `GumbelSoftmax(log_space=True).distribution(logits)`):
    the Concrete VAE's KL term is computed this way (Maddison et al., 2017,
    appendix C). Masked (`-inf`) categories give `-inf`.

    Args:
        logits: Floating tensor of logits.
        temperature: Positive temperature.
        axis: The category axis.
        seed: `None`, an integer or a `keras.random.SeedGenerator`.

    Returns:
        A tensor with the shape and dtype of `logits`; `logsumexp(z, axis) = 0`.

    Reference:
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712), appendix C.
    """
    temperature = _check_temperature(temperature)
    seed = _validation.check_seed(seed)
    logits = ops.convert_to_tensor(logits)
    axis = _validation.check_category_axis(logits, axis)
    return sample(logits, temperature, axis=axis, hard=False, seed=seed, add_noise=True, log_space=True)


def gumbel_rao(logits, temperature=1.0, num_draws=10, axis=-1, seed=None):
    """Straight-through sampling with the Gumbel-Rao gradient (Paulus et al., 2021).

    The forward value is the exact one-hot `D = one_hot(argmax(logits + g))`,
    as for `gumbel_softmax(..., hard=True)`. The backward pass averages the
    relaxed gradient over `num_draws` Gumbel perturbations drawn *conditionally
    on D* (so that their argmax is D), holding each draw's noise fixed as the
    straight-through estimator does: the conditional expectation of the
    straight-through gradient given D (a Rao-Blackwellisation), so the same
    mean with a variance that falls as `num_draws` grows (`num_draws=1` is the
    straight-through estimator in distribution). The conditional perturbed
    logits are, with `E ~ Exp(1)` and `i` the chosen category:

        z_i = logsumexp(logits) - log(E_i)
        z_j = -logaddexp(log(E_j) - logits_j, log(E_i) - logsumexp(logits)),  j != i

    Args:
        logits: Floating tensor of logits.
        temperature: Positive temperature of the relaxed gradient.
        num_draws: Positive integer: conditional draws averaged in the backward pass.
        axis: The category axis.
        seed: `None`, an integer or a `keras.random.SeedGenerator`.

    Returns:
        An exact one-hot tensor with the shape and dtype of `logits`.

    Reference:
        - [Paulus, Maddison, Krause, 2021. Rao-Blackwellizing the Straight-Through Gumbel-Softmax
          Gradient Estimator](https://arxiv.org/abs/2010.04838)
    """
    temperature = _check_temperature(temperature)
    num_draws = _validation.check_int("num_draws", num_draws, minimum=1)
    seed = _validation.check_seed(seed)
    # Two draws follow: an integer seed gives each its own (stateless) seed,
    # since one seed for both would correlate them.
    sample_seed, conditional_seed = (seed, _derived_seed(seed)) if isinstance(seed, int) else (seed, seed)
    logits, axis, out_dtype = _prepare(logits, axis)
    inverse_temperature = ops.divide(1.0, ops.cast(temperature, logits.dtype))
    chosen = _one_hot_of_argmax(_perturb(logits, sample_seed), axis)
    # Conditional draws, [num_draws, *shape].
    log_exponential = _log_exponential((num_draws, *ops.shape(logits)), conditional_seed, logits.dtype)
    log_normalizer = ops.logsumexp(logits, axis=axis, keepdims=True)
    log_exponential_chosen = ops.sum(ops.multiply(log_exponential, chosen), axis=axis + 1, keepdims=True)
    top = ops.subtract(log_normalizer, log_exponential_chosen)
    others = ops.negative(
        ops.logaddexp(ops.subtract(log_exponential, logits), ops.subtract(log_exponential_chosen, log_normalizer))
    )
    # The conditional noise g = z - logits is held fixed (as the straight-through
    # estimator holds its noise): the gradient is E[straight-through gradient | D].
    # Masked (-inf) categories stay -inf: their noise is 0, not -inf - (-inf) = NaN.
    noise = ops.where(
        ops.equal(logits, -math.inf), 0.0, ops.subtract(ops.where(ops.cast(chosen, "bool"), top, others), logits)
    )
    perturbed = _backend.add(logits, ops.stop_gradient(noise))
    relaxed = ops.mean(_backend.softmax(ops.multiply(perturbed, inverse_temperature), axis + 1), axis=0)
    # Exactly `chosen` forward, the averaged relaxed gradient backward.
    return ops.cast(_with_gradient_of(chosen, relaxed), out_dtype)


def reinmax(logits, temperature=1.0, axis=-1, seed=None):
    """Straight-through sampling with the ReinMax gradient (Liu et al., 2023).

    The forward value is an exact one-hot sample D of `Categorical(softmax(logits))`.
    The backward pass replaces straight-through's first-order (forward Euler)
    gradient with a second-order one (Heun's method), at the same cost: with
    `J(p) = diag(p) - p p^T`, `p0 = softmax(logits)` and
    `p1 = (softmax(logits / temperature) + D) / 2`,

        grad_logits = 2 J(p1) dy - J(p0) dy / 2,  centred over the categories.

    The temperature only shapes the gradient formula; ReinMax's authors recommend
    `temperature >= 1`. The formula is not the gradient of a function of the
    temperature, so a temperature variable gets no gradient here (learn it
    with `gumbel_softmax(..., hard=True)` or `gumbel_rao` instead).

    Args:
        logits: Floating tensor of logits.
        temperature: Positive temperature of the gradient.
        axis: The category axis.
        seed: `None`, an integer or a `keras.random.SeedGenerator`.

    Returns:
        An exact one-hot tensor with the shape and dtype of `logits`.

    Reference:
        - [Liu et al., 2023. Bridging Discrete and Backpropagation: Straight-Through and
          Beyond](https://arxiv.org/abs/2304.08612)
    """
    temperature = _check_temperature(temperature)
    logits, axis, out_dtype = _prepare(logits, axis)
    inverse_temperature = ops.divide(1.0, ops.cast(temperature, logits.dtype))
    chosen = _one_hot_of_argmax(_perturb(logits, _validation.check_seed(seed)), axis)

    def grad(logits, upstream):
        first = _backend.softmax(logits, axis)
        shifted = ops.multiply(
            0.5, _backend.add(_backend.softmax(ops.multiply(logits, inverse_temperature), axis), chosen)
        )
        # Both Jacobians have rows that sum to zero, and masked categories (p = 0) get exactly 0.
        return ops.subtract(
            ops.multiply(2.0, _softmax_jvp(shifted, upstream, axis)),
            ops.multiply(0.5, _softmax_jvp(first, upstream, axis)),
        )

    return ops.cast(_custom_gradient(chosen, grad)(logits), out_dtype)


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
        seed: `None`, an integer or a `keras.random.SeedGenerator`.

    Returns:
        An int32 tensor [..., k] of category indices, the first drawn first.

    Reference:
        - [Kool, van Hoof, Welling, 2019. Stochastic Beams and Where to Find Them](https://arxiv.org/abs/1903.06059)
    """
    logits, k, _ = _top_k_arguments(logits, k)
    perturbed = _perturb(logits, _validation.check_seed(seed))
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
        seed: `None`, an integer or a `keras.random.SeedGenerator`.

    Returns:
        A tensor with the shape and dtype of `logits`.

    Reference:
        - [Xie, Ermon, 2019. Reparameterizable Subset Sampling via Continuous Relaxations](https://arxiv.org/abs/1901.10517)
    """
    temperature = _check_temperature(temperature)
    _validation.check_bool("hard", hard)
    logits, k, out_dtype = _top_k_arguments(logits, k)
    inverse_temperature = ops.divide(1.0, ops.cast(temperature, logits.dtype))
    perturbed = _perturb(logits, _validation.check_seed(seed))
    taken = ops.zeros_like(perturbed)
    weights = perturbed
    for _ in range(k):
        scaled = ops.multiply(weights, inverse_temperature)
        log_step = ops.log_softmax(scaled, axis=-1)
        taken = _backend.add(taken, ops.exp(log_step))
        # Discount what was taken: weights + log(1 - step).
        weights = _backend.add(weights, _log_one_minus_softmax(scaled, log_step))
    if hard:
        indices = ops.top_k(perturbed, k)[1]
        k_hot = ops.sum(ops.one_hot(indices, ops.shape(perturbed)[-1], dtype=perturbed.dtype), axis=-2)
        taken = _with_gradient_of(k_hot, taken)
    return ops.cast(taken, out_dtype)


def _log_one_minus_softmax(scaled, log_softmax):
    """`log(1 - softmax(scaled))` along the last axis, with a bounded gradient.

    `log(1 - p)` written as is has the gradient `-1 / (1 - p)`, which explodes
    as a category is fully taken (p -> 1: 1e10 at temperature 1e-4, infinite
    once cast to float16). Only the largest entry can have p > 1/2; for it,
    `log(1 - p_max) = logsumexp(the others) - logsumexp(all)`, whose gradient
    is a difference of two softmaxes. The others use `log1p(-p)`, p <= 1/2.
    The result is kept >= log(tiny) (finite where nothing is left to take).
    """
    num_classes = scaled.shape[-1]
    if num_classes is None:
        num_classes = ops.shape(scaled)[-1]
    is_max = ops.cast(ops.one_hot(_backend.argmax(scaled, -1), num_classes, dtype="int32"), "bool")
    others = ops.where(is_max, ops.full_like(scaled, -math.inf), scaled)
    # A row with one finite entry has no others: a stand-in row keeps the gradient finite (unused below).
    any_other = ops.isfinite(_backend.max(others, axis=-1, keepdims=True))
    others = ops.where(any_other, others, ops.zeros_like(scaled))
    log_rest = ops.subtract(
        ops.logsumexp(others, axis=-1, keepdims=True), ops.logsumexp(scaled, axis=-1, keepdims=True)
    )
    floor = math.log(_backend.tiny(scaled.dtype))
    log_rest = ops.where(any_other, log_rest, ops.full_like(log_rest, floor))
    log_not_max = ops.log1p(ops.negative(ops.exp(ops.minimum(log_softmax, math.log(0.5)))))
    return ops.maximum(ops.where(is_max, log_rest, log_not_max), floor)


def _top_k_arguments(logits, k):
    logits, _, out_dtype = _prepare(logits)
    if _validation.rank(logits) == 0:
        raise ValueError(_validation.invalid("logits", "a tensor of rank >= 1 (categories on the last axis)", logits))
    num_classes = logits.shape[-1]
    k = _validation.check_int("k", k, minimum=1)
    if num_classes is not None and k > num_classes:
        raise ValueError(_validation.invalid("k", f"at most the number of categories ({num_classes})", k))
    return logits, k, out_dtype


def relaxed_bernoulli(logits, temperature=1.0, hard=False, seed=None):
    """Samples the binary Concrete (Gumbel-sigmoid) relaxation of Bernoulli(sigmoid(logits)).

        y = sigmoid((logits + L) / temperature),  L = log(u) - log(1 - u) ~ Logistic(0, 1)

    (the difference of two Gumbels: the two-category Gumbel-Softmax on the
    logits `[logits, 0]`). With `hard=True` the forward value is the exact
    Bernoulli sample `1[logits + L > 0]` and the gradient is that of `y`.

    Args:
        logits: Floating tensor of log-odds; every entry is an independent variable.
        temperature: Positive temperature.
        hard: Exact 0/1 forward, relaxed gradient backward.
        seed: `None`, an integer or a `keras.random.SeedGenerator`.

    Returns:
        A tensor with the shape and dtype of `logits`.

    Reference:
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712), section 3.3.
    """
    temperature = _check_temperature(temperature)
    _validation.check_bool("hard", hard)
    logits = ops.convert_to_tensor(logits)
    return sample_bernoulli(logits, temperature, hard, _validation.check_seed(seed), add_noise=True)


def relaxed_bernoulli_logits(logits, temperature=1.0, seed=None):
    """The logit of a relaxed Bernoulli sample: `(logits + L) / temperature`, L ~ Logistic(0, 1).

    `sigmoid` of it is `relaxed_bernoulli(logits, temperature, seed=seed)`
    (the same noise for the same seed). It is a sample of
    `Logistic(logits / temperature, 1 / temperature)` and its log-density is
    always finite, where the relaxed sample's is not: in float32, samples at
    temperature 0.5 reach exactly 0.0 and 1.0, whose log-probability is
    infinite (and an entropy gradient NaN). Score it with
    `tfp.distributions.Logistic(logits / temperature, 1 / temperature)`, or
    `RelaxedBernoulli(log_space=True).distribution(logits)`.

    Args:
        logits: Floating tensor of log-odds; every entry is an independent variable.
        temperature: Positive temperature.
        seed: `None`, an integer or a `keras.random.SeedGenerator`.

    Returns:
        A tensor with the shape and dtype of `logits`.

    Reference:
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712), section 3.3 and appendix C.
    """
    temperature = _check_temperature(temperature)
    logits = ops.convert_to_tensor(logits)
    return sample_bernoulli(logits, temperature, False, _validation.check_seed(seed), add_noise=True, log_space=True)


def sample_bernoulli(logits, temperature, hard, seed, add_noise, log_space=False):
    """The computation behind `relaxed_bernoulli` and `RelaxedBernoulli` (arguments checked).

    `log_space=True` returns the relaxed sample's logit, `(logits + L) / temperature`.
    """
    logits, _, out_dtype = _prepare(logits)
    if add_noise:
        uniform = _backend.uniform_positive(ops.shape(logits), seed=seed, dtype=logits.dtype)
        # u < 1 in floating point, so log(1 - u) is finite too.
        logits = _backend.add(logits, ops.subtract(ops.log(uniform), ops.log1p(ops.negative(uniform))))
    scaled = ops.multiply(logits, ops.divide(1.0, ops.cast(temperature, logits.dtype)))
    if log_space:
        return ops.cast(scaled, out_dtype)
    if not hard:
        return ops.cast(ops.sigmoid(scaled), out_dtype)
    # 1[logits + L > 0] whatever the temperature (NaN stays NaN), by selects only.
    step = ops.where(ops.greater(logits, 0.0), ops.ones_like(logits), ops.zeros_like(logits))
    step = ops.where(ops.isnan(logits), logits, step)

    def grad(scaled, upstream):
        y = ops.sigmoid(scaled)
        return ops.multiply(upstream, ops.multiply(y, ops.subtract(1.0, y)))

    return ops.cast(_custom_gradient(step, grad)(scaled), out_dtype)


def _check_temperature(temperature):
    """Checks a number (Python or NumPy); tensors and variables pass unchecked (the caller keeps them positive)."""
    # On TensorFlow `is_tensor` also counts variables; elsewhere Keras variables are not tensors.
    if ops.is_tensor(temperature) or isinstance(temperature, keras.Variable):
        return temperature
    return _validation.check_temperature(temperature)


def _derived_seed(seed):
    """A second integer seed from `seed`, for a second independent stateless draw.

    In [0, 2**31): every backend's seed dtype holds it (JAX's is uint32).
    """
    return (seed * 0x9E3779B1 + 0x7F4A7C15) % 2**31


def _prepare(logits, axis=None):
    """Logits as a tensor in their compute dtype, with their dtype and the normalised axis."""
    logits = ops.convert_to_tensor(logits)
    out_dtype = keras.backend.standardize_dtype(logits.dtype)
    logits = ops.cast(logits, compute_dtype_for(out_dtype))
    if axis is None:
        _validation.rank(logits)  # a named error for an unknown rank
    else:
        axis = _validation.check_category_axis(logits, axis)
    return logits, axis, out_dtype


def _log_exponential(shape, seed, dtype):
    """log(E) for E ~ Exp(1) drawn as -log(u), u on [tiny, 1): always finite; -log(E) is Gumbel(0, 1)."""
    return ops.log(ops.negative(ops.log(_backend.uniform_positive(shape, seed=seed, dtype=dtype))))


def _perturb(logits, seed):
    """logits + g, g ~ Gumbel(0, 1), written as one subtraction."""
    return ops.subtract(logits, _log_exponential(ops.shape(logits), seed, logits.dtype))


def _softmax_jvp(probabilities, upstream, axis):
    """The softmax Jacobian `diag(p) - p p^T` applied to `upstream`: p * (dy - <dy, p>)."""
    return ops.multiply(
        probabilities, ops.subtract(upstream, ops.sum(ops.multiply(upstream, probabilities), axis=axis, keepdims=True))
    )


def compute_dtype_for(dtype):
    """The dtype the noise and softmax are computed in for logits of `dtype`.

    float16 and bfloat16 cannot hold the noise's range and the softmax's small
    probabilities well, so they are lifted to float32; float64 stays float64.
    """
    dtype = keras.backend.standardize_dtype(dtype)
    if not any(dtype.startswith(kind) for kind in ("float", "bfloat")):
        raise TypeError(
            f"Gumbel-Softmax expects floating-point logits; received logits of dtype {dtype}. "
            "Cast them with `keras.ops.cast(logits, 'float32')` (and if they are class "
            "indices, one-hot encode them or pass log-probabilities instead)."
        )
    return "float64" if dtype == "float64" else "float32"


def sample(logits, temperature, axis, hard, seed, add_noise, log_space=False):
    """The computation behind `gumbel_softmax` and the layers (arguments checked).

    Args:
        logits: Floating tensor.
        temperature: Positive scalar (float, tensor or variable).
        axis: Non-negative category axis.
        hard: One-hot forward with the relaxed gradient if `True`.
        seed: Passed to `gumbel_noise` when `add_noise` is `True`.
        add_noise: If `False`, no noise is added: the result is
            `softmax(logits / temperature)` or `one_hot(argmax(logits))`.
        log_space: Return `log_softmax` instead of `softmax` (not with `hard`).
    """
    logits, _, out_dtype = _prepare(logits)
    inverse_temperature = ops.divide(1.0, ops.cast(temperature, logits.dtype))
    if add_noise:
        logits = _perturb(logits, seed)
    scaled = ops.multiply(logits, inverse_temperature)
    if hard:
        # The choice is argmax(logits + g), whatever the temperature (which only shapes the gradient).
        result = _with_softmax_gradient(_one_hot_of_argmax(logits, axis), scaled, axis)
    elif log_space:
        result = ops.log_softmax(scaled, axis=axis)
    else:
        result = _backend.softmax(scaled, axis)
    return ops.cast(result, out_dtype)


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

    Example:

    >>> import keras, keras_gumbel
    >>> logits = keras.ops.convert_to_tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    >>> mask = keras.ops.convert_to_tensor([[True, False, True], [False, False, False]])
    >>> keras.ops.convert_to_numpy(keras_gumbel.ops.mask_logits(logits, mask)).tolist()
    [[1.0, -inf, 3.0], [0.0, 0.0, 0.0]]
    """
    logits = ops.convert_to_tensor(logits)
    compute_dtype_for(logits.dtype)  # a TypeError for integer logits (-inf has no integer value)
    mask = ops.cast(mask, "bool")
    any_valid = ops.any(mask, axis=axis, keepdims=True)
    masked = ops.where(mask, logits, ops.full_like(logits, -math.inf))
    return ops.where(any_valid, masked, ops.zeros_like(logits))


def _one_hot_of_argmax(perturbed, axis):
    """The exact one-hot of `argmax(perturbed)` along `axis`; a NaN row where there is no valid choice.

    A row has no valid choice when its maximum is not finite: all `-inf`
    (everything masked), or holding NaN or `+inf`. Built from selects only
    (`one_hot`, `where`): no arithmetic touches the 0s and 1s, so no graph
    rewrite can move them (TensorFlow's optimiser once turned
    `one_hot * (max - max + 1)` into sums that rounded to 0.99999994, 0 and 2).
    """
    num_classes = perturbed.shape[axis]
    if num_classes is None:
        num_classes = ops.shape(perturbed)[axis]
    one_hot = ops.one_hot(_backend.argmax(perturbed, axis), num_classes, axis=axis, dtype=perturbed.dtype)
    row_max = _backend.max(perturbed, axis=axis, keepdims=True)
    return ops.where(ops.isfinite(row_max), one_hot, math.nan)


def _with_softmax_gradient(value, scaled, axis):
    """`value` forward, exactly; the gradient of `softmax(scaled)` backward.

    The softmax is only computed when a gradient is asked for.
    """

    def grad(scaled, upstream):
        return _softmax_jvp(_backend.softmax(scaled, axis), upstream, axis)

    return _custom_gradient(value, grad)(scaled)


def _with_gradient_of(value, surrogate):
    """`value` forward, exactly; the gradient of `surrogate` backward.

    Not `value + surrogate - stop_gradient(surrogate)`: graph optimisers drop
    `stop_gradient` in the forward pass and reorder the sum, which rounds
    (an exact 1 came out as 0.99999994).
    """
    return _custom_gradient(value, lambda surrogate, upstream: upstream)(surrogate)


def _custom_gradient(value, backward):
    """A function of `x` whose value is `value` and whose vector-Jacobian product is `backward(x, upstream)`.

    `value` is a constant of the function (on JAX its own gradient is stopped:
    there a custom gradient must not close over a traced value). Keras passes the
    upstream gradient positionally on TensorFlow and JAX and as the keyword
    `upstream` on PyTorch.
    """
    if _backend.backend() == "jax":
        value = ops.stop_gradient(value)  # (elsewhere the value is no function of `x` to differentiate)

    @ops.custom_gradient
    def function(x):
        def grad(*args, upstream=None):
            return backward(x, args[0] if upstream is None else upstream)

        return value, grad

    return function
