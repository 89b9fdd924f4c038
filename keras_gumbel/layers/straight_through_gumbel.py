"""The straight-through Gumbel-Softmax layer."""

import keras

from keras_gumbel import _validation
from keras_gumbel import ops as gumbel_ops
from keras_gumbel.layers._base import CategoricalLayer

GRADIENT_ESTIMATORS = ("straight_through", "gumbel_rao", "reinmax")


@keras.saving.register_keras_serializable(package="keras_gumbel")
class StraightThroughGumbel(CategoricalLayer):
    """Draws an exact one-hot sample forward, with the Gumbel-Softmax gradient backward.

    During training the forward value is

        z = one_hot(argmax(logits + g)),  g ~ Gumbel(0, 1),

    an exact sample of `Categorical(logits)` (the Gumbel-max trick), and the
    backward pass uses the gradient of the relaxed sample
    `y = softmax((logits + g) / temperature)` for the same `g`: the
    straight-through Gumbel-Softmax estimator. The temperature only shapes the
    gradient: the sample never reads it. A value assigned to
    `layer.temperature` below the temperature floor (`2**-104`; 0, negative)
    is read as the floor, so the gradient is never sign-flipped or NaN. The
    forward value is exactly 0 and 1 (it is not computed as
    `z - stop_gradient(y) + y`, which rounding can move off 0 and 1). It is
    `keras_gumbel.ops.gumbel_softmax(..., hard=True)` as a layer (PyTorch's
    `F.gumbel_softmax(..., hard=True)`): `GumbelSoftmax` made hard, as
    `hard=True` makes the other layers.

    At inference the layer is deterministic by default and returns
    `one_hot(argmax(logits))` (the mode); `sample_at_inference=True` keeps
    sampling.

    Numerics: as `GumbelSoftmax`. A row whose logits are all `-inf` (nothing
    to choose), or that holds NaN or `+inf`, gives a NaN row: never a one-hot
    on a masked category.

    Args:
        temperature: Positive finite float, the temperature of the relaxed
            gradient, held in the scalar variable `layer.temperature`: at
            least the floor `2**-104`, and read as the floor if assigned below
            it (see `GumbelSoftmax`).
        axis: The category axis of the logits.
        sample_at_inference: If `True`, sample at inference too.
        trainable_temperature: If `True`, the temperature is learned (it gets
            a gradient through the relaxed backward pass), kept >= 0.05. Not
            with `gradient_estimator="reinmax"`, whose gradient formula gives
            the temperature none (a `ValueError`).
        seed: Integer seed of the layer's `keras.random.SeedGenerator`.
        gradient_estimator: The backward pass: `"straight_through"` (the
            relaxed gradient, the default), `"gumbel_rao"` (its average over
            `num_draws` Gumbel draws conditioned on the sample: the same mean,
            less variance; `keras_gumbel.ops.gumbel_rao`) or `"reinmax"`
            (a second-order gradient, best near temperature 1;
            `keras_gumbel.ops.reinmax`). The forward sample is the same law.
        num_draws: Conditional draws for `"gumbel_rao"`.
        **kwargs: Base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: Floating tensor of logits. Integer inputs raise a `TypeError`.
        training: Python bool. `True`: a one-hot sample. `False` or `None`:
            `one_hot(argmax(logits))`, or a sample if `sample_at_inference=True`.
        mask: A Keras mask, passed automatically (e.g. from an `Embedding`
            with `mask_zero=True`). If it covers the category axis (a mask
            of the inputs' rank, or `[batch, time]` with `axis=1` over time
            steps), masked categories are never chosen and get zero mass; a
            per-position mask (category axis last) passes through unchanged.

    Returns:
        A one-hot tensor with the shape of `inputs`.

    Examples:
        >>> import keras, keras_gumbel
        >>> layer = keras_gumbel.StraightThroughGumbel(seed=0)
        >>> logits = keras.ops.log([[0.1, 0.2, 0.7]])
        >>> mode = layer(logits, training=False)
        >>> keras.ops.convert_to_numpy(mode).tolist()
        [[0.0, 0.0, 1.0]]

    Reference:
        - [Jang et al., 2017. Categorical Reparameterization with Gumbel-Softmax](https://arxiv.org/abs/1611.01144)
        - [Bengio et al., 2013. Estimating or Propagating Gradients Through Stochastic Neurons](https://arxiv.org/abs/1308.3432)
    """

    _hard = True

    def __init__(
        self,
        temperature=1.0,
        axis=-1,
        sample_at_inference=False,
        trainable_temperature=False,
        seed=None,
        gradient_estimator="straight_through",
        num_draws=10,
        **kwargs,
    ):
        super().__init__(
            temperature=temperature,
            axis=axis,
            sample_at_inference=sample_at_inference,
            trainable_temperature=trainable_temperature,
            seed=seed,
            **kwargs,
        )
        if gradient_estimator not in GRADIENT_ESTIMATORS:
            raise ValueError(
                _validation.invalid("gradient_estimator", f"one of {GRADIENT_ESTIMATORS}", gradient_estimator)
            )
        if gradient_estimator == "reinmax" and trainable_temperature:
            raise ValueError(
                _validation.invalid(
                    "trainable_temperature",
                    'False with gradient_estimator="reinmax" (ReinMax\'s temperature shapes its gradient '
                    'formula and gets no gradient; learn it with "straight_through" or "gumbel_rao")',
                    trainable_temperature,
                )
            )
        self.gradient_estimator = gradient_estimator
        self.num_draws = _validation.check_int("num_draws", num_draws, minimum=1)

    def _draw(self, inputs, temperature, axis, add_noise, differentiable=True):
        # Their forward is the plain sample's: at inference (not differentiable) the plain one, no custom gradient.
        if add_noise and differentiable and self.gradient_estimator == "gumbel_rao":
            return gumbel_ops.gumbel_rao(inputs, temperature, self.num_draws, axis=axis, seed=self.seed_generator)
        if add_noise and differentiable and self.gradient_estimator == "reinmax":
            return gumbel_ops.reinmax(inputs, temperature, axis=axis, seed=self.seed_generator)
        return super()._draw(inputs, temperature, axis, add_noise, differentiable)

    def get_config(self):
        config = super().get_config()
        config.update({"gradient_estimator": self.gradient_estimator, "num_draws": self.num_draws})
        return config
