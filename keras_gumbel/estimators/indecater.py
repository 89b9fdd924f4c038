"""IndeCateR (De Smet et al., 2023): each variable's categories summed exactly, the other variables sampled.

For D independent categorical variables `x = (x_1, ..., x_D)`, `x_d ~
Categorical(softmax(logits_d))`, the CatLog-derivative trick writes the
gradient one variable at a time:

    grad E[f(x)] = sum_d E_{x_-d} [ sum_k grad p_d(k) f(x_-d, x_d = k) ]

IndeCateR estimates the outer expectation with `num_samples` samples of `x`
and computes the inner sum exactly: for each sample and variable, f is
evaluated with that variable set to each of its K categories (the others as
sampled), `S * D * K` evaluations per input. With respect to `logits_d`,
`grad p_d(k) = p_d(k) (e_k - p_d)`, so one sample's estimate is

    g_d = p_d * (F_d - p_d . F_d),    F_d[k] = f(x_-d, x_d = k)

unbiased, and exact for a single variable (D = 1). Bits (`Bernoulli`) are
two categories each: `g_d = sigmoid'(logits_d) (f(x_-d, 1) - f(x_-d, 0))`.
No gradient of f is needed, no baseline either (the sum over k of
`grad p_d(k)` is 0, so a baseline would cancel).

Pure maths on every backend (keras.ops); `IndeCateR` is its `Estimator`.

Reference:
    - [De Smet, Sansone & Zuidberg Dos Martires, 2023. Differentiable Sampling of Categorical Distributions Using
      the CatLog-Derivative Trick](https://arxiv.org/abs/2311.12569)
"""

from keras import ops

from keras_gumbel import _sampling
from keras_gumbel.estimators import _discrete
from keras_gumbel.estimators.estimator import Estimator
from keras_gumbel.estimators.policy import Policy
from keras_gumbel.estimators.registry import register

__all__ = ["IndeCateR", "indecater_actions", "indecater_loss", "indecater_terms"]


def indecater_actions(indices, num_categories):
    """Every sample with each of its variables set to each category in turn.

    Args:
        indices: The sampled categories, integers [S, B, D] (S samples of B
            inputs' D variables).
        num_categories: K.

    Returns:
        Integers [S, D, K, B, D]: entry `[s, d, k]` is sample s with variable
        d set to k.
    """
    indices = ops.convert_to_tensor(indices)
    num_variables = indices.shape[-1]
    base = ops.expand_dims(ops.expand_dims(indices, 1), 1)  # [S, 1, 1, B, D]
    replaced = ops.reshape(ops.eye(num_variables, dtype="bool"), (num_variables, 1, 1, num_variables))  # [d, 1, 1, D]
    categories = ops.reshape(ops.arange(num_categories, dtype=indices.dtype), (1, num_categories, 1, 1))  # [1, K, 1, 1]
    return ops.where(replaced, categories, base)  # [S, D, K, B, D]


def indecater_terms(logits, rewards, binary=False):
    """IndeCateR's per-sample terms, [S, B]: `-sum_{d, k} F[s, d, k, b] p_d(k)`, each one sample's estimate.

    The gradient of a term with respect to `logits` is minus that sample's
    IndeCateR estimate of `grad E[f]` (summed over the variables); their mean
    is `indecater_loss`. Arguments as `indecater_loss`.
    """
    logits = _discrete.as_float(logits)
    rewards = ops.stop_gradient(ops.cast(rewards, logits.dtype))  # [S, D, K, B]
    if binary:
        on = ops.sigmoid(logits)
        probabilities = ops.stack([ops.subtract(1.0, on), on], axis=-1)  # [B, D, 2]: bit 0, bit 1
    else:
        probabilities = ops.softmax(logits, axis=-1)  # [B, D, K]
    probabilities = ops.transpose(probabilities, (1, 2, 0))  # [D, K, B]
    return ops.negative(ops.sum(ops.multiply(rewards, probabilities), axis=(1, 2)))  # [S, B]


def indecater_loss(logits, rewards, binary=False):
    """A loss whose gradient with respect to `logits` is minus IndeCateR's estimate of `grad E[f]`, averaged.

    Args:
        logits: The variables' logits, [B, D, K] (categorical) or [B, D]
            (`binary`: `logits` of `Bernoulli(sigmoid(logits))`).
        rewards: `F`, [S, D, K, B] (K = 2 for bits, category 1 the bit 1):
            the reward of sample s with variable d set to k, without gradient.
        binary: Whether the variables are bits.

    Returns:
        A scalar: `-mean_{s, b} sum_{d, k} F[s, d, k, b] p_d(k)`, whose value
        is minus the estimate of `E[f]` (the mean over d of the per-variable
        estimates, times D) and whose gradient is minus the mean estimate of
        `grad E[f]` over the samples and inputs (summed over the variables).

    Examples:
        >>> import keras, keras_gumbel
        >>> from keras_gumbel.estimators import indecater_loss
        >>> logits = keras.ops.zeros((1, 1, 3))  # one variable, 3 categories
        >>> f = keras.ops.arange(3.0)  # f(k) = k, each category once
        >>> rewards = keras.ops.reshape(f, (1, 1, 3, 1))
        >>> float(indecater_loss(logits, rewards))  # -E[f] = -1, exactly
        -1.0
    """
    return ops.mean(indecater_terms(logits, rewards, binary))


@register("indecater")
class IndeCateR(Estimator):
    """The IndeCateR estimator (De Smet et al., 2023) for the training helpers: exact per variable, sampled across.

    For each input it draws `num_samples` values of the policy's D variables,
    evaluates every sample with each variable set to each of its K
    categories (`num_samples * D * K` rewards per input, in one `reward_fn`
    call) and returns `indecater_loss`: unbiased, without a baseline or a
    gradient of the reward, and exact when there is one variable. Its cost
    grows with D * K, so it suits few variables of few categories (on a
    20 x 10 categorical VAE code it is 200 evaluations per sample).

    The policy's distribution must be a `tfd.OneHotCategorical` or a
    `tfd.Categorical` (logits [B, *variables, K]; integer actions too), or a
    `tfd.Bernoulli` (or an `Independent` of one: logits [B, *variables]), its
    shape known when traced.

    Metrics: `reward`, the mean over the samples and variables of
    `sum_k p_d(k) F_d[k]` (each an unbiased estimate of `E[f]`).

    Examples:
        >>> import keras_gumbel
        >>> estimator = keras_gumbel.estimators.get("indecater")
        >>> estimator.metric_names
        ('reward',)

    Reference:
        - [De Smet, Sansone & Zuidberg Dos Martires, 2023](https://arxiv.org/abs/2311.12569)
    """

    metric_names = ("reward",)

    def estimate(self, distribution, evaluate, log_prob, num_samples, seed, inputs, training=None):
        del log_prob, inputs, training
        self.check_num_samples(num_samples)
        policy = Policy.of(distribution)
        logits, kind, _ = policy.require("IndeCateR")
        logits = _discrete.compute_logits(logits)
        binary = kind == "binary"
        num_variables, num_categories = policy.static_sizes("IndeCateR")
        variable_shape = policy.variable_shape
        flat = ops.reshape(logits, (-1, num_variables) if binary else (-1, num_variables, num_categories))
        batch_size = ops.shape(flat)[0]
        # The samples, by the Gumbel-max trick (bits: 2 categories, logits [0, l], category 1 the bit 1).
        category_logits = ops.stack([ops.zeros_like(flat), flat], axis=-1) if binary else flat  # [B, D, K]
        uniform = _discrete.uniform((num_samples, *ops.shape(category_logits)), seed, category_logits.dtype)
        gumbel = _sampling.gumbel_from_uniform(uniform)
        indices = ops.argmax(ops.add(ops.stop_gradient(category_logits), gumbel), axis=-1)  # [S, B, D]
        table = indecater_actions(indices, num_categories)  # [S, D, K, B, D]
        actions = policy.actions_from_indices(table)
        trailing = variable_shape if kind != "categorical" else (*variable_shape, num_categories)
        evaluations = num_samples * num_variables * num_categories
        rewards = evaluate(ops.reshape(actions, (evaluations, batch_size, *trailing)))  # [S D K, B]
        table_rewards = ops.reshape(rewards, (num_samples, num_variables, num_categories, -1))
        loss = indecater_loss(flat, table_rewards, binary)
        reward = ops.divide(ops.stop_gradient(ops.negative(loss)), num_variables)
        return ops.cast(loss, "float32"), {"reward": ops.cast(reward, "float32")}, rewards
