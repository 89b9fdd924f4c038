"""The categorical samplers: Gumbel noise, Gumbel-Softmax (relaxed, hard, in log space), Gumbel-Rao and ReinMax.

Private: `keras_gumbel.ops` re-exports `gumbel_noise`, `gumbel_softmax`, `log_gumbel_softmax`, `gumbel_rao` and
`reinmax`; import them from there. The Numerics and Seeds that "the module docstring" names in the docstrings below
are those of `keras_gumbel.ops`.
"""

import math

import keras
from keras import ops

from keras_gumbel import _backend
from keras_gumbel import _sampling
from keras_gumbel import _validation


def gumbel_noise(shape, seed=None, dtype="float32"):
    """Draws standard Gumbel(0, 1) noise that is always finite.

    `g = -log(-log(u))` with `u` uniform on `[tiny, 1)`: `u = 0` cannot occur,
    so `g` is never infinite (in float32 it lies in about [-4.5, 15.9]: 23 random bits give u <= 1 - 2**-23).

    Args:
        shape: Shape of the sample.
        seed: `None` (Keras' global generator), an integer (the same draw on
            every call, as in `keras.random`), a `keras.random.SeedGenerator`
            (a reproducible stream of different draws) or a seed tensor (a
            JAX key): see Seeds in the module docstring.
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
    return ops.negative(_sampling.log_exponential(shape, _sampling.check_seed(seed), dtype))


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
        temperature: Positive finite float from the floor `2**-104` to 3.4e38
            (checked), or a scalar tensor or variable (read as the floor
            where it is below it: see Numerics in the module docstring).
        hard: If `True`, return one-hot samples with the relaxed gradient.
        axis: The category axis.
        seed: `None`, an integer (the same draw on every call), a
            `keras.random.SeedGenerator` (a reproducible stream) or a seed
            tensor (a JAX key): see Seeds in the module docstring.

    Returns:
        A tensor with the shape and dtype of `logits`.

    Reference:
        - [Jang et al., 2017](https://arxiv.org/abs/1611.01144)
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712)
    """
    temperature = _sampling.check_temperature(temperature)
    _validation.check_bool("hard", hard)
    seed = _sampling.check_seed(seed)
    logits = ops.convert_to_tensor(logits)
    axis = _validation.check_category_axis(logits, axis)
    return _sampling.categorical(logits, temperature, axis=axis, hard=hard, seed=seed, add_noise=True)


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
        seed: `None`, an integer, a `keras.random.SeedGenerator` or a seed
            tensor (a JAX key): see Seeds in the module docstring.

    Returns:
        A tensor with the shape and dtype of `logits`; `logsumexp(z, axis) = 0`.

    Reference:
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712), appendix C.
    """
    temperature = _sampling.check_temperature(temperature)
    seed = _sampling.check_seed(seed)
    logits = ops.convert_to_tensor(logits)
    axis = _validation.check_category_axis(logits, axis)
    return _sampling.categorical(logits, temperature, axis=axis, hard=False, seed=seed, add_noise=True, log_space=True)


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
        seed: `None`, an integer, a `keras.random.SeedGenerator` or a seed
            tensor (a JAX key): see Seeds in the module docstring.

    Returns:
        An exact one-hot tensor with the shape and dtype of `logits`.

    Reference:
        - [Paulus, Maddison, Krause, 2021. Rao-Blackwellizing the Straight-Through Gumbel-Softmax
          Gradient Estimator](https://arxiv.org/abs/2010.04838)
    """
    temperature = _sampling.check_temperature(temperature)
    num_draws = _validation.check_int("num_draws", num_draws, minimum=1)
    seed = _sampling.check_seed(seed)
    # Two draws follow: an integer seed gives each its own (stateless) seed,
    # since one seed for both would correlate them.
    # A SeedGenerator gives the two draws its next two seeds.
    stateless = seed is not None and not isinstance(seed, keras.random.SeedGenerator)
    sample_seed, conditional_seed = (seed, _sampling.derived_seed(seed)) if stateless else (seed, seed)
    logits, axis, out_dtype = _sampling.prepare(logits, axis)
    inverse_temperature = _sampling.inverse_temperature(temperature, logits.dtype)
    chosen = _sampling.one_hot_of_argmax(_sampling.perturb(logits, sample_seed), axis)
    # Conditional draws, [num_draws, *shape].
    log_exponential = _sampling.log_exponential((num_draws, *ops.shape(logits)), conditional_seed, logits.dtype)
    # The category axis counted from the end: it is the same axis of logits [*shape] and of the draws.
    conditional = _sampling.gumbel_given_argmax(logits, chosen, log_exponential, axis=axis - len(logits.shape))
    # The conditional noise g = z - logits is held fixed (as the straight-through
    # estimator holds its noise): the gradient is E[straight-through gradient | D].
    # Masked (-inf) categories stay -inf: their noise is 0, not -inf - (-inf) = NaN.
    noise = ops.where(ops.equal(logits, -math.inf), 0.0, ops.subtract(conditional, logits))
    perturbed = _backend.add(logits, ops.stop_gradient(noise))
    relaxed = ops.mean(_backend.softmax(ops.multiply(perturbed, inverse_temperature), axis + 1), axis=0)
    # Exactly `chosen` forward, the averaged relaxed gradient backward.
    return ops.cast(_sampling.with_gradient_of(chosen, relaxed), out_dtype)


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
        seed: `None`, an integer, a `keras.random.SeedGenerator` or a seed
            tensor (a JAX key): see Seeds in the module docstring.

    Returns:
        An exact one-hot tensor with the shape and dtype of `logits`.

    Reference:
        - [Liu et al., 2023. Bridging Discrete and Backpropagation: Straight-Through and
          Beyond](https://arxiv.org/abs/2304.08612)
    """
    temperature = _sampling.check_temperature(temperature)
    logits, axis, out_dtype = _sampling.prepare(logits, axis)
    inverse_temperature = _sampling.inverse_temperature(temperature, logits.dtype)
    chosen = _sampling.one_hot_of_argmax(_sampling.perturb(logits, _sampling.check_seed(seed)), axis)

    def grad(logits, upstream):
        first = _backend.softmax(logits, axis)
        shifted = ops.multiply(
            0.5, _backend.add(_backend.softmax(ops.multiply(logits, inverse_temperature), axis), chosen)
        )
        # Both Jacobians have rows that sum to zero, and masked categories (p = 0) get exactly 0.
        return ops.subtract(
            ops.multiply(2.0, _sampling.softmax_jvp(shifted, upstream, axis)),
            ops.multiply(0.5, _sampling.softmax_jvp(first, upstream, axis)),
        )

    return ops.cast(_sampling.custom_gradient(chosen, grad)(logits), out_dtype)
