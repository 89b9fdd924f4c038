"""Every public layer runs the layer contract (`contract.py`): config, shapes, .keras reload, dtypes, masks, modes.

A layer joins by adding a case to `CASES`; `test_every_public_layer_has_a_contract_case` fails until it does.
Backend-agnostic: CI runs this file on TensorFlow, JAX and PyTorch.
"""

import importlib
import pkgutil

import keras
import numpy as np
import pytest
from contract import CHECKS
from contract import run_layer_contract

import keras_gumbel


def category_masks(layer, inputs, training):
    """`-inf` logits and a Keras mask of the inputs' rank: masked categories get exactly 0."""
    (logits,) = inputs
    masked = np.zeros(logits.shape, bool)
    masked[0, 0, 0] = masked[0, 1, 1] = masked[1, 2, 2] = masked[1, 0, 2] = True  # no row all masked, on any axis
    yield layer(np.where(masked, -np.inf, logits), training=training), masked
    yield layer(logits, mask=~masked, training=training), masked


def set_masks(layer, inputs, training):
    """`mask` and the keys' Keras mask (`keys_mask`): masked elements of the set get weight 0."""
    query, keys, values = inputs
    keep = np.ones(keys.shape[:2], bool)
    keep[0, 0] = False
    keep[1, 1:] = False  # one element left
    for masks in ({"mask": keep}, {"keys_mask": keep}, {"mask": keep, "values_mask": np.ones_like(keep)}):
        _, weights = layer(query, keys, values, training=training, return_attention_weights=True, **masks)
        masked = ~keep if len(query.shape) == 2 else np.broadcast_to(~keep[:, None], weights.shape)
        yield weights, masked


CASES = {
    "GumbelSoftmax": dict(
        layer_class=keras_gumbel.GumbelSoftmax,
        init_kwargs=dict(temperature=0.5, axis=-1, trainable_temperature=True, seed=3, log_space=False, name="pick"),
        input_shape=(2, 3, 5),
        symbolic_shape=(None, None, 5),
        supports_masking=True,
        passes_mask=True,
        masked_calls=category_masks,
    ),
    "GumbelSoftmax(log_space)": dict(
        layer_class=keras_gumbel.GumbelSoftmax,
        init_kwargs=dict(temperature=0.5, axis=1, seed=3, log_space=True),
        input_shape=(2, 5, 3),
        symbolic_shape=(None, 5, None),
        supports_masking=True,
        passes_mask=True,
    ),
    "StraightThroughGumbel": dict(
        layer_class=keras_gumbel.StraightThroughGumbel,
        init_kwargs=dict(
            temperature=0.5,
            trainable_temperature=True,
            seed=4,
            gradient_estimator="gumbel_rao",
            num_draws=3,
            name="choice",
        ),
        input_shape=(2, 3, 5),
        symbolic_shape=(None, None, 5),
        supports_masking=True,
        passes_mask=True,
        masked_calls=category_masks,
    ),
    "StraightThroughGumbel(reinmax)": dict(
        layer_class=keras_gumbel.StraightThroughGumbel,
        init_kwargs=dict(temperature=2.0, axis=1, seed=4, gradient_estimator="reinmax"),
        input_shape=(2, 5, 3),
        symbolic_shape=(None, 5, None),
        supports_masking=True,
        passes_mask=True,
        masked_calls=category_masks,
    ),
    "RelaxedBernoulli": dict(
        layer_class=keras_gumbel.RelaxedBernoulli,
        init_kwargs=dict(temperature=0.5, trainable_temperature=True, seed=5, log_space=True, name="bits"),
        input_shape=(2, 3, 4),
        symbolic_shape=(None, None, None),
        supports_masking=True,
        passes_mask=True,
    ),
    "RelaxedBernoulli(hard)": dict(
        layer_class=keras_gumbel.RelaxedBernoulli,
        init_kwargs=dict(temperature=0.5, hard=True, seed=5),
        input_shape=(2, 3, 4),
        symbolic_shape=(None, None, None),
        supports_masking=True,
        passes_mask=True,
    ),
    "GumbelAttention": dict(
        layer_class=keras_gumbel.GumbelAttention,
        init_kwargs=dict(hard=True, temperature=0.5, trainable_temperature=True, seed=6, name="attend"),
        input_shape=[(8, 4), (8, 5, 4), (8, 5, 2)],
        symbolic_shape=[(None, 4), (None, None, 4), (None, None, 2)],
        supports_masking=True,
        passes_mask=False,
        masked_calls=set_masks,
    ),
    "GumbelAttention(several queries)": dict(
        layer_class=keras_gumbel.GumbelAttention,
        init_kwargs=dict(mode="gumbel_softmax", temperature=0.5, seed=6),
        input_shape=[(2, 3, 4), (2, 5, 4), (2, 5, 2)],
        symbolic_shape=[(None, None, 4), (None, None, 4), (None, None, 2)],
        call_kwargs=dict(return_attention_weights=True),  # two outputs
        supports_masking=True,
        passes_mask=False,
        masked_calls=set_masks,
    ),
    "ConcreteSelector": dict(
        layer_class=keras_gumbel.ConcreteSelector,
        init_kwargs=dict(
            num_selected=2,
            temperature=0.5,
            trainable_temperature=True,
            seed=7,
            name="select",
            logits_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=1),
        ),
        input_shape=(3, 4),
    ),
    "GumbelVectorQuantizer": dict(
        layer_class=keras_gumbel.GumbelVectorQuantizer,
        init_kwargs=dict(
            num_groups=2,
            num_codes=4,
            code_dim=6,
            temperature=0.5,
            diversity_weight=0.2,
            trainable_temperature=True,
            seed=8,
            name="quantize",
            # Near-uniform logits: the exact codes of two training draws differ.
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=1),
            bias_initializer="ones",
            codebook_initializer="glorot_uniform",
        ),
        input_shape=(2, 4, 3),
        symbolic_shape=(None, None, 3),
        supports_masking=True,
        passes_mask=True,
    ),
    "GumbelSinkhorn": dict(
        layer_class=keras_gumbel.GumbelSinkhorn,
        init_kwargs=dict(
            temperature=0.5,
            num_iterations=5,
            hard_at_inference=False,
            trainable_temperature=True,
            seed=9,
            name="match",
        ),
        input_shape=(2, 3, 4, 4),
        symbolic_shape=(None, None, 4, 4),
    ),
    "HardConcreteGate": dict(
        layer_class=keras_gumbel.HardConcreteGate,
        init_kwargs=dict(
            temperature=0.5, stretch=[-0.2, 1.2], initial_keep_probability=0.6, trainable_temperature=True, seed=10
        ),
        input_shape=(2, 3, 6),
        symbolic_shape=(None, None, 6),
        supports_masking=True,
        passes_mask=True,
    ),
    "HeadGatedAttention": dict(
        layer_class=keras_gumbel.HeadGatedAttention,
        init_kwargs=dict(
            num_heads=3,
            key_dim=4,
            temperature=0.5,
            stretch=[-0.2, 1.2],
            initial_keep_probability=0.6,
            trainable_temperature=True,
            gate_seed=11,
            name="heads",
        ),
        input_shape=[(2, 3, 6), (2, 5, 6)],
        symbolic_shape=[(None, None, 6), (None, None, 6)],
        supports_masking=True,
        passes_mask=True,
    ),
    "GumbelSinkhorn(hard)": dict(
        layer_class=keras_gumbel.GumbelSinkhorn,
        init_kwargs=dict(temperature=0.5, num_iterations=5, hard=True, seed=9),
        input_shape=(8, 4, 4),
    ),
}


def _public_layer_classes():
    """The layer classes of `keras_gumbel.layers.__all__`, and any public one defined in a public module there."""
    classes = {getattr(keras_gumbel.layers, name) for name in keras_gumbel.layers.__all__}
    for module in pkgutil.iter_modules(keras_gumbel.layers.__path__):
        if not module.name.startswith("_"):
            defined = vars(importlib.import_module(f"keras_gumbel.layers.{module.name}"))
            classes |= {
                obj
                for name, obj in defined.items()
                if isinstance(obj, type)
                and issubclass(obj, keras.layers.Layer)
                and not name.startswith("_")
                and obj.__module__ == f"keras_gumbel.layers.{module.name}"  # defined there, not imported
            }
    return classes


def test_every_public_layer_has_a_contract_case():
    classes = _public_layer_classes()
    assert len(classes) >= 7
    missing = sorted(cls.__name__ for cls in classes - {case["layer_class"] for case in CASES.values()})
    assert not missing, f"public layers without a case in tests/layers/test_contract.py: {missing}"


# Contract failures of the layers as they are, each reported with its reproduction: strict, so that the fix
# turns the expected failure into an unexpected pass, and the entry must go.
KNOWN_FAILURES = {}


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_contract(case, check, tmp_path, request):
    known_failure = KNOWN_FAILURES.get((CASES[case]["layer_class"], check))
    if known_failure:
        request.applymarker(pytest.mark.xfail(reason=known_failure, strict=True))
    run_layer_contract(**CASES[case], checks=[check], directory=tmp_path)
