"""Every estimator in every mode users run it: eager (against its pure function), `make_train_step` as a graph and
under XLA, and `ReinforceModel.fit`.

`ESTIMATOR_CASES` lists the estimators: one case for every name in the registry (`estimators.names()`), made by
`estimators.get(name)`, on the categorical bandit when it estimates gradients for categorical variables, on the bits
otherwise, with 4 samples per input or the fewest it takes above that (`SETTINGS` changes these where a case needs
it), plus `VARIANTS` (other arguments, other variables). A registered estimator joins without an edit here. Each case
has a name, a factory returning a fresh estimator, the distribution its policy needs (`"categorical"`:
`OneHotCategorical(logits)` over `NUM_ACTIONS`; `"bernoulli"`: `Independent(Bernoulli(logits))` over `NUM_BITS`
bits), the samples per input, and, optionally, `min_gain` (the rise of the expected reward required) and `pure`: the
loss written with the public pure functions from the same seed, which the eager test compares with the estimator's
(value and gradient). Every test below then runs for it.

The properties:
- eager: `Estimator.estimate`, as the training helpers call it, gives the loss and gradient of its pure function;
- graph: one `make_train_step` update (SGD) is exactly minus the learning rate times the eager gradient for the same
  seed (the graph draws what eager draws);
- XLA: `make_train_step(jit_compile=True)` (whose random bits differ from eager's) gives finite losses and raises the
  policy's exact expected reward on a contextual bandit;
- fit: `ReinforceModel.fit` raises it too, with finite logged metrics.
TensorFlow only (the training helpers are).
"""

import dataclasses
from collections.abc import Callable

import keras
import numpy as np
import pytest

from keras_gumbel import _backend
from keras_gumbel import estimators

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the training helpers need TensorFlow")
tf = pytest.importorskip("tensorflow")
tfp = pytest.importorskip("tensorflow_probability")
tfd = tfp.distributions

NUM_CONTEXTS, NUM_ACTIONS, NUM_BITS = 5, 4, 3
CONTEXTS = np.eye(NUM_CONTEXTS, dtype="float32")[np.random.default_rng(0).integers(NUM_CONTEXTS, size=640)]
BEST_ACTION = (np.arange(NUM_CONTEXTS) + 1) % NUM_ACTIONS
# The bit pattern each context rewards: context c wants the binary digits of c + 1.
TARGET_BITS = ((np.arange(NUM_CONTEXTS)[:, None] + 1) >> np.arange(NUM_BITS)) & 1
SEED = 3


@dataclasses.dataclass(frozen=True)
class EstimatorCase:
    """One estimator of the matrix.

    Attributes:
        name: The test id.
        make: A factory returning a fresh estimator.
        distribution: `"categorical"` or `"bernoulli"` (see the module docstring).
        num_samples: The training helpers' `num_samples`.
        pure: Optional `pure(distribution, seed, num_samples, evaluate) -> loss`: the same loss written with the
            public pure functions, drawing from `seed` as the estimator does; `evaluate(actions [S', B, ...])` gives
            the rewards [S', B].
        min_gain: How much the exact expected reward must rise in the XLA and fit tests (from about 0.28 on the
            categorical bandit, 0.5 on the bits).
    """

    name: str
    make: Callable
    distribution: str
    num_samples: int = 4
    pure: Callable | None = None
    min_gain: float = 0.15


def _score_function_pure(distribution, seed, num_samples, evaluate):
    actions = tf.stop_gradient(distribution.sample(num_samples, seed=seed))
    rewards = evaluate(actions)
    return estimators.score_function_loss(
        distribution.log_prob(actions), rewards, estimators.leave_one_out_baseline(rewards)
    )


def _vimco_pure(distribution, seed, num_samples, evaluate):
    actions = tf.stop_gradient(distribution.sample(num_samples, seed=seed))
    return estimators.vimco_loss(log_prob=distribution.log_prob(actions), log_weights=evaluate(actions))


def _vimco_log_weights_pure(distribution, seed, num_samples, evaluate):
    actions = tf.stop_gradient(distribution.sample(num_samples, seed=seed))
    log_prob = distribution.log_prob(actions)
    return estimators.vimco_loss(log_prob=log_prob, log_weights=evaluate(actions) - log_prob)


def _enumerate_pure(distribution, seed, num_samples, evaluate):
    logits = distribution.logits_parameter()  # [B, K]: every category once
    actions = tf.tile(tf.eye(NUM_ACTIONS)[:, None, :], [1, tf.shape(logits)[0], 1])
    return estimators.enumeration_loss(tf.transpose(tf.nn.log_softmax(logits)), evaluate(actions))


def _unordered_set_pure(distribution, seed, num_samples, evaluate):
    logits = distribution.logits_parameter()
    indices = estimators.sample_without_replacement(logits[:, None, :], num_samples, seed=seed)[..., 0]  # [k, B]
    actions = tf.one_hot(indices, NUM_ACTIONS)
    return estimators.unordered_set_loss(distribution.log_prob(actions), evaluate(actions))


def _antithetic_pairs(distribution, seed, num_samples, evaluate):
    """The pairs ARM and DisARM draw: one uniform per bit and pair, from the step's seed."""
    logits = distribution.distribution.logits_parameter()  # Independent(Bernoulli)
    pairs = num_samples // 2
    uniform = tf.maximum(tf.random.stateless_uniform([pairs, *logits.shape], seed=seed), np.finfo("float32").tiny)
    sample, antithetic = estimators.antithetic_bernoulli(logits, uniform)
    rewards = evaluate(tf.concat([sample, antithetic], 0))
    return logits, uniform, rewards[:pairs], rewards[pairs:]


def _arm_pure(distribution, seed, num_samples, evaluate):
    return estimators.arm_loss(*_antithetic_pairs(distribution, seed, num_samples, evaluate))


def _disarm_pure(distribution, seed, num_samples, evaluate):
    return estimators.disarm_loss(*_antithetic_pairs(distribution, seed, num_samples, evaluate))


def _arsm_pure(distribution, seed, num_samples, evaluate):
    logits = distribution.logits_parameter()
    uniform = tf.maximum(tf.random.stateless_uniform([num_samples, *logits.shape], seed=seed), np.finfo("float32").tiny)
    exponential = -tf.math.log(uniform)
    dirichlet = exponential / tf.reduce_sum(exponential, -1, keepdims=True)
    actions = estimators.arsm_actions(logits, dirichlet)  # [1 + M, S, B, K]: the sample and its swaps
    rewards = evaluate(tf.reshape(actions, [-1, *logits.shape]))
    return estimators.arsm_loss(logits, dirichlet, tf.reshape(rewards, [actions.shape[0], num_samples, -1]))


# The cases' settings where the defaults (4 samples, or the fewest above; min_gain 0.15; no pure form) do not fit.
SETTINGS = {
    "reinforce_leave_one_out": {"pure": _score_function_pure},
    "vimco": {"pure": _vimco_pure},
    "enumerate": {"num_samples": 1, "pure": _enumerate_pure},
    "unordered_set": {"num_samples": 3, "pure": _unordered_set_pure},
    "arm": {"pure": _arm_pure},
    "disarm": {"pure": _disarm_pure},
    "arsm": {"num_samples": 1, "pure": _arsm_pure},
    # REBAR and RELAX: no pure form (their loss also carries the control variate's variance gradient).
    "rebar": {"num_samples": 2},
    "relax": {"num_samples": 2},
}

# Other arguments, other variables.
VARIANTS = [
    # Log-weights R - log q: the bound rewards a spread q (with one sample its optimum is q ~ exp(R), 0.475 on the
    # best action), so the expected reward rises less.
    EstimatorCase(
        "vimco_log_weights",
        lambda: estimators.VIMCO(subtract_log_prob=True),
        "categorical",
        pure=_vimco_log_weights_pure,
        min_gain=0.08,
    ),
    EstimatorCase("enumerate_bits", estimators.Enumerate, "bernoulli", num_samples=1),
    EstimatorCase("rebar_bits", estimators.REBAR, "bernoulli", num_samples=2),
    EstimatorCase("relax_event_shape", lambda: estimators.RELAX(event_shape=(NUM_ACTIONS,)), "categorical", 2),
    # Without `event_shape`: the default surrogate is built in the first step (graph, XLA, fit) and trained there.
    EstimatorCase("relax_bits", lambda: estimators.RELAX(), "bernoulli", num_samples=2),
    EstimatorCase("straight_through_bits", lambda: estimators.get("straight_through"), "bernoulli", num_samples=1),
]


def _fewest_samples_from(estimator, start=4):
    for num_samples in range(start, 17):
        try:
            estimator.check_num_samples(num_samples)
        except ValueError:
            continue
        return num_samples
    raise AssertionError(f"{estimator!r} takes no number of samples from {start} to 16")


def _registered_case(name):
    estimator = estimators.get(name)
    settings = SETTINGS.get(name, {})
    return EstimatorCase(
        name,
        lambda: estimators.get(name),
        "categorical" if "categorical" in estimator.variables else "bernoulli",
        num_samples=settings.get("num_samples", _fewest_samples_from(estimator)),
        pure=settings.get("pure"),
        min_gain=settings.get("min_gain", 0.15),
    )


ESTIMATOR_CASES = [_registered_case(name) for name in estimators.names()] + VARIANTS


def test_every_registered_estimator_has_a_case_and_every_setting_a_registered_name():
    assert {case.name for case in ESTIMATOR_CASES} >= set(estimators.names())
    assert set(SETTINGS) <= set(estimators.names())


def _ids(case):
    return case.name


def make_distribution(kind):
    if kind == "categorical":
        return None  # the helpers' default: OneHotCategorical(logits)
    return lambda logits: tfd.Independent(tfd.Bernoulli(logits=logits, dtype="float32"), 1)


def policy_distribution(kind, logits):
    return (
        tfd.OneHotCategorical(logits=logits, dtype="float32")
        if kind == "categorical"
        else make_distribution(kind)(logits)
    )


def reward_fn_for(kind):
    if kind == "categorical":

        def reward(contexts, actions):  # 1 for the context's best action
            best = tf.one_hot(tf.gather(BEST_ACTION, tf.argmax(contexts, -1)), NUM_ACTIONS)
            return tf.reduce_sum(actions * best, -1)

    else:

        def reward(contexts, actions):  # the fraction of bits equal to the context's pattern
            target = tf.cast(tf.gather(TARGET_BITS, tf.argmax(contexts, -1)), "float32")
            return tf.reduce_mean(1.0 - tf.abs(tf.cast(actions, "float32") - target), -1)

    return reward


def make_policy(kind, seed=0):
    outputs = NUM_ACTIONS if kind == "categorical" else NUM_BITS
    return keras.Sequential(
        [
            keras.Input((NUM_CONTEXTS,)),
            keras.layers.Dense(outputs, kernel_initializer=keras.initializers.RandomNormal(0.0, 0.3, seed=seed)),
        ]
    )


def expected_reward(policy, kind):
    """The policy's exact expected reward over the contexts, each weighted equally."""
    logits = keras.ops.convert_to_numpy(policy(np.eye(NUM_CONTEXTS, dtype="float32")))
    if kind == "categorical":
        probabilities = np.exp(logits - logits.max(-1, keepdims=True))
        probabilities /= probabilities.sum(-1, keepdims=True)
        return float(np.mean(probabilities[np.arange(NUM_CONTEXTS), BEST_ACTION]))
    on = 1.0 / (1.0 + np.exp(-logits))
    return float(np.mean(np.where(TARGET_BITS == 1, on, 1.0 - on)))


def make_step(case, policy, optimizer, jit_compile=False):
    return estimators.make_train_step(
        policy,
        reward_fn_for(case.distribution),
        optimizer,
        num_samples=case.num_samples,
        distribution=make_distribution(case.distribution),
        seed=SEED,
        jit_compile=jit_compile,
        estimator=case.make(),
    )


CONTEXT_BATCH = tf.constant(CONTEXTS[:16])


def eager_loss_and_gradients(case, policy):
    """The objective of the helpers' first step, computed eagerly: (loss, metrics, gradients w.r.t. the policy)."""
    objective = make_step(case, policy, keras.optimizers.SGD(0.0)).objective
    with tf.GradientTape() as tape:
        loss, metrics = objective(CONTEXT_BATCH, None, policy(CONTEXT_BATCH, training=True))
    return loss, metrics, tape.gradient(loss, policy.trainable_variables)


@pytest.mark.parametrize("case", [c for c in ESTIMATOR_CASES if c.pure is not None], ids=_ids)
def test_eager_estimate_equals_its_pure_function(case):
    policy = make_policy(case.distribution)
    loss, metrics, gradients = eager_loss_and_gradients(case, policy)
    objective = make_step(case, policy, keras.optimizers.SGD(0.0)).objective
    seed = _backend.tf_seed(keras.random.SeedGenerator(SEED))  # the helpers' first seed

    def evaluate(actions):
        return objective.rewards(CONTEXT_BATCH, None, actions, actions.shape[0])

    with tf.GradientTape() as tape:
        logits = policy(CONTEXT_BATCH, training=True)
        expected = case.pure(policy_distribution(case.distribution, logits), seed, case.num_samples, evaluate)
    assert np.isfinite(float(loss))
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-5, atol=1e-7)
    for ours, theirs in zip(gradients, tape.gradient(expected, policy.trainable_variables)):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-7)
    assert all(np.isfinite(float(value)) for value in metrics.values())


@pytest.mark.parametrize("case", ESTIMATOR_CASES, ids=_ids)
def test_a_graph_step_applies_the_eager_gradient(case):
    _, _, gradients = eager_loss_and_gradients(case, make_policy(case.distribution))
    assert any(np.abs(g.numpy()).max() > 0 for g in gradients)  # a real signal, not zeros
    policy = make_policy(case.distribution)
    before = [v.numpy() for v in policy.trainable_variables]
    step = make_step(case, policy, keras.optimizers.SGD(0.5))
    metrics = step(CONTEXT_BATCH)
    assert all(np.isfinite(float(value)) for value in metrics.values())
    for variable, start, gradient in zip(policy.trainable_variables, before, gradients):
        np.testing.assert_allclose(variable.numpy(), start - 0.5 * gradient.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("case", ESTIMATOR_CASES, ids=_ids)
def test_xla_steps_raise_the_expected_reward(case):
    policy = make_policy(case.distribution)
    start = expected_reward(policy, case.distribution)
    step = make_step(case, policy, keras.optimizers.Adam(0.05), jit_compile=True)
    for index in range(30):
        metrics = step(tf.constant(CONTEXTS[index * 16 : (index + 1) * 16]))
        assert all(np.isfinite(float(value)) for value in metrics.values())
    assert expected_reward(policy, case.distribution) > start + case.min_gain


@pytest.mark.slow
@pytest.mark.parametrize("case", ESTIMATOR_CASES, ids=_ids)
def test_fit_raises_the_expected_reward(case):
    policy = make_policy(case.distribution)
    start = expected_reward(policy, case.distribution)
    model = estimators.ReinforceModel(
        policy,
        reward_fn_for(case.distribution),
        num_samples=case.num_samples,
        distribution=make_distribution(case.distribution),
        seed=SEED,
        estimator=case.make(),
    )
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    history = model.fit(CONTEXTS, epochs=3, batch_size=64, verbose=0).history
    assert all(np.isfinite(values).all() for values in history.values())
    assert expected_reward(policy, case.distribution) > start + case.min_gain
