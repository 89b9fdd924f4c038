"""What must hold on every Keras backend (TensorFlow, JAX, PyTorch): ops, layers, schedules, annealing.

CI runs this file under KERAS_BACKEND=tensorflow (with the rest of the suite), jax and torch.
The TFP bridge and the tf.function REINFORCE helpers are TensorFlow-only and say so.
"""

import keras
import numpy as np
import pytest
import scipy.stats
from helpers import gradient
from helpers import softmax
from helpers import to_numpy

import keras_gumbel

LOGITS = np.log(np.array([0.1, 0.2, 0.3, 0.4], "float32"))
BACKEND = keras.backend.backend()


def test_straight_through_frequencies_follow_softmax_of_logits():
    layer = keras_gumbel.StraightThroughGumbel(seed=0)
    counts = to_numpy(layer(np.tile(LOGITS, (50_000, 1)), training=True)).sum(0)
    assert scipy.stats.chisquare(counts, softmax(LOGITS) * 50_000).pvalue > 1e-3


def test_noise_follows_the_gumbel_law_and_is_finite():
    noise = to_numpy(keras_gumbel.ops.gumbel_noise((50_000,), seed=keras.random.SeedGenerator(1)))
    assert np.isfinite(noise).all()
    assert scipy.stats.kstest(noise, scipy.stats.gumbel_r.cdf).pvalue > 1e-3


@pytest.mark.parametrize("hard", [False, True])
def test_functional_sampler_shapes_axis_and_masking(hard):
    logits = np.random.default_rng(0).normal(size=(4, 6, 3)).astype("float32")
    logits[:, 2, :] = -np.inf  # category 2 of axis 1 is masked
    sample = to_numpy(keras_gumbel.ops.gumbel_softmax(logits, temperature=0.7, hard=hard, axis=1, seed=2))
    assert sample.shape == logits.shape
    np.testing.assert_allclose(sample.sum(axis=1), 1.0, rtol=1e-5)
    assert (sample[:, 2, :] == 0).all()
    if hard:
        assert set(np.unique(sample)) == {0.0, 1.0}


def test_straight_through_gradient_equals_the_relaxed_gradient_for_the_same_noise():
    logits = np.random.default_rng(1).normal(size=(8, 5)).astype("float32")
    weights = np.random.default_rng(2).normal(size=(8, 5)).astype("float32")

    def objective(hard):
        return lambda x: keras.ops.sum(
            keras.ops.multiply(keras_gumbel.ops.gumbel_softmax(x, temperature=0.6, hard=hard, seed=3), weights)
        )

    relaxed, straight_through = gradient(objective(False), logits), gradient(objective(True), logits)
    assert np.isfinite(relaxed).all() and np.abs(relaxed).sum() > 0
    np.testing.assert_allclose(straight_through, relaxed, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("layer_class", [keras_gumbel.GumbelSoftmax, keras_gumbel.StraightThroughGumbel])
def test_layer_modes_stream_and_temperature(layer_class):
    layer = layer_class(temperature=0.5, seed=4)
    batch = np.tile(LOGITS, (32, 1))
    inference = to_numpy(layer(batch))
    if layer_class is keras_gumbel.GumbelSoftmax:
        np.testing.assert_allclose(inference[0], softmax(LOGITS / 0.5), rtol=1e-5)
        layer.temperature.assign(2.0)
        np.testing.assert_allclose(to_numpy(layer(batch))[0], softmax(LOGITS / 2.0), rtol=1e-5)
        layer.temperature.assign(0.5)
    else:
        np.testing.assert_array_equal(inference[0], np.eye(4)[3])
    draws = [to_numpy(layer(batch, training=True)) for _ in range(2)]
    assert not np.array_equal(*draws)
    replay = layer_class(temperature=0.5, seed=4)
    np.testing.assert_array_equal(to_numpy(replay(batch, training=True)), draws[0])


def test_keras_file_round_trip(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras_gumbel.StraightThroughGumbel(temperature=0.3, seed=5)(inputs))
    model(np.tile(LOGITS, (2, 1)), training=True)
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    assert float(to_numpy(restored.layers[-1].temperature)) == pytest.approx(0.3)
    batch = np.tile(LOGITS, (16, 1))
    np.testing.assert_array_equal(to_numpy(model(batch, training=True)), to_numpy(restored(batch, training=True)))


def test_schedules_accept_backend_tensors():
    schedule = keras_gumbel.schedules.ExponentialDecay(1.0, rate=1e-3, minimum=0.5, update_every=10)
    values = to_numpy(schedule(keras.ops.convert_to_tensor([0, 15, 10_000])))
    np.testing.assert_allclose(values, [1.0, np.exp(-1e-2), 0.5], rtol=1e-6)


def test_fit_with_the_annealing_callback():
    inputs = keras.Input((5,))
    model = keras.Model(inputs, keras_gumbel.GumbelSoftmax(seed=6)(keras.layers.Dense(3)(inputs)))
    model.compile(keras.optimizers.SGD(0.01), "categorical_crossentropy")
    x = np.random.default_rng(3).normal(size=(64, 5)).astype("float32")
    y = np.eye(3, dtype="float32")[np.random.default_rng(4).integers(3, size=64)]
    schedule = keras_gumbel.schedules.ExponentialDecay(2.0, rate=0.05, minimum=0.3)
    history = model.fit(
        x, y, batch_size=8, epochs=2, verbose=0, callbacks=[keras_gumbel.TemperatureAnnealing(schedule)]
    ).history
    np.testing.assert_allclose(history["temperature"], [schedule(7), schedule(15)], rtol=1e-6)
    assert np.isfinite(history["loss"]).all()


def test_score_function_loss_and_baselines_run_everywhere():
    rewards = np.array([[1.0, 10.0], [3.0, 20.0], [5.0, 30.0]], "float32")
    np.testing.assert_allclose(
        to_numpy(keras_gumbel.leave_one_out_baseline(rewards)), [[4.0, 25.0], [3.0, 20.0], [2.0, 15.0]]
    )
    log_prob = np.log(np.array([0.2, 0.5, 0.5], "float32"))
    np.testing.assert_allclose(
        gradient(lambda lp: keras_gumbel.score_function_loss(lp, [1.0, 0.0, 2.0], 1.0), log_prob),
        [0.0, 1.0 / 3, -1.0 / 3],
        rtol=1e-6,
    )
    average = keras_gumbel.MovingAverageBaseline(decay=0.5)
    average(keras.ops.convert_to_tensor([4.0]), training=True)
    assert float(to_numpy(average.value())) == pytest.approx(4.0)


@pytest.mark.skipif(BACKEND == "tensorflow", reason="checks the message given on other backends")
def test_tensorflow_only_parts_say_so():
    with pytest.raises(ImportError, match="TensorFlow backend"):
        keras_gumbel.GumbelSoftmax().distribution(LOGITS)
    with pytest.raises(RuntimeError, match="TensorFlow backend"):
        keras_gumbel.make_train_step(keras.layers.Dense(2), lambda x, a: a, keras.optimizers.Adam())


def test_relaxed_bernoulli_and_top_k_everywhere():
    layer = keras_gumbel.RelaxedBernoulli(hard=True, seed=8)
    samples = to_numpy(layer(np.zeros((20_000, 2), "float32"), training=True))
    assert set(np.unique(samples)) == {0.0, 1.0}
    assert abs(samples.mean() - 0.5) < 5 * np.sqrt(0.25 / samples.size)
    k_hot = to_numpy(keras_gumbel.ops.relaxed_top_k(np.tile(LOGITS, (16, 1)), 2, hard=True, seed=9))
    np.testing.assert_array_equal(k_hot.sum(-1), 2.0)
    indices = to_numpy(keras_gumbel.ops.gumbel_top_k(np.tile(LOGITS, (16, 1)), 3, seed=9))
    assert all(len(set(row)) == 3 for row in indices.tolist())


@pytest.mark.parametrize("sampler", ["gumbel_rao", "reinmax"])
def test_lower_variance_straight_through_gradients_everywhere(sampler):
    weights = np.arange(4.0, dtype="float32")

    def objective(x):
        sample = getattr(keras_gumbel.ops, sampler)(x, seed=10)
        return keras.ops.sum(keras.ops.multiply(sample, weights))

    logits = np.tile(LOGITS, (32, 1))
    values = gradient(objective, logits)
    assert np.isfinite(values).all() and np.abs(values).sum() > 0
    if sampler == "reinmax":
        # Given the sample D, ReinMax's gradient is a formula (Liu et al. 2023): check it on every backend.
        chosen = to_numpy(keras_gumbel.ops.reinmax(logits, seed=10))

        def jacobian_times(p, upstream):
            return p * (upstream - (p * upstream).sum(-1, keepdims=True))

        first = softmax(logits)
        shifted = (softmax(logits) + chosen) / 2  # temperature 1
        expected = 2 * jacobian_times(shifted, weights) - jacobian_times(first, weights) / 2
        np.testing.assert_allclose(values, expected, rtol=1e-4, atol=1e-6)


def test_gumbel_attention_everywhere():
    layer = keras_gumbel.GumbelAttention(hard=True, seed=11)
    rng = np.random.default_rng(5)
    query, keys = rng.normal(size=(4, 8)).astype("float32"), rng.normal(size=(4, 6, 8)).astype("float32")
    out, weights = layer(query, keys, return_attention_weights=True)
    scores = np.einsum("bd,bnd->bn", query, keys)
    np.testing.assert_array_equal(to_numpy(weights), np.eye(6)[scores.argmax(-1)])
    np.testing.assert_allclose(to_numpy(out), keys[np.arange(4), scores.argmax(-1)], rtol=1e-5)


@pytest.mark.parametrize("seed", [-1, 2**31, 2**32, -(2**63), 2**63 - 1])
def test_every_seed_the_check_accepts_works_on_every_backend(seed):
    batch = np.tile(LOGITS, (8, 1))
    draws = [to_numpy(keras_gumbel.ops.gumbel_softmax(batch, hard=True, seed=seed)) for _ in range(2)]
    np.testing.assert_array_equal(draws[0], draws[1])  # an integer seed: the same draw on every call
    layers = [keras_gumbel.StraightThroughGumbel(seed=seed) for _ in range(2)]
    np.testing.assert_array_equal(*(to_numpy(layer(batch, training=True)) for layer in layers))
    assert layers[0].get_config()["seed"] == seed  # the user's seed is kept as given


@pytest.mark.parametrize(
    "sampler",
    [
        lambda x: keras_gumbel.ops.gumbel_softmax(x, hard=True, seed=1),
        lambda x: keras_gumbel.ops.gumbel_rao(x, seed=1),
        lambda x: keras_gumbel.ops.reinmax(x, seed=1),
        lambda x: keras_gumbel.ops.relaxed_top_k(x, 2, hard=True, seed=1),
        lambda x: keras_gumbel.StraightThroughGumbel(seed=1)(x, training=True),
        lambda x: keras_gumbel.StraightThroughGumbel(seed=1)(x),
    ],
)
def test_hard_samples_of_an_empty_batch(sampler):
    assert to_numpy(sampler(np.zeros((0, 4), "float32"))).shape == (0, 4)


def test_gumbel_attention_with_several_queries_everywhere():
    layer = keras_gumbel.GumbelAttention(hard=True, seed=12)
    rng = np.random.default_rng(6)
    query, keys = rng.normal(size=(4, 3, 8)).astype("float32"), rng.normal(size=(4, 6, 8)).astype("float32")
    out, weights = layer(query, keys, return_attention_weights=True)
    best = np.einsum("bqd,bnd->bqn", query, keys).argmax(-1)
    np.testing.assert_array_equal(to_numpy(weights), np.eye(6)[best])
    np.testing.assert_allclose(to_numpy(out), keys[np.arange(4)[:, None], best], rtol=1e-5)


def test_a_temperature_assigned_below_the_floor_is_read_as_the_floor_everywhere():
    # Issue 23: after temperature.assign(-0.07) the relaxed samples peaked on the argmin. Read as the floor (2**-104),
    # they are Categorical(softmax(logits)) samples, eagerly and through predict (compiled: jax.jit on JAX).
    layer = keras_gumbel.GumbelSoftmax(seed=13, sample_at_inference=True)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, layer(inputs))
    batch = np.tile(LOGITS, (20_000, 1))
    layer.temperature.assign(-0.07)
    for draws in (to_numpy(layer(batch, training=True)), model.predict(batch, batch_size=5_000, verbose=0)):
        assert np.isfinite(draws).all()
        counts = np.bincount(draws.argmax(-1), minlength=4)
        assert scipy.stats.chisquare(counts, softmax(LOGITS) * 20_000).pvalue > 1e-3, counts
    layer.sample_at_inference = False
    np.testing.assert_array_equal(to_numpy(layer(batch[:1])), [np.eye(4)[3]])  # the mode, not the argmin
    assert layer.get_config()["temperature"] == 2.0**-104
