"""Training with an estimator: make_train_step and ReinforceModel (fit, evaluate, custom loops, TFP, saving, errors).

TensorFlow backend only (tests/integration/test_backend_agnostic.py checks the message given on the others).
"""

import keras
import numpy as np
import pytest
from helpers import softmax

import keras_gumbel
from keras_gumbel import estimators

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="make_train_step and ReinforceModel need TensorFlow"
)
tf = pytest.importorskip("tensorflow")
tfp = pytest.importorskip("tensorflow_probability")
tfd = tfp.distributions


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
    with pytest.raises(ValueError, match="distribution='normal'"):
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


# The estimator interface: `estimator=` instead of `baseline=` / `entropy_weight=`, and estimators of one's own.


def policy_and_baseline(baseline_kind):
    """A bandit policy and a `baseline=` argument, with the same initial weights on every call."""
    keras.utils.set_random_seed(0)
    policy = bandit_policy()
    if baseline_kind == "learned":
        return policy, keras.Sequential([keras.Input((NUM_CONTEXTS,)), keras.layers.Dense(1)])
    return policy, baseline_kind


def old_or_estimator_arguments(baseline, use_estimator, entropy_weight=0.1):
    if use_estimator:
        return {"estimator": estimators.ScoreFunction(baseline=baseline, entropy_weight=entropy_weight)}
    return {"baseline": baseline, "entropy_weight": entropy_weight}


@pytest.mark.parametrize("baseline_kind", [None, "leave_one_out", "moving_average", "learned"])
def test_an_estimator_gives_make_train_step_exactly_the_updates_of_the_old_arguments(baseline_kind):
    runs = []
    for use_estimator in (False, True):
        policy, baseline = policy_and_baseline(baseline_kind)
        step = keras_gumbel.make_train_step(
            policy,
            bandit_reward,
            keras.optimizers.Adam(0.05),
            num_samples=4,
            seed=5,
            **old_or_estimator_arguments(baseline, use_estimator),
        )
        metrics = [{name: float(value) for name, value in step(tf.constant(CONTEXTS[:64])).items()} for _ in range(3)]
        weights = policy.get_weights() + (step.baseline.get_weights() if step.baseline is not None else [])
        runs.append((weights, metrics, step))
    (old_weights, old_metrics, old_step), (new_weights, new_metrics, new_step) = runs
    assert len(old_weights) == len(new_weights)
    for old, new in zip(old_weights, new_weights):
        np.testing.assert_array_equal(old, new)
    assert old_metrics == new_metrics
    assert type(old_step.estimator) is type(new_step.estimator) is estimators.ScoreFunction
    assert set(new_metrics[0]) == {"loss", "reward", "gradient_norm", *new_step.estimator.metric_names}


@pytest.mark.parametrize("baseline_kind", [None, "leave_one_out", "moving_average", "learned"])
def test_an_estimator_gives_reinforce_model_exactly_the_updates_of_the_old_arguments(baseline_kind):
    runs = []
    for use_estimator in (False, True):
        policy, baseline = policy_and_baseline(baseline_kind)
        model = keras_gumbel.ReinforceModel(
            policy, bandit_reward, num_samples=4, seed=5, **old_or_estimator_arguments(baseline, use_estimator)
        )
        model.compile(optimizer=keras.optimizers.Adam(0.05))
        history = model.fit(CONTEXTS[:256], epochs=2, batch_size=64, verbose=0).history
        runs.append((model.get_weights(), history, model.metrics_names))
    (old_weights, old_history, old_names), (new_weights, new_history, new_names) = runs
    assert len(old_weights) == len(new_weights)
    for old, new in zip(old_weights, new_weights):
        np.testing.assert_array_equal(old, new)
    assert old_history == new_history and old_names == new_names


def test_an_estimator_and_the_arguments_it_replaces_are_not_given_together():
    policy = bandit_policy()
    estimator = estimators.ScoreFunction(baseline="leave_one_out")
    for arguments in ({"baseline": "leave_one_out"}, {"entropy_weight": 0.1}):
        with pytest.raises(ValueError, match="either `estimator` or `baseline` / `entropy_weight`, not both"):
            keras_gumbel.make_train_step(policy, bandit_reward, "sgd", num_samples=2, estimator=estimator, **arguments)
        with pytest.raises(ValueError, match="either `estimator` or `baseline` / `entropy_weight`, not both"):
            keras_gumbel.ReinforceModel(policy, bandit_reward, num_samples=2, estimator=estimator, **arguments)
    with pytest.raises(ValueError, match="registered names.*Received: estimator='leave_one_out'"):
        keras_gumbel.make_train_step(policy, bandit_reward, "sgd", num_samples=2, estimator="leave_one_out")
    with pytest.raises(TypeError, match="estimator=3"):
        keras_gumbel.make_train_step(policy, bandit_reward, "sgd", num_samples=2, estimator=3)
    # The estimator's own checks still apply: leave-one-out needs two samples.
    with pytest.raises(ValueError, match="num_samples=1"):
        keras_gumbel.ReinforceModel(policy, bandit_reward, estimator=estimator)


class LearnedCritic(estimators.Estimator):
    """A stand-in for a new estimator: its own layer (a critic), its own metric, its own sample-count check."""

    metric_names = ("advantage",)

    def __init__(self):
        self.critic = keras.Sequential([keras.Input((NUM_CONTEXTS,)), keras.layers.Dense(1, name="critic")])

    @property
    def layers(self):
        return [self.critic]

    def check_num_samples(self, num_samples):
        if num_samples < 2:
            raise ValueError("LearnedCritic needs two samples per input")

    def loss(self, distribution, actions, log_prob, rewards, inputs, training=None):
        value = keras.ops.reshape(self.critic(inputs, training=training), (1, -1))
        advantage = keras.ops.subtract(rewards, value)
        critic_loss = keras.ops.mean(keras.ops.square(advantage))
        return keras_gumbel.score_function_loss(log_prob, rewards, value) + critic_loss, {
            "advantage": keras.ops.mean(advantage)
        }


def test_an_estimator_of_ones_own_plugs_into_fit_with_its_layers_trained_and_saved(tmp_path):
    with pytest.raises(ValueError, match="two samples per input"):
        keras_gumbel.ReinforceModel(bandit_policy(), bandit_reward, estimator=LearnedCritic())
    estimator = LearnedCritic()
    model = keras_gumbel.ReinforceModel(bandit_policy(), bandit_reward, num_samples=4, seed=0, estimator=estimator)
    assert model.estimator is estimator and model.baseline is None
    assert model.metrics_names == ["loss", "reward", "advantage", "greedy_reward", "gradient_norm"]
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    critic_before = estimator.critic.get_weights()[0].copy()
    history = model.fit(CONTEXTS, epochs=4, batch_size=64, verbose=0).history
    assert set(history) == {"loss", "reward", "advantage", "gradient_norm"}
    assert history["reward"][-1] > history["reward"][0]
    assert np.abs(estimator.critic.get_weights()[0] - critic_before).max() > 0.01  # trained alongside
    assert model.evaluate(CONTEXTS, verbose=0, return_dict=True)["greedy_reward"] == 1.0
    # Tracked, so saved with the weights and restored into a model built the same way.
    path = str(tmp_path / "model.weights.h5")
    model.save_weights(path)
    clone = keras_gumbel.ReinforceModel(bandit_policy(), bandit_reward, num_samples=4, estimator=LearnedCritic())
    clone.load_weights(path)
    np.testing.assert_array_equal(clone.estimator.critic.get_weights()[0], estimator.critic.get_weights()[0])
    # The same estimator in a custom loop: its metric next to the loss, the reward and the gradient norm.
    step = keras_gumbel.make_train_step(bandit_policy(), bandit_reward, "sgd", num_samples=2, estimator=LearnedCritic())
    assert set(step(tf.constant(CONTEXTS[:8]))) == {"loss", "reward", "advantage", "gradient_norm"}


def test_an_estimator_must_return_the_metrics_it_names():
    class Undeclared(LearnedCritic):
        metric_names = ()

    step = keras_gumbel.make_train_step(bandit_policy(), bandit_reward, "sgd", num_samples=2, estimator=Undeclared())
    with pytest.raises(ValueError, match=r"returned the metrics \['advantage'\], but its metric_names are \[\]"):
        step(tf.constant(CONTEXTS[:8]))


def test_compute_loss_is_the_estimators_loss_plus_the_models_losses():
    # With a zero reward the surrogate is 0: the loss is the L2 penalty alone, and sample_weight is refused.
    dense = keras.layers.Dense(2, kernel_initializer="ones", kernel_regularizer=keras.regularizers.L2(0.5))
    policy = keras.Sequential([keras.Input((3,)), dense])
    model = keras_gumbel.ReinforceModel(policy, lambda inputs, actions: tf.zeros(tf.shape(actions)[:1]), seed=0)
    x = np.ones((8, 3), "float32")
    assert float(model.compute_loss(x, None, model(x), training=False)) == pytest.approx(0.5 * 6)
    with pytest.raises(ValueError, match="sample_weight"):
        model.compute_loss(x, None, model(x), sample_weight=np.ones(8), training=False)


class EveryAction(estimators.Estimator):
    """An estimator that chooses its own actions: every category once (S' = K, whatever num_samples is)."""

    metric_names = ("reward", "seen")

    def __init__(self):
        self.seen = []

    def estimate(self, distribution, evaluate, log_prob, num_samples, seed, inputs, training=None):
        logits = distribution.logits_parameter()
        batch_size = tf.shape(logits)[0]
        actions = tf.tile(tf.eye(NUM_ACTIONS)[:, None, :], [1, batch_size, 1])  # [K, B, K]
        action_log_prob = log_prob(actions)
        rewards = evaluate(actions)
        self.seen.append((num_samples, tuple(action_log_prob.shape), tuple(rewards.shape), seed.dtype))
        expected = tf.reduce_sum(tf.exp(action_log_prob) * rewards, 0)  # the exact expectation, [B]
        loss = -tf.reduce_mean(expected)
        return loss, {"reward": tf.reduce_mean(expected), "seen": tf.cast(tf.size(rewards), "float32")}, rewards


@pytest.mark.parametrize("jit_compile", [False, True])
def test_an_estimator_may_evaluate_its_own_number_of_actions(jit_compile):
    estimator = EveryAction()
    policy = bandit_policy()
    step = keras_gumbel.make_train_step(
        policy, bandit_reward, keras.optimizers.SGD(0.5), num_samples=3, estimator=estimator, jit_compile=jit_compile
    )
    contexts = tf.constant(CONTEXTS[:8])
    first = step(contexts)
    # evaluate and log_prob took K = 4 actions per input, not num_samples = 3; the estimate got the seed.
    assert estimator.seen[0][:3] == (3, (NUM_ACTIONS, 8), (NUM_ACTIONS, 8)) and estimator.seen[0][3] == tf.int32
    assert float(first["seen"]) == NUM_ACTIONS * 8
    # The estimator's "reward" (the exact expected reward) replaces the mean of the evaluated rewards (1/K).
    probabilities = softmax(keras.ops.convert_to_numpy(policy(contexts)))
    later = step(contexts)
    np.testing.assert_allclose(
        float(later["reward"]),
        np.mean(np.sum(probabilities * np.eye(NUM_ACTIONS)[BEST_ACTION[np.argmax(CONTEXTS[:8], -1)]], -1)),
        rtol=1e-5,
    )
    for _ in range(30):
        last = step(contexts)
    assert float(last["reward"]) > float(first["reward"]) + 0.3
