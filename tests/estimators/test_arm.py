"""ARM, DisARM and ARSM: the antithetic pair's law, unbiasedness against exact enumeration, variance, losses, errors.

The pure functions are backend-agnostic (keras.ops only); the Estimator classes' tests (TFP distributions, the
training helpers) run on the TensorFlow backend. Each unbiasedness test compares the mean of many independent
estimates with the gradient summed exactly over all states, within 5 standard errors of that mean.
"""

import itertools

import keras
import numpy as np
import pytest
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


def assert_unbiased(estimates, exact):
    """The mean of the estimates within 5 standard errors of the exact gradient, in every component."""
    estimates = np.asarray(estimates, np.float64)
    mean = estimates.mean(axis=0)
    standard_error = estimates.std(axis=0) / np.sqrt(len(estimates))
    assert np.all(np.abs(mean - exact) < 5 * standard_error + 1e-6), (mean, exact, standard_error)


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


@pytest.mark.parametrize("name", ["arm", "disarm", "arsm"])
def test_the_loss_gradient_is_minus_the_mean_estimate(name):
    num_pairs, batch = 3, 5
    rng = np.random.default_rng(4)
    if name == "arsm":
        logits = rng.normal(size=(batch, 2, NUM_CLASSES)).astype("float32")
        exponential = rng.exponential(size=(num_pairs, batch, 2, NUM_CLASSES))
        noise = (exponential / exponential.sum(-1, keepdims=True)).astype("float32")
        rewards = categorical_reward(to_numpy(estimators.arsm_actions(logits, noise))).astype("float32")
        estimates = to_numpy(estimators.arsm_gradient(noise, rewards))
        loss = lambda x: estimators.arsm_loss(x, noise, rewards)  # noqa: E731
    else:
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


def dirichlet_draws(num, seed):
    exponential = np.random.default_rng(seed).exponential(size=(num, 2, NUM_CLASSES))
    return (exponential / exponential.sum(-1, keepdims=True)).astype("float32")


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
    uniform = np.full((2, 4, 3), 0.5, "float32")
    with pytest.raises(ValueError, match="`uniform`"):
        estimators.antithetic_bernoulli(np.zeros((4, 5), "float32"), uniform)
    with pytest.raises(ValueError, match="`rewards`"):
        estimators.disarm_gradient(np.zeros((4, 3), "float32"), uniform, np.zeros((4, 2)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="`antithetic_rewards`"):
        estimators.arm_loss(np.zeros((4, 3), "float32"), uniform, np.zeros((2, 4)), np.zeros((2, 4, 1, 1)))
    dirichlet = np.full((2, 4, 3), 1 / 3, "float32")
    with pytest.raises(ValueError, match="`rewards`.*4 actions"):
        estimators.arsm_gradient(dirichlet, np.zeros((3, 2, 4)))
    with pytest.raises(ValueError, match="`logits`.*at least 2 categories"):
        estimators.arsm_actions(np.zeros((4, 1), "float32"), np.ones((2, 4, 1), "float32"))


# The Estimator classes, through the interface the training helpers call.


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
def test_the_estimators_refuse_what_they_cannot_work_with():
    import tensorflow_probability as tfp

    tfd = tfp.distributions
    for estimator in (estimators.ARM(), estimators.DisARM()):
        with pytest.raises(ValueError, match="`num_samples`.*even"):
            estimator.check_num_samples(3)
        with pytest.raises(TypeError, match="tfd.Bernoulli"):
            estimator.estimate(tfd.OneHotCategorical(logits=[[0.0, 1.0]]), None, None, 2, [0, 0], None)
    with pytest.raises(TypeError, match="tfd.OneHotCategorical or a tfd.Categorical"):
        estimators.ARSM().estimate(tfd.Bernoulli(logits=[[0.0]]), None, None, 1, [0, 0], None)
    with pytest.raises(ValueError, match="`num_samples`"):
        estimators.ARSM().check_num_samples(0)


@tensorflow_only
@pytest.mark.slow
def test_disarm_and_arsm_train_policies_with_the_training_helpers():
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
