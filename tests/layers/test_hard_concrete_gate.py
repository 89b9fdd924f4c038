"""HardConcreteGate and the Hard Concrete ops: the law in closed form, exact 0s and 1s, gradients, errors, modes.

Backend-agnostic except where a test says so (CI runs the contract on every backend; this file on TensorFlow).
"""

import keras
import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats
from helpers import to_numpy

import keras_gumbel
from keras_gumbel import ops as gumbel_ops

LOW, HIGH = -0.1, 1.1
BETA = 2.0 / 3.0


def _cdf(v, log_alpha, beta=BETA):
    """P(z <= v) for v in (0, 1): the stretched binary Concrete's CDF (Louizos et al., equation 10, clipped)."""
    c = (v - LOW) / (HIGH - LOW)
    return scipy.special.expit(beta * scipy.special.logit(c) - log_alpha)


@pytest.mark.parametrize("log_alpha", [-2.0, 0.3, 2.5])
def test_samples_put_the_closed_form_masses_on_0_and_1_and_follow_the_cdf_between(log_alpha):
    n = 100_000
    z = to_numpy(gumbel_ops.hard_concrete(np.full((n,), log_alpha, "float32"), seed=4)).astype(np.float64)
    assert ((z >= 0) & (z <= 1)).all()
    p_zero, p_one = _cdf(1e-12, log_alpha), 1 - _cdf(1 - 1e-12, log_alpha)
    nonzero = to_numpy(gumbel_ops.hard_concrete_probability_nonzero(np.float32(log_alpha)))
    np.testing.assert_allclose(nonzero, 1 - p_zero, rtol=1e-5)
    counts = [(z == 0).sum(), (z == 1).sum(), ((z > 0) & (z < 1)).sum()]
    expected = np.array([p_zero, p_one, 1 - p_zero - p_one]) * n
    assert scipy.stats.chisquare(counts, expected).pvalue > 1e-3, (counts, expected)
    middle = z[(z > 0) & (z < 1)]  # between the atoms: the CDF renormalised to (0, 1)
    conditional = lambda v: (_cdf(v, log_alpha) - p_zero) / (1 - p_zero - p_one)  # noqa: E731
    assert scipy.stats.kstest(middle, conditional).pvalue > 1e-3


def test_the_deterministic_gate_is_the_papers_estimator():
    log_alpha = np.array([-3.0, -1.0, 0.0, 1.0, 4.0], "float32")
    expected = np.clip(scipy.special.expit(log_alpha) * (HIGH - LOW) + LOW, 0, 1)
    np.testing.assert_allclose(to_numpy(gumbel_ops.hard_concrete_gate(log_alpha)), expected, rtol=1e-6)
    assert to_numpy(gumbel_ops.hard_concrete_gate(log_alpha))[[0, -1]].tolist() == [0.0, 1.0]


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="uses tf.GradientTape")
def test_gradients_flow_between_the_atoms_and_vanish_on_them():
    import tensorflow as tf

    log_alpha = tf.Variable(np.zeros(4000, "float32"))
    with tf.GradientTape() as tape:
        z = gumbel_ops.hard_concrete(log_alpha, seed=5)
        loss = tf.reduce_sum(z)
    grad, z = tape.gradient(loss, log_alpha).numpy(), z.numpy()
    assert np.isfinite(grad).all()
    assert (grad[(z == 0) | (z == 1)] == 0).all() and (grad[(z > 0) & (z < 1)] > 0).all()


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="uses tf.GradientTape")
def test_the_probability_nonzero_gradient_matches_finite_differences():
    import tensorflow as tf

    log_alpha = tf.Variable([0.4])
    with tf.GradientTape() as tape:
        p = gumbel_ops.hard_concrete_probability_nonzero(log_alpha)
    analytic = tape.gradient(p, log_alpha).numpy()[0]
    shift = BETA * np.log(-LOW / HIGH)
    numeric = scipy.special.expit(0.4 - shift) * (1 - scipy.special.expit(0.4 - shift))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5)


@pytest.mark.parametrize("stretch", [(0.0, 1.1), (-0.1, 1.0), (-0.1,), "wide", (float("nan"), 1.1)])
def test_a_bad_stretch_is_refused_naming_it(stretch):
    with pytest.raises((ValueError, TypeError), match="stretch"):
        gumbel_ops.hard_concrete(np.zeros(3, "float32"), stretch=stretch)
    with pytest.raises((ValueError, TypeError), match="stretch"):
        keras_gumbel.HardConcreteGate(stretch=stretch)


@pytest.mark.parametrize("p", [0.0, 1.0, -0.2, "high"])
def test_a_bad_initial_keep_probability_is_refused_naming_it(p):
    with pytest.raises((ValueError, TypeError), match="initial_keep_probability"):
        keras_gumbel.HardConcreteGate(initial_keep_probability=p)


def test_the_layer_starts_at_its_keep_probability_and_gates_the_last_axis():
    layer = keras_gumbel.HardConcreteGate(initial_keep_probability=0.8, seed=0)
    x = np.ones((3, 5, 7), "float32")
    sample = to_numpy(layer(x, training=True))
    np.testing.assert_allclose(to_numpy(layer.probability_nonzero()), 0.8, rtol=1e-5)
    np.testing.assert_allclose(float(to_numpy(layer.expected_kept())), 0.8 * 7, rtol=1e-5)
    # One gate per unit, shared by the batch and every other axis.
    assert (sample == sample[:1, :1]).all()
    inference = to_numpy(layer(x))
    np.testing.assert_array_equal(inference[0, 0], layer.gates())
    np.testing.assert_array_equal(layer.kept_units(), np.flatnonzero(layer.gates() > 0))


def test_the_mean_gate_is_the_integral_of_the_tail():
    layer = keras_gumbel.HardConcreteGate(seed=0)
    layer.build((None, 3))
    layer.log_alpha.assign([-2.0, 0.3, 2.5])
    for log_alpha, mean in zip([-2.0, 0.3, 2.5], layer.mean_gates()):
        exact = scipy.integrate.quad(lambda v, a=log_alpha: 1 - _cdf(v, a), 0, 1)[0]
        np.testing.assert_allclose(mean, exact, rtol=1e-5)
    z = to_numpy(gumbel_ops.hard_concrete(np.full((200_000,), 0.3, "float32"), seed=6))
    np.testing.assert_allclose(z.mean(), layer.mean_gates()[1], atol=4 * z.std() / np.sqrt(len(z)))


def test_fixed_gates_apply_at_inference_save_with_the_model_and_training_still_samples(tmp_path):
    inputs = keras.Input((4,))
    gate = keras_gumbel.HardConcreteGate(seed=1, name="gate")
    model = keras.Model(inputs, gate(inputs))
    gate.log_alpha.assign([2.0, -1.0, 0.5, 3.0])
    gate.fix_gates([True, False, True, False])
    expected = np.where([True, False, True, False], gate.mean_gates(), 0.0)
    np.testing.assert_allclose(to_numpy(model(np.ones((2, 4), "float32")))[0], expected, rtol=1e-6)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("gate").fixed
    np.testing.assert_array_equal(to_numpy(loaded(np.ones((2, 4), "float32"))), to_numpy(model(np.ones((2, 4)))))
    draws = [to_numpy(model(np.ones((1, 4), "float32"), training=True)) for _ in range(3)]
    assert not all(np.array_equal(draws[0], d) for d in draws[1:])
    with pytest.raises(ValueError, match="keep"):
        gate.fix_gates([True, False])


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "XLA"])
def test_a_gated_model_trains_in_fit_and_predicts_its_deterministic_gates(jit_compile):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    gate = keras_gumbel.HardConcreteGate(seed=3)
    model = keras.Model(inputs, keras.layers.Dense(2)(gate(keras.layers.Dense(8)(inputs))))
    model.compile(keras.optimizers.Adam(0.05), "mse", jit_compile=jit_compile)
    x = np.random.default_rng(0).normal(size=(64, 6)).astype("float32")
    start = to_numpy(gate.log_alpha).copy()
    history = model.fit(x, np.zeros((64, 2), "float32"), epochs=3, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert not np.array_equal(to_numpy(gate.log_alpha), start), "the gates' log_alpha got no gradient in fit"
    # predict (compiled likewise) applies the deterministic gates: the same as an eager inference call, twice.
    first, second = model.predict(x, verbose=0), model.predict(x, verbose=0)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, to_numpy(model(x, training=False)), rtol=1e-5, atol=1e-6)
