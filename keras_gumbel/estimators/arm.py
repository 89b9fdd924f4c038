"""ARM and DisARM (binary variables) and ARSM (categorical): unbiased estimators from coupled samples.

None of them needs a gradient of the reward or a relaxation: they evaluate the
reward at a few samples drawn from *shared* noise and combine the values.

For binary variables `b ~ Bernoulli(sigmoid(logits))`, one uniform `u` per
variable gives an antithetic pair

    b = 1[u < sigmoid(logits)],    b~ = 1[1 - u < sigmoid(logits)]

(each is a sample of the policy; together they are negatively correlated).
With `f = R(b)` and `f~ = R(b~)`, per variable:

    ARM (Yin & Zhou, 2019):
        g = (f~ - f) * (u - 1/2)
    DisARM (Dong, Mnih & Tucker, 2020):
        g = 1/2 * (f - f~) * (-1)^b~ * 1[b != b~] * sigmoid(|logits|)

are unbiased estimates of `grad_logits E[R(b)]`. DisARM is ARM with the
augmenting uniform integrated out given the pair (b, b~), so its variance is
never above ARM's; where a variable's two samples agree its gradient is 0.
Both cost two evaluations of R per pair; `ARM` and `DisARM` average
`num_samples / 2` pairs (`num_samples` counts evaluations).

For a categorical variable `z ~ Categorical(softmax(logits))` with C
categories, ARSM (Yin, Yue & Zhou, 2019) draws `pi ~ Dirichlet(1_C)`, writes
the sample as `z = argmax(logits - log(pi))` and, for each pair of categories
(m, j), the sample `z^(m<->j)` with `pi_m` and `pi_j` swapped. With
`F[m, j] = R(z^(m<->j))` (`F[j, j] = R(z)`) and `Fbar[j] = mean_m F[m, j]`:

    ARSM:    g_c = sum_j (F[c, j] - Fbar[j]) * (1/C - pi_j)

an unbiased estimate of `grad_logits_c E[R(z)]`, at `C (C - 1) / 2 + 1`
evaluations of R per Dirichlet draw. Several categorical variables of one
input (logits [B, V, C]) share the swaps: `F` is the reward of all of them
swapped at once, as the paper's multivariate ARSM does. With C = 2 it is a
form of ARM. (Dong et al. 2021 report that on categorical VAEs ARSM does no
better than REINFORCE with a leave-one-out baseline at the same number of
evaluations; it is here for its unbiasedness without any baseline.)

The pure functions (`antithetic_bernoulli`, `arm_gradient`,
`disarm_gradient`, `arm_loss`, `disarm_loss`, `arsm_actions`,
`arsm_gradient`, `arsm_loss`) run on every backend; `ARM`, `DisARM` and
`ARSM` are the `Estimator`s of the training helpers (TensorFlow).

References:
    - [Yin & Zhou, 2019. ARM: Augment-REINFORCE-Merge Gradient for Stochastic
      Binary Networks](https://arxiv.org/abs/1807.11143)
    - [Dong, Mnih & Tucker, 2020. DisARM: An Antithetic Gradient Estimator
      for Binary Latent Variables](https://arxiv.org/abs/2006.10680)
    - [Yin, Yue & Zhou, 2019. ARSM: Augment-REINFORCE-Swap-Merge Estimator for
      Gradient Backpropagation Through Categorical
      Variables](https://arxiv.org/abs/1905.01413)
    - [Dong, Mnih & Tucker, 2021. Coupled Gradient Estimators for Discrete
      Latent Variables](https://arxiv.org/abs/2106.08056)
"""

import itertools

import numpy as np
from keras import ops

from keras_gumbel import _deprecation
from keras_gumbel import _sampling
from keras_gumbel import _validation
from keras_gumbel.estimators import _discrete
from keras_gumbel.estimators.estimator import Estimator
from keras_gumbel.estimators.policy import Policy
from keras_gumbel.estimators.registry import register

__all__ = [
    "ARM",
    "ARSM",
    "DisARM",
    "antithetic_bernoulli",
    "arm_gradient",
    "arm_loss",
    "arsm_actions",
    "arsm_gradient",
    "arsm_loss",
    "disarm_gradient",
    "disarm_loss",
]


def _as_float(logits, noise):
    logits = _discrete.as_float(logits)
    noise = ops.cast(ops.convert_to_tensor(noise), logits.dtype)
    return logits, noise


def antithetic_bernoulli(logits, uniform):
    """The antithetic pair of Bernoulli samples that ARM and DisARM evaluate.

        b  = 1[u < sigmoid(logits)]
        b~ = 1[1 - u < sigmoid(logits)]

    Each is a sample of `Bernoulli(sigmoid(logits))`; they share `u`. The
    comparisons are made on the logit scale (`log(u) - log(1 - u) < logits`),
    exact where `sigmoid(logits)` rounds to 0 or 1.

    Args:
        logits: Logits of independent Bernoulli variables.
        uniform: Uniforms on (0, 1) whose shape ends with that of `logits`
            (e.g. [num_pairs, *logits.shape]).

    Returns:
        `(b, b_antithetic)`: two tensors of 0s and 1s of the shape of
        `uniform`, in the dtype of `logits`.

    Examples:
        >>> import keras, keras_gumbel
        >>> b, b_tilde = keras_gumbel.estimators.antithetic_bernoulli(
        ...     [0.0, 0.0], [0.2, 0.7]
        ... )
        >>> keras.ops.convert_to_numpy(b).tolist()
        [1.0, 0.0]
        >>> keras.ops.convert_to_numpy(b_tilde).tolist()
        [0.0, 1.0]
    """
    logits, uniform = _as_float(logits, uniform)
    _discrete.check_noise("uniform", uniform, logits)
    logistic = _sampling.logistic_from_uniform(uniform)
    one, zero = ops.ones_like(logistic), ops.zeros_like(logistic)
    sample = ops.where(ops.less(logistic, logits), one, zero)
    antithetic = ops.where(ops.less(ops.negative(logistic), logits), one, zero)
    return sample, antithetic


def _pair_rewards(uniform, rewards, antithetic_rewards):
    rewards = ops.cast(_discrete.per_sample("rewards", rewards, uniform), uniform.dtype)
    antithetic_rewards = ops.cast(
        _discrete.per_sample("antithetic_rewards", antithetic_rewards, uniform), uniform.dtype
    )
    return rewards, antithetic_rewards


@_deprecation.renamed_arguments("0.3.0", reward="rewards", antithetic_reward="antithetic_rewards")
def arm_gradient(uniform, rewards, antithetic_rewards):
    """Per-sample ARM estimates of `grad_logits E[R(b)]` (Yin & Zhou, 2019).

        g = (R(b~) - R(b)) * (u - 1/2)

    for the pair `(b, b~) = antithetic_bernoulli(logits, u)`.

    Args:
        uniform: The uniforms the pair was drawn from, [*samples, *logits.shape].
        rewards: `R(b)`, one value per sample: a shape that is the leading part
            of `uniform`'s (e.g. [num_pairs, B] for uniform [num_pairs, B, D]).
        antithetic_rewards: `R(b~)`, of the same shape.

    Returns:
        A tensor of the shape of `uniform`: one estimate per pair (average
        them over the pairs).

    Raises:
        ValueError: If the rewards' static shape does not lead `uniform`'s.
    """
    uniform = _discrete.as_float(uniform)
    rewards, antithetic_rewards = _pair_rewards(uniform, rewards, antithetic_rewards)
    return ops.multiply(ops.subtract(antithetic_rewards, rewards), ops.subtract(uniform, 0.5))


@_deprecation.renamed_arguments("0.3.0", reward="rewards", antithetic_reward="antithetic_rewards")
def disarm_gradient(logits, uniform, rewards, antithetic_rewards):
    """Per-sample DisARM estimates of `grad_logits E[R(b)]` (Dong, Mnih & Tucker, 2020).

        g = 1/2 * (R(b) - R(b~)) * (-1)^b~ * 1[b != b~] * sigmoid(|logits|)

    for the pair `(b, b~) = antithetic_bernoulli(logits, u)`: ARM with the
    uniform integrated out given the pair, so of no more variance than ARM,
    and 0 for a variable whose two samples agree.

    Args:
        logits: Logits of the Bernoulli variables.
        uniform: The uniforms the pair was drawn from, [*samples, *logits.shape].
        rewards: `R(b)`, one value per sample: a shape that is the leading part
            of `uniform`'s (e.g. [num_pairs, B] for uniform [num_pairs, B, D]).
        antithetic_rewards: `R(b~)`, of the same shape.

    Returns:
        A tensor of the shape of `uniform`: one estimate per pair.

    Raises:
        ValueError: If the shapes do not fit.
    """
    logits, uniform = _as_float(logits, uniform)
    sample, antithetic = antithetic_bernoulli(logits, uniform)
    rewards, antithetic_rewards = _pair_rewards(uniform, rewards, antithetic_rewards)
    # (-1)^b~ where the pair differs, 0 where it agrees: selects only.
    sign = ops.where(ops.greater(antithetic, 0.5), -ops.ones_like(sample), ops.ones_like(sample))
    sign = ops.where(ops.equal(sample, antithetic), ops.zeros_like(sample), sign)
    weight = ops.multiply(sign, ops.sigmoid(ops.abs(logits)))
    return ops.multiply(ops.multiply(0.5, ops.subtract(rewards, antithetic_rewards)), weight)


def _rewards_rank(rewards):
    return len(ops.convert_to_tensor(rewards).shape)


@_deprecation.renamed_arguments("0.3.0", reward="rewards", antithetic_reward="antithetic_rewards")
def arm_loss(logits, uniform, rewards, antithetic_rewards):
    """A scalar whose gradient with respect to `logits` is minus the mean ARM estimate.

    Minimising it maximises `E[R(b)]`: it is
    `-sum(stop_gradient(arm_gradient(...)) * logits)`, summed over an input's
    variables and averaged over the pairs and inputs.

    Args:
        logits: Logits of the Bernoulli variables, differentiable.
        uniform: The uniforms of the pairs, [*samples, *logits.shape].
        rewards: `R(b)` for `(b, b~) = antithetic_bernoulli(logits, uniform)`.
        antithetic_rewards: `R(b~)`.

    Returns:
        A scalar tensor.

    Examples:
        >>> import keras, keras_gumbel
        >>> logits = keras.ops.zeros((8, 3))  # 8 inputs, 3 binary variables
        >>> u = keras.random.uniform((2, 8, 3), seed=1)  # 2 pairs
        >>> b, b_tilde = keras_gumbel.estimators.antithetic_bernoulli(logits, u)
        >>> f = lambda b: keras.ops.sum(b, axis=-1)  # [2, 8]
        >>> loss = keras_gumbel.estimators.arm_loss(logits, u, f(b), f(b_tilde))
        >>> tuple(loss.shape)
        ()
    """
    logits = ops.convert_to_tensor(logits)
    return _discrete.surrogate_loss(logits, arm_gradient(uniform, rewards, antithetic_rewards), _rewards_rank(rewards))


@_deprecation.renamed_arguments("0.3.0", reward="rewards", antithetic_reward="antithetic_rewards")
def disarm_loss(logits, uniform, rewards, antithetic_rewards):
    """A scalar whose gradient with respect to `logits` is minus the mean DisARM estimate.

    Minimising it maximises `E[R(b)]`: it is
    `-sum(stop_gradient(disarm_gradient(...)) * logits)`, summed over an
    input's variables and averaged over the pairs and inputs.

    Args:
        logits: Logits of the Bernoulli variables, differentiable.
        uniform: The uniforms of the pairs, [*samples, *logits.shape].
        rewards: `R(b)` for `(b, b~) = antithetic_bernoulli(logits, uniform)`.
        antithetic_rewards: `R(b~)`.

    Returns:
        A scalar tensor.

    Examples:
        >>> import keras, keras_gumbel
        >>> logits = keras.ops.zeros((8, 3))
        >>> u = keras.random.uniform((2, 8, 3), seed=1)
        >>> b, b_tilde = keras_gumbel.estimators.antithetic_bernoulli(logits, u)
        >>> f = lambda b: keras.ops.sum(b, axis=-1)
        >>> loss = keras_gumbel.estimators.disarm_loss(
        ...     logits, u, f(b), f(b_tilde)
        ... )
        >>> tuple(loss.shape)
        ()
    """
    gradient = disarm_gradient(logits, uniform, rewards, antithetic_rewards)
    return _discrete.surrogate_loss(logits, gradient, _rewards_rank(rewards))


def _swaps(num_classes):
    """The pairs (m, j), m < j, in ARSM's order, and for each a permutation of the categories swapping m and j."""
    pairs = list(itertools.combinations(range(num_classes), 2))
    permutations = np.tile(np.arange(num_classes), (len(pairs) + 1, 1))
    for row, (m, j) in enumerate(pairs, start=1):
        permutations[row, [m, j]] = permutations[row, [j, m]]
    # F[m, j] is rewards[index[m, j]]: row 0 (the sample itself) on the diagonal.
    index = np.zeros((num_classes, num_classes), dtype="int32")
    for row, (m, j) in enumerate(pairs, start=1):
        index[m, j] = index[j, m] = row
    return permutations.astype("int32"), index


def _num_classes(tensor, name):
    num_classes = tensor.shape[-1]
    if num_classes is None:
        raise ValueError(
            _validation.invalid(name, "a tensor whose last (category) axis has a size known when traced", tensor.shape)
        )
    if num_classes < 2:
        raise ValueError(_validation.invalid(name, "at least 2 categories on the last axis", tensor.shape))
    return num_classes


def arsm_actions(logits, dirichlet):
    """The sample and its swapped versions that ARSM evaluates (Yin, Yue & Zhou, 2019).

    With `pi = dirichlet` (a draw of `Dirichlet(1_C)` per variable), the
    sample is `z = argmax(logits - log(pi))`, a draw of
    `Categorical(softmax(logits))`; for each pair of categories m < j (in the
    order of `itertools.combinations(range(C), 2)`) `z^(m<->j)` is the same
    argmax with `pi_m` and `pi_j` swapped (in every variable of the input at
    once).

    Args:
        logits: Logits, categories on the last axis ([..., C]).
        dirichlet: Draws of `Dirichlet(1_C)`, [*samples, *logits.shape] (for
            example `e / sum(e, -1)` for `e = -log(uniform)`).

    Returns:
        One-hot actions [1 + C (C - 1) / 2, *dirichlet.shape] in the dtype of
        `logits`: the sample first, then the swaps.

    Examples:
        >>> import keras, keras_gumbel
        >>> logits = keras.ops.zeros((5, 3))  # 5 inputs, 3 categories
        >>> e = -keras.ops.log(keras.random.uniform((2, 5, 3), seed=1))
        >>> pi = e / keras.ops.sum(e, axis=-1, keepdims=True)
        >>> tuple(keras_gumbel.estimators.arsm_actions(logits, pi).shape)
        (4, 2, 5, 3)
    """
    logits, dirichlet = _as_float(logits, dirichlet)
    num_classes = _num_classes(logits, "logits")
    _discrete.check_noise("dirichlet", dirichlet, logits)
    permutations, _ = _swaps(num_classes)
    # [..., 1 + M, C]: log(pi) with each pair swapped (row 0: unswapped).
    swapped = ops.take(ops.log(dirichlet), ops.convert_to_tensor(permutations), axis=-1)
    choices = ops.argmax(ops.subtract(ops.expand_dims(logits, -2), swapped), axis=-1)  # [..., 1 + M]
    choices = ops.moveaxis(choices, -1, 0)
    return ops.one_hot(choices, num_classes, dtype=logits.dtype)


def arsm_gradient(dirichlet, rewards):
    """Per-sample ARSM estimates of `grad_logits E[R(z)]` (Yin, Yue & Zhou, 2019).

        g_c = sum_j (F[c, j] - mean_m F[m, j]) * (1/C - pi_j)

    where `F[m, j]` is the reward of `z^(m<->j)` (of `z` itself when m = j),
    read from `rewards` in the order of `arsm_actions`.

    Args:
        dirichlet: The Dirichlet draws the actions came from,
            [*samples, *variables, C].
        rewards: The rewards of `arsm_actions(logits, dirichlet)`,
            [1 + C (C - 1) / 2, *samples] (e.g. [1 + M, num_draws, B]): one
            per sample, shared by the variables of an input.

    Returns:
        A tensor of the shape of `dirichlet`.

    Raises:
        ValueError: If the shapes do not fit.
    """
    dirichlet = _discrete.as_float(dirichlet)
    num_classes = _num_classes(dirichlet, "dirichlet")
    _, index = _swaps(num_classes)
    rewards = ops.cast(ops.convert_to_tensor(rewards), dirichlet.dtype)
    expected = 1 + num_classes * (num_classes - 1) // 2
    if rewards.shape[0] is not None and rewards.shape[0] != expected:
        raise ValueError(
            _validation.invalid_shape(
                "rewards",
                f"the rewards of the {expected} actions of `arsm_actions` for {num_classes} categories on the "
                "first axis",
                tuple(rewards.shape),
            )
        )
    _discrete.per_sample("rewards", rewards[0], dirichlet)
    sample_rank = len(rewards.shape) - 1
    # F[..., m, j], [*samples, C, C].
    table = ops.take(rewards, ops.convert_to_tensor(index.reshape(-1)), axis=0)
    table = ops.reshape(table, (num_classes, num_classes, *ops.shape(rewards)[1:]))
    table = ops.moveaxis(ops.moveaxis(table, 0, -1), 0, -1)  # [*samples, m, j]
    centred = ops.subtract(table, ops.mean(table, axis=-2, keepdims=True))
    # One centred table per input, shared by its variables: [*samples, 1 (per variable axis), C, C].
    variable_axes = len(dirichlet.shape) - 1 - sample_rank
    for _ in range(variable_axes):
        centred = ops.expand_dims(centred, sample_rank)
    weights = ops.subtract(1.0 / num_classes, dirichlet)  # [*samples, *variables, C]
    return ops.sum(ops.multiply(centred, ops.expand_dims(weights, -2)), axis=-1)


def arsm_loss(logits, dirichlet, rewards):
    """A scalar whose gradient with respect to `logits` is minus the mean ARSM estimate.

    Args:
        logits: Logits, categories on the last axis, differentiable.
        dirichlet: The Dirichlet draws, [*samples, *logits.shape].
        rewards: The rewards of `arsm_actions(logits, dirichlet)`,
            [1 + C (C - 1) / 2, *samples].

    Returns:
        A scalar tensor: `-sum(stop_gradient(arsm_gradient(...)) * logits)`,
        summed over an input's logits and averaged over the draws and inputs.

    Examples:
        >>> import keras, keras_gumbel
        >>> logits = keras.ops.zeros((5, 3))
        >>> e = -keras.ops.log(keras.random.uniform((2, 5, 3), seed=1))
        >>> pi = e / keras.ops.sum(e, axis=-1, keepdims=True)
        >>> actions = keras_gumbel.estimators.arsm_actions(logits, pi)
        >>> rewards = actions[..., 0]  # reward 1 for category 0: [4, 2, 5]
        >>> loss = keras_gumbel.estimators.arsm_loss(logits, pi, rewards)
        >>> tuple(loss.shape)
        ()
    """
    gradient = arsm_gradient(dirichlet, rewards)
    return _discrete.surrogate_loss(logits, gradient, len(ops.convert_to_tensor(rewards).shape) - 1)


class _Coupled(Estimator):
    """What ARM, DisARM and ARSM share: no metrics, no weights, and their rewards' mean as the logged reward."""

    metric_names = ()


@register("arm")
class ARM(_Coupled):
    """The ARM estimator for binary variables (Yin & Zhou, 2019), for the training helpers.

    For each input it draws `num_samples / 2` antithetic pairs
    `(b, b~) = antithetic_bernoulli(logits, u)` from one uniform per variable,
    evaluates the reward of all `num_samples` samples in one `reward_fn`
    call, and returns `arm_loss`: per pair and variable
    `g = (R(b~) - R(b)) * (u - 1/2)`, averaged over the pairs. Unbiased; no
    gradient of the reward is needed. Prefer `DisARM`, which has the same
    cost and never more variance.

    The policy's distribution must be a `tfd.Bernoulli` (or an
    `Independent` of one), e.g. `distribution=lambda logits:
    tfd.Independent(tfd.Bernoulli(logits=logits), 1)`. `num_samples` counts
    evaluations of the reward: it must be even.

    Examples:
        >>> import keras_gumbel
        >>> keras_gumbel.estimators.ARM().check_num_samples(4)  # two pairs
    """

    _name = "ARM"
    variables = ("binary",)

    def check_num_samples(self, num_samples):
        _discrete.check_even_samples(self._name, num_samples)

    def _gradient(self, logits, uniform, reward, antithetic_reward):
        return arm_gradient(uniform, reward, antithetic_reward)

    def estimate(self, distribution, evaluate, log_prob, num_samples, seed, inputs, training=None):
        del log_prob, inputs, training  # the estimate needs neither
        self.check_num_samples(num_samples)
        logits, _, dtype = _discrete.policy_logits(distribution, self._name, kinds=("binary",))
        logits = ops.convert_to_tensor(logits)
        compute_logits = _discrete.compute_logits(logits)
        pairs = num_samples // 2
        uniform = _discrete.uniform((pairs, *ops.shape(compute_logits)), seed, compute_logits.dtype)
        sample, antithetic = antithetic_bernoulli(ops.stop_gradient(compute_logits), uniform)
        actions = ops.cast(ops.concatenate([sample, antithetic], axis=0), dtype)
        rewards = evaluate(actions)  # [2 * pairs, B]
        reward, antithetic_reward = rewards[:pairs], rewards[pairs:]
        gradient = self._gradient(compute_logits, uniform, reward, antithetic_reward)
        loss = _discrete.surrogate_loss(compute_logits, gradient, 2)
        return ops.cast(loss, "float32"), {}, rewards


@register("disarm")
class DisARM(ARM):
    """The DisARM estimator for binary variables (Dong, Mnih & Tucker, 2020), for the training helpers.

    As `ARM` (the same `num_samples / 2` antithetic pairs, the same
    evaluations), but each pair's estimate is `disarm_gradient`:

        g = 1/2 * (R(b) - R(b~)) * (-1)^b~ * 1[b != b~] * sigmoid(|logits|)

    averaged over the pairs. Unbiased, of no more variance than ARM, and,
    on the binary VAEs of its paper, of less variance than REINFORCE with a
    leave-one-out baseline at the same number of evaluations.

    The policy's distribution must be a `tfd.Bernoulli` (or an
    `Independent` of one). `num_samples` counts evaluations of the reward:
    it must be even.

    Examples:
        >>> import keras_gumbel
        >>> estimator = keras_gumbel.estimators.DisARM()
        >>> estimator.metric_names
        ()
    """

    _name = "DisARM"

    def _gradient(self, logits, uniform, reward, antithetic_reward):
        return disarm_gradient(logits, uniform, reward, antithetic_reward)


@register("arsm")
class ARSM(_Coupled):
    """The ARSM estimator for categorical variables (Yin, Yue & Zhou, 2019), for the training helpers.

    For each input it draws `num_samples` Dirichlet vectors `pi ~ Dir(1_C)`
    per variable, evaluates the reward of `arsm_actions` (the sample and its
    `C (C - 1) / 2` swaps: `num_samples * (1 + C (C - 1) / 2)` evaluations,
    in one `reward_fn` call) and returns `arsm_loss`: per draw
    `g_c = sum_j (F[c, j] - mean_m F[m, j]) * (1/C - pi_j)`, averaged over
    the draws. Unbiased without a baseline or a gradient of the reward; its
    cost grows with C^2, so it suits small C.

    The policy's distribution must be a `tfd.OneHotCategorical` (the
    training helpers' default for logits) or a `tfd.Categorical` (actions as
    indices), categories on the last axis, their number known when traced.

    Examples:
        >>> import keras_gumbel
        >>> keras_gumbel.estimators.ARSM().check_num_samples(1)
    """

    variables = ("categorical",)

    def check_num_samples(self, num_samples):
        _validation.check_int("num_samples", num_samples, minimum=1)

    def estimate(self, distribution, evaluate, log_prob, num_samples, seed, inputs, training=None):
        del log_prob, inputs, training
        self.check_num_samples(num_samples)
        policy = Policy.of(distribution)
        logits, _, _ = policy.require("ARSM", kinds=("categorical", "index"))
        logits = ops.convert_to_tensor(logits)
        compute_logits = _discrete.compute_logits(logits)
        uniform = _discrete.uniform((num_samples, *ops.shape(compute_logits)), seed, compute_logits.dtype)
        exponential = ops.negative(ops.log(uniform))
        dirichlet = ops.divide(exponential, ops.sum(exponential, axis=-1, keepdims=True))
        one_hot = arsm_actions(ops.stop_gradient(compute_logits), dirichlet)  # [1 + M, S, B, ..., C]
        swaps = one_hot.shape[0]
        flat = ops.reshape(one_hot, (-1, *ops.shape(one_hot)[2:]))  # [(1 + M) * S, B, ..., C]
        rewards = evaluate(policy.actions(flat))  # [(1 + M) * S, B]
        table = ops.reshape(rewards, (swaps, num_samples, -1))
        loss = arsm_loss(compute_logits, dirichlet, table)
        return ops.cast(loss, "float32"), {}, rewards
