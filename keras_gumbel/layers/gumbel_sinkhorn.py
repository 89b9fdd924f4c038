"""The Gumbel-Sinkhorn layer: relaxed or exact permutation matrices from square score matrices."""

import keras

from keras_gumbel import _backend
from keras_gumbel import _validation
from keras_gumbel import ops as gumbel_ops
from keras_gumbel.layers._base import TemperatureLayer


@keras.saving.register_keras_serializable(package="keras_gumbel")
class GumbelSinkhorn(TemperatureLayer):
    """Turns square score matrices into relaxed (or exact) permutation matrices (Mena et al., 2018).

    The input `log_alpha` [..., N, N] scores assigning row `i` (an item) to
    column `j` (a position). In training the layer returns the
    Gumbel-Sinkhorn sample

        S = sinkhorn((log_alpha + g) / temperature),  g ~ Gumbel(0, 1) per entry,

    a doubly stochastic matrix (up to the `num_iterations` rounds of row and
    column normalisation), or with `hard=True` the exact permutation matrix
    of the maximum-weight assignment of `log_alpha + g` forward (computed in
    the graph by the Hungarian algorithm) and the gradient of `S` backward.

    At inference there is no noise, and by default the output is exact: the
    permutation matrix of the maximum-weight assignment of `log_alpha`, as
    Mena et al. evaluate their Sinkhorn networks ("at test time one may use
    the actual matching"). A model trained on relaxed matrices is then served
    exact ones; `hard_at_inference=False` keeps the relaxed, noise-free
    `sinkhorn(log_alpha / temperature)` instead (with `hard=False`).
    `sample_at_inference=True` keeps the noise at inference.

    Args:
        temperature: Positive finite float, held in the variable
            `layer.temperature` (annealed by `keras_gumbel.TemperatureAnnealing`):
            at least the floor `2**-104`, and read as the floor if assigned below
            it (see `GumbelSoftmax`).
        num_iterations: Positive integer: Sinkhorn rounds (one loop in the graph).
        hard: If `True`, exact permutation matrices in training too
            (straight-through: the gradient of the relaxed matrix).
        hard_at_inference: If `True` (the default), exact permutation matrices
            at inference; if `False` (and `hard=False`), the relaxed one.
        sample_at_inference: If `True`, add the noise at inference too.
        trainable_temperature: If `True`, the temperature is learned (kept >= 0.05).
        seed: Integer seed of the layer's `keras.random.SeedGenerator`.
        **kwargs: Base layer keyword arguments.

    Call arguments:
        inputs: Floating tensor [..., N, N] of scores (N known). `-inf`
            forbids an entry (never assigned, zero mass, zero gradient).
        training: Python bool: sample (`True`) or not (`False`, `None`).

    Returns:
        A tensor with the shape of `inputs`: doubly stochastic, or an exact
        0/1 permutation matrix (rows and columns sum to exactly 1). Row `i`
        of a permutation matrix `P` has its 1 at the position of item `i`:
        `transpose(P) @ items` puts the items in order.

    Examples:
        >>> import keras, keras_gumbel
        >>> layer = keras_gumbel.GumbelSinkhorn(temperature=0.5, seed=0)
        >>> log_alpha = keras.ops.convert_to_tensor(
        ...     [[[3.0, 0.0, 0.0], [0.0, 0.0, 3.0], [0.0, 3.0, 0.0]]]
        ... )

        At inference, the maximum-weight assignment, exactly:

        >>> keras.ops.convert_to_numpy(layer(log_alpha)).tolist()
        [[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]]

    Reference:
        - [Mena, Belanger, Linderman, Snoek, 2018. Learning Latent
          Permutations with Gumbel-Sinkhorn Networks](https://arxiv.org/abs/1802.08665)
    """

    def __init__(
        self,
        temperature=1.0,
        num_iterations=20,
        hard=False,
        hard_at_inference=True,
        sample_at_inference=False,
        trainable_temperature=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            temperature=temperature,
            sample_at_inference=sample_at_inference,
            trainable_temperature=trainable_temperature,
            seed=seed,
            **kwargs,
        )
        self.num_iterations = _validation.check_int("num_iterations", num_iterations, minimum=1)
        self.hard = _validation.check_bool("hard", hard)
        self.hard_at_inference = _validation.check_bool("hard_at_inference", hard_at_inference)

    def build(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) < 2 or shape[-1] != shape[-2] or shape[-1] in (None, 0):
            raise ValueError(
                _validation.invalid("inputs", "square matrices [..., N, N] with a known N >= 1", f"<shape {shape}>")
            )
        self.built = True

    def call(self, inputs, training=None):
        hard = self.hard or (not training and self.hard_at_inference)
        if hard:
            self._check_exportable()
        temperature = self._current_temperature()
        if self._add_noise(training):
            with self._draws(inputs, training):
                return gumbel_ops.gumbel_sinkhorn(
                    inputs, temperature, self.num_iterations, hard=hard, seed=self.seed_generator
                )
        return gumbel_ops.sinkhorn(inputs, temperature, self.num_iterations, hard=hard)

    def _check_exportable(self):
        """Refuses, at export, an export that cannot hold the hard assignment (its loops run until it converges).

        Exported where TensorFlow traces it (SavedModel, LiteRT, OpenVINO); refused for ONNX from TensorFlow
        (tf2onnx's conversion of the loops returned other permutations), from JAX (the assignment needs the batch
        size when traced) and from PyTorch (exported programs cannot hold its data-dependent loops).
        """
        if not _backend.export_without_loops():
            return
        name = _backend.backend()
        where = {"tensorflow": "to ONNX from the TensorFlow backend"}.get(name, f"from the {name} backend")
        raise ValueError(
            f"Cannot export GumbelSinkhorn (layer {self.name!r}) with hard permutations (hard=True or "
            f"hard_at_inference=True) {where}: its assignment runs loops until it converges, which this exporter "
            "cannot hold. Build the layer with hard_at_inference=False (the relaxed matrices export everywhere; "
            "round them to permutations where the model is served), or export from the TensorFlow backend with "
            "format='tf_saved_model', 'litert' or 'openvino'."
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_iterations": self.num_iterations, "hard": self.hard, "hard_at_inference": self.hard_at_inference}
        )
        return config
