"""Score-function (REINFORCE) estimators, baselines and training helpers.

The score-function estimator (Williams, 1992) needs no gradient of the reward:

    grad E_{a ~ p_theta}[R(a)] = E[(R(a) - b) * grad log p_theta(a)]

for any baseline `b` that does not depend on the sampled `a`. It is unbiased
for discrete (and continuous) actions, whatever the reward; a good baseline
lowers its variance. Use it when the reward cannot be differentiated
(reinforcement learning, hard attention with a non-differentiable
downstream, discrete latent models); use `GumbelSoftmax` or
`StraightThroughGumbel` when it can, for lower variance at some bias.

- `score_function_terms`, `score_function_loss`: pure, backend-agnostic.
- `leave_one_out_baseline` (pure), `MovingAverageBaseline` (a layer whose
  state is saved with the model), or any Keras model as a learned baseline.
- `make_train_step`: a compiled training step for custom loops, and
  `ReinforceModel`: the same inside `compile` / `fit` / `evaluate`. These two
  use `tf.GradientTape` and TensorFlow Probability: TensorFlow backend only.

Reference:
    - [Williams, 1992](https://doi.org/10.1007/BF00992696)
    - [Kool, van Hoof, Welling, 2019. Buy 4 REINFORCE Samples, Get a Baseline for Free!](https://openreview.net/forum?id=r1lgTGL5DE)
"""

import keras
from keras import ops

from keras_gumbel import _backend
from keras_gumbel import _validation
from keras_gumbel.estimators.baselines import MovingAverageBaseline
from keras_gumbel.estimators.baselines import leave_one_out_baseline
from keras_gumbel.estimators.score_function import ScoreFunction
from keras_gumbel.estimators.score_function import score_function_loss
from keras_gumbel.estimators.score_function import score_function_terms
from keras_gumbel.layers._seed_state import TrackSeedState

__all__ = [
    "score_function_terms",
    "score_function_loss",
    "leave_one_out_baseline",
    "MovingAverageBaseline",
    "make_train_step",
    "ReinforceModel",
]


def _require_tensorflow(what):
    if _backend.backend() != "tensorflow":
        raise RuntimeError(
            f"{what} uses tf.GradientTape and TensorFlow Probability, so it needs the TensorFlow backend "
            f"(KERAS_BACKEND=tensorflow); the running backend is {_backend.backend()!r}. "
            "`score_function_loss` and the baselines work on every backend."
        )


def _as_distribution(policy_output, distribution):
    from keras_gumbel.distributions import tfp_distributions

    tfd = tfp_distributions()
    if distribution is not None:
        result = distribution(policy_output)
    elif isinstance(policy_output, tfd.Distribution):
        result = policy_output
    else:
        result = tfd.OneHotCategorical(logits=policy_output, dtype="float32")
    if not callable(getattr(result, "log_prob", None)) or not callable(getattr(result, "sample", None)):
        raise TypeError(
            "The policy's distribution must have `sample` and `log_prob` methods (a "
            f"tfp.distributions.Distribution); received {result!r}."
        )
    return result


def _flatten_samples(tensor):
    """[S, B, ...] -> [S * B, ...]."""
    shape = ops.shape(tensor)
    return ops.reshape(tensor, (-1, *shape[2:]))


def _repeat_inputs(structure, num_samples):
    """Each input repeated for every sample, sample-major: [B, ...] -> [S * B, ...]."""

    def repeat(tensor):
        tensor = ops.convert_to_tensor(tensor)
        tiled = ops.repeat(ops.expand_dims(tensor, 0), num_samples, axis=0)
        return _flatten_samples(tiled)

    return keras.tree.map_structure(repeat, structure)


class _Objective:
    """The REINFORCE objective shared by `make_train_step` and `ReinforceModel`."""

    def __init__(self, policy, reward_fn, num_samples, baseline, entropy_weight, distribution, seed):
        if not isinstance(policy, keras.layers.Layer):
            raise TypeError(
                _validation.invalid(
                    "policy",
                    "a Keras model or layer (it is called with `training=` and its weights are trained)",
                    policy,
                )
            )
        if not callable(reward_fn):
            raise TypeError(_validation.invalid("reward_fn", "a callable (inputs, actions) -> rewards", reward_fn))
        if distribution is not None and not callable(distribution):
            raise TypeError(
                _validation.invalid("distribution", "None or a callable policy_output -> Distribution", distribution)
            )
        self.policy = policy
        self.reward_fn = reward_fn
        self.num_samples = _validation.check_int("num_samples", num_samples, minimum=1)
        self.estimator = ScoreFunction(baseline, entropy_weight)
        self.estimator.check_num_samples(self.num_samples)
        # A baseline's layer (moving average, learned), as `step.baseline` and `ReinforceModel.baseline` hold it.
        self.baseline = self.estimator.baseline.layer() if self.estimator.baseline is not None else None
        self.distribution = distribution
        self.seed_generator = keras.random.SeedGenerator(_validation.check_seed(seed))

    def __call__(self, inputs, targets=None, training=True, jit_compile=False):
        """Returns (total loss, metrics dict, the policy's distribution) for one batch.

        `jit_compile`: whether XLA compiles the caller (see `rewards`).
        """
        import tensorflow as tf

        distribution = _as_distribution(self.policy(inputs, training=training), self.distribution)
        seed = _backend.tf_seed(self.seed_generator)  # distinct on every replica
        actions = tf.stop_gradient(distribution.sample(self.num_samples, seed=seed))  # [S, B, ...]
        # In float32 whatever the policy's dtype (float64, mixed precision), as the other losses are.
        log_prob = tf.cast(self._check_log_prob(distribution.log_prob(actions), inputs), tf.float32)
        # Independent components (e.g. Normal over a vector) multiply: sum their log-probabilities.
        log_prob = tf.reshape(log_prob, tf.concat([tf.shape(log_prob)[:2], [-1]], 0))
        log_prob = tf.reduce_sum(log_prob, axis=-1)  # [S, B]
        rewards = self.rewards(inputs, targets, actions, self.num_samples, jit_compile)

        total, metrics = self.estimator.loss(distribution, actions, log_prob, rewards, inputs, training=training)
        metrics = {"reward": tf.reduce_mean(rewards), **metrics}
        return total, metrics, distribution

    def apply_gradients(self, optimizer, inputs, targets, extra_losses=None, jit_compile=False):
        """One update of the policy (and a learned baseline); returns the metrics.

        `extra_losses`, if given, is called inside the tape (so that regularisation
        losses, computed when read, get their gradient) and returns a list of losses.
        """
        import tensorflow as tf

        with tf.GradientTape() as tape:
            total, metrics, _ = self(inputs, targets, training=True, jit_compile=jit_compile)
            losses = list(extra_losses()) if extra_losses is not None else []
            if losses:
                total = total + tf.add_n([tf.cast(loss, tf.float32) for loss in losses])
            # Optimizers sum gradients over tf.distribute replicas: average them instead.
            total = total / _backend.replicas_in_sync()
            variables = self.trainable_variables()
            if not optimizer.built:
                # Before scale_loss, which reads a LossScaleOptimizer's scale variable once it is built.
                optimizer.build(variables)
            # Mixed precision: a LossScaleOptimizer scales the loss up here and the gradients down when applying.
            # (The objective is float32 whatever the policy's dtype.)
            scale = tf.cast(optimizer.scale_loss(tf.constant(1.0)), tf.float32)
            scaled_total = total * scale
        gradients = tape.gradient(scaled_total, variables)
        # Per-variable sums in float32: a float64 policy may train next to a float32 baseline.
        squares = [tf.cast(tf.reduce_sum(tf.square(g)), tf.float32) for g in gradients if g is not None]
        metrics["gradient_norm"] = tf.sqrt(tf.add_n(squares) if squares else 0.0) / scale
        optimizer.apply_gradients([(g, v) for g, v in zip(gradients, variables) if g is not None])
        return metrics

    def _check_log_prob(self, log_prob, inputs):
        """`log_prob` of the [S, B, ...] actions must be [S, B, ...]: a distribution's batch is the inputs' batch."""
        import tensorflow as tf

        first_input = keras.tree.flatten(inputs)[0]
        batch_size, static_batch = tf.shape(first_input)[0], first_input.shape[0]
        message = (
            "The policy's distribution must have the batch of inputs as its first batch axis: log_prob of "
            f"{self.num_samples} samples per input should have shape [num_samples, batch_size, ...]; it has shape "
            f"{tuple(log_prob.shape)}. Check its batch_shape (e.g. a tfd.Independent whose "
            "reinterpreted_batch_ndims folds the batch axis into the event)."
        )
        if log_prob.shape.rank is not None and log_prob.shape.rank < 2:
            raise ValueError(message)
        if static_batch is not None and log_prob.shape[1] is not None and static_batch != log_prob.shape[1]:
            raise ValueError(message)
        with tf.control_dependencies([tf.debugging.assert_equal(tf.shape(log_prob)[1], batch_size, message=message)]):
            return tf.identity(log_prob)

    def rewards(self, inputs, targets, actions, num_samples, jit_compile=False):
        """Calls `reward_fn` once on all samples; returns rewards of shape [S, B]."""
        import tensorflow as tf

        sample_batch_shape = tf.shape(actions)[:2]
        flat_inputs = _repeat_inputs(inputs, num_samples)
        flat_actions = _flatten_samples(actions)
        if targets is None:
            rewards = self.reward_fn(flat_inputs, flat_actions)
        else:
            rewards = self.reward_fn(flat_inputs, flat_actions, _repeat_inputs(targets, num_samples))
        rewards = tf.convert_to_tensor(rewards)
        if rewards.shape.rank == 2 and rewards.shape[-1] == 1:
            rewards = rewards[:, 0]
        expected = None
        if actions.shape[0] is not None and actions.shape[1] is not None:
            expected = actions.shape[0] * actions.shape[1]
        message = (
            "`reward_fn` must return one reward per input and sample: a vector of length "
            f"num_samples * batch_size{f' = {expected}' if expected is not None else ''}; "
            f"received a tensor of shape {tuple(rewards.shape)}."
        )
        if rewards.shape.rank != 1 or (expected is not None and rewards.shape[0] not in (None, expected)):
            raise ValueError(message)
        rewards = tf.cast(rewards, "float32")
        if jit_compile:
            # XLA drops asserts, and reshapes a run-time length to [S, -1] without complaint (padding the
            # missing rewards with zeros): to [S, B], a wrong length at least fails when it is compiled.
            return tf.reshape(rewards, sample_batch_shape)
        check = tf.debugging.assert_equal(tf.size(rewards), tf.reduce_prod(sample_batch_shape), message=message)
        # [S, -1], not [S, B]: Grappler's constant folding takes every op to succeed, so a reshape to a
        # known [S, B] "proves" the length and folds `tf.size(rewards)`, and with it the check, to true;
        # the reshape's own error ("Input to reshape is a tensor with 15 values...") was what users saw.
        # With an unknown dimension the check stays, and the control dependency runs it first.
        with tf.control_dependencies([check]):
            return tf.reshape(rewards, [num_samples, -1])

    def trainable_variables(self):
        variables = list(self.policy.trainable_variables)
        for layer in self.estimator.layers:
            variables += [v for v in layer.trainable_variables if all(v is not w for w in variables)]
        return variables


def make_train_step(
    policy,
    reward_fn,
    optimizer,
    num_samples=1,
    baseline=None,
    entropy_weight=0.0,
    distribution=None,
    seed=None,
    jit_compile=False,
):
    """Builds a compiled REINFORCE training step for custom loops.

    Each call draws `num_samples` actions per input from the policy's
    distribution (vectorised: one `sample` call and one `reward_fn` call on
    `num_samples * batch_size` rows), forms `score_function_loss` with the
    chosen baseline, adds the entropy bonus, and applies the gradients.

    Args:
        policy: A Keras model (or layer) mapping inputs to logits (actions are
            then one-hot samples of `OneHotCategorical(logits)`), or to
            anything `distribution` turns into a TFP distribution. It may
            also return a `tfp.distributions.Distribution` directly.
        reward_fn: `reward_fn(inputs, actions) -> rewards`, one reward per row:
            it receives the inputs repeated `num_samples` times and the
            actions as a batch of `num_samples * batch_size` rows. If the step
            is called with targets, `reward_fn(inputs, actions, targets)`. A
            length known only at run time is checked when the step runs,
            except under XLA, which drops run-time checks.
        optimizer: A Keras optimizer, or its name (`"adam"`). A
            `LossScaleOptimizer` (mixed precision) scales the loss as in `fit`.
        num_samples: Actions drawn per input.
        baseline: `None`, `"leave_one_out"` (needs `num_samples >= 2`),
            `"moving_average"` or a `MovingAverageBaseline`, or a Keras model
            mapping inputs to a predicted reward (trained alongside, by mean
            squared error).
        entropy_weight: Non-negative weight of the entropy bonus.
        distribution: Optional callable `policy_output -> Distribution`
            (e.g. `lambda logits: tfd.Categorical(logits=logits)` for integer
            actions). Any distribution with `sample` and `log_prob` works.
        seed: Integer seed of the sampling stream.
        jit_compile: Compile the step with XLA.

    Returns:
        A `tf.function` `step(inputs, targets=None) -> dict` of metrics:
        `reward` (mean), `loss` (the surrogate), `gradient_norm`, and, when
        they apply, `baseline`, `baseline_loss`, `entropy`. The step's
        `baseline` attribute holds the moving-average layer, if any.
    """
    _require_tensorflow("make_train_step")
    import tensorflow as tf

    try:
        optimizer = keras.optimizers.get(optimizer)
    except ValueError as error:
        raise ValueError(_validation.invalid("optimizer", "a Keras optimizer or its name", optimizer)) from error
    objective = _Objective(policy, reward_fn, num_samples, baseline, entropy_weight, distribution, seed)

    @tf.function(jit_compile=jit_compile)
    def step(inputs, targets=None):
        return objective.apply_gradients(optimizer, inputs, targets, jit_compile=jit_compile)

    step.baseline = objective.baseline
    step.objective = objective
    return step


class ReinforceModel(TrackSeedState, keras.Model):
    """A Keras model trained by REINFORCE inside `compile` / `fit` / `evaluate`.

    `call` returns the policy's output (logits by default). `fit(x)` (or
    `fit(x, y)`, whose targets reach `reward_fn` as a third argument) runs the
    score-function update of `make_train_step`, so callbacks, distribution
    strategies' `fit` loop and `evaluate` work as for any model. `evaluate`
    reports the mean reward of sampled actions and, when the distribution has
    a mode, of the greedy actions (`greedy_reward`).

    Compile it with an optimizer only: `model.compile(optimizer="adam")`
    (under a mixed precision policy the loss is scaled as in Keras' `fit`).
    The REINFORCE objective is the loss, so `compile(loss=...)` (and
    `loss_weights`) raise a `ValueError` rather than be ignored: add other
    losses with `add_loss` in the policy's layers (or regularizers), which
    the train step includes through `model.losses`.
    `sample_weight` is refused: weigh the rewards in `reward_fn`. TensorFlow
    backend only. To save, save the policy (`model.policy.save`) or the
    weights (`model.save_weights`, `ModelCheckpoint`, `BackupAndRestore`),
    which include a moving-average baseline's state and the sampling stream.

    Args:
        policy: A Keras model mapping inputs to logits (or to what
            `distribution` expects).
        reward_fn: `reward_fn(inputs, actions[, targets]) -> rewards`, one per
            row of `num_samples * batch_size` (see `make_train_step`).
        num_samples: Actions drawn per input, vectorised.
        baseline: `None`, `"leave_one_out"`, `"moving_average"`, a
            `MovingAverageBaseline`, or a Keras model (learned baseline).
        entropy_weight: Non-negative weight of the entropy bonus.
        distribution: Optional callable `policy_output -> Distribution`;
            the default is `OneHotCategorical(logits)`.
        seed: Integer seed of the sampling stream.
        **kwargs: `keras.Model` keyword arguments (`name`, ...).

    Example:

    ```python
    policy = keras.Sequential([keras.Input((num_contexts,)), keras.layers.Dense(num_actions)])
    def reward_fn(contexts, actions):  # actions are one-hot
        return keras.ops.sum(actions * payoff_table_rows(contexts), axis=-1)
    model = keras_gumbel.ReinforceModel(policy, reward_fn, num_samples=4, baseline="leave_one_out")
    model.compile(optimizer="adam")
    model.fit(contexts, epochs=10)
    ```
    """

    def __init__(
        self,
        policy,
        reward_fn,
        num_samples=1,
        baseline=None,
        entropy_weight=0.0,
        distribution=None,
        seed=None,
        **kwargs,
    ):
        _require_tensorflow("ReinforceModel")
        super().__init__(**kwargs)
        self.policy = policy
        self._objective = _Objective(policy, reward_fn, num_samples, baseline, entropy_weight, distribution, seed)
        # Attributes, so that Keras tracks (and saves) the baseline and seed state.
        self.baseline = self._objective.baseline
        self.seed_generator = self._objective.seed_generator
        self.num_samples = self._objective.num_samples
        # Loss first, as Keras lists it. `evaluate` reports all but the last two
        # (`greedy_reward` needs a distribution with a mode; `gradient_norm` is
        # training-only), so its list lines up with `metrics_names` in order.
        names = dict.fromkeys(
            ["loss", "reward", *self._objective.estimator.metric_names, "greedy_reward", "gradient_norm"]
        )
        # Created up front: Keras (and tf.distribute) forbid new state once the model is built.
        self._trackers = {name: keras.metrics.Mean(name=name) for name in names}
        if getattr(policy, "built", False):
            self.built = True

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, **kwargs):
        # `train_step` never calls `compute_loss`: a compiled loss would be silently ignored.
        for name, value in (("loss", loss), ("loss_weights", loss_weights)):
            if value is not None:
                raise ValueError(
                    _validation.invalid(
                        name,
                        "None: the REINFORCE objective is ReinforceModel's loss (compile it with an optimizer "
                        "only). To add other losses, call `add_loss` in the policy's layers (or give them "
                        "regularizers): the train step includes `model.losses`",
                        value,
                    )
                )
        super().compile(optimizer=optimizer, **kwargs)

    def build(self, input_shape=None):
        if not self.policy.built and input_shape is not None:
            self.policy.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        return self.policy(inputs, training=training)

    def _track(self, metrics):
        for name, value in metrics.items():
            self._trackers[name].update_state(value)
        return {name: self._trackers[name].result() for name in metrics}

    @property
    def metrics(self):
        return list(self._trackers.values())

    @staticmethod
    def _unpack(data):
        inputs, targets, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError(
                "ReinforceModel does not use `sample_weight` (the rewards weigh the samples): scale the rewards "
                "in `reward_fn` instead, passing what it needs as targets (`fit(x, y)` gives `reward_fn(x, a, y)`)."
            )
        return inputs, targets

    def train_step(self, data):
        inputs, targets = self._unpack(data)
        return self._track(
            self._objective.apply_gradients(
                self.optimizer, inputs, targets, lambda: self.losses, jit_compile=self.jit_compile
            )
        )

    def test_step(self, data):
        import tensorflow as tf

        inputs, targets = self._unpack(data)
        _, metrics, distribution = self._objective(inputs, targets, training=False, jit_compile=self.jit_compile)
        try:
            mode = distribution.mode()
        except NotImplementedError:
            mode = None
        if mode is not None:
            greedy = tf.expand_dims(tf.cast(mode, distribution.dtype), 0)
            metrics["greedy_reward"] = tf.reduce_mean(
                self._objective.rewards(inputs, targets, greedy, 1, self.jit_compile)
            )
        return self._track(metrics)
