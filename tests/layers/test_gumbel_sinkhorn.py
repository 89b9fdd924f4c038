"""GumbelSinkhorn: training samples, inference outputs, gradients, config and saving (.keras, SavedModel).

Backend-agnostic except the SavedModel export (TensorFlow). The execution-mode
matrix runs the layer in every mode as well (`tests/integration/matrix.py`).
"""

import keras
import numpy as np
import pytest
import scipy.optimize
import scipy.special
from helpers import gradient
from helpers import numpy_sinkhorn
from helpers import to_numpy

import keras_gumbel

BACKEND = keras.backend.backend()
SIZE = 5
LOG_ALPHA = np.random.default_rng(0).normal(size=(32, SIZE, SIZE)).astype("float32")


def assignment_matrices(weights):
    """Permutation matrices of scipy's maximum-weight assignments."""
    columns = [scipy.optimize.linear_sum_assignment(w, maximize=True)[1] for w in np.asarray(weights, np.float64)]
    return np.eye(weights.shape[-1], dtype="float32")[np.stack(columns)]


def test_training_samples_are_the_ops_samples_for_the_same_seed():
    for hard in (False, True):
        layer = keras_gumbel.GumbelSinkhorn(temperature=0.6, num_iterations=12, hard=hard, seed=4)
        stream = keras.random.SeedGenerator(4)
        for _ in range(2):  # the layer's stream, draw after draw
            ours = to_numpy(layer(LOG_ALPHA, training=True))
            op = to_numpy(keras_gumbel.ops.gumbel_sinkhorn(LOG_ALPHA, 0.6, 12, hard=hard, seed=stream))
            np.testing.assert_array_equal(ours, op)


def test_inference_is_the_exact_noise_free_assignment_by_default():
    layer = keras_gumbel.GumbelSinkhorn(temperature=0.5, seed=0)
    first, second = to_numpy(layer(LOG_ALPHA)), to_numpy(layer(LOG_ALPHA, training=False))
    np.testing.assert_array_equal(first, assignment_matrices(LOG_ALPHA))
    np.testing.assert_array_equal(first, second)


def test_relaxed_inference_is_noise_free_sinkhorn():
    layer = keras_gumbel.GumbelSinkhorn(temperature=0.5, num_iterations=30, hard_at_inference=False, seed=0)
    np.testing.assert_allclose(to_numpy(layer(LOG_ALPHA)), numpy_sinkhorn(LOG_ALPHA, 0.5, 30), rtol=2e-4, atol=1e-6)
    # hard=True is exact in training and at inference, whatever hard_at_inference says.
    hard = keras_gumbel.GumbelSinkhorn(hard=True, hard_at_inference=False, seed=0)
    np.testing.assert_array_equal(to_numpy(hard(LOG_ALPHA)), assignment_matrices(LOG_ALPHA))


def test_sample_at_inference_keeps_the_noise():
    layer = keras_gumbel.GumbelSinkhorn(sample_at_inference=True, seed=1)
    first, second = to_numpy(layer(LOG_ALPHA)), to_numpy(layer(LOG_ALPHA))
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first.sum(-1), 1.0)  # still exact permutations (hard_at_inference)
    np.testing.assert_array_equal(first.sum(-2), 1.0)


def test_hard_training_samples_carry_the_relaxed_gradient():
    upstream = np.random.default_rng(1).normal(size=LOG_ALPHA.shape).astype("float32")
    gradients = []
    for hard in (False, True):
        layer = keras_gumbel.GumbelSinkhorn(temperature=0.4, hard=hard, seed=6)
        gradients.append(
            gradient(
                lambda x, layer=layer: keras.ops.sum(keras.ops.multiply(layer(x, training=True), upstream)), LOG_ALPHA
            )
        )
    assert np.isfinite(gradients[0]).all() and np.abs(gradients[0]).sum() > 0
    np.testing.assert_allclose(gradients[0], gradients[1], rtol=1e-5, atol=1e-7)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="a tf.Variable and GradientTape")
def test_a_learned_temperature_gets_a_gradient():
    import tensorflow as tf

    layer = keras_gumbel.GumbelSinkhorn(temperature=0.8, trainable_temperature=True, seed=2)
    upstream = tf.constant(np.random.default_rng(3).normal(size=LOG_ALPHA.shape).astype("float32"))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(LOG_ALPHA, training=True) * upstream)
    (grad,) = tape.gradient(loss, [layer.temperature])
    assert grad is not None and np.isfinite(grad.numpy()) and grad.numpy() != 0


@pytest.mark.slow
def test_learns_to_sort_in_a_model():
    # A Sinkhorn network in miniature (Mena et al., section 4.1): each number maps to a row of log_alpha.
    rng = np.random.default_rng(4)
    numbers = rng.uniform(size=(512, 4, 1)).astype("float32")
    targets = np.sort(numbers, axis=1)
    inputs = keras.Input((4, 1))
    log_alpha = keras.layers.Dense(4)(keras.layers.Dense(16, activation="relu")(inputs))
    permutation = keras_gumbel.GumbelSinkhorn(temperature=0.5, num_iterations=10, seed=0)(log_alpha)
    ordered = keras.ops.matmul(keras.ops.transpose(permutation, (0, 2, 1)), inputs)
    model = keras.Model(inputs, ordered)
    model.compile(keras.optimizers.Adam(0.05), "mse")
    model.fit(numbers, targets, batch_size=64, epochs=20, verbose=0)
    predicted = to_numpy(model.predict(numbers, verbose=0))  # inference: exact permutations
    assert np.mean(np.all(predicted == targets, axis=(1, 2))) > 0.9


def small_model(layer):
    inputs = keras.Input((SIZE, 3))
    log_alpha = keras.layers.Dense(SIZE, name="scores")(inputs)
    return keras.Model(inputs, layer(log_alpha))


@pytest.mark.slow
def test_keras_file_round_trip_restores_temperature_weights_and_seed_state(tmp_path):
    model = small_model(keras_gumbel.GumbelSinkhorn(temperature=1.0, seed=5))
    model.compile("adam", "mse")
    x = np.random.default_rng(5).normal(size=(16, SIZE, 3)).astype("float32")
    model.fit(x, np.full((16, SIZE, SIZE), 1 / SIZE, "float32"), verbose=0)
    model.layers[-1].temperature.assign(0.37)
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    assert float(to_numpy(restored.layers[-1].temperature)) == pytest.approx(0.37)
    np.testing.assert_array_equal(to_numpy(model(x)), to_numpy(restored(x)))
    # The same seed-generator state: the next training draws agree.
    np.testing.assert_array_equal(to_numpy(model(x, training=True)), to_numpy(restored(x, training=True)))


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "tensorflow", reason="model.export writes a TensorFlow SavedModel")
def test_exported_savedmodel_serves_exact_permutations(tmp_path):
    import tensorflow as tf

    for sample_at_inference in (False, True):
        model = small_model(keras_gumbel.GumbelSinkhorn(temperature=0.5, sample_at_inference=sample_at_inference))
        path = str(tmp_path / f"served_{sample_at_inference}")
        model.export(path, verbose=False)
        served = tf.saved_model.load(path)
        x = np.random.default_rng(6).normal(size=(64, SIZE, 3)).astype("float32")
        output = served.serve(x).numpy()
        assert np.isin(output, (0.0, 1.0)).all()
        np.testing.assert_array_equal(output.sum(-1), 1.0)
        np.testing.assert_array_equal(output.sum(-2), 1.0)
        if not sample_at_inference:
            scores = to_numpy(model.get_layer("scores")(x))
            np.testing.assert_array_equal(output, assignment_matrices(scores))


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_outputs_are_finite_in_the_compute_dtype(policy):
    keras.config.set_dtype_policy(policy)
    model = small_model(keras_gumbel.GumbelSinkhorn(temperature=0.2, seed=0))
    x = np.random.default_rng(7).normal(size=(8, SIZE, 3)).astype("float32")
    for training in (True, False):
        out = model(x, training=training)
        assert keras.backend.standardize_dtype(out.dtype) == keras.mixed_precision.dtype_policy().compute_dtype
        assert np.isfinite(to_numpy(keras.ops.cast(out, "float32"))).all()


@pytest.mark.parametrize("shape", [(4,), (3, 4), (2, 3, 4), (2, None, None)])
def test_inputs_that_are_not_square_matrices_are_a_named_error(shape):
    with pytest.raises(ValueError, match="`inputs`.*square"):
        keras_gumbel.GumbelSinkhorn().build(shape)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"num_iterations": 0}, ValueError, "num_iterations"),
        ({"num_iterations": 1.5}, TypeError, "num_iterations"),
        ({"hard": "yes"}, TypeError, "hard"),
        ({"hard_at_inference": None}, TypeError, "hard_at_inference"),
        ({"temperature": 0.0}, ValueError, "temperature"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, name):
    with pytest.raises(error, match=f"`{name}`"):
        keras_gumbel.GumbelSinkhorn(**kwargs)
