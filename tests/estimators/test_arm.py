"""ARM and DisARM: the antithetic pair's law, unbiasedness against exact enumeration, variance, losses, errors.

The pure functions are backend-agnostic (keras.ops only); the Estimator classes' tests (TFP distributions, the
training helpers) run on the TensorFlow backend. Each unbiasedness test compares the mean of many independent
estimates with the gradient summed exactly over all states, within 5 standard errors of that mean.
"""

import itertools

import keras
import numpy as np
import pytest
from helpers import assert_unbiased
from helpers import estimate_per_row
from helpers import gradient
from helpers import to_numpy

import keras_gumbel
from keras_gumbel import estimators

BACKEND = keras.backend.backend()
tensorflow_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="uses TFP distributions / the training helpers")

# Three binary variables; a reward with an interaction term, so that no estimator is exact by linearity.
BINARY_LOGITS = np.array([0.3, -1.2, 2.0], "float32")
WEIGHTS = np.array([1.0, -2.0, 0.5], "float32")


def binary_reward(b):
    b = np.asarray(b, np.float64)
    return (b @ WEIGHTS - 0.3) ** 2 + 2.0 * b[..., 0] * b[..., 2]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def exact_binary_gradient(logits=BINARY_LOGITS, reward=binary_reward):
    """grad_logits E[R(b)] = sum_b p(b) R(b) (b - sigmoid(logits)), over all 2^D states."""
    p = sigmoid(logits)
    total = np.zeros(len(logits))
    for bits in itertools.product([0.0, 1.0], repeat=len(logits)):
        b = np.array(bits)
        total += np.prod(np.where(b == 1, p, 1 - p)) * reward(b) * (b - p)
    return total


def binary_pairs(num, seed):
    uniform = np.random.default_rng(seed).uniform(size=(num, len(BINARY_LOGITS))).astype("float32")
    sample, antithetic = estimators.antithetic_bernoulli(BINARY_LOGITS, uniform)
    return uniform, to_numpy(sample), to_numpy(antithetic)


def test_the_antithetic_pair_is_two_samples_of_the_policy_coupled_through_one_uniform():
    num = 200_000
    uniform, sample, antithetic = binary_pairs(num, seed=0)
    p = sigmoid(BINARY_LOGITS)
    for draws in (sample, antithetic):
        assert set(np.unique(draws)) <= {0.0, 1.0}
        np.testing.assert_array_less(np.abs(draws.mean(0) - p), 5 * np.sqrt(p * (1 - p) / num))
    # b = b~ = 1 exactly when u < p and 1 - u < p: probability max(0, 2p - 1); b = b~ = 0 when max(0, 1 - 2p).
    both = (sample * antithetic).mean(0)
    np.testing.assert_array_less(np.abs(both - np.maximum(0, 2 * p - 1)), 5 * np.sqrt(0.25 / num) + 1e-9)
    neither = ((1 - sample) * (1 - antithetic)).mean(0)
    np.testing.assert_array_less(np.abs(neither - np.maximum(0, 1 - 2 * p)), 5 * np.sqrt(0.25 / num) + 1e-9)
    # Far in the tails: u = 1e-30 < sigmoid(-40) = 4e-18, but not < sigmoid(-80) = 2e-35.
    extreme_sample, extreme_antithetic = estimators.antithetic_bernoulli([-80.0, -40.0, 80.0], [1e-30] * 3)
    np.testing.assert_array_equal(to_numpy(extreme_sample), [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(to_numpy(extreme_antithetic), [0.0, 0.0, 1.0])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["arm", "disarm"])
def test_arm_and_disarm_are_unbiased_against_exact_enumeration(name):
    uniform, sample, antithetic = binary_pairs(400_000, seed=1)
    reward, antithetic_reward = binary_reward(sample), binary_reward(antithetic)
    if name == "arm":
        estimates = estimators.arm_gradient(uniform, reward, antithetic_reward)
    else:
        estimates = estimators.disarm_gradient(BINARY_LOGITS, uniform, reward, antithetic_reward)
    assert_unbiased(to_numpy(estimates), exact_binary_gradient())


def test_disarm_has_less_variance_than_arm_and_reinforce_leave_one_out_at_two_evaluations():
    num = 100_000
    uniform, sample, antithetic = binary_pairs(num, seed=2)
    reward, antithetic_reward = binary_reward(sample), binary_reward(antithetic)
    arm = to_numpy(estimators.arm_gradient(uniform, reward, antithetic_reward))
    disarm = to_numpy(estimators.disarm_gradient(BINARY_LOGITS, uniform, reward, antithetic_reward))
    # REINFORCE with the leave-one-out baseline on two independent samples: the same two evaluations.
    p = sigmoid(BINARY_LOGITS)
    rng = np.random.default_rng(5)
    first, second = (rng.uniform(size=(2, num, len(p))) < p).astype("float64")
    f_first, f_second = binary_reward(first)[:, None], binary_reward(second)[:, None]
    loo = 0.5 * ((f_first - f_second) * (first - p) + (f_second - f_first) * (second - p))
    variance = {name: g.var(0).sum() for name, g in (("arm", arm), ("disarm", disarm), ("loo", loo))}
    # With 1e5 estimates a variance is known to about 1%: these margins are far beyond sampling error.
    assert variance["disarm"] < 0.8 * variance["arm"], variance
    assert variance["disarm"] < 0.8 * variance["loo"], variance
    # A variable whose two samples agree gets exactly 0 from DisARM.
    np.testing.assert_array_equal(disarm[sample == antithetic], 0.0)


def test_the_toy_of_the_papers_has_a_zero_variance_disarm_gradient_at_one_half():
    # E[(b - t)^2] at p = 1/2: the pair always differs, and DisARM's estimate is the exact gradient, (1 - 2t) / 4.
    target = 0.45
    uniform = np.random.default_rng(0).uniform(size=(1000, 1)).astype("float32")
    sample, antithetic = estimators.antithetic_bernoulli([0.0], uniform)
    reward = (to_numpy(sample)[:, 0] - target) ** 2
    antithetic_reward = (to_numpy(antithetic)[:, 0] - target) ** 2
    estimates = to_numpy(estimators.disarm_gradient([0.0], uniform, reward, antithetic_reward))
    np.testing.assert_allclose(estimates, (1 - 2 * target) / 4, rtol=1e-6)


@pytest.mark.parametrize("name", ["arm", "disarm"])
def test_the_loss_gradient_is_minus_the_mean_estimate(name):
    num_pairs, batch = 3, 5
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(batch, 3)).astype("float32")
    noise = rng.uniform(size=(num_pairs, batch, 3)).astype("float32")
    sample, antithetic = estimators.antithetic_bernoulli(logits, noise)
    reward = binary_reward(to_numpy(sample)).astype("float32")
    antithetic_reward = binary_reward(to_numpy(antithetic)).astype("float32")
    function = {"arm": estimators.arm_loss, "disarm": estimators.disarm_loss}[name]
    if name == "arm":
        estimates = to_numpy(estimators.arm_gradient(noise, reward, antithetic_reward))
    else:
        estimates = to_numpy(estimators.disarm_gradient(logits, noise, reward, antithetic_reward))
    loss = lambda x: function(x, noise, reward, antithetic_reward)  # noqa: E731
    # The loss averages over the pairs and the inputs and sums over an input's logits.
    np.testing.assert_allclose(gradient(loss, logits), -estimates.mean(0) / batch, rtol=1e-5, atol=1e-7)


def test_shapes_that_do_not_fit_are_refused_by_name():
    uniform = np.full((2, 4, 3), 0.5, "float32")
    with pytest.raises(ValueError, match="`uniform`"):
        estimators.antithetic_bernoulli(np.zeros((4, 5), "float32"), uniform)
    with pytest.raises(ValueError, match="`rewards`"):
        estimators.disarm_gradient(np.zeros((4, 3), "float32"), uniform, np.zeros((4, 2)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="`antithetic_rewards`"):
        estimators.arm_loss(np.zeros((4, 3), "float32"), uniform, np.zeros((2, 4)), np.zeros((2, 4, 1, 1)))


@tensorflow_only
@pytest.mark.slow
@pytest.mark.parametrize("name", ["ARM", "DisARM"])
def test_the_binary_estimators_are_unbiased_through_the_estimator_interface(name):
    import tensorflow as tf
    import tensorflow_probability as tfp

    tfd = tfp.distributions
    build = lambda logits: tfd.Independent(tfd.Bernoulli(logits=logits), 1)  # noqa: E731

    def reward(actions):  # [S', B, 3] int32 -> [S', B]
        b = tf.cast(actions, tf.float32)
        return (tf.reduce_sum(b * WEIGHTS, -1) - 0.3) ** 2 + 2.0 * b[..., 0] * b[..., 2]

    estimator = getattr(estimators, name)()
    estimates, metrics, rewards = estimate_per_row(estimator, BINARY_LOGITS, 100_000, build, reward, num_samples=4)
    assert metrics == {}
    assert tuple(rewards.shape) == (4, 100_000)
    assert_unbiased(estimates, exact_binary_gradient())


@tensorflow_only
def test_the_estimators_refuse_what_they_cannot_work_with():
    import tensorflow_probability as tfp

    tfd = tfp.distributions
    for estimator in (estimators.ARM(), estimators.DisARM()):
        with pytest.raises(ValueError, match="`num_samples`.*even"):
            estimator.check_num_samples(3)
        with pytest.raises(TypeError, match="tfd.Bernoulli"):
            estimator.estimate(tfd.OneHotCategorical(logits=[[0.0, 1.0]]), None, None, 2, [0, 0], None)


@tensorflow_only
@pytest.mark.slow
def test_disarm_trains_a_policy_with_the_training_helpers():
    import tensorflow as tf
    import tensorflow_probability as tfp

    tfd = tfp.distributions
    # Binary: each of 4 bits should copy the matching bit of the input.
    inputs = np.random.default_rng(0).integers(0, 2, size=(256, 4)).astype("float32")

    def copy_reward(x, actions):
        return -tf.reduce_sum(tf.abs(x - tf.cast(actions, tf.float32)), -1)

    policy = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)])
    step = keras_gumbel.make_train_step(
        policy,
        copy_reward,
        keras.optimizers.Adam(0.05),
        num_samples=2,
        distribution=lambda logits: tfd.Independent(tfd.Bernoulli(logits=logits), 1),
        estimator=estimators.DisARM(),
        seed=0,
    )
    for _ in range(150):
        metrics = step(inputs)
    assert float(metrics["reward"]) > -0.3  # from -2 at the start: the bits are copied
