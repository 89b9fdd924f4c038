"""ARM and DisARM: unbiased estimators for binary variables from antithetic pairs of samples.

Neither needs a gradient of the reward or a relaxation: they evaluate the
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

ARSM, the categorical extension, is in `keras_gumbel.estimators.arsm` (its
names are re-exported here, where they were before 0.3.0).

The pure functions (`antithetic_bernoulli`, `arm_gradient`,
`disarm_gradient`, `arm_loss`, `disarm_loss`) run on every backend; `ARM`
and `DisARM` are the `Estimator`s of the training helpers (TensorFlow).

References:
    - [Yin & Zhou, 2019. ARM: Augment-REINFORCE-Merge Gradient for Stochastic
      Binary Networks](https://arxiv.org/abs/1807.11143)
    - [Dong, Mnih & Tucker, 2020. DisARM: An Antithetic Gradient Estimator
      for Binary Latent Variables](https://arxiv.org/abs/2006.10680)
"""

from keras import ops

from keras_gumbel import _deprecation
from keras_gumbel import _sampling
from keras_gumbel.estimators import _discrete
from keras_gumbel.estimators.arsm import ARSM
from keras_gumbel.estimators.arsm import arsm_actions
from keras_gumbel.estimators.arsm import arsm_gradient
from keras_gumbel.estimators.arsm import arsm_loss
from keras_gumbel.estimators.estimator import Estimator
from keras_gumbel.estimators.policy import Policy
from keras_gumbel.estimators.registry import register

# ARSM's names stay importable from here, their home before 0.3.0.
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
    logits, uniform = _discrete.as_float_pair(logits, uniform)
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
    logits, uniform = _discrete.as_float_pair(logits, uniform)
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

    The arguments are those of `arm_loss`; it returns a scalar tensor.

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


class _Coupled(Estimator):
    """What ARM and DisARM share: no metrics, no weights, and their rewards' mean as the logged reward."""

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
        logits, _, dtype = Policy.of(distribution).require(self._name, kinds=("binary",))
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
