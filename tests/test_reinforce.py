"""REINFORCE: unbiasedness against exact enumeration, baselines' variance, fit, custom loops, TFP, errors."""

import itertools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from helpers import softmax

import keras_gumbel
from keras_gumbel import reinforce

tfd = tfp.distributions

# A small categorical problem with positive rewards, where a baseline matters.
LOGITS = np.array([0.3, -0.2, 0.5, 0.0], "float32")
PAYOFF = np.array([6.0, 7.0, 8.0, 9.0], "float32")
PROBABILITIES = softmax(LOGITS)
EXACT_GRADIENT = PROBABILITIES * (PAYOFF - PROBABILITIES @ PAYOFF)  # d/dlogits of sum_k p_k f_k


def per_input_gradient_estimates(baseline_kind, num_inputs=4000, num_samples=4, seed=0, return_baseline=False):
    """Score-function estimates of grad E[f], one per input (the mean over its samples).

    With `return_baseline`, also the moving average's value (a constant here; 0 for the other kinds).
    """
    theta = tf.Variable(np.tile(LOGITS, (num_inputs, 1)))
    distribution = tfd.OneHotCategorical(logits=theta, dtype="float32")
    actions = distribution.sample(num_samples, seed=tf.constant([seed, 1]))  # [S, B, K]
    rewards = tf.reduce_sum(actions * PAYOFF, -1)  # [S, B]
    with tf.GradientTape() as tape:
        log_prob = distribution.log_prob(actions)
        baseline = None
        if baseline_kind == "leave_one_out":
            baseline = keras_gumbel.leave_one_out_baseline(rewards, axis=0)
        elif baseline_kind == "moving_average":
            average = keras_gumbel.MovingAverageBaseline(decay=0.9)
            warm_up = tf.reduce_sum(tfd.OneHotCategorical(logits=LOGITS).sample(200, seed=[seed, 2]) * PAYOFF, -1)
            for batch in tf.split(tf.cast(warm_up, "float32"), 20):
                average(batch, training=True)
            baseline = average(rewards, training=False)
        terms = keras_gumbel.score_function_terms(log_prob, rewards, baseline)
        # The loss of input b is the mean of its samples' terms; summing over
        # inputs keeps them apart in the gradient of the (per-input) logits.
        per_input_loss = tf.reduce_sum(tf.reduce_mean(terms, axis=0))
    estimates = -tape.gradient(per_input_loss, theta).numpy()  # [B, K]: estimates of +grad E[f]
    if return_baseline:
        constant = float(baseline.numpy()) if baseline_kind == "moving_average" else 0.0
        return estimates, constant
    return estimates


@pytest.mark.parametrize("baseline_kind", [None, "leave_one_out", "moving_average"])
def test_estimate_is_unbiased_against_exact_enumeration(baseline_kind):
    estimates = per_input_gradient_estimates(baseline_kind)
    standard_errors = estimates.std(axis=0) / math.sqrt(len(estimates))
    assert (np.abs(estimates.mean(axis=0) - EXACT_GRADIENT) < 5 * standard_errors).all(), (
        estimates.mean(axis=0),
        EXACT_GRADIENT,
        standard_errors,
    )


def exact_estimator_variance(baseline_kind, num_samples=4, constant=0.0):
    """Total variance (trace of the covariance) of one input's estimate, by enumerating all joint samples."""
    one_hot = np.eye(4)
    second_moment, mean = 0.0, np.zeros(4)
    for joint in itertools.product(range(4), repeat=num_samples):
        probability = np.prod(PROBABILITIES[list(joint)])
        rewards = PAYOFF[list(joint)].astype("float64")
        if baseline_kind == "leave_one_out":
            baselines = (rewards.sum() - rewards) / (num_samples - 1)
        else:
            baselines = np.full(num_samples, constant)
        estimate = np.mean([(r - b) * (one_hot[a] - PROBABILITIES) for a, r, b in zip(joint, rewards, baselines)], 0)
        second_moment += probability * estimate @ estimate
        mean += probability * estimate
    np.testing.assert_allclose(mean, EXACT_GRADIENT, rtol=1e-5)  # every one of these is unbiased
    return second_moment - mean @ mean


def test_baselines_lower_the_variance_as_exact_enumeration_says():
    for kind in (None, "leave_one_out", "moving_average"):
        estimates, baseline = per_input_gradient_estimates(kind, return_baseline=True)
        # The measured total variance and its standard error (from the per-input squared deviations).
        squared_deviations = ((estimates - estimates.mean(0)) ** 2).sum(-1)
        measured = squared_deviations.mean()
        standard_error = squared_deviations.std() / np.sqrt(len(squared_deviations))
        exact = exact_estimator_variance(kind, constant=baseline)
        assert abs(measured - exact) < 5 * standard_error, (kind, measured, exact, standard_error)
    # The reductions these figures add up to (exact): leave-one-out ~41x, a constant baseline at E[r] ~67x.
    expected_reward = PROBABILITIES @ PAYOFF
    assert exact_estimator_variance(None) / exact_estimator_variance("leave_one_out") > 40
    assert exact_estimator_variance(None) / exact_estimator_variance(None, constant=expected_reward) > 60


def test_loss_gradient_of_a_constant_reward_is_zero_with_leave_one_out():
    theta = tf.Variable(LOGITS)
    distribution = tfd.OneHotCategorical(logits=theta, dtype="float32")
    actions = distribution.sample(8, seed=[3, 4])
    rewards = tf.fill([8], 5.0)
    with tf.GradientTape() as tape:
        loss = keras_gumbel.score_function_loss(
            distribution.log_prob(actions), rewards, keras_gumbel.leave_one_out_baseline(rewards)
        )
    np.testing.assert_allclose(tape.gradient(loss, theta).numpy(), 0.0, atol=1e-7)


def test_reward_and_baseline_get_no_gradient():
    reward = tf.Variable([1.0, 2.0])
    baseline = tf.Variable(0.5)
    log_prob = tf.Variable([-0.1, -0.2])
    with tf.GradientTape(persistent=True) as tape:
        loss = keras_gumbel.score_function_loss(log_prob, reward, baseline)
    assert tape.gradient(loss, reward) is None and tape.gradient(loss, baseline) is None
    np.testing.assert_allclose(tape.gradient(loss, log_prob).numpy(), [-0.25, -0.75])


def test_leave_one_out_values_and_errors():
    rewards = np.array([[1.0, 10.0], [3.0, 20.0], [5.0, 30.0]], "float32")
    np.testing.assert_allclose(
        keras_gumbel.leave_one_out_baseline(rewards, axis=0), [[4.0, 25.0], [3.0, 20.0], [2.0, 15.0]]
    )
    with pytest.raises(ValueError, match="at least 2 samples"):
        keras_gumbel.leave_one_out_baseline(np.ones((1, 5), "float32"), axis=0)


def test_moving_average_baseline_is_bias_corrected_and_saved(tmp_path):
    average = keras_gumbel.MovingAverageBaseline(decay=0.5)
    assert float(average(tf.constant([4.0]), training=True)) == 0.0  # nothing seen yet
    assert float(average(tf.constant([2.0]), training=True)) == pytest.approx(4.0)  # bias-corrected first mean
    # After 4 then 2: (0.5 * 0.5 * 4 + 0.5 * 2) / (1 - 0.25) = 2.666...
    assert float(average(tf.constant([100.0]), training=False)) == pytest.approx(8 / 3)
    model = keras.Sequential([keras.Input(()), average])
    model.save_weights(tmp_path / "baseline.weights.h5")
    restored = keras.Sequential([keras.Input(()), keras_gumbel.MovingAverageBaseline(decay=0.5)])
    restored.load_weights(tmp_path / "baseline.weights.h5")
    assert float(restored.layers[0].value()) == pytest.approx(8 / 3)
    with pytest.raises(ValueError, match="decay=1.0"):
        keras_gumbel.MovingAverageBaseline(decay=1.0)


NUM_CONTEXTS, NUM_ACTIONS = 5, 4
BEST_ACTION = (np.arange(NUM_CONTEXTS) + 1) % NUM_ACTIONS
CONTEXTS = np.eye(NUM_CONTEXTS, dtype="float32")[np.random.default_rng(0).integers(NUM_CONTEXTS, size=640)]


def bandit_reward(contexts, actions):
    """1 for the context's best action, 0 otherwise: no gradient through it exists."""
    best = tf.one_hot(tf.gather(BEST_ACTION, tf.argmax(contexts, -1)), NUM_ACTIONS)
    return tf.reduce_sum(actions * best, -1)


def bandit_policy():
    return keras.Sequential([keras.Input((NUM_CONTEXTS,)), keras.layers.Dense(NUM_ACTIONS)])


@pytest.mark.slow
@pytest.mark.parametrize("baseline", [None, "leave_one_out", "moving_average", "learned"])
def test_a_contextual_bandit_is_learned_through_fit(baseline):
    if baseline == "learned":
        baseline = keras.Sequential([keras.Input((NUM_CONTEXTS,)), keras.layers.Dense(1)])
    model = keras_gumbel.ReinforceModel(bandit_policy(), bandit_reward, num_samples=4, baseline=baseline, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    history = model.fit(CONTEXTS, epochs=4, batch_size=64, verbose=0)
    assert history.history["reward"][-1] > history.history["reward"][0]
    results = model.evaluate(CONTEXTS, verbose=0, return_dict=True)
    assert results["greedy_reward"] == 1.0
    assert results["reward"] > 0.8
    greedy = np.argmax(keras.ops.convert_to_numpy(model.predict(np.eye(NUM_CONTEXTS, dtype="float32"), verbose=0)), -1)
    np.testing.assert_array_equal(greedy, BEST_ACTION)


def test_fit_with_targets_passes_them_to_the_reward():
    labels = BEST_ACTION[np.argmax(CONTEXTS, -1)]

    def reward_fn(contexts, actions, targets):
        return tf.reduce_sum(actions * tf.one_hot(tf.cast(targets, "int32"), NUM_ACTIONS), -1)

    model = keras_gumbel.ReinforceModel(bandit_policy(), reward_fn, num_samples=2, baseline="leave_one_out", seed=1)
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    model.fit(CONTEXTS, labels, epochs=4, batch_size=64, verbose=0)
    assert model.evaluate(CONTEXTS, labels, verbose=0, return_dict=True)["greedy_reward"] == 1.0


@pytest.mark.parametrize("jit_compile", [False, True])
def test_make_train_step_learns_the_bandit_compiled_and_draws_new_samples(jit_compile):
    calls = []

    def counting_reward(contexts, actions):
        calls.append(tuple(actions.shape))  # Python side effect: once per trace
        return bandit_reward(contexts, actions)

    policy = bandit_policy()
    step = keras_gumbel.make_train_step(
        policy,
        counting_reward,
        keras.optimizers.Adam(0.05),
        num_samples=8,
        baseline="leave_one_out",
        seed=2,
        jit_compile=jit_compile,
    )
    batch = tf.constant(CONTEXTS[:64])
    rewards = [float(step(batch)["reward"]) for _ in range(60)]
    # One vectorised reward call for all 8 x 64 samples per trace (the first call traces
    # twice, as tf.function does when the optimizer creates its variables).
    assert 1 <= len(calls) <= 2 and set(calls) == {(8 * 64, NUM_ACTIONS)}
    assert np.mean(rewards[-10:]) > 0.9 > np.mean(rewards[:3])
    metrics = step(batch)
    assert set(metrics) >= {"reward", "loss", "gradient_norm", "baseline"}


def test_tfp_distributions_with_log_prob_train_a_continuous_policy():
    # A Normal policy over a 2-vector; the reward peaks at (3, -1).
    mean = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2, kernel_initializer="zeros")])
    target = tf.constant([3.0, -1.0])

    def reward_fn(inputs, actions):
        return -tf.reduce_sum(tf.square(actions - target), -1)

    step = keras_gumbel.make_train_step(
        mean,
        reward_fn,
        keras.optimizers.Adam(0.1),
        num_samples=16,
        baseline="leave_one_out",
        distribution=lambda output: tfd.Normal(output, 0.5),
        seed=3,
    )
    ones = tf.ones((32, 1))
    for _ in range(200):
        step(ones)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(mean(ones[:1]))[0], [3.0, -1.0], atol=0.3)


@pytest.mark.parametrize(
    "distribution",
    [
        lambda logits: tfd.Categorical(logits=logits),
        lambda logits: tfd.Bernoulli(logits=logits[..., 0], dtype="float32"),
    ],
)
def test_integer_and_binary_actions(distribution):
    def reward_fn(contexts, actions):
        return tf.cast(tf.equal(tf.cast(actions, "int64"), 1), "float32")

    policy = keras.Sequential([keras.Input((NUM_CONTEXTS,)), keras.layers.Dense(2)])
    step = keras_gumbel.make_train_step(
        policy,
        reward_fn,
        keras.optimizers.Adam(0.1),
        num_samples=4,
        baseline="moving_average",
        distribution=distribution,
    )
    rewards = [float(step(tf.constant(CONTEXTS[:64]))["reward"]) for _ in range(80)]
    assert np.mean(rewards[-10:]) > 0.9


def test_entropy_bonus_keeps_the_policy_spread():
    def constant_reward(contexts, actions):
        return tf.reduce_sum(actions * tf.constant([1.0, 0.0, 0.0, 0.0]), -1)

    entropies = {}
    for weight in (0.0, 5.0):
        policy = bandit_policy()
        step = keras_gumbel.make_train_step(
            policy,
            constant_reward,
            keras.optimizers.Adam(0.05),
            num_samples=4,
            baseline="leave_one_out",
            entropy_weight=weight,
            seed=4,
        )
        for _ in range(60):
            step(tf.constant(CONTEXTS[:64]))
        probabilities = softmax(keras.ops.convert_to_numpy(policy(CONTEXTS[:64])))
        entropies[weight] = float(-(probabilities * np.log(probabilities + 1e-12)).sum(-1).mean())
    assert entropies[5.0] > 1.2 > entropies[0.0]


def test_errors_name_the_problem():
    policy = bandit_policy()
    with pytest.raises(ValueError, match="num_samples=1"):
        keras_gumbel.make_train_step(policy, bandit_reward, keras.optimizers.Adam(), baseline="leave_one_out")
    with pytest.raises(ValueError, match="baseline='mean'"):
        keras_gumbel.make_train_step(policy, bandit_reward, keras.optimizers.Adam(), baseline="mean")
    with pytest.raises(ValueError, match="entropy_weight=-1"):
        keras_gumbel.make_train_step(policy, bandit_reward, keras.optimizers.Adam(), entropy_weight=-1.0)
    with pytest.raises(TypeError, match="reward_fn="):
        keras_gumbel.make_train_step(policy, 3.0, keras.optimizers.Adam())

    wrong_shape = keras_gumbel.make_train_step(
        policy, lambda contexts, actions: actions, keras.optimizers.Adam(), num_samples=2
    )
    with pytest.raises(ValueError, match="one reward per input and sample"):
        wrong_shape(tf.constant(CONTEXTS[:8]))

    class NoLogProb:
        def sample(self, *args, **kwargs):
            return tf.zeros((2, 8))

    no_log_prob = keras_gumbel.make_train_step(
        policy, bandit_reward, keras.optimizers.Adam(), distribution=lambda output: NoLogProb()
    )
    with pytest.raises(TypeError, match="log_prob"):
        no_log_prob(tf.constant(CONTEXTS[:8]))


def test_score_function_loss_is_backend_agnostic_math():
    log_prob = np.log(np.array([0.2, 0.5, 0.5], "float32"))
    reward = np.array([1.0, 0.0, 2.0], "float32")
    expected = -np.mean(reward * log_prob)
    assert float(reinforce.score_function_loss(log_prob, reward)) == pytest.approx(expected)
    assert float(reinforce.score_function_loss(log_prob, reward, 1.0)) == pytest.approx(
        -np.mean((reward - 1) * log_prob)
    )


def test_reinforce_model_trains_the_policy_regularisation_losses():
    # With a zero reward the score-function gradient is zero: only the L2 penalty moves the kernel.
    policy = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(2, kernel_initializer="ones", kernel_regularizer=keras.regularizers.L2(100.0)),
        ]
    )
    model = keras_gumbel.ReinforceModel(policy, lambda inputs, actions: tf.zeros(tf.shape(actions)[:1]), seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.001))
    model.fit(np.ones((8, 3), "float32"), epochs=1, verbose=0)
    # One SGD step on 100 * sum(w^2): w <- w - 0.001 * 200 w = 0.8 w.
    np.testing.assert_allclose(policy.layers[0].kernel.numpy(), 0.8, rtol=1e-5)


def one_update(policy_dtype=None, optimizer=None, baseline="leave_one_out"):
    """The kernel change of one ReinforceModel.fit epoch (4 batches) on the bandit, from fixed weights."""
    keras.utils.set_random_seed(0)
    policy = keras.Sequential([keras.Input((NUM_CONTEXTS,)), keras.layers.Dense(NUM_ACTIONS, dtype=policy_dtype)])
    before = policy.get_weights()[0].copy()
    model = keras_gumbel.ReinforceModel(policy, bandit_reward, num_samples=4, baseline=baseline, seed=0)
    model.compile(optimizer=optimizer or keras.optimizers.SGD(1.0))
    model.fit(CONTEXTS[:256], epochs=1, batch_size=64, verbose=0)
    return policy.get_weights()[0] - before, model


def test_mixed_precision_scales_the_loss_as_fit_does():
    reference, _ = one_update()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        change, model = one_update()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    # Without scale_loss the LossScaleOptimizer divided the gradients by 2**15: a change of ~1e-5.
    np.testing.assert_allclose(change, reference, atol=2e-3 * np.abs(reference).max())


def test_policies_of_other_dtypes_train_with_a_learned_baseline_and_regularisation():
    baseline = keras.Sequential([keras.Input((NUM_CONTEXTS,)), keras.layers.Dense(1)])
    change, model = one_update(policy_dtype="float64", baseline=baseline)
    assert np.abs(change).max() > 0.01
    logs = model.evaluate(CONTEXTS[:64], verbose=0, return_dict=True)
    assert np.isfinite(list(logs.values())).all()
    regularised = keras.Sequential(
        [keras.Input((NUM_CONTEXTS,)), keras.layers.Dense(NUM_ACTIONS, dtype="float64", kernel_regularizer="l2")]
    )
    model = keras_gumbel.ReinforceModel(regularised, bandit_reward, num_samples=2, seed=0)
    model.compile(optimizer="sgd")
    assert np.isfinite(model.fit(CONTEXTS[:64], verbose=0).history["loss"]).all()


def test_weights_round_trip_with_baseline_and_sampling_stream(tmp_path):
    _, model = one_update(baseline="moving_average")
    assert model.built  # save_weights, ModelCheckpoint and BackupAndRestore need it
    path = str(tmp_path / "model.weights.h5")
    model.save_weights(path)
    clone = keras_gumbel.ReinforceModel(bandit_policy(), bandit_reward, num_samples=4, baseline="moving_average")
    clone.load_weights(path)
    np.testing.assert_array_equal(clone.policy.get_weights()[0], model.policy.get_weights()[0])
    assert float(clone.baseline.count.numpy()) == float(model.baseline.count.numpy()) == 4.0
    np.testing.assert_array_equal(clone.seed_generator.state.numpy(), model.seed_generator.state.numpy())


def test_backup_and_restore_resumes_an_interrupted_run_exactly(tmp_path):
    class StopAtEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("interrupted")

    def run(callbacks):
        keras.utils.set_random_seed(0)
        model = keras_gumbel.ReinforceModel(bandit_policy(), bandit_reward, num_samples=2, baseline="moving_average")
        model.compile(optimizer=keras.optimizers.SGD(0.5))
        model.fit(CONTEXTS[:128], epochs=4, batch_size=64, verbose=0, callbacks=callbacks)
        return model

    reference = run([])
    backup = str(tmp_path / "backup")
    with pytest.raises(RuntimeError, match="interrupted"):
        run([keras.callbacks.BackupAndRestore(backup), StopAtEpoch()])
    resumed = run([keras.callbacks.BackupAndRestore(backup)])
    # Policy, moving-average state and the sampling stream all continue: the same run as without the interruption.
    assert int(resumed.optimizer.iterations.numpy()) == 8
    np.testing.assert_array_equal(resumed.seed_generator.state.numpy(), reference.seed_generator.state.numpy())
    assert float(resumed.baseline.count.numpy()) == float(reference.baseline.count.numpy()) == 8.0
    np.testing.assert_allclose(resumed.policy.get_weights()[0], reference.policy.get_weights()[0], rtol=1e-5)


def test_evaluate_lists_line_up_with_metrics_names():
    _, model = one_update()
    values = model.evaluate(CONTEXTS[:128], verbose=0)
    logs = model.evaluate(CONTEXTS[:128], verbose=0, return_dict=True)
    assert model.metrics_names[0] == "loss"
    # Every evaluated value under its own name (gradient_norm, training-only, comes last and is not reported).
    # Each evaluate draws new actions: the greedy reward is the value both calls share.
    named = dict(zip(model.metrics_names, values))
    assert set(named) == set(logs) and "gradient_norm" not in logs
    assert named["greedy_reward"] == logs["greedy_reward"] and named["greedy_reward"] != named["reward"]


def test_more_errors_name_the_problem():
    policy = bandit_policy()
    x = tf.constant(CONTEXTS[:8])
    with pytest.raises(TypeError, match="policy="):
        keras_gumbel.make_train_step(lambda inputs: inputs, bandit_reward, "adam")
    with pytest.raises(TypeError, match="distribution='normal'"):
        keras_gumbel.make_train_step(policy, bandit_reward, "adam", distribution="normal")
    with pytest.raises(ValueError, match="optimizer='adamm'"):
        keras_gumbel.make_train_step(policy, bandit_reward, "adamm")
    with pytest.raises(TypeError, match="decay='0.9'"):
        keras_gumbel.MovingAverageBaseline("0.9")
    assert keras_gumbel.MovingAverageBaseline(np.float32(0.5)).decay == 0.5
    keras_gumbel.make_train_step(policy, bandit_reward, "adam", entropy_weight=np.float32(0.01))(x)  # a name works
    for jit_compile in (False, True):
        # 8 rewards for 2 samples x 8 inputs: the documented message, not a reshape error from inside TF.
        short = keras_gumbel.make_train_step(
            policy, lambda i, a: bandit_reward(i, a)[:8], "sgd", num_samples=2, jit_compile=jit_compile
        )
        with pytest.raises(ValueError, match="num_samples \\* batch_size = 16"):
            short(x)
    wide_baseline = keras.Sequential([keras.Input((NUM_CONTEXTS,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="one reward per input"):
        keras_gumbel.make_train_step(policy, bandit_reward, "sgd", num_samples=2, baseline=wide_baseline)(x)
    # The batch folded into the event: log_prob [S] would pair sample s with input s's reward when S == B.
    folded = keras_gumbel.make_train_step(
        keras.Sequential([keras.Input((NUM_CONTEXTS,)), keras.layers.Dense(1)]),
        lambda i, a: -tf.reduce_sum(a, -1),
        "sgd",
        num_samples=8,
        distribution=lambda output: tfd.Independent(tfd.Normal(output, 1.0), reinterpreted_batch_ndims=2),
    )
    with pytest.raises(ValueError, match="batch axis"):
        folded(x)
    model = keras_gumbel.ReinforceModel(policy, lambda i, a, y: bandit_reward(i, a), num_samples=2)
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="sample_weight"):
        model.fit(CONTEXTS[:8], CONTEXTS[:8], sample_weight=np.ones(8), verbose=0)


def test_score_function_refuses_rewards_and_baselines_that_broadcast_to_a_larger_shape():
    log_prob = np.log(np.array([0.2, 0.5, 0.5, 0.8], "float32"))
    reward = np.array([1.0, 0.0, 2.0, 3.0], "float32")
    # [B, 1] against [B] broadcast to [B, B]: every sample was credited with the batch's mean reward.
    for function in (reinforce.score_function_terms, reinforce.score_function_loss):
        with pytest.raises(ValueError, match=r"`reward`.*`log_prob`.*\(4,\).*reward\.shape=\(4, 1\)"):
            function(log_prob, reward[:, None])
        with pytest.raises(ValueError, match=r"`reward`.*\(4,\).*reward\.shape=\(2,\)"):
            function(log_prob, reward[:2])
        with pytest.raises(ValueError, match=r"`baseline`.*`reward`.*\(4,\).*baseline\.shape=\(4, 1\)"):
            function(log_prob, reward, reward[:, None])
    # Python lists and NumPy arrays are accepted; a scalar baseline (a moving average) still broadcasts.
    expected = -np.mean((reward - 1.5) * log_prob)
    assert float(reinforce.score_function_loss(log_prob.tolist(), reward.tolist(), 1.5)) == pytest.approx(expected)
    assert float(reinforce.score_function_loss(log_prob, reward, np.float32(1.5))) == pytest.approx(expected)
    # A per-input baseline [1, B] or [B] against [S, B] rewards (a learned baseline) keeps the shape [S, B].
    log_probs, rewards = np.tile(log_prob, (3, 1)), np.tile(reward, (3, 1))
    for baseline in (np.ones((1, 4), "float32"), np.ones(4, "float32")):
        assert tuple(reinforce.score_function_terms(log_probs, rewards, baseline).shape) == (3, 4)
    with pytest.raises(ValueError, match=r"`baseline`.*\(3, 4\).*baseline\.shape=\(4, 4\)"):
        reinforce.score_function_terms(log_probs, rewards, np.ones((4, 4), "float32"))


def test_score_function_checks_what_static_shapes_allow_under_tf_function():
    vector, column = tf.TensorSpec([None], tf.float32), tf.TensorSpec([None, 1], tf.float32)
    # The ranks differ whatever the batch size: refused when traced.
    wrong = tf.function(reinforce.score_function_loss, input_signature=[vector, column])
    with pytest.raises(ValueError, match=r"reward\.shape=\(None, 1\)"):
        wrong.get_concrete_function()
    # Unknown sizes of the same rank are not checked at run time: these trace and run.
    right = tf.function(reinforce.score_function_loss, input_signature=[vector, vector, tf.TensorSpec([], tf.float32)])
    loss = right(tf.math.log([0.5, 0.25]), tf.constant([1.0, 2.0]), tf.constant(1.0))
    assert float(loss) == pytest.approx(-np.mean(np.array([0.0, 1.0]) * np.log([0.5, 0.25])))


def short_by_one_at_run_time(contexts, actions):
    """One reward too few, in a tensor whose length is only known at run time (static shape [None])."""
    rewards = bandit_reward(contexts, actions)
    return tf.boolean_mask(rewards, rewards > -1)[:-1]


def test_a_reward_length_wrong_only_at_run_time_fails_with_the_documented_message():
    # Static batch shapes: TensorFlow's graph optimiser used to fold the length check to true (it took the
    # length from the reshape that followed), so the reshape's own error was what the user saw.
    message = "`reward_fn` must return one reward per input and sample"
    step = keras_gumbel.make_train_step(bandit_policy(), short_by_one_at_run_time, "sgd", num_samples=2)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        step(tf.constant(CONTEXTS[:8]))
    model = keras_gumbel.ReinforceModel(bandit_policy(), short_by_one_at_run_time, num_samples=2)
    model.compile(optimizer="sgd", jit_compile=False)
    dataset = tf.data.Dataset.from_tensor_slices(CONTEXTS[:16]).batch(8, drop_remainder=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        model.fit(dataset, shuffle=False, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        model.evaluate(dataset, verbose=0)


def test_compile_refuses_a_loss_the_reinforce_objective_would_ignore():
    model = keras_gumbel.ReinforceModel(bandit_policy(), bandit_reward, num_samples=2, seed=0)
    for arguments, keywords in (((), {"loss": "mse"}), (("adam", "mse"), {}), ((), {"loss_weights": [2.0]})):
        with pytest.raises(ValueError, match="REINFORCE objective.*add_loss"):
            model.compile(*arguments, **keywords)
    # An optimizer alone, by name, positionally or by keyword, still compiles and trains.
    for arguments, keywords in ((("adam",), {}), ((), {"optimizer": keras.optimizers.SGD(0.1), "loss": None})):
        model.compile(*arguments, **keywords)
        assert np.isfinite(model.fit(CONTEXTS[:64], batch_size=32, verbose=0).history["loss"]).all()
