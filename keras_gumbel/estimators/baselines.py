"""Baselines for the score-function estimator: what is subtracted from the reward to lower the variance.

A baseline `b` that does not depend on the sampled action leaves the estimate
unbiased. Pure maths on every backend (keras.ops only).

Reference:
    - [Kool, van Hoof, Welling, 2019. Buy 4 REINFORCE Samples, Get a Baseline for Free!](https://openreview.net/forum?id=r1lgTGL5DE)
"""

import keras
from keras import ops

from keras_gumbel import _validation

__all__ = ["leave_one_out_baseline", "MovingAverageBaseline"]


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
