"""IndeCateR: unbiased against exact enumeration over several categorical variables and over bits, exact for one
variable, its pure functions against the estimator, and errors.

`indecater_actions` and `indecater_loss` are backend-agnostic (keras.ops only); the `IndeCateR` estimator's tests
(TFP distributions, the training helpers) run on TensorFlow. Unbiasedness: each component of the mean of many
independent estimates within 4.5 standard errors of the gradient summed over every state.
"""

import itertools

import keras
import numpy as np
import pytest
from helpers import to_numpy

from keras_gumbel import diagnostics
from keras_gumbel import estimators

BACKEND = keras.backend.backend()
tensorflow_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="uses TFP distributions / the training helpers")

# Three categorical variables of three categories; a reward with interactions, so that no variable alone decides.
LOGITS = np.array([[0.5, -0.3, 1.0], [-1.0, 0.2, 0.4], [0.0, 0.7, -0.5]], "float32")
TABLE = np.random.default_rng(5).normal(size=(3, 3, 3))


def softmax(x):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def exact_categorical_gradient():
    """grad_logits E[TABLE[x]] = sum_x p(x) TABLE[x] (one_hot(x_d) - p_d) for each d, over all 27 states."""
    p = softmax(LOGITS)
    total = np.zeros_like(p)
    for x in itertools.product(range(3), repeat=3):
        probability = np.prod([p[d, x[d]] for d in range(3)])
        score = np.eye(3)[list(x)] - p
        total += probability * TABLE[x] * score
    return total


def test_indecater_actions_set_each_variable_to_each_category():
    indices = np.array([[[2, 0, 1]]])  # S = 1, B = 1, D = 3
    table = to_numpy(estimators.indecater_actions(indices, 3))  # [1, 3, 3, 1, 3]
    assert table.shape == (1, 3, 3, 1, 3)
    for d in range(3):
        for k in range(3):
            expected = indices[0, 0].copy()
            expected[d] = k
            np.testing.assert_array_equal(table[0, d, k, 0], expected)


def test_the_loss_of_one_variable_is_the_exact_expectation_and_its_gradient_the_exact_gradient():
    logits = keras.ops.convert_to_tensor(np.array([[[0.3, -0.4, 1.1, 0.0]]], "float32"))  # B = 1, D = 1, K = 4
    values = np.array([2.0, -1.0, 0.5, 3.0], "float32")
    rewards = keras.ops.convert_to_tensor(values.reshape(1, 1, 4, 1))  # every category, once
    p = softmax(to_numpy(logits)[0, 0])
    np.testing.assert_allclose(float(estimators.indecater_loss(logits, rewards)), -(p @ values), rtol=1e-5)
    terms = estimators.indecater_terms(logits, rewards)  # one per sample and input: [S, B]
    assert tuple(terms.shape) == (1, 1)
    np.testing.assert_allclose(to_numpy(terms)[0, 0], -(p @ values), rtol=1e-5)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(logits)
            loss = estimators.indecater_loss(logits, rewards)
        np.testing.assert_allclose(
            tape.gradient(loss, logits).numpy()[0, 0], -p * (values - p @ values), rtol=1e-5, atol=1e-7
        )


@tensorflow_only
def test_several_categorical_variables_are_unbiased_against_enumeration():
    import tensorflow as tf
    import tensorflow_probability as tfp

    tfd = tfp.distributions
    num_estimates = 20_000
    table = tf.constant(TABLE, "float32")
    theta = tf.Variable(np.tile(LOGITS[None], (num_estimates, 1, 1)))

    def evaluate(actions):  # one-hot [S', B, 3, 3] -> [S', B]
        indices = tf.argmax(actions, -1)
        return tf.gather_nd(table, indices)

    with tf.GradientTape() as tape:
        distribution = tfd.Independent(tfd.OneHotCategorical(logits=theta, dtype="float32"), 1)
        loss, metrics, rewards = estimators.get("indecater").estimate(
            distribution, evaluate, None, 2, tf.constant([1, 2]), None, True
        )
    estimates = -num_estimates * tape.gradient(loss, theta).numpy()  # one estimate per row
    assert rewards.shape == (2 * 3 * 3, num_estimates)  # S D K evaluations per input
    exact = exact_categorical_gradient()
    standard_error = estimates.std(axis=0) / np.sqrt(num_estimates)
    z = np.abs(estimates.mean(axis=0) - exact) / (standard_error + 1e-6)
    assert z.max() < 4.5, (estimates.mean(axis=0), exact)
    assert estimates.var(axis=0).sum() > 1e-3  # estimates, not the exact value
    # Its logged reward estimates E[f] without bias too.
    p = softmax(LOGITS)
    expected = sum(np.prod([p[d, x[d]] for d in range(3)]) * TABLE[x] for x in itertools.product(range(3), repeat=3))
    assert abs(float(metrics["reward"]) - expected) < 0.02


@tensorflow_only
@pytest.mark.parametrize("num_samples", [1, 2])
def test_bits_are_unbiased_and_one_variable_is_exact(num_samples):
    bit_logits = np.array([0.5, -0.3, 0.2, 0.0], "float32")
    weights = np.array([0.5, 1.0, 1.5, 2.0], "float32")

    def f_bits(b):
        return (keras.ops.sum(b * weights, axis=-1) - 2.5) ** 2

    result = diagnostics.gradient_bias_variance(
        "indecater", bit_logits, f_bits, num_estimates=20_000, num_samples=num_samples, variable="binary"
    )
    assert result["bias_z"] < 4.5, result
    assert result["evaluations"] == num_samples * 4 * 2  # S D K

    def f(z):
        return (keras.ops.sum(z * np.arange(4.0, dtype="float32"), axis=-1) - 1.5) ** 2

    exact = diagnostics.gradient_bias_variance("indecater", bit_logits, f, num_estimates=200, num_samples=num_samples)
    assert exact["bias"] < 1e-5 and exact["variance"] < 1e-10, exact  # one variable: the sum over its categories


@tensorflow_only
def test_integer_actions_and_the_training_helpers():
    import tensorflow as tf
    import tensorflow_probability as tfp

    contexts = np.eye(3, dtype="float32")[np.random.default_rng(0).integers(3, size=96)]

    def reward(inputs, actions):  # integer actions [N, 2]: 1 when both variables pick the context's index
        target = tf.argmax(inputs, -1)
        return tf.reduce_mean(tf.cast(tf.equal(tf.cast(actions, tf.int64), target[:, None]), "float32"), -1)

    policy = keras.Sequential([keras.Input((3,)), keras.layers.Dense(6), keras.layers.Reshape((2, 3))])

    def two_variables(logits):  # integer actions of two categorical variables
        return tfp.distributions.Independent(tfp.distributions.Categorical(logits=logits), 1)

    step = estimators.make_train_step(
        policy, reward, keras.optimizers.Adam(0.1), num_samples=1, estimator="indecater", seed=0,
        distribution=two_variables,
    )  # fmt: skip
    rewards = [float(step(tf.constant(contexts[i * 32 : (i + 1) * 32]))["reward"]) for i in range(3) for _ in range(10)]
    assert np.mean(rewards[-5:]) > np.mean(rewards[:5]) + 0.2


@tensorflow_only
def test_a_policy_without_static_variables_is_refused_by_name():
    import tensorflow as tf
    import tensorflow_probability as tfp

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3])])
    def run(logits):
        distribution = tfp.distributions.Independent(tfp.distributions.OneHotCategorical(logits=logits), 1)
        return estimators.IndeCateR().estimate(distribution, None, None, 1, tf.constant([0, 0]), None)[0]

    with pytest.raises(ValueError, match="logits.*known when traced"):
        run.get_concrete_function()
