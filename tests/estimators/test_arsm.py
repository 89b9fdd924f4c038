"""ARSM: its swapped samples' law, unbiasedness against exact enumeration (pure and through the estimator), the loss,
errors, and training with the helpers.

The pure functions are backend-agnostic (keras.ops only); the `ARSM` estimator's tests (TFP distributions, the
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

# Two categorical variables of four categories, a reward of both jointly.
NUM_CLASSES = 4
CATEGORICAL_LOGITS = np.array([[0.5, -0.3, 1.0, 0.0], [-1.0, 0.2, 0.4, 0.1]], "float32")
TABLE = np.random.default_rng(3).normal(size=(NUM_CLASSES, NUM_CLASSES))


def categorical_reward(z):
    """z one-hot [..., 2, C] -> TABLE[z_0, z_1] + z_0 / 2."""
    z = np.asarray(z)
    first, second = np.argmax(z[..., 0, :], -1), np.argmax(z[..., 1, :], -1)
    return TABLE[first, second] + 0.5 * first


def exact_categorical_gradient():
    p = np.exp(CATEGORICAL_LOGITS) / np.exp(CATEGORICAL_LOGITS).sum(-1, keepdims=True)
    total = np.zeros_like(p, dtype=np.float64)
    for i, j in itertools.product(range(NUM_CLASSES), repeat=2):
        z = np.zeros((2, NUM_CLASSES))
        z[0, i] = z[1, j] = 1.0
        total += p[0, i] * p[1, j] * categorical_reward(z) * (z - p)
    return total


def dirichlet_draws(num, seed):
    exponential = np.random.default_rng(seed).exponential(size=(num, 2, NUM_CLASSES))
    return (exponential / exponential.sum(-1, keepdims=True)).astype("float32")


def test_the_loss_gradient_is_minus_the_mean_estimate():
    num_draws, batch = 3, 5
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(batch, 2, NUM_CLASSES)).astype("float32")
    exponential = rng.exponential(size=(num_draws, batch, 2, NUM_CLASSES))
    noise = (exponential / exponential.sum(-1, keepdims=True)).astype("float32")
    rewards = categorical_reward(to_numpy(estimators.arsm_actions(logits, noise))).astype("float32")
    estimates = to_numpy(estimators.arsm_gradient(noise, rewards))
    loss = lambda x: estimators.arsm_loss(x, noise, rewards)  # noqa: E731
    # The loss averages over the draws and the inputs and sums over an input's logits.
    np.testing.assert_allclose(gradient(loss, logits), -estimates.mean(0) / batch, rtol=1e-5, atol=1e-7)


def test_arsm_actions_are_the_sample_and_its_swaps():
    dirichlet = dirichlet_draws(100_000, seed=6)
    actions = to_numpy(estimators.arsm_actions(CATEGORICAL_LOGITS, dirichlet))
    assert actions.shape == (1 + NUM_CLASSES * (NUM_CLASSES - 1) // 2, 100_000, 2, NUM_CLASSES)
    np.testing.assert_array_equal(actions.sum(-1), 1.0)
    chosen = np.argmax(CATEGORICAL_LOGITS - np.log(dirichlet), -1)
    np.testing.assert_array_equal(np.argmax(actions[0], -1), chosen)
    # Swapping two entries of a Dirichlet(1) vector keeps its law: every swap is a sample of the policy.
    p = np.exp(CATEGORICAL_LOGITS) / np.exp(CATEGORICAL_LOGITS).sum(-1, keepdims=True)
    frequencies = actions.mean(1)
    assert np.all(np.abs(frequencies - p) < 5 * np.sqrt(p * (1 - p) / 100_000)), (frequencies, p)
    # The first swap is that of categories 0 and 1.
    swapped = np.argmax(CATEGORICAL_LOGITS - np.log(dirichlet[..., [1, 0, 2, 3]]), -1)
    np.testing.assert_array_equal(np.argmax(actions[1], -1), swapped)


@pytest.mark.slow
def test_arsm_is_unbiased_against_exact_enumeration():
    dirichlet = dirichlet_draws(200_000, seed=7)
    rewards = categorical_reward(to_numpy(estimators.arsm_actions(CATEGORICAL_LOGITS, dirichlet)))
    estimates = to_numpy(estimators.arsm_gradient(dirichlet, rewards))
    assert estimates.shape == dirichlet.shape
    assert_unbiased(estimates, exact_categorical_gradient())


def test_shapes_that_do_not_fit_are_refused_by_name():
    dirichlet = np.full((2, 4, 3), 1 / 3, "float32")
    with pytest.raises(ValueError, match="`rewards`.*4 actions"):
        estimators.arsm_gradient(dirichlet, np.zeros((3, 2, 4)))
    with pytest.raises(ValueError, match="`logits`.*at least 2 categories"):
        estimators.arsm_actions(np.zeros((4, 1), "float32"), np.ones((2, 4, 1), "float32"))


@tensorflow_only
@pytest.mark.slow
@pytest.mark.parametrize("actions", ["one_hot", "indices"])
def test_arsm_is_unbiased_through_the_estimator_interface(actions):
    import tensorflow as tf
    import tensorflow_probability as tfp

    tfd = tfp.distributions
    if actions == "one_hot":
        build = lambda logits: tfd.OneHotCategorical(logits=logits, dtype="float32")  # noqa: E731
    else:
        build = lambda logits: tfd.Categorical(logits=logits)  # noqa: E731

    def reward(choices):  # one-hot [S', B, 2, C] or indices [S', B, 2]
        if actions == "one_hot":
            choices = tf.argmax(choices, -1)
        first, second = choices[..., 0], choices[..., 1]
        return tf.gather_nd(TABLE.astype("float32"), tf.stack([first, second], -1)) + 0.5 * tf.cast(first, tf.float32)

    estimates, _, rewards = estimate_per_row(estimators.ARSM(), CATEGORICAL_LOGITS, 50_000, build, reward, 2)
    assert tuple(rewards.shape) == (2 * 7, 50_000)
    assert_unbiased(estimates, exact_categorical_gradient())


@tensorflow_only
def test_the_estimator_refuses_what_it_cannot_work_with():
    import tensorflow_probability as tfp

    tfd = tfp.distributions
    with pytest.raises(TypeError, match="tfd.OneHotCategorical or a tfd.Categorical"):
        estimators.ARSM().estimate(tfd.Bernoulli(logits=[[0.0]]), None, None, 1, [0, 0], None)
    with pytest.raises(ValueError, match="`num_samples`"):
        estimators.ARSM().check_num_samples(0)


@tensorflow_only
@pytest.mark.slow
def test_arsm_trains_a_policy_in_fit():
    import tensorflow as tf

    # Categorical, through fit: a bandit with 3 actions whose best action depends on the context.
    contexts = np.eye(3, dtype="float32")[np.random.default_rng(1).integers(3, size=300)]

    def bandit_reward(x, actions):
        return tf.reduce_sum(actions * tf.roll(x, 1, axis=-1), -1)

    model = keras_gumbel.ReinforceModel(
        keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)]),
        bandit_reward,
        num_samples=1,
        estimator=estimators.ARSM(),
        seed=0,
    )
    model.compile(optimizer=keras.optimizers.Adam(0.1))
    history = model.fit(contexts, epochs=6, batch_size=50, verbose=0)
    assert history.history["reward"][-1] > 0.9
    assert model.evaluate(contexts, verbose=0, return_dict=True)["greedy_reward"] == 1.0
