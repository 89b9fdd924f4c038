"""The unordered-set estimator: set probabilities, unbiasedness by exact enumeration of ordered draws and by sampling,
the sampler's law (Gumbel-top-k and stochastic beam search), the peaked limit, errors.

Backend-agnostic (CI also runs it under KERAS_BACKEND=jax and torch); the estimator's TFP test runs on TensorFlow only.
"""

import itertools

import keras
import numpy as np
import pytest
import scipy.stats
from helpers import gradient
from helpers import softmax
from helpers import to_numpy

from keras_gumbel import estimators
from keras_gumbel.estimators import unordered_set

BACKEND = keras.backend.backend()
tensorflow_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="builds TFP distributions")

PROBABILITIES = np.array([0.1, 0.2, 0.3, 0.15, 0.25])
REWARDS = np.array([1.0, -2.0, 0.5, 3.0, 0.0])


def ordered_draws(probabilities, k):
    """Every ordered draw of k distinct values without replacement, with its probability."""
    for draw in itertools.permutations(range(len(probabilities)), k):
        probability, drawn = 1.0, 0.0
        for value in draw:
            probability *= probabilities[value] / (1.0 - drawn)
            drawn += probabilities[value]
        yield draw, probability


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_set_probabilities_sum_the_orderings_and_sum_to_one(k):
    by_set = {}
    for draw, probability in ordered_draws(PROBABILITIES, k):
        by_set[frozenset(draw)] = by_set.get(frozenset(draw), 0.0) + probability
    sets = sorted(by_set, key=sorted)
    log_p = np.log(PROBABILITIES[np.array([sorted(s) for s in sets])]).astype("float32")  # [num_sets, k]
    log_set, log_p1, _ = unordered_set._set_log_probabilities(keras.ops.convert_to_tensor(log_p))
    np.testing.assert_allclose(np.exp(to_numpy(log_set)), [by_set[s] for s in sets], rtol=1e-5)
    assert np.exp(to_numpy(log_set)).sum() == pytest.approx(1.0, abs=1e-5)
    # p^{D\s}(S \ s) is the probability of the other k - 1 under the distribution renormalised without s.
    first = sorted(sets[0])
    rest = first[1:]
    renormalised = PROBABILITIES.copy()
    renormalised[first[0]] = 0.0
    renormalised /= renormalised.sum()
    expected = sum(p for draw, p in ordered_draws(renormalised, k - 1) if set(draw) == set(rest))
    assert np.exp(to_numpy(log_p1)[0, 0]) == pytest.approx(expected, rel=1e-5)


def expected_estimate_by_enumeration(probabilities, rewards, k):
    """The mean, over every ordered draw, of the estimator's value and of its gradient w.r.t. each value's log-prob.

    Returns (E[value], E[d loss / d log p(v)] as a vector over the domain's values v): the chain rule to any
    parameters goes through those log-probabilities.
    """
    draws, weights = zip(*ordered_draws(probabilities, k))
    draws, weights = np.array(draws).T, np.array(weights)  # [k, T], [T]
    log_prob = np.log(probabilities)[draws].astype("float32")
    reward = rewards[draws].astype("float32")
    count = draws.shape[1]
    # The loss averages over its columns (the draws): times T, each column's gradient is that draw's.
    grad = gradient(lambda lp: estimators.unordered_set_loss(lp, reward), log_prob) * count  # [k, T]
    domain_grad = np.zeros(len(probabilities))
    np.add.at(domain_grad, draws, grad * weights)
    # Each draw's value sum_i p(s_i) R(S, s_i) R_i is linear in its rewards: their gradient gives the weights.
    reward_weights = -count * gradient(lambda r: estimators.unordered_set_loss(log_prob, r), reward)  # [k, T]
    values = np.sum(reward_weights * reward, axis=0)
    return float(np.dot(weights, values)), domain_grad


@pytest.mark.parametrize("k", [2, 3, 4])
def test_unbiased_value_and_gradient_by_exact_enumeration_of_the_ordered_draws(k):
    value, domain_grad = expected_estimate_by_enumeration(PROBABILITIES, REWARDS, k)
    assert value == pytest.approx(np.dot(PROBABILITIES, REWARDS), rel=1e-5)
    # The gradient w.r.t. logits: d/dlogits_c of the loss, through log p(v) = logits_v - logsumexp(logits).
    grad_logits = domain_grad - PROBABILITIES * domain_grad.sum()
    exact = -PROBABILITIES * (REWARDS - np.dot(PROBABILITIES, REWARDS))  # -d E[R] / dlogits
    np.testing.assert_allclose(grad_logits, exact, rtol=1e-4, atol=1e-6)


def test_unbiased_over_the_joint_values_of_two_variables():
    # Two variables of 3 classes: 9 joint values; draws of 3 of them without replacement, enumerated (504).
    marginals = np.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]])
    joint = (marginals[0][:, None] * marginals[1][None, :]).reshape(-1)
    rewards = np.random.default_rng(3).normal(size=9)
    value, domain_grad = expected_estimate_by_enumeration(joint, rewards, 3)
    assert value == pytest.approx(np.dot(joint, rewards), rel=1e-5)
    # d/dlogits_{n,c}: log p(v) = sum_n log softmax(logits_n)[v_n].
    grid = domain_grad.reshape(3, 3)
    grad_first = grid.sum(1) - marginals[0] * grid.sum()
    grad_second = grid.sum(0) - marginals[1] * grid.sum()
    table = rewards.reshape(3, 3)
    exact_first = -marginals[0] * (table @ marginals[1] - np.dot(joint, rewards))
    exact_second = -marginals[1] * (marginals[0] @ table - np.dot(joint, rewards))
    np.testing.assert_allclose(grad_first, exact_first, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(grad_second, exact_second, rtol=1e-4, atol=1e-6)


def test_gradients_through_the_reward_are_weighted_by_the_estimators_weights():
    # With k equal to the domain size the estimate is exactly sum_i p_i R_i, so d/dR_i = -p_i / B.
    log_prob = np.log(np.array([[0.2, 0.5], [0.3, 0.25], [0.5, 0.25]], "float32"))  # k = 3 = K, B = 2
    rewards = np.array([[1.0, 2.0], [0.0, -1.0], [3.0, 0.5]], "float32")
    grad = gradient(lambda reward: estimators.unordered_set_loss(log_prob, reward), rewards)
    np.testing.assert_allclose(grad, -np.exp(log_prob) / 2, rtol=1e-5)


def test_sampled_estimates_are_unbiased_within_their_standard_error():
    # 8,000 independent draws of k = 3 from Gumbel-top-k: the per-draw gradients average to the exact one.
    rows, k = 8000, 3
    logits = np.log(PROBABILITIES).astype("float32")
    draws = to_numpy(estimators.sample_without_replacement(np.tile(logits, (rows, 1, 1)), k, seed=7))[..., 0]
    log_prob = np.log(PROBABILITIES)[draws].astype("float32")  # [k, rows]
    reward = REWARDS[draws].astype("float32")
    grad = gradient(lambda lp: estimators.unordered_set_loss(lp, reward), log_prob) * rows  # per-draw d loss/d lp
    one_hot = np.eye(len(PROBABILITIES))[draws]  # [k, rows, K]
    per_draw = np.einsum("kr,krc->rc", grad, one_hot - PROBABILITIES)  # [rows, K]: d loss_r / d logits
    exact = -PROBABILITIES * (REWARDS - np.dot(PROBABILITIES, REWARDS))
    standard_error = per_draw.std(0) / np.sqrt(rows)
    assert np.all(np.abs(per_draw.mean(0) - exact) < 4 * standard_error + 1e-6)
    # And its variance is below the leave-one-out score function's with the same k samples drawn with replacement.
    with_replacement = np.random.default_rng(0).choice(len(PROBABILITIES), size=(k, rows), p=PROBABILITIES)
    rewards_r = REWARDS[with_replacement]
    advantage = rewards_r - (rewards_r.sum(0) - rewards_r) / (k - 1)
    score = -np.einsum("kr,krc->rc", advantage / k, np.eye(len(PROBABILITIES))[with_replacement] - PROBABILITIES)
    assert per_draw.var(0).sum() < score.var(0).sum()


@pytest.mark.parametrize("num_variables, num_classes, k", [(1, 4, 2), (2, 3, 2)])
def test_the_sampler_draws_without_replacement_from_the_joint_distribution(num_variables, num_classes, k):
    rng = np.random.default_rng(num_variables)
    logits = rng.normal(size=(num_variables, num_classes)).astype("float32")
    rows = 30_000
    draws = to_numpy(estimators.sample_without_replacement(np.tile(logits, (rows, 1, 1)), k, seed=11))  # [k, R, N]
    values = np.ravel_multi_index(tuple(np.moveaxis(draws, -1, 0)), (num_classes,) * num_variables)  # [k, R]
    assert np.all(values[0] != values[1])
    marginals = softmax(logits)
    joint = np.ones(1)
    for marginal in marginals:
        joint = (joint[:, None] * marginal[None, :]).reshape(-1)
    expected = dict(ordered_draws(joint, k))
    observed = {}
    for draw in map(tuple, values.T):
        observed[draw] = observed.get(draw, 0) + 1
    keys = sorted(expected)
    counts = np.array([observed.get(key, 0) for key in keys])
    assert counts.sum() == rows  # no repeats, no other values
    assert scipy.stats.chisquare(counts, np.array([expected[key] for key in keys]) * rows).pvalue > 1e-3


def test_a_beam_wider_than_the_first_variable_is_filled_from_the_later_ones():
    draws = to_numpy(estimators.sample_without_replacement(np.zeros((50, 3, 2), "float32"), 8, seed=0))  # all 8
    values = np.ravel_multi_index(tuple(np.moveaxis(draws, -1, 0)), (2, 2, 2))
    assert all(sorted(column) == list(range(8)) for column in values.T)


def test_all_the_mass_on_the_samples_gives_the_exact_sum_and_finite_gradients():
    logits = np.array([30.0, 29.0, 0.0, -5.0], "float32")  # two values hold all but ~1e-13
    log_prob = (logits - np.logaddexp.reduce(logits))[[[0], [1]]].astype("float32")  # k = 2: the top two
    rewards = np.array([[1.0], [4.0]], "float32")
    loss = estimators.unordered_set_loss(log_prob, rewards)
    probabilities = np.exp(log_prob[:, 0])
    assert float(loss) == pytest.approx(-np.dot(probabilities, rewards[:, 0]), rel=1e-5)
    assert np.isfinite(gradient(lambda lp: estimators.unordered_set_loss(lp, rewards), log_prob)).all()


def test_the_terms_are_one_per_input_and_their_mean_is_the_loss():
    log_prob = np.log(np.array([[0.5, 0.2, 0.4], [0.3, 0.7, 0.1]], "float32"))  # k = 2 distinct values, 3 inputs
    rewards = np.array([[1.0, 0.0, 3.0], [2.0, 5.0, 1.0]], "float32")
    terms = to_numpy(estimators.unordered_set_terms(log_prob, rewards))
    assert terms.shape == (3,)
    assert float(estimators.unordered_set_loss(log_prob, rewards)) == pytest.approx(terms.mean(), rel=1e-6)
    # Each input's term depends on its own column only.
    changed = rewards.copy()
    changed[:, 2] += 10.0
    np.testing.assert_allclose(to_numpy(estimators.unordered_set_terms(log_prob, changed))[:2], terms[:2], rtol=1e-6)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="log_prob.shape\\[0\\]=1"):
        estimators.unordered_set_loss(np.zeros((1, 3), "float32"), np.zeros((1, 3), "float32"))
    with pytest.raises(ValueError, match="log_prob.shape\\[0\\]=9"):
        estimators.unordered_set_loss(np.full((9, 3), -3.0, "float32"), np.zeros((9, 3), "float32"))
    with pytest.raises(ValueError, match="rewards.shape=\\(2, 1\\)"):
        estimators.unordered_set_loss(np.full((2, 3), -1.0, "float32"), np.zeros((2, 1), "float32"))
    with pytest.raises(ValueError, match="num_samples=1"):
        estimators.UnorderedSet().check_num_samples(1)
    with pytest.raises(ValueError, match="k=10"):
        estimators.sample_without_replacement(np.zeros((2, 2, 3), "float32"), 10)
    with pytest.raises(ValueError, match="\\[B, N, K\\]"):
        estimators.sample_without_replacement(np.zeros((2, 3), "float32"), 2)


@tensorflow_only
@pytest.mark.parametrize("kind", ["one_hot", "independent_one_hot", "categorical"])
def test_the_estimator_draws_distinct_actions_of_the_policys_kind(kind):
    import tensorflow as tf
    import tensorflow_probability as tfp

    tfd = tfp.distributions
    logits = tf.Variable(np.random.default_rng(0).normal(size=(6, 2, 3) if kind == "independent_one_hot" else (6, 4)))
    logits = tf.Variable(tf.cast(logits, "float32"))
    if kind == "one_hot":
        distribution = tfd.OneHotCategorical(logits=logits, dtype="float32")
    elif kind == "categorical":
        distribution = tfd.Categorical(logits=logits)
    else:
        distribution = tfd.Independent(tfd.OneHotCategorical(logits=logits, dtype="float32"), 1)
    seen = {}

    def evaluate(actions):
        seen["actions"] = actions
        return tf.reduce_sum(tf.reshape(tf.cast(actions, "float32"), (tf.shape(actions)[0], 6, -1)), -1)

    def log_prob(actions):
        return tf.cast(distribution.log_prob(actions), "float32")

    with tf.GradientTape() as tape:
        loss, metrics, rewards = estimators.UnorderedSet().estimate(
            distribution, evaluate, log_prob, 3, tf.constant([1, 2]), None
        )
    actions = seen["actions"].numpy()
    assert actions.shape[:2] == (3, 6) and rewards.shape == (3, 6)
    rows = actions.reshape(3, 6, -1)
    assert all(len({row.tobytes() for row in rows[:, b]}) == 3 for b in range(6))  # distinct per input
    assert float(metrics["reward"]) == pytest.approx(-float(loss))
    assert np.isfinite(tape.gradient(loss, logits).numpy()).all()


@pytest.mark.parametrize("k", [2, 3])
def test_a_batch_of_one_with_several_variables_draws_distinct_values(k):
    # Keras' TensorFlow add took the [1, 1, K] operand of a batch of one for a bias (and failed to reshape).
    values = to_numpy(estimators.sample_without_replacement(np.zeros((1, 2, 3), "float32"), k, seed=1))  # [k, 1, 2]
    assert values.shape == (k, 1, 2)
    assert len({tuple(row) for row in values[:, 0]}) == k
