"""keras_gumbel.pruning: the expected sparsity, the Lagrangian controller, rounding to the target, the pruned model."""

import keras
import numpy as np
import pytest
from helpers import gated_transformer
from helpers import to_numpy

import keras_gumbel
from keras_gumbel import pruning


def gated_mlp(widths=(32, 16), inputs=8, outputs=3, seed=0, dropout=True):
    keras.utils.set_random_seed(seed)
    x = first = keras.Input((inputs,))
    for index, width in enumerate(widths):
        x = keras.layers.Dense(width, activation="relu", name=f"dense_{index}")(x)
        x = keras_gumbel.HardConcreteGate(seed=index, name=f"gate_{index}")(x)
        x = keras.layers.Dropout(0.1)(x) if dropout else x
    x = pruning.SparsityPenalty(name="penalty")(x)
    return keras.Model(first, keras.layers.Dense(outputs, name="head")(x))


def test_expected_sparsity_is_the_monte_carlo_fraction_of_zero_gates():
    model = gated_mlp()
    layers = pruning.gates(model)
    assert [layer.name for layer in layers] == ["gate_0", "gate_1"]
    layers[0].log_alpha.assign(np.linspace(-3, 3, 32).astype("float32"))
    x = np.ones((1, 32), "float32")
    zeros = np.mean([(to_numpy(layers[0](x, training=True)) == 0).mean() for _ in range(3000)])
    expected = 1 - float(to_numpy(layers[0].expected_kept())) / 32
    assert abs(zeros - expected) < 4 * np.sqrt(expected * (1 - expected) / (3000 * 32)) + 1e-3
    combined = float(to_numpy(pruning.expected_sparsity(layers)))
    kept = sum(float(to_numpy(layer.expected_kept())) for layer in layers)
    np.testing.assert_allclose(combined, 1 - kept / 48, rtol=1e-6)


def test_prune_removes_the_zero_gated_units_and_keeps_the_inference_output():
    model = gated_mlp()
    rng = np.random.default_rng(0)
    for layer in pruning.gates(model):
        layer.log_alpha.assign(rng.normal(0.0, 2.5, layer.log_alpha.shape).astype("float32"))
    x = rng.normal(size=(64, 8)).astype("float32")
    pruned = pruning.prune(model)
    kept = [len(layer.kept_units()) for layer in pruning.gates(model)]
    assert 0 < kept[0] < 32 and 0 < kept[1] < 16
    assert [layer.units for layer in pruned.layers[1:]] == [kept[0], kept[1], 3]
    assert not any(type(layer).__module__.startswith("keras_gumbel") for layer in pruned.layers)
    assert pruned.count_params() < model.count_params()
    np.testing.assert_allclose(to_numpy(pruned(x)), to_numpy(model(x)), atol=1e-5, rtol=1e-5)
    assert pruning.sparsity(model) == pytest.approx(1 - sum(kept) / 48)


def test_prune_of_a_sequential_model_and_after_fixing_the_gates():
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(12), keras_gumbel.HardConcreteGate(seed=2), keras.layers.Dense(2)]
    )
    gate = model.layers[1]
    assert pruning.fix_to_sparsity([gate], 0.25) == pytest.approx(3 / 12)
    assert len(gate.kept_units()) == 9
    x = np.random.default_rng(1).normal(size=(10, 5)).astype("float32")
    np.testing.assert_allclose(to_numpy(pruning.prune(model)(x)), to_numpy(model(x)), atol=1e-5, rtol=1e-5)


def test_prune_of_a_conv_net_with_pooling_flatten_and_global_pooling():
    rng = np.random.default_rng(3)
    model = _conv_net(seed=3, channels=1, widths=(12, 10, 16))
    for layer in pruning.gates(model):
        layer.log_alpha.assign(rng.normal(0.0, 2.5, layer.log_alpha.shape).astype("float32"))
    images = rng.normal(size=(32, 8, 8, 1)).astype("float32")
    pruned = pruning.prune(model)
    kept = [len(layer.kept_units()) for layer in pruning.gates(model)]
    assert [layer.filters for layer in pruned.layers if isinstance(layer, keras.layers.Conv2D)] == kept[:2]
    assert not any(type(layer).__module__.startswith("keras_gumbel") for layer in pruned.layers)
    np.testing.assert_allclose(to_numpy(pruned(images)), to_numpy(model(images)), atol=1e-5, rtol=1e-5)

    keras.utils.set_random_seed(4)
    inputs = keras.Input((20, 3))
    x = keras_gumbel.HardConcreteGate(seed=4)(keras.layers.Conv1D(9, 5, activation="relu")(inputs))
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    pruning.gates(model)[0].log_alpha.assign(rng.normal(0.0, 2.5, 9).astype("float32"))
    series = rng.normal(size=(16, 20, 3)).astype("float32")
    np.testing.assert_allclose(to_numpy(pruning.prune(model)(series)), to_numpy(model(series)), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", [(12,), (5, 5, 3)])
def test_prune_gathers_the_kept_input_features(shape):
    keras.utils.set_random_seed(3)
    inputs = keras.Input(shape)
    x = keras_gumbel.HardConcreteGate(seed=1, name="input_gate")(inputs)  # the input's features (pixels, channels)
    x = keras.layers.Conv2D(4, 3)(x) if len(shape) == 3 else keras.layers.Dense(6, activation="relu")(x)
    x = keras.layers.Flatten()(x) if len(shape) == 3 else x
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    gate = model.get_layer("input_gate")
    log_alpha = np.random.default_rng(0).normal(0.0, 3.0, shape[-1])
    log_alpha[1] = -30.0  # one feature off at least
    gate.log_alpha.assign(log_alpha.astype("float32"))
    x = np.random.default_rng(1).normal(size=(8, *shape)).astype("float32")
    pruned = pruning.prune(model)
    np.testing.assert_allclose(to_numpy(pruned(x)), to_numpy(model(x)), atol=1e-5, rtol=1e-5)
    first = [layer for layer in pruned.layers if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D))][0]
    assert first.kernel.shape[-2] == len(gate.kept_units()) < shape[-1]  # only the kept features' rows
    for measure in ("parameters", "flops"):
        assert pruning.cost(pruned, measure) == pruning.cost(model, measure) < pruning.expected_cost(model, measure)[1]


def test_a_gate_on_a_layer_that_others_read_too_gathers_and_leaves_that_layer_whole():
    keras.utils.set_random_seed(4)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu", name="shared")(inputs)
    gated = keras_gumbel.HardConcreteGate(seed=1, name="gate")(hidden)
    x = keras.layers.Add()([hidden, keras.layers.Dense(8, name="branch")(gated)])  # `shared` read by the Add too
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    log_alpha = np.random.default_rng(2).normal(0.0, 3.0, 8)
    log_alpha[:2] = -30.0
    model.get_layer("gate").log_alpha.assign(log_alpha.astype("float32"))
    pruned = pruning.prune(model)
    assert pruned.get_layer("shared").units == 8  # whole: the Add needs every unit
    assert pruned.get_layer("branch").kernel.shape[0] == len(model.get_layer("gate").kept_units()) < 8
    x = np.random.default_rng(3).normal(size=(16, 6)).astype("float32")
    np.testing.assert_allclose(to_numpy(pruned(x)), to_numpy(model(x)), atol=1e-5, rtol=1e-5)


def test_prune_refuses_what_it_cannot_carry_naming_the_layer():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3)(inputs)
    with pytest.raises(ValueError, match="last_gate.*reaches the model's output"):
        pruning.prune(keras.Model(inputs, keras_gumbel.HardConcreteGate(name="last_gate")(x)))
    x = keras.layers.Dense(3)(inputs)
    x = keras.layers.LayerNormalization(name="norm")(keras_gumbel.HardConcreteGate()(x))
    with pytest.raises(ValueError, match="reaches 'norm'"):
        pruning.prune(keras.Model(inputs, keras.layers.Dense(2)(x)))
    x = keras_gumbel.HardConcreteGate(name="shared_gate")(keras.layers.Dense(3)(inputs))
    both = keras.layers.Concatenate()([keras.layers.Dense(2)(x), keras.layers.Dense(2)(x)])
    with pytest.raises(ValueError, match="shared_gate.*several layers"):
        pruning.prune(keras.Model(inputs, both))
    x = keras.layers.Dense(4)(inputs)
    joined = keras.layers.Concatenate()([inputs, keras_gumbel.HardConcreteGate(block=True, name="block_gate")(x)])
    with pytest.raises(ValueError, match="block_gate.*does not feed an Add"):
        pruning.prune(keras.Model(inputs, joined))
    dense = keras.layers.Dense(4, name="twice")
    with pytest.raises(ValueError, match="twice.*more than once"):
        pruning.prune(keras.Model(inputs, dense(dense(inputs))))
    with pytest.raises(ValueError, match="no layer graph"):
        pruning.prune(keras.Sequential([keras.layers.Dense(2)]))


def test_the_controller_needs_one_penalty_and_a_gate():
    inputs = keras.Input((4,))
    plain = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    plain.compile("sgd", "mse")
    with pytest.raises(ValueError, match="SparsityPenalty"):
        plain.fit(np.ones((4, 4)), np.ones((4, 2)), verbose=0, callbacks=[pruning.SparsityController(0.5)])
    for bad in (1.0, -0.1, "half"):
        with pytest.raises((ValueError, TypeError), match="target"):
            pruning.SparsityController(bad)


def test_the_multipliers_rise_against_a_model_denser_than_asked_and_the_logs_say_so():
    model = gated_mlp()
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    y = np.arange(64) % 3
    controller = pruning.SparsityController(0.6, warmup_steps=0, multiplier_rate=0.1, rounding=None)
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[controller])
    logs = history.history
    assert logs["sparsity_target"] == [0.6, 0.6]
    assert logs["lambda_1"][0] < 0 < logs["lambda_2"][0]  # s < t: lambda_1 falls, lambda_2 grows
    assert logs["lambda_1"][1] < logs["lambda_1"][0]
    assert set(logs) >= {"loss", "sparsity", "pruned_sparsity", "lambda_1", "lambda_2"}
    # The penalty is in the loss of a training call (and only there).
    penalty = model.get_layer("penalty")
    model(x, training=True)
    assert len(model.losses) == 1
    np.testing.assert_allclose(to_numpy(model.losses[0]), to_numpy(penalty.penalty()), rtol=1e-6)
    assert float(to_numpy(penalty.penalty())) != 0.0
    model(x, training=False)
    assert not model.losses


def test_the_penalty_layer_saves_and_reloads(tmp_path):
    model = gated_mlp()
    model.get_layer("penalty").multipliers.assign([-1.5, 2.0])
    model.save(tmp_path / "gated.keras")
    loaded = keras.models.load_model(tmp_path / "gated.keras")
    np.testing.assert_array_equal(to_numpy(loaded.get_layer("penalty").multipliers), [-1.5, 2.0])


def _trained_on_digits(controller):
    """A 64-128-64-10 gated MLP trained on 1,400 of scikit-learn's digits with `controller`; the other 397 held out."""
    sklearn = pytest.importorskip("sklearn.datasets")
    features, labels = sklearn.load_digits(return_X_y=True)
    features = (features / 16).astype("float32")
    model = gated_mlp(widths=(128, 64), inputs=64, outputs=10)
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(features[:1400], labels[:1400], epochs=40, batch_size=64, verbose=0, callbacks=[controller])
    return model, history, (features[1400:], labels[1400:])


@pytest.mark.slow
@pytest.mark.parametrize("target", [0.5, 0.8])
def test_the_controller_reaches_the_target_on_digits_and_the_pruned_model_keeps_the_accuracy(target):
    model, history, test = _trained_on_digits(pruning.SparsityController(target, warmup_steps=500))
    # The multipliers bring the expected sparsity near the target; the rounding at the end lands on it.
    assert abs(history.history["sparsity"][-1] - target) < 0.05, history.history["sparsity"][-5:]
    assert abs(pruning.sparsity(model) - target) <= 0.01
    pruned = pruning.prune(model)
    gated_outputs, pruned_outputs = to_numpy(model(test[0])), to_numpy(pruned(test[0]))
    np.testing.assert_allclose(pruned_outputs, gated_outputs, atol=1e-4, rtol=1e-4)
    accuracy = (pruned_outputs.argmax(-1) == test[1]).mean()
    assert accuracy > 0.85, accuracy  # a dense MLP of this size: about 0.95 on these 397 digits


def _conv_net(seed=5, channels=2, widths=(6, 5, 7)):
    """8x8 images: a gated 3x3 Conv2D ("same"), max-pooling, a gated 3x3 Conv2D, Flatten, a gated Dense, 3 logits."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, channels))
    x = keras.layers.Conv2D(widths[0], 3, activation="relu", padding="same")(inputs)
    x = keras_gumbel.HardConcreteGate(seed=1)(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(widths[1], 3, activation="relu")(x)
    x = keras_gumbel.HardConcreteGate(seed=2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(widths[2], activation="relu")(x)
    x = keras_gumbel.HardConcreteGate(seed=3)(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


# The conv net's cost by hand: 3x3 convolutions 2 -> 6 ("same", 64 positions) and 6 -> 5 (4 positions after the
# pooling), Dense 20 -> 7 (Flatten: 4 positions x 5 channels) and 7 -> 3; biases in the parameters only.
CONV_NET_COST = {
    "parameters": (18 * 6 + 6) + (54 * 5 + 5) + (20 * 7 + 7) + (7 * 3 + 3),
    "flops": 64 * 18 * 6 + 4 * 54 * 5 + 20 * 7 + 7 * 3,
}


@pytest.mark.parametrize("measure", ["parameters", "flops"])
def test_expected_cost_counts_the_pruned_model_when_the_gates_are_sure(measure):
    model = _conv_net()
    assert pruning.cost(model, measure) == CONV_NET_COST[measure]  # every gate at 0.9: every unit kept
    rng = np.random.default_rng(2)
    for layer in pruning.gates(model):  # log_alpha of +-30: P(gate > 0) is 0 or 1 to float precision
        layer.log_alpha.assign(rng.choice([-30.0, 30.0], layer.log_alpha.shape).astype("float32"))
    expected, dense = pruning.expected_cost(model, measure)
    assert dense == CONV_NET_COST[measure]
    pruned = pruning.prune(model)
    assert pruning.cost(pruned, measure) == pruning.cost(model, measure) < dense
    np.testing.assert_allclose(float(to_numpy(expected)), pruning.cost(pruned, measure), rtol=1e-6)


@pytest.mark.parametrize("measure", ["parameters", "flops"])
def test_expected_cost_is_the_monte_carlo_mean_of_the_kept_cost(measure):
    model = _conv_net()
    rng = np.random.default_rng(3)
    layers = pruning.gates(model)
    for layer in layers:
        layer.log_alpha.assign(rng.normal(0.0, 1.5, layer.log_alpha.shape).astype("float32"))
    probabilities = [to_numpy(layer.probability_nonzero()) for layer in layers]
    # Kept costs of sampled keep-masks, counted as prune would count them: each layer's kept inputs x kept outputs.
    draws = []
    for _ in range(4000):
        kept = [rng.random(p.shape) < p for p in probabilities]
        c1, c2, d1 = (int(k.sum()) for k in kept)
        # 3x3 convolutions: 8x8 "same" (64 positions) on 2 channels, then 2x2 "valid" positions after the pooling;
        # Flatten gives 4 positions per kept channel to the Dense.
        if measure == "parameters":
            draws.append(18 * c1 + c1 + 9 * c1 * c2 + c2 + 4 * c2 * d1 + d1 + 3 * d1 + 3)
        else:
            draws.append(64 * 18 * c1 + 4 * 9 * c1 * c2 + 4 * c2 * d1 + 3 * d1)
    expected, _ = pruning.expected_cost(model, measure)
    draws = np.array(draws, float)
    assert abs(float(to_numpy(expected)) - draws.mean()) < 4 * draws.std() / np.sqrt(len(draws))


def test_expected_cost_refuses_an_unknown_measure():
    with pytest.raises(ValueError, match="measure"):
        pruning.expected_cost(_conv_net(), "bytes")


def test_fix_to_sparsity_in_parameters_keeps_the_most_units_within_the_target():
    model = _conv_net()
    rng = np.random.default_rng(4)
    for layer in pruning.gates(model):
        layer.log_alpha.assign(rng.normal(0.0, 1.0, layer.log_alpha.shape).astype("float32"))
    reached = pruning.fix_to_sparsity(pruning.gates(model), 0.6, model, "parameters")
    pruned = pruning.prune(model)
    dense = CONV_NET_COST["parameters"]
    assert reached == pytest.approx(1 - pruning.cost(pruned, "parameters") / dense)
    assert 0.6 <= reached < 0.75
    with pytest.raises(ValueError, match="model"):
        pruning.fix_to_sparsity(pruning.gates(model), 0.6, measure="flops")


@pytest.mark.slow
def test_the_controller_reaches_a_target_in_parameters_on_digits():
    controller = pruning.SparsityController(0.8, warmup_steps=500, measure="parameters")
    model, history, (features, _) = _trained_on_digits(controller)
    assert abs(history.history["sparsity"][-1] - 0.8) < 0.05, history.history["sparsity"][-5:]
    pruned = pruning.prune(model)
    reached = 1 - pruning.cost(pruned, "parameters") / pruning.expected_cost(model, "parameters")[1]
    assert 0.8 <= reached < 0.82, reached  # the most units within the target: one more unit would pass it
    np.testing.assert_allclose(to_numpy(pruned(features)), to_numpy(model(features)), atol=1e-4)


@pytest.mark.parametrize("network", ["mlp", "transformer"])
def test_training_resumed_from_model_checkpoint_goes_on_exactly(tmp_path, network):
    # The multipliers and target live in the model (SparsityPenalty), the warm-up reads the optimizer's step count,
    # the gates' seed streams are saved with them: a fit resumed from the file equals the uninterrupted one. The
    # Transformer holds every kind of gate (HeadGatedAttention's, hidden units', blocks'), its controller aims at
    # a FLOPs target.
    shape, measure = ((8,), "units") if network == "mlp" else ((6, 8), "flops")
    x = np.random.default_rng(0).normal(size=(64, *shape)).astype("float32")
    y = np.arange(64) % 3

    def compiled():
        # Without Dropout: with Keras' Dropout in the model the resumed run draws other masks (its seed state is not
        # in the .keras file), whatever the pruning does.
        model = gated_mlp(dropout=False) if network == "mlp" else gated_transformer()
        model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    def controller():
        return pruning.SparsityController(0.6, warmup_steps=6, measure=measure, rounding=None)

    whole = compiled()
    whole.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0, callbacks=[controller()])
    first = compiled()
    checkpoint = keras.callbacks.ModelCheckpoint(str(tmp_path / "ckpt.keras"))
    first.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0, callbacks=[controller(), checkpoint])
    resumed = keras.models.load_model(tmp_path / "ckpt.keras")
    resumed.fit(x, y, epochs=2, initial_epoch=1, batch_size=16, shuffle=False, verbose=0, callbacks=[controller()])
    for expected, got in zip(whole.weights, resumed.weights):
        np.testing.assert_array_equal(to_numpy(got), to_numpy(expected), err_msg=expected.path)


def _named_gates(model):
    """The gates of a model by name: a `HeadGatedAttention`'s head gate under the attention layer's name."""
    named = {layer.name: layer for layer in model.layers if isinstance(layer, keras_gumbel.HardConcreteGate)}
    named.update({layer.name: layer.head_gate for layer in model.layers if hasattr(layer, "head_gate")})
    assert sorted(map(id, named.values())) == sorted(map(id, pruning.gates(model)))
    return named


def _set_gates(model, values):
    """Assigns `log_alpha` by gate name (a scalar or an array); other gates at +30 (kept, gate 1)."""
    for name, layer in _named_gates(model).items():
        value = np.broadcast_to(np.float32(values.get(name, 30.0)), layer.log_alpha.shape)
        layer.log_alpha.assign(value.astype("float32"))


def test_prune_of_a_transformer_removes_heads_hidden_units_and_blocks():
    model = gated_transformer()
    rng = np.random.default_rng(5)
    _set_gates(
        model,
        {
            "attention_0": [30.0, -30.0, 30.0, -30.0],  # heads 0 and 2 kept
            "attention_1": rng.normal(0.0, 2.0, 4),
            "hidden_gate_0": rng.normal(0.0, 2.0, 12),
            "hidden_gate_1": rng.normal(0.0, 2.0, 12),
            "attention_block_1": -30.0,  # the second attention block removed
            "feed_forward_block_0": 0.3,  # kept at a gate strictly between 0 and 1: a Rescaling
        },
    )
    x = rng.normal(size=(16, 6, 8)).astype("float32")
    pruned = pruning.prune(model)
    np.testing.assert_allclose(to_numpy(pruned(x)), to_numpy(model(x)), atol=1e-5, rtol=1e-5)
    assert not any(type(layer).__module__.startswith("keras_gumbel") for layer in pruned.layers)
    layers = {layer.name: layer for layer in pruned.layers}
    assert type(layers["attention_0"]) is keras.layers.MultiHeadAttention and layers["attention_0"].num_heads == 2
    assert "attention_1" not in layers  # removed with its block, not computed
    assert layers["feed_forward_block_0"].scale == pytest.approx(
        float(model.get_layer("feed_forward_block_0").gates()[0])
    )
    for block in (0, 1):
        kept = len(model.get_layer(f"hidden_gate_{block}").kept_units())
        assert layers[f"hidden_{block}"].units == kept and layers[f"project_{block}"].kernel.shape[0] == kept
    for measure in ("parameters", "flops"):
        assert pruning.cost(pruned, measure) == pruning.cost(model, measure) < pruning.expected_cost(model, measure)[1]


def _transformer_cost(heads, hidden, kept_blocks, measure, sequence=6, width=8, head_size=4):
    """The cost of `gated_transformer()` with `heads[b]` heads, `hidden[b]` hidden units and the blocks
    `kept_blocks[b] = (attention kept, feed-forward kept)` of block b, by hand: each head's query, key and value
    projections (width -> head size, with biases) and its output projection (head size -> width), the output bias,
    the feed-forward Dense layers and the classifier (width -> 3)."""
    total = 0.0
    for h, u, (attention, feed_forward) in zip(heads, hidden, kept_blocks):
        if measure == "parameters":
            total += attention * (h * (3 * (width * head_size + head_size) + head_size * width) + width)
            total += feed_forward * ((width * u + u) + (u * width + width))
        else:
            per_head = sequence * (3 * width * head_size + head_size * width) + sequence * sequence * 2 * head_size
            total += attention * h * per_head + feed_forward * sequence * 2 * width * u
    return total + (width * 3 + 3 if measure == "parameters" else width * 3)


@pytest.mark.parametrize("measure", ["parameters", "flops"])
def test_expected_cost_of_a_transformer_is_the_monte_carlo_mean_of_its_cost(measure):
    model = gated_transformer()
    rng = np.random.default_rng(6)
    for layer in pruning.gates(model):
        layer.log_alpha.assign(rng.normal(0.0, 1.5, layer.log_alpha.shape).astype("float32"))
    p = {name: to_numpy(layer.probability_nonzero()) for name, layer in _named_gates(model).items()}
    draws = []
    for _ in range(4000):
        kept = {name: rng.random(probability.shape) < probability for name, probability in p.items()}
        draws.append(
            _transformer_cost(
                [int(kept[f"attention_{b}"].sum()) for b in (0, 1)],
                [int(kept[f"hidden_gate_{b}"].sum()) for b in (0, 1)],
                [(bool(kept[f"attention_block_{b}"][0]), bool(kept[f"feed_forward_block_{b}"][0])) for b in (0, 1)],
                measure,
            )
        )
    expected, dense = pruning.expected_cost(model, measure)
    assert dense == _transformer_cost([4, 4], [12, 12], [(1, 1), (1, 1)], measure)
    draws = np.array(draws)
    assert abs(float(to_numpy(expected)) - draws.mean()) < 4 * draws.std() / np.sqrt(len(draws))


def _heads_task(count, seed):
    """Sequences of 8 (one-hot token in {0, 1, 2}, one-hot position); label `(token[0] - token[1]) mod 3`."""
    tokens = np.random.default_rng(seed).integers(0, 3, (count, 8))
    x = np.concatenate([np.eye(3)[tokens], np.broadcast_to(np.eye(8), (count, 8, 8))], -1).astype("float32")
    return x, (tokens[:, 0] - tokens[:, 1]) % 3


@pytest.mark.slow
def test_the_head_gates_keep_a_head_that_reads_the_informative_positions():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 11))
    embedded = keras.layers.Dense(16, name="embed")(inputs)
    attention = keras_gumbel.HeadGatedAttention(4, 8, gate_seed=1, name="attention")
    x = keras.layers.LayerNormalization()(keras.layers.Add()([embedded, attention(embedded, embedded)]))
    x = pruning.SparsityPenalty()(keras.layers.GlobalAveragePooling1D()(x))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(32, activation="relu")(x)))
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    (x_train, y_train), (x_test, y_test) = _heads_task(20000, 0), _heads_task(2000, 1)
    controller = pruning.SparsityController(0.75, warmup_steps=300)  # 3 of the 4 heads off
    model.fit(x_train, y_train, batch_size=128, epochs=5, verbose=0, callbacks=[controller])
    pruned = pruning.prune(model)
    assert pruned.get_layer("attention").num_heads == 1
    # Under the gates' noise each head learns the task alone (any open head suffices), and the controller lowers
    # all four together: the head kept is scaled by its small mean gate. The pruned model, a plain Keras one,
    # fine-tunes back (the benchmark reports both errors).
    pruned.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruned.fit(x_train, y_train, batch_size=128, epochs=2, verbose=0)
    assert (to_numpy(pruned(x_test)).argmax(-1) == y_test).mean() > 0.95  # chance: 1/3
    # The kept head reads positions 0 and 1: most of its attention is there (uniform attention would put 1/4).
    features = pruned.get_layer("embed")(x_test)
    _, scores = pruned.get_layer("attention")(features, features, return_attention_scores=True)
    assert to_numpy(scores)[..., :2].sum(-1).mean() > 0.5


def test_fix_to_expected_keeps_each_gates_expected_count_of_its_top_units():
    model = gated_mlp()
    rng = np.random.default_rng(8)
    layers = pruning.gates(model)
    for layer in layers:
        layer.log_alpha.assign(rng.normal(0.0, 2.0, layer.log_alpha.shape).astype("float32"))
    counts = [int(round(float(to_numpy(layer.expected_kept())))) for layer in layers]
    tops = [set(np.argsort(-to_numpy(layer.log_alpha))[:count]) for layer, count in zip(layers, counts)]
    reached = pruning.fix_to_expected(layers)
    assert [set(layer.kept_units()) for layer in layers] == tops  # each gate's own top-k, k its expected count
    assert reached == pytest.approx(1 - sum(counts) / 48)
    x = rng.normal(size=(16, 8)).astype("float32")
    np.testing.assert_allclose(to_numpy(pruning.prune(model)(x)), to_numpy(model(x)), atol=1e-5, rtol=1e-5)


def test_the_controller_rounds_per_gate_and_round_trips_its_config():
    model = gated_mlp()
    model.compile(keras.optimizers.Adam(0.05), "mse")
    controller = pruning.SparsityController(0.5, warmup_steps=10, rounding="per_gate")
    x, y = np.random.default_rng(9).normal(size=(64, 8)).astype("float32"), np.zeros((64, 3), "float32")
    model.fit(x, y, batch_size=16, epochs=5, verbose=0, callbacks=[controller])
    for layer in pruning.gates(model):
        assert layer.fixed and len(layer.kept_units()) == int(round(float(to_numpy(layer.expected_kept()))))
    config = controller.get_config()
    assert config["rounding"] == "per_gate" and config["target"] == 0.5
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(controller))
    assert type(restored) is pruning.SparsityController and restored.get_config() == config
    with pytest.raises(ValueError, match="rounding"):
        pruning.SparsityController(0.5, rounding="top_k")
