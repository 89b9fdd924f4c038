"""`Estimator`: the interface every gradient estimator of `make_train_step` and `ReinforceModel` implements."""

__all__ = ["Estimator"]


class Estimator:
    """The interface of an estimator of `grad E_{a ~ p_theta}[R(a)]` from sampled actions and their rewards.

    The training helpers (`make_train_step`, `ReinforceModel`) draw S actions
    for each of B inputs from the policy's distribution, call `reward_fn` on
    them, and hand everything to `loss`; they minimise what it returns and log
    its metrics. `ScoreFunction` is the first implementation; others (VIMCO,
    DisARM, RELAX, ...) implement the same four members:

    - `loss(distribution, actions, log_prob, rewards, inputs, training)`:
      returns `(loss, metrics)`, a scalar whose gradient estimates
      `-grad E[reward]` (plus whatever trains the estimator's own weights),
      and a dict with a value for each of `metric_names`.
    - `metric_names`: the names of those metrics, known before the first step
      (`ReinforceModel` creates a tracker for each up front). A metric named
      `"loss"` replaces the loss in the logs (`ScoreFunction` logs its
      surrogate there, without a learned baseline's loss and the entropy
      bonus).
    - `layers`: the Keras layers holding the estimator's state or weights
      (a moving average, a learned baseline): their trainable weights are
      trained alongside the policy, and `ReinforceModel` saves them.
    - `check_num_samples(num_samples)`: raises a `ValueError` if the
      estimator cannot work with that many samples per input.
    """

    #: The names of the metrics `loss` returns, in the order logs list them.
    metric_names = ()

    @property
    def layers(self):
        """The Keras layers holding the estimator's state or weights."""
        return []

    def check_num_samples(self, num_samples):
        """Raises a `ValueError` if `num_samples` samples per input are too few for this estimator."""

    def loss(self, distribution, actions, log_prob, rewards, inputs, training=None):
        """The loss to minimise for one batch, and its metrics.

        Args:
            distribution: The policy's distribution for the batch (a TFP
                distribution in the training helpers): batch shape [B, ...].
            actions: The sampled actions, [S, B, ...], without gradient.
            log_prob: `log p_theta(actions)`, [S, B] (float32, summed over
                independent components), differentiable in theta.
            rewards: Their rewards, [S, B] (float32), without gradient.
            inputs: The batch of B inputs.
            training: Whether this is a training step.

        Returns:
            `(loss, metrics)`: a scalar tensor and a dict with a value for each
            of `metric_names`.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement `loss`.")
