"""The Gumbel vector quantizer of wav2vec 2.0: codebook entries chosen per group by straight-through Gumbel samples."""

import keras
from keras import ops

from keras_gumbel import _sampling
from keras_gumbel import _validation
from keras_gumbel.layers._base import TemperatureLayer


@keras.saving.register_keras_serializable(package="keras_gumbel")
class GumbelVectorQuantizer(TemperatureLayer):
    """Quantizes each feature vector to a concatenation of learned codevectors, one per group.

    The quantizer of wav2vec 2.0 (Baevski et al., 2020). Each input vector
    (the last axis; a time step of `[batch, time, features]`) is projected to
    `num_groups * num_codes` logits, read as `num_groups` groups of
    `num_codes` logits. Each group chooses one of its `num_codes` entries of
    a learned codebook of `num_groups * num_codes` codevectors of size
    `code_dim / num_groups`, and the chosen codevectors are concatenated:

        logits = inputs @ kernel + bias             [..., groups, codes]
        codes  = one_hot(argmax(logits + g))        (training; g ~ Gumbel)
               = one_hot(argmax(logits))            (inference)
        output = concat_g(codes_g @ codebook_g)     [..., code_dim]

    In training the choice is an exact sample of `Categorical(logits)` per
    group with the straight-through gradient of
    `softmax((logits + g) / temperature)` (as `StraightThroughGumbel`), so
    the projection and the codebook both learn; at inference it is the
    argmax (`sample_at_inference=True` keeps sampling).

    Codebook usage is measured by the perplexity of the batch-averaged
    probabilities of each group, summed over the groups:

        p_g = mean over the (unmasked) vectors of probs_g
        perplexity = sum_g exp(-sum_v p_gv * log(p_gv))    (0 log 0 = 0)

    It lies between `num_groups` (every vector uses the same code) and
    `num_groups * num_codes` (all codes used equally). In training `probs`
    is `softmax(logits)` (no noise, no temperature; fairseq's
    `prob_perplexity`), and the layer adds the diversity loss

        diversity_weight * (G * V - perplexity) / (G * V)

    with `add_loss`; at inference `probs` is the chosen one-hot codes (how
    many codes are in use; fairseq's `code_perplexity`). Both are what
    Hugging Face's `Wav2Vec2GumbelVectorQuantizer` returns. The perplexity
    of the last training call is kept in the non-trainable variable
    `layer.perplexity` (a model's state on every backend, so callbacks can
    log it after `fit` steps), and `return_perplexity=True` returns it with
    the output. Hugging Face and fairseq multiply the diversity loss by the
    number of masked time steps, because their contrastive loss is a sum
    over them; here it is added as is, for a loss that is a mean.

    The temperature anneals with `keras_gumbel.TemperatureAnnealing`;
    wav2vec 2.0's `max(2 * 0.999995**step, 0.5)` is

        keras_gumbel.schedules.ExponentialDecay(
            2.0, rate=-math.log(0.999995), minimum=0.5
        )

    Masks: a Keras mask over the vectors (`[batch, time]` for
    `[batch, time, features]`, e.g. from `keras.layers.Masking`) excludes
    masked vectors from the perplexity (and so from the diversity loss) and
    passes on unchanged; their outputs are computed like any other. With
    every vector masked, the averaged probabilities are taken as 0 and the
    perplexity is `num_groups`. Hugging Face's `mask_time_indices` plays the
    same role.

    Args:
        num_groups: Positive integer G, the number of codebooks (groups).
        num_codes: Positive integer V, the entries of each codebook.
        code_dim: Positive integer, the size of the output vector; a
            multiple of `num_groups` (each group gives `code_dim / G`).
        temperature: Positive finite float, the temperature of the relaxed
            gradient, in the variable `layer.temperature` (wav2vec 2.0
            starts at 2.0): at least the floor `2**-104`, and read as the floor
            if assigned below it (see `GumbelSoftmax`).
        diversity_weight: Non-negative float, the weight of the diversity
            loss (wav2vec 2.0 uses 0.1); 0 adds no loss.
        sample_at_inference: If `True`, sample the codes at inference too.
        trainable_temperature: If `True`, the temperature is learned (kept
            >= 0.05).
        seed: Integer seed of the layer's `keras.random.SeedGenerator`.
        kernel_initializer: Initializer of the projection kernel
            `[features, G * V]` (wav2vec 2.0: normal with standard
            deviation 1).
        bias_initializer: Initializer of the projection bias `[G * V]`.
        codebook_initializer: Initializer of the codebook
            `[G * V, code_dim / G]` (wav2vec 2.0: uniform on [0, 1)).
        **kwargs: Base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: Floating tensor `[..., features]`, of rank >= 2 (e.g.
            `[batch, time, features]`).
        training: Python bool. `True`: straight-through Gumbel samples, the
            soft perplexity and the diversity loss. `False` or `None`: the
            argmax codes and their perplexity.
        mask: A Keras mask of shape `inputs.shape[:-1]`, passed
            automatically by Keras.
        return_perplexity: If `True`, also return the perplexity.

    Returns:
        The codevectors, `[..., code_dim]` in the layer's compute dtype, or
        `(codevectors, perplexity)` with a float32 scalar perplexity.

    Raises:
        ValueError: For a bad argument, a `code_dim` that `num_groups` does
            not divide, inputs of rank < 2 or without a known feature size.
        TypeError: For non-integer sizes or integer inputs.

    Examples:
        >>> import keras, numpy as np, keras_gumbel
        >>> quantizer = keras_gumbel.GumbelVectorQuantizer(
        ...     num_groups=2, num_codes=8, code_dim=6, seed=0
        ... )
        >>> frames = np.random.default_rng(0).normal(size=(4, 10, 12))
        >>> codevectors, perplexity = quantizer(
        ...     frames, training=True, return_perplexity=True
        ... )
        >>> tuple(codevectors.shape)
        (4, 10, 6)
        >>> 2.0 <= float(perplexity) <= 16.0
        True
        >>> len(quantizer.losses)  # the diversity loss
        1

    Reference:
        - [Baevski et al., 2020. wav2vec 2.0](https://arxiv.org/abs/2006.11477), section 2.
        - [Jang et al., 2017. Categorical Reparameterization with Gumbel-Softmax](https://arxiv.org/abs/1611.01144)
    """

    def __init__(
        self,
        num_groups,
        num_codes,
        code_dim,
        temperature=2.0,
        diversity_weight=0.1,
        sample_at_inference=False,
        trainable_temperature=False,
        seed=None,
        kernel_initializer=None,
        bias_initializer="zeros",
        codebook_initializer=None,
        **kwargs,
    ):
        super().__init__(
            temperature=temperature,
            sample_at_inference=sample_at_inference,
            trainable_temperature=trainable_temperature,
            seed=seed,
            **kwargs,
        )
        self.num_groups = _validation.check_int("num_groups", num_groups, minimum=1)
        self.num_codes = _validation.check_int("num_codes", num_codes, minimum=1)
        self.code_dim = _validation.check_int("code_dim", code_dim, minimum=1)
        if self.code_dim % self.num_groups:
            raise ValueError(
                _validation.invalid(
                    "code_dim", f"a multiple of num_groups={self.num_groups} (each group gives code_dim / G)", code_dim
                )
            )
        self.diversity_weight = _validation.check_non_negative("diversity_weight", diversity_weight)
        if kernel_initializer is None:
            kernel_initializer = keras.initializers.RandomNormal(stddev=1.0)
        if codebook_initializer is None:
            codebook_initializer = keras.initializers.RandomUniform(0.0, 1.0)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.codebook_initializer = keras.initializers.get(codebook_initializer)
        self.supports_masking = True
        # The perplexity of the last training call: state (not a weight that learns), so that JAX's
        # stateless train step carries it out like any other non-trainable variable.
        self.perplexity = self.add_weight(
            name="perplexity",
            shape=(),
            initializer="zeros",
            dtype="float32",
            trainable=False,
            autocast=False,
            aggregation="mean",
        )

    @property
    def num_codevectors(self):
        """G * V, the size of the codebook."""
        return self.num_groups * self.num_codes

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) < 2:
            raise ValueError(
                _validation.invalid(
                    "inputs", "a tensor of rank >= 2, [..., features]", f"<a tensor of shape {input_shape}>"
                )
            )
        features = input_shape[-1]
        if features is None:
            raise ValueError(
                _validation.invalid(
                    "inputs", "a known feature size (the last axis)", f"<a tensor of shape {input_shape}>"
                )
            )
        self.kernel = self.add_weight(
            name="kernel", shape=(features, self.num_codevectors), initializer=self.kernel_initializer
        )
        self.bias = self.add_weight(name="bias", shape=(self.num_codevectors,), initializer=self.bias_initializer)
        self.codebook = self.add_weight(
            name="codebook",
            shape=(self.num_codevectors, self.code_dim // self.num_groups),
            initializer=self.codebook_initializer,
        )
        self.built = True

    def call(self, inputs, training=None, mask=None, return_perplexity=False):
        inputs = ops.convert_to_tensor(inputs)
        _sampling.compute_dtype_for(inputs.dtype)  # a TypeError that names integer inputs
        if _validation.rank(inputs, "inputs") < 2:
            raise ValueError(
                _validation.invalid(
                    "inputs", "a tensor of rank >= 2, [..., features]", f"<a tensor of shape {tuple(inputs.shape)}>"
                )
            )
        leading = ops.shape(inputs)[:-1]
        logits = ops.add(ops.matmul(inputs, self.kernel), self.bias)
        # All vectors on one axis, then the groups: [N, G, V] (Hugging Face's layout).
        logits = ops.reshape(logits, (-1, self.num_groups, self.num_codes))
        with self._draws(logits, training):
            codes = _sampling.categorical(
                logits,
                self._current_temperature(),
                axis=2,
                hard=True,
                seed=self.seed_generator,
                add_noise=self._add_noise(training),
                differentiable=bool(training),
            )
        codebook = ops.reshape(self.codebook, (self.num_groups, self.num_codes, -1))
        codevectors = ops.einsum("ngv,gvd->ngd", ops.cast(codes, codebook.dtype), codebook)
        codevectors = ops.reshape(codevectors, (*leading, self.code_dim))
        if mask is not None:
            mask = ops.reshape(ops.cast(mask, "bool"), (-1,))
        if training:
            # The soft perplexity: softmax of the logits, no noise and no temperature (as fairseq and Hugging Face).
            perplexity = code_perplexity(ops.softmax(ops.cast(logits, "float32"), axis=-1), mask)
            self.perplexity.assign(ops.stop_gradient(perplexity))
            if self.diversity_weight > 0:
                size = float(self.num_codevectors)
                self.add_loss(self.diversity_weight * ops.divide(ops.subtract(size, perplexity), size))
        elif return_perplexity:
            perplexity = code_perplexity(ops.cast(ops.stop_gradient(codes), "float32"), mask)
        if return_perplexity:
            return codevectors, perplexity
        return codevectors

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.code_dim)

    def compute_output_spec(self, inputs, training=None, mask=None, return_perplexity=False):
        output = keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype=self.compute_dtype)
        if return_perplexity:
            return output, keras.KerasTensor((), dtype="float32")
        return output

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_groups": self.num_groups,
                "num_codes": self.num_codes,
                "code_dim": self.code_dim,
                "diversity_weight": self.diversity_weight,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "codebook_initializer": keras.initializers.serialize(self.codebook_initializer),
            }
        )
        return config


def code_perplexity(probabilities, mask=None):
    """`sum_g exp(entropy(mean_n probabilities[n, g]))` for `probabilities` [N, G, V], over the unmasked rows.

    Masked rows count as zeros and the mean divides by the number of unmasked
    rows (Hugging Face's `_compute_perplexity`); with none unmasked the mean
    is 0 (not 0 / 0) and each group gives exp(0) = 1.
    """
    if mask is None:
        marginal = ops.mean(probabilities, axis=0)
    else:
        kept = ops.where(ops.reshape(mask, (-1, 1, 1)), probabilities, ops.zeros_like(probabilities))
        count = ops.sum(ops.cast(mask, probabilities.dtype))
        marginal = ops.divide(ops.sum(kept, axis=0), ops.maximum(count, 1.0))
    # 0 * log(0) = 0 (Hugging Face's `xlogy`): an unused code adds nothing, with a zero gradient (the log
    # reads 1 there). fairseq adds 1e-7 inside the log instead, which moves the entropy by < 1e-7 per code.
    used = ops.greater(marginal, 0.0)
    log_marginal = ops.log(ops.where(used, marginal, ops.ones_like(marginal)))
    entropy = ops.negative(ops.sum(ops.multiply(marginal, log_marginal), axis=-1))
    return ops.sum(ops.exp(entropy))
