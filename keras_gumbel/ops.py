"""Backend-agnostic Gumbel-Softmax operations, written with `keras.ops` only.

These are the pure functions the layers are built on; use them directly
outside layers, for example inside a custom training step.

Examples:
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
- The temperature has a floor, `2**-104` (about 4.9e-32): a number below it is
  a `ValueError`, and a tensor or variable below it (0, negative) is read as
  the floor, the zero-temperature limit (never a negative temperature, which
  would turn the samples towards the least likely categories). At the floor,
  `logits / temperature` is finite for every `|logits + noise| < 2**24` (float32
  numbers that large are 2 or more apart, too coarse for the noise), so
  outputs are finite at every temperature the functions take.

Seeds, for every function here, as `keras.random` takes them:

- `None`: Keras' global generator (inside `jax.jit`, only under a
  `keras.StatelessScope`, as for `keras.random`);
- an integer: the same draw on every call (a constant inside `jax.jit` or a
  `tf.function`);
- a `keras.random.SeedGenerator`: a reproducible stream of different draws;
- a seed tensor, the functional way, also inside `jax.jit` and `tf.function`
  where it may be traced: on JAX a key (`jax.random.key(0)`, or
  `jax.random.PRNGKey(0)`), on TensorFlow two integers as
  `tf.random.stateless_*` takes them, on PyTorch two integers `[a, b]` drawn
  as the integer `(a + b) mod 2**31`. The same key gives the same draw,
  different keys independent draws; split or fold in a key per call, as with
  `jax.random`.

These checks cost nothing extra: detecting and repairing all-masked rows inside
the sampler would add two passes over the data to every call (about 7-10% of
the forward and backward time in `benchmarks/speed.py`).
"""

import math

import keras
from keras import ops

from keras_gumbel import _backend
from keras_gumbel import _sampling
from keras_gumbel import _sinkhorn
from keras_gumbel import _validation

__all__ = [
    "gumbel_noise",
    "gumbel_softmax",
    "log_gumbel_softmax",
    "gumbel_rao",
    "reinmax",
    "gumbel_top_k",
    "relaxed_top_k",
    "sinkhorn",
    "gumbel_sinkhorn",
    "max_weight_assignment",
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


def sinkhorn(log_alpha, temperature=1.0, num_iterations=20, hard=False):
    """Normalises square matrices to doubly stochastic ones (the Sinkhorn operator), in log space.

        S = sinkhorn_normalise(exp(log_alpha / temperature))

    alternates row and column normalisation `num_iterations` times, in log
    space (`x - logsumexp(x)` along the rows, then the columns), over the
    last two axes. After the last round the columns of `S` sum to 1 and the
    rows approach 1 (closer with more iterations and higher temperatures). As
    `temperature -> 0` and `num_iterations -> inf`, `S` tends to the
    permutation matrix of the maximum-weight assignment of `log_alpha` (Mena
    et al., 2018, theorem 1), which `hard=True` returns exactly, with the
    gradient of `S` (straight-through). The noisy version is
    `gumbel_sinkhorn`.

    Args:
        log_alpha: Floating tensor [..., N, N] of scores (N known when
            traced). `-inf` forbids an entry: it gets zero mass and zero
            gradient.
        temperature: Positive temperature.
        num_iterations: Positive integer: rounds of row and column
            normalisation (one loop in the graph).
        hard: Exact permutation matrix forward (see `max_weight_assignment`),
            the gradient of `S` backward.

    Returns:
        A tensor with the shape and dtype of `log_alpha`.

    Reference:
        - [Mena, Belanger, Linderman, Snoek, 2018. Learning Latent
          Permutations with Gumbel-Sinkhorn Networks](https://arxiv.org/abs/1802.08665)
    """
    temperature, num_iterations = _sinkhorn_arguments(temperature, num_iterations, hard)
    return _sinkhorn.permutation(log_alpha, temperature, num_iterations, hard, seed=None, add_noise=False)


def gumbel_sinkhorn(log_alpha, temperature=1.0, num_iterations=20, hard=False, seed=None):
    """Samples a relaxed permutation matrix (the Gumbel-Sinkhorn distribution; Mena et al., 2018).

        S = sinkhorn((log_alpha + g) / temperature),  g ~ Gumbel(0, 1) i.i.d. per entry

    (`sinkhorn` of the perturbed scores: doubly stochastic up to the
    iterations' convergence). With `hard=True` the forward value is the exact
    permutation matrix of the maximum-weight assignment of `log_alpha + g`, a
    Gumbel-Matching sample, computed in the graph by the Hungarian algorithm
    (see `max_weight_assignment`), and the gradient is that of `S`: the
    straight-through Gumbel-Sinkhorn estimator. In exact arithmetic the
    maximum-weight assignment of `log S` is that same sample at every
    temperature and iteration count (each Sinkhorn round adds a term per row
    and one per column to `log S`, which add the same total to every
    permutation). The matrices are the last two axes;
    row `i` of a hard sample has its 1 at the column assigned to `i`.

    Args:
        log_alpha: Floating tensor [..., N, N] of scores (N known when
            traced). `-inf` forbids an entry: it is never assigned, gets zero
            mass and zero gradient. A matrix with no permutation avoiding its
            `-inf` entries gives NaN with `hard=True` (and a soft matrix that
            cannot be doubly stochastic otherwise).
        temperature: Positive temperature of the relaxation.
        num_iterations: Positive integer: rounds of row and column
            normalisation (one loop in the graph).
        hard: Exact permutation matrix forward, the relaxed gradient backward.
        seed: `None`, an integer, a `keras.random.SeedGenerator` or a seed
            tensor (a JAX key): see Seeds in the module docstring.

    Returns:
        A tensor with the shape and dtype of `log_alpha`.

    Examples:
        >>> import keras, keras_gumbel
        >>> log_alpha = keras.ops.convert_to_tensor(
        ...     [[[3.0, 0.0, 0.0], [0.0, 0.0, 3.0], [0.0, 3.0, 0.0]]]
        ... )
        >>> sample = keras_gumbel.ops.gumbel_sinkhorn(
        ...     log_alpha, temperature=0.5, hard=True, seed=0
        ... )
        >>> keras.ops.convert_to_numpy(keras.ops.sum(sample, axis=-1)).tolist()
        [[1.0, 1.0, 1.0]]

    Reference:
        - [Mena, Belanger, Linderman, Snoek, 2018. Learning Latent
          Permutations with Gumbel-Sinkhorn Networks](https://arxiv.org/abs/1802.08665)
    """
    temperature, num_iterations = _sinkhorn_arguments(temperature, num_iterations, hard)
    seed = _sampling.check_seed(seed)
    return _sinkhorn.permutation(log_alpha, temperature, num_iterations, hard, seed=seed, add_noise=True)


def max_weight_assignment(weights):
    """The maximum-weight assignment (linear assignment problem) of square matrices, in the graph.

    For each matrix [N, N] on the last two axes, the permutation `sigma`
    maximising `sum_i weights[i, sigma(i)]`, as
    `scipy.optimize.linear_sum_assignment(weights, maximize=True)` gives it,
    computed by the Hungarian algorithm (O(N^3), with `keras.ops.while_loop`):
    no Python callback, so it runs in a `tf.function`, under XLA, in an
    exported SavedModel and under `jax.jit`. Two assignments whose totals
    differ by less than the rounding of the weights' dtype are a tie, and
    either may be returned. `-inf` forbids an entry; a matrix where every
    permutation meets one, or holding NaN or `+inf`, gets an arbitrary
    permutation (`gumbel_sinkhorn(..., hard=True)` returns NaN for it). Not
    differentiable (integer output).

    Args:
        weights: Floating tensor [..., N, N] (N known when traced).

    Returns:
        An int32 tensor [..., N]: row `i` is assigned column `result[..., i]`.

    Examples:
        >>> import keras, keras_gumbel
        >>> weights = keras.ops.convert_to_tensor(
        ...     [[1.0, 2.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
        ... )
        >>> assigned = keras_gumbel.ops.max_weight_assignment(weights)
        >>> keras.ops.convert_to_numpy(assigned).tolist()
        [1, 0, 2]

    Reference:
        - [Kuhn, 1955. The Hungarian method for the assignment
          problem](https://doi.org/10.1002/nav.3800020109)
    """
    weights, _ = _sinkhorn.check_square(weights, name="weights")
    return _backend.as_graph(_sinkhorn.assignment)(ops.stop_gradient(weights))


def _sinkhorn_arguments(temperature, num_iterations, hard):
    _validation.check_bool("hard", hard)
    return _sampling.check_temperature(temperature), _validation.check_int("num_iterations", num_iterations, minimum=1)


def relaxed_bernoulli(logits, temperature=1.0, hard=False, seed=None):
    """Samples the binary Concrete (Gumbel-sigmoid) relaxation of Bernoulli(sigmoid(logits)).

        y = sigmoid((logits + L) / temperature),
        L = log(u) - log(1 - u) ~ Logistic(0, 1)

    (the difference of two Gumbels: the two-category Gumbel-Softmax on the
    logits `[logits, 0]`). With `hard=True` the forward value is the exact
    Bernoulli sample `1[logits + L > 0]` and the gradient is that of `y`.

    Args:
        logits: Floating tensor of log-odds; every entry is an independent variable.
        temperature: Positive temperature.
        hard: Exact 0/1 forward, relaxed gradient backward.
        seed: `None`, an integer, a `keras.random.SeedGenerator` or a seed
            tensor (a JAX key): see Seeds in the module docstring.

    Returns:
        A tensor with the shape and dtype of `logits`.

    Reference:
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712), section 3.3.
    """
    temperature = _sampling.check_temperature(temperature)
    _validation.check_bool("hard", hard)
    logits = ops.convert_to_tensor(logits)
    return _sampling.bernoulli(logits, temperature, hard, _sampling.check_seed(seed), add_noise=True)


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
        seed: `None`, an integer, a `keras.random.SeedGenerator` or a seed
            tensor (a JAX key): see Seeds in the module docstring.

    Returns:
        A tensor with the shape and dtype of `logits`.

    Reference:
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712), section 3.3 and appendix C.
    """
    temperature = _sampling.check_temperature(temperature)
    logits = ops.convert_to_tensor(logits)
    return _sampling.bernoulli(logits, temperature, False, _sampling.check_seed(seed), add_noise=True, log_space=True)


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
