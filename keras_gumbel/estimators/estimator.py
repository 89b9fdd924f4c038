"""`Estimator`: the interface every gradient estimator of `make_train_step` and `ReinforceModel` implements."""

from keras import ops

from keras_gumbel import _validation
from keras_gumbel.estimators.registry import Configurable

__all__ = ["Estimator"]


class Estimator(Configurable):
    """The interface of an estimator of `grad E_{a ~ p_theta}[R(a)]` from sampled actions and their rewards.

    For each batch, the training helpers (`make_train_step`, `ReinforceModel`)
    build the policy's distribution and call `estimate` with it, a function
    that evaluates the rewards of any number of actions per input (one
    `reward_fn` call), a function that gives their log-probabilities, the
    number of samples asked for and the step's seed; they minimise the loss it
    returns and log its metrics. An estimator implements:

    - `estimate(distribution, evaluate, log_prob, num_samples, seed, inputs,
      training)`: returns `(loss, metrics, rewards)`. The default draws
      `num_samples` actions, evaluates them and hands everything to `loss`
      (the score function's way); an estimator that chooses its own actions
      (antithetic pairs, samples without replacement, every category)
      overrides it, and need not implement `loss`.
    - `loss(distribution, actions, log_prob, rewards, inputs, training)`:
      used by the default `estimate`; returns `(loss, metrics)`, a scalar
      whose gradient estimates `-grad E[reward]` (plus whatever trains the
      estimator's own weights), and a dict with a value for each of
      `metric_names`.
    - `metric_names`: the names of those metrics, known before the first step
      (`ReinforceModel` creates a tracker for each up front). A metric named
      `"loss"` replaces the loss in the logs (`ScoreFunction` logs its
      surrogate there, without a learned baseline's loss and the entropy
      bonus); one named `"reward"` replaces the mean of the evaluated rewards
      (e.g. an expectation computed exactly).
    - `layers`: the Keras layers holding the estimator's state or weights
      (a moving average, a learned baseline): their trainable weights are
      trained alongside the policy, and `ReinforceModel` saves them.
    - `check_num_samples(num_samples)`: raises a `ValueError` if the
      estimator cannot work with that many samples per input.
    - `build(logits_shape)`: creates weights that depend on the shape of the
      policy's output ([batch, ...]); the training helpers call it as soon as
      that shape is known (a built policy), so that the weights exist before
      the first step and load into a new model. The default does nothing.
    - `get_config()`: its constructor's arguments, so that `from_config`
      makes it anew and a model holding it saves in a `.keras` file (its
      weights are saved with its `layers`). The default is `{}`, right for
      an estimator without arguments; `from_config(config)` is
      `cls(**config)`.

    Register a new estimator with `@keras_gumbel.estimators.register("name")`
    (which also registers it with Keras' serialization): `get("name")` then
    makes it, and the diagnostics, the benchmarks and the docs list it.

    `ScoreFunction` implements `loss`; VIMCO, ARM/DisARM, REBAR/RELAX, the
    unordered-set estimator and exact enumeration implement `estimate`.
    """

    #: The names of the metrics `loss` returns, in the order logs list them.
    metric_names = ()

    #: The kinds of variables it estimates gradients for: `"binary"` (Bernoulli policies) and `"categorical"`
    #: (one-hot or index categorical ones); `ScoreFunction` takes any distribution.
    variables = ("binary", "categorical")

    #: What the gradient estimated is the gradient of: `"expected_reward"`, `E[R]`, or (VIMCO)
    #: `"multi_sample_bound"`, `E[log mean_S exp R]` over S samples.
    objective = "expected_reward"

    @property
    def layers(self):
        """The Keras layers holding the estimator's state or weights."""
        return []

    def __repr__(self):
        def shown(value):
            # A nested object's serialized config reads as its class name.
            return f"{value['class_name']}(...)" if isinstance(value, dict) and "class_name" in value else repr(value)

        arguments = ", ".join(f"{key}={shown(value)}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({arguments})"

    def check_num_samples(self, num_samples):
        """Raises a `ValueError` if `num_samples` samples per input are too few for this estimator (default: < 1)."""
        _validation.check_int("num_samples", num_samples, minimum=1)

    def build(self, logits_shape):
        """Creates the weights that depend on the shape of the policy's output, `[batch, ...]`; by default none."""

    def estimate(self, distribution, evaluate, log_prob, num_samples, seed, inputs, training=None):
        """The loss to minimise for one batch, its metrics, and the rewards evaluated for it.

        The default draws `num_samples` actions per input from
        `distribution` (without gradient), evaluates their rewards and
        log-probabilities, and returns `loss(...)` on them with the rewards.

        Args:
            distribution: The policy's distribution for the batch, batch
                shape [B, ...]: in the training helpers a `Policy`, the TFP
                distribution (`OneHotCategorical(logits)`,
                `Independent(Bernoulli)`, ...) with its `logits`, `kind` and
                action form worked out; every other attribute is the
                distribution's. Estimators that need the logits read
                `Policy.of(distribution).require(name, kinds)` (a TFP
                distribution given directly works too).
            evaluate: `evaluate(actions) -> rewards`: actions [S', B, ...] for
                any S' (not only `num_samples`) to their rewards [S', B]
                (float32), in one `reward_fn` call on S' * B rows. Sampled
                actions carry no gradient; where `reward_fn` is
                differentiable, the gradient with respect to relaxed actions
                passes through (REBAR and `RELAX(relaxed_reward=True)` use
                it).
            log_prob: `log_prob(actions) -> [S', B]`: `log p_theta(actions)`
                (float32, summed over independent components),
                differentiable in theta.
            num_samples: The samples per input the user asked for.
            seed: The step's seed for stateless random ops (an int32 [2]
                tensor in the training helpers, distinct on every replica),
                e.g. `distribution.sample(n, seed=seed)`.
            inputs: The batch of B inputs.
            training: Whether this is a training step.

        Returns:
            `(loss, metrics, rewards)`: a scalar tensor, a dict with a value
            for each of `metric_names`, and the rewards [S', B] evaluated
            (the logged `reward` is their mean unless `metrics` has one).
        """
        actions = ops.stop_gradient(distribution.sample(num_samples, seed=seed))  # [S, B, ...]
        action_log_prob = log_prob(actions)
        rewards = evaluate(actions)
        loss, metrics = self.loss(distribution, actions, action_log_prob, rewards, inputs, training)
        return loss, metrics, rewards

    def loss(self, distribution, actions, log_prob, rewards, inputs, training=None):
        """The loss to minimise for one batch, and its metrics (called by the default `estimate`).

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
        raise NotImplementedError(f"{type(self).__name__} must implement `loss` (or override `estimate`).")
