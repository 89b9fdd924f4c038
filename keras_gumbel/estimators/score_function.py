"""The score-function (REINFORCE) estimator: pure maths on every backend (keras.ops only).

The score-function estimator (Williams, 1992) needs no gradient of the reward:

    grad E_{a ~ p_theta}[R(a)] = E[(R(a) - b) * grad log p_theta(a)]

for any baseline `b` that does not depend on the sampled `a`. It is unbiased
for discrete (and continuous) actions, whatever the reward; a good baseline
(`keras_gumbel.estimators.baselines`) lowers its variance. Use it when the
reward cannot be differentiated (reinforcement learning, hard attention with
a non-differentiable downstream, discrete latent models); use `GumbelSoftmax`
or `StraightThroughGumbel` when it can, for lower variance at some bias.

`score_function_terms` returns one term per sample, so that the estimator's
variance can be measured, not only its mean; `score_function_loss` is their
mean; `ScoreFunction` is the estimator object the training helpers use (a
baseline and an entropy bonus).

Reference:
    - [Williams, 1992](https://doi.org/10.1007/BF00992696)
"""

from keras import ops

from keras_gumbel import _deprecation
from keras_gumbel import _validation
from keras_gumbel.estimators import baselines
from keras_gumbel.estimators.estimator import Estimator
from keras_gumbel.estimators.registry import register

__all__ = ["ScoreFunction", "score_function_terms", "score_function_loss"]


def _check_shapes(log_prob, rewards, baseline):
    """Refuses rewards (or a baseline) whose broadcast against `log_prob` would change the shape of the terms.

    Broadcasting hides the mistake: rewards of shape [B, 1] against a log_prob
    of shape [B] give [B, B] terms whose mean credits every sample with the
    batch's mean reward, and the learning signal is lost without an error.
    A scalar reward (the same for every sample) broadcasts harmlessly and is
    taken. Only static shapes are compared (sizes unknown when traced are
    skipped): a run-time assert would cost every step on every backend.
    """
    log_prob_shape, rewards_shape = _validation.static_shape(log_prob), _validation.static_shape(rewards)
    if log_prob_shape is not None and rewards_shape not in (None, ()):
        same = len(rewards_shape) == len(log_prob_shape) and all(
            r is None or p is None or r == p for r, p in zip(rewards_shape, log_prob_shape)
        )
        if not same:
            expected = (
                f"a scalar, or one reward per sample: the shape of `log_prob`, {log_prob_shape} (broadcasting "
                "rewards of another shape against it would pair samples with other samples' rewards)"
            )
            raise ValueError(_validation.invalid_shape("rewards", expected, rewards_shape))
    baseline_shape = None if baseline is None else _validation.static_shape(baseline)
    reference_shape = log_prob_shape if rewards_shape == () else rewards_shape
    if reference_shape is not None and baseline_shape is not None:
        # A scalar (a moving average), or one value per input ([1, B] or [B] against [S, B] rewards), is
        # fine: what is refused is a baseline that would make the terms larger than the rewards.
        aligned = reference_shape[len(reference_shape) - len(baseline_shape) :]
        fits = len(baseline_shape) <= len(reference_shape) and all(
            b is None or r is None or b in (1, r) for b, r in zip(baseline_shape, aligned)
        )
        if not fits:
            expected = (
                f"a scalar or a shape that broadcasts to the shape of the terms, {reference_shape}, without changing it"
            )
            raise ValueError(_validation.invalid_shape("baseline", expected, baseline_shape))


@_deprecation.renamed_arguments("0.3.0", reward="rewards")
def score_function_terms(log_prob, rewards, baseline=None):
    """Per-sample surrogate terms whose gradients are score-function estimates.

    Each term is `-stop_gradient(rewards - baseline) * log_prob`; its gradient
    is one sample's estimate of `-grad E[reward]`. Returning the terms (not
    only their mean) lets callers measure the estimator's variance.

    Args:
        log_prob: `log p_theta(a)` of the sampled actions, differentiable in
            theta (a tensor, NumPy array or list).
        rewards: Rewards of the same samples, of the shape of `log_prob`, or
            a scalar (the same reward for every sample). Rewards of shape
            [B, 1] against a log_prob of shape [B] are refused: broadcast to
            [B, B], they would credit every sample with the mean reward. No
            gradient flows through them. (Called `reward` before 0.3.0; that
            keyword still works, with a `FutureWarning`.)
        baseline: `None`, a scalar, or a value that broadcasts to the terms
            without changing their shape (e.g. one value per input, [1, B] or
            [B], against rewards [S, B]). It must not depend on the sampled
            action for the estimate to stay unbiased; no gradient flows
            through it.

    Returns:
        A tensor of the shape of `log_prob`.

    Raises:
        ValueError: If the static shapes of `rewards` or `baseline` do not fit
            (sizes unknown when traced are not checked).
    """
    log_prob = ops.convert_to_tensor(log_prob)
    advantage = ops.convert_to_tensor(rewards)
    if baseline is not None:
        baseline = ops.convert_to_tensor(baseline)
    _check_shapes(log_prob, advantage, baseline)
    if baseline is not None:
        advantage = ops.subtract(advantage, baseline)
    advantage = ops.stop_gradient(ops.cast(advantage, log_prob.dtype))
    return ops.negative(ops.multiply(advantage, log_prob))


@_deprecation.renamed_arguments("0.3.0", reward="rewards")
def score_function_loss(log_prob, rewards, baseline=None):
    """A scalar loss whose gradient is an unbiased estimate of `-grad E[reward]`.

    Minimising it maximises the expected reward. It is the mean of
    `score_function_terms(log_prob, rewards, baseline)`.

    Examples:
        >>> import keras, keras_gumbel
        >>> log_prob = keras.ops.log([0.2, 0.5, 0.5])
        >>> rewards = keras.ops.convert_to_tensor([1.0, 0.0, 2.0])
        >>> loss = keras_gumbel.estimators.score_function_loss(log_prob, rewards)
        >>> round(float(loss), 4)
        0.9986
    """
    return ops.mean(score_function_terms(log_prob, rewards, baseline))


@register("reinforce_leave_one_out", baseline="leave_one_out")
@register("reinforce")
class ScoreFunction(Estimator):
    """The score-function (REINFORCE) estimator, with a baseline and an entropy bonus.

    For S sampled actions of each of B inputs, with rewards R [S, B]:

        loss = score_function_loss(log_prob, R, b)
               + baseline_loss - entropy_weight * mean(entropy)

    where `b` and `baseline_loss` come from the baseline (`baseline_loss` is
    0 for all but a learned one). The gradient of the first term is an
    unbiased estimate of `-grad E[R]`; the entropy bonus keeps the policy
    spread.

    Args:
        baseline: `None`, `"leave_one_out"` (needs 2 or more samples per
            input), `"moving_average"`, a `MovingAverageBaseline`, any
            `baselines.Baseline`, or a Keras model mapping the inputs to a
            predicted reward (a `baselines.Learned` baseline, trained
            alongside by mean squared error). See `baselines.get`.
        entropy_weight: Non-negative weight of the entropy bonus.

    Metrics: `loss` (the score-function loss alone), the baseline's
    (`baseline`, and `baseline_loss` for a learned one) and, with a positive
    `entropy_weight`, `entropy`.

    Examples:
        >>> import keras_gumbel
        >>> estimator = keras_gumbel.estimators.ScoreFunction(
        ...     baseline="leave_one_out", entropy_weight=0.01
        ... )
        >>> estimator.metric_names
        ('loss', 'baseline', 'entropy')
    """

    def __init__(self, baseline=None, entropy_weight=0.0):
        self.baseline = baselines.get(baseline)
        self.entropy_weight = _validation.check_non_negative("entropy_weight", entropy_weight)

    def get_config(self):
        return {"baseline": baselines.serialize(self.baseline), "entropy_weight": self.entropy_weight}

    @property
    def metric_names(self):
        names = ("loss",)
        if self.baseline is not None:
            names += tuple(self.baseline.metric_names)
        if self.entropy_weight:
            names += ("entropy",)
        return names

    @property
    def layers(self):
        layer = None if self.baseline is None else self.baseline.layer()
        return [] if layer is None else [layer]

    def check_num_samples(self, num_samples):
        if self.baseline is not None:
            self.baseline.check_num_samples(num_samples)

    def loss(self, distribution, actions, log_prob, rewards, inputs, training=None):
        value, baseline_loss, metrics = None, 0.0, {}
        if self.baseline is not None:
            value, baseline_loss, metrics = self.baseline.estimate(rewards, inputs, training=training)
        surrogate = score_function_loss(log_prob, rewards, value)
        metrics = {"loss": surrogate, **metrics}
        loss = ops.add(surrogate, baseline_loss)
        if self.entropy_weight:
            # In float32 whatever the policy's dtype, as the other terms are.
            entropy = ops.cast(ops.mean(distribution.entropy()), "float32")
            metrics["entropy"] = entropy
            loss = ops.subtract(loss, ops.multiply(self.entropy_weight, entropy))
        return loss, metrics
