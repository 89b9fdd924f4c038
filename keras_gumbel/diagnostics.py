"""Estimator diagnostics: bias and variance of gradient estimators against the exact gradient.

On a small categorical problem the exact gradient of `E_{z ~ Categorical(softmax(logits))}[f(z)]`
is a sum over the K one-hot values of z:

    grad_logits E[f] = p * (F - p . F),  p = softmax(logits),  F_k = f(one_hot(k))

so any estimator's bias and variance can be measured, not guessed. The
estimators here are computed with the package's own layers and losses, one
independent estimate per row of a batch (rows do not interact, so the gradient
of the summed objective holds each row's estimate).

TensorFlow backend (it uses `tf.GradientTape`).

Examples:
    >>> import keras, numpy as np, keras_gumbel
    >>> values = np.arange(4.0, dtype="float32")
    >>> f = lambda z: (keras.ops.sum(z * values, axis=-1) - 1.5) ** 2
    >>> logits = np.zeros(4, "float32")
    >>> result = keras_gumbel.diagnostics.gradient_bias_variance(
    ...     "reinforce_leave_one_out", logits, f, num_estimates=2000
    ... )
    >>> bool(result["bias"] < 5 * result["bias_standard_error"])  # unbiased
    True
"""

import math

import keras
import numpy as np

from keras_gumbel import _backend
from keras_gumbel import _validation
from keras_gumbel import ops as gumbel_ops
from keras_gumbel.estimators.baselines import leave_one_out_baseline
from keras_gumbel.estimators.score_function import score_function_terms

__all__ = ["ESTIMATORS", "exact_gradient", "gradient_estimates", "gradient_bias_variance"]

ESTIMATORS = (
    "gumbel_softmax",
    "straight_through",
    "gumbel_rao",
    "reinmax",
    "reinforce",
    "reinforce_leave_one_out",
)


def _check_logits(logits):
    logits = np.asarray(logits)
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
                f"`f` must map a batch of one-hot vectors [N, K] to one value per row, [N]; for input of "
                f"shape {tuple(z.shape)} it returned shape {shape}."
            )
        return values

    return checked


def exact_gradient(logits, f):
    """The exact gradient of E[f(z)], z ~ Categorical(softmax(logits)), by enumeration.

    Args:
        logits: A vector of K logits.
        f: A function mapping a batch of one-hot vectors [N, K] to values
            [N] (or [N, 1]).

    Returns:
        A NumPy vector of K partial derivatives.
    """
    logits = _check_logits(logits).astype(np.float64)
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    one_hots = keras.ops.convert_to_tensor(np.eye(len(logits), dtype="float32"))
    values = np.asarray(keras.ops.convert_to_numpy(_per_row(f)(one_hots)), dtype=np.float64)
    return probabilities * (values - probabilities @ values)


def gradient_estimates(
    estimator, logits, f, num_estimates=10_000, temperature=1.0, num_samples=4, seed=0, num_draws=10
):
    """Independent estimates of grad E[f(z)] by one estimator, one per row.

    Args:
        estimator: One of `ESTIMATORS`:
            `"gumbel_softmax"` (the pathwise gradient of f at a relaxed sample),
            `"straight_through"` (f at the one-hot sample, the relaxed gradient),
            `"gumbel_rao"` (f at the one-hot sample, the relaxed gradient averaged
            over `num_draws` conditional draws),
            `"reinmax"` (f at the one-hot sample, ReinMax's second-order gradient),
            `"reinforce"` (one sample, no baseline),
            `"reinforce_leave_one_out"` (`num_samples` samples, leave-one-out baseline).
        logits: A vector of K logits.
        f: A differentiable function of a batch of (relaxed) one-hot vectors
            [N, K] -> [N] (or [N, 1]).
        num_estimates: Number of independent estimates.
        temperature: Temperature of the Gumbel estimators.
        num_samples: Samples per estimate for `"reinforce_leave_one_out"`.
        seed: Integer seed.
        num_draws: Conditional draws per estimate for `"gumbel_rao"`.

    Returns:
        A NumPy array [num_estimates, K].
    """
    if _backend.backend() != "tensorflow":
        raise RuntimeError("keras_gumbel.diagnostics needs the TensorFlow backend (it uses tf.GradientTape).")
    import tensorflow as tf

    if estimator not in ESTIMATORS:
        raise ValueError(_validation.invalid("estimator", f"one of {ESTIMATORS}", estimator))
    num_estimates = _validation.check_int("num_estimates", num_estimates, minimum=1)
    num_samples = _validation.check_int("num_samples", num_samples, minimum=2)
    temperature = _validation.check_temperature(temperature)
    logits = _check_logits(logits).astype("float32")
    f = _per_row(f)
    generator = keras.random.SeedGenerator(_backend.fold_seed(_validation.check_seed(seed)))
    copies = num_estimates * (num_samples if estimator == "reinforce_leave_one_out" else 1)
    variable = tf.Variable(np.tile(logits, (copies, 1)))
    # The estimators that differentiate f through a sample.
    pathwise = {
        "gumbel_softmax": lambda x: gumbel_ops.gumbel_softmax(x, temperature=temperature, seed=generator),
        "straight_through": lambda x: gumbel_ops.gumbel_softmax(x, temperature=temperature, hard=True, seed=generator),
        "gumbel_rao": lambda x: gumbel_ops.gumbel_rao(x, temperature=temperature, num_draws=num_draws, seed=generator),
        "reinmax": lambda x: gumbel_ops.reinmax(x, temperature=temperature, seed=generator),
    }
    with tf.GradientTape() as tape:
        if estimator in pathwise:
            objective = tf.reduce_sum(f(pathwise[estimator](variable)))
        else:
            choice = tf.stop_gradient(gumbel_ops.gumbel_softmax(variable, hard=True, seed=generator))
            log_prob = tf.reduce_sum(choice * tf.nn.log_softmax(variable), -1)
            reward = tf.cast(f(choice), "float32")
            if estimator == "reinforce":
                terms = score_function_terms(log_prob, reward)
            else:
                shape = (num_samples, num_estimates)
                reward = tf.reshape(reward, shape)
                terms = (
                    score_function_terms(tf.reshape(log_prob, shape), reward, leave_one_out_baseline(reward, axis=0))
                    / num_samples
                )
            objective = -tf.reduce_sum(terms)  # terms estimate -grad E[f]
    gradient = tape.gradient(objective, variable).numpy()
    if estimator == "reinforce_leave_one_out":
        gradient = gradient.reshape(num_samples, num_estimates, -1).sum(axis=0)
    return gradient


def gradient_bias_variance(
    estimator, logits, f, num_estimates=10_000, temperature=1.0, num_samples=4, seed=0, num_draws=10
):
    """Bias and variance of an estimator of grad E[f(z)] against the exact gradient.

    Returns:
        A dict: `bias` (norm of mean estimate minus exact), `bias_standard_error`
        (the norm's sampling error, about sqrt(variance / num_estimates)),
        `variance` (trace of the estimates' covariance), `mse` (mean squared
        error = bias^2 + variance), `exact` and `mean` (the vectors).
    """
    estimates = gradient_estimates(estimator, logits, f, num_estimates, temperature, num_samples, seed, num_draws)
    exact = exact_gradient(logits, f)
    mean = estimates.mean(axis=0)
    variance = float(estimates.var(axis=0).sum())
    bias = float(np.linalg.norm(mean - exact))
    return {
        "bias": bias,
        "bias_standard_error": math.sqrt(variance / len(estimates)),
        "variance": variance,
        "mse": float(((estimates - exact) ** 2).sum(axis=1).mean()),
        "exact": exact,
        "mean": mean,
    }
