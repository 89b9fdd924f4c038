"""The layer contract: one function asserts what every public layer promises, on the running Keras backend.

In the spirit of Keras' `keras/src/testing/test_case.py` `run_layer_test`: a layer states its constructor
arguments and input shapes once (`tests/layers/test_contract.py`), and `run_layer_contract` asserts

- `config`: `from_config(get_config())` gives the same config (unbuilt, and built with an assigned temperature);
  every `__init__` argument is in the config, with the value it was given; the config survives JSON; the class
  is registered (`serialize_keras_object` / `deserialize_keras_object` give it back by name);
- `symbolic`: called on `keras.Input`s (a `None` batch and, where the layer allows it, `None` in other axes)
  the output has the compute dtype and a shape compatible with the eager call's, in training and at inference;
- `output_shape`: `compute_output_shape` gives the symbolic output's shape and the eager output's shape;
- `reload`: a small model saved as `.keras` and loaded back has the same variables (the temperature and the
  seed generator's state included), the same inference outputs, and continues the same seed stream: the next
  two training draws of both models agree, and differ from each other (a stream, not one fixed draw);
- `dtype_policies`: under each policy in `DTYPE_POLICIES`, finite outputs in the compute dtype (eager and
  symbolic), the temperature variable float32 and a mixed policy's variables float32;
- `masks`: `supports_masking` as declared; a Keras mask passes on (or not) as declared; masked entries (given by
  the case's `masked_calls`) are exactly 0 and the rest finite, in training and at inference;
- `training_modes`: inference is deterministic (`training=None` and `False` agree, call after call, and training
  draws in between change nothing) unless `sample_at_inference=True`, which samples; training draws form a
  stream, replayed by a layer made from the same config and weights.

Backend-agnostic: keras.ops and NumPy only.
"""

import contextlib
import inspect
import json
import pathlib
import tempfile

import keras
import numpy as np
from helpers import to_numpy

CHECKS = ("config", "symbolic", "output_shape", "reload", "dtype_policies", "masks", "training_modes")
DTYPE_POLICIES = ("float32", "float16", "bfloat16", "mixed_float16", "mixed_bfloat16")
TEMPERATURE_AFTER_ANNEALING = 0.375  # assigned before saving and configs: exact in float32, and never a default


def run_layer_contract(
    layer_class,
    init_kwargs,
    input_shape,
    *,
    symbolic_shape=None,
    call_kwargs=None,
    input_scale=0.5,
    supports_masking=False,
    passes_mask=False,
    masked_calls=None,
    checks=CHECKS,
    directory=None,
):
    """Asserts the layer contract of `layer_class` (the `checks` named in `CHECKS`, all by default).

    Args:
        layer_class: The layer class.
        init_kwargs: Constructor arguments (give every argument a value other than its default where the
            other checks allow it: a config that drops or resets an argument then fails).
        input_shape: The concrete shape of the input, batch first, or a list of shapes for a layer called
            on several positional inputs (`layer(query, keys, values)`). Keep them tiny.
        symbolic_shape: The `keras.Input` shape(s), batch included: `None` wherever the layer allows an
            unknown size. Defaults to `input_shape` with a `None` batch.
        call_kwargs: Keyword arguments for every call (besides `training`).
        input_scale: The inputs are `input_scale * normal(0, 1)`, float32, from a fixed seed: small enough
            that a layer with exact (one-hot, 0/1) outputs draws different samples call after call.
        supports_masking: The expected `layer.supports_masking`.
        passes_mask: Whether a Keras mask of the first input comes out on the output (`compute_mask`).
        masked_calls: `None` if the layer takes no masks; else a function `(layer, inputs, training)` that
            yields `(output, masked)` pairs: the output of a masked call and where it must be exactly 0.
        checks: The names, from `CHECKS`, of the checks to run.
        directory: Where the `.keras` file goes (a temporary directory if `None`).
    """
    unknown = set(checks) - set(CHECKS)
    assert not unknown, f"unknown checks {sorted(unknown)}; the checks are {CHECKS}"
    several_inputs = isinstance(input_shape, list)
    shapes = [tuple(s) for s in input_shape] if several_inputs else [tuple(input_shape)]
    if symbolic_shape is None:
        symbolic_shapes = [(None, *s[1:]) for s in shapes]
    else:
        symbolic_shapes = [tuple(s) for s in symbolic_shape] if several_inputs else [tuple(symbolic_shape)]
    rng = np.random.default_rng(0)
    contract = _Contract(
        layer_class=layer_class,
        init_kwargs=dict(init_kwargs),
        shapes=shapes,
        symbolic_shapes=symbolic_shapes,
        several_inputs=several_inputs,
        call_kwargs=dict(call_kwargs or {}),
        inputs=[(input_scale * rng.normal(size=s)).astype("float32") for s in shapes],
    )
    for check in checks:
        if check == "config":
            contract.check_config()
        elif check == "symbolic":
            contract.check_symbolic()
        elif check == "output_shape":
            contract.check_output_shape()
        elif check == "reload":
            with contextlib.ExitStack() as stack:
                path = directory or stack.enter_context(tempfile.TemporaryDirectory())
                contract.check_reload(pathlib.Path(path))
        elif check == "dtype_policies":
            contract.check_dtype_policies()
        elif check == "masks":
            contract.check_masks(supports_masking, passes_mask, masked_calls)
        elif check == "training_modes":
            contract.check_training_modes()


@contextlib.contextmanager
def dtype_policy(policy):
    """The global dtype policy set to `policy` inside the block, and the previous one restored after it."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _standard_dtype(x):
    return keras.backend.standardize_dtype(x.dtype)


def _outputs(output):
    return list(output) if isinstance(output, (tuple, list)) else [output]


def _as_float32(x):
    """A float32 NumPy copy (NumPy has no bfloat16)."""
    return to_numpy(keras.ops.cast(x, "float32"))


def _assert_same_values(actual, expected, message):
    for a, e in zip(_outputs(actual), _outputs(expected), strict=True):
        np.testing.assert_array_equal(_as_float32(a), _as_float32(e), err_msg=message)


def _assert_different_values(first, second, message):
    pairs = zip(_outputs(first), _outputs(second), strict=True)
    assert any(not np.array_equal(_as_float32(a), _as_float32(b)) for a, b in pairs), message


def _assert_argument_kept(name, given, stored):
    """The config holds the argument's value (an initializer or other Keras object as its serialization)."""
    if isinstance(given, bool) or given is None:
        assert stored is given, f"config[{name!r}] = {stored!r}, given {given!r}"
    elif isinstance(given, (int, float)):
        kept = (
            isinstance(stored, (int, float)) and not isinstance(stored, bool) and np.isclose(stored, given, rtol=1e-6)
        )
        assert kept, f"config[{name!r}] = {stored!r}, given {given!r}"
    elif isinstance(stored, dict):  # a Keras object, serialized: the same class and config
        restored = keras.saving.deserialize_keras_object(stored)
        expected = keras.initializers.get(given) if isinstance(given, str) else given
        assert type(restored) is type(expected), f"config[{name!r}] = {stored!r}, given {given!r}"
        assert restored.get_config() == expected.get_config(), f"config[{name!r}] = {stored!r}, given {given!r}"
    else:
        assert stored == given, f"config[{name!r}] = {stored!r}, given {given!r}"


class _Contract:
    def __init__(self, layer_class, init_kwargs, shapes, symbolic_shapes, several_inputs, call_kwargs, inputs):
        self.layer_class = layer_class
        self.init_kwargs = init_kwargs
        self.shapes = shapes
        self.symbolic_shapes = symbolic_shapes
        self.several_inputs = several_inputs
        self.call_kwargs = call_kwargs
        self.inputs = inputs
        self.name = layer_class.__name__

    def make(self, **overrides):
        return self.layer_class(**{**self.init_kwargs, **overrides})

    def call(self, layer, inputs=None, **kwargs):
        return layer(*(self.inputs if inputs is None else inputs), **self.call_kwargs, **kwargs)

    def symbolic_inputs(self):
        return [keras.Input(batch_shape=shape) for shape in self.symbolic_shapes]

    def model(self, layer):
        inputs = self.symbolic_inputs()
        return keras.Model(inputs if self.several_inputs else inputs[0], self.call(layer, inputs))

    def model_inputs(self):
        return list(self.inputs) if self.several_inputs else self.inputs[0]

    # ------------------------------------------------------------------------------------------------- config

    def check_config(self):
        parameters = inspect.signature(self.layer_class.__init__).parameters.values()
        arguments = [p.name for p in parameters if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        for overrides in ({}, {"sample_at_inference": not self.init_kwargs.get("sample_at_inference", False)}):
            layer = self.make(**overrides)
            config = layer.get_config()
            missing = [name for name in arguments if name not in config]
            assert not missing, f"{self.name}.get_config() lacks the __init__ arguments {missing}"
            for name, value in {**self.init_kwargs, **overrides}.items():
                _assert_argument_kept(name, value, config[name])
            assert json.loads(json.dumps(config)) == config, "the config does not survive JSON (as .keras stores it)"
            clone = self.layer_class.from_config(config)
            assert clone.get_config() == config, "from_config(get_config()) gives another config"
            assert set(dir(clone)) == set(dir(layer)), "from_config gave a layer with other attributes"

        registered = keras.saving.get_registered_name(self.layer_class)
        assert registered == f"keras_gumbel>{self.name}", f"{self.name} is registered as {registered!r}"
        serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
        restored = keras.saving.deserialize_keras_object(serialized)
        assert type(restored) is self.layer_class
        assert restored.get_config() == config

        # Built and called, with the temperature annealed: the config carries the current value.
        layer = self.make()
        self.call(layer, training=True)
        if hasattr(layer, "temperature"):
            layer.temperature.assign(TEMPERATURE_AFTER_ANNEALING)
        config = layer.get_config()
        if hasattr(layer, "temperature"):
            assert config["temperature"] == TEMPERATURE_AFTER_ANNEALING, (
                f"config['temperature'] = {config['temperature']}, not the current {TEMPERATURE_AFTER_ANNEALING}"
            )
        clone = self.layer_class.from_config(config)
        assert clone.get_config() == config
        if hasattr(layer, "temperature"):
            assert float(to_numpy(clone.temperature)) == TEMPERATURE_AFTER_ANNEALING

    # ------------------------------------------------------------------------------------------------- shapes

    def check_symbolic(self):
        layer = self.make()
        symbolic = _outputs(self.call(layer, self.symbolic_inputs()))
        for training in (True, False):
            eager = _outputs(self.call(layer, training=training))
            assert len(eager) == len(symbolic)
            for s, e in zip(symbolic, eager):
                assert _standard_dtype(s) == layer.compute_dtype, f"symbolic dtype {s.dtype}"
                assert _standard_dtype(e) == layer.compute_dtype, f"eager dtype {e.dtype}"
                assert len(s.shape) == len(e.shape) and all(
                    known is None or known == size for known, size in zip(s.shape, e.shape)
                ), f"symbolic output shape {s.shape}, eager output shape {tuple(e.shape)} (training={training})"
        # The batch stays unknown (no size taken from the eager call or a default).
        assert symbolic[0].shape[0] is None, f"the batch size of the symbolic output became {symbolic[0].shape[0]}"

    def check_output_shape(self):
        symbolic = _outputs(self.call(self.make(), self.symbolic_inputs()))
        layer = self.make()
        expected = layer.compute_output_shape(*self.symbolic_shapes)
        assert tuple(expected) == tuple(symbolic[0].shape), (
            f"compute_output_shape {expected}, symbolic {symbolic[0].shape}"
        )
        eager = _outputs(self.call(layer, training=True))
        expected = layer.compute_output_shape(*self.shapes)
        assert tuple(expected) == tuple(eager[0].shape), (
            f"compute_output_shape {expected}, eager {tuple(eager[0].shape)}"
        )

    # ------------------------------------------------------------------------------------------------- saving

    def check_reload(self, directory):
        model = self.model(self.make())
        x = self.model_inputs()
        model(x, training=True)  # the stream moves on from its start: a reload that resets it fails below
        layer = model.layers[-1]
        if hasattr(layer, "temperature"):
            layer.temperature.assign(TEMPERATURE_AFTER_ANNEALING)
        path = directory / f"{self.name}.keras"
        model.save(path)
        restored = keras.saving.load_model(path)

        # (Names, not paths: a seed generator's path takes a new suffix in each object it is made in.)
        names = [v.name for v in model.variables]
        assert [v.name for v in restored.variables] == names, "the reloaded model has other variables"
        for original, loaded in zip(model.variables, restored.variables):
            np.testing.assert_array_equal(to_numpy(loaded), to_numpy(original), err_msg=f"reloaded {original.path}")
        _assert_same_values(restored(x), model(x), "the reloaded model infers differently")
        draws = []
        for _ in range(2):
            draw = model(x, training=True)
            _assert_same_values(restored(x, training=True), draw, "the reloaded model draws another stream")
            draws.append(draw)
        _assert_different_values(*draws, "two successive training draws are equal: a fixed draw, not a stream")

    # ------------------------------------------------------------------------------------------------- dtypes

    def check_dtype_policies(self):
        for policy in DTYPE_POLICIES:
            with dtype_policy(policy):
                layer = self.make()
                compute_dtype = keras.config.dtype_policy().compute_dtype
                assert layer.compute_dtype == compute_dtype, policy
                for training in (True, False):
                    for output in _outputs(self.call(layer, training=training)):
                        assert _standard_dtype(output) == compute_dtype, (policy, training, output.dtype)
                        assert np.isfinite(_as_float32(output)).all(), (policy, training)
                for output in _outputs(self.call(layer, self.symbolic_inputs())):
                    assert _standard_dtype(output) == compute_dtype, (policy, "symbolic", output.dtype)
                if hasattr(layer, "temperature"):
                    assert _standard_dtype(layer.temperature) == "float32", policy
                    expected = self.init_kwargs.get("temperature", layer.get_config()["temperature"])
                    assert float(to_numpy(layer.temperature)) == np.float32(expected), policy
                if policy.startswith("mixed_"):
                    for weight in layer.weights:
                        if keras.backend.is_float_dtype(weight.dtype):
                            assert _standard_dtype(weight) == "float32", (policy, weight.path, weight.dtype)

    # ------------------------------------------------------------------------------------------------- masks

    def check_masks(self, supports_masking, passes_mask, masked_calls):
        layer = self.make()
        assert layer.supports_masking is supports_masking, f"{self.name}.supports_masking = {layer.supports_masking}"
        if supports_masking:
            # A Keras mask on the first input (Masking marks the all-zero vectors along its last axis).
            inputs = self.symbolic_inputs()
            masked = keras.layers.Masking(0.0)(inputs[0])
            output = _outputs(self.call(layer, [masked, *inputs[1:]]))[0]
            mask = getattr(output, "_keras_mask", None)  # where Keras keeps a tensor's mask
            if passes_mask:
                assert mask is not None, f"{self.name} drops the Keras mask"
                assert tuple(mask.shape) == tuple(masked.shape[:-1])
            else:
                assert mask is None, f"{self.name} passes on a mask of shape {mask.shape}"
            model = keras.Model(inputs if self.several_inputs else inputs[0], output)
            padded = [x.copy() for x in self.inputs]
            padded[0][0, ..., :] = 0.0  # the first example's vectors all masked
            for training in (True, False):
                result = model(padded if self.several_inputs else padded[0], training=training)
                assert np.isfinite(_as_float32(result)).all()
        if masked_calls is None:
            return
        for training in (True, False):
            count = 0
            for output, masked in masked_calls(layer, self.inputs, training):
                value = _as_float32(output)
                assert value.shape == masked.shape
                assert (value[masked] == 0).all(), f"a masked entry is not 0 (training={training})"
                assert np.isfinite(value[~masked]).all(), f"a non-finite output (training={training})"
                count += 1
            assert count, "masked_calls yielded nothing"

    # ------------------------------------------------------------------------------------------------- modes

    def check_training_modes(self):
        layer = self.make(sample_at_inference=False)
        inference = self.call(layer)
        _assert_same_values(self.call(layer, training=False), inference, "training=False differs from None")
        first = self.call(layer, training=True)
        second = self.call(layer, training=True)
        _assert_different_values(first, second, "two training draws are equal: a fixed draw, not a stream")
        _assert_same_values(self.call(layer), inference, "inference changed after training draws")

        # The same config and weights replay the same stream.
        replay = self.layer_class.from_config(self.make(sample_at_inference=False).get_config())
        replay.build(*self.shapes)
        replay.set_weights(layer.get_weights())
        _assert_same_values(self.call(replay, training=True), first, "the same seed drew another first sample")
        _assert_same_values(self.call(replay, training=True), second, "the same seed drew another second sample")

        sampling = self.make(sample_at_inference=True)
        _assert_different_values(
            self.call(sampling), self.call(sampling), "sample_at_inference=True gave the same output twice"
        )
