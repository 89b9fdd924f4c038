"""The relaxed Bernoulli (binary Concrete) layer."""

import keras

from keras_gumbel import _deprecation
from keras_gumbel import _sampling
from keras_gumbel import _validation
from keras_gumbel.layers._base import TemperatureLayer
from keras_gumbel.layers._base import renamed_argument


@keras.saving.register_keras_serializable(package="keras_gumbel")
class RelaxedBernoulli(TemperatureLayer):
    """Draws relaxed (or, with `hard=True`, exact) binary samples from log-odds.

    Every input entry is an independent binary variable with
    `P(1) = sigmoid(logits)`. During training the layer returns the binary
    Concrete (Gumbel-sigmoid) sample

        y = sigmoid((logits + L) / temperature),  L ~ Logistic(0, 1),

    or, with `hard=True`, the exact sample `1[logits + L > 0]` forward and
    the gradient of `y` backward (straight-through). At inference it returns
    `sigmoid(logits / temperature)` (relaxed) or `1[logits > 0]` (`hard=True`),
    unless `sample_at_inference=True`.

    Args:
        temperature: Positive finite float, held in the variable `layer.temperature`
            (annealed by `keras_gumbel.TemperatureAnnealing` like the other layers):
            at least the floor `2**-104`, and read as the floor if assigned below
            it (see `GumbelSoftmax`).
        hard: If `True`, exact 0/1 samples forward, the relaxed gradient
            backward. (Its old name, `straight_through`, still works until
            0.4.0, with a `FutureWarning`.)
        sample_at_inference: If `True`, sample at inference too.
        trainable_temperature: If `True`, the temperature is learned (kept >= 0.05).
        seed: Integer seed of the layer's `keras.random.SeedGenerator`.
        log_space: If `True`, return the relaxed sample's logit
            `(logits + L) / temperature` (`sigmoid` of it is the sample),
            which stays finite where a float32 sample rounds to exactly 0 or
            1; `distribution(logits)` then gives its law,
            `tfd.Logistic(logits / temperature, 1 / temperature)`, whose
            `log_prob` of it is finite. Not with `hard=True`.
        **kwargs: Base layer keyword arguments.

    Call arguments:
        inputs: Floating tensor of log-odds.
        training: Python bool: sample (`True`) or not (`False`, `None`).

    Returns:
        A tensor with the shape of `inputs`, in [0, 1] (exactly 0 or 1 with
        `hard=True`).

    Examples:
        >>> import keras, keras_gumbel
        >>> layer = keras_gumbel.RelaxedBernoulli(hard=True, seed=0)
        >>> logits = keras.ops.convert_to_tensor([[-2.0, 3.0]])
        >>> keras.ops.convert_to_numpy(layer(logits)).tolist()  # 1[logits > 0]
        [[0.0, 1.0]]

    Reference:
        - [Maddison et al., 2017. The Concrete Distribution](https://arxiv.org/abs/1611.00712)
        - [Jang et al., 2017](https://arxiv.org/abs/1611.01144)
    """

    def __init__(
        self,
        temperature=1.0,
        hard=False,
        sample_at_inference=False,
        trainable_temperature=False,
        seed=None,
        log_space=False,
        **kwargs,
    ):
        hard = renamed_argument(kwargs, "RelaxedBernoulli", "straight_through", "hard", hard, default=False)
        super().__init__(
            temperature=temperature,
            sample_at_inference=sample_at_inference,
            trainable_temperature=trainable_temperature,
            seed=seed,
            **kwargs,
        )
        self.hard = _validation.check_bool("hard", hard)
        self.supports_masking = True  # element-wise: a Keras mask passes through
        self.log_space = _validation.check_bool("log_space", log_space)
        if log_space and hard:
            raise ValueError(
                _validation.invalid("log_space", "False with hard=True (exact 0/1 samples have no logit)", log_space)
            )

    @property
    def straight_through(self):
        """Deprecated since 0.3.0: `hard`. (Read without a warning: Keras reads every attribute of a layer it saves.)"""
        return self.hard

    @straight_through.setter
    def straight_through(self, value):
        _deprecation.warn(
            f"`RelaxedBernoulli.straight_through` is deprecated since keras-gumbel 0.3.0 {_deprecation._REMOVED}: "
            "use `hard`."
        )
        self.hard = _validation.check_bool("hard", value)

    def call(self, inputs, training=None):
        inputs = keras.ops.convert_to_tensor(inputs)
        with self._draws(inputs, training):
            return _sampling.bernoulli(
                inputs,
                self._current_temperature(),
                self.hard,
                self.seed_generator,
                self._add_noise(training),
                self.log_space,
                differentiable=bool(training),
            )

    def distribution(self, logits):
        """`tfd.RelaxedBernoulli(temperature, logits)`; `tfd.Bernoulli(logits)` with `hard=True`;
        `tfd.Logistic(logits / temperature, 1 / temperature)` with `log_space=True`."""
        from keras_gumbel import distributions

        tfd = distributions.tfp_distributions()
        logits = keras.ops.convert_to_tensor(logits)
        if self.hard:
            return tfd.Bernoulli(logits=logits, dtype=logits.dtype)
        if self.log_space:
            location = distributions.layer_temperature(self, logits.dtype, lambda t: logits / t, logits.shape)
            scale = distributions.layer_temperature(self, logits.dtype, lambda t: 1.0 / t)
            return tfd.Logistic(location, scale)
        return tfd.RelaxedBernoulli(distributions.layer_temperature(self, logits.dtype), logits=logits)

    def get_config(self):
        config = super().get_config()
        config["hard"] = self.hard
        config["log_space"] = self.log_space
        return config
