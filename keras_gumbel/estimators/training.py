"""Training with an estimator: `make_train_step` for custom loops, `ReinforceModel` for `fit` (TensorFlow).

Both draw `num_samples` actions per input from the policy's distribution (one
vectorised `sample` call and one `reward_fn` call on `num_samples *
batch_size` rows), hand the actions, their log-probabilities [S, B] and
rewards [S, B] to an `Estimator` (by default `ScoreFunction(baseline,
entropy_weight)`), and minimise the loss it returns, logging its metrics.
They use `tf.GradientTape` and TensorFlow Probability: TensorFlow backend
only (the estimators themselves run on every backend).
"""

import keras
from keras import ops

from keras_gumbel import _backend
from keras_gumbel import _validation
from keras_gumbel.estimators.baselines import Baseline
from keras_gumbel.estimators.estimator import Estimator
from keras_gumbel.estimators.registry import deserialize
from keras_gumbel.estimators.registry import get
from keras_gumbel.estimators.registry import serialize
from keras_gumbel.estimators.score_function import ScoreFunction
from keras_gumbel.layers._seed_state import TrackSeedState

__all__ = ["make_train_step", "ReinforceModel"]


def _require_tensorflow(what):
    if _backend.backend() != "tensorflow":
        raise RuntimeError(
            f"{what} uses tf.GradientTape and TensorFlow Probability, so it needs the TensorFlow backend "
            f"(KERAS_BACKEND=tensorflow); the running backend is {_backend.backend()!r}. "
            "The estimators (`score_function_loss`, the baselines, `ScoreFunction`) work on every backend."
        )


# The distributions `distribution=` knows by name, from the policy's logits; saved by name.
_NAMED_DISTRIBUTIONS = ("one_hot_categorical", "categorical", "bernoulli")


def _named_distribution(name, logits):
    from keras_gumbel.distributions import tfp_distributions

    tfd = tfp_distributions()
    if name == "one_hot_categorical":
        return tfd.OneHotCategorical(logits=logits, dtype="float32")
    if name == "categorical":
        return tfd.Categorical(logits=logits)
    # One independent bit an entry of logits [B, ...]: the batch axis alone is the distribution's batch.
    bits = tfd.Bernoulli(logits=logits, dtype="float32")
    return tfd.Independent(bits, reinterpreted_batch_ndims=len(logits.shape) - 1)


def _check_distribution(distribution):
    if distribution is None or (callable(distribution) and not isinstance(distribution, str)):
        return distribution
    if distribution in _NAMED_DISTRIBUTIONS:
        return distribution
    raise (ValueError if isinstance(distribution, str) else TypeError)(
        _validation.invalid(
            "distribution",
            f"None, one of {_NAMED_DISTRIBUTIONS} or a callable policy_output -> Distribution",
            distribution,
        )
    )


def _serialize_function(name, function, owner):
    """A function argument as Keras saves one: by its registered name; a clear error where it cannot be."""
    if isinstance(function, str) or function is None:
        return function
    if getattr(function, "__name__", None) == "<lambda>":
        raise ValueError(
            f"{owner} cannot save `{name}`, a lambda: Keras saves a function by its name. Define it with `def` and "
            "register it, `@keras.saving.register_keras_serializable(package='my_package')`, or pass it to "
            f"`keras.models.load_model(..., custom_objects={{'my_{name}': my_{name}}})`; or save the weights only "
            "(`model.save_weights`, `ModelCheckpoint(..., save_weights_only=True)`). "
            f"Received: {name}={function!r}"
        )
    if not hasattr(function, "get_config") and not hasattr(function, "__name__"):
        raise ValueError(
            f"{owner} cannot save `{name}`={function!r}: it is neither a function nor an object with `get_config`. "
            "Use a registered function (`@keras.saving.register_keras_serializable(package='my_package')`) or a "
            "registered class with `get_config`, or save the weights only."
        )
    return keras.saving.serialize_keras_object(function)


def _deserialize_function(name, config, owner, custom_objects=None):
    if config is None or isinstance(config, str):
        return config
    try:
        return keras.saving.deserialize_keras_object(config, custom_objects=custom_objects)
    except (TypeError, ValueError) as error:
        function_name = config.get("config") if isinstance(config.get("config"), str) else config.get("class_name")
        raise type(error)(
            f"{owner} could not load its `{name}`, {function_name!r}: Keras finds a function by its registered name. "
            "Register it where it is defined, `@keras.saving.register_keras_serializable(package='my_package')`, "
            f"or pass it to `keras.models.load_model(..., custom_objects={{{function_name!r}: {function_name}}})`. "
            f"({error})"
        ) from error


def _as_distribution(policy_output, distribution):
    from keras_gumbel.distributions import tfp_distributions

    tfd = tfp_distributions()
    if isinstance(distribution, str):
        result = _named_distribution(distribution, policy_output)
    elif distribution is not None:
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

        distribution = _as_distribution(policy_output, self.distribution)
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

        distribution = _as_distribution(policy_output, self.distribution)
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
    estimator=None,
):
    """Builds a compiled REINFORCE training step for custom loops.

    Each call draws `num_samples` actions per input from the policy's
    distribution (vectorised: one `sample` call and one `reward_fn` call on
    `num_samples * batch_size` rows), hands them to the estimator (by default
    `ScoreFunction(baseline, entropy_weight)`: `score_function_loss` with the
    chosen baseline and the entropy bonus), and applies the gradients of its
    loss.

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
            squared error). See `keras_gumbel.estimators.baselines`.
        entropy_weight: Non-negative weight of the entropy bonus.
        distribution: `None` (`"one_hot_categorical"`), a name:
            `"one_hot_categorical"` (one-hot actions of logits [B, ..., K]),
            `"categorical"` (integer actions) or `"bernoulli"` (one
            independent bit per entry of logits [B, ...]); or a callable
            `policy_output -> Distribution` (e.g. `lambda logits:
            tfd.Normal(logits, 1.0)`): any distribution with `sample` and
            `log_prob` works.
        seed: Integer seed of the sampling stream.
        jit_compile: Compile the step with XLA.
        estimator: A `keras_gumbel.estimators.Estimator`, or a registered
            name (`"disarm"`, see `keras_gumbel.estimators.names()`) or
            config, to use instead of `ScoreFunction(baseline,
            entropy_weight)`; giving it with `baseline` or `entropy_weight`
            raises a `ValueError`.

    Returns:
        A `tf.function` `step(inputs, targets=None) -> dict` of metrics:
        `loss` (the surrogate), `reward` (mean), the estimator's (for
        `ScoreFunction`, when they apply, `baseline`, `baseline_loss`,
        `entropy`) and `gradient_norm`. The step's `estimator` attribute holds
        the estimator, its `baseline` attribute a baseline's layer (a moving
        average, a learned model), if any, its `optimizer` the optimizer, and
        its `state` a `tf.Module` tracking everything training changes (the
        policy, the optimizer, the estimator's layers, the sampling stream):
        `tf.train.Checkpoint(step=step.state)` saves it, and restoring it
        into a step built the same way resumes the run exactly.
    """
    _require_tensorflow("make_train_step")
    import tensorflow as tf

    try:
        optimizer = keras.optimizers.get(optimizer)
    except ValueError as error:
        raise ValueError(_validation.invalid("optimizer", "a Keras optimizer or its name", optimizer)) from error
    objective = _Objective(policy, reward_fn, num_samples, distribution, seed, estimator, baseline, entropy_weight)

    @tf.function(jit_compile=jit_compile)
    def step(inputs, targets=None):
        with tf.GradientTape() as tape:
            policy_output = objective.policy(inputs, training=True)
            loss, metrics = objective(inputs, targets, policy_output, training=True, jit_compile=jit_compile)
            # Optimizers sum gradients over tf.distribute replicas: average them instead.
            loss = loss / _backend.replicas_in_sync()
        metrics["gradient_norm"] = _apply_gradients(optimizer, tape, loss, objective.trainable_variables())
        return metrics

    step.baseline = objective.baseline
    step.estimator = objective.estimator
    step.objective = objective
    step.optimizer = optimizer
    step.state = _step_state(objective, optimizer)
    return step


def _step_state(objective, optimizer):
    """A `tf.Module` tracking all a step's training state, for `tf.train.Checkpoint(step=step.state)`."""
    import tensorflow as tf

    state = tf.Module(name="train_step_state")
    state.policy = objective.policy
    state.optimizer = optimizer
    state.estimator_layers = list(objective.estimator.layers)
    state.seed_generator_state = objective.seed_generator.state
    return state


@keras.saving.register_keras_serializable(package="keras_gumbel")
class ReinforceModel(TrackSeedState, keras.Model):
    """A Keras model trained by REINFORCE inside `compile` / `fit` / `evaluate`.

    `call` returns the policy's output (logits by default); `compute_loss`
    samples actions from it and returns the estimator's loss (by default
    `ScoreFunction(baseline, entropy_weight)`, as in `make_train_step`) plus
    `model.losses`. `fit(x)` (or `fit(x, y)`, whose targets reach `reward_fn`
    as a third argument) minimises it, so callbacks, distribution strategies'
    `fit` loop and `evaluate` work as for any model. `evaluate` reports the
    mean reward of sampled actions and, when the distribution has a mode, of
    the greedy actions (`greedy_reward`).

    Compile it with an optimizer only: `model.compile(optimizer="adam")`
    (under a mixed precision policy the loss is scaled as in Keras' `fit`).
    The REINFORCE objective is the loss, so `compile(loss=...)` (and
    `loss_weights`) raise a `ValueError` rather than be ignored: add other
    losses with `add_loss` in the policy's layers (or regularizers), which
    `compute_loss` includes through `model.losses`.
    `sample_weight` is refused: weigh the rewards in `reward_fn`. TensorFlow
    backend only.

    It saves as any Keras model: `model.save("m.keras")`,
    `ModelCheckpoint("ckpt.keras")` (or `.weights.h5`, `save_best_only`),
    `BackupAndRestore`; `keras.models.load_model` gives it back with the
    policy, the estimator and its layers (a moving-average baseline's state,
    a learned baseline, RELAX's network), the optimizer's state and the
    sampling stream, so that training resumed from the file continues the
    run exactly. `reward_fn` (and a callable `distribution`) are saved by
    name: define them with `def` and register them
    (`@keras.saving.register_keras_serializable(package="my_package")`), or
    pass them to `load_model` in `custom_objects`.

    Args:
        policy: A Keras model mapping inputs to logits (or to what
            `distribution` expects).
        reward_fn: `reward_fn(inputs, actions[, targets]) -> rewards`, one per
            row of `num_samples * batch_size` (see `make_train_step`).
        num_samples: Actions drawn per input, vectorised.
        baseline: `None`, `"leave_one_out"`, `"moving_average"`, a
            `MovingAverageBaseline`, or a Keras model (learned baseline).
        entropy_weight: Non-negative weight of the entropy bonus.
        distribution: `None` (one-hot categorical), `"one_hot_categorical"`,
            `"categorical"`, `"bernoulli"`, or a callable `policy_output ->
            Distribution` (see `make_train_step`). Names save with the
            model; a callable saves by its registered name.
        seed: Integer seed of the sampling stream.
        estimator: A `keras_gumbel.estimators.Estimator`, or a registered
            name or config (`keras_gumbel.estimators.get`), to use instead of
            `ScoreFunction(baseline, entropy_weight)` (not with those two).
        **kwargs: `keras.Model` keyword arguments (`name`, ...).

    Examples:
        ```python
        policy = keras.Sequential(
            [keras.Input((num_contexts,)), keras.layers.Dense(num_actions)]
        )

        def reward_fn(contexts, actions):  # actions are one-hot
            return keras.ops.sum(actions * payoffs(contexts), axis=-1)

        model = keras_gumbel.ReinforceModel(
            policy, reward_fn, num_samples=4, baseline="leave_one_out"
        )
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
        estimator=None,
        **kwargs,
    ):
        _require_tensorflow("ReinforceModel")
        super().__init__(**kwargs)
        self.policy = policy
        self._objective = _Objective(
            policy, reward_fn, num_samples, distribution, seed, estimator, baseline, entropy_weight
        )
        self.estimator = self._objective.estimator
        # Attributes, so that Keras tracks (and saves) the estimator's layers and the seed state. A baseline's
        # layer keeps the attribute (and the path in weight files) it always had, `baseline`.
        self.baseline = self._objective.baseline
        self.estimator_layers = [layer for layer in self.estimator.layers if layer is not self.baseline]
        self.seed_generator = self._objective.seed_generator
        self.num_samples = self._objective.num_samples
        # `evaluate` reports all but the last two (`greedy_reward` needs a distribution with a mode;
        # `gradient_norm` is training-only), so its list lines up with `metrics_names` in order.
        names = [*self._objective.metric_names, "greedy_reward", "gradient_norm"]
        # Created up front: Keras (and tf.distribute) forbid new state once the model is built.
        self._trackers = {name: keras.metrics.Mean(name=name) for name in names}
        if getattr(policy, "built", False):
            self.built = True

    def get_config(self):
        """The model's config: the policy's, the estimator's (`estimators.serialize`) and the functions' names.

        `reward_fn` (and a callable `distribution`) are saved as Keras saves
        functions, by their registered name: register them with
        `@keras.saving.register_keras_serializable(package=...)`, or pass them
        to `load_model` in `custom_objects`. A lambda cannot be saved: the
        error says so when the model is saved.
        """
        seed = self._objective.seed
        return {
            **super().get_config(),
            "policy": keras.saving.serialize_keras_object(self.policy),
            "reward_fn": _serialize_function("reward_fn", self._objective.reward_fn, "ReinforceModel"),
            "num_samples": self.num_samples,
            "distribution": _serialize_function("distribution", self._objective.distribution, "ReinforceModel"),
            "seed": seed if isinstance(seed, int) else None,  # a SeedGenerator's state is saved as a weight
            "estimator": serialize(self.estimator),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["policy"] = keras.saving.deserialize_keras_object(config["policy"], custom_objects=custom_objects)
        for name in ("reward_fn", "distribution"):
            config[name] = _deserialize_function(name, config.get(name), "ReinforceModel", custom_objects)
        config["estimator"] = deserialize(config["estimator"], custom_objects=custom_objects)
        return cls(**config)

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, **kwargs):
        # `compute_loss` is the REINFORCE objective: a compiled loss would be silently ignored.
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

    def save(self, filepath, *args, **kwargs):
        # The config first: a reward_fn that cannot be saved fails here, before Keras opens (and leaves) a file.
        self.get_config()
        return super().save(filepath, *args, **kwargs)

    def compile_from_config(self, config):
        # `load_model` compiles through this: Keras' own skips a model whose `compile` is overridden.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            # The optimizer's variables now, in the order the train step builds them, so that a saved
            # optimizer state (moments, iterations) loads into them and training resumes where it stopped.
            self.optimizer.build(self._objective.trainable_variables())

    def build(self, input_shape=None):
        if not self.policy.built and input_shape is not None:
            self.policy.build(input_shape)
            _build_estimator(self.policy, self.estimator, input_shape)
        self.built = True

    def call(self, inputs, training=None):
        return self.policy(inputs, training=training)

    @property
    def metrics(self):
        return list(self._trackers.values())

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The loss of a batch: the estimator's, on actions sampled from `y_pred`, plus `model.losses`.

        Args:
            x: The inputs, which reach `reward_fn` (and a learned baseline).
            y: Targets, passed to `reward_fn` as its third argument, or `None`.
            y_pred: The policy's output on `x` (`model(x)`).
            sample_weight: Must be `None`: weigh the rewards in `reward_fn`.
            training: Whether this is a training step (a moving-average
                baseline is updated only then).

        Returns:
            A float32 scalar, divided by the number of `tf.distribute`
            replicas (their gradients are summed). The metrics (`loss`,
            `reward` and the estimator's) are updated.
        """
        import tensorflow as tf

        if sample_weight is not None:
            raise ValueError(
                "ReinforceModel does not use `sample_weight` (the rewards weigh the samples): scale the rewards "
                "in `reward_fn` instead, passing what it needs as targets (`fit(x, y)` gives `reward_fn(x, a, y)`)."
            )
        loss, metrics = self._objective(x, y, y_pred, training=training, jit_compile=self.jit_compile)
        for name, value in metrics.items():
            self._trackers[name].update_state(value)
        losses = self.losses
        if losses:
            loss = loss + tf.add_n([tf.cast(extra, tf.float32) for extra in losses])
        # Optimizers sum gradients over tf.distribute replicas: average them instead.
        return loss / _backend.replicas_in_sync()

    def train_step(self, data):
        # Keras' own train_step but for `gradient_norm`: it needs the gradients, which Keras keeps to itself.
        import tensorflow as tf

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            loss = self.compute_loss(x, y, self(x, training=True), sample_weight, training=True)
        gradient_norm = _apply_gradients(self.optimizer, tape, loss, self._objective.trainable_variables())
        self._trackers["gradient_norm"].update_state(gradient_norm)
        return self._logs([*self._objective.metric_names, "gradient_norm"])

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        self.compute_loss(x, y, y_pred, sample_weight, training=False)
        names = list(self._objective.metric_names)
        greedy_reward = self._objective.greedy_reward(x, y, y_pred, self.jit_compile)
        if greedy_reward is not None:
            self._trackers["greedy_reward"].update_state(greedy_reward)
            names.append("greedy_reward")
        return self._logs(names)

    def _logs(self, names):
        return {name: self._trackers[name].result() for name in names}
