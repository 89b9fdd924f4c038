"""Shared helpers for the tests (sample sizes and tolerances live with each test)."""

import keras
import numpy as np


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def softmax(logits, axis=-1):
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def gradient(function, value):
    """d function(x) / dx at `value`, for a scalar-valued `function`, on the running Keras backend."""
    backend = keras.backend.backend()
    value = np.asarray(value, dtype="float32")
    if backend == "tensorflow":
        import tensorflow as tf

        variable = tf.Variable(value)
        with tf.GradientTape() as tape:
            result = function(variable)
        return tape.gradient(result, variable).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(function)(jax.numpy.asarray(value)))
    if backend == "torch":
        import torch

        tensor = torch.tensor(value, requires_grad=True)
        function(tensor).backward()
        return tensor.grad.numpy()
    raise NotImplementedError(backend)


def numpy_sinkhorn(log_alpha, temperature, num_iterations):
    """Mena et al.'s `sinkhorn` (google/gumbel_sinkhorn, sinkhorn_ops.py) in float64 NumPy."""
    import scipy.special

    x = np.asarray(log_alpha, np.float64) / temperature
    for _ in range(num_iterations):
        x = x - scipy.special.logsumexp(x, axis=-1, keepdims=True)
        x = x - scipy.special.logsumexp(x, axis=-2, keepdims=True)
    return np.exp(x)


def assert_unbiased(estimates, exact):
    """The mean of the estimates within 5 standard errors of the exact gradient, in every component."""
    estimates = np.asarray(estimates, np.float64)
    mean = estimates.mean(axis=0)
    standard_error = estimates.std(axis=0) / np.sqrt(len(estimates))
    assert np.all(np.abs(mean - exact) < 5 * standard_error + 1e-6), (mean, exact, standard_error)


def estimate_per_row(estimator, logits, rows, build, reward, num_samples, seed=(1, 2)):
    """`estimator.estimate` on a batch of `rows` copies of one policy's logits: one estimate per row.

    The loss averages over the rows, so row i's gradient is -estimate_i / rows.
    """
    import tensorflow as tf

    tiled = tf.Variable(np.tile(logits, (rows,) + (1,) * np.ndim(logits)))
    with tf.GradientTape() as tape:
        loss, metrics, rewards = estimator.estimate(
            build(tiled),
            lambda actions: tf.cast(reward(actions), tf.float32),
            None,
            num_samples,
            tf.constant(seed, tf.int32),
            None,
            training=True,
        )
    return -tape.gradient(loss, tiled).numpy() * rows, metrics, rewards
