"""The two problems with an exact gradient, by enumeration, and the checks of a problem's arguments.

Private: `keras_gumbel.diagnostics` re-exports `VARIABLES` and `exact_gradient`; import them from there.
"""

import itertools

import keras
import numpy as np

from keras_gumbel import _validation

VARIABLES = ("categorical", "binary")

# The most bits the binary problem enumerates (2^n values of f), and tuples VIMCO's exact gradient sums over.
_MAX_BITS = 16
_MAX_TUPLES = 2**20


def _check_variable(variable):
    if variable not in VARIABLES:
        raise ValueError(_validation.invalid("variable", f"one of {VARIABLES}", variable))
    return variable


def _check_logits(logits, variable="categorical"):
    logits = np.asarray(logits)
    if variable == "binary":
        if (
            logits.ndim != 1
            or not 1 <= logits.shape[0] <= _MAX_BITS
            or not np.issubdtype(logits.dtype, np.floating)
            or not np.isfinite(logits).all()
        ):
            raise ValueError(
                _validation.invalid("logits", f"a float vector of 1 to {_MAX_BITS} finite logits (one per bit)", logits)
            )
        return logits
    if (
        logits.ndim != 1
        or logits.shape[0] < 2
        or not np.issubdtype(logits.dtype, np.floating)
        or np.isnan(logits).any()
        or np.isposinf(logits).any()
    ):
        raise ValueError(_validation.invalid("logits", "a float vector of K >= 2 logits, none NaN or +inf", logits))
    return logits


def _per_row(f):
    """`f` with its output checked: one value per row, [N] (or [N, 1], flattened)."""

    def checked(z):
        values = f(z)
        shape = tuple(values.shape)
        if shape == (z.shape[0], 1):
            return keras.ops.reshape(values, (-1,))
        if shape != (z.shape[0],):
            raise ValueError(
                f"`f` must map a batch of samples (one-hot vectors [N, K], or bits [N, n]) to one value per row, "
                f"[N]; for input of shape {tuple(z.shape)} it returned shape {shape}."
            )
        return values

    return checked


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def _support(logits, variable):
    """Every value of the variable [C, D], its probability [C] and its score grad log p [C, D], in float64."""
    logits = logits.astype(np.float64)
    if variable == "categorical":
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        values = np.eye(len(logits))
        return values, probabilities, values - probabilities
    values = np.array(list(itertools.product((0.0, 1.0), repeat=len(logits))))  # [2^n, n]
    log_p = values @ _log_sigmoid(logits) + (1.0 - values) @ _log_sigmoid(-logits)
    return values, np.exp(log_p), values - 1.0 / (1.0 + np.exp(-logits))


def exact_gradient(logits, f, variable="categorical", bound_samples=None):
    """The exact gradient of E[f(z)] (or of VIMCO's multi-sample bound) by enumeration.

    Args:
        logits: A vector of K logits (`variable="categorical"`, `-inf` for an
            impossible category) or of n bit logits (`"binary"`, n <= 16).
        f: A function mapping a batch of samples, one-hot vectors [N, K] or
            bits [N, n], to values [N] (or [N, 1]).
        variable: `"categorical"` (z ~ Categorical(softmax(logits))) or
            `"binary"` (independent bits, b_i ~ Bernoulli(sigmoid(logits_i))).
        bound_samples: `None` for the gradient of `E[f(z)]`; an integer
            S >= 2 for that of the multi-sample bound VIMCO estimates,
            `E[log((1/S) sum_s exp f(z_s))]` over S independent samples,
            summed over all C^S tuples of values (at most 2^20).

    Returns:
        A NumPy vector of partial derivatives, one per logit.

    Raises:
        ValueError: For logits, `variable`, `bound_samples` or an output of
            `f` that do not fit.

    Examples:
        >>> import keras, numpy as np
        >>> from keras_gumbel import diagnostics
        >>> f = lambda b: keras.ops.sum(b, axis=-1)  # E[f] = sum sigmoid
        >>> diagnostics.exact_gradient(np.zeros(2, "float32"), f, "binary")
        array([0.25, 0.25])
    """
    variable = _check_variable(variable)
    logits = _check_logits(logits, variable)
    values, probabilities, score = _support(logits, variable)
    if bound_samples is not None:
        bound_samples = _validation.check_int("bound_samples", bound_samples, minimum=2)
        count = len(values) ** bound_samples
        if count > _MAX_TUPLES:
            raise ValueError(
                _validation.invalid(
                    "bound_samples",
                    f"a number of samples S whose {len(values)}^S tuples of values are at most {_MAX_TUPLES} "
                    f"(here {len(values)}^{bound_samples} = {count})",
                    bound_samples,
                )
            )
    rewards = keras.ops.convert_to_numpy(_per_row(f)(keras.ops.convert_to_tensor(values.astype("float32"))))
    rewards = np.asarray(rewards, dtype=np.float64)
    if bound_samples is None:
        return (probabilities * rewards) @ score
    tuples = np.stack(np.unravel_index(np.arange(count), (len(values),) * bound_samples), axis=-1)  # [C^S, S]
    tuple_rewards = rewards[tuples]
    top = tuple_rewards.max(axis=1, keepdims=True)
    bound = top[:, 0] + np.log(np.exp(tuple_rewards - top).mean(axis=1))
    weights = probabilities[tuples].prod(axis=1) * bound
    # grad E[L] = sum_tuples p(tuple) L(tuple) sum_s grad log p(z_s): L has no gradient of its own.
    return sum(weights @ score[tuples[:, s]] for s in range(bound_samples))
