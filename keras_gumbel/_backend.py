"""Dispatch on the Keras backend: the one module that knows which backend runs and how it draws randomness.

Everything else in `keras_gumbel` is written with `keras.ops` and `keras.random`
only. The private TensorFlow and Keras names it needs come from `_tf_private`.
This module holds the few places where a backend-specific route is faster
or needed, each with a backend-agnostic fallback:

- `uniform_positive`: uniforms on `[tiny, 1)`, the input of every Gumbel draw.
  On TensorFlow it calls the stateless Philox kernel directly and clamps with a
  single `maximum` instead of the two ops (`* (maxval - minval) + minval`) that
  `keras.random.uniform` adds; everywhere else it calls `keras.random.uniform`.
  Under XLA it uses XLA's native Philox bit generator (see `_tf_xla_uniform`).
- `sampling_at_inference`, `sampling_inference`, `inference_uniform`: the noise a layer draws at inference
  (`sample_at_inference=True`), with the random op each export's runtime has (see
  `sampling_at_inference`).
- `softmax`: on TensorFlow, rows of at most 16 categories go through
  `exp(log_softmax(x))`, 9-19% faster there than TF's softmax kernel forward
  and backward (K = 4..10; slower from K = 20 on: measured with
  `benchmarks/speed.py`'s harness); the same function everywhere else.
- `tf_seed`: a TensorFlow stateless seed that differs on every replica of a
  `tf.distribute` strategy (a plain `SeedGenerator` gives every replica the
  same state, hence the same noise): the replica id is folded in.
- `fold_seed`: an integer seed as the backend's seed dtype holds it.
- `normalize_seed`, `fold_in`: seed tensors (a JAX key; two integers, as
  TensorFlow's stateless ops take them) in the form the backend's random ops
  take, and a second independent seed derived from one.
- `argmax`: on TensorFlow, `tf.argmax`; `keras.ops.argmax` adds six
  element-wise ops there to order -0.0 below 0.0 as NumPy does, which a
  sampler does not need.
- `export_without_loops`, `export_freezes_input_free_draws`: what the export being traced cannot hold (the layers
  raise, naming themselves).
- `take_argmax_columns`: a gather, and while PyTorch exports, selects instead (no integer tensor).
- `max_and_one_hot`: on PyTorch, the maximum with its index from one
  `torch.max` pass, and the one-hot from one `scatter_` into zeros.
- `add`, `max`: on TensorFlow, `tf.add` and `tf.reduce_max`, which accept an
  empty batch (Keras' versions fail on tensors of shape (0, K)).
- `as_graph`: a function with loops (the assignment's `while_loop`s) runs
  compiled: on TensorFlow by XLA, eagerly or inside a graph (graph mode runs
  its many small loop steps about 8x slower; eagerly, op by op from Python,
  30x slower still), `jax.jit` on JAX when called eagerly (instead of
  tracing its loops anew at every call, about 100x faster).
- `repeat`: a function applied a fixed number of times as one differentiable
  loop in the graph (Sinkhorn's rounds): `tf.while_loop` with
  `maximum_iterations` on TensorFlow, `lax.fori_loop` on JAX.
"""

import contextlib
import contextvars
import weakref

import keras
import numpy as np

from keras_gumbel import _tf_private


def require_tensorflow(what, because, instead=None, error=RuntimeError):
    """Raises `error` naming `what` (and why: `because`) unless the running backend is TensorFlow."""
    if backend() == "tensorflow":
        return
    message = (
        f"{what} {because}, so it needs the TensorFlow backend (KERAS_BACKEND=tensorflow); the running backend "
        f"is {backend()!r}."
    )
    raise error(message if instead is None else f"{message} {instead}")


def backend():
    """Returns the name of the running Keras backend."""
    return keras.backend.backend()


def tiny(dtype):
    """The smallest positive normal number of a floating dtype."""
    return float(np.finfo(keras.backend.standardize_dtype(dtype)).tiny)


# Up to this many categories, exp(log_softmax(x)) beats TF's softmax kernel.
_TF_SHORT_ROW = 16


def softmax(x, axis):
    """`softmax(x)` along `axis`, by the fastest route for the backend and row length."""
    num_classes = x.shape[axis]
    if backend() == "tensorflow" and num_classes is not None and num_classes <= _TF_SHORT_ROW:
        return keras.ops.exp(keras.ops.log_softmax(x, axis=axis))
    return keras.ops.softmax(x, axis=axis)


def add(x, y):
    """`x + y`. On TensorFlow `tf.add`: `keras.ops.add` routes a second operand of shape (0, K)
    to `tf.nn.bias_add` (it looks like a bias once the 0 is dropped), which fails on empty batches."""
    if backend() == "tensorflow":
        import tensorflow as tf

        return tf.add(x, y)
    return keras.ops.add(x, y)


def max(x, axis, keepdims=False):  # noqa: A001 - mirrors keras.ops.max
    """`max(x)` along `axis`, NaN where the reduced slice holds a NaN, on every backend and under XLA.

    On TensorFlow `tf.reduce_max`: `keras.ops.max` refuses an empty tensor
    outright (an empty batch), even when the reduced axis is not empty. Under
    XLA on TensorFlow the maximum skips NaN (it returned 2 for [1, nan, 2]),
    so NaN is put back where the slice holds one.
    """
    if backend() == "tensorflow":
        import tensorflow as tf

        result = tf.reduce_max(x, axis=axis, keepdims=keepdims)
        if _tf_private.in_xla_context():
            has_nan = tf.reduce_any(tf.math.is_nan(x), axis=axis, keepdims=keepdims)
            result = tf.where(has_nan, tf.constant(float("nan"), x.dtype), result)
        return result
    if backend() == "torch":
        import torch

        # keras.ops.max refuses an empty tensor on PyTorch too; amax keeps NaN.
        return torch.amax(x, dim=axis, keepdim=keepdims)
    return keras.ops.max(x, axis=axis, keepdims=keepdims)


def max_and_one_hot(x, axis):
    """`(max(x, axis, keepdims=True), one_hot(argmax(x, axis)))`, the one-hot in the shape and dtype of `x`.

    The first index on ties; NaN-propagating as `max` is (a NaN's index and
    value where the slice holds one). On PyTorch one `torch.max(x, dim)` pass
    and one `scatter_` of its (kept-dimension) indices into zeros, as
    `F.gumbel_softmax` builds its one-hot: `keras.ops.one_hot` adds a select
    for negative indices and a cast from int64 there, 4x the time (and
    while `torch.export`, `torch.jit.trace` or the ONNX exporter traces, a
    comparison with the maximum and a running count instead of the indices).
    """
    if backend() == "torch":
        import torch

        values, indices = torch.max(x, dim=axis, keepdim=True)
        if not torch_exporting():
            return values, torch.zeros_like(x).scatter_(axis, indices, 1)
        # Exported: no integer tensor (litert-torch's converter mistyped int64 indices from its second conversion
        # in a process on): the first entry equal to the maximum, found by a running count.
        at_max = torch.eq(x, values)
        first = torch.logical_and(at_max, torch.eq(torch.cumsum(at_max.to(x.dtype), dim=axis), 1.0))
        return values, first.to(x.dtype)
    num_classes = x.shape[axis]
    if num_classes is None:
        num_classes = keras.ops.shape(x)[axis]
    one_hot = keras.ops.one_hot(argmax(x, axis), num_classes, axis=axis, dtype=x.dtype)
    return max(x, axis=axis, keepdims=True), one_hot


def take_argmax_columns(x, scores):
    """`x[:, argmax(scores, -1)]`: the column of `x` [batch, d] that each row of `scores` [k, d] ranks first.

    While PyTorch traces an export, without an integer tensor (the gather's
    ONNX form failed shape inference, OpenVINO had no rule for it, and
    litert-torch mistypes int64 indices): each column picked by a select
    against the one-hot of the argmax, then summed with zeros, exactly (an
    infinite value elsewhere in the row does not reach it).
    """
    if backend() == "torch" and torch_exporting():
        import torch

        _, one_hot = max_and_one_hot(keras.ops.convert_to_tensor(scores), -1)
        picked = torch.where(torch.gt(one_hot, 0.5)[None], x[:, None, :], torch.zeros((), dtype=x.dtype))
        return torch.sum(picked, dim=-1)
    return keras.ops.take(x, argmax(scores, -1), axis=1)


def argmax(x, axis):
    """Index of the largest entry along `axis` (the first one on ties).

    On JAX `jnp.argmax` itself: `keras.ops.argmax` first moves -0.0 below 0.0 with `jnp.signbit`, a bit cast that
    ONNX has no op for (jax2onnx wrote a model onnxruntime refused); which of two zeros wins does not matter here.
    """
    if backend() == "tensorflow":
        import tensorflow as tf

        return tf.argmax(x, axis=axis)
    if backend() == "jax":
        import jax.numpy as jnp

        return jnp.argmax(x, axis=axis)
    return keras.ops.argmax(x, axis=axis)


_GRAPHS = {}


def as_graph(function):
    """`function` compiled: by XLA on TensorFlow (`jit_compile=True`), `jax.jit` on JAX; unchanged on PyTorch.

    For a function of tensors only. One compiled function per Python
    function. On TensorFlow it is XLA-compiled wherever it is called: eagerly,
    inside a `tf.function` (a nested XLA cluster: 500 assignments of 80 x 80
    matrices took 3 s there instead of 22 s in graph mode, on 2 CPU cores) and
    in a `tf.saved_model.save` of it; XLA compiles it once per input shape (a
    new batch size compiles anew, in about a second). While Keras'
    `model.export` traces it, the function itself, inlined in the exported
    graph (tf2onnx cannot read a call of an XLA-compiled function).
    """
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        if _tf_private.keras_export_format() is not None:
            # Inlined in the exported graph: tf2onnx cannot convert a call of an XLA-compiled function (it wrote a
            # `PartitionedCall` node that onnxruntime refused); LiteRT and OpenVINO read the loops either way.
            return function
        if function not in _GRAPHS:
            _GRAPHS[function] = tf.function(function, autograph=False, jit_compile=True)
    elif name == "jax":
        import jax

        if function not in _GRAPHS:
            _GRAPHS[function] = jax.jit(function)
    else:
        return function
    return _GRAPHS[function]


def repeat(body, value, num_iterations):
    """`body` applied `num_iterations` (a Python int) times to `value`: one loop in the graph, differentiable.

    Unrolled, 20 Sinkhorn rounds on [20000, 5, 5] took XLA 23 s to compile
    on a CPU (about 1 s a round) and ran 2.4x slower; as one loop, 3 s. On
    TensorFlow a `tf.while_loop` with `maximum_iterations` (XLA needs the bound
    to size the gradient's accumulators, which `keras.ops.fori_loop` does not
    pass); on JAX `lax.fori_loop`, a scan for static bounds, which `jax.grad`
    differentiates (`keras.ops.while_loop` is a `lax.while_loop`, which it
    cannot); on PyTorch a Python loop.
    """
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        return tf.while_loop(
            lambda step, value: step < num_iterations,
            lambda step, value: (step + 1, body(value)),
            (tf.constant(0), value),
            maximum_iterations=num_iterations,
        )[1]
    if name == "jax":
        import jax

        return jax.lax.fori_loop(0, num_iterations, lambda step, value: body(value), value)
    for _ in range(num_iterations):
        value = body(value)
    return value


def fold_seed(seed):
    """An integer seed as the running backend's seed dtype holds it; `None` and SeedGenerators unchanged.

    TensorFlow holds any 64-bit seed. JAX's seeds are uint32 and a PyTorch
    `SeedGenerator` keeps its state in int32: there the seed is taken modulo
    2**31 (seeds in [0, 2**31) are unchanged; `s` and `s + 2**31` give the same
    stream).
    """
    if isinstance(seed, int) and backend() != "tensorflow":
        return seed % 2**31
    return seed


def _invalid_seed_tensor(seed, expected):
    return ValueError(
        "Invalid value received for argument `seed`. Expected "
        f"{expected}. Received: seed=<a tensor of shape {tuple(seed.shape)} and dtype "
        f"{keras.backend.standardize_dtype(seed.dtype)}>"
    )


def normalize_seed(seed):
    """A seed as the running backend's random ops take it; integers, `None` and SeedGenerators unchanged.

    A seed tensor holds two integers, as `keras.random` seeds do (and as
    TensorFlow's `tf.random.stateless_*` ops take them); inside `jax.jit` or a
    `tf.function` it may be a traced value, so that each call draws from the
    key it is given:

    - JAX: a key from `jax.random.key` (used as is) or two integers (such as
      `jax.random.PRNGKey(0)`), taken as a raw uint32 key, as
      `keras.random` takes them.
    - TensorFlow: two integers, the stateless seed of `tf.random.stateless_*`
      (int64 values are folded into int32 as Keras folds its seed state).
    - PyTorch: two integers `[a, b]`, drawn with the integer seed
      `(a + b) mod 2**31`, as Keras seeds PyTorch's generator from the state
      `[a, b]` of a `SeedGenerator` (read on the host: not inside
      `torch.compile`).
    """
    if seed is None or isinstance(seed, (int, keras.random.SeedGenerator)):
        return seed
    name = backend()
    if name == "jax":
        import jax

        if isinstance(seed, jax.Array) and jax.dtypes.issubdtype(seed.dtype, jax.dtypes.prng_key):
            if seed.shape != ():
                raise _invalid_seed_tensor(seed, "a single JAX key (shape ()); split a batch of keys yourself")
            return seed
        seed = jax.numpy.asarray(seed)
    else:
        seed = keras.ops.convert_to_tensor(seed)
    dtype = keras.backend.standardize_dtype(seed.dtype)
    if tuple(seed.shape) != (2,) or not ("int" in dtype and dtype != "bool"):
        raise _invalid_seed_tensor(seed, "a seed tensor of two integers (shape (2,)), a JAX key, or an integer")
    if name == "jax":
        return seed.astype("uint32")
    if name == "torch":
        first, second = (int(value) for value in keras.ops.convert_to_numpy(seed))
        return (first + second) % 2**31
    return seed


def fold_in(seed, data):
    """A seed tensor for a draw independent of `seed`'s (a normalised seed tensor; JAX key or TF seed)."""
    if backend() == "jax":
        import jax

        return jax.random.fold_in(seed, data)
    import tensorflow as tf

    return tf.random.experimental.stateless_fold_in(tf_seed(seed), data)


def uniform_positive(shape, seed=None, dtype="float32"):
    """Uniform samples on `[tiny, 1)`, so that `log(u)` is always finite.

    TFP's relaxed distributions draw on the same interval: `u = 0` would give
    `log(0) = -inf` and an infinite Gumbel sample; `tiny` keeps
    `-log(-log(u))` finite (in float32 it lies in about [-4.5, 15.9]: 23 random bits give u <= 1 - 2**-23).

    Args:
        shape: The shape of the sample.
        seed: `None` (Keras' global generator), an integer (the same draw on
            every call, as in `keras.random`), a `keras.random.SeedGenerator`
            (a reproducible stream), or a seed tensor from `normalize_seed`.
        dtype: A floating dtype, `"float32"` or `"float64"`.
    """
    dtype = keras.backend.standardize_dtype(dtype)
    floor = tiny(dtype)
    if isinstance(seed, keras.random.SeedGenerator) and sampling_inference():
        uniform = inference_uniform(shape, dtype)
        if uniform is not None:
            return keras.ops.maximum(uniform, floor)
    if backend() == "tensorflow":
        return _tf_uniform_positive(shape, seed, dtype, floor)
    return keras.random.uniform(shape, minval=floor, maxval=1.0, dtype=dtype, seed=fold_seed(seed))


# The layer drawing its noise at inference and its inputs (in `sampling_at_inference`), or None.
_INFERENCE_SAMPLER = contextvars.ContextVar("keras_gumbel_inference_sampler", default=None)


@contextlib.contextmanager
def sampling_at_inference(layer, inputs):
    """Within it, `layer`'s draws from its SeedGenerator are inference draws: each with the op its runtime has.

    A model that keeps sampling at inference is served by runtimes that hold no
    Keras `SeedGenerator`: a SavedModel, ONNX Runtime, LiteRT, OpenVINO,
    `torch.export`. Their converters know their own random ops (ONNX's
    `RandomUniform`, LiteRT's `RANDOM_UNIFORM`, OpenVINO's `RandomUniform`),
    not TensorFlow's stateless kernels, and a seed state they freeze into a
    constant would give the same "sample" on every call. So, at inference:

    - TensorFlow: always TensorFlow's stateful `RandomUniform` op, which every
      converter maps to its runtime's op; seeded by the layer's `seed` (a
      reproducible stream per traced function or loaded model) or, with
      `seed=None`, fresh in each process (unless `tf.random.set_seed`). Under
      a `tf.distribute` strategy with several replicas, the seed generator
      (each replica its own stream).
    - PyTorch: the seed generator when run eagerly (reproducible, saved with
      the model); `torch.rand` while `torch.export`, `torch.jit.trace` or the
      ONNX exporter traces the model (the exported program draws fresh noise
      on every call, seeded by `torch.manual_seed`).
    - JAX: the seed generator, whose state Keras' `tf_saved_model` export
      threads through the served function; an export that traces the model
      without it (the ONNX export by jax2onnx) would freeze the noise, so
      the draw raises a `ValueError` that names the layer.
    """
    token = _INFERENCE_SAMPLER.set((layer, inputs))
    try:
        yield
    finally:
        _INFERENCE_SAMPLER.reset(token)


def sampling_inference():
    """Whether the draws being traced are a layer's inference draws (within `sampling_at_inference`)."""
    return _INFERENCE_SAMPLER.get() is not None


def inference_uniform(shape, dtype):
    """Uniforms on `[0, 1)` for the layer in `sampling_at_inference`, or None where its seed generator draws them."""
    layer, inputs = _INFERENCE_SAMPLER.get()
    name = backend()
    if name == "tensorflow":
        if replicas_in_sync() > 1:
            return None
        import tensorflow as tf

        # A leading axis of min(batch, 1) entries, read from the inputs, summed away: a draw that depends on no input
        # (ConcreteSelector's one selection for the batch) is a constant path of the exported graph, which
        # OpenVINO's CPU plugin computed once and returned on every call.
        anchor = tf.minimum(tf.shape(keras.tree.flatten(inputs)[0], out_type=tf.int32)[:1], 1)
        full_shape = tf.concat([anchor, tf.stack([tf.cast(size, tf.int32) for size in shape])], axis=0)
        uniform = tf.reduce_sum(tf.random.uniform(full_shape, dtype=dtype, seed=_tf_op_seed(layer)), axis=0)
        uniform.set_shape([size if isinstance(size, int) else None for size in shape])
        return uniform
    if name == "torch":
        import torch

        if not torch_exporting():
            return None
        return torch.rand(tuple(shape), dtype=getattr(torch, dtype), device=keras.ops.convert_to_tensor(0.0).device)
    if name == "jax":
        _check_jax_seed_state(layer, inputs)
    return None


def export_without_loops():
    """Whether the export being traced cannot hold loops that run until they converge (Sinkhorn's assignment).

    ONNX from TensorFlow (tf2onnx's conversion returned other permutations), any Keras export from JAX (the
    assignment needs the batch size where it is traced) and any PyTorch export (exported programs hold no
    data-dependent loops). TensorFlow's SavedModel, LiteRT and OpenVINO hold them.
    """
    name = backend()
    if name == "tensorflow":
        return _tf_private.keras_export_format() == "onnx"
    if name == "jax":
        return _tf_private.keras_export_format() is not None
    if name == "torch":
        return torch_exporting()
    return False


def export_freezes_input_free_draws():
    """Whether the export being traced turns a draw that depends on no input into a constant.

    OpenVINO from PyTorch (`torch.jit.trace`): OpenVINO computes such a draw once, when it compiles the model. From
    TensorFlow `inference_uniform` ties every draw to the batch, which OpenVINO keeps.
    """
    return backend() == "torch" and _tf_private.keras_export_format() == "openvino"


def torch_exporting():
    """Whether PyTorch is tracing the running code for an export (`torch.export`, `torch.jit.trace`, ONNX)."""
    import torch

    return torch.compiler.is_exporting() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


# The number of inference draws each layer has made in each TensorFlow graph (their op seeds).
_TF_DRAWS = weakref.WeakKeyDictionary()


def _tf_op_seed(layer):
    """The op seed of `layer`'s next inference draw: None for `seed=None`; otherwise a distinct one per draw.

    In a graph, two `RandomUniform` ops with the same seed draw the same
    stream: a layer called twice in one model (or drawing twice) gets the
    seeds `seed`, `seed + 1`, ... in the order of its draws in that graph.
    Eagerly, TensorFlow continues one op seed's stream from call to call.
    """
    if layer.seed is None:
        return None
    import tensorflow as tf

    if not tf.inside_function():
        return layer.seed % 2**31
    draws = _TF_DRAWS.setdefault(tf.compat.v1.get_default_graph(), weakref.WeakKeyDictionary())
    index = draws.get(layer, 0)
    draws[layer] = index + 1
    return (layer.seed + index) % 2**31


def _check_jax_seed_state(layer, inputs):
    """Refuses a JAX trace that reads the seed state as a constant: its inference samples would all be equal.

    Keras' own compiled functions (`predict`, the `tf_saved_model` export)
    run the layer in a `StatelessScope` that carries the state; an eager call
    assigns the new state. A traced call outside both reads the state as a constant.
    """
    import jax

    traced = any(isinstance(value, jax.core.Tracer) for value in keras.tree.flatten(inputs))
    state = layer.seed_generator.state.value
    if traced and not isinstance(state, jax.core.Tracer) and not _tf_private.in_stateless_scope():
        raise ValueError(
            f"Cannot trace {type(layer).__name__} (layer {layer.name!r}) with sample_at_inference=True in a "
            "function that does not carry its seed state (as Keras' ONNX export on JAX, through jax2onnx, traces "
            "the model): the traced function would return the same draw on every call. Export with "
            "format='tf_saved_model' (its served function keeps the seed state and samples on every call), "
            "export to ONNX from the TensorFlow or PyTorch backend, or build the layer with "
            "sample_at_inference=False."
        )


_TF_AUTO_SELECT = 3  # tf.random.Algorithm.AUTO_SELECT
_TF_PHILOX = 1  # tf.random.Algorithm.PHILOX


def tf_seed(seed):
    """An int32 [2] seed for TensorFlow's stateless ops, distinct on every replica.

    Args:
        seed: A `keras.random.SeedGenerator` (its next seed), an integer
            (`[seed, 0]`), `None` (Keras' global generator), or a seed
            tensor of two integers (used as is).
    """
    import tensorflow as tf

    if isinstance(seed, keras.random.SeedGenerator):
        seed = seed.next()
    elif seed is None:
        seed = _tf_private.keras_global_seed()
    elif isinstance(seed, int):
        seed = tf.constant([seed, 0], tf.int64)
    # Keras keeps SeedGenerator state as int64 (a TF device-placement rule),
    # while the stateless kernels (and XLA) want int32: fold it as Keras does.
    if seed.dtype != tf.int32:
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        # Every replica reads the same mirrored generator state: give each its own stream.
        seed = tf.random.experimental.stateless_fold_in(seed, context.replica_id_in_sync_group)
    return seed


def replicas_in_sync():
    """The number of replicas computing the current step together (1 outside tf.distribute)."""
    if backend() != "tensorflow":
        return 1
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def _tf_uniform_positive(shape, seed, dtype, floor):
    import tensorflow as tf

    seed = tf_seed(seed)
    # Scrambles the seed into a Philox key and counter, so that consecutive
    # seeds ([s, 0], [s, 1], ...) give unrelated streams.
    key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed)
    uniform = _tf_xla_uniform(shape, key, counter, dtype) if _tf_private.in_xla_context() else None
    if uniform is None:
        # The algorithm must be a compile-time constant for XLA (otherwise every
        # call recompiles); AUTO_SELECT lets each device pick its fastest one, as
        # `tf.random.stateless_uniform` does.
        uniform = tf.raw_ops.StatelessRandomUniformV2(
            shape=shape, key=key, counter=counter, alg=_TF_AUTO_SELECT, dtype=dtype
        )
    # The kernels draw on [0, 1); 0 is the one value that breaks log(log(u)).
    return tf.maximum(uniform, tf.constant(floor, dtype))


def _tf_xla_uniform(shape, key, counter, dtype):
    """Uniforms on [0, 1) from XLA's native Philox bit generator, or None.

    Under `jit_compile=True` on the CPU, XLA's lowering of
    `StatelessRandomUniformV2` runs 50-70x slower than graph mode; its
    `RngBitGenerator` instruction with the same Philox key (and a zero
    counter) runs about as fast as graph mode. Returns None (use the stateless kernel)
    if TensorFlow's XLA bindings cannot be imported.
    """
    import tensorflow as tf

    rng_bit_generator = _tf_private.xla_rng_bit_generator()
    if rng_bit_generator is None:  # pragma: no cover - private module moved: pinned by tests/test_tf_private.py
        return None
    bits_dtype, mantissa_bits, one_bits = {
        "float32": (tf.uint32, 23, 0x3F800000),
        "float64": (tf.uint64, 52, 0x3FF0000000000000),
    }[dtype]
    del counter  # With a non-zero start counter, XLA's CPU Philox runs ~50x slower.
    # The 64-bit key alone, scrambled from the seed, picks the stream.
    state = tf.concat([key, tf.zeros([2], tf.uint64)], axis=0)
    _, bits = rng_bit_generator(_TF_PHILOX, state, shape, dtype=bits_dtype)
    # Keep the top mantissa bits, set the exponent of 1.0: a float in [1, 2).
    shift = tf.constant(1 << (bits_dtype.size * 8 - mantissa_bits), bits_dtype)
    one_to_two = tf.bitcast(tf.bitwise.bitwise_or(bits // shift, tf.constant(one_bits, bits_dtype)), dtype)
    return one_to_two - tf.constant(1.0, dtype)
