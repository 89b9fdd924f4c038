"""VIMCO: the multi-sample bound with per-sample leave-one-out baselines (Mnih & Rezende, 2016).

For S samples z_1..z_S ~ q_theta(z | x) of each input and their log-weights
l_s (in variational inference `l_s = log p(x, z_s) - log q(z_s | x)`), the
multi-sample objective is

    L = log((1/S) * sum_s exp(l_s))

(the importance-weighted bound on log p(x) when l_s are log-weights). Its
score-function gradient is made usable by a baseline for each sample that
does not depend on it: L with l_s swapped for the geometric mean of the
others,

    L_{-s} = log((1/S) * (sum_{j != s} exp(l_j) + exp(m_{-s}))),
    m_{-s} = (1/(S-1)) * sum_{j != s} l_j,

and the estimate of grad E[L] is

    sum_s (L - L_{-s}) * grad log q_theta(z_s) + sum_s w_s * grad l_s,
    w_s = exp(l_s) / sum_j exp(l_j),

whose second sum is the gradient through log-weights that depend on theta
(the decoder's log p(x, z_s), and -log q_theta(z_s | x)). It is unbiased for
`grad E[L]` for every S >= 2; S = 1 has no other sample to build a baseline
from. `vimco_loss` is the pure function (any backend), `VIMCO` the estimator
for `make_train_step` and `ReinforceModel`.

It is TFP's `tfp.vi.csiszar_vimco` with the Csiszar function `kl_reverse`
(`f(log u) = -log u`), averaged over the batch; tests check the two agree on
the same samples, in value and gradient.

Reference:
    - [Mnih & Rezende, 2016. Variational Inference for Monte Carlo Objectives](https://arxiv.org/abs/1602.06725)
"""

from keras import ops

from keras_gumbel import _deprecation
from keras_gumbel import _validation
from keras_gumbel.estimators.estimator import Estimator
from keras_gumbel.estimators.registry import register

__all__ = ["VIMCO", "vimco_loss", "vimco_terms"]


def _num_samples(log_weights):
    """The static S of [S, ...] log-weights, checked to be at least 2 (`None` when only known at run time)."""
    shape = log_weights.shape
    if len(shape) < 1:
        raise ValueError(
            _validation.invalid(
                "log_weights", "a tensor [S, ...] with the S samples of each input first", f"<a scalar {log_weights}>"
            )
        )
    size = shape[0]
    if isinstance(size, int) and size < 2:
        raise ValueError(
            f"Invalid value received for argument `log_weights`. Expected at least 2 samples per input along "
            f"axis 0 (VIMCO's baseline for each sample is built from the others). Received: "
            f"log_weights.shape={tuple(shape)}"
        )
    return size


def vimco_terms(log_prob, log_weights):
    """VIMCO's per-input terms: `-L` for each input, with VIMCO's gradient (their mean is `vimco_loss`).

    The S samples of one input make one estimate (each sample's baseline is
    built from the others), so the terms are per input, not per sample: the
    variance of the estimator is the variance of their gradients.

    Args:
        log_prob: `log q_theta(z_s)` of S samples of each input, [S, ...]
            (S >= 2), differentiable in theta.
        log_weights: The log-weights `l_s` of the same samples, [S, ...] like
            `log_prob`, e.g. `log p(x, z_s) - log q(z_s | x)`; gradients
            through them are kept.

    Returns:
        A tensor [...] (the shape of one sample's): `-L` per input.

    Raises:
        ValueError: If there are fewer than 2 samples, or the shapes differ
            (static shapes only).
    """
    log_weights = ops.convert_to_tensor(log_weights)
    log_prob = ops.convert_to_tensor(log_prob)
    num_samples = _num_samples(log_weights)
    _validation.check_same_shape("log_prob", log_prob, "log_weights", log_weights)
    log_weights = ops.cast(log_weights, log_prob.dtype)
    if num_samples is None:
        num_samples = ops.shape(log_weights)[0]
    count = ops.cast(num_samples, log_weights.dtype)
    log_count = ops.log(count)
    bound = ops.subtract(ops.logsumexp(log_weights, axis=0), log_count)  # L, [...]
    # The baselines carry no gradient: they only scale the score function.
    fixed = ops.stop_gradient(log_weights)
    # m_{-s}: the mean of the other samples' log-weights, [S, ...].
    others_mean = ops.divide(ops.subtract(ops.sum(fixed, axis=0, keepdims=True), fixed), ops.subtract(count, 1.0))
    # Row s of [S, S, ...]: the log-weights with the s-th swapped for m_{-s}. S^2 terms, each a plain log-weight:
    # a log-sum-exp over them stays accurate where subtracting exp(l_s) from the total would cancel.
    swap = ops.reshape(ops.eye(num_samples, dtype="bool"), (num_samples, num_samples) + (1,) * (len(fixed.shape) - 1))
    swapped = ops.where(swap, ops.expand_dims(others_mean, 1), ops.expand_dims(fixed, 0))
    leave_one_out = ops.subtract(ops.logsumexp(swapped, axis=1), log_count)  # L_{-s}, [S, ...]
    advantage = ops.stop_gradient(ops.subtract(ops.stop_gradient(bound), leave_one_out))
    score = ops.sum(ops.multiply(advantage, log_prob), axis=0)
    # Adds the score term's gradient without changing the value (x - stop_gradient(x) is exactly 0).
    surrogate = ops.add(bound, ops.subtract(score, ops.stop_gradient(score)))
    return ops.negative(surrogate)


@_deprecation.reordered_arguments("0.3.0", ("log_weights", "log_prob"))
def vimco_loss(log_prob, log_weights):
    """The negative multi-sample bound, with VIMCO's gradient: minimise it to maximise `E[L]`.

    Its value is `-mean(L)` over the inputs, `L = log(mean_s exp(l_s))`; its
    gradient is VIMCO's estimate of `-grad E[L]` (see the module docstring):
    the score-function term with the leave-one-out baselines `L_{-s}`
    (through `log_prob`) plus the gradient through `log_weights` themselves,
    weighted by the normalised weights. Pass log-weights without gradient
    (`stop_gradient`) when only the score-function term is wanted (a
    non-differentiable reward used as a log-weight). It is the mean of
    `vimco_terms`.

    Before 0.3.0 its arguments were `(log_weights, log_prob)`, unlike every
    other loss: a call passing both by position is still read in that old
    order, with a `FutureWarning`, until the next minor version. Pass them by
    keyword meanwhile.

    Args:
        log_prob: As `vimco_terms`: `log q_theta(z_s)`, [S, ...], S >= 2.
        log_weights: As `vimco_terms`: the log-weights `l_s`, [S, ...].

    Returns:
        A scalar: the mean over the inputs of `-L`. Raises what `vimco_terms`
        raises.

    Examples:
        >>> import keras, keras_gumbel
        >>> log_weights = keras.ops.log([[1.0], [3.0]])  # S = 2, one input
        >>> loss = keras_gumbel.estimators.vimco_loss(
        ...     log_prob=keras.ops.zeros((2, 1)), log_weights=log_weights
        ... )
        >>> round(float(loss), 4)  # -log((1 + 3) / 2)
        -0.6931
    """
    return ops.mean(vimco_terms(log_prob=log_prob, log_weights=log_weights))


@register("vimco")
class VIMCO(Estimator):
    """VIMCO (Mnih & Rezende, 2016): maximises the multi-sample bound `E[log mean_s exp(l_s)]`.

    The training helpers draw `num_samples` (S >= 2) actions per input, and
    the log-weight of each is its reward, or, with `subtract_log_prob=True`,
    its reward minus `log p_theta(action)` (`reward_fn` returns `log p(x, z)`,
    and the estimator subtracts the differentiable `log q(z | x)`, so the
    policy also gets the gradient through the log-weights, as TFP's
    `csiszar_vimco` does). The loss is `vimco_loss(log_prob, log_weights)`:
    the negative bound, with VIMCO's leave-one-out baselines.

    Rewards without gradient (the helpers' `reward_fn`) make the objective
    `E[log mean_s exp(R_s)]`: with S samples it favours the best of S, a
    risk-seeking version of `E[R]` that tends to `E[R]` as R shrinks.

    Args:
        subtract_log_prob: Whether the log-weights are `reward - log_prob`
            (`True`) or the rewards themselves (`False`).

    Examples:
        >>> import keras_gumbel
        >>> estimator = keras_gumbel.estimators.VIMCO(subtract_log_prob=True)
        >>> estimator.check_num_samples(4)

    Reference:
        - [Mnih & Rezende, 2016](https://arxiv.org/abs/1602.06725)
    """

    metric_names = ()
    objective = "multi_sample_bound"

    def __init__(self, subtract_log_prob=False):
        self.subtract_log_prob = _validation.check_bool("subtract_log_prob", subtract_log_prob)

    def get_config(self):
        return {"subtract_log_prob": self.subtract_log_prob}

    def check_num_samples(self, num_samples):
        if num_samples < 2:
            raise ValueError(
                _validation.invalid(
                    "num_samples", "at least 2 for VIMCO (each sample's baseline is built from the others)", num_samples
                )
            )

    def loss(self, distribution, actions, log_prob, rewards, inputs, training=None):
        log_weights = ops.subtract(rewards, log_prob) if self.subtract_log_prob else rewards
        return vimco_loss(log_prob=log_prob, log_weights=log_weights), {}
