"""HeadGatedAttention: MultiHeadAttention with a Hard Concrete gate per head.

Its layer contract (config, .keras reload with the seed stream, dtype policies, masks, modes) runs in
`test_contract.py`; here what the gates do to the attention, in eager, `fit` (graph and XLA) and `predict`.
Backend-agnostic: CI runs this file on TensorFlow, JAX and PyTorch.
"""

import keras
import numpy as np
import pytest
from helpers import to_numpy

import keras_gumbel

RNG = np.random.default_rng(0)
QUERY = RNG.normal(size=(4, 5, 6)).astype("float32")
VALUE = RNG.normal(size=(4, 7, 6)).astype("float32")


def pair(log_alpha, **kwargs):
    """A built HeadGatedAttention with the given head `log_alpha` and a plain MultiHeadAttention with its weights."""
    gated = keras_gumbel.HeadGatedAttention(3, 4, gate_seed=1, **kwargs)
    gated(QUERY, VALUE)
    gated.head_gate.log_alpha.assign(np.asarray(log_alpha, "float32"))
    plain = keras.layers.MultiHeadAttention(3, 4, **kwargs)
    plain(QUERY, VALUE)
    for source, target in zip(
        (gated.query_dense, gated.key_dense, gated.value_dense, gated.output_dense),
        (plain.query_dense, plain.key_dense, plain.value_dense, plain.output_dense),
    ):
        target.set_weights(source.get_weights())
    return gated, plain


def scale_heads(plain, gates):
    """Multiplies each head's rows of `plain`'s output projection by its gate (what the gates do)."""
    kernel, bias = plain.output_dense.get_weights()
    plain.output_dense.set_weights([kernel * np.asarray(gates, "float32")[:, None, None], bias])


@pytest.mark.parametrize("use_causal_mask", [False, True])
def test_inference_is_the_attention_with_each_head_scaled_by_its_gate(use_causal_mask):
    gated, plain = pair([30.0, -30.0, 0.5])  # kept (gate 1), off (gate 0), in between
    query = value = QUERY
    gates = gated.head_gate.gates()
    assert gates[0] == 1.0 and gates[1] == 0.0 and 0.0 < gates[2] < 1.0
    scale_heads(plain, gates)
    np.testing.assert_allclose(
        to_numpy(gated(query, value, use_causal_mask=use_causal_mask)),
        to_numpy(plain(query, value, use_causal_mask=use_causal_mask)),
        atol=1e-6,
    )


def test_all_heads_kept_is_the_plain_attention_and_the_scores_are_its():
    gated, plain = pair([30.0, 30.0, 30.0])
    output, scores = gated(QUERY, VALUE, return_attention_scores=True)
    expected, expected_scores = plain(QUERY, VALUE, return_attention_scores=True)
    np.testing.assert_allclose(to_numpy(output), to_numpy(expected), atol=1e-6)
    np.testing.assert_allclose(to_numpy(scores), to_numpy(expected_scores), atol=1e-6)


def test_training_draws_one_gate_per_head_for_the_batch_and_trains_log_alpha():
    gated, plain = pair([0.0, 0.0, 0.0])
    same = np.repeat(QUERY[:1], 4, axis=0)
    outputs = to_numpy(gated(same, same, training=True))
    np.testing.assert_allclose(outputs, np.repeat(outputs[:1], 4, axis=0), atol=1e-6)  # one draw for the batch
    draws = [to_numpy(gated(QUERY, VALUE, training=True)) for _ in range(20)]
    assert len({draw.tobytes() for draw in draws}) > 1
    inputs = keras.Input((5, 6))
    model = keras.Model(inputs, gated(inputs, inputs))
    model.compile(keras.optimizers.SGD(0.1), "mse")
    before = to_numpy(gated.head_gate.log_alpha).copy()
    model.fit(QUERY, np.zeros((4, 5, 6), "float32"), epochs=2, verbose=0)
    assert not np.allclose(to_numpy(gated.head_gate.log_alpha), before)  # the relaxed gradient reached log_alpha


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="fit's graph and XLA modes are TensorFlow's")
@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_in_graph_and_xla_and_predict_deterministic_gates(jit_compile):
    inputs = keras.Input((5, 6))
    attention = keras_gumbel.HeadGatedAttention(3, 4, gate_seed=2, name="attention")
    model = keras.Model(inputs, attention(inputs, inputs))
    model.compile(keras.optimizers.Adam(0.05), "mse", jit_compile=jit_compile)
    history = model.fit(QUERY, np.zeros((4, 5, 6), "float32"), epochs=3, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    predicted = model.predict(QUERY, verbose=0)
    np.testing.assert_allclose(predicted, to_numpy(model(QUERY, training=False)), atol=1e-5)
    np.testing.assert_array_equal(model.predict(QUERY, verbose=0), predicted)  # no noise at inference


def test_the_annealing_callback_reaches_the_head_gate():
    inputs = keras.Input((5, 6))
    attention = keras_gumbel.HeadGatedAttention(3, 4, gate_seed=2)
    model = keras.Model(inputs, attention(inputs, inputs))
    model.compile("sgd", "mse")
    callback = keras_gumbel.TemperatureAnnealing(lambda step: 0.25)
    model.fit(QUERY, np.zeros((4, 5, 6), "float32"), epochs=1, verbose=0, callbacks=[callback])
    assert float(to_numpy(attention.head_gate.temperature)) == pytest.approx(0.25)
    assert attention.temperature is attention.head_gate.temperature
