"""Pins every private TensorFlow / Keras name in keras_gumbel/_tf_private.py.

When a TensorFlow or Keras release moves one, these fail with a message that
names it; the package keeps working through its fallback meanwhile.
"""

import importlib.util
import inspect
import types

import keras
import numpy as np
import pytest

import keras_gumbel
from keras_gumbel import _tf_private

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's private names")


def test_xla_context_detection():
    message = "tensorflow.python.ops.control_flow_util.GraphOrParentsInXlaContext moved or changed"
    from tensorflow.python.ops import control_flow_util  # noqa: F401

    assert tf.function(lambda: tf.constant(_tf_private.in_xla_context()), jit_compile=True)().numpy(), message
    assert not tf.function(lambda: tf.constant(_tf_private.in_xla_context()))().numpy(), message
    assert not _tf_private.in_xla_context(), message


def test_xla_rng_bit_generator():
    generator = _tf_private.xla_rng_bit_generator()
    assert generator is not None, "tensorflow.compiler.tf2xla.python.xla.rng_bit_generator moved"
    state = tf.constant([1, 2, 0], tf.uint64)  # Philox: a key and a counter
    _, bits = tf.function(lambda: generator(1, state, [4], dtype=tf.uint32), jit_compile=True)()
    assert bits.shape == (4,) and bits.dtype == tf.uint32


def test_keras_global_seed():
    seeds = [_tf_private.keras_global_seed() for _ in range(2)]
    assert all(tuple(seed.shape) == (2,) for seed in seeds), "keras.src.random.seed_generator.draw_seed changed"
    assert not np.array_equal(*(keras.ops.convert_to_numpy(seed) for seed in seeds))


def test_in_stateless_scope():
    assert not _tf_private.in_stateless_scope()
    with keras.StatelessScope():
        assert _tf_private.in_stateless_scope(), "keras.src.backend.common.stateless_scope.in_stateless_scope moved"


def test_keras_export_format(tmp_path):
    seen = []

    class Probe(keras.layers.Layer):
        def call(self, inputs):
            seen.append(_tf_private.keras_export_format())
            return inputs

    inputs = keras.Input((2,))
    model = keras.Model(inputs, Probe()(inputs))
    assert seen == [None]
    model.export(str(tmp_path / "served"), verbose=False)
    assert seen[1:] and set(seen[1:]) == {"saved_model"}, f"keras.src.export's modules moved: {seen}"
    if importlib.util.find_spec("tf2onnx") is not None:
        seen.clear()
        model.export(str(tmp_path / "m.onnx"), format="onnx", verbose=False)
        assert seen and set(seen) == {"onnx"}, f"keras.src.export.onnx moved: {seen}"


def test_seed_generators_of_a_layer():
    layer = keras_gumbel.GumbelSoftmax(seed=1)
    assert _tf_private.seed_generators(layer) == [layer.seed_generator], "Keras' Layer._seed_generators moved"


def test_flatten_layers():
    inner = keras.Sequential([keras.layers.Dense(2), keras_gumbel.GumbelSoftmax()])
    outer = keras.Sequential([keras.Input((3,)), inner])
    assert inner.layers[1] in _tf_private.flatten_layers(outer), "Keras' Layer._flatten_layers moved"


def test_functional_graph_lists_the_layer_calls_in_order():
    message = "Keras' Functional._nodes_by_depth (or Sequential._functional) moved"
    dense, gate = keras.layers.Dense(3), keras_gumbel.HardConcreteGate()
    inputs = keras.Input((2,))
    hidden = dense(inputs)
    functional = keras.Model(inputs, gate(hidden))
    sequential = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    for model, layers in ((functional, [dense, gate]), (sequential, sequential.layers)):
        _, calls = _tf_private.functional_graph(model)
        assert [layer for layer, _, _ in calls] == layers, message
    _, calls = _tf_private.functional_graph(functional)
    assert calls[0][1] == [inputs] and calls[0][2] == [hidden] and calls[1][1] == [hidden], message
    with pytest.raises(ValueError, match="has no layer graph"):
        _tf_private.functional_graph(keras.Sequential([keras.layers.Dense(1)]))


def test_attention_gate_dense():
    layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, use_gate=True)
    layer(np.ones((1, 4, 5)), np.ones((1, 4, 5)))
    gate = _tf_private.attention_gate_dense(layer)
    assert gate is not None and tuple(gate.kernel.shape) == (5, 2, 3), "Keras' MultiHeadAttention._gate_dense moved"
    assert _tf_private.attention_gate_dense(keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)) is None


def test_trackable_children_hook():
    hook = getattr(keras.layers.Layer, _tf_private.TRACKABLE_CHILDREN, None)
    assert hook is not None, "TensorFlow's Trackable._trackable_children moved"
    assert "save_type" in inspect.signature(hook).parameters, "Trackable._trackable_children changed its signature"


def test_add_trackable_children_saves_them_in_a_checkpoint(tmp_path):
    message = "TensorFlow's Trackable._trackable_children no longer decides what a checkpoint saves"

    class WithHidden:
        pass

    _tf_private.add_trackable_children(WithHidden, lambda layer: {"hidden": layer.box.variable})

    class Hiding(WithHidden, keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.kept = self.add_weight(shape=(), initializer="zeros")
            self.box = types.SimpleNamespace(variable=tf.Variable(1.0))  # tracked by nobody but the hook

    layer = Hiding()
    children = getattr(layer, _tf_private.TRACKABLE_CHILDREN)()
    assert "hidden" in children and len(children) > 1, message  # its own children are kept
    path = tf.train.Checkpoint(layer=layer).write(str(tmp_path / "checkpoint"))
    layer.box.variable.assign(5.0)
    tf.train.Checkpoint(layer=layer).read(path).assert_consumed()
    assert layer.box.variable.numpy() == 1.0, message
