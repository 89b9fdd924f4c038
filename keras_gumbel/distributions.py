"""The bridge to TensorFlow Probability (imported lazily, TensorFlow backend only).

TFP puts the event (category) axis last; these helpers move `axis` there.
"""

from keras import ops

from keras_gumbel import _backend


def tfp_distributions():
    """Returns `tfp.distributions`, or raises an ImportError saying what to install."""
    return _tfp().distributions


def _tfp():
    """Returns `tensorflow_probability`, or raises an ImportError saying what to install."""
    _backend.require_tensorflow("keras_gumbel's TFP integration", "is TensorFlow Probability", error=ImportError)
    try:
        import tensorflow_probability as tfp
    except ImportError as error:
        raise ImportError(
            "This feature needs TensorFlow Probability: pip install 'keras-gumbel[tensorflow]' "
            "(or 'tensorflow-probability[tf]': its [tf] extra installs tf-keras, without which TFP does not import)."
        ) from error
    return tfp


def layer_temperature(layer, dtype, transform=None, shape=()):
    """A layer's temperature as TFP reads a variable: anew at each use, not once when a distribution is built.

    A `tfp.util.DeferredTensor` of the layer's temperature variable (clamped at
    its floor, `layer.min_temperature`, as the layer's samples read it, then
    cast to `dtype`): a distribution built outside a `GradientTape` still
    gives a learned temperature its gradient, and one built before an
    annealing step sees the new value. `transform`, if given, maps the
    temperature to the parameter wanted (of shape `shape`).
    """
    tfp = _tfp()  # first: its errors say what is missing
    import tensorflow as tf

    floor = layer.min_temperature

    def read(temperature):
        temperature = tf.cast(tf.maximum(temperature, floor), dtype)
        return temperature if transform is None else transform(temperature)

    return tfp.util.DeferredTensor(layer.temperature.value, read, dtype=dtype, shape=shape)


def _event_last(logits, axis):
    rank = len(logits.shape)
    return logits if axis in (-1, rank - 1) else ops.moveaxis(logits, axis, -1)


def relaxed_one_hot_categorical(logits, temperature, axis=-1, log_space=False):
    """`tfd.RelaxedOneHotCategorical(temperature, logits)` with `axis` moved last.

    With `log_space=True`, `tfd.ExpRelaxedOneHotCategorical`: the law of the log of its samples.
    """
    tfd = tfp_distributions()
    logits = _event_last(logits, axis)
    if not isinstance(temperature, _tfp().util.DeferredTensor):
        temperature = ops.cast(temperature, logits.dtype)
    if log_space:
        return tfd.ExpRelaxedOneHotCategorical(temperature, logits=logits)
    return tfd.RelaxedOneHotCategorical(temperature, logits=logits)


def one_hot_categorical(logits, axis=-1, dtype="float32"):
    """`tfd.OneHotCategorical(logits)` with `axis` moved last."""
    tfd = tfp_distributions()
    return tfd.OneHotCategorical(logits=_event_last(logits, axis), dtype=dtype)


def plackett_luce(logits, axis=-1):
    """The law of `ops.gumbel_top_k(logits, k=K)` over all K categories: `tfd.PlackettLuce`.

    Sorting `logits + g`, g ~ Gumbel(0, 1), in decreasing order draws a
    Plackett-Luce permutation: its first index from `softmax(logits)`, each
    next one from the softmax over the categories left (Yellott, 1977; Kool
    et al., 2019). So `gumbel_top_k(logits, K)` is a sample of this
    distribution, and `log_prob` of it is that ordering's exact
    log-probability (for `k < K` its first `k` indices follow the law of
    the first `k` places, which TFP does not score on their own). TFP's
    scores are `softmax(logits)`: `exp(logits)` up to a constant factor,
    which the law ignores, and never overflowing.

    Args:
        logits: Floating tensor with the categories on `axis`, finite (a
            masked, `-inf`, category has score 0: TFP's probability of the
            places after the last unmasked one is then NaN).
        axis: The category axis, moved last (TFP's event axis).

    Returns:
        `tfd.PlackettLuce(softmax(logits))`, whose events are int32
        permutations [..., K], the first place first.

    Examples:
        >>> import keras, keras_gumbel
        >>> logits = keras.ops.log([0.2, 0.3, 0.5])
        >>> law = keras_gumbel.distributions.plackett_luce(logits)
        >>> round(float(law.prob([2, 1, 0])), 6)  # 0.5 * 0.3 / (0.2 + 0.3)
        0.3

    Reference:
        - [Kool, van Hoof, Welling, 2019. Stochastic Beams and Where to Find Them](https://arxiv.org/abs/1903.06059)
    """
    tfd = tfp_distributions()
    logits = _event_last(ops.convert_to_tensor(logits), axis)
    return tfd.PlackettLuce(scores=ops.softmax(logits, axis=-1), dtype="int32")
