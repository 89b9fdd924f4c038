"""ConcreteSelector: the law of the selections, exact features at inference, duplicates, gradients, the paper's
temperature schedule, learning the informative features, round trips and export, errors.

Not in the execution-mode matrix (`tests/integration/matrix.py`), whose cases map per-row logits given as inputs
to one sample per row: the selector's logits are its weights and one sample serves the whole batch. The same
properties are asserted here in the modes that apply: eager, tf.function, XLA, fit, predict, SavedModel, jax.jit.
Backend-agnostic (CI also runs it on JAX and PyTorch); the TensorFlow-only modes skip elsewhere.
"""

import math

import keras
import numpy as np
import pytest
import scipy.stats
from helpers import gradient
from helpers import to_numpy

import keras_gumbel

BACKEND = keras.backend.backend()
TF_ONLY = pytest.mark.skipif(BACKEND != "tensorflow", reason="a TensorFlow mode (tf.function, XLA, SavedModel)")
PROBABILITIES = np.array([0.1, 0.2, 0.3, 0.4])
NUM_SELECTORS = 20_000  # independent selections per law check
RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 4)).astype("float32")


def selector_with_logits(logits, **kwargs):
    logits = np.asarray(logits, "float32")
    layer = keras_gumbel.ConcreteSelector(logits.shape[0], **kwargs)
    layer.build((None, logits.shape[1]))
    layer.logits.assign(logits)
    return layer


def law_selector(seed=0, temperature=0.5, **kwargs):
    """20,000 selectors over 4 features, each with logits log(PROBABILITIES)."""
    return selector_with_logits(np.tile(np.log(PROBABILITIES), (NUM_SELECTORS, 1)), seed=seed, temperature=temperature)


def assert_selections_follow_the_law(weights):
    """`weights` [selectors, 4]: on the simplex, and the argmax of each row drawn from PROBABILITIES.

    Chi-square over 20,000 independent selectors, p > 1e-4: a correct sampler fails one such check in
    10,000 seeds, and the seeds are fixed.
    """
    assert np.isfinite(weights).all() and (weights >= 0).all()
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    counts = np.bincount(weights.argmax(-1), minlength=4)
    assert scipy.stats.chisquare(counts, PROBABILITIES * NUM_SELECTORS).pvalue > 1e-4


# ----------------------------------------------------------------------------- training: Concrete selections


def test_training_selections_are_concrete_samples_whose_argmax_follows_softmax_of_the_logits():
    layer = law_selector(seed=1)
    # On the identity, the output is the selection weights themselves: [d, selectors].
    first = to_numpy(layer(np.eye(4, dtype="float32"), training=True)).T
    assert_selections_follow_the_law(first)
    second = to_numpy(layer(np.eye(4, dtype="float32"), training=True)).T
    assert not np.array_equal(first, second), "two training calls drew the same selections"
    replay = law_selector(seed=1)
    np.testing.assert_array_equal(to_numpy(replay(np.eye(4, dtype="float32"), training=True)).T, first)


def test_training_output_is_the_inputs_mixed_by_the_selection_weights():
    layer = selector_with_logits(RNG.normal(size=(3, 4)), seed=2, temperature=1.0)
    weights = to_numpy(layer(np.eye(4, dtype="float32"), training=True)).T  # [3, 4]
    replay = selector_with_logits(to_numpy(layer.logits), seed=2, temperature=1.0)
    np.testing.assert_allclose(to_numpy(replay(X, training=True)), X @ weights.T, rtol=1e-5, atol=1e-6)
    # One selection for the whole batch (as in the paper): identical rows give identical outputs, up to the
    # order in which the backend's matmul sums a row (PyTorch's blocking differs between rows by ~1 ulp).
    same = to_numpy(layer(np.tile(X[:1], (5, 1)), training=True))
    np.testing.assert_allclose(same, np.tile(same[:1], (5, 1)), rtol=1e-6, atol=1e-8)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="compares with TensorFlow Probability")
def test_relaxed_selection_weights_follow_tfp_relaxed_one_hot_categorical():
    tfd = pytest.importorskip("tensorflow_probability").distributions
    temperature = 0.7
    layer = law_selector(seed=3, temperature=temperature)
    ours = to_numpy(layer(np.eye(4, dtype="float32"), training=True)).T
    reference = tfd.RelaxedOneHotCategorical(temperature, probs=PROBABILITIES.astype("float32"))
    theirs = reference.sample(NUM_SELECTORS, seed=4).numpy()
    for feature in range(4):  # two-sample KS per coordinate, 20,000 draws each, p > 1e-4
        assert scipy.stats.ks_2samp(ours[:, feature], theirs[:, feature]).pvalue > 1e-4


# ----------------------------------------------------------------------------- inference: exact features


def test_inference_returns_the_selected_features_exactly():
    logits = RNG.normal(size=(3, 4))
    layer = selector_with_logits(logits, seed=5)
    indices = logits.argmax(-1)
    np.testing.assert_array_equal(layer.selected_indices(), indices)
    np.testing.assert_array_equal(to_numpy(layer(X)), X[:, indices])
    np.testing.assert_array_equal(to_numpy(layer(X, training=False)), X[:, indices])
    # A gather, not a product with a one-hot: features not selected cannot leak in, even as inf or NaN.
    poisoned = X.copy()
    poisoned[:, np.setdiff1d(np.arange(4), indices)] = np.nan
    np.testing.assert_array_equal(to_numpy(layer(poisoned)), X[:, indices])


def test_sample_at_inference_keeps_the_relaxed_selection():
    layer = law_selector(seed=6)
    sampling = selector_with_logits(to_numpy(layer.logits), seed=6, temperature=0.5, sample_at_inference=True)
    weights = to_numpy(sampling(np.eye(4, dtype="float32"))).T
    assert_selections_follow_the_law(weights)


def test_duplicates_are_kept_as_in_the_reference_code():
    logits = np.array([[0.0, 3.0, 0.0, 0.0], [0.0, 2.0, 1.0, 0.0], [4.0, 0.0, 0.0, 0.0]])
    layer = selector_with_logits(logits)
    np.testing.assert_array_equal(layer.selected_indices(), [1, 1, 0])  # feature 1 twice
    np.testing.assert_array_equal(to_numpy(layer(X)), X[:, [1, 1, 0]])
    np.testing.assert_array_equal(np.unique(layer.selected_indices()), [0, 1])
    probabilities = layer.selection_probabilities()
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(probabilities[2], np.exp(logits[2]) / np.exp(logits[2]).sum(), rtol=1e-6)


# ----------------------------------------------------------------------------- gradients


def test_gradients_reach_the_logits_and_the_inputs_and_are_finite():
    layer = selector_with_logits(RNG.normal(size=(3, 4)), seed=7, temperature=0.3)
    weights = RNG.normal(size=(6, 3)).astype("float32")
    input_gradient = gradient(lambda x: keras.ops.sum(keras.ops.multiply(layer(x, training=True), weights)), X)
    assert np.isfinite(input_gradient).all() and np.abs(input_gradient).sum() > 0
    state = [v.value for v in layer.non_trainable_variables]

    def loss(logits):
        output, _ = layer.stateless_call([logits], state, X, training=True)
        return keras.ops.sum(keras.ops.multiply(output, weights))

    logits_gradient = gradient(loss, to_numpy(layer.logits))
    assert logits_gradient.shape == (3, 4)
    assert np.isfinite(logits_gradient).all() and np.abs(logits_gradient).sum() > 0
    # Each selector's softmax gradient sums to 0 over the features.
    np.testing.assert_allclose(logits_gradient.sum(-1), 0.0, atol=1e-5)


# ----------------------------------------------------------------------------- the paper's temperature schedule


def test_exponential_decay_is_the_papers_schedule_from_10_to_0_01():
    # T(b) = T0 (TB / T0)^(b / B) for b <= B, then TB (the reference code multiplies by
    # alpha = (TB / T0)^(1 / B) each step and floors at TB).
    start, end, steps = 10.0, 0.01, 12_000
    schedule = keras_gumbel.schedules.ExponentialDecay(start, rate=math.log(start / end) / steps, minimum=end)
    for step in (0, 1, 500, 6_000, 11_999, 12_000, 12_001, 50_000):
        expected = max(start * (end / start) ** (step / steps), end)
        assert schedule(step) == pytest.approx(expected, rel=1e-12)


def test_temperature_annealing_reaches_the_selector_in_fit():
    inputs = keras.Input((4,))
    selector = keras_gumbel.ConcreteSelector(2, seed=8)
    model = keras.Model(inputs, keras.layers.Dense(4)(selector(inputs)))
    model.compile(keras.optimizers.Adam(0.01), "mse")
    schedule = keras_gumbel.schedules.ExponentialDecay(10.0, rate=math.log(1000.0) / 8, minimum=0.01)
    history = model.fit(
        X, X, batch_size=3, epochs=4, verbose=0, callbacks=[keras_gumbel.TemperatureAnnealing(schedule)]
    ).history
    np.testing.assert_allclose(history["temperature"], [schedule(s) for s in (1, 3, 5, 7)], rtol=1e-6)
    assert float(to_numpy(selector.temperature)) == pytest.approx(schedule(7), rel=1e-6)


@pytest.mark.slow
@pytest.mark.skipif(
    BACKEND == "torch", reason="2,560 eager fit steps take minutes on PyTorch; its layer paths are tested above"
)
def test_a_concrete_autoencoder_finds_the_informative_features():
    # Features 3, 11 and 17 are three independent sources; each of the other 17 is a blend of all three
    # (unit variance: 0.6 of the blend, 0.8 of its own noise), so the sources are the three features that
    # reconstruct all 20 best. Annealed from 10 to 0.01 over the run, as in the paper. (With blends close to
    # one source, the search can settle on such a blend instead: a local optimum, not what is tested here.)
    rng = np.random.default_rng(9)
    sources = rng.normal(size=(2048, 3))
    blend = 1.0 + 0.3 * rng.normal(size=(3, 20))
    blend /= np.linalg.norm(blend, axis=0)
    data = 0.6 * sources @ blend + 0.8 * rng.normal(size=(2048, 20))
    informative = [3, 11, 17]
    data[:, informative] = sources
    data = data.astype("float32")
    inputs = keras.Input((20,))
    selector = keras_gumbel.ConcreteSelector(3, seed=10)
    hidden = keras.layers.Dense(32, activation="relu")(selector(inputs))
    model = keras.Model(inputs, keras.layers.Dense(20)(hidden))
    model.compile(keras.optimizers.Adam(0.01), "mse")
    epochs, batch_size = 40, 32
    steps = epochs * (len(data) // batch_size)
    schedule = keras_gumbel.schedules.ExponentialDecay(10.0, rate=math.log(1000.0) / steps, minimum=0.01)
    model.fit(
        data,
        data,
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=[keras_gumbel.TemperatureAnnealing(schedule)],
    )
    assert sorted(selector.selected_indices().tolist()) == informative
    assert selector.selection_probabilities().max(-1).mean() > 0.98


# ----------------------------------------------------------------------------- modes, round trips and export


def small_model(seed=11):
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras_gumbel.ConcreteSelector(3, seed=seed, name="select")(inputs))


@TF_ONLY
@pytest.mark.parametrize("jit_compile", [False, True], ids=["tf.function", "xla"])
def test_compiled_calls_give_the_same_law_and_exact_inference(jit_compile):
    import tensorflow as tf

    layer = law_selector(seed=12)
    train = tf.function(lambda x: layer(x, training=True), jit_compile=jit_compile)
    infer = tf.function(lambda x: layer(x, training=False), jit_compile=jit_compile)
    first, second = (train(tf.eye(4)).numpy().T for _ in range(2))
    assert_selections_follow_the_law(first)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(infer(tf.constant(X)).numpy(), X[:, to_numpy(layer.selected_indices())])


@pytest.mark.skipif(BACKEND != "jax", reason="jax.jit runs on JAX")
def test_jax_jit_stateless_calls_carry_the_seed_and_follow_the_law():
    import jax

    layer = law_selector(seed=13)
    trainable = [v.value for v in layer.trainable_variables]
    state = [v.value for v in layer.non_trainable_variables]
    call = jax.jit(lambda state, x: layer.stateless_call(trainable, state, x, training=True))
    first, state = call(state, np.eye(4, dtype="float32"))
    second, state = call(state, np.eye(4, dtype="float32"))
    assert_selections_follow_the_law(np.asarray(first).T)
    assert not np.array_equal(np.asarray(first), np.asarray(second))


def test_fit_and_predict():
    model = small_model()
    model.compile(keras.optimizers.SGD(0.1), "mse")
    before = to_numpy(model.get_layer("select").logits)
    history = model.fit(X, X[:, :3], epochs=2, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert not np.array_equal(before, to_numpy(model.get_layer("select").logits)), "fit did not train the logits"
    indices = model.get_layer("select").selected_indices()
    np.testing.assert_array_equal(model.predict(X, verbose=0), X[:, indices])


def test_keras_file_round_trip(tmp_path):
    model = small_model()
    model.get_layer("select").temperature.assign(0.05)
    model(X, training=True)
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    layer = restored.get_layer("select")
    assert float(to_numpy(layer.temperature)) == pytest.approx(0.05)
    np.testing.assert_array_equal(layer.selected_indices(), model.get_layer("select").selected_indices())
    np.testing.assert_array_equal(to_numpy(restored(X)), to_numpy(model(X)))
    np.testing.assert_array_equal(to_numpy(restored(X, training=True)), to_numpy(model(X, training=True)))


@TF_ONLY
def test_saved_model_export_serves_the_selected_features(tmp_path):
    import tensorflow as tf

    model = small_model()
    model.export(str(tmp_path / "served"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "served"))
    indices = model.get_layer("select").selected_indices()
    np.testing.assert_array_equal(served.serve(X).numpy(), X[:, indices])


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    keras.config.set_dtype_policy(policy)
    layer = keras_gumbel.ConcreteSelector(3, temperature=0.01, seed=14)
    output = layer(X, training=True)
    assert keras.backend.standardize_dtype(output.dtype) == keras.config.dtype_policy().compute_dtype
    assert np.isfinite(to_numpy(keras.ops.cast(output, "float32"))).all()


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"num_selected": 0}, ValueError, "num_selected=0"),
        ({"num_selected": 1.5}, TypeError, "num_selected=1.5"),
        ({"num_selected": 2, "temperature": -1.0}, ValueError, "temperature=-1.0"),
        ({"num_selected": 2, "seed": 0.5}, TypeError, "seed=0.5"),
    ],
)
def test_bad_arguments_name_the_argument_and_value(kwargs, error, match):
    with pytest.raises(error, match=match):
        keras_gumbel.ConcreteSelector(**kwargs)


def test_bad_inputs_and_early_calls_are_named_errors():
    with pytest.raises(ValueError, match=r"\[batch, d\]"):
        keras_gumbel.ConcreteSelector(2)(np.ones((2, 3, 4), "float32"))
    with pytest.raises(ValueError, match="known d"):
        keras_gumbel.ConcreteSelector(2).build((None, None))
    with pytest.raises(TypeError, match="floating-point"):
        keras_gumbel.ConcreteSelector(2)(np.ones((2, 4), "int32"))
    with pytest.raises(ValueError, match="before it is built"):
        keras_gumbel.ConcreteSelector(2).selected_indices()
