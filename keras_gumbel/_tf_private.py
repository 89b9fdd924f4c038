"""Every private TensorFlow and Keras name keras_gumbel uses, in one place.

Each is pinned by `tests/test_tf_private.py`, which fails with a message
naming the private path when a new TensorFlow or Keras release moves it.
Each has a fallback that keeps the package correct (if slower) meanwhile.

- `in_xla_context`: `tensorflow.python.ops.control_flow_util.GraphOrParentsInXlaContext`,
  to pick XLA's native random bit generator (fallback: assume not in XLA).
- `xla_rng_bit_generator`: `tensorflow.compiler.tf2xla.python.xla.rng_bit_generator`
  (fallback: None, TensorFlow's stateless kernel, 50-70x slower under XLA on the CPU).
- `keras_global_seed`: `keras.src.random.seed_generator.draw_seed(None)`, a seed
  from Keras' global generator (what `keras.random` draws with for `seed=None`).
- `in_stateless_scope`: `keras.src.backend.common.stateless_scope.in_stateless_scope`, whether
  Keras threads variables' values through the function being traced (its JAX `fit`, `predict`, exports).
- `keras_export_format`: the module of `keras.src.export` (`"onnx"`, `"litert"`, `"openvino"`, `"saved_model"`,
  ...) whose frame is on the Python stack, i.e. the export Keras is tracing the running code for (`model.export`,
  `ExportArchive`), or None (fallback: None, where Keras moves it).
- `seed_generators`: a layer's `_seed_generators` (the SeedGenerators Keras tracks on it).
- `flatten_layers`: `Layer._flatten_layers`, every layer nested in a model.
- `functional_graph`: a functional model's (or a built Sequential's `_functional`) `_nodes_by_depth`, the layer
  calls of its graph in order, with their input and output tensors (what `pruning` walks).
- `attention_gate_dense`: `MultiHeadAttention._gate_dense` and `_use_gate`, the gate projection of `use_gate=True`
  attention (fallback: None where it is not one; Keras has no public name for it).
- `add_trackable_children`: installs TensorFlow's `Trackable._trackable_children` hook
  (named by `TRACKABLE_CHILDREN`) on a mixin, so that SavedModels and checkpoints
  hold more children (`TrackSeedState`: the seed state). No fallback: without the
  hook, a SavedModel of a function that samples fails with "untracked resource".
"""

TRACKABLE_CHILDREN = "_trackable_children"


def in_xla_context():
    """Whether the TensorFlow graph being built is compiled by XLA (`jit_compile=True`)."""
    try:
        import tensorflow as tf
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # pragma: no cover - private module moved: pinned by tests/test_tf_private.py
        return False
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def xla_rng_bit_generator():
    """TensorFlow's binding of XLA's `RngBitGenerator` instruction, or None where it cannot be imported."""
    try:
        from tensorflow.compiler.tf2xla.python import xla as tf2xla
    except ImportError:  # pragma: no cover - private module moved: pinned by tests/test_tf_private.py
        return None
    return getattr(tf2xla, "rng_bit_generator", None)


def keras_global_seed():
    """A seed drawn from Keras' global generator, as `keras.random` draws one for `seed=None`."""
    from keras.src.random.seed_generator import draw_seed

    return draw_seed(None)


def in_stateless_scope():
    """Whether Keras runs the current code in a `StatelessScope` (variables read from, and assigned to, the scope)."""
    from keras.src.backend.common.stateless_scope import in_stateless_scope as keras_in_stateless_scope

    return keras_in_stateless_scope()


def keras_export_format():
    """The export Keras is tracing the running code for: the outermost `keras.src.export` module on the stack, or None.

    `"onnx"`, `"litert"`, `"openvino"`, `"torch"` for `model.export(format=...)`, `"saved_model"` for
    `format="tf_saved_model"` and `ExportArchive` (every TensorFlow export traces through that module too, so the
    outermost frame names the format).
    """
    import sys

    found = None
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith("keras.src.export."):
            found = module.rpartition(".")[2]
        frame = frame.f_back
    return found


def seed_generators(layer):
    """The SeedGenerators Keras tracks on `layer` (assigned as its attributes)."""
    return list(getattr(layer, "_seed_generators", []))


def flatten_layers(model):
    """Every layer inside `model`, nested models and layers included, `model` excluded."""
    return list(model._flatten_layers(include_self=False, recursive=True))


def functional_graph(model):
    """`(functional, calls)`: the functional model behind `model` (itself, or a built Sequential's) and its layer
    calls in topological order, each `(layer, input tensors, output tensors)`, the input layers excluded.

    Raises:
        ValueError: For a model without a graph (a subclassed model, an unbuilt Sequential).
    """
    functional = model if hasattr(model, "_nodes_by_depth") else getattr(model, "_functional", None)
    if functional is None or not hasattr(functional, "_nodes_by_depth"):
        raise ValueError(
            f"The model {model.name!r} has no layer graph: pass a functional model, or a Sequential built on an "
            "input shape (`keras.Sequential([keras.Input(shape), ...])`)."
        )
    calls = []
    for depth in sorted(functional._nodes_by_depth, reverse=True):
        for node in functional._nodes_by_depth[depth]:
            if node.operation is not None and not node.is_input:
                calls.append((node.operation, list(node.input_tensors), list(node.outputs)))
    return functional, calls


def attention_gate_dense(layer):
    """The `EinsumDense` gate projection of a `MultiHeadAttention(use_gate=True)`, or None (no gate)."""
    # Its private flag, not `get_config()`: a subclass's config may read variables (HeadGatedAttention's gate
    # temperature), which fails where the costs are traced.
    return getattr(layer, "_gate_dense", None) if getattr(layer, "_use_gate", False) else None


def add_trackable_children(cls, children):
    """Makes TensorFlow save `children(obj)` under every `obj` of class `cls`, next to its own children.

    Installs `cls._trackable_children`, TensorFlow's (private) hook that lists
    what a SavedModel or `tf.train.Checkpoint` saves under an object; it calls
    the next class's hook in the MRO, then adds `children(obj)` (a dict of
    name -> trackable), leaving a child already saved under a name as it is.
    Use it on a mixin that precedes a Keras layer or model in the bases.
    """

    def trackable_children(self, save_type="checkpoint", **kwargs):
        found = getattr(super(cls, self), TRACKABLE_CHILDREN)(save_type, **kwargs)
        for name, child in children(self).items():
            found.setdefault(name, child)
        return found

    trackable_children.__qualname__ = f"{cls.__qualname__}.{TRACKABLE_CHILDREN}"
    setattr(cls, TRACKABLE_CHILDREN, trackable_children)
    return cls
