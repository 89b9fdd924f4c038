"""What `make_train_step` and `ReinforceModel` share: the policy's view, sampling, rewards, the estimator's loss.

Private to the training helpers (TensorFlow backend: `tf.GradientTape` and TensorFlow Probability).
"""

import keras
from keras import ops

from keras_gumbel import _backend
from keras_gumbel import _validation
from keras_gumbel.estimators.baselines import Baseline
from keras_gumbel.estimators.estimator import Estimator
from keras_gumbel.estimators.policy import DISTRIBUTIONS
from keras_gumbel.estimators.policy import Policy
from keras_gumbel.estimators.registry import get
from keras_gumbel.estimators.score_function import ScoreFunction


def _require_tensorflow(what):
    _backend.require_tensorflow(
        what,
        "uses tf.GradientTape and TensorFlow Probability",
        "The estimators' pure functions (`score_function_loss`, the baselines, ...) work on every backend.",
    )


def _check_distribution(distribution):
    if distribution is None or (callable(distribution) and not isinstance(distribution, str)):
        return distribution
    if distribution in DISTRIBUTIONS:
        return distribution
    raise (ValueError if isinstance(distribution, str) else TypeError)(
        _validation.invalid(
            "distribution",
            f"None, one of {tuple(DISTRIBUTIONS)} or a callable policy_output -> Distribution",
            distribution,
        )
    )


def _as_policy(policy_output, distribution):
    """The batch's `Policy`: built from the logits for a named distribution (or none), else read once."""
    from keras_gumbel.distributions import tfp_distributions

    tfd = tfp_distributions()
    if distribution is None and not isinstance(policy_output, tfd.Distribution):
        distribution = "one_hot_categorical"
    if isinstance(distribution, str):
        return Policy.from_logits(policy_output, distribution)
    result = policy_output if distribution is None else distribution(policy_output)
    if not callable(getattr(result, "log_prob", None)) or not callable(getattr(result, "sample", None)):
        raise TypeError(
            "The policy's distribution must have `sample` and `log_prob` methods (a "
            f"tfp.distributions.Distribution); received {result!r}."
        )
    return Policy.of(result)


def _flatten_samples(tensor):
    """[S, B, ...] -> [S * B, ...]."""
    shape = ops.shape(tensor)
    return ops.reshape(tensor, (-1, *shape[2:]))


def _num_samples(actions):
    """S of actions [S, B, ...]: an int when it is known when traced, else a scalar tensor."""
    size = actions.shape[0]
    return size if size is not None else ops.shape(actions)[0]


def _repeat_inputs(structure, num_samples):
    """Each input repeated for every sample, sample-major: [B, ...] -> [S * B, ...]."""

    def repeat(tensor):
        tensor = ops.convert_to_tensor(tensor)
        tiled = ops.repeat(ops.expand_dims(tensor, 0), num_samples, axis=0)
        return _flatten_samples(tiled)

    return keras.tree.map_structure(repeat, structure)


def _resolve_estimator(estimator, baseline, entropy_weight):
    """The estimator to train with: `estimator`, or `ScoreFunction(baseline, entropy_weight)` when it is `None`."""
    if estimator is None:
        return ScoreFunction(baseline, entropy_weight)
    if isinstance(estimator, (str, dict)):
        estimator = get(estimator)
    if not isinstance(estimator, Estimator):
        raise TypeError(
            _validation.invalid(
                "estimator",
                "None, a keras_gumbel.estimators.Estimator (e.g. ScoreFunction(...)) or a registered name",
                estimator,
            )
        )
    if baseline is not None or entropy_weight != 0.0:
        raise ValueError(
            "Pass either `estimator` or `baseline` / `entropy_weight`, not both: these two only build the "
            "default estimator, ScoreFunction(baseline, entropy_weight), so give them to the estimator instead "
            "(e.g. estimator=ScoreFunction(baseline='leave_one_out', entropy_weight=0.01)). "
            f"Received: estimator={estimator!r}, baseline={baseline!r}, entropy_weight={entropy_weight!r}"
        )
    return estimator


def _build_estimator(policy, estimator, input_shape=None):
    """`estimator.build(logits_shape)` once the built policy's output shape is known (else the first step builds)."""
    shape = None
    outputs = getattr(policy, "outputs", None)
    try:
        if outputs and len(outputs) == 1:
            shape = tuple(outputs[0].shape)
        elif input_shape is not None:
            shape = tuple(policy.compute_output_shape(input_shape))
    except Exception:  # a policy returning a distribution, or without compute_output_shape: built in the first step
        shape = None
    if shape and all(isinstance(size, int) for size in shape[1:]):
        estimator.build(shape)


def _apply_gradients(optimizer, tape, loss, variables):
    """Applies the gradients of `loss`, recorded on `tape`, to `variables`; returns their global norm.

    A `LossScaleOptimizer` (mixed precision) gets the gradients of
    `scale_loss(loss)`, as in Keras' `train_step`, and scales them down when
    applying them; the norm is reported unscaled.
    """
    import tensorflow as tf

    if not optimizer.built:
        # Before scale_loss, which reads a LossScaleOptimizer's scale variable once it is built.
        optimizer.build(variables)
    # The loss is float32 whatever the policy's dtype, and so is the scale.
    scale = tf.cast(optimizer.scale_loss(tf.constant(1.0)), tf.float32)
    # The gradients of `loss * scale`: backpropagation starts from `scale` instead of 1.
    gradients = tape.gradient(loss, variables, output_gradients=scale)
    # Per-variable sums in float32: a float64 policy may train next to a float32 baseline.
    if all(g is None for g in gradients):
        raise ValueError(
            "No gradient reaches the weights being trained (the policy's and the estimator's): the loss does not "
            "depend on them. With a pathwise estimator (Pathwise: 'gumbel_softmax', 'straight_through', "
            "'gumbel_rao', 'reinmax') `reward_fn` must be differentiable in the actions (no argmax, no cast to "
            "integers); a reward without a gradient needs the score function or another estimator of "
            "keras_gumbel.estimators.names(). Otherwise check that the policy is trainable."
        )
    squares = [tf.cast(tf.reduce_sum(tf.square(g)), tf.float32) for g in gradients if g is not None]
    norm = tf.sqrt(tf.add_n(squares) if squares else 0.0) / scale
    optimizer.apply_gradients([(g, v) for g, v in zip(gradients, variables) if g is not None])
    return norm


class _Objective:
    """What `make_train_step` and `ReinforceModel` share: sampling, rewards and the estimator's loss."""

    def __init__(self, policy, reward_fn, num_samples, distribution, seed, estimator, baseline, entropy_weight):
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
        distribution = _check_distribution(distribution)
        self.policy = policy
        self.reward_fn = reward_fn
        self.num_samples = _validation.check_int("num_samples", num_samples, minimum=1)
        self.estimator = _resolve_estimator(estimator, baseline, entropy_weight)
        self.estimator.check_num_samples(self.num_samples)
        if getattr(policy, "built", False):
            _build_estimator(policy, self.estimator)
        # A baseline's layer (a moving average, a learned model), which `step.baseline` and
        # `ReinforceModel.baseline` hold.
        baseline = getattr(self.estimator, "baseline", None)
        self.baseline = baseline.layer() if isinstance(baseline, Baseline) else None
        self.distribution = distribution
        self.seed = _validation.check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    @property
    def metric_names(self):
        """The metrics of a batch, in the order logs list them: the loss first, as Keras lists it, then the reward."""
        return tuple(dict.fromkeys(("loss", "reward", *self.estimator.metric_names)))

    def __call__(self, inputs, targets, policy_output, training=True, jit_compile=False):
        """Returns (loss, metrics) for one batch, given the policy's output on it.

        `jit_compile`: whether XLA compiles the caller (see `rewards`).
        """
        import tensorflow as tf

        distribution = _as_policy(policy_output, self.distribution)
        seed = _backend.tf_seed(self.seed_generator)  # distinct on every replica

        def evaluate(actions):
            return self.rewards(inputs, targets, actions, _num_samples(actions), jit_compile)

        def log_prob(actions):
            return self.log_prob(distribution, actions, inputs)

        loss, estimator_metrics, rewards = self.estimator.estimate(
            distribution, evaluate, log_prob, self.num_samples, seed, inputs, training
        )
        if set(estimator_metrics) != set(self.estimator.metric_names):
            raise ValueError(
                f"{type(self.estimator).__name__}.estimate returned the metrics {sorted(estimator_metrics)}, but its "
                f"metric_names are {list(self.estimator.metric_names)}: they must name the same metrics "
                "(ReinforceModel creates a tracker for each before training)."
            )
        loss = tf.cast(loss, tf.float32)
        # An estimator's own "loss" metric (ScoreFunction's surrogate) replaces the loss in the logs.
        metrics = {"loss": loss, "reward": tf.reduce_mean(rewards), **estimator_metrics}
        return loss, {name: metrics[name] for name in self.metric_names}

    def greedy_reward(self, inputs, targets, policy_output, jit_compile=False):
        """The mean reward of the distribution's mode, or `None` for a distribution without one."""
        import tensorflow as tf

        distribution = _as_policy(policy_output, self.distribution)
        try:
            mode = distribution.mode()
        except NotImplementedError:
            mode = None
        if mode is None:
            return None
        greedy = tf.expand_dims(tf.cast(mode, distribution.dtype), 0)
        return tf.reduce_mean(self.rewards(inputs, targets, greedy, 1, jit_compile))

    def log_prob(self, distribution, actions, inputs):
        """`log p(actions)` of actions [S, B, ...]: checked, float32, summed over independent components: [S, B]."""
        import tensorflow as tf

        # In float32 whatever the policy's dtype (float64, mixed precision), as the other losses are.
        log_prob = tf.cast(self._check_log_prob(distribution.log_prob(actions), inputs), tf.float32)
        # Independent components (e.g. Normal over a vector) multiply: sum their log-probabilities.
        log_prob = tf.reshape(log_prob, tf.concat([tf.shape(log_prob)[:2], [-1]], 0))
        return tf.reduce_sum(log_prob, axis=-1)  # [S, B]

    def _check_log_prob(self, log_prob, inputs):
        """`log_prob` of the [S, B, ...] actions must be [S, B, ...]: a distribution's batch is the inputs' batch."""
        import tensorflow as tf

        first_input = keras.tree.flatten(inputs)[0]
        batch_size, static_batch = tf.shape(first_input)[0], first_input.shape[0]
        message = (
            "The policy's distribution must have the batch of inputs as its first batch axis: log_prob of "
            "samples [num_samples, batch_size, ...] should have shape [num_samples, batch_size, ...]; it has shape "
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
