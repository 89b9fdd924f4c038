"""REBAR and RELAX: the conditional draw's law, unbiasedness against exact enumeration, the gradient of the variance
(against finite differences), variance reduction by training the control variate, the Estimator classes, errors.

TensorFlow backend only (the gradient of a gradient uses nested tf.GradientTape). Each unbiasedness test compares the
mean of many independent estimates with the gradient summed exactly over all states, within 5 standard errors.
"""

import itertools

import keras
import numpy as np
import pytest
import scipy.stats

import keras_gumbel
from keras_gumbel import estimators

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="REBAR and RELAX need TensorFlow")
tf = pytest.importorskip("tensorflow")
tfp = pytest.importorskip("tensorflow_probability")
tfd = tfp.distributions

BINARY_LOGITS = np.array([0.3, -1.2, 2.0], "float32")
WEIGHTS = np.array([1.0, -2.0, 0.5], "float32")


def binary_reward(b):
    """Differentiable in b (REBAR evaluates it at relaxed values), with an interaction term."""
    b = tf.cast(b, tf.float32)
    return (tf.reduce_sum(b * WEIGHTS, -1) - 0.3) ** 2 + 2.0 * b[..., 0] * b[..., 2]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def exact_binary_gradient():
    p = sigmoid(BINARY_LOGITS)
    total = np.zeros(len(p))
    for bits in itertools.product([0.0, 1.0], repeat=len(p)):
        b = np.array(bits)
        total += np.prod(np.where(b == 1, p, 1 - p)) * float(binary_reward(b[None])[0]) * (b - p)
    return total


NUM_CLASSES = 4
CATEGORICAL_LOGITS = np.array([[0.5, -0.3, 1.0, 0.0], [-1.0, 0.2, 0.4, 0.1]], "float32")
TABLE = np.random.default_rng(3).normal(size=(NUM_CLASSES, NUM_CLASSES)).astype("float32")
VALUES = np.arange(NUM_CLASSES, dtype="float32")


def categorical_reward(z):
    """z one-hot (or relaxed) [..., 2, C] -> z_0^T TABLE z_1 + z_0 . VALUES / 2: differentiable in z."""
    z = tf.cast(z, tf.float32)
    return tf.einsum("...i,ij,...j->...", z[..., 0, :], TABLE, z[..., 1, :]) + 0.5 * tf.reduce_sum(
        z[..., 0, :] * VALUES, -1
    )


def exact_categorical_gradient():
    p = np.exp(CATEGORICAL_LOGITS) / np.exp(CATEGORICAL_LOGITS).sum(-1, keepdims=True)
    total = np.zeros_like(p, dtype=np.float64)
    for i, j in itertools.product(range(NUM_CLASSES), repeat=2):
        z = np.zeros((2, NUM_CLASSES), "float32")
        z[0, i] = z[1, j] = 1.0
        total += p[0, i] * p[1, j] * float(categorical_reward(z)) * (z - p)
    return total


def assert_unbiased(estimates, exact):
    estimates = np.asarray(estimates, np.float64)
    mean = estimates.mean(axis=0)
    standard_error = estimates.std(axis=0) / np.sqrt(len(estimates))
    assert np.all(np.abs(mean - exact) < 5 * standard_error + 1e-6), (mean, exact, standard_error)


def noise(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(size=shape).astype("float32"), rng.uniform(size=shape).astype("float32")


def test_the_conditional_draw_has_the_sample_as_its_argmax_and_the_unconditional_law():
    num = 100_000
    uniform, conditional = noise((num, 3), seed=0)
    z, b, z_tilde = (
        x.numpy() for x in estimators.conditional_relaxation(BINARY_LOGITS, uniform, conditional, binary=True)
    )
    np.testing.assert_array_equal(b, (z > 0).astype("float32"))
    np.testing.assert_array_equal(z_tilde > 0, b > 0.5)
    # b ~ p(b) and z~ ~ p(z | b): z~ has the law of z, logistic around the logits.
    for column in range(3):
        assert scipy.stats.kstest(z_tilde[:, column] - BINARY_LOGITS[column], "logistic").pvalue > 1e-4

    # Read back from z (common random numbers), z~ is z in value.
    _, _, shared = estimators.conditional_relaxation(BINARY_LOGITS, uniform, None, binary=True)
    np.testing.assert_allclose(shared.numpy(), z, rtol=1e-3, atol=1e-3)

    uniform, conditional = noise((num, 2, NUM_CLASSES), seed=1)
    z, b, z_tilde = (x.numpy() for x in estimators.conditional_relaxation(CATEGORICAL_LOGITS, uniform, conditional))
    np.testing.assert_array_equal(np.argmax(b, -1), np.argmax(z, -1))
    np.testing.assert_array_equal(np.argmax(z_tilde, -1), np.argmax(b, -1))
    _, _, shared = estimators.conditional_relaxation(CATEGORICAL_LOGITS, uniform)
    np.testing.assert_allclose(shared.numpy(), z, rtol=1e-3, atol=1e-3)
    for variable, category in itertools.product(range(2), range(NUM_CLASSES)):
        gumbel = z_tilde[:, variable, category] - CATEGORICAL_LOGITS[variable, category]
        assert scipy.stats.kstest(gumbel, "gumbel_r").pvalue > 1e-4


def rebar_control(reward, binary, temperature=0.7, scale=0.8):
    relax = (lambda z: tf.sigmoid(z / temperature)) if binary else (lambda z: tf.nn.softmax(z / temperature, -1))
    return lambda z: scale * reward(relax(z))


def network_control(shape, seed):
    keras.utils.set_random_seed(seed)
    network = keras.Sequential([keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(8, "tanh")])
    network.add(keras.layers.Dense(1))
    return lambda z: network(z)[:, 0]


@pytest.mark.slow
@pytest.mark.parametrize("control", ["rebar", "rebar, z~ read back from z", "network"])
@pytest.mark.parametrize("kind", ["binary", "categorical"])
def test_relax_gradient_is_unbiased_against_exact_enumeration(kind, control):
    binary = kind == "binary"
    logits = BINARY_LOGITS if binary else CATEGORICAL_LOGITS
    reward = binary_reward if binary else categorical_reward
    if control.startswith("rebar"):
        control_variate = rebar_control(reward, binary)
    else:
        network = network_control(logits.shape, seed=2)
        control_variate = lambda z: network(tf.reshape(z, (-1, *logits.shape)))  # noqa: E731
    exact = exact_binary_gradient() if binary else exact_categorical_gradient()
    uniform, conditional = noise((300_000, *logits.shape), seed=3)
    if control.endswith("from z"):
        conditional = None
    estimates, rewards = estimators.relax_gradient(logits, reward, control_variate, uniform, conditional, binary)
    assert tuple(rewards.shape) == (300_000,)
    assert_unbiased(estimates.numpy(), exact)


def test_the_variance_gradient_is_the_derivative_of_the_mean_squared_estimate():
    # d/dphi mean(g^2) from the nested tapes against central finite differences with the same noise, in float64.
    logits = tf.constant(CATEGORICAL_LOGITS, tf.float64)
    uniform, conditional = noise((2000, 2, NUM_CLASSES), seed=4)
    uniform, conditional = uniform.astype("float64"), conditional.astype("float64")

    def reward(z):
        z = tf.cast(z, tf.float64)
        return tf.einsum("...i,ij,...j->...", z[..., 0, :], TABLE.astype("float64"), z[..., 1, :])

    def variance(log_temperature, scale):
        control = lambda z: scale * reward(tf.nn.softmax(z / tf.exp(log_temperature), -1))  # noqa: E731
        estimates, _ = estimators.relax_gradient(logits, reward, control, uniform, conditional)
        return estimators.relax_variance(estimates, sample_axes=1, batch_axes=0)

    point = (tf.Variable(np.log(0.6)), tf.Variable(0.9, dtype=tf.float64))
    with tf.GradientTape() as tape:
        value = variance(*point)
    analytic = [g.numpy() for g in tape.gradient(value, point)]
    step = 1e-5
    for index in range(len(point)):
        shifted = [p.numpy() for p in point]
        shifted[index] += step
        up = variance(*shifted).numpy()
        shifted[index] -= 2 * step
        down = variance(*shifted).numpy()
        np.testing.assert_allclose(analytic[index], (up - down) / (2 * step), rtol=1e-4)


def test_relax_loss_and_variance_are_the_means_they_say():
    logits = tf.Variable(np.random.default_rng(0).normal(size=(5, 3)).astype("float32"))
    estimates = tf.constant(np.random.default_rng(1).normal(size=(4, 5, 3)).astype("float32"))
    with tf.GradientTape() as tape:
        loss = estimators.relax_loss(logits, estimates)
    np.testing.assert_allclose(tape.gradient(loss, logits).numpy(), -estimates.numpy().mean(0) / 5, rtol=1e-5)
    expected = (estimates.numpy().mean(0) ** 2).sum(-1).mean()
    np.testing.assert_allclose(estimators.relax_variance(estimates).numpy(), expected, rtol=1e-5)


@pytest.mark.slow
def test_training_the_surrogate_by_its_variance_gradient_lowers_the_variance():
    # RELAX with the default surrogate (zero output at first: plain REINFORCE) on the binary problem, the policy
    # fixed: Adam steps on the variance alone.
    estimator = estimators.RELAX(event_shape=(3,))
    surrogate, parameters = estimator.surrogate, estimator.parameters
    variables = [*surrogate.trainable_variables, parameters.log_temperature]
    logits = tf.constant(BINARY_LOGITS)
    control = lambda z: surrogate(tf.sigmoid(z / parameters.temperature()))[:, 0]  # noqa: E731

    def measured_variance(seed):
        uniform, conditional = noise((100_000, 3), seed)
        estimates, _ = estimators.relax_gradient(logits, binary_reward, control, uniform, conditional, True)
        return estimates.numpy().var(0).sum()

    @tf.function
    def step(uniform, conditional):
        with tf.GradientTape() as tape:
            estimates, _ = estimators.relax_gradient(logits, binary_reward, control, uniform, conditional, True)
            variance = estimators.relax_variance(estimates, sample_axes=1, batch_axes=0)
        optimizer.apply_gradients(zip(tape.gradient(variance, variables), variables))

    optimizer = keras.optimizers.Adam(0.01)
    before = measured_variance(seed=5)
    for index in range(300):
        step(*noise((256, 3), seed=100 + index))
    after = measured_variance(seed=5)
    assert after < 0.5 * before, (before, after)


# The Estimator classes, through the interface the training helpers call.


def estimate_per_row(estimator, logits, rows, build, reward, num_samples, seed=(1, 2)):
    """`estimator.estimate` on `rows` copies of one policy's logits: (estimates, loss, metrics, tape, rewards)."""
    tiled = tf.Variable(np.tile(logits, (rows,) + (1,) * np.ndim(logits)))
    with tf.GradientTape(persistent=True) as tape:
        loss, metrics, rewards = estimator.estimate(
            build(tiled),
            lambda actions: tf.cast(reward(actions), tf.float32),
            None,
            num_samples,
            tf.constant(seed, tf.int32),
            None,
            training=True,
        )
    return -tape.gradient(loss, tiled).numpy() * rows, loss, metrics, tape, rewards


def bernoulli(logits):
    return tfd.Independent(tfd.Bernoulli(logits=logits), 1)


@pytest.mark.slow
def test_rebar_is_unbiased_and_trains_its_parameters_by_the_variance_through_the_estimator_interface():
    estimator = estimators.REBAR(temperature=0.5, scale=1.0)
    estimates, loss, metrics, tape, rewards = estimate_per_row(
        estimator, BINARY_LOGITS, 100_000, bernoulli, binary_reward, num_samples=2
    )
    assert_unbiased(estimates, exact_binary_gradient())
    assert set(metrics) == set(estimator.metric_names) == {"variance_loss", "temperature", "scale"}
    assert tuple(rewards.shape) == (2, 100_000)
    np.testing.assert_allclose(metrics["temperature"].numpy(), 0.5, rtol=1e-6)
    # The loss hands the temperature and the scale exactly the gradient of the variance it reports.
    for variable in (estimator.parameters.log_temperature, estimator.parameters.scale):
        from_loss, from_variance = tape.gradient(loss, variable), tape.gradient(metrics["variance_loss"], variable)
        np.testing.assert_allclose(from_loss.numpy(), from_variance.numpy(), rtol=1e-4)
        assert from_loss.numpy() != 0.0


@pytest.mark.slow
@pytest.mark.parametrize("actions", ["one_hot", "indices"])
def test_relax_is_unbiased_through_the_estimator_interface_with_a_reward_that_has_no_gradient(actions):
    def reward(choices):  # a table lookup: no gradient exists, and RELAX needs none
        if actions == "one_hot":
            choices = tf.argmax(choices, -1)
        return tf.gather_nd(TABLE, tf.stack([choices[..., 0], choices[..., 1]], -1))

    if actions == "one_hot":
        build = lambda logits: tfd.OneHotCategorical(logits=logits, dtype="float32")  # noqa: E731
    else:
        build = lambda logits: tfd.Categorical(logits=logits)  # noqa: E731
    keras.utils.set_random_seed(1)
    # A surrogate with random weights: unbiased whatever they are.
    surrogate = keras.Sequential(
        [keras.Input((2, NUM_CLASSES)), keras.layers.Flatten(), keras.layers.Dense(8, "tanh"), keras.layers.Dense(1)]
    )
    estimator = estimators.RELAX(surrogate)
    estimates, _, metrics, _, rewards = estimate_per_row(estimator, CATEGORICAL_LOGITS, 50_000, build, reward, 2)
    assert tuple(rewards.shape) == (2, 50_000)
    assert set(metrics) == {"variance_loss", "temperature"}
    p = np.exp(CATEGORICAL_LOGITS) / np.exp(CATEGORICAL_LOGITS).sum(-1, keepdims=True)
    exact = np.zeros_like(p, dtype=np.float64)
    for i, j in itertools.product(range(NUM_CLASSES), repeat=2):
        z = np.zeros((2, NUM_CLASSES))
        z[0, i] = z[1, j] = 1.0
        exact += p[0, i] * p[1, j] * TABLE[i, j] * (z - p)
    assert_unbiased(estimates, exact)


def test_only_the_estimators_own_weights_get_the_variance_gradient():
    # A reward with a weight of its own (say, a decoder's) gets nothing from the estimator's loss.
    weight = tf.Variable(1.5)
    estimator = estimators.REBAR()
    _, loss, _, tape, _ = estimate_per_row(
        estimator, BINARY_LOGITS, 64, bernoulli, lambda b: weight * binary_reward(b), num_samples=1
    )
    gradient = tape.gradient(loss, weight)
    assert gradient is None or gradient.numpy() == 0.0
    assert tape.gradient(loss, estimator.parameters.scale) is not None


def test_rebar_refuses_a_reward_without_a_gradient_and_the_estimators_refuse_bad_arguments():
    def hard_reward(b):
        return tf.cast(tf.reduce_sum(tf.cast(b > 0.5, tf.int32), -1), tf.float32)

    with pytest.raises(ValueError, match="differentiable in its relaxed inputs"):
        estimate_per_row(estimators.REBAR(), BINARY_LOGITS, 4, bernoulli, hard_reward, num_samples=1)
    with pytest.raises(TypeError, match="tfd.Bernoulli .*or a tfd.OneHotCategorical"):
        estimators.REBAR().estimate(tfd.Categorical(logits=[[0.0, 1.0]]), None, None, 1, [0, 0], None)
    with pytest.raises(ValueError, match="`event_shape`.*Received: surrogate=<Sequential"):
        estimators.RELAX(keras.Sequential([keras.layers.Dense(1)]), event_shape=(3,))
    with pytest.raises(TypeError, match="`surrogate`"):
        estimators.RELAX(surrogate=lambda z: z)
    with pytest.raises(ValueError, match="`temperature`"):
        estimators.REBAR(temperature=0.0)
    with pytest.raises(ValueError, match="`num_samples`"):
        estimators.RELAX(event_shape=(2,)).check_num_samples(0)
    wide = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="one value per relaxed sample"):
        estimate_per_row(estimators.RELAX(wide), BINARY_LOGITS, 4, bernoulli, binary_reward, num_samples=1)


class Theta(keras.layers.Layer):
    """One logit per output, whatever the input: the toy of Tucker et al. and Grathwohl et al."""

    def build(self, input_shape):
        self.theta = self.add_weight(shape=(1,), initializer="zeros", name="theta")

    def call(self, inputs):
        return tf.zeros_like(inputs[:, :1]) + self.theta


@pytest.mark.slow
@pytest.mark.parametrize("name", ["REBAR", "RELAX"])
def test_fit_solves_the_toy_and_saves_the_control_variate(name, tmp_path):
    # minimise E[(b - 0.45)^2]: the optimum is p = sigmoid(theta) -> 0.
    def reward(inputs, actions):
        return -tf.reduce_sum((tf.cast(actions, tf.float32) - 0.45) ** 2, -1)

    estimator = estimators.REBAR() if name == "REBAR" else estimators.RELAX(event_shape=(1,))
    policy = keras.Sequential([keras.Input((1,)), Theta()])
    model = keras_gumbel.ReinforceModel(policy, reward, distribution=bernoulli, estimator=estimator, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(0.1))
    history = model.fit(np.zeros((800, 1), "float32"), epochs=1, batch_size=4, verbose=0)
    assert sigmoid(policy.layers[-1].theta.numpy()[0]) < 0.1  # from 0.5 (0.02-0.05 with seeds 0-2)
    assert set(history.history) == {"loss", "reward", *estimator.metric_names, "gradient_norm"}
    # The control variate's weights are saved and restored with the model's.
    temperature = float(estimator.parameters.temperature())
    assert temperature != pytest.approx(0.5)  # trained
    model.save_weights(tmp_path / "toy.weights.h5")
    estimator.parameters.log_temperature.assign(0.0)
    model.load_weights(tmp_path / "toy.weights.h5")
    assert float(estimator.parameters.temperature()) == pytest.approx(temperature)


@pytest.mark.parametrize("binary", [False, True])
def test_a_uniform_of_exactly_zero_keeps_the_relaxation_and_its_gradient_finite(binary):
    # keras.random.uniform can draw an exact 0; before, z was infinite and the control variate's gradient NaN.
    import tensorflow as tf

    logits = tf.Variable([[0.5, -0.3, 0.2]])
    uniform = tf.constant([[[0.0, 0.5, 0.25]], [[0.7, 0.0, 0.1]]])
    with tf.GradientTape() as tape:
        z, _, z_tilde = keras_gumbel.estimators.conditional_relaxation(logits, uniform, uniform, binary=binary)
        total = tf.reduce_sum(tf.sigmoid(z) + tf.sigmoid(z_tilde))
    assert np.isfinite(z.numpy()).all() and np.isfinite(z_tilde.numpy()).all()
    assert np.isfinite(tape.gradient(total, logits).numpy()).all()


def test_relax_without_event_shape_builds_and_trains_its_surrogate(tmp_path):
    # The default surrogate gets its weights from the policy's output shape when the training helpers are given a
    # built policy, or else in the first training step (in the traced function). Either way they must be trained
    # (the zero-initialised output kernel moves) and saved with the model, and load into a new model.
    def reward(contexts, actions):
        return tf.reduce_sum(tf.cast(actions, tf.float32) * contexts[:, :3], -1)

    contexts = np.eye(4, dtype="float32")[np.random.default_rng(0).integers(4, size=64)]

    def policy(built):
        layers = [keras.layers.Dense(3, kernel_initializer="zeros")]
        return keras.Sequential([keras.Input((4,)), *layers] if built else layers)

    def reinforce_model(built):
        estimator = estimators.RELAX(hidden_units=8)
        model = keras_gumbel.ReinforceModel(
            policy(built), reward, num_samples=2, distribution=bernoulli, estimator=estimator, seed=0
        )
        return model, estimator

    for built in (False, True):
        estimator = estimators.RELAX(hidden_units=8)
        step = keras_gumbel.make_train_step(
            policy(built),
            reward,
            keras.optimizers.Adam(0.05),
            num_samples=2,
            distribution=bernoulli,
            estimator=estimator,
            seed=0,
        )
        assert bool(estimator.surrogate.weights) == built  # built from the policy's output shape [B, 3]
        metrics = [step(tf.constant(contexts)) for _ in range(5)][-1]
        assert np.isfinite(float(metrics["variance_loss"]))
        kernel = estimator.surrogate.layers[-1].kernel.numpy()
        assert kernel.shape == (8, 1) and np.abs(kernel).max() > 0, built

        model, estimator = reinforce_model(built)
        assert bool(estimator.surrogate.weights) == built
        model.compile(optimizer=keras.optimizers.Adam(0.05))
        history = model.fit(contexts, epochs=1, batch_size=16, verbose=0)
        assert np.isfinite(history.history["variance_loss"]).all()
        kernel = estimator.surrogate.layers[-1].kernel.numpy()
        assert kernel.shape == (8, 1) and np.abs(kernel).max() > 0, built
    # Resuming: the trained surrogate loads into a new model (as ModelCheckpoint and BackupAndRestore do).
    model.save_weights(tmp_path / "model.weights.h5")
    trained = [w.numpy() for w in estimator.surrogate.weights]
    restored, new_estimator = reinforce_model(built=True)
    restored.load_weights(tmp_path / "model.weights.h5")
    for weight, value in zip(new_estimator.surrogate.weights, trained, strict=True):
        np.testing.assert_array_equal(weight.numpy(), value)


@pytest.mark.parametrize(
    "mode", ["graph", pytest.param("xla", marks=pytest.mark.slow), pytest.param("fit", marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("name", ["REBAR", "RELAX"])
def test_masked_logits_train_without_nan(name, mode):
    # A category masked with -inf (or a bit that is never 1): never sampled, no gradient, and no NaN anywhere, in
    # make_train_step's graph, under XLA and in fit.
    mask = tf.constant([0.0, 0.0, -np.inf])

    def reward(contexts, actions):
        actions = tf.cast(actions, tf.float32)
        value = tf.reduce_sum(actions * contexts[:, :3], -1)
        return tf.where(actions[..., 2] > 0.5, np.nan, value)  # a masked choice would make the metrics NaN

    contexts = np.eye(4, dtype="float32")[np.random.default_rng(0).integers(4, size=64)]
    for distribution in (None, bernoulli):
        policy = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Lambda(lambda x: x + mask)])
        estimator = estimators.REBAR() if name == "REBAR" else estimators.RELAX()
        helpers = dict(num_samples=2, distribution=distribution, estimator=estimator, seed=0)
        if mode == "fit":
            model = keras_gumbel.ReinforceModel(policy, reward, **helpers)
            model.compile(optimizer=keras.optimizers.Adam(0.05))
            history = model.fit(contexts, epochs=1, batch_size=16, verbose=0).history
            metrics = {key: values[-1] for key, values in history.items()}
        else:
            step = keras_gumbel.make_train_step(
                policy, reward, keras.optimizers.Adam(0.05), jit_compile=mode == "xla", **helpers
            )
            for _ in range(4):
                metrics = step(tf.constant(contexts))
        assert all(np.isfinite(float(value)) for value in metrics.values()), metrics
        assert all(np.isfinite(weight.numpy()).all() for weight in policy.weights)
        assert float(estimator.parameters.temperature()) != pytest.approx(0.5)  # trained, finitely


def test_relax_refuses_bad_event_shapes_naming_them():
    with pytest.raises(TypeError, match="`event_shape`.*Received: event_shape=3.5"):
        estimators.RELAX(event_shape=3.5)
    with pytest.raises(ValueError, match=r"Received: event_shape=\(3, 0\)"):
        estimators.RELAX(event_shape=(3, 0))
    assert estimators.RELAX(event_shape=3).surrogate.input_shape == (None, 3)  # an int is one axis
