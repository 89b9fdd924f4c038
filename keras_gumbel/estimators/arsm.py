"""ARSM (Yin, Yue & Zhou, 2019): an unbiased estimator for categorical variables from swapped Dirichlet draws.

As ARM and DisARM (`keras_gumbel.estimators.arm`) for binary variables, it
needs no gradient of the reward, no relaxation and no baseline: it evaluates
the reward at samples drawn from shared noise and combines the values.

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

The pure functions (`arsm_actions`, `arsm_gradient`, `arsm_loss`) run on
every backend; `ARSM` is the `Estimator` of the training helpers.

References:
    - [Yin, Yue & Zhou, 2019. ARSM: Augment-REINFORCE-Swap-Merge Estimator for
      Gradient Backpropagation Through Categorical
      Variables](https://arxiv.org/abs/1905.01413)
    - [Dong, Mnih & Tucker, 2021. Coupled Gradient Estimators for Discrete
      Latent Variables](https://arxiv.org/abs/2106.08056)
"""

import itertools

import numpy as np
from keras import ops

from keras_gumbel import _validation
from keras_gumbel.estimators import _discrete
from keras_gumbel.estimators.estimator import Estimator
from keras_gumbel.estimators.policy import Policy
from keras_gumbel.estimators.registry import register

__all__ = ["ARSM", "arsm_actions", "arsm_gradient", "arsm_loss"]


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
    logits, dirichlet = _discrete.as_float_pair(logits, dirichlet)
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


@register("arsm")
class ARSM(Estimator):
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

    metric_names = ()
    variables = ("categorical",)

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
