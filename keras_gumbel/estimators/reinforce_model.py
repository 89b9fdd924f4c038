"""`ReinforceModel`: a Keras model trained by an estimator inside `compile` / `fit` / `evaluate` (TensorFlow)."""

import inspect

import keras

from keras_gumbel import _backend
from keras_gumbel import _validation
from keras_gumbel.estimators._objective import _apply_gradients
from keras_gumbel.estimators._objective import _build_estimator
from keras_gumbel.estimators._objective import _Objective
from keras_gumbel.estimators._objective import _require_tensorflow
from keras_gumbel.estimators.registry import deserialize
from keras_gumbel.estimators.registry import serialize
from keras_gumbel.layers._seed_state import TrackSeedState

__all__ = ["ReinforceModel"]


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
    serializable_object = hasattr(function, "get_config") and hasattr(type(function), "from_config")
    # Keras finds a plain function again by its name; a method, a tf.function or a partial it cannot.
    if not inspect.isfunction(function) and not serializable_object:
        raise ValueError(
            f"{owner} cannot save `{name}`={function!r}: Keras saves a plain function (by its registered name) or "
            "an object of a registered class with `get_config` and `from_config`, and this is neither (a bound "
            "method, a tf.function or a functools.partial cannot be found again by name). Pass the plain Python "
            "function, defined with `def` and registered (`@keras.saving.register_keras_serializable("
            "package='my_package')`; the training helpers trace it themselves), or such an object; or save the "
            "weights only (`model.save_weights`, `ModelCheckpoint(..., save_weights_only=True)`)."
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
