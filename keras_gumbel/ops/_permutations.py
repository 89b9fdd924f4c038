"""The permutation ops: Sinkhorn normalisation, Gumbel-Sinkhorn samples and the maximum-weight assignment.

Private: `keras_gumbel.ops` re-exports `sinkhorn`, `gumbel_sinkhorn` and `max_weight_assignment`; import them from
there. The Numerics and Seeds that "the module docstring" names in the docstrings below are those of
`keras_gumbel.ops`.
"""

from keras import ops

from keras_gumbel import _backend
from keras_gumbel import _sampling
from keras_gumbel import _sinkhorn
from keras_gumbel import _validation


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
