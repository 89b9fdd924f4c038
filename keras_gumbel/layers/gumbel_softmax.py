"""The relaxed Gumbel-Softmax layer."""

import keras

from keras_gumbel import _validation
from keras_gumbel.layers._base import CategoricalLayer


@keras.saving.register_keras_serializable(package="keras_gumbel")
class GumbelSoftmax(CategoricalLayer):
    """Draws a relaxed one-hot sample (Gumbel-Softmax / Concrete) from logits.

    During training the layer returns

        y = softmax((logits + g) / temperature),  g ~ Gumbel(0, 1),

    a point on the simplex that is differentiable in `logits` (and in the
    temperature, if it is learned). As `temperature -> 0` samples approach
    one-hot samples of `Categorical(logits)`; as `temperature -> inf` they
    approach the uniform vector.

    At inference the layer is deterministic by default: the noise is set to
    zero and it returns `softmax(logits / temperature)`. Set
    `sample_at_inference=True` to keep sampling (stochastic policies,
    recommendations that should vary).

    Numerics: the noise and the softmax are computed in float32 (float64 for
    float64 inputs) and the result cast to the layer's compute dtype, so the
    layer is safe under `float16`, `bfloat16` and `mixed_float16` policies.
    `-inf` logits mask categories (exactly zero mass and gradient). A row
    whose logits are all `-inf` gives NaN, as `softmax` does (build padded
    logits with `keras_gumbel.ops.mask_logits` to keep such rows finite); NaN
    or `+inf` logits give NaN.

    Args:
        temperature: Positive finite float, the initial temperature. It is
            held in the scalar variable `layer.temperature`; assign to it (or
            use `keras_gumbel.TemperatureAnnealing`) to change it between steps
            without retracing compiled functions. At least `2**-104` (about
            4.9e-32, the temperature floor: below it `logits / temperature`
            overflows float32); a value assigned below it (0, negative) is
            read as the floor, the zero-temperature limit, so the samples
            never turn towards the least likely categories.
        axis: The category axis of the logits.
        sample_at_inference: If `True`, add noise at inference too.
        trainable_temperature: If `True`, the temperature is learned, kept at
            or above 0.05.
        seed: Integer seed of the layer's `keras.random.SeedGenerator`: the
            same seed gives the same stream of samples, each call a new draw.
        log_space: If `True`, return the log of the sample,
            `log_softmax((logits + g) / temperature)` (`exp` of it is the
            sample), computed in log space so that it stays finite where a
            float32 sample rounds to exact 0s and 1s; `distribution(logits)`
            then gives TFP's `ExpRelaxedOneHotCategorical`, whose `log_prob`
            of it is finite (for KL or entropy terms; see
            `keras_gumbel.ops.log_gumbel_softmax`).
        **kwargs: Base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: Floating tensor of logits (unnormalised log-probabilities).
            Integer inputs raise a `TypeError`.
        training: Python bool. `True`: a Gumbel-Softmax sample. `False` or
            `None`: `softmax(logits / temperature)`, or a sample if
            `sample_at_inference=True`.
        mask: A Keras mask, passed automatically (e.g. from an `Embedding`
            with `mask_zero=True`). If it covers the category axis (a mask
            of the inputs' rank, or `[batch, time]` with `axis=1` over time
            steps), masked categories are never chosen and get zero mass; a
            per-position mask (category axis last) passes through unchanged.

    Returns:
        A tensor with the shape of `inputs`, summing to 1 along `axis`.

    Examples:
        >>> import keras, keras_gumbel
        >>> layer = keras_gumbel.GumbelSoftmax(temperature=0.5, seed=0)
        >>> logits = keras.ops.log([[0.1, 0.2, 0.7]])
        >>> sample = layer(logits, training=True)
        >>> float(keras.ops.sum(sample))  # doctest: +ELLIPSIS
        1.0...

        At inference, no noise: `softmax(logits / 0.5)`.

        >>> probs = layer(logits, training=False)
        >>> keras.ops.convert_to_numpy(probs).tolist()  # doctest: +ELLIPSIS
        [[0.0185..., 0.0740..., 0.9074...]]

    Reference:
        - [Jang et al., 2017. Categorical Reparameterization with Gumbel-Softmax](https://arxiv.org/abs/1611.01144)
        - [Maddison et al., 2017. The Concrete Distribution](https://arxiv.org/abs/1611.00712)
    """

    _hard = False

    def __init__(
        self,
        temperature=1.0,
        axis=-1,
        sample_at_inference=False,
        trainable_temperature=False,
        seed=None,
        log_space=False,
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
        self.log_space = _validation.check_bool("log_space", log_space)

    def get_config(self):
        config = super().get_config()
        config["log_space"] = self.log_space
        return config
