"""GumbelVectorQuantizer: Hugging Face's quantizer given the same weights, the law of the codes, perplexity, masks,
the diversity loss, gradients, wav2vec 2.0's temperature schedule, round trips and export, errors.

Backend-agnostic (CI also runs it on JAX and PyTorch); the tests that need TensorFlow (GradientTape,
SavedModel export) skip elsewhere, and the comparison with `transformers` skips where it is not installed.
"""

import math

import keras
import numpy as np
import pytest
import scipy.stats
from helpers import gradient
from helpers import softmax
from helpers import to_numpy

import keras_gumbel

BACKEND = keras.backend.backend()
TF_ONLY = pytest.mark.skipif(BACKEND != "tensorflow", reason="uses TensorFlow (GradientTape or SavedModel)")
RNG = np.random.default_rng(0)
FRAMES = RNG.normal(size=(3, 7, 8)).astype("float32")
TIME_MASK = RNG.uniform(size=(3, 7)) < 0.6


def built(num_groups=2, num_codes=16, code_dim=12, features=8, **kwargs):
    layer = keras_gumbel.GumbelVectorQuantizer(num_groups, num_codes, code_dim, **kwargs)
    layer.build((None, None, features))
    return layer


def set_weights(layer, kernel, bias, codebook):
    layer.kernel.assign(kernel)
    layer.bias.assign(bias)
    layer.codebook.assign(codebook)


def numpy_reference(layer, frames, mask=None, training=False):
    """The layer's deterministic parts in float64 NumPy: logits [N, G, V], inference codes and perplexity."""
    kernel, bias, codebook = (to_numpy(v).astype("float64") for v in (layer.kernel, layer.bias, layer.codebook))
    groups, codes = layer.num_groups, layer.num_codes
    logits = (frames.reshape(-1, frames.shape[-1]) @ kernel + bias).reshape(-1, groups, codes)
    one_hot = np.eye(codes)[logits.argmax(-1)]
    probs = softmax(logits) if training else one_hot
    keep = np.ones(len(probs), bool) if mask is None else mask.reshape(-1)
    marginal = (probs * keep[:, None, None]).sum(0) / max(keep.sum(), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(marginal > 0, marginal * np.log(marginal), 0.0).sum(-1)
    perplexity = np.exp(entropy).sum()
    output = np.einsum("ngv,gvd->ngd", one_hot, codebook.reshape(groups, codes, -1))
    return logits, output.reshape(*frames.shape[:-1], -1), perplexity


# ----------------------------------------------------------------------------- against transformers


@pytest.fixture(scope="module")
def hugging_face_quantizer():
    torch = pytest.importorskip("torch", reason="the comparison with transformers needs torch")
    wav2vec2 = pytest.importorskip(
        "transformers.models.wav2vec2.modeling_wav2vec2",
        reason="transformers is not installed (pip install transformers; CI installs it)",
    )
    from transformers import Wav2Vec2Config

    config = Wav2Vec2Config(num_codevector_groups=2, num_codevectors_per_group=16, codevector_dim=12, conv_dim=(8,) * 7)
    torch.manual_seed(0)
    quantizer = wav2vec2.Wav2Vec2GumbelVectorQuantizer(config)
    with torch.no_grad():  # the initialisation Wav2Vec2PreTrainedModel gives it, with a non-zero bias
        quantizer.weight_proj.weight.normal_()
        quantizer.weight_proj.bias.normal_()
        quantizer.codevectors.uniform_()
    return torch, quantizer


def ours_with_the_weights_of(hugging_face, diversity_weight=0.1):
    layer = built(diversity_weight=diversity_weight, seed=0)
    set_weights(
        layer,
        hugging_face.weight_proj.weight.detach().numpy().T,  # torch's Linear keeps [out, in]
        hugging_face.weight_proj.bias.detach().numpy(),
        hugging_face.codevectors.detach().numpy()[0],
    )
    return layer


@pytest.mark.parametrize("masked", [False, True], ids=["no_mask", "mask_time_indices"])
def test_inference_output_and_perplexity_equal_transformers(hugging_face_quantizer, masked):
    torch, hugging_face = hugging_face_quantizer
    layer = ours_with_the_weights_of(hugging_face)
    mask = TIME_MASK if masked else None
    hugging_face.eval()
    with torch.no_grad():
        expected, expected_perplexity = hugging_face(
            torch.tensor(FRAMES), mask_time_indices=None if mask is None else torch.tensor(mask)
        )
    output, perplexity = layer(FRAMES, mask=mask, return_perplexity=True)
    # The same code everywhere (one codevector row per group, copied exactly), and the same perplexity.
    np.testing.assert_array_equal(to_numpy(output), expected.numpy())
    np.testing.assert_allclose(float(to_numpy(perplexity)), float(expected_perplexity), rtol=1e-5)


@pytest.mark.parametrize("masked", [False, True], ids=["no_mask", "mask_time_indices"])
def test_training_perplexity_diversity_loss_and_its_gradient_equal_transformers(hugging_face_quantizer, masked):
    torch, hugging_face = hugging_face_quantizer
    layer = ours_with_the_weights_of(hugging_face, diversity_weight=0.1)
    mask = TIME_MASK if masked else None
    hugging_face.train()
    hugging_face.zero_grad()
    _, perplexity_tensor = hugging_face(
        torch.tensor(FRAMES), mask_time_indices=None if mask is None else torch.tensor(mask)
    )
    size = 2 * 16
    (0.1 * (size - perplexity_tensor) / size).backward()  # the diversity loss, as added here
    expected_perplexity = perplexity_tensor.detach()
    _, perplexity = layer(FRAMES, mask=mask, training=True, return_perplexity=True)
    np.testing.assert_allclose(float(to_numpy(perplexity)), float(expected_perplexity), rtol=1e-5)
    np.testing.assert_allclose(float(to_numpy(layer.perplexity)), float(expected_perplexity), rtol=1e-5)
    (loss,) = layer.losses
    np.testing.assert_allclose(float(to_numpy(loss)), 0.1 * (size - float(expected_perplexity)) / size, rtol=1e-5)
    # The diversity loss's gradient with respect to the projection, through the soft perplexity.
    expected_kernel_gradient = hugging_face.weight_proj.weight.grad.numpy().T

    trainable = [v.value for v in layer.trainable_variables]
    state = [v.value for v in layer.non_trainable_variables]
    index = next(i for i, v in enumerate(layer.trainable_variables) if v is layer.kernel)

    def diversity_loss(kernel):
        weights = trainable[:index] + [kernel] + trainable[index + 1 :]
        _, _, losses = layer.stateless_call(weights, state, FRAMES, mask=mask, training=True, return_losses=True)
        return losses[0]

    kernel_gradient = gradient(diversity_loss, to_numpy(layer.kernel))
    np.testing.assert_allclose(kernel_gradient, expected_kernel_gradient, rtol=1e-4, atol=1e-7)


def test_inference_equals_the_numpy_reference_without_transformers():
    layer = built(seed=1)
    for mask in (None, TIME_MASK):
        _, expected, expected_perplexity = numpy_reference(layer, FRAMES, mask)
        output, perplexity = layer(FRAMES, mask=mask, return_perplexity=True)
        np.testing.assert_allclose(to_numpy(output), expected, rtol=1e-6)
        np.testing.assert_allclose(float(to_numpy(perplexity)), expected_perplexity, rtol=1e-5)
        _, _, soft_perplexity = numpy_reference(layer, FRAMES, mask, training=True)
        _, perplexity = layer(FRAMES, mask=mask, training=True, return_perplexity=True)
        np.testing.assert_allclose(float(to_numpy(perplexity)), soft_perplexity, rtol=1e-5)


# ----------------------------------------------------------------------------- the codes


def one_hot_codebook(num_groups, num_codes):
    """A codebook whose codevector v of every group is e_v: the output of group g is its one-hot code."""
    return np.tile(np.eye(num_codes, dtype="float32"), (num_groups, 1))


def test_training_codes_are_exact_samples_of_each_groups_categorical():
    # Identical frames, two groups with different logits: 20,000 rows, chi-square p > 1e-4 per group
    # (a correct sampler fails one such check in 10,000 seeds; the seed is fixed).
    num_rows, groups, codes = 20_000, 2, 4
    probabilities = np.array([[0.1, 0.2, 0.3, 0.4], [0.55, 0.05, 0.25, 0.15]])
    layer = built(groups, codes, groups * codes, features=1, temperature=0.5, seed=2)
    set_weights(
        layer, np.zeros((1, groups * codes), "float32"), np.log(probabilities).reshape(-1), one_hot_codebook(2, 4)
    )
    output = to_numpy(layer(np.ones((num_rows, 1, 1), "float32"), training=True)).reshape(num_rows, groups, codes)
    assert np.isin(output, (0.0, 1.0)).all()
    np.testing.assert_array_equal(output.sum(-1), 1.0)
    for group in range(groups):
        counts = output[:, group].sum(0)
        assert scipy.stats.chisquare(counts, probabilities[group] * num_rows).pvalue > 1e-4
    second = to_numpy(layer(np.ones((num_rows, 1, 1), "float32"), training=True)).reshape(num_rows, groups, codes)
    assert not np.array_equal(output, second), "two training calls drew the same codes"
    replay = built(groups, codes, groups * codes, features=1, temperature=0.5, seed=2)
    set_weights(
        replay, np.zeros((1, groups * codes), "float32"), np.log(probabilities).reshape(-1), one_hot_codebook(2, 4)
    )
    np.testing.assert_array_equal(
        to_numpy(replay(np.ones((num_rows, 1, 1), "float32"), training=True)).reshape(num_rows, groups, codes), output
    )


def test_inference_is_the_argmax_and_sample_at_inference_keeps_sampling():
    layer = built(seed=3)
    logits, expected, _ = numpy_reference(layer, FRAMES)
    np.testing.assert_array_equal(to_numpy(layer(FRAMES)), to_numpy(layer(FRAMES, training=False)))
    np.testing.assert_allclose(to_numpy(layer(FRAMES)), expected, rtol=1e-6)
    sampling = built(seed=3, sample_at_inference=True)
    set_weights(sampling, *(to_numpy(v) for v in (layer.kernel, layer.bias, layer.codebook)))
    frames = np.repeat(FRAMES[:1, :1] * 0.01, 256, axis=1)  # near-uniform logits: samples must differ
    assert not np.array_equal(to_numpy(sampling(frames)), to_numpy(sampling(frames)))


def test_gradients_reach_the_projection_and_only_the_chosen_codevectors():
    layer = built(seed=4, diversity_weight=0.0)
    weights = RNG.normal(size=(3, 7, 12)).astype("float32")
    # d output / d inputs: finite and non-zero (the straight-through path through the projection).
    input_gradient = gradient(lambda x: keras.ops.sum(keras.ops.multiply(layer(x, training=True), weights)), FRAMES)
    assert np.isfinite(input_gradient).all() and np.abs(input_gradient).sum() > 0
    if BACKEND != "tensorflow":
        return
    import tensorflow as tf

    with tf.GradientTape() as tape:
        output = layer(FRAMES, training=True)
        loss = tf.reduce_sum(output * weights)
    kernel_gradient, bias_gradient, codebook_gradient = tape.gradient(
        loss, [layer.kernel.value, layer.bias.value, layer.codebook.value]
    )
    for value in (kernel_gradient, bias_gradient, codebook_gradient):
        assert np.isfinite(to_numpy(value)).all() and np.abs(to_numpy(value)).sum() > 0
    # A codevector gets a gradient exactly when some frame chose it: the output's g-th slice is that row.
    codebook = to_numpy(layer.codebook).reshape(2, 16, 6)
    chosen = np.zeros((2, 16), bool)
    slices = to_numpy(output).reshape(-1, 2, 6)
    for group in range(2):
        for row in slices[:, group]:
            chosen[group, np.flatnonzero((codebook[group] == row).all(-1))[0]] = True
    used = np.abs(to_numpy(codebook_gradient)).reshape(2, 16, 6).sum(-1) > 0
    np.testing.assert_array_equal(used, chosen)


# ----------------------------------------------------------------------------- perplexity, masks, diversity loss


def test_perplexity_bounds_and_the_extremes():
    layer = built(2, 4, 8, features=1, seed=5)
    set_weights(layer, np.zeros((1, 8), "float32"), np.zeros(8, "float32"), one_hot_codebook(2, 4))
    frames = np.ones((5, 1), "float32")
    # Uniform soft probabilities: every code equally likely, perplexity G * V.
    _, perplexity = layer(frames, training=True, return_perplexity=True)
    assert float(to_numpy(perplexity)) == pytest.approx(8.0, rel=1e-6)
    # At inference every frame takes the same code: one code per group in use, perplexity G.
    _, perplexity = layer(frames, return_perplexity=True)
    assert float(to_numpy(perplexity)) == pytest.approx(2.0, rel=1e-6)


def test_keras_masks_exclude_time_steps_and_pass_on():
    layer = built(seed=6)
    inputs = keras.Input((7, 8))
    masked = keras.layers.Masking(0.0)(inputs)
    codevectors = layer(masked)
    assert tuple(codevectors.shape) == (None, 7, 12)
    frames = FRAMES.copy()
    frames[~TIME_MASK] = 0.0  # what Masking reads as padding
    _, _, expected = numpy_reference(layer, frames, TIME_MASK)
    _, perplexity = layer(frames, mask=keras.ops.convert_to_tensor(TIME_MASK), return_perplexity=True)
    np.testing.assert_allclose(float(to_numpy(perplexity)), expected, rtol=1e-5)
    np.testing.assert_array_equal(to_numpy(layer.compute_mask(frames, TIME_MASK)), TIME_MASK)
    # Every step masked: averaged probabilities taken as 0, perplexity G, a finite loss and gradient.
    nothing = np.zeros((3, 7), bool)
    _, perplexity = layer(FRAMES, mask=nothing, training=True, return_perplexity=True)
    assert float(to_numpy(perplexity)) == pytest.approx(2.0)
    loss_gradient = gradient(lambda x: keras.ops.sum(layer(x, mask=nothing, training=True)), FRAMES)
    assert np.isfinite(loss_gradient).all()


def test_diversity_loss_is_added_in_training_only_with_its_weight():
    layer = built(seed=7, diversity_weight=0.25)
    layer(FRAMES)
    assert not layer.losses
    _, perplexity = layer(FRAMES, training=True, return_perplexity=True)
    (loss,) = layer.losses
    assert float(to_numpy(loss)) == pytest.approx(0.25 * (32 - float(to_numpy(perplexity))) / 32, rel=1e-6)
    silent = built(seed=7, diversity_weight=0.0)
    silent(FRAMES, training=True)
    assert not silent.losses


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Gradients do not exist for variables")  # the codebook: the loss ignores it
def test_the_diversity_loss_alone_spreads_codebook_usage_in_fit():
    # A collapsed start (every frame's logits favour code 0) and a loss of 0 besides the diversity loss:
    # fit must raise the soft perplexity (what the loss maximises) and the number of codes in use.
    rng = np.random.default_rng(8)
    frames = rng.normal(size=(64, 10, 8)).astype("float32")
    layer = keras_gumbel.GumbelVectorQuantizer(2, 16, 12, diversity_weight=1.0, seed=8)
    inputs = keras.Input((10, 8))
    model = keras.Model(inputs, layer(inputs))
    bias = np.zeros(32, "float32")
    bias[[0, 16]] = 8.0
    layer.bias.assign(bias)
    layer.kernel.assign(to_numpy(layer.kernel) * 0.1)
    _, before = layer(frames, training=True, return_perplexity=True)
    _, codes_before = layer(frames, return_perplexity=True)
    model.compile(keras.optimizers.Adam(0.05), loss=lambda y, p: keras.ops.zeros_like(p[..., 0]))
    model.fit(frames, np.zeros((64, 10, 12), "float32"), batch_size=16, epochs=15, verbose=0)
    _, after = layer(frames, training=True, return_perplexity=True)
    _, codes_after = layer(frames, return_perplexity=True)
    assert float(to_numpy(after)) > 4 * float(to_numpy(before))
    assert float(to_numpy(codes_after)) > 4 * float(to_numpy(codes_before))


# ----------------------------------------------------------------------------- temperature


WAV2VEC2 = keras_gumbel.schedules.ExponentialDecay(2.0, rate=-math.log(0.999995), minimum=0.5)
STEPS = [0, 1, 7, 1000, 100_000, 277_257, 277_258, 277_259, 1_000_000]


def test_exponential_decay_is_wav2vec2_schedule_exactly():
    # fairseq: max(max_temp * decay**num_updates, min_temp) with (2, 0.5, 0.999995); it reaches 0.5 at
    # step log(4) / -log(0.999995) = 277,258.2.
    for step in STEPS:
        assert WAV2VEC2(step) == pytest.approx(max(2 * 0.999995**step, 0.5), rel=1e-12, abs=0)
    values = to_numpy(WAV2VEC2(keras.ops.convert_to_tensor(STEPS)))
    np.testing.assert_allclose(values, [max(2 * 0.999995**s, 0.5) for s in STEPS], rtol=2e-6)


def test_temperature_annealing_sets_the_quantizer_temperature_in_fit():
    layer = keras_gumbel.GumbelVectorQuantizer(2, 4, 4, seed=9)
    inputs = keras.Input((5, 3))
    model = keras.Model(inputs, layer(inputs))
    model.compile(keras.optimizers.SGD(0.01), "mse")
    schedule = keras_gumbel.schedules.ExponentialDecay(2.0, rate=-math.log(0.9), minimum=0.5)
    x = RNG.normal(size=(32, 5, 3)).astype("float32")
    history = model.fit(
        x,
        np.zeros((32, 5, 4)),
        batch_size=8,
        epochs=2,
        verbose=0,
        callbacks=[keras_gumbel.TemperatureAnnealing(schedule)],
    ).history
    np.testing.assert_allclose(history["temperature"], [schedule(3), schedule(7)], rtol=1e-6)
    assert float(to_numpy(layer.perplexity)) > 0  # the state variable was written by the train step


# ----------------------------------------------------------------------------- round trips and export


def small_model(seed=10):
    inputs = keras.Input((7, 8))
    hidden = keras.layers.Dense(8)(inputs)
    return keras.Model(inputs, keras_gumbel.GumbelVectorQuantizer(2, 16, 12, seed=seed)(hidden))


def test_keras_file_round_trip(tmp_path):
    model = small_model()
    model.compile("adam", "mse")
    model.fit(FRAMES, np.zeros((3, 7, 12), "float32"), verbose=0)
    model.layers[-1].temperature.assign(0.8)
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    layer = restored.layers[-1]
    assert float(to_numpy(layer.temperature)) == pytest.approx(0.8)
    assert float(to_numpy(layer.perplexity)) == pytest.approx(float(to_numpy(model.layers[-1].perplexity)))
    np.testing.assert_array_equal(to_numpy(restored(FRAMES)), to_numpy(model(FRAMES)))
    # The seed-generator state came back too: the next training-time codes agree.
    np.testing.assert_array_equal(to_numpy(restored(FRAMES, training=True)), to_numpy(model(FRAMES, training=True)))


@TF_ONLY
def test_saved_model_export_serves_the_inference_output(tmp_path):
    import tensorflow as tf

    model = small_model()
    model.export(str(tmp_path / "served"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "served"))
    np.testing.assert_array_equal(served.serve(FRAMES).numpy(), model.predict(FRAMES, verbose=0))


@TF_ONLY
@pytest.mark.parametrize("jit_compile", [False, True], ids=["tf.function", "xla"])
def test_compiled_training_calls_give_exact_codes(jit_compile):
    import tensorflow as tf

    layer = built(2, 4, 8, features=8, seed=11)
    layer.codebook.assign(one_hot_codebook(2, 4))
    call = tf.function(lambda x: layer(x, training=True, return_perplexity=True), jit_compile=jit_compile)
    output, perplexity = call(tf.constant(FRAMES))
    codes = output.numpy().reshape(-1, 2, 4)
    assert np.isin(codes, (0.0, 1.0)).all() and (codes.sum(-1) == 1).all()
    _, _, expected = numpy_reference(layer, FRAMES, training=True)
    np.testing.assert_allclose(float(perplexity), expected, rtol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_gives_compute_dtype_codevectors_and_a_float32_perplexity(policy):
    keras.config.set_dtype_policy(policy)
    layer = keras_gumbel.GumbelVectorQuantizer(2, 16, 12, seed=12)
    output, perplexity = layer(FRAMES, training=True, return_perplexity=True)
    assert keras.backend.standardize_dtype(output.dtype) == keras.config.dtype_policy().compute_dtype
    assert keras.backend.standardize_dtype(perplexity.dtype) == "float32"
    assert np.isfinite(to_numpy(keras.ops.cast(output, "float32"))).all()


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"num_groups": 0}, ValueError, "num_groups=0"),
        ({"num_codes": 2.5}, TypeError, "num_codes=2.5"),
        ({"code_dim": 7}, ValueError, "code_dim=7"),
        ({"diversity_weight": -0.1}, ValueError, "diversity_weight=-0.1"),
        ({"temperature": 0.0}, ValueError, "temperature=0.0"),
        ({"seed": "a"}, TypeError, "seed='a'"),
    ],
)
def test_bad_arguments_name_the_argument_and_value(kwargs, error, match):
    arguments = {"num_groups": 2, "num_codes": 4, "code_dim": 6} | kwargs
    with pytest.raises(error, match=match):
        keras_gumbel.GumbelVectorQuantizer(**arguments)


def test_bad_inputs_are_named_errors():
    layer = keras_gumbel.GumbelVectorQuantizer(2, 4, 6)
    with pytest.raises(ValueError, match="rank >= 2"):
        layer(np.ones((5,), "float32"))
    with pytest.raises(TypeError, match="floating-point"):
        keras_gumbel.GumbelVectorQuantizer(2, 4, 6)(np.ones((2, 3, 4), "int32"))
    with pytest.raises(ValueError, match="known feature size"):
        keras_gumbel.GumbelVectorQuantizer(2, 4, 6).build((None, None, None))
