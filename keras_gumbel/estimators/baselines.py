"""Baselines for the score-function estimator: what is subtracted from the reward to lower its variance.

A baseline `b` that does not depend on the sampled action leaves the estimate
unbiased. Every baseline is a `Baseline`: given the rewards [S, B] of S
samples of each of B inputs, the inputs and `training`, `estimate` returns the
baseline's value, the loss that trains it (0 for all but a learned one) and
its metrics. `get` turns the `baseline=` argument of `ScoreFunction`,
`make_train_step` and `ReinforceModel` into one:

| `baseline=` | object |
| --- | --- |
| `None` | `None` (no baseline) |
| `"leave_one_out"` | `LeaveOneOut()`: the mean reward of the other samples of the same input |
| `"moving_average"` | `MovingAverageBaseline()`: a moving average of past batches' mean reward |
| a `MovingAverageBaseline` or any `Baseline` | itself |
| a Keras model or layer | `Learned(model)`: `model(inputs)`, regressed on the reward |

Pure maths on every backend (keras.ops only).

Reference:
    - [Williams, 1992](https://doi.org/10.1007/BF00992696)
    - [Kool, van Hoof, Welling, 2019. Buy 4 REINFORCE Samples, Get a Baseline for Free!](https://openreview.net/forum?id=r1lgTGL5DE)
"""

import keras
from keras import ops

from keras_gumbel import _validation
from keras_gumbel.estimators.registry import Configurable

__all__ = [
    "Baseline",
    "LeaveOneOut",
    "Learned",
    "MovingAverageBaseline",
    "deserialize",
    "get",
    "leave_one_out_baseline",
    "serialize",
]


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


class Baseline(Configurable):
    """The interface of a baseline: a value subtracted from the rewards, the loss that trains it, its metrics.

    A subclass sets `metric_names` and implements `estimate`; one that keeps
    state or weights in a Keras layer returns it from `layer()`, so that the
    training helpers train its weights alongside the policy and
    `ReinforceModel` saves it. `check_num_samples` refuses a number of
    samples per input the baseline cannot work with.
    """

    #: The names of the metrics `estimate` returns, in the order logs list them.
    metric_names = ("baseline",)

    def layer(self):
        """The Keras layer holding the baseline's state or weights, or `None`.

        A method, not a property: a `MovingAverageBaseline` returns itself, and
        Keras' saving walks a layer's attributes (loading weights recursed
        without end through an attribute that holds the layer itself).
        """
        return None

    def check_num_samples(self, num_samples):
        """Raises a `ValueError` if `num_samples` samples per input are too few for this baseline."""

    def estimate(self, rewards, inputs, training=None):
        """The baseline for rewards [S, B] of S samples of each of B inputs.

        Args:
            rewards: Tensor [S, B] (float32), without gradient.
            inputs: The batch of B inputs the samples were drawn for.
            training: Whether this is a training step (a moving average is
                updated only then).

        Returns:
            `(value, loss, metrics)`: `value` a scalar or a tensor that
            broadcasts to [S, B] without changing it ([1, B], [B]), not
            depending on the sampled actions; `loss` the loss that trains the
            baseline (`0.0` if nothing does); `metrics` a dict with a value
            for each of `metric_names`.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement `estimate`.")


@keras.saving.register_keras_serializable(package="keras_gumbel")
class LeaveOneOut(Baseline):
    """For each sample, the mean reward of the other samples of the same input (`leave_one_out_baseline`).

    Needs at least two samples per input; the rewards are [S, B], samples
    along axis 0.

    Reference:
        - [Kool, van Hoof, Welling, 2019](https://openreview.net/forum?id=r1lgTGL5DE)
    """

    def check_num_samples(self, num_samples):
        if num_samples < 2:
            raise ValueError(
                _validation.invalid(
                    "num_samples", "at least 2 with baseline='leave_one_out' (the others' mean)", num_samples
                )
            )

    def estimate(self, rewards, inputs, training=None):
        value = leave_one_out_baseline(rewards, axis=0)
        return value, 0.0, {"baseline": ops.mean(value)}


@keras.saving.register_keras_serializable(package="keras_gumbel")
class Learned(Baseline):
    """A Keras model's prediction of the reward of an input, trained alongside by mean squared error.

        b(x) = model(x)          loss = mean((b(x) - reward) ** 2)

    `b(x)` depends on the input only, not on the sampled action, so the
    estimate stays unbiased; the rewards reach its loss without gradient.

    Args:
        model: A Keras model (or layer) mapping the inputs to one predicted
            reward per input, of shape [B] or [B, 1].
    """

    metric_names = ("baseline", "baseline_loss")

    def __init__(self, model):
        if not isinstance(model, keras.layers.Layer):
            raise TypeError(
                _validation.invalid("model", "a Keras model or layer mapping inputs to a predicted reward", model)
            )
        self.model = model

    def layer(self):
        return self.model

    def get_config(self):
        # The model's architecture; its weights are saved with the layers of whatever holds the baseline.
        return {"model": keras.saving.serialize_keras_object(self.model)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        return cls(**config)

    def estimate(self, rewards, inputs, training=None):
        rewards = ops.convert_to_tensor(rewards)
        predicted = self.model(inputs, training=training)
        shape = predicted.shape
        rank = None if getattr(shape, "rank", 0) is None else len(shape)  # a tf.TensorShape of unknown rank
        if rank not in (None, 1) and not (rank == 2 and shape[-1] == 1):
            raise ValueError(
                "A learned baseline must predict one reward per input, of shape [batch_size] or "
                f"[batch_size, 1]; the baseline model returned shape {tuple(predicted.shape)}."
            )
        predicted = ops.reshape(ops.cast(predicted, rewards.dtype), (1, -1))  # one value per input, for [S, B]
        loss = ops.mean(ops.square(ops.subtract(predicted, ops.stop_gradient(rewards))))
        return predicted, loss, {"baseline": ops.mean(predicted), "baseline_loss": loss}


@keras.saving.register_keras_serializable(package="keras_gumbel")
class MovingAverageBaseline(Baseline, keras.layers.Layer):
    """An exponential moving average of past mean rewards, used as a baseline.

    Called on a batch of rewards, it returns the (bias-corrected) average of
    the earlier batches, then, when `training`, folds this batch's mean in:

        average <- decay * average + (1 - decay) * mean(rewards)
        baseline = average / (1 - decay ** count)      (0 before any update)

    The returned value does not depend on the current rewards, so the
    estimate stays unbiased. Its state is two non-trainable variables, saved
    with the model. It is a `Baseline` (`estimate`) and a Keras layer (call
    it on rewards).

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

    def layer(self):
        return self

    def estimate(self, rewards, inputs, training=None):
        value = self(rewards, training=training)
        return value, 0.0, {"baseline": ops.mean(value)}

    def compute_output_shape(self, input_shape):
        return ()

    def get_config(self):
        # The layer's config (name, dtype, ...): Baseline's, first in the bases, knows no layer arguments.
        config = keras.layers.Layer.get_config(self)
        config["decay"] = self.decay
        return config

    @classmethod
    def from_config(cls, config):
        return super(Baseline, cls).from_config(config)


_BASELINES = (
    "None, 'leave_one_out', 'moving_average', a MovingAverageBaseline, a Baseline, a Keras model or a serialized "
    "baseline (a dict from `serialize`)"
)


def serialize(baseline):
    """A baseline's config as Keras serializes objects, or `None` for no baseline."""
    return None if baseline is None else keras.saving.serialize_keras_object(baseline)


def deserialize(config, custom_objects=None):
    """The baseline a `serialize` config describes (`None` for `None`)."""
    if config is None:
        return None
    baseline = keras.saving.deserialize_keras_object(config, custom_objects=custom_objects)
    if not isinstance(baseline, Baseline):
        raise TypeError(_validation.invalid("baseline", "the config of a Baseline", config))
    return baseline


def get(identifier):
    """The `Baseline` for a `baseline=` argument (see the module's table), or `None`.

    Raises:
        ValueError: For a string that names no baseline.
        TypeError: For anything else that is not a baseline or a Keras layer.
    """
    if identifier is None or isinstance(identifier, Baseline):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        if identifier == "leave_one_out":
            return LeaveOneOut()
        if identifier == "moving_average":
            return MovingAverageBaseline()
        raise ValueError(_validation.invalid("baseline", _BASELINES, identifier))
    if isinstance(identifier, keras.layers.Layer):
        return Learned(identifier)
    raise TypeError(_validation.invalid("baseline", _BASELINES, identifier))
