"""Exact enumeration: the expectation summed over every value of the discrete variables (zero variance).

For a discrete distribution with a small support {a_1, ..., a_C},

    E_{a ~ p_theta}[R(a)] = sum_c p_theta(a_c) * R(a_c),

and its gradient is exact: `sum_c grad p_theta(a_c) * R(a_c)`, plus
`p_theta(a_c) * grad R(a_c)` where the reward has a gradient. It costs C
evaluations of R per input and has no variance. For one categorical
variable of K classes, C = K: this is the marginalisation Jang et al. (2017)
use for the labels in their semi-supervised experiment. Several variables
multiply: N independent categoricals of K classes have K^N joint values
(enumerating each variable alone, the others fixed, is not the expectation
of a reward that depends on all of them), so `Enumerate` refuses supports
larger than `max_configurations`.

`enumeration_loss` is the pure function (any backend), given the
log-probabilities and rewards of every configuration; `Enumerate` is the
estimator for `make_train_step` and `ReinforceModel`, which builds the
support of a `OneHotCategorical`, `Categorical` or `Bernoulli` policy
(optionally inside `Independent`) and calls the reward once on all of it.

Reference:
    - [Jang, Gu & Poole, 2017. Categorical Reparameterization with Gumbel-Softmax](https://arxiv.org/abs/1611.01144),
      section 4.3 (marginalising the labels)
"""

import itertools

import numpy as np
from keras import ops

from keras_gumbel import _deprecation
from keras_gumbel import _validation
from keras_gumbel.estimators.estimator import Estimator
from keras_gumbel.estimators.policy import Policy
from keras_gumbel.estimators.registry import register

__all__ = ["Enumerate", "enumeration_loss", "exact_expectation"]


def _check_same_shape(log_prob, rewards):
    log_prob_shape = tuple(log_prob.shape)
    if len(log_prob_shape) < 1:
        raise ValueError(
            _validation.invalid(
                "log_prob", "a tensor [C, ...] with the C configurations first", f"<a tensor of shape {log_prob_shape}>"
            )
        )
    _validation.check_same_shape("rewards", rewards, "log_prob", log_prob, per="configuration")


@_deprecation.renamed_arguments("0.3.0", reward="rewards")
def exact_expectation(log_prob, rewards):
    """`sum_c p(a_c) * R(a_c)` over the configurations on axis 0: the exact expectation of each input.

    Args:
        log_prob: `log p_theta(a_c)` of every configuration, [C, ...]; their
            probabilities must sum to 1 over axis 0 for this to be an
            expectation. Differentiable in theta.
        rewards: `R(a_c)`, the shape of `log_prob`; gradients through it are
            kept.

    Returns:
        A tensor [...]: the expectation for each input.

    Raises:
        ValueError: If the static shapes differ.
    """
    log_prob = ops.convert_to_tensor(log_prob)
    rewards = ops.convert_to_tensor(rewards)
    _check_same_shape(log_prob, rewards)
    return ops.sum(ops.multiply(ops.exp(log_prob), ops.cast(rewards, log_prob.dtype)), axis=0)


@_deprecation.renamed_arguments("0.3.0", reward="rewards")
def enumeration_loss(log_prob, rewards):
    """`-mean(E[R])` computed exactly by enumeration: its gradient is the exact `-grad E[R]`.

    Args:
        log_prob: `log p_theta(a_c)` of every configuration, [C, ...] (e.g.
            `log_softmax(logits)` transposed to [K, B] for one categorical
            variable); their probabilities sum to 1 over axis 0.
        rewards: `R(a_c)`, the shape of `log_prob`. Gradients through it are
            kept (a decoder's log-likelihood trains the decoder).

    Returns:
        A scalar: minus the mean over the inputs of `exact_expectation`.

    Raises:
        ValueError: If the static shapes differ.

    Examples:
        >>> import keras, keras_gumbel
        >>> log_prob = keras.ops.log([[0.25], [0.75]])  # C = 2, one input
        >>> rewards = keras.ops.convert_to_tensor([[4.0], [0.0]])
        >>> loss = keras_gumbel.estimators.enumeration_loss(log_prob, rewards)
        >>> float(loss)
        -1.0
    """
    return ops.negative(ops.mean(exact_expectation(log_prob, rewards)))


def _support(distribution, max_configurations=4096):
    """Every value of one input's variables, as actions [C, ...] in the distribution's dtype (NumPy).

    The logits' axes after the batch (and before the categories) are the
    variables: all their joint values are listed, the first variable varying
    slowest.
    """
    policy = Policy.of(distribution)
    if policy.kind is None:
        raise TypeError(
            _validation.invalid(
                "distribution",
                "a tfd.OneHotCategorical, tfd.Categorical or tfd.Bernoulli (optionally inside tfd.Independent) "
                "for Enumerate to list its values",
                distribution,
            )
        )
    if len(policy.logits.shape) < (1 if policy.kind == "binary" else 2):
        raise ValueError(
            "Enumerate needs a distribution whose first batch axis is the inputs' batch; received one with batch "
            "shape []."
        )
    variables = tuple(policy.variable_shape)
    num_variables, num_values = policy.static_sizes("Enumerate")
    count = num_values**num_variables
    if count > max_configurations:
        raise ValueError(
            f"Enumerate would evaluate {num_values}^{num_variables} = {count} configurations per input "
            f"({num_variables} variable(s) of {num_values} values: the joint support, since enumerating each "
            f"variable with the others fixed is not the expectation), more than max_configurations="
            f"{max_configurations}. Use a sampling estimator (ScoreFunction, VIMCO, the unordered-set "
            "estimator), or raise max_configurations."
        )
    values = np.array(list(itertools.product(range(num_values), repeat=num_variables)), "int64")  # [C, N]
    values = values.reshape((count, *variables))
    if policy.kind == "categorical":
        values = np.eye(num_values, dtype="float64")[values]  # [C, ..., K]
    return values.astype(policy.action_dtype)


@register("enumerate")
class Enumerate(Estimator):
    """The exact expectation over every value of the policy's variables: zero variance, `C` rewards per input.

    The loss is `enumeration_loss(log_prob, R)` over the whole support
    (C = K for one categorical variable of K classes, K^N for N of them, 2^D
    for D binary variables), evaluated in one `reward_fn` call on C * B rows;
    the `num_samples` of the training helpers is not used. The logged
    `reward` is the exact expected reward.

    Args:
        max_configurations: The largest support enumerated; a larger one
            raises a `ValueError` when the step is traced.

    Examples:
        >>> import keras_gumbel
        >>> estimator = keras_gumbel.estimators.Enumerate(max_configurations=100)
        >>> estimator.metric_names
        ('reward',)

    Reference:
        - [Jang et al., 2017](https://arxiv.org/abs/1611.01144), section 4.3
    """

    metric_names = ("reward",)

    def __init__(self, max_configurations=4096):
        self.max_configurations = _validation.check_int("max_configurations", max_configurations, minimum=1)

    def get_config(self):
        return {"max_configurations": self.max_configurations}

    def estimate(self, distribution, evaluate, log_prob, num_samples, seed, inputs, training=None):
        values = _support(distribution, self.max_configurations)  # [C, ...]
        batch_size = distribution.batch_shape_tensor()[0]
        actions = ops.broadcast_to(
            ops.expand_dims(ops.convert_to_tensor(values), 1), (values.shape[0], batch_size, *values.shape[1:])
        )  # [C, B, ...]
        action_log_prob = log_prob(actions)
        rewards = evaluate(actions)
        expected = exact_expectation(action_log_prob, rewards)  # [B]
        return ops.negative(ops.mean(expected)), {"reward": ops.stop_gradient(ops.mean(expected))}, rewards
