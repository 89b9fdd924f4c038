"""The straight-through Gumbel-Softmax layer."""

import keras

from keras_gumbel.layers._base import BaseGumbelLayer


@keras.saving.register_keras_serializable(package="keras_gumbel")
class StraightThroughGumbel(BaseGumbelLayer):
    """Draws an exact one-hot sample forward, with the Gumbel-Softmax gradient backward.

    During training the forward value is

        z = one_hot(argmax(logits + g)),  g ~ Gumbel(0, 1),

    an exact sample of `Categorical(logits)` (the Gumbel-max trick), and the
    backward pass uses the gradient of the relaxed sample
    `y = softmax((logits + g) / temperature)` for the same `g`: the
    straight-through Gumbel-Softmax estimator. The temperature only shapes the
    gradient. The forward value is exactly 0 and 1 (it is not computed as
    `z - stop_gradient(y) + y`, which rounding can move off 0 and 1).

    At inference the layer is deterministic by default and returns
    `one_hot(argmax(logits))` (the mode); `sample_at_inference=True` keeps
    sampling.

    Numerics: as `GumbelSoftmax`. A row whose logits are all `-inf` (nothing
    to choose), or that holds NaN or `+inf`, gives a NaN row: never a one-hot
    on a masked category.

    Args:
        temperature: Positive finite float, the temperature of the relaxed
            gradient, held in the scalar variable `layer.temperature`.
        axis: The category axis of the logits.
        sample_at_inference: If `True`, sample at inference too.
        trainable_temperature: If `True`, the temperature is learned (it gets
            a gradient through the relaxed backward pass), kept >= 0.05.
        seed: Integer seed of the layer's `keras.random.SeedGenerator`.
        **kwargs: Base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: Floating tensor of logits. Integer inputs raise a `TypeError`.
        training: Python bool. `True`: a one-hot sample. `False` or `None`:
            `one_hot(argmax(logits))`, or a sample if `sample_at_inference=True`.

    Returns:
        A one-hot tensor with the shape of `inputs`.

    Example:

    >>> import keras, keras_gumbel
    >>> layer = keras_gumbel.StraightThroughGumbel(seed=0)
    >>> logits = keras.ops.log([[0.1, 0.2, 0.7]])
    >>> keras.ops.convert_to_numpy(layer(logits, training=False)).tolist()
    [[0.0, 0.0, 1.0]]

    Reference:
        - [Jang et al., 2017. Categorical Reparameterization with Gumbel-Softmax](https://arxiv.org/abs/1611.01144)
        - [Bengio et al., 2013. Estimating or Propagating Gradients Through Stochastic Neurons](https://arxiv.org/abs/1308.3432)
    """

    _hard = True
