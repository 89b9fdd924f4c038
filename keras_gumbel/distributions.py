"""The bridge to TensorFlow Probability (imported lazily, TensorFlow backend only).

TFP puts the event (category) axis last; these helpers move `axis` there.
"""

from keras import ops

from keras_gumbel import _backend


def tfp_distributions():
    """Returns `tfp.distributions`, or raises an ImportError saying what to install."""
    if _backend.backend() != "tensorflow":
        raise ImportError(
            "keras_gumbel's TFP integration needs the TensorFlow backend "
            f"(KERAS_BACKEND=tensorflow); the running backend is {_backend.backend()!r}."
        )
    try:
        import tensorflow_probability as tfp
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "This feature needs TensorFlow Probability: pip install 'tensorflow-probability[tf]' "
            "(the [tf] extra installs tf-keras, without which TFP does not import)."
        ) from error
    return tfp.distributions


def _event_last(logits, axis):
    rank = len(logits.shape)
    return logits if axis in (-1, rank - 1) else ops.moveaxis(logits, axis, -1)


def relaxed_one_hot_categorical(logits, temperature, axis=-1):
    """`tfd.RelaxedOneHotCategorical(temperature, logits)` with `axis` moved last."""
    tfd = tfp_distributions()
    logits = _event_last(logits, axis)
    return tfd.RelaxedOneHotCategorical(ops.cast(temperature, logits.dtype), logits=logits)


def one_hot_categorical(logits, axis=-1, dtype="float32"):
    """`tfd.OneHotCategorical(logits)` with `axis` moved last."""
    tfd = tfp_distributions()
    return tfd.OneHotCategorical(logits=_event_last(logits, axis), dtype=dtype)
