"""The export matrix: every layer x every format Keras exports to on this backend, served in the format's own runtime.

Each model (a layer on its input, nothing else) is exported with `model.export(format=...)` and served, in a process
where keras_gumbel cannot be imported (`serve_exports.py`), by `tf.saved_model.load`, onnxruntime, ai-edge-litert's
standard interpreter (no TF Select ops), OpenVINO or `torch.export.load`. Then:

- inference (`sample_at_inference=False`): every call equals Keras' output, exactly for hard outputs (one-hots,
  0/1, gathers, permutations) and within 1e-5 for relaxed ones;
- sampling at inference: every call is an exact sample where the layer promises one (one-hot rows, 0/1, a codebook
  entry, a permutation matrix), calls differ, and the samples follow the layer's law (a chi-square test, with
  fixed seeds) where it has a closed form;
- where an export cannot hold a sampling layer (JAX's ONNX export traces the model without its seed state), the
  export fails with a `ValueError` naming the layer, and writes no file;
- where Keras cannot export its own layers (OpenVINO from JAX), a model of Keras layers alone is shown to fail too.

`HardConcreteGate` (the L0 gate of learned sparsity) is a layer like the others here: its served inference gates
equal Keras', and its served samples put the closed-form mass on exact 0s.

Runs on each backend (CI's loop runs it on JAX and PyTorch). Needs the `export` extra.
"""

import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
import scipy.stats

import keras_gumbel

pytestmark = pytest.mark.slow

BACKEND = keras.backend.backend()
FORMATS = {
    "tensorflow": ["tf_saved_model", "onnx", "litert", "openvino"],
    "jax": ["tf_saved_model", "onnx", "openvino"],
    "torch": ["onnx", "openvino", "litert", "torch"],
}[BACKEND]
RUNTIMES = {
    "tf_saved_model": "tensorflow",
    "onnx": "onnxruntime",
    "litert": "ai_edge_litert",
    "openvino": "openvino",
    "torch": "torch",
}
EXPORTERS = {  # what Keras' export calls, per backend and format
    ("tensorflow", "onnx"): "tf2onnx",
    ("jax", "onnx"): "jax2onnx",
    ("jax", "tf_saved_model"): "tensorflow",
    ("jax", "openvino"): "openvino",
    ("tensorflow", "openvino"): "openvino",
    ("torch", "onnx"): "onnxscript",
    ("torch", "openvino"): "openvino",
    ("torch", "litert"): "litert_torch",
}
FILE_NAMES = {"tf_saved_model": "served", "onnx": "m.onnx", "litert": "m.tflite", "openvino": "m.xml", "torch": "m.pt2"}
# Where Keras cannot export a model of its own layers: the cell shows that, for Keras alone.
KERAS_CANNOT = {("jax", "openvino")}
# Where the export cannot hold a layer that samples at inference: a ValueError at export time.
REFUSES_SAMPLING = {("jax", "onnx")}
CALLS = {False: 2, True: 5}

PROBABILITIES = np.array(
    [[0.1, 0.2, 0.3, 0.4], [0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25], [0.05, 0.05, 0.6, 0.3]], "float32"
)
ROWS = 2048  # 512 rows of each pattern


def _tiled(patterns):
    return np.ascontiguousarray(np.tile(patterns, (ROWS // len(patterns),) + (1,) * (patterns.ndim - 1)))


LOGITS = _tiled(np.log(PROBABILITIES))
rng = np.random.default_rng(0)
SETS = _tiled(rng.normal(size=(4, 3, 2)).astype("float32"))  # 4 sets of 3 keys in 2 dimensions
FEATURES = rng.normal(size=(ROWS, 5)).astype("float32")
SCORES = _tiled((3.0 * rng.normal(size=(4, 3, 3))).astype("float32"))
GATE_INPUTS = np.tile(np.linspace(0.5, 2.0, 64, dtype="float32"), (ROWS, 1))  # positive: outputs / inputs = gates


def _pattern_index(rows):
    return np.arange(rows) % 4


def _chisquare_pvalue(observed, expected):
    """The p-value of Pearson's statistic summed over the rows of `observed` (counts) against `expected`."""
    observed, expected = np.asarray(observed, float), np.asarray(expected, float)
    statistic = ((observed - expected) ** 2 / expected).sum()
    return scipy.stats.chi2.sf(statistic, observed.size - observed.shape[0])


def _categorical_law(choices, probabilities, pattern):
    """`choices` [calls, rows] of categories; `probabilities` [patterns, K]: per pattern, counts against them."""
    num_patterns, num_classes = probabilities.shape
    counts = np.zeros((num_patterns, num_classes))
    for index in range(num_patterns):
        counts[index] = np.bincount(choices[:, pattern == index].ravel(), minlength=num_classes)
    return _chisquare_pvalue(counts, counts.sum(-1, keepdims=True) * probabilities)


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _one_hot_rows(draws):
    return np.isin(draws, (0.0, 1.0)).all() and (draws.sum(-1) == 1.0).all()


# ------------------------------------------------------------------------------------------------------ the layers
# name: (make(sample_at_inference) -> layer, inputs, call(layer, x), hard (inference equality exact), law)
# law(draws [calls, *output], layer) -> None, asserting exact samples and their law.


def _law_of_categorical(draws, layer):
    assert _one_hot_rows(draws), "a served straight-through draw is not a one-hot row"
    assert _categorical_law(draws.argmax(-1), PROBABILITIES, _pattern_index(ROWS)) > 1e-3


def _law_of_relaxed_categorical(draws, layer):
    np.testing.assert_allclose(draws.sum(-1), 1.0, atol=1e-5)
    # argmax(softmax((logits + g) / t)) = argmax(logits + g): Categorical(p) whatever the temperature.
    assert _categorical_law(draws.argmax(-1), PROBABILITIES, _pattern_index(ROWS)) > 1e-3


def _bernoulli_law(ones):
    """`ones` [calls, rows, 4] in {0, 1}, the log-odds of LOGITS: counts of 1 per pattern and entry."""
    p = 1.0 / (1.0 + np.exp(-LOGITS[:4]))  # P(1) = sigmoid(log-odds), per pattern and entry
    pattern = _pattern_index(ROWS)
    observed, expected = [], []
    for index in range(4):
        picked = ones[:, pattern == index].reshape(-1, 4)
        n = picked.shape[0]
        for entry in range(4):
            k = picked[:, entry].sum()
            observed.append([k, n - k])
            expected.append([n * p[index, entry], n * (1 - p[index, entry])])
    return _chisquare_pvalue(observed, expected)


def _law_of_hard_bernoulli(draws, layer):
    assert np.isin(draws, (0.0, 1.0)).all(), "a served hard RelaxedBernoulli draw is not 0 or 1"
    assert _bernoulli_law(draws) > 1e-3


def _law_of_relaxed_bernoulli(draws, layer):
    assert ((draws >= 0) & (draws <= 1)).all()
    # sigmoid((logits + L) / t) > 1/2 exactly when logits + L > 0: Bernoulli(sigmoid(logits)).
    assert _bernoulli_law((draws > 0.5).astype(float)) > 1e-3


def _law_of_attention(draws, layer):
    # Hard attention of every position over the set: the output is the chosen key (keys are values here).
    distances = np.abs(draws[:, :, :, None, :] - SETS[None, :, None, :, :]).sum(-1)  # [calls, rows, query, key]
    assert (distances.min(-1) == 0).all(), "a served hard-attention output is not one of the values"
    chosen = distances.argmin(-1)
    scores = np.einsum("pqd,pkd->pqk", SETS[:4], SETS[:4]) / np.sqrt(2.0)
    probabilities = _softmax(scores).reshape(12, 3)  # (pattern, query) rows
    pattern = (_pattern_index(ROWS)[:, None] * 3 + np.arange(3)).ravel()
    assert _categorical_law(chosen.reshape(len(draws), -1), probabilities, pattern) > 1e-3


def _law_of_vector_quantizer(draws, layer):
    codebook = keras.ops.convert_to_numpy(layer.codebook).reshape(2, 4, -1)  # [groups, codes, code_dim / groups]
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in (layer.kernel, layer.bias))
    probabilities = _softmax((FEATURES @ kernel + bias).reshape(ROWS, 2, 4))
    for group in range(2):
        part = draws[..., 2 * group : 2 * group + 2]
        distances = np.abs(part[..., None, :] - codebook[group]).sum(-1)  # [calls, rows, codes]
        assert (distances.min(-1) == 0).all(), "a served codevector is not a codebook entry"
        chosen = distances.argmin(-1)
        # Rows differ: the number of draws of each code against the sum of its probabilities over rows and calls.
        observed = np.bincount(chosen.ravel(), minlength=4)[None]
        expected = probabilities[:, group].sum(0)[None] * len(draws)
        assert _chisquare_pvalue(observed, expected) > 1e-3


def _law_of_selection(draws, layer):
    # Each output is a convex combination of the row's features (relaxed selection weights on the simplex).
    low, high = FEATURES.min(-1, keepdims=True), FEATURES.max(-1, keepdims=True)
    assert ((draws >= low - 1e-5) & (draws <= high + 1e-5)).all()


def _law_of_permutations(draws, layer):
    assert np.isin(draws, (0.0, 1.0)).all(), "a served hard Sinkhorn draw is not 0/1"
    assert (draws.sum(-1) == 1).all() and (draws.sum(-2) == 1).all(), "a served draw is not a permutation matrix"


def _law_of_doubly_stochastic(draws, layer):
    assert (draws >= 0).all()
    # After 20 Sinkhorn rounds the rows and columns of these noisy 3 x 3 matrices sum to 1 within 0.04.
    np.testing.assert_allclose(draws.sum(-1), 1.0, atol=0.06)
    np.testing.assert_allclose(draws.sum(-2), 1.0, atol=0.06)


def _law_of_gates(draws, layer):
    # One gate per unit and call, shared by the rows: exact 0s and 1s with the closed-form masses.
    gates = draws / GATE_INPUTS  # the inputs are positive: the gates themselves
    assert ((gates >= 0) & (gates <= 1 + 1e-6)).all()
    assert (draws == draws[:, :1, :]).all(), "a served gate differs between rows of one call"
    gates = gates[:, 0, :]
    p_zero = 1 - keras.ops.convert_to_numpy(layer.probability_nonzero())
    zeros = (gates == 0).sum(0)
    expected = p_zero * len(draws)
    # Few calls: the number of zero gates over all units and calls against its expectation, within 4 sigma.
    assert abs(zeros.sum() - expected.sum()) <= 4 * np.sqrt((p_zero * (1 - p_zero)).sum() * len(draws)) + 1


HEADS, HEAD_SIZE = 4, 2
# Positive inputs [rows, 3 positions, 8 features]: with the attention of `_head_gated_attention`, head h's output is
# its gate times the mean of the input's features 2h and 2h + 1 over the positions.
HEAD_INPUTS = (1.0 + rng.random((ROWS, 3, HEADS * HEAD_SIZE))).astype("float32")


def _head_gated_attention(sample):
    """A HeadGatedAttention whose served output shows each head's gate: uniform attention (zero query and key
    projections), head h reads features 2h, 2h + 1 and writes them back (identity value and output blocks)."""
    # P(gate > 0) = 0.8: with 4 heads, two calls draw the same gates (every head on the same atom, 0 or 1) with
    # probability about 1e-5 (at 0.5 it was 0.4%: all four heads off in both calls).
    layer = keras_gumbel.HeadGatedAttention(
        HEADS, HEAD_SIZE, initial_keep_probability=0.8, gate_seed=10, sample_at_inference=sample, use_bias=False
    )
    layer.build(HEAD_INPUTS.shape, HEAD_INPUTS.shape)
    blocks = np.eye(HEADS * HEAD_SIZE, dtype="float32").reshape(HEADS * HEAD_SIZE, HEADS, HEAD_SIZE)
    for dense, kernel in (
        (layer.query_dense, np.zeros_like(blocks)),
        (layer.key_dense, np.zeros_like(blocks)),
        (layer.value_dense, blocks),
        (layer.output_dense, blocks.transpose(1, 2, 0)),
    ):
        dense.kernel.assign(kernel)
    return layer


def _law_of_head_gates(draws, layer):
    # One gate per head and call, shared by the rows and positions: exact 0s and 1s with the closed-form masses.
    gates = (draws / HEAD_INPUTS.mean(axis=1, keepdims=True)).reshape(len(draws), -1, HEADS, HEAD_SIZE)
    assert ((gates >= -1e-6) & (gates <= 1 + 1e-5)).all()
    np.testing.assert_allclose(gates, np.broadcast_to(gates[:, :1, :, :1], gates.shape), atol=1e-5)
    zeros = (np.abs(gates[:, 0, :, 0]) < 1e-6).sum(0)
    p_zero = 1 - keras.ops.convert_to_numpy(layer.head_gate.probability_nonzero())
    expected = p_zero * len(draws)
    assert abs(zeros.sum() - expected.sum()) <= 4 * np.sqrt((p_zero * (1 - p_zero)).sum() * len(draws)) + 1


LAYERS = {
    "GumbelSoftmax": (
        lambda sample: keras_gumbel.GumbelSoftmax(temperature=0.5, seed=0, sample_at_inference=sample),
        LOGITS,
        False,
        _law_of_relaxed_categorical,
    ),
    "StraightThroughGumbel": (
        lambda sample: keras_gumbel.StraightThroughGumbel(seed=1, sample_at_inference=sample),
        LOGITS,
        True,
        _law_of_categorical,
    ),
    "RelaxedBernoulli": (
        lambda sample: keras_gumbel.RelaxedBernoulli(temperature=0.5, seed=2, sample_at_inference=sample),
        LOGITS,
        False,
        _law_of_relaxed_bernoulli,
    ),
    "RelaxedBernoulli(hard)": (
        lambda sample: keras_gumbel.RelaxedBernoulli(hard=True, seed=3, sample_at_inference=sample),
        LOGITS,
        True,
        _law_of_hard_bernoulli,
    ),
    "GumbelAttention(hard)": (
        lambda sample: keras_gumbel.GumbelAttention(hard=True, seed=4, sample_at_inference=sample),
        SETS,
        True,
        _law_of_attention,
    ),
    "GumbelVectorQuantizer": (
        lambda sample: keras_gumbel.GumbelVectorQuantizer(2, 4, 4, seed=5, sample_at_inference=sample),
        FEATURES,
        True,
        _law_of_vector_quantizer,
    ),
    "ConcreteSelector": (
        lambda sample: keras_gumbel.ConcreteSelector(2, temperature=0.5, seed=6, sample_at_inference=sample),
        FEATURES,
        True,
        _law_of_selection,
    ),
    "GumbelSinkhorn": (
        lambda sample: keras_gumbel.GumbelSinkhorn(seed=7, sample_at_inference=sample),
        SCORES,
        True,
        _law_of_permutations,
    ),
    "GumbelSinkhorn(relaxed)": (
        lambda sample: keras_gumbel.GumbelSinkhorn(hard_at_inference=False, seed=8, sample_at_inference=sample),
        SCORES,
        False,
        _law_of_doubly_stochastic,
    ),
    "HardConcreteGate": (
        lambda sample: keras_gumbel.HardConcreteGate(initial_keep_probability=0.5, seed=9, sample_at_inference=sample),
        GATE_INPUTS,
        False,
        _law_of_gates,
    ),
    "HeadGatedAttention": (_head_gated_attention, HEAD_INPUTS, False, _law_of_head_gates),
}


def _model(layer, inputs):
    symbolic = keras.Input(inputs.shape[1:])
    attention = (keras_gumbel.GumbelAttention, keras_gumbel.HeadGatedAttention)
    outputs = layer(symbolic, symbolic) if isinstance(layer, attention) else layer(symbolic)
    model = keras.Model(symbolic, outputs)
    model(inputs[:2])  # Keras' ONNX export needs a model that has been called
    return model


def _export(model, path, export_format, inputs):
    kwargs = {}
    if BACKEND == "torch":  # PyTorch exports fixed shapes (Keras reads a None dimension as 1 there)
        kwargs["input_signature"] = [keras.InputSpec(shape=inputs.shape, dtype="float32")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.export(path, format=export_format, verbose=False, **kwargs)


def _available(export_format):
    import importlib.util

    names = [RUNTIMES[export_format], EXPORTERS.get((BACKEND, export_format))]
    return all(name is None or importlib.util.find_spec(name) is not None for name in names)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Every cell exported, then served by `serve_exports.py` in one process: {(layer, format, sample): result}."""
    root = tmp_path_factory.mktemp("exports")
    results, manifest = {}, []
    for name, (make, inputs, _, _) in LAYERS.items():
        np.save(root / f"{len(results)}-inputs.npy", inputs)
        inputs_path = str(root / f"{len(results)}-inputs.npy")
        for sample in (False, True):
            layer = make(sample)
            model = _model(layer, inputs)
            keras_output = keras.ops.convert_to_numpy(model(inputs, training=False)) if not sample else None
            for export_format in FORMATS:
                if not _available(export_format):
                    continue
                key = (name, export_format, sample)
                path = str(root / f"{len(results)}-{FILE_NAMES[export_format]}")
                result = {"layer": layer, "keras": keras_output, "path": path, "export_error": None}
                results[key] = result
                try:
                    _export(model, path, export_format, inputs)
                except Exception as error:  # noqa: BLE001 - each cell asserts what it expects
                    result["export_error"] = error
                    continue
                manifest.append({"format": export_format, "path": path, "inputs": inputs_path, "calls": CALLS[sample]})
    (root / "manifest.json").write_text(json.dumps(manifest))
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run(
        [sys.executable, os.path.join(os.path.dirname(__file__), "serve_exports.py"), str(root / "manifest.json")],
        check=True,
        env=environment,
        timeout=1200,
    )
    results["isolation"] = json.loads((root / "manifest.json.isolation.json").read_text())
    for key, result in results.items():
        if key == "isolation":
            continue
        path = result["path"]
        if os.path.exists(path + ".served.npy"):
            result["served"] = np.load(path + ".served.npy")
        elif os.path.exists(path + ".served.txt"):
            result["serve_error"] = open(path + ".served.txt").read()
    return results


CELLS = [(name, export_format) for name in LAYERS for export_format in FORMATS]


def test_the_exports_are_served_in_a_process_that_cannot_import_keras_gumbel(served):
    isolation = served["isolation"]
    assert not isolation["keras_gumbel_importable"]
    expected = {RUNTIMES[f] for f in FORMATS if _available(f) and (BACKEND, f) not in KERAS_CANNOT}
    assert expected <= set(isolation["runtimes"]), isolation  # each format served by its own runtime


def _cell(served, name, export_format, sample):
    if not _available(export_format):
        pytest.skip(f"the {export_format} runtime or exporter is not installed (the `export` extra)")
    result = served[(name, export_format, sample)]
    if result["export_error"] is not None:
        raise AssertionError(f"{name}: export to {export_format} failed") from result["export_error"]
    assert "serve_error" not in result, f"{name}: the {export_format} runtime failed:\n{result.get('serve_error')}"
    return result


def _refusal(name, export_format, sample):
    """The way out an export that cannot hold the layer names in its ValueError, or None where it holds it."""
    if sample and (BACKEND, export_format) in REFUSES_SAMPLING:
        return "tf_saved_model"  # JAX's ONNX export would freeze the seed state
    if sample and name == "ConcreteSelector" and (BACKEND, export_format) == ("torch", "openvino"):
        return "sample_at_inference=False"  # a draw that depends on no input: OpenVINO computed it once
    if name == "GumbelSinkhorn" and (BACKEND != "tensorflow" or export_format == "onnx"):
        # The assignment's loops: tf2onnx's conversion returned other permutations, JAX's exports need the batch
        # size, PyTorch's exported programs cannot hold data-dependent loops.
        return "hard_at_inference=False"
    return None


def _skip_unless_held(name, export_format, sample):
    if (BACKEND, export_format) in KERAS_CANNOT:
        pytest.skip("Keras cannot export its own layers here: test_keras_alone_cannot_export_there shows it")
    if _refusal(name, export_format, sample) is not None:
        pytest.skip("this export cannot hold the layer: test_an_export_that_cannot_hold_a_layer_fails_at_export")


@pytest.mark.parametrize(("name", "export_format"), CELLS)
def test_inference_export_serves_what_keras_computes(served, name, export_format):
    _skip_unless_held(name, export_format, sample=False)
    result = _cell(served, name, export_format, sample=False)
    hard = LAYERS[name][2]
    for call in result["served"]:
        if hard:
            np.testing.assert_array_equal(call, result["keras"])
        else:
            np.testing.assert_allclose(call, result["keras"], atol=1e-5, rtol=0)


@pytest.mark.parametrize(("name", "export_format"), CELLS)
def test_sampling_export_serves_exact_samples_of_the_law_and_a_new_draw_each_call(served, name, export_format):
    _skip_unless_held(name, export_format, sample=True)
    result = _cell(served, name, export_format, sample=True)
    draws = result["served"]
    assert all(not np.array_equal(draws[i], draws[i + 1]) for i in range(len(draws) - 1)), "a call repeated a draw"
    LAYERS[name][3](draws, result["layer"])


REFUSED = [
    (name, export_format, sample)
    for name, export_format in CELLS
    for sample in (False, True)
    if _refusal(name, export_format, sample) is not None and (BACKEND, export_format) not in KERAS_CANNOT
]


@pytest.mark.parametrize(("name", "export_format", "sample"), REFUSED or [pytest.param(None, None, None, marks=[])])
def test_an_export_that_cannot_hold_a_layer_fails_at_export(served, name, export_format, sample):
    if name is None:
        pytest.skip(f"every {BACKEND} export holds every layer")
    if not _available(export_format):
        pytest.skip(f"the {export_format} exporter is not installed")
    result = served[(name, export_format, sample)]
    layer, error = result["layer"], result["export_error"]
    # Our ValueError, or Keras' wrapper of it (its PyTorch exports re-raise every error as a RuntimeError from it).
    chain = [error]
    while chain[-1] is not None and not isinstance(chain[-1], ValueError):
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    assert chain[-1] is not None, f"expected a ValueError at export, got {error!r}"
    message = str(chain[-1])
    drawing = layer.head_gate if isinstance(layer, keras_gumbel.HeadGatedAttention) else layer  # the layer drawing
    assert type(drawing).__name__ in message and repr(drawing.name) in message, message
    assert layer.name in message, message
    assert _refusal(name, export_format, sample) in message, message  # the way out
    assert not os.path.exists(result["path"]), "a refused export left a file"


@pytest.mark.parametrize("export_format", sorted(f for b, f in KERAS_CANNOT if b == BACKEND) or ["none"])
def test_keras_alone_cannot_export_there(tmp_path, export_format):
    if export_format == "none":
        pytest.skip(f"Keras exports its own layers to every {BACKEND} format")
    if not _available(export_format):
        pytest.skip(f"the {export_format} exporter is not installed")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Softmax()(keras.layers.Dense(4)(inputs)))
    model(LOGITS[:2])
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the converter raises: the cell is Keras' limit
        _export(model, str(tmp_path / FILE_NAMES[export_format]), export_format, LOGITS)


# ------------------------------------------------------------------------------------------ the pruned model


def _pruned_models():
    """`(name, pruned model, gated model, inputs)`: a small Transformer with heads, hidden units and one block gated
    off, and an MLP whose input features are gated (the pruned model gathers the kept ones)."""
    from helpers import gated_transformer

    from keras_gumbel import pruning

    rng = np.random.default_rng(7)
    transformer = gated_transformer()
    for layer in pruning.gates(transformer):
        layer.log_alpha.assign(rng.normal(1.0, 2.5, layer.log_alpha.shape).astype("float32"))
    transformer.get_layer("attention_block_1").log_alpha.assign([-30.0])
    inputs = keras.Input((10,))
    x = keras_gumbel.HardConcreteGate(seed=1)(inputs)
    x = keras_gumbel.HardConcreteGate(seed=2)(keras.layers.Dense(12, activation="relu")(x))
    mlp = keras.Model(inputs, keras.layers.Dense(3)(x))
    for layer in pruning.gates(mlp):
        layer.log_alpha.assign(rng.normal(0.5, 2.5, layer.log_alpha.shape).astype("float32"))
    models = []
    for name, gated, shape in (("transformer", transformer, (64, 6, 8)), ("mlp", mlp, (64, 10))):
        pruned = pruning.prune(gated)
        x = rng.normal(size=shape).astype("float32")
        pruned(x[:2])  # Keras' ONNX export needs a model that has been called
        models.append((name, pruned, gated, x))
    return models


def test_a_pruned_model_is_served_in_every_format_with_the_gated_models_outputs(tmp_path):
    manifest, expected = [], {}
    for name, pruned, gated, x in _pruned_models():
        assert not any(type(layer).__module__.startswith("keras_gumbel") for layer in pruned.layers)
        np.save(tmp_path / f"{name}-inputs.npy", x)
        for export_format in FORMATS:
            if not _available(export_format) or (BACKEND, export_format) in KERAS_CANNOT:
                continue
            path = str(tmp_path / f"{name}-{FILE_NAMES[export_format]}")
            _export(pruned, path, export_format, x)
            manifest.append({"format": export_format, "path": path, "inputs": str(tmp_path / f"{name}-inputs.npy"),
                             "calls": 1})  # fmt: skip
            expected[path] = keras.ops.convert_to_numpy(gated(x, training=False))
    assert manifest, "no export format is installed"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    serve = os.path.join(os.path.dirname(__file__), "serve_exports.py")
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, serve, str(tmp_path / "manifest.json")], check=True, env=environment, timeout=600)
    assert not json.loads((tmp_path / "manifest.json.isolation.json").read_text())["keras_gumbel_importable"]
    for path, gated_outputs in expected.items():
        assert os.path.exists(path + ".served.npy"), open(path + ".served.txt").read()
        np.testing.assert_allclose(np.load(path + ".served.npy")[0], gated_outputs, atol=1e-4, rtol=1e-4, err_msg=path)
