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


def gated_transformer(sequence=6, width=8, heads=4, hidden=12, blocks=2, seed=0):
    """A small Transformer encoder with every kind of gate `pruning` carries: each block's attention has
    `HeadGatedAttention`, its feed-forward hidden units a `HardConcreteGate`, and both residual branches a block gate
    (`x + gate(f(x))`); a `SparsityPenalty` before the classifier. Inputs `[batch, sequence, width]`, 3 classes."""
    import keras

    import keras_gumbel
    from keras_gumbel import pruning

    keras.utils.set_random_seed(seed)
    inputs = x = keras.Input((sequence, width))
    for block in range(blocks):
        attention = keras_gumbel.HeadGatedAttention(heads, width // 2, gate_seed=10 * block, name=f"attention_{block}")
        branch = attention(x, x)
        branch = keras_gumbel.HardConcreteGate(block=True, seed=10 * block + 1, name=f"attention_block_{block}")(branch)
        x = keras.layers.LayerNormalization(name=f"norm_{block}")(keras.layers.Add()([x, branch]))
        branch = keras.layers.Dense(hidden, activation="relu", name=f"hidden_{block}")(x)
        branch = keras_gumbel.HardConcreteGate(seed=10 * block + 2, name=f"hidden_gate_{block}")(branch)
        branch = keras.layers.Dense(width, name=f"project_{block}")(branch)
        branch = keras_gumbel.HardConcreteGate(block=True, seed=10 * block + 3, name=f"feed_forward_block_{block}")(
            branch
        )
        x = keras.layers.Add()([x, branch])
    x = pruning.SparsityPenalty(name="penalty")(keras.layers.GlobalAveragePooling1D()(x))
    return keras.Model(inputs, keras.layers.Dense(3, name="classifier")(x))
