"""GumbelSoftmax and StraightThroughGumbel: modes, state, masking, shapes, errors."""

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
from helpers import softmax
from helpers import to_numpy

import keras_gumbel

LAYERS = [keras_gumbel.GumbelSoftmax, keras_gumbel.StraightThroughGumbel]
LOGITS = np.log(np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]], "float32"))


@pytest.mark.parametrize("layer_class", LAYERS)
class TestBothLayers:
    def test_inference_is_deterministic_by_default(self, layer_class):
        layer = layer_class(temperature=0.5, seed=0)
        first, second = to_numpy(layer(LOGITS)), to_numpy(layer(LOGITS, training=False))
        np.testing.assert_array_equal(first, second)
        if layer_class is keras_gumbel.GumbelSoftmax:
            np.testing.assert_allclose(first, softmax(LOGITS / 0.5), rtol=1e-5)
        else:
            np.testing.assert_array_equal(first, np.eye(3)[LOGITS.argmax(-1)])

    def test_sample_at_inference_keeps_sampling(self, layer_class):
        layer = layer_class(sample_at_inference=True, seed=0)
        logits = np.zeros((64, 5), "float32")
        draws = [to_numpy(layer(logits, training=False)) for _ in range(2)]
        assert not np.array_equal(*draws)

    def test_training_draws_a_new_sample_each_call_and_a_seed_replays_the_stream(self, layer_class):
        logits = np.zeros((64, 5), "float32")
        layer = layer_class(seed=11)
        draws = [to_numpy(layer(logits, training=True)) for _ in range(3)]
        assert not np.array_equal(draws[0], draws[1])
        replay = layer_class(seed=11)
        for draw in draws:
            np.testing.assert_array_equal(draw, to_numpy(replay(logits, training=True)))

    def test_temperature_change_takes_effect_in_a_compiled_function_without_retracing(self, layer_class):
        layer = layer_class(temperature=1.0, seed=0)
        logits = tf.Variable(LOGITS)
        traces = []

        # In training (the straight-through gradient exists only there), from the same seed state both times: the
        # noise is the same, so the gradients differ by the temperature alone.
        layer.build(LOGITS.shape)
        start = layer.seed_generator.state.numpy()

        @tf.function
        def forward_and_gradient(training):
            traces.append(1)
            with tf.GradientTape() as tape:
                out = layer(logits, training=training)
                loss = tf.reduce_sum(out * tf.constant([[1.0, 2.0, 3.0]]))
            return out, tape.gradient(loss, logits)

        training = layer_class is not keras_gumbel.GumbelSoftmax
        out_1, grad_1 = forward_and_gradient(training)
        layer.temperature.assign(0.25)
        layer.seed_generator.state.assign(start)
        out_2, grad_2 = forward_and_gradient(training)
        assert len(traces) == 1
        # The relaxed output and every gradient depend on the temperature.
        assert not np.allclose(to_numpy(grad_1), to_numpy(grad_2))
        if layer_class is keras_gumbel.GumbelSoftmax:
            np.testing.assert_allclose(to_numpy(out_2), softmax(LOGITS / 0.25), rtol=1e-5)

    def test_temperature_is_a_non_trainable_scalar_variable_by_default(self, layer_class):
        layer = layer_class(temperature=0.3)
        assert tuple(layer.temperature.shape) == ()
        assert float(layer.temperature.numpy()) == pytest.approx(0.3)
        assert layer.trainable_weights == []

    def test_trainable_temperature_is_learned_and_kept_above_the_floor(self, layer_class):
        layer = layer_class(temperature=1.0, trainable_temperature=True, seed=0)
        assert layer.trainable_weights == [layer.temperature]
        inputs = keras.Input((3,))
        model = keras.Model(inputs, layer(inputs))
        # Logits favour class 2 strongly; rewarding y[2] rewards sharper samples,
        # so the learned temperature must fall.
        x = np.tile([[0.0, 0.0, 3.0]], (256, 1)).astype("float32")
        y = np.tile([[0.0, 0.0, 1.0]], (256, 1)).astype("float32")
        model.compile(keras.optimizers.SGD(learning_rate=0.5), loss=lambda y, p: -keras.ops.sum(p * y, -1))
        model.fit(x, y, epochs=2, batch_size=64, verbose=0)
        learned = float(layer.temperature.numpy())
        assert keras_gumbel.layers._base.MIN_LEARNED_TEMPERATURE < learned < 1.0
        # A step far too large would take it below zero: the constraint stops it at the floor.
        model.compile(keras.optimizers.SGD(learning_rate=1e4), loss=lambda y, p: -keras.ops.sum(p * y, -1))
        model.fit(x, y, epochs=1, batch_size=256, verbose=0)
        assert float(layer.temperature.numpy()) == pytest.approx(keras_gumbel.layers._base.MIN_LEARNED_TEMPERATURE)

    def test_gradients_flow_and_are_finite(self, layer_class):
        layer = layer_class(temperature=0.5, seed=0)
        logits = tf.Variable(np.random.default_rng(0).normal(size=(32, 6)).astype("float32"))
        weights = tf.constant(np.random.default_rng(1).normal(size=(32, 6)).astype("float32"))
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(logits, training=True) * weights)
        gradient = tape.gradient(loss, logits)
        assert gradient is not None
        assert np.isfinite(gradient.numpy()).all()
        assert np.abs(gradient.numpy()).sum() > 0

    @pytest.mark.parametrize("shape, axis", [((5,), -1), ((1, 5), -1), ((2, 3, 4, 5), -1), ((2, 5, 3), 1)])
    def test_shapes_and_axes(self, layer_class, shape, axis):
        layer = layer_class(axis=axis, seed=0)
        logits = np.random.default_rng(0).normal(size=shape).astype("float32")
        for training in (True, False):
            out = to_numpy(layer(logits, training=training))
            assert out.shape == shape
            np.testing.assert_allclose(out.sum(axis=axis), 1.0, rtol=1e-5)
        assert layer.compute_output_shape(shape) == shape

    def test_symbolic_inputs_with_unknown_batch(self, layer_class):
        inputs = keras.Input(shape=(None, 4))
        outputs = layer_class(seed=0)(inputs)
        model = keras.Model(inputs, outputs)
        assert tuple(outputs.shape) == (None, None, 4)
        out = to_numpy(model(np.zeros((2, 3, 4), "float32")))
        np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)

    def test_keras_mask_passes_through(self, layer_class):
        inputs = keras.Input(shape=(None,), dtype="int32")
        embedded = keras.layers.Embedding(10, 4, mask_zero=True)(inputs)
        sampled = layer_class(seed=0)(embedded)
        pooled = keras.layers.GlobalAveragePooling1D()(sampled)  # averages unmasked steps only
        model = keras.Model(inputs, pooled)
        tokens = np.array([[1, 2, 0, 0], [3, 0, 0, 0]])
        layer = model.layers[2]
        mask = layer.compute_mask(embedded, keras.ops.not_equal(tokens, 0))
        np.testing.assert_array_equal(to_numpy(mask), tokens != 0)
        # With the mask respected, the pooled output of row 2 is its one real step.
        single = keras.Model(inputs, sampled)
        np.testing.assert_allclose(to_numpy(model(tokens))[1], to_numpy(single(tokens))[1, 0], rtol=1e-5)

    def test_keras_mask_over_the_category_axis_excludes_masked_categories(self, layer_class):
        # Categories along time steps (axis=1): padding steps must never be chosen, as keras.layers.Softmax does.
        inputs = keras.Input(shape=(None,), dtype="int32")
        scores = keras.layers.Embedding(10, 1, mask_zero=True, embeddings_initializer="ones")(inputs)
        layer = layer_class(axis=1, seed=0)
        model = keras.Model(inputs, layer(scores))
        tokens = np.tile([[1, 2, 0, 0], [3, 0, 0, 0]], (500, 1))
        for training in (True, False):
            out = to_numpy(model(tokens, training=training))[..., 0]
            assert (out[tokens == 0] == 0).all()
            np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)
        if layer_class is keras_gumbel.StraightThroughGumbel:
            # Two equal logits on the first kind of row: both steps are drawn.
            sampled = to_numpy(model(tokens, training=True))[0::2, :2, 0]
            assert 0.4 < sampled[:, 0].mean() < 0.6  # p = 0.5, 500 draws: 4.5 standard errors

    def test_config_keeps_a_learned_temperature_assigned_below_its_floor(self, layer_class):
        layer = layer_class(temperature=0.5, trainable_temperature=True, seed=1)
        layer.build((None, 3))
        layer.temperature.assign(0.01)  # applied as the floor, 0.05
        clone = layer_class.from_config(layer.get_config())
        assert float(clone.temperature.numpy()) == pytest.approx(keras_gumbel.layers._base.MIN_LEARNED_TEMPERATURE)

    def test_masked_category_gets_zero_and_zero_gradient(self, layer_class):
        layer = layer_class(seed=0)
        logits = tf.Variable(np.tile([[0.0, -np.inf, 1.0]], (256, 1)).astype("float32"))
        with tf.GradientTape() as tape:
            out = layer(logits, training=True)
            loss = tf.reduce_sum(out * tf.constant([[1.0, 5.0, -2.0]]))
        assert (out.numpy()[:, 1] == 0).all()
        gradient = tape.gradient(loss, logits).numpy()
        assert np.isfinite(gradient).all() and (gradient[:, 1] == 0).all()

    def test_integer_inputs_raise_a_type_error(self, layer_class):
        with pytest.raises(TypeError, match="floating-point logits"):
            layer_class()(np.array([[1, 2, 3]], "int32"))

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            ({"temperature": 0}, ValueError, "temperature=0"),
            ({"temperature": -0.5}, ValueError, "temperature=-0.5"),
            ({"temperature": float("nan")}, ValueError, "temperature=nan"),
            ({"temperature": float("inf")}, ValueError, "temperature=inf"),
            ({"temperature": "1"}, TypeError, "temperature='1'"),
            ({"temperature": 0.01, "trainable_temperature": True}, ValueError, "temperature=0.01"),
            ({"axis": "last"}, TypeError, "axis='last'"),
            ({"sample_at_inference": 1}, TypeError, "sample_at_inference=1"),
            ({"trainable_temperature": None}, TypeError, "trainable_temperature=None"),
            ({"seed": 1.5}, TypeError, "seed=1.5"),
            ({"seed": keras.random.SeedGenerator(1)}, TypeError, "seed="),
        ],
    )
    def test_bad_arguments_name_argument_and_value(self, layer_class, kwargs, error, match):
        with pytest.raises(error, match=match):
            layer_class(**kwargs)

    def test_axis_out_of_range_is_reported_at_build(self, layer_class):
        with pytest.raises(ValueError, match="axis=2"):
            layer_class(axis=2)(np.zeros((4, 3), "float32"))
        with pytest.raises(ValueError, match="axis=-3"):
            keras.Sequential([keras.Input((3,)), layer_class(axis=-3)])


class TestStraightThroughGradient:
    def test_gradient_equals_the_relaxed_gradient_for_the_same_noise(self):
        # Same seed -> same noise: ST's backward is exactly GumbelSoftmax's.
        logits = tf.Variable(np.random.default_rng(3).normal(size=(64, 5)).astype("float32"))
        weights = tf.constant(np.random.default_rng(4).normal(size=(64, 5)).astype("float32"))
        gradients, outputs = [], []
        for layer in (keras_gumbel.GumbelSoftmax(0.7, seed=5), keras_gumbel.StraightThroughGumbel(0.7, seed=5)):
            with tf.GradientTape() as tape:
                out = layer(logits, training=True)
                loss = tf.reduce_sum(out * weights)
            outputs.append(out.numpy())
            gradients.append(tape.gradient(loss, logits).numpy())
        np.testing.assert_allclose(gradients[0], gradients[1], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(outputs[1], np.eye(5)[outputs[0].argmax(-1)])


def _attention(**kwargs):
    layer = keras_gumbel.GumbelAttention(seed=1, **kwargs)
    return lambda x, training: layer(x, keras.ops.stack([x, x, x], axis=1), training=training)


def _top_k():
    generator = keras.random.SeedGenerator(1)
    return lambda x, training: keras_gumbel.ops.relaxed_top_k(x, 2, hard=training, seed=generator)


def _layer(layer_class, **kwargs):
    layer = layer_class(seed=1, **kwargs)
    return lambda x, training: layer(x, training=training)


# Factories: each test builds its layer once, outside any tf.function.
SAMPLERS_ON_A_BATCH = {
    "GumbelSoftmax": lambda: _layer(keras_gumbel.GumbelSoftmax),
    **{
        f"StraightThroughGumbel({estimator})": (
            lambda estimator=estimator: _layer(keras_gumbel.StraightThroughGumbel, gradient_estimator=estimator)
        )
        for estimator in ("straight_through", "gumbel_rao", "reinmax")
    },
    "RelaxedBernoulli": lambda: _layer(keras_gumbel.RelaxedBernoulli),
    "RelaxedBernoulli(hard)": lambda: _layer(keras_gumbel.RelaxedBernoulli, hard=True),
    "relaxed_top_k": lambda: _top_k(),
    "GumbelAttention": lambda: _attention(),
    "GumbelAttention(hard)": lambda: _attention(hard=True),
    "GumbelAttention(softmax)": lambda: _attention(mode="softmax"),
}


@pytest.mark.parametrize("name", sorted(SAMPLERS_ON_A_BATCH))
@pytest.mark.parametrize("mode", ["eager", "graph", "XLA"])
def test_an_empty_batch_gives_an_empty_result_and_gradient(name, mode):
    # A (0, K) batch (the end of a filtered dataset) used to fail: keras.ops.max refuses empty tensors and
    # keras.ops.add sends a (0, K) operand to tf.nn.bias_add.
    sampler = SAMPLERS_ON_A_BATCH[name]()

    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = [sampler(x, training) for training in (True, False)]
            loss = tf.reduce_sum(outputs[0])
        return outputs, tape.gradient(loss, x)

    if mode != "eager":
        run = tf.function(run, jit_compile=mode == "XLA")
    outputs, gradient = run(tf.zeros((0, 5)))
    for output in outputs:
        assert output.shape[0] == 0
    assert gradient is None or tuple(gradient.shape) == (0, 5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: keras_gumbel.StraightThroughGumbel(seed=7),
        lambda: keras_gumbel.StraightThroughGumbel(seed=7, gradient_estimator="gumbel_rao"),
        lambda: keras_gumbel.StraightThroughGumbel(seed=7, gradient_estimator="reinmax"),
        lambda: keras_gumbel.RelaxedBernoulli(seed=7, hard=True),
        lambda: keras_gumbel.GumbelAttention(hard=True, seed=7),
    ],
    ids=["straight_through", "gumbel_rao", "reinmax", "bernoulli", "attention"],
)
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "tf.function"])
@pytest.mark.parametrize("temperature", [-1.0, 0.0, 1e-30])
def test_straight_through_samples_never_read_the_temperature(make, compiled, temperature):
    # Assigned by hand past the checks: the sample must stay argmax(logits + g), not become the argmin.
    logits = np.tile(np.log(np.array([0.1, 0.2, 0.3, 0.4], "float32")), (2000, 1))
    layers = [make(), make()]
    layers[1].temperature.assign(temperature)

    def call(layer):
        if isinstance(layer, keras_gumbel.GumbelAttention):
            keys = np.broadcast_to(logits[..., None], (*logits.shape, 1))
            return lambda x: layer(tf.ones((x.shape[0], 1)), keys, training=True, return_attention_weights=True)[1]
        return lambda x: layer(x, training=True)

    draws = [to_numpy((tf.function(call(layer)) if compiled else call(layer))(logits)) for layer in layers]
    np.testing.assert_array_equal(draws[1], draws[0])


@pytest.mark.parametrize("layer_class", [keras_gumbel.RelaxedBernoulli, keras_gumbel.GumbelAttention])
def test_layers_without_a_category_axis_refuse_axis(layer_class):
    # They used to drop a user's axis= silently: every Bernoulli entry is its own variable, attention has a set axis.
    with pytest.raises(ValueError, match="axis"):
        layer_class(axis=1)


def test_the_layer_hierarchy():
    from keras_gumbel.layers._base import CategoricalLayer
    from keras_gumbel.layers._base import TemperatureLayer

    for layer_class in (keras_gumbel.GumbelSoftmax, keras_gumbel.StraightThroughGumbel):
        assert issubclass(layer_class, CategoricalLayer) and hasattr(layer_class(), "axis")
    for layer_class in (keras_gumbel.RelaxedBernoulli, keras_gumbel.GumbelAttention):
        layer = layer_class()
        assert isinstance(layer, TemperatureLayer) and not isinstance(layer, CategoricalLayer)
        assert not hasattr(layer, "axis") and "axis" not in layer.get_config()


# Every layer with a temperature, as (a layer sampling at inference too, its inputs); the floor is 2**-104.
FLOOR = keras_gumbel._validation.MIN_TEMPERATURE
BELOW_FLOOR_LOGITS = np.log(np.tile(np.array([[0.1, 0.2, 0.7]], "float32"), (20_000, 1)))


def _sampling_layer_and_inputs(name, temperature=1.0):
    rng = np.random.default_rng(10)
    small = BELOW_FLOOR_LOGITS[:64]
    common = {"temperature": temperature, "seed": 3, "sample_at_inference": True}
    if name in ("GumbelSoftmax", "StraightThroughGumbel", "RelaxedBernoulli"):
        return getattr(keras_gumbel, name)(**common), (small,)
    if name == "GumbelAttention":
        return keras_gumbel.GumbelAttention(**common), (np.ones((64, 1), "float32"), small[..., None])
    if name == "ConcreteSelector":
        return keras_gumbel.ConcreteSelector(2, **common), (rng.normal(size=(64, 5)).astype("float32"),)
    if name == "GumbelVectorQuantizer":
        layer = keras_gumbel.GumbelVectorQuantizer(2, 4, 4, **common)
        return layer, (rng.normal(size=(8, 5, 6)).astype("float32"),)
    layer = keras_gumbel.GumbelSinkhorn(hard_at_inference=False, **common)
    return layer, ((5.0 * rng.normal(size=(64, 3, 3))).astype("float32"),)


TEMPERATURE_LAYERS = [
    "GumbelSoftmax",
    "StraightThroughGumbel",
    "RelaxedBernoulli",
    "GumbelAttention",
    "ConcreteSelector",
    "GumbelVectorQuantizer",
    "GumbelSinkhorn",
]


def _runner(layer, inputs, mode, training=False):
    """A function of no argument that calls `layer` on `inputs` as `mode` runs it, compiled once.

    Eagerly a training call; under XLA and in a graph (`tf.function`) a call with `training`; `predict`, inference.
    """
    if mode == "eager":
        return lambda: to_numpy(layer(*inputs, training=True))
    if mode in ("XLA", "graph"):
        compiled = tf.function(lambda *x: layer(*x, training=training), jit_compile=mode == "XLA")
        return lambda: compiled(*inputs).numpy()
    symbolic = [keras.Input(x.shape[1:]) for x in inputs]
    model = keras.Model(symbolic, layer(*symbolic))
    return lambda: model.predict(list(inputs) if len(inputs) > 1 else inputs[0], batch_size=64, verbose=0)


@pytest.mark.parametrize("name", TEMPERATURE_LAYERS)
def test_every_layer_refuses_a_temperature_below_the_floor_naming_it(name):
    # 2e-38 used to be accepted: N(0, 25) logits / 2e-38 overflowed float32 and 60% of GumbelSoftmax's outputs were NaN.
    with pytest.raises(ValueError, match=r"the temperature floor, 2\*\*-104\).*Received: temperature=2e-38"):
        _sampling_layer_and_inputs(name, temperature=2e-38)


@pytest.mark.parametrize("mode", ["eager", "XLA", "graph"])
@pytest.mark.parametrize("below", [-0.07, 0.0], ids=["-0.07", "0"])
@pytest.mark.parametrize("name", TEMPERATURE_LAYERS)
def test_every_layer_reads_a_temperature_assigned_below_the_floor_as_the_floor(name, below, mode):
    # Training draws, which the seed generator's state replays (inference draws use the runtime's own random op).
    layer, inputs = _sampling_layer_and_inputs(name)
    run = _runner(layer, inputs, mode, training=True)
    run()  # built, and compiled
    state = to_numpy(layer.seed_generator.state)
    outputs = []
    for temperature in (FLOOR, below):
        layer.temperature.assign(temperature)
        layer.seed_generator.state.assign(state)  # the same noise
        outputs.append(run())
    assert np.isfinite(outputs[1]).all()
    np.testing.assert_array_equal(outputs[1], outputs[0])
    assert layer.get_config()["temperature"] == FLOOR  # the value applied: a clone is built at the floor


@pytest.mark.parametrize("mode", ["eager", "XLA", "predict"])
def test_a_temperature_assigned_below_the_floor_never_turns_samples_towards_the_argmin(mode):
    # Issue 23: after temperature.assign(-0.07) the relaxed samples' argmax fell on p = [0.1, 0.2, 0.7]'s categories
    # with frequencies [0.64, 0.31, 0.05]. Read as the floor, the samples are Categorical(p)'s (Gumbel-max).
    layer = keras_gumbel.GumbelSoftmax(seed=4, sample_at_inference=True)
    run = _runner(layer, (BELOW_FLOOR_LOGITS,), mode)
    run()
    layer.temperature.assign(-0.07)
    counts = np.bincount(run().argmax(-1), minlength=3)
    assert scipy.stats.chisquare(counts, [0.1 * 20_000, 0.2 * 20_000, 0.7 * 20_000]).pvalue > 1e-3, counts
    # Without noise: the one-hot of the mode, as temperatures falling towards 0 give; never the argmin.
    layer.sample_at_inference = False
    np.testing.assert_array_equal(to_numpy(layer(BELOW_FLOOR_LOGITS[:1])), [[0.0, 0.0, 1.0]])
