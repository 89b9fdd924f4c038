"""Subsets: Gumbel-top-k against exact sampling without replacement; the relaxed k-hot."""

import itertools

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
from helpers import to_numpy

from keras_gumbel import ops as gumbel_ops

PROBABILITIES = np.array([0.1, 0.2, 0.3, 0.4])
LOGITS = np.log(PROBABILITIES).astype("float32")


def ordered_pair_probability(i, j):
    """Exact: draw i, then j from the categories left, renormalised."""
    return PROBABILITIES[i] * PROBABILITIES[j] / (1 - PROBABILITIES[i])


def test_gumbel_top_k_follows_sampling_without_replacement():
    num_samples = 100_000
    indices = to_numpy(
        gumbel_ops.gumbel_top_k(np.tile(LOGITS, (num_samples, 1)), 2, seed=keras.random.SeedGenerator(0))
    )
    assert indices.shape == (num_samples, 2) and (indices[:, 0] != indices[:, 1]).all()
    pairs = list(itertools.permutations(range(4), 2))
    observed = [np.sum((indices[:, 0] == i) & (indices[:, 1] == j)) for i, j in pairs]
    expected = [ordered_pair_probability(i, j) * num_samples for i, j in pairs]
    assert sum(expected) == pytest.approx(num_samples)
    assert scipy.stats.chisquare(observed, expected).pvalue > 1e-3


def test_hard_relaxed_top_k_is_the_k_hot_of_the_same_gumbel_top_k_draw():
    batch = np.tile(LOGITS, (256, 1))
    k_hot = to_numpy(gumbel_ops.relaxed_top_k(batch, 2, temperature=0.3, hard=True, seed=7))
    indices = to_numpy(gumbel_ops.gumbel_top_k(batch, 2, seed=7))  # same integer seed: same noise
    np.testing.assert_array_equal(k_hot, np.eye(4)[indices].sum(axis=1))


@pytest.mark.parametrize("temperature", [0.1, 1.0, 5.0])
def test_relaxed_k_hot_is_non_negative_and_sums_to_k(temperature):
    sample = to_numpy(gumbel_ops.relaxed_top_k(np.tile(LOGITS, (512, 1)), 3, temperature=temperature, seed=1))
    assert (sample >= 0).all()
    np.testing.assert_allclose(sample.sum(-1), 3.0, rtol=1e-4)


def test_low_temperature_relaxed_k_hot_approaches_the_hard_one():
    batch = np.tile(LOGITS, (512, 1))
    soft = to_numpy(gumbel_ops.relaxed_top_k(batch, 2, temperature=1e-3, seed=3))
    hard = to_numpy(gumbel_ops.relaxed_top_k(batch, 2, temperature=1e-3, hard=True, seed=3))
    assert np.mean(np.abs(soft - hard).max(-1) < 1e-2) > 0.98


def test_hard_k_hot_inclusion_frequencies_and_gradient():
    num_samples = 100_000
    k_hot = to_numpy(gumbel_ops.relaxed_top_k(np.tile(LOGITS, (num_samples, 1)), 2, hard=True, seed=4))
    # P(category c is among the 2 drawn) = sum of the ordered pairs that contain c.
    inclusion = [
        sum(ordered_pair_probability(i, j) for i, j in itertools.permutations(range(4), 2) if c in (i, j))
        for c in range(4)
    ]
    counts = k_hot.sum(0)
    standard_errors = np.sqrt(np.array(inclusion) * (1 - np.array(inclusion)) * num_samples)
    assert (np.abs(counts - np.array(inclusion) * num_samples) < 5 * standard_errors).all()
    variable = tf.Variable(np.tile(LOGITS, (8, 1)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(gumbel_ops.relaxed_top_k(variable, 2, temperature=0.5, hard=True, seed=5) * [1.0, 2, 3, 4])
    gradient = tape.gradient(loss, variable).numpy()
    assert np.isfinite(gradient).all() and np.abs(gradient).sum() > 0
    # Straight-through: the hard k-hot's gradient is the relaxed k-hot's for the same noise.
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(gumbel_ops.relaxed_top_k(variable, 2, temperature=0.5, seed=5) * [1.0, 2, 3, 4])
    np.testing.assert_allclose(gradient, tape.gradient(loss, variable).numpy(), rtol=1e-6)


@pytest.mark.parametrize("temperature", [0.3, 1.0, 3.0])
def test_relaxed_k_hot_is_xie_and_ermons_recursion_on_the_same_noise(temperature):
    # gumbel_noise with the same integer seed draws the noise relaxed_top_k adds.
    batch = np.tile(LOGITS, (64, 1))
    weights = batch + to_numpy(gumbel_ops.gumbel_noise(batch.shape, seed=12)).astype("float64")
    expected = np.zeros_like(weights)
    for _ in range(3):
        step = np.exp(weights / temperature - (weights / temperature).max(-1, keepdims=True))
        step /= step.sum(-1, keepdims=True)
        expected += step
        weights = weights + np.log(np.maximum(1 - step, np.finfo("float32").tiny))
    sample = to_numpy(gumbel_ops.relaxed_top_k(batch, 3, temperature=temperature, seed=12))
    np.testing.assert_allclose(sample, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("temperature", [0.3, 1.0])
def test_relaxed_k_hot_gradient_is_the_recursions_gradient(temperature):
    # The recursion written naively with log(1 - step), in float64 where its gradient is still accurate.
    batch = np.tile(LOGITS, (32, 1)).astype("float64")
    noise = to_numpy(gumbel_ops.gumbel_noise(batch.shape, seed=13)).astype("float64")
    upstream = np.random.default_rng(0).normal(size=batch.shape)
    variable = tf.Variable(batch)
    with tf.GradientTape() as tape:
        weights, taken = variable + noise, 0.0
        for _ in range(2):
            step = tf.nn.softmax(weights / temperature)
            taken += step
            weights = weights + tf.math.log(1 - step)
        naive = tf.reduce_sum(taken * upstream)
    expected = tape.gradient(naive, variable).numpy()
    variable32 = tf.Variable(batch.astype("float32"))
    with tf.GradientTape() as tape:
        ours = tf.reduce_sum(gumbel_ops.relaxed_top_k(variable32, 2, temperature=temperature, seed=13) * upstream)
    np.testing.assert_allclose(tape.gradient(ours, variable32).numpy(), expected, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_relaxed_k_hot_gradients_are_finite_at_extreme_temperatures(dtype):
    # Fully taken categories: log(1 - step) had a gradient of 1e10 here, infinite once cast to float16.
    logits = (np.random.default_rng(0).standard_normal((1024, 40)) * 1e4).astype(dtype)
    variable = tf.Variable(logits)
    with tf.GradientTape() as tape:
        sample = gumbel_ops.relaxed_top_k(variable, 4, temperature=1e-4, seed=1)
        loss = tf.reduce_sum(tf.cast(sample, "float32") * np.random.default_rng(1).standard_normal(logits.shape))
    assert np.isfinite(tape.gradient(loss, variable).numpy()).all()


@pytest.mark.parametrize("k, error", [(0, ValueError), (5, ValueError), (1.5, TypeError)])
def test_bad_k(k, error):
    with pytest.raises(error, match="k="):
        gumbel_ops.gumbel_top_k(LOGITS[None], k)


def test_scalar_logits_get_a_clear_error():
    for sampler in (gumbel_ops.gumbel_top_k, gumbel_ops.relaxed_top_k):
        with pytest.raises(ValueError, match="rank >= 1"):
            sampler(np.float32(1.0), 1)
