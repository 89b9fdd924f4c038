"""StraightThroughGumbel: the gradient estimator it selects."""

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
from helpers import softmax

import keras_gumbel

LOGITS = np.array([0.5, -0.3, 0.2, 0.0], "float32")
VALUES = np.arange(4.0, dtype="float32")


@pytest.mark.parametrize("gradient_estimator", ["gumbel_rao", "reinmax"])
def test_straight_through_layer_selects_the_gradient_estimator(gradient_estimator):

    import keras_gumbel

    layer = keras_gumbel.StraightThroughGumbel(seed=0, gradient_estimator=gradient_estimator, num_draws=4)
    variable = tf.Variable(np.tile(LOGITS, (20_000, 1)))
    with tf.GradientTape() as tape:
        sample = layer(variable, training=True)
        loss = tf.reduce_sum(sample * VALUES)
    sample, gradient = sample.numpy(), tape.gradient(loss, variable).numpy()
    assert set(np.unique(sample)) == {0.0, 1.0}
    assert scipy.stats.chisquare(sample.sum(0), softmax(LOGITS) * 20_000).pvalue > 1e-3
    assert np.isfinite(gradient).all() and np.abs(gradient).sum() > 0
    # The backward pass is the chosen estimator's: the op's gradient for the same seed stream, not straight-through's.
    from keras_gumbel import ops as gumbel_ops

    estimators = {
        "gumbel_rao": lambda x, seed: gumbel_ops.gumbel_rao(x, num_draws=4, seed=seed),
        "reinmax": lambda x, seed: gumbel_ops.reinmax(x, seed=seed),
        "straight_through": lambda x, seed: gumbel_ops.gumbel_softmax(x, hard=True, seed=seed),
    }
    expected = {}
    for name in (gradient_estimator, "straight_through"):
        with tf.GradientTape() as tape:
            reference = estimators[name](variable, keras.random.SeedGenerator(0))
            loss = tf.reduce_sum(reference * VALUES)
        np.testing.assert_array_equal(reference.numpy(), sample)  # the same draws
        expected[name] = tape.gradient(loss, variable).numpy()
    np.testing.assert_allclose(gradient, expected[gradient_estimator], rtol=1e-5, atol=1e-7)
    assert np.abs(gradient - expected["straight_through"]).max() > 1e-3
    np.testing.assert_array_equal(layer(LOGITS[None]).numpy(), np.eye(4)[[LOGITS.argmax()]])
    with pytest.raises(ValueError, match="gradient_estimator='rao'"):
        keras_gumbel.StraightThroughGumbel(gradient_estimator="rao")


def test_reinmax_refuses_a_trainable_temperature():

    # Its gradient formula gives the temperature no gradient: the variable would silently never move.
    with pytest.raises(ValueError, match="trainable_temperature=True"):
        keras_gumbel.StraightThroughGumbel(gradient_estimator="reinmax", trainable_temperature=True)
    keras_gumbel.StraightThroughGumbel(gradient_estimator="gumbel_rao", trainable_temperature=True)


def test_the_default_layer_is_the_hard_gumbel_softmax_op():
    # StraightThroughGumbel is `ops.gumbel_softmax(..., hard=True)` as a layer: the same draws and gradients.
    from keras_gumbel import ops as gumbel_ops

    layer, stream = keras_gumbel.StraightThroughGumbel(0.6, seed=1), keras.random.SeedGenerator(1)
    samplers = (lambda x: layer(x, training=True), lambda x: gumbel_ops.gumbel_softmax(x, 0.6, hard=True, seed=stream))
    variable = tf.Variable(np.tile(LOGITS, (256, 1)))
    for _ in range(2):  # draw after draw
        draws, gradients = [], []
        for sample in samplers:
            with tf.GradientTape() as tape:
                draws.append(sample(variable))
                loss = tf.reduce_sum(tf.sin(draws[-1] * VALUES))
            gradients.append(tape.gradient(loss, variable).numpy())
        np.testing.assert_array_equal(draws[0].numpy(), draws[1].numpy())
        np.testing.assert_array_equal(gradients[0], gradients[1])
