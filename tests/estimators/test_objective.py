"""What make_train_step and ReinforceModel share (estimators/_objective.py): the batch's policy, rewards asked
for sample-major in one call, log-probabilities [S, B], the estimator chosen, and the gradient step.

TensorFlow backend only (tf.GradientTape and TensorFlow Probability).
"""

import keras
import numpy as np
import pytest
from helpers import to_numpy

from keras_gumbel import estimators
from keras_gumbel.estimators import _objective

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the training helpers need TensorFlow")
tf = pytest.importorskip("tensorflow")
tfd = pytest.importorskip("tensorflow_probability").distributions

LOGITS = np.log(np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], "float32"))


def _policy():
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])


def _objective_of(reward_fn, num_samples=3, distribution=None, estimator=None, baseline=None, entropy_weight=0.0):
    return _objective._Objective(
        _policy(), reward_fn, num_samples, distribution, 0, estimator, baseline, entropy_weight
    )


@pytest.mark.parametrize("name, kind", [(None, "categorical"), ("categorical", "index"), ("bernoulli", "binary")])
def test_the_batch_policy_is_built_from_logits_by_name(name, kind):
    policy = _objective._as_policy(tf.constant(LOGITS), name)
    assert policy.kind == kind
    np.testing.assert_array_equal(to_numpy(policy.logits), LOGITS)


def test_a_distribution_given_or_made_by_a_callable_is_read_once():
    given = tfd.Categorical(logits=LOGITS)
    assert _objective._as_policy(given, None).distribution is given
    made = _objective._as_policy(tf.constant(LOGITS), lambda logits: tfd.Bernoulli(logits=logits))
    assert made.kind == "binary"
    with pytest.raises(TypeError, match=r"must have `sample` and `log_prob` methods"):
        _objective._as_policy(tf.constant(LOGITS), lambda logits: logits)


@pytest.mark.parametrize(
    "distribution, error", [("poisson", ValueError), (3, TypeError)], ids=["unknown_name", "not_callable"]
)
def test_a_distribution_argument_that_is_no_name_or_callable_is_refused(distribution, error):
    with pytest.raises(error, match=r"argument `distribution`. Expected None, one of \('one_hot_categorical', "):
        _objective._check_distribution(distribution)


def test_inputs_are_repeated_sample_major_to_line_up_with_the_flattened_actions():
    inputs = {"x": np.array([[1.0], [2.0]], "float32"), "y": np.array([10, 20], "int32")}
    repeated = _objective._repeat_inputs(inputs, 3)
    np.testing.assert_array_equal(to_numpy(repeated["x"])[:, 0], [1, 2, 1, 2, 1, 2])
    np.testing.assert_array_equal(to_numpy(repeated["y"]), [10, 20, 10, 20, 10, 20])
    actions = np.arange(3 * 2 * 4).reshape(3, 2, 4)  # [S, B, ...]
    flat = to_numpy(_objective._flatten_samples(actions))
    np.testing.assert_array_equal(flat[1 * 2 + 1], actions[1, 1])  # row s * B + b is sample s of input b


def test_rewards_come_from_one_call_on_every_row_and_are_read_back_as_s_by_b():
    calls = []

    def reward_fn(inputs, actions):
        calls.append((to_numpy(inputs), to_numpy(actions)))
        return inputs[:, 0] * 100.0 + tf.reduce_sum(actions, -1)

    objective = _objective_of(reward_fn)
    inputs = np.array([[1.0, 0.0], [2.0, 0.0]], "float32")
    actions = tf.constant(np.arange(3 * 2, dtype="float32").reshape(3, 2, 1))
    rewards = to_numpy(objective.rewards(inputs, None, actions, 3))
    assert len(calls) == 1 and calls[0][0].shape == (6, 2)
    np.testing.assert_array_equal(rewards, [[100, 201], [102, 203], [104, 205]])


def test_targets_reach_the_reward_as_a_third_argument_and_a_column_of_rewards_is_accepted():
    def reward_fn(inputs, actions, targets):
        return tf.cast(targets, "float32")[:, None]  # [S * B, 1]

    objective = _objective_of(reward_fn)
    rewards = objective.rewards(np.zeros((2, 2), "float32"), np.array([5, 7]), tf.zeros((3, 2, 1)), 3)
    np.testing.assert_array_equal(to_numpy(rewards), [[5, 7]] * 3)


def test_a_reward_of_the_wrong_length_names_the_expected_one():
    objective = _objective_of(lambda inputs, actions: tf.zeros((5,)))
    with pytest.raises(ValueError, match=r"a vector of length num_samples \* batch_size = 6; received .*\(5,\)"):
        objective.rewards(np.zeros((2, 2), "float32"), None, tf.zeros((3, 2, 1)), 3)


def test_log_prob_is_float32_and_summed_over_independent_components():
    objective = _objective_of(lambda inputs, actions: tf.zeros((6,)))
    normal = tfd.Normal(tf.zeros((2, 4), "float64"), tf.ones((2, 4), "float64"))
    actions = tf.zeros((3, 2, 4), "float64")
    log_prob = objective.log_prob(normal, actions, np.zeros((2, 2), "float32"))
    assert log_prob.dtype == tf.float32 and tuple(log_prob.shape) == (3, 2)
    np.testing.assert_allclose(to_numpy(log_prob), 4 * -0.5 * np.log(2 * np.pi), rtol=1e-6)


def test_a_distribution_whose_batch_is_not_the_inputs_is_refused():
    objective = _objective_of(lambda inputs, actions: tf.zeros((6,)))
    folded = tfd.Independent(tfd.Normal(tf.zeros((2, 4)), 1.0), 2)  # the batch axis folded into the event
    with pytest.raises(ValueError, match=r"must have the batch of inputs as its first batch axis"):
        objective.log_prob(folded, tf.zeros((3, 2, 4)), np.zeros((2, 2), "float32"))


def test_the_default_estimator_is_the_score_function_with_the_baseline_and_bonus_given():
    objective = _objective_of(lambda inputs, actions: tf.zeros((6,)), baseline="leave_one_out", entropy_weight=0.1)
    assert type(objective.estimator) is estimators.ScoreFunction
    assert isinstance(objective.estimator.baseline, estimators.LeaveOneOut)
    assert objective.estimator.entropy_weight == 0.1
    assert objective.metric_names[:2] == ("loss", "reward")  # as Keras lists the loss, then the reward
    assert type(_objective._resolve_estimator("vimco", None, 0.0)) is estimators.VIMCO


def test_an_estimator_with_baseline_or_bonus_arguments_is_refused():
    with pytest.raises(ValueError, match=r"Pass either `estimator` or `baseline` / `entropy_weight`, not both"):
        _objective._resolve_estimator(estimators.ScoreFunction(), "leave_one_out", 0.0)
    with pytest.raises(TypeError, match=r"argument `estimator`. Expected None, a keras_gumbel.estimators.Estimator"):
        _objective._resolve_estimator(3, None, 0.0)


@pytest.mark.parametrize(
    "policy, reward_fn, error, match",
    [
        (lambda x: x, lambda inputs, actions: 0.0, TypeError, r"argument `policy`. Expected a Keras model or layer"),
        (None, "reward", TypeError, r"argument `reward_fn`. Expected a callable"),
    ],
)
def test_the_policy_and_reward_are_checked(policy, reward_fn, error, match):
    with pytest.raises(error, match=match):
        _objective._Objective(policy or _policy(), reward_fn, 1, None, 0, None, None, 0.0)


def test_a_call_returns_the_estimators_loss_and_the_mean_reward():
    objective = _objective_of(lambda inputs, actions: tf.reduce_sum(actions * [1.0, 2.0, 3.0], -1), num_samples=4)
    loss, metrics = objective(np.zeros((2, 2), "float32"), None, tf.constant(LOGITS))
    assert list(metrics) == list(objective.metric_names)
    assert loss.dtype == tf.float32
    assert 1.0 <= float(metrics["reward"]) <= 3.0
    greedy = objective.greedy_reward(np.zeros((2, 2), "float32"), None, tf.constant(LOGITS))
    np.testing.assert_allclose(float(greedy), (3.0 + 1.0) / 2)  # the modes: category 2, then category 0


def test_trainable_variables_are_the_policys_then_the_estimators_once_each():
    baseline = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    objective = _objective_of(lambda inputs, actions: tf.zeros((6,)), baseline=baseline)
    variables = objective.trainable_variables()
    expected = list(objective.policy.trainable_variables) + list(baseline.trainable_variables)
    assert [id(v) for v in variables] == [id(v) for v in expected]


def test_a_gradient_step_applies_the_gradients_and_returns_their_global_norm():
    variable = tf.Variable([3.0, -4.0])
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(variable * [3.0, -4.0])  # gradient [3, -4]: norm 5
    norm = _objective._apply_gradients(optimizer, tape, loss, [variable])
    np.testing.assert_allclose(float(norm), 5.0, rtol=1e-6)
    np.testing.assert_allclose(variable.numpy(), [3.0 - 0.3, -4.0 + 0.4], rtol=1e-6)


def test_the_norm_is_reported_unscaled_under_loss_scaling():
    variable = tf.Variable([3.0, -4.0])
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(learning_rate=0.1))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(variable * [3.0, -4.0])
    np.testing.assert_allclose(float(_objective._apply_gradients(optimizer, tape, loss, [variable])), 5.0, rtol=1e-6)
    np.testing.assert_allclose(variable.numpy(), [2.7, -3.6], rtol=1e-6)


def test_off_tensorflow_the_message_says_which_backend_is_needed(monkeypatch):
    monkeypatch.setattr(_objective._backend, "backend", lambda: "jax")
    with pytest.raises(RuntimeError, match=r"ReinforceModel uses tf.GradientTape .* the running backend is 'jax'"):
        _objective._require_tensorflow("ReinforceModel")
