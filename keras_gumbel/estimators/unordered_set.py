"""The unordered-set estimator (Kool, van Hoof & Welling, 2020): k samples without replacement, a built-in baseline.

Draw k distinct values S = {s_1, ..., s_k} of a discrete variable without
replacement (Gumbel-top-k; for several independent variables, stochastic
beam search over their joint values). The probability of the unordered set
sums the probabilities of its k! orderings:

    p(S) = sum over orderings (t_1..t_k) of S of
           prod_i p(t_i) / (1 - p(t_1) - ... - p(t_{i-1})).

With `p^{D\\A}` the distribution renormalised over the domain without the
values in A, the leave-one-out ratio of each sample is

    R(S, s) = p^{D\\{s}}(S \\ {s}) / p(S),

and `sum_{s in S} p(s) R(S, s) f(s)` is an unbiased estimate of E[f] whose
gradient estimate, with the built-in baseline, is

    sum_{s in S} grad p(s) * R(S, s) * (f(s) - b(S, s)),
    b(S, s) = sum_{s' in S} p(s') R^{D\\{s}}(S, s') f(s'),
    R^{D\\{s}}(S, s') = p^{D\\{s, s'}}(S \\ {s, s'}) / p^{D\\{s}}(S \\ {s})  (s' != s),
    R^{D\\{s}}(S, s) = 1.

Given s, b(S, s) is itself an unbiased estimate of E[f] (p(s) f(s) plus the
unordered-set estimate of the rest from the other k - 1 samples), so it does
not bias the gradient; it needs k >= 2. Without replacement, no sample is
wasted on a repeat, which matters most for peaked distributions (with all
mass on the k samples, the estimate is exact).

`p^{D\\A}(S \\ A)` is computed here for every A of up to two samples by
summing over the orderings of the other k - 2 ((k - 2)! terms for each of the
k (k - 1) / 2 pairs, in log space, as the paper's reference code does), so k
is limited to `MAX_SAMPLES` = 8. Where the samples hold all but 1e-5 of the
probability mass (float32 cannot resolve the ratios there), every ratio is 1:
the estimate is then the exact sum over S.

`unordered_set_loss` is the pure function (any backend) given the k samples'
log-probabilities and rewards, `sample_without_replacement` draws the
samples, and `UnorderedSet` is the estimator for `make_train_step` and
`ReinforceModel`.

Reference:
    - [Kool, van Hoof & Welling, 2020. Estimating Gradients for Discrete Random Variables by Sampling without
      Replacement](https://arxiv.org/abs/2002.06043) (ICLR 2020); reference code:
      https://github.com/wouterkool/estimating-gradients-without-replacement
    - [Kool, van Hoof & Welling, 2019. Stochastic Beams and Where to Find Them](https://arxiv.org/abs/1903.06059)
"""

import itertools
import math

import numpy as np
from keras import ops

from keras_gumbel import _backend
from keras_gumbel import _deprecation
from keras_gumbel import _validation
from keras_gumbel import ops as gumbel_ops
from keras_gumbel.estimators import _discrete
from keras_gumbel.estimators.estimator import Estimator
from keras_gumbel.estimators.policy import Policy
from keras_gumbel.estimators.registry import register

__all__ = ["UnorderedSet", "sample_without_replacement", "unordered_set_loss", "unordered_set_terms"]

#: The most samples per input: the set probabilities sum over (k - 2)! orderings for each of k (k - 1) / 2 pairs.
MAX_SAMPLES = 8

# Where the k samples hold more than 1 - 1e-5 of the mass, float32 cannot resolve 1 - p(S \ s): every ratio is 1.
_EXACT_LOG_MASS = -1e-5


def _log1mexp(x):
    """log(1 - exp(x)) for x <= 0, accurate at both ends (Maechler, 2012): -inf at x = 0."""
    x = ops.minimum(x, 0.0)
    return ops.where(x > -math.log(2.0), ops.log(ops.negative(ops.expm1(x))), ops.log1p(ops.negative(ops.exp(x))))


def _plackett_luce_log_prob(log_p):
    """log of the probability of drawing the values in order, without replacement: [..., m] -> [...]."""
    total = ops.zeros_like(log_p[..., 0])
    length = log_p.shape[-1]
    for position in range(length):
        head = log_p[..., 0]
        total = ops.add(total, head)
        if position < length - 1:
            # The rest, renormalised over the domain without the value just drawn.
            log_p = ops.subtract(log_p[..., 1:], ops.expand_dims(_log1mexp(head), -1))
    return total


def _set_log_probabilities(log_p):
    """The set probabilities the estimator needs, in log space, for k samples' log-probabilities [..., k].

    Returns `(log p(S) [...], log p^{D\\s_i}(S \\ s_i) [..., k], log p^{D\\{s_i,s_j}}(S \\ {s_i,s_j}) [..., k, k])`
    (the last with `log p^{D\\s_i}(S \\ s_i)` on its diagonal).
    """
    k = log_p.shape[-1]
    pairs = list(itertools.combinations(range(k), 2))
    first = np.array([i for i, _ in pairs], "int32")
    second = np.array([j for _, j in pairs], "int32")
    log_first, log_second = ops.take(log_p, first, axis=-1), ops.take(log_p, second, axis=-1)  # [..., P]
    # log(1 - p_i - p_j) as log((1 - p_i) * (1 - p_j / (1 - p_i))), without forming 1 - p_i - p_j.
    log_norm = ops.add(_log1mexp(log_first), _log1mexp(ops.subtract(log_second, _log1mexp(log_first))))
    if k > 2:
        others = np.array([[m for m in range(k) if m not in pair] for pair in pairs], "int32")  # [P, k - 2]
        orderings = others[:, np.array(list(itertools.permutations(range(k - 2))), "int32")]  # [P, (k-2)!, k-2]
        rest = ops.take(log_p, orderings.reshape(-1), axis=-1)
        rest = ops.reshape(rest, (*ops.shape(log_p)[:-1], *orderings.shape))
        rest = ops.subtract(rest, log_norm[..., None, None])
        log_pairs = ops.logsumexp(_plackett_luce_log_prob(rest), axis=-1)  # [..., P]
    else:
        log_pairs = ops.zeros_like(log_norm)  # the empty set has probability 1
    # [..., k, k], symmetric; the diagonal is filled below.
    index = np.zeros((k, k), "int32")
    for number, (i, j) in enumerate(pairs):
        index[i, j] = index[j, i] = number
    log_p2 = ops.reshape(ops.take(log_pairs, index.reshape(-1), axis=-1), (*ops.shape(log_p)[:-1], k, k))
    diagonal = np.eye(k, dtype=bool)
    # p^{D\s_i}(S \ s_i) = sum_{j != i} p^{D\s_i}(s_j) p^{D\{s_i,s_j}}(S \ {s_i,s_j}).
    terms = ops.add(ops.subtract(ops.expand_dims(log_p, -2), ops.expand_dims(_log1mexp(log_p), -1)), log_p2)
    log_p1 = ops.logsumexp(ops.where(diagonal, -np.inf, terms), axis=-1)  # [..., k]
    log_set = ops.logsumexp(ops.add(log_p, log_p1), axis=-1)  # p(S) = sum_i p(s_i) p^{D\s_i}(S \ s_i)
    log_p2 = ops.where(diagonal, ops.expand_dims(log_p1, -1), log_p2)
    return log_set, log_p1, log_p2


def _ratios(log_p):
    """log R(S, s_i) [..., k] and log R^{D\\s_i}(S, s_j) [..., k, k] (0 on the diagonal) for log-probs [..., k]."""
    log_set, log_p1, log_p2 = _set_log_probabilities(log_p)
    log_r1 = ops.subtract(log_p1, ops.expand_dims(log_set, -1))
    log_r2 = ops.subtract(log_p2, ops.expand_dims(log_p1, -1))
    exact = ops.logsumexp(log_p, axis=-1) > _EXACT_LOG_MASS  # [...]
    log_r1 = ops.where(ops.expand_dims(exact, -1), 0.0, log_r1)
    log_r2 = ops.where(exact[..., None, None], 0.0, log_r2)
    return log_r1, log_r2


def _check_num_samples(num_samples, name):
    if isinstance(num_samples, int) and not 2 <= num_samples <= MAX_SAMPLES:
        raise ValueError(
            _validation.invalid(
                name,
                f"between 2 and {MAX_SAMPLES} samples per input for the unordered-set estimator (its baseline "
                "needs 2; the set probabilities sum over (k - 2)! orderings)",
                num_samples,
            )
        )


def unordered_set_terms(log_prob, rewards):
    """Per-input terms: minus the estimate of `E[R]` for each input, whose gradient is its unordered-set estimate.

    The k distinct samples of an input make one estimate, so the terms are
    per input (their mean is `unordered_set_loss`).

    The k samples of each input must be distinct values drawn without
    replacement (`sample_without_replacement`, or `ops.gumbel_top_k` for
    one categorical variable). Each term is minus `sum_i p(s_i) R(S, s_i) R_i`
    for its input; its gradient is the unordered-set
    estimator with the built-in baseline (see the module docstring), plus
    the gradient through `rewards` weighted by `p(s_i) R(S, s_i)` where the
    reward has one.

    Args:
        log_prob: `log p_theta(s_i)` of the k distinct samples of each input,
            [k, ...] (2 <= k <= `MAX_SAMPLES`), differentiable in theta. For
            several independent variables, the log-probability of the joint
            value (summed over the variables).
        rewards: Their rewards, [k, ...] like `log_prob`; gradients through it
            are kept.

    Returns:
        A tensor [...]: one term per input.

    Raises:
        ValueError: If k is outside [2, `MAX_SAMPLES`] or the shapes differ
            (static shapes only).

    Examples:
        >>> import keras, keras_gumbel
        >>> log_prob = keras.ops.log([[0.5], [0.3]])  # k = 2, one input
        >>> rewards = keras.ops.convert_to_tensor([[1.0], [2.0]])
        >>> terms = keras_gumbel.estimators.unordered_set_terms(log_prob, rewards)
        >>> [round(float(t), 4) for t in terms]
        [-1.4167]
    """
    log_prob = ops.convert_to_tensor(log_prob)
    rewards = ops.cast(ops.convert_to_tensor(rewards), log_prob.dtype)
    if len(log_prob.shape) < 1 or not isinstance(log_prob.shape[0], int):
        raise ValueError(
            _validation.invalid(
                "log_prob", "a tensor [k, ...] whose first axis (the k samples) is known when traced", log_prob.shape
            )
        )
    _check_num_samples(log_prob.shape[0], "log_prob.shape[0]")
    _validation.check_same_shape("rewards", rewards, "log_prob", log_prob)
    fixed_log_prob = ops.stop_gradient(log_prob)  # the ratios and the baseline are constants of the estimator
    log_r1, log_r2 = _ratios(ops.moveaxis(fixed_log_prob, 0, -1))  # [..., k], [..., k, k]
    log_r1 = ops.moveaxis(log_r1, -1, 0)  # [k, ...]
    fixed_reward = ops.stop_gradient(rewards)
    # b(S, s_i) = sum_j p(s_j) R^{D\s_i}(S, s_j) f(s_j), [..., k] -> [k, ...].
    rewards_last = ops.moveaxis(fixed_reward, 0, -1)
    baseline_weights = ops.exp(_backend.add(ops.expand_dims(ops.moveaxis(fixed_log_prob, 0, -1), -2), log_r2))
    baseline = ops.moveaxis(ops.sum(ops.multiply(baseline_weights, ops.expand_dims(rewards_last, -2)), -1), -1, 0)
    estimate = ops.sum(ops.multiply(ops.exp(ops.add(fixed_log_prob, log_r1)), rewards), axis=0)  # [...]
    # grad p(s_i) R(S, s_i) (f(s_i) - b(S, s_i)): exp(log_prob) carries grad p(s_i) = p(s_i) grad log p(s_i).
    advantage = ops.stop_gradient(ops.subtract(fixed_reward, baseline))
    score = ops.sum(ops.multiply(ops.multiply(ops.exp(log_r1), ops.exp(log_prob)), advantage), axis=0)
    # The score term's gradient without its value (x - stop_gradient(x) is exactly 0).
    surrogate = ops.add(estimate, ops.subtract(score, ops.stop_gradient(score)))
    return ops.negative(surrogate)


@_deprecation.renamed_arguments("0.3.0", reward="rewards")
def unordered_set_loss(log_prob, rewards):
    """A scalar: minus the mean estimate of `E[R]`, whose gradient is the unordered-set estimate of `-grad E[R]`.

    The mean over the inputs of `unordered_set_terms(log_prob, rewards)`; see
    it for the arguments (`rewards` was `reward` before 0.3.0: that keyword
    still works, with a `FutureWarning`).

    Examples:
        >>> import keras, keras_gumbel
        >>> log_prob = keras.ops.log([[0.5], [0.5]])  # both values of a fair coin
        >>> rewards = keras.ops.convert_to_tensor([[1.0], [2.0]])
        >>> loss = keras_gumbel.estimators.unordered_set_loss(log_prob, rewards)
        >>> float(loss)  # -E[R], exactly: the set is the whole support
        -1.5
    """
    return ops.mean(unordered_set_terms(log_prob, rewards))


def _truncated_gumbel(perturbed, maximum, target):
    """Gumbels `perturbed` with max `maximum`, shifted to have max `target`: -log(e^-target - e^-max + e^-perturbed).

    Written as `target - softplus(u)`, `u = target - perturbed + log(1 - exp(perturbed - maximum))`: exact at the
    maximum (u = -inf gives `target`), with no cancellation elsewhere.
    """
    u = ops.add(ops.subtract(target, perturbed), _log1mexp(ops.subtract(perturbed, maximum)))
    return ops.subtract(target, ops.softplus(u))


def sample_without_replacement(logits, k, seed=None):
    """Draws k distinct joint values of N independent categorical variables, without replacement.

    The result is distributed as k draws, one after another, from the joint
    distribution `prod_n softmax(logits[:, n])`, each renormalised over the
    joint values not drawn yet. For N = 1 it is `ops.gumbel_top_k`; for
    N > 1, stochastic beam search (Kool et al., 2019): a beam of k partial
    values, extended one variable at a time, each child perturbed by a Gumbel
    conditioned on its parent's perturbed value being the children's maximum,
    so that the k final values are the top k of the perturbed joint
    log-probabilities, without listing the K^N joint values.

    Args:
        logits: [B, N, K]: B inputs, each with N independent categorical
            variables of K classes. No gradient flows through the draw.
        k: The number of samples, 1 <= k <= K^N.
        seed: `None`, an integer, a `keras.random.SeedGenerator` or a seed
            tensor (see the Seeds section of `keras_gumbel.ops`).

    Returns:
        An int32 tensor [k, B, N]: the class of each variable in each sample,
        the first drawn first.

    Raises:
        ValueError: If `logits` is not [B, N, K] with N and K known, or k is
            out of range.

    Examples:
        >>> import keras, keras_gumbel
        >>> logits = keras.ops.zeros((5, 3, 4))  # 5 inputs, 3 variables of 4
        >>> samples = keras_gumbel.estimators.sample_without_replacement(
        ...     logits, k=6, seed=0
        ... )
        >>> tuple(samples.shape)
        (6, 5, 3)
    """
    logits = ops.stop_gradient(ops.convert_to_tensor(logits))
    if len(logits.shape) != 3 or not all(isinstance(size, int) for size in logits.shape[1:]):
        raise ValueError(
            _validation.invalid(
                "logits", "a tensor [B, N, K] with N and K known when traced", f"<a tensor of shape {logits.shape}>"
            )
        )
    num_variables, num_classes = logits.shape[1:]
    k = _validation.check_int("k", k, minimum=1)
    if k > num_classes**num_variables:
        raise ValueError(
            _validation.invalid("k", f"at most {num_classes}^{num_variables} = {num_classes**num_variables}", k)
        )
    if num_variables == 1:
        indices = gumbel_ops.gumbel_top_k(logits[:, 0, :], k, seed=seed)  # [B, k]
        return ops.expand_dims(ops.transpose(indices), -1)
    log_p = ops.log_softmax(_discrete.compute_logits(logits), axis=-1)  # [B, N, K]
    compute_dtype = log_p.dtype
    batch_size = ops.shape(logits)[0]
    noise = gumbel_ops.gumbel_noise((batch_size, num_variables, k, num_classes), seed=seed, dtype=compute_dtype)
    # The first variable: the top min(k, K) of its perturbed log-probabilities, padded to a beam of k.
    width = min(k, num_classes)
    perturbed, first = ops.top_k(ops.add(log_p[:, 0, :], noise[:, 0, 0, :]), width)  # [B, width]
    beam_log_p = ops.take_along_axis(log_p[:, 0, :], first, axis=-1)
    prefix = ops.expand_dims(ops.cast(first, "int32"), -1)  # [B, width, 1]
    if width < k:
        padding = ((0, 0), (0, k - width))
        perturbed = ops.pad(perturbed, padding, constant_values=-np.inf)
        beam_log_p = ops.pad(beam_log_p, padding, constant_values=-np.inf)
        prefix = ops.pad(prefix, (*padding, (0, 0)))
    for variable in range(1, num_variables):
        valid = ops.expand_dims(perturbed > -np.inf, -1)  # [B, k, 1]: padding has no children
        # _backend.add: keras.ops.add on TensorFlow takes a second operand [1, 1, K] (a batch of one) for a bias.
        children_log_p = _backend.add(ops.expand_dims(beam_log_p, -1), log_p[:, None, variable, :])  # [B, k, K]
        children = _backend.add(children_log_p, noise[:, variable])
        shifted = _truncated_gumbel(children, ops.max(children, axis=-1, keepdims=True), ops.expand_dims(perturbed, -1))
        shifted = ops.where(valid, shifted, -np.inf)
        perturbed, chosen = ops.top_k(ops.reshape(shifted, (-1, k * num_classes)), k)  # [B, k]
        beam_log_p = ops.take_along_axis(ops.reshape(children_log_p, (-1, k * num_classes)), chosen, axis=-1)
        parent, category = chosen // num_classes, chosen % num_classes
        prefix = ops.take_along_axis(prefix, ops.expand_dims(parent, -1), axis=1)
        prefix = ops.concatenate([prefix, ops.expand_dims(ops.cast(category, "int32"), -1)], axis=-1)
    return ops.transpose(prefix, (1, 0, 2))  # [k, B, N]


def _policy_layout(distribution):
    """(logits [B, N, K], how to turn class indices [k, B, N] into the distribution's actions)."""
    policy = Policy.of(distribution)
    logits, _, _ = policy.require("The unordered-set estimator", kinds=("categorical", "index"))
    num_variables, num_classes = policy.static_sizes("the unordered-set estimator")
    flat_logits = ops.reshape(logits, (-1, num_variables, num_classes))

    def to_actions(indices):  # [k, B, N] -> [k, B, *variables(, K)]
        return policy.actions_from_indices(ops.reshape(indices, (indices.shape[0], -1, *policy.variable_shape)))

    return flat_logits, to_actions


@register("unordered_set")
class UnorderedSet(Estimator):
    """The unordered-set estimator (Kool et al., 2020): `num_samples` distinct actions per input, built-in baseline.

    Each step draws k = `num_samples` (2 <= k <= `MAX_SAMPLES`) distinct
    values of the policy's variables without replacement (one categorical
    variable, `OneHotCategorical(logits)`, or several independent ones,
    `Independent(OneHotCategorical(logits [B, N, K]))`, sampled jointly by
    stochastic beam search; integer `Categorical` actions too), evaluates
    them in one `reward_fn` call, and minimises
    `unordered_set_loss(log_prob, rewards)`. The logged `reward` is the
    unbiased estimate `sum_i p(s_i) R(S, s_i) R_i`, not the plain mean of the
    k rewards (which over-weights unlikely values, drawn more often without
    replacement).

    Examples:
        >>> import keras_gumbel
        >>> estimator = keras_gumbel.estimators.UnorderedSet()
        >>> estimator.check_num_samples(4)

    Reference:
        - [Kool, van Hoof & Welling, 2020](https://arxiv.org/abs/2002.06043)
    """

    metric_names = ("reward",)
    variables = ("categorical",)

    def check_num_samples(self, num_samples):
        _check_num_samples(num_samples, "num_samples")

    def estimate(self, distribution, evaluate, log_prob, num_samples, seed, inputs, training=None):
        logits, to_actions = _policy_layout(distribution)
        actions = ops.stop_gradient(to_actions(sample_without_replacement(logits, num_samples, seed=seed)))
        action_log_prob = log_prob(actions)  # [k, B]
        rewards = evaluate(actions)
        loss = unordered_set_loss(action_log_prob, rewards)
        return loss, {"reward": ops.stop_gradient(ops.negative(loss))}, rewards
