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
from keras_gumbel.layers._seed_state import TrackSeedState

__all__ = [
    "score_function_terms",
    "score_function_loss",
    "leave_one_out_baseline",
    "MovingAverageBaseline",
    "make_train_step",
    "ReinforceModel",
]


def _static_shape(tensor):
    """The static shape as a tuple of ints and `None`s, or `None` where even the rank is unknown."""
    shape = tensor.shape
    if getattr(shape, "rank", 0) is None:  # a tf.TensorShape of unknown rank
        return None
    return tuple(size if isinstance(size, int) else None for size in shape)


def _shape_error(name, shape, expected):
    # The wording of `_validation.invalid`, with the shape (not the whole tensor) as the received value.
    return ValueError(
        f"Invalid value received for argument `{name}`. Expected {expected}. Received: {name}.shape={shape}"
    )


def _check_shapes(log_prob, reward, baseline):
    """Refuses a reward (or baseline) whose broadcast against `log_prob` would change the shape of the terms.

    Broadcasting hides the mistake: a reward of shape [B, 1] against a log_prob
    of shape [B] gives [B, B] terms whose mean credits every sample with the
    batch's mean reward, and the learning signal is lost without an error.
    Only static shapes are compared (sizes unknown when traced are skipped):
    a run-time assert would cost every step on every backend.
    """
    log_prob_shape, reward_shape = _static_shape(log_prob), _static_shape(reward)
    if log_prob_shape is not None and reward_shape is not None:
        same = len(reward_shape) == len(log_prob_shape) and all(
            r is None or p is None or r == p for r, p in zip(reward_shape, log_prob_shape)
        )
        if not same:
            raise _shape_error(
                "reward",
                reward_shape,
                f"one reward per sample: the shape of `log_prob`, {log_prob_shape} (broadcasting a reward of "
                "another shape against it would pair samples with other samples' rewards)",
            )
    baseline_shape = None if baseline is None else _static_shape(baseline)
    if reward_shape is not None and baseline_shape is not None:
        # A scalar (a moving average), or one value per input ([1, B] or [B] against [S, B] rewards), is
        # fine: what is refused is a baseline that would make the terms larger than the rewards.
        aligned = reward_shape[len(reward_shape) - len(baseline_shape) :]
        fits = len(baseline_shape) <= len(reward_shape) and all(
            b is None or r is None or b in (1, r) for b, r in zip(baseline_shape, aligned)
        )
        if not fits:
            raise _shape_error(
                "baseline",
                baseline_shape,
                f"a scalar or a shape that broadcasts to the shape of `reward`, {reward_shape}, without changing it",
            )


def score_function_terms(log_prob, reward, baseline=None):
    """Per-sample surrogate terms whose gradients are score-function estimates.

    Each term is `-stop_gradient(reward - baseline) * log_prob`; its gradient
    is one sample's estimate of `-grad E[reward]`. Returning the terms (not
    only their mean) lets callers measure the estimator's variance.

    Args:
        log_prob: `log p_theta(a)` of the sampled actions, differentiable in
            theta (a tensor, NumPy array or list).
        reward: Rewards of the same samples, of the shape of `log_prob` (a
            reward of shape [B, 1] against a log_prob of shape [B] is refused:
            broadcast to [B, B], it would credit every sample with the mean
            reward); no gradient flows through them.
        baseline: `None`, a scalar, or a value that broadcasts to `reward`
            without changing its shape (e.g. one value per input, [1, B] or
            [B], against rewards [S, B]). It must not depend on the sampled
            action for the estimate to stay unbiased; no gradient flows
            through it.

    Returns:
        A tensor of the shape of `log_prob`.

    Raises:
        ValueError: If the static shapes of `reward` or `baseline` do not fit
            (sizes unknown when traced are not checked).
    """
    log_prob = ops.convert_to_tensor(log_prob)
    advantage = ops.convert_to_tensor(reward)
    if baseline is not None:
        baseline = ops.convert_to_tensor(baseline)
    _check_shapes(log_prob, advantage, baseline)
    if baseline is not None:
        advantage = ops.subtract(advantage, baseline)
    advantage = ops.stop_gradient(ops.cast(advantage, log_prob.dtype))
    return ops.negative(ops.multiply(advantage, log_prob))


def score_function_loss(log_prob, reward, baseline=None):
    """A scalar loss whose gradient is an unbiased estimate of `-grad E[reward]`.

    Minimising it maximises the expected reward. It is the mean of
    `score_function_terms(log_prob, reward, baseline)`.

    Example:

    >>> import keras, keras_gumbel
    >>> log_prob = keras.ops.log([0.2, 0.5, 0.5])
    >>> reward = keras.ops.convert_to_tensor([1.0, 0.0, 2.0])
    >>> round(float(keras_gumbel.reinforce.score_function_loss(log_prob, reward)), 4)
    0.9986
    """
    return ops.mean(score_function_terms(log_prob, reward, baseline))


def leave_one_out_baseline(rewards, axis=0):
    """For each sample, the mean reward of the other samples of the same input.

        b_i = (sum_j r_j - r_i) / (n - 1)

    `b_i` does not depend on sample i, so the estimate stays unbiased (Kool et
    al., 2019). Needs at least two samples along `axis`.

    Args:
        rewards: Tensor of rewards with the samples along `axis`.
        axis: The sample axis.

    Returns:
        A tensor with the shape of `rewards`.
    """
    rewards = ops.convert_to_tensor(rewards)
    axis = _validation.check_axis(_validation.check_int("axis", axis), len(rewards.shape))
    num_samples = rewards.shape[axis]
    if num_samples is not None and num_samples < 2:
        raise ValueError(
            _validation.invalid(
                "rewards", f"at least 2 samples along axis {axis} for a leave-one-out baseline", tuple(rewards.shape)
            )
        )
    if num_samples is None:
        num_samples = ops.cast(ops.shape(rewards)[axis], rewards.dtype)
    total = ops.sum(rewards, axis=axis, keepdims=True)
    return ops.divide(ops.subtract(total, rewards), ops.subtract(num_samples, 1))


@keras.saving.register_keras_serializable(package="keras_gumbel")
class MovingAverageBaseline(keras.layers.Layer):
    """An exponential moving average of past mean rewards, used as a baseline.

    Called on a batch of rewards, it returns the (bias-corrected) average of
    the earlier batches, then, when `training`, folds this batch's mean in:

        average <- decay * average + (1 - decay) * mean(rewards)
        baseline = average / (1 - decay ** count)      (0 before any update)

    The returned value does not depend on the current rewards, so the
    estimate stays unbiased. Its state is two non-trainable variables, saved
    with the model.

    Args:
        decay: Float in [0, 1).
        **kwargs: Base layer keyword arguments.
    """

    def __init__(self, decay=0.99, **kwargs):
        super().__init__(**kwargs)
        self.decay = _validation.check_real("decay", decay, "a float in [0, 1)", lambda value: 0 <= value < 1)
        self.average = self.add_weight(
            name="average", shape=(), initializer="zeros", trainable=False, dtype="float32", autocast=False
        )
        self.count = self.add_weight(
            name="count", shape=(), initializer="zeros", trainable=False, dtype="float32", autocast=False
        )

    def build(self, input_shape):
        self.built = True

    def value(self):
        """The current baseline: the bias-corrected average, or 0 before any update."""
        correction = ops.subtract(1.0, ops.power(self.decay, self.count))
        return ops.where(self.count > 0, ops.divide(self.average, ops.maximum(correction, 1e-12)), 0.0)

    def call(self, rewards, training=None):
        baseline = self.value()
        if training:
            batch_mean = ops.mean(ops.stop_gradient(ops.cast(rewards, "float32")))
            self.average.assign(ops.add(ops.multiply(self.decay, self.average), (1.0 - self.decay) * batch_mean))
            self.count.assign(ops.add(self.count, 1.0))
        return baseline

    def compute_output_shape(self, input_shape):
        return ()

    def get_config(self):
        config = super().get_config()
        config["decay"] = self.decay
        return config


def _require_tensorflow(what):
    if _backend.backend() != "tensorflow":
        raise RuntimeError(
            f"{what} uses tf.GradientTape and TensorFlow Probability, so it needs the TensorFlow backend "
            f"(KERAS_BACKEND=tensorflow); the running backend is {_backend.backend()!r}. "
            "`score_function_loss` and the baselines work on every backend."
        )


_BASELINES = "None, 'leave_one_out', 'moving_average', a MovingAverageBaseline or a Keras model"


def _resolve_baseline(baseline, num_samples):
    """Returns (kind, object): kind is None, 'leave_one_out', 'moving_average' or 'learned'."""
    if baseline is None:
        return None, None
    if isinstance(baseline, str):
        if baseline == "leave_one_out":
            if num_samples < 2:
                raise ValueError(
                    _validation.invalid(
                        "num_samples", "at least 2 with baseline='leave_one_out' (the others' mean)", num_samples
                    )
                )
            return "leave_one_out", None
        if baseline == "moving_average":
            return "moving_average", MovingAverageBaseline()
        raise ValueError(_validation.invalid("baseline", _BASELINES, baseline))
    if isinstance(baseline, MovingAverageBaseline):
        return "moving_average", baseline
    if isinstance(baseline, keras.layers.Layer):
        return "learned", baseline
    raise TypeError(_validation.invalid("baseline", _BASELINES, baseline))


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
        self.baseline_kind, self.baseline = _resolve_baseline(baseline, self.num_samples)
        self.entropy_weight = _validation.check_non_negative("entropy_weight", entropy_weight)
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

        metrics = {"reward": tf.reduce_mean(rewards)}
        baseline, extra_loss = None, 0.0
        if self.baseline_kind == "leave_one_out":
            baseline = leave_one_out_baseline(rewards, axis=0)
        elif self.baseline_kind == "moving_average":
            baseline = self.baseline(rewards, training=training)
        elif self.baseline_kind == "learned":
            predicted = self.baseline(inputs, training=training)
            if predicted.shape.rank not in (None, 1) and not (predicted.shape.rank == 2 and predicted.shape[-1] == 1):
                raise ValueError(
                    "A learned baseline must predict one reward per input, of shape [batch_size] or "
                    f"[batch_size, 1]; the baseline model returned shape {tuple(predicted.shape)}."
                )
            predicted = tf.reshape(tf.cast(predicted, rewards.dtype), [1, -1])
            extra_loss = tf.reduce_mean(tf.square(predicted - tf.stop_gradient(rewards)))
            metrics["baseline_loss"] = extra_loss
            baseline = predicted
        if baseline is not None:
            metrics["baseline"] = tf.reduce_mean(baseline)
        loss = score_function_loss(log_prob, rewards, baseline)
        metrics["loss"] = loss
        total = loss + extra_loss
        if self.entropy_weight:
            entropy = tf.cast(tf.reduce_mean(distribution.entropy()), tf.float32)
            metrics["entropy"] = entropy
            total = total - self.entropy_weight * entropy
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
        if self.baseline_kind == "learned":
            variables += [v for v in self.baseline.trainable_variables if all(v is not w for w in variables)]
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
        names = ["loss", "reward"]
        if self._objective.baseline_kind is not None:
            names.append("baseline")
        if self._objective.baseline_kind == "learned":
            names.append("baseline_loss")
        if self._objective.entropy_weight:
            names.append("entropy")
        names += ["greedy_reward", "gradient_norm"]
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
