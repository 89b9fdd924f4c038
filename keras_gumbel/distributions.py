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
    if _backend.backend() != "tensorflow":
        raise ImportError(
            "keras_gumbel's TFP integration needs the TensorFlow backend "
            f"(KERAS_BACKEND=tensorflow); the running backend is {_backend.backend()!r}."
        )
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
    its floor when learned, cast to `dtype`): a distribution built outside a
    `GradientTape` still gives a learned temperature its gradient, and one
    built before an annealing step sees the new value. `transform`, if
    given, maps the temperature to the parameter wanted (of shape `shape`).
    """
    tfp = _tfp()  # first: its errors say what is missing
    import tensorflow as tf

    floor = layer.min_learned_temperature if layer.trainable_temperature else None

    def read(temperature):
        if floor is not None:
            temperature = tf.maximum(temperature, floor)
        temperature = tf.cast(temperature, dtype)
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
