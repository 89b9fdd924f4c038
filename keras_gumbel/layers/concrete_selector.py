"""The concrete selector layer of concrete autoencoders: a learned choice of `num_selected` input features."""

import keras
import numpy as np
from keras import ops

from keras_gumbel import _backend
from keras_gumbel import _sampling
from keras_gumbel import _validation
from keras_gumbel.layers._base import TemperatureLayer


@keras.saving.register_keras_serializable(package="keras_gumbel")
class ConcreteSelector(TemperatureLayer):
    """Selects `num_selected` of the `d` input features, learned through Concrete samples.

    The encoder of a concrete autoencoder (Abid, Balin & Zou, 2019). The layer
    holds `logits` `[num_selected, d]`, one row per selector. On inputs
    `[batch, d]` it returns `[batch, num_selected]`:

        training:   weights = softmax((logits + g) / temperature)
                    output  = inputs @ transpose(weights)
        inference:  output  = inputs[:, argmax(logits, axis=-1)]

    In training each selector draws one Concrete (Gumbel-Softmax) sample over
    the `d` features, a relaxed one-hot selection shared by the whole batch
    (as in the paper), so its output is a convex mix of features and the
    logits learn by gradient descent. At inference each selector returns
    exactly the feature of its largest logit (a gather, not a product, so
    the values are the input's own). `selected_indices()` lists them.

    The temperature is annealed from high (10: nearly uniform mixes) to low
    (0.01: one feature each) over training with
    `keras_gumbel.TemperatureAnnealing`; the paper's exponential schedule
    `T(b) = T0 * (TB / T0) ** (b / B)` over `B` steps is

        keras_gumbel.schedules.ExponentialDecay(
            10.0, rate=math.log(10.0 / 0.01) / B, minimum=0.01
        )

    Duplicates: each selector takes the argmax of its own row, so two
    selectors can settle on the same feature; the layer keeps both (the
    output then repeats that feature), as the reference implementation does
    (its `get_support(indices=True)` is the per-row argmax, repeats
    included). Fewer than `num_selected` distinct features are then in use:
    `numpy.unique(layer.selected_indices())` gives them. The reference code
    judges convergence by the mean over selectors of the largest selection
    probability (`max(softmax(logits))`, target 0.998); see
    `selection_probabilities()`.

    Args:
        num_selected: Positive integer k, the number of features selected.
        temperature: Positive finite float, the Concrete temperature, in the
            variable `layer.temperature` (the paper starts at 10): at least
            the floor `2**-104`, and read as the floor if assigned below it (see
            `GumbelSoftmax`).
        sample_at_inference: If `True`, inference keeps the relaxed
            training-time mix (a stochastic output).
        trainable_temperature: If `True`, the temperature is learned (kept
            >= 0.05).
        seed: Integer seed of the layer's `keras.random.SeedGenerator`.
        logits_initializer: Initializer of the logits `[num_selected, d]`
            (the reference code: Glorot normal).
        **kwargs: Base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: Floating tensor `[batch, d]`.
        training: Python bool. `True`: the relaxed selection. `False` or
            `None`: the selected features exactly.

    Returns:
        `[batch, num_selected]` in the layer's compute dtype.

    Raises:
        ValueError: For a bad argument, or inputs that are not `[batch, d]`
            with a known `d`.
        TypeError: For a non-integer `num_selected` or integer inputs.

    Examples:
        >>> import keras, numpy as np, keras_gumbel
        >>> selector = keras_gumbel.ConcreteSelector(2, seed=0)
        >>> x = np.arange(12.0).reshape(3, 4)
        >>> selector.build(x.shape)
        >>> _ = selector.logits.assign([[0.0, 0.0, 5.0, 0.0], [9.0, 0.0, 0.0, 0.0]])
        >>> selector.selected_indices().tolist()
        [2, 0]
        >>> keras.ops.convert_to_numpy(selector(x)).tolist()
        [[2.0, 0.0], [6.0, 4.0], [10.0, 8.0]]

    Reference:
        - [Abid, Balin & Zou, 2019. Concrete Autoencoders for Differentiable Feature Selection and
          Reconstruction](https://arxiv.org/abs/1901.09346)
        - [Maddison et al., 2017. The Concrete Distribution](https://arxiv.org/abs/1611.00712)
    """

    def __init__(
        self,
        num_selected,
        temperature=10.0,
        sample_at_inference=False,
        trainable_temperature=False,
        seed=None,
        logits_initializer="glorot_normal",
        **kwargs,
    ):
        super().__init__(
            temperature=temperature,
            sample_at_inference=sample_at_inference,
            trainable_temperature=trainable_temperature,
            seed=seed,
            **kwargs,
        )
        self.num_selected = _validation.check_int("num_selected", num_selected, minimum=1)
        self.logits_initializer = keras.initializers.get(logits_initializer)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(
                _validation.invalid("inputs", "a tensor of shape [batch, d] with a known d", f"<shape {input_shape}>")
            )
        self.logits = self.add_weight(
            name="logits", shape=(self.num_selected, input_shape[-1]), initializer=self.logits_initializer
        )
        self.built = True

    def call(self, inputs, training=None):
        inputs = ops.convert_to_tensor(inputs)
        _sampling.compute_dtype_for(inputs.dtype)  # a TypeError that names integer inputs
        if _validation.rank(inputs, "inputs") != 2:
            raise ValueError(
                _validation.invalid("inputs", "a tensor of shape [batch, d]", f"<shape {tuple(inputs.shape)}>")
            )
        if not self._add_noise(training):
            return _backend.take_argmax_columns(inputs, self.logits)
        if not training and _backend.export_freezes_input_free_draws():
            raise ValueError(
                f"Cannot export ConcreteSelector (layer {self.name!r}) with sample_at_inference=True to OpenVINO "
                "from the PyTorch backend: its one selection per call depends on no input, and OpenVINO computes "
                "such a draw once and returns it on every call. Export it to 'onnx', 'litert' or 'torch' (each "
                "draws anew on every call), to 'openvino' from the TensorFlow backend, or build the layer with "
                "sample_at_inference=False."
            )
        with self._draws(inputs, training):
            weights = _sampling.categorical(
                self.logits, self._current_temperature(), axis=1, hard=False, seed=self.seed_generator, add_noise=True
            )
        # (weights @ inputs^T)^T, not `inputs @ weights^T`: OpenVINO's CPU plugin multiplied by the transposed weights
        # wrongly when they hold a random draw (each selector's weights summed to 1.7-3.3 in the product, not 1).
        return ops.transpose(ops.matmul(ops.cast(weights, inputs.dtype), ops.transpose(inputs)))

    def selected_indices(self):
        """The feature each selector picks at inference: `argmax(logits, axis=-1)`.

        Returns:
            A NumPy int array `[num_selected]`, in selector order, duplicates
            included (see the class docstring).

        Raises:
            ValueError: Before the layer is built (it has no logits yet).
        """
        self._check_built()
        return np.asarray(ops.convert_to_numpy(ops.argmax(self.logits, axis=-1))).astype("int64")

    def selection_probabilities(self):
        """`softmax(logits)` per selector, `[num_selected, d]`, as a NumPy array.

        Its row maxima tell how settled each selector is; the reference code
        stops once their mean reaches 0.998.

        Returns:
            A float32 NumPy array whose rows sum to 1.

        Raises:
            ValueError: Before the layer is built.
        """
        self._check_built()
        return np.asarray(ops.convert_to_numpy(ops.softmax(ops.cast(self.logits, "float32"), axis=-1)))

    def _check_built(self):
        if not self.built:
            raise ValueError(
                f"ConcreteSelector {self.name!r} has no logits before it is built: call it on inputs "
                "(or call `build((batch, d))`) first."
            )

    def compute_output_shape(self, input_shape):
        return (tuple(input_shape)[0], self.num_selected)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_selected": self.num_selected,
                "logits_initializer": keras.initializers.serialize(self.logits_initializer),
            }
        )
        return config
