"""The execution-mode matrix: every public op and layer, every mode users run it in.

A *case* is one op or layer, wrapped as a Keras layer that maps logits
[batch, 5] (the last category masked with -inf) to its output, with the
*form* of that output. The form says which properties hold:

| form             | forward values                  | law checked on                       |
| ---------------- | ------------------------------- | ------------------------------------ |
| `one_hot`        | exactly 0/1, rows sum to 1      | the chosen category                  |
| `relaxed`        | on the simplex                  | the argmax (Gumbel-max: same law)    |
| `k_hot`          | exactly 0/1, rows sum to k      | the chosen subset                    |
| `relaxed_k`      | non-negative, rows sum to k     | (a relaxation: none exact)           |
| `indices`        | k distinct valid indices        | the ordered draw without replacement |
| `binary`         | exactly 0/1                     | the frequency of 1 per entry         |
| `relaxed_binary` | in [0, 1]                       | the frequency of y > 1/2 per entry   |
| `log_relaxed`    | <= 0, logsumexp over a row is 0 | the argmax                           |
| `logit_binary`   | finite (masked: -inf)           | the frequency of y > 0 per entry     |
| `gate`           | in [0, 1], exact 0s and 1s      | the frequency of y > 0 per entry     |
| `permutation`    | exactly 0/1, rows and columns   | the permutation                      |
|                  | sum to 1                        |                                      |
| `doubly_stochastic` | non-negative, columns sum to | the assignment of log(y) (the same   |
|                  | 1, rows approach 1              | law as the permutation's)            |

Log-space forms hold `-inf` (not 0) for the masked category, and its
gradient is not 0 (`d log_softmax_j / d logits_j = 1 - p_j`).

Permutation forms (Gumbel-Sinkhorn) turn each logits row into the 5 x 5
scores `log_alpha[i, j] = logits[(i + j) % 5]` (`cyclic_scores`): the masked
category forbids the entries with `i + j = 4 (mod 5)`, which must be exactly 0.
Their output is [batch, 5, 5] (`Case.shape`). Their law (Gumbel-Matching: the
maximum-weight assignment of `log_alpha + g`) has no closed form: it is
checked against a NumPy Monte Carlo of the same law, enumerating the 120
permutations (`permutation_law_table`), by a two-sample chi-square.

A *mode* runs a case where users run it: eager, `tf.function`, XLA, what
`model.fit` trains with, `model.predict`, a SavedModel served after
`model.export`, and `jax.jit` / eager PyTorch on those backends.

A new op or layer joins the matrix by adding a `Case` to `CASES`; a new mode
by adding a `Mode` to `MODES`. `test_execution_modes.py` asserts every
property of every case in every mode.
"""

import dataclasses
import functools
import itertools
import pathlib
import tempfile
import warnings
from collections.abc import Callable

import keras
import numpy as np
import scipy.special
from helpers import to_numpy

import keras_gumbel
from keras_gumbel.layers._seed_state import TrackSeedState

BACKEND = keras.backend.backend()

# Four valid categories and one masked one. Bernoulli cases read the row as five independent log-odds.
PROBABILITIES = np.array([0.1, 0.2, 0.3, 0.4])
LOGITS_ROW = np.append(np.log(PROBABILITIES), -np.inf).astype("float32")
MASKED = 4
NUM_ROWS = 20_000  # samples per law check
GRADIENT_ROWS = 64
TEMPERATURE = 0.5


def logits(num_rows=NUM_ROWS):
    return np.tile(LOGITS_ROW, (num_rows, 1))


def gradient_weights(shape=(LOGITS_ROW.size,)):
    """The upstream gradient: the loss is sum(output * weights)."""
    return np.random.default_rng(0).normal(size=(GRADIENT_ROWS, *shape)).astype("float32")


# Permutation forms: scores[i, j] = logits[(i + j) % 5]; the masked category forbids i + j = 4 (mod 5).
CYCLIC = (np.arange(LOGITS_ROW.size)[:, None] + np.arange(LOGITS_ROW.size)) % LOGITS_ROW.size
PERMUTATION_FORMS = ("permutation", "doubly_stochastic")
PERMUTATION_SHAPE = CYCLIC.shape


def cyclic_scores(inputs):
    """[batch, 5] logits -> [batch, 5, 5] scores `logits[(i + j) % 5]`."""
    return keras.ops.take(inputs, CYCLIC, axis=1)


class OpLayer(TrackSeedState, keras.layers.Layer):
    """An op as a layer that owns the op's SeedGenerator (so that models, fit and SavedModels can hold it)."""

    def __init__(self, op, seed, **kwargs):
        super().__init__(**kwargs)
        self.op = op
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.built = True

    def call(self, inputs, training=None):
        return self.op(inputs, seed=self.seed_generator)

    def compute_output_spec(self, inputs, training=None):
        return keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)


class TopKLayer(OpLayer):
    def compute_output_spec(self, inputs, training=None):
        return keras.KerasTensor((inputs.shape[0], 2), dtype="int32")


class PermutationOpLayer(OpLayer):
    """A permutation op on the cyclic scores of the logits."""

    def call(self, inputs, training=None):
        return self.op(cyclic_scores(inputs), seed=self.seed_generator)

    def compute_output_spec(self, inputs, training=None):
        return keras.KerasTensor((inputs.shape[0], *PERMUTATION_SHAPE), dtype=self.compute_dtype)


class OnCyclicScores(keras.layers.Layer):
    """A permutation layer (`GumbelSinkhorn`) on the cyclic scores of the logits."""

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer

    def build(self, input_shape):
        self.built = True

    def call(self, inputs, training=None):
        return self.layer(cyclic_scores(inputs), training=training)

    def compute_output_spec(self, inputs, training=None):
        return keras.KerasTensor((inputs.shape[0], *PERMUTATION_SHAPE), dtype=self.compute_dtype)


class AttentionAsSampler(keras.layers.Layer):
    """`GumbelAttention` driven so that its scores are the logits and its output is its weights.

    query = 1, keys = logits (d = 1, so scores = keys . query / sqrt(1)), values
    = the identity, and the masked category masked through `mask`.
    """

    def __init__(self, attention, **kwargs):
        super().__init__(**kwargs)
        self.attention = attention

    def build(self, input_shape):
        self.built = True

    def call(self, inputs, training=None):
        valid = keras.ops.isfinite(inputs)
        keys = keras.ops.expand_dims(keras.ops.where(valid, inputs, keras.ops.zeros_like(inputs)), -1)
        query = keras.ops.ones_like(inputs[:, :1])
        size = inputs.shape[-1]
        values = keras.ops.broadcast_to(keras.ops.eye(size), (keras.ops.shape(inputs)[0], size, size))
        return self.attention(query, keys, values, mask=valid, training=training)

    def compute_output_spec(self, inputs, training=None):
        return keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)


class QuantizerAsSampler(keras.layers.Layer):
    """`GumbelVectorQuantizer` driven so that its logits are the inputs and its output is its one-hot codes.

    One group of five codes, an identity projection (the logits are the inputs) and an identity codebook
    (the output is the chosen code's one-hot). The masked category's `-inf` becomes -1e30 before the
    projection (`-inf * 0` would be NaN): never chosen, probability exactly 0, no gradient. No diversity
    loss, so that `fit` trains only on the sample.
    """

    def __init__(self, quantizer, **kwargs):
        super().__init__(**kwargs)
        self.quantizer = quantizer

    def build(self, input_shape):
        self.quantizer.build(input_shape)  # its weights exist before `jax.jit` reads the state
        self.built = True

    def call(self, inputs, training=None):
        finite = keras.ops.where(keras.ops.isfinite(inputs), inputs, keras.ops.full_like(inputs, -1e30))
        return self.quantizer(finite, training=training)

    def compute_output_spec(self, inputs, training=None):
        return keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)


@dataclasses.dataclass(frozen=True)
class Case:
    """One op or layer. `make(seed, sample_at_inference)` returns a fresh layer from logits to output."""

    name: str
    make: Callable
    form: str
    is_layer: bool = False  # has an inference (training=False) output of its own
    k: int = 1
    temperature: float = TEMPERATURE
    differentiable: bool = True
    shape: tuple = (LOGITS_ROW.size,)  # the output's shape, per row of logits
    inference_form: str = ""  # the form of a layer's inference output, if not `form`

    def draw_form(self, mode):
        """The form of the draws a mode takes (inference outputs, with noise, where it samples at inference)."""
        return self.inference_form if self.inference_form and not mode.samples_in_training else self.form

    def expected_inference(self, logits):
        """What a layer returns at inference (no noise), from the logits."""
        if (self.inference_form or self.form) in PERMUTATION_FORMS:
            return _expected_permutation_inference(self.inference_form or self.form, logits, self.temperature)
        valid = logits[:, :MASKED]
        if self.form == "one_hot":
            return np.eye(logits.shape[1], dtype="float32")[logits.argmax(-1)]
        if self.form == "relaxed":
            scaled = valid / self.temperature
            weights = np.exp(scaled - scaled.max(-1, keepdims=True))
            return np.concatenate([weights / weights.sum(-1, keepdims=True), np.zeros_like(logits[:, MASKED:])], -1)
        if self.form == "binary":
            return (logits > 0).astype("float32")
        if self.form == "relaxed_binary":
            return 1 / (1 + np.exp(-logits / self.temperature))
        if self.form == "log_relaxed":
            with np.errstate(divide="ignore"):
                return np.log(Case("", None, "relaxed", temperature=self.temperature).expected_inference(logits))
        if self.form == "logit_binary":
            return logits / self.temperature
        raise ValueError(self.form)


def _expected_permutation_inference(form, logits, temperature, num_iterations=20):
    scores = logits[:, CYCLIC].astype(np.float64)
    if form == "permutation":
        return np.eye(CYCLIC.shape[0], dtype="float32")[PERMUTATIONS[_best_permutation(scores)]]
    return _sinkhorn(scores, temperature, num_iterations)


def _sinkhorn(scores, temperature, num_iterations):
    """Mena et al.'s `sinkhorn` (google/gumbel_sinkhorn, sinkhorn_ops.py) in float64 NumPy."""
    x = scores / temperature
    for _ in range(num_iterations):
        x = x - scipy.special.logsumexp(x, axis=-1, keepdims=True)
        x = x - scipy.special.logsumexp(x, axis=-2, keepdims=True)
    return np.exp(x)


def _op(name, form, function, **kwargs):
    return Case(name, lambda seed, sample_at_inference=False: OpLayer(function, seed), form, **kwargs)


def _layer(name, form, layer_class, **options):
    def make(seed, sample_at_inference=False):
        return layer_class(seed=seed, sample_at_inference=sample_at_inference, **options)

    return Case(name, make, form, is_layer=True, temperature=options.get("temperature", 1.0))


def _attention(name, form, hard):
    def make(seed, sample_at_inference=False):
        return AttentionAsSampler(
            keras_gumbel.GumbelAttention(
                hard=hard, temperature=TEMPERATURE, seed=seed, sample_at_inference=sample_at_inference
            )
        )

    return Case(name, make, form, is_layer=True)


def _quantizer(name):
    def make(seed, sample_at_inference=False):
        size = LOGITS_ROW.size
        return QuantizerAsSampler(
            keras_gumbel.GumbelVectorQuantizer(
                num_groups=1,
                num_codes=size,
                code_dim=size,
                temperature=TEMPERATURE,
                diversity_weight=0.0,
                seed=seed,
                sample_at_inference=sample_at_inference,
                kernel_initializer="identity",
                codebook_initializer="identity",
            )
        )

    return Case(name, make, "one_hot", is_layer=True)


def _beam_search_top_2(logits, seed):
    """`estimators.sample_without_replacement` by stochastic beam search over two variables whose joint law is the
    first's: the logits, and a variable with one possible class (its other logits -inf). [B, 2] first-variable classes.
    """
    single = keras.ops.concatenate(
        [keras.ops.zeros_like(logits[:, :1]), keras.ops.full_like(logits[:, 1:], -np.inf)], axis=-1
    )
    draws = keras_gumbel.estimators.sample_without_replacement(keras.ops.stack([logits, single], 1), 2, seed=seed)
    return keras.ops.transpose(draws[..., 0])


def _permutation_op(name, form, function):
    return Case(
        name,
        lambda seed, sample_at_inference=False: PermutationOpLayer(function, seed),
        form,
        shape=PERMUTATION_SHAPE,
    )


def _sinkhorn_layer(name, form, inference_form="", **options):
    def make(seed, sample_at_inference=False):
        return OnCyclicScores(
            keras_gumbel.GumbelSinkhorn(
                temperature=TEMPERATURE, seed=seed, sample_at_inference=sample_at_inference, **options
            )
        )

    return Case(name, make, form, is_layer=True, shape=PERMUTATION_SHAPE, inference_form=inference_form)


ops = keras_gumbel.ops
T = TEMPERATURE
CASES = [
    _op("ops.gumbel_softmax", "relaxed", functools.partial(ops.gumbel_softmax, temperature=T)),
    _op("ops.gumbel_softmax(hard)", "one_hot", functools.partial(ops.gumbel_softmax, temperature=T, hard=True)),
    _op("ops.gumbel_rao", "one_hot", functools.partial(ops.gumbel_rao, temperature=T, num_draws=4)),
    _op("ops.reinmax", "one_hot", functools.partial(ops.reinmax, temperature=1.0)),
    Case(
        "ops.gumbel_top_k",
        lambda seed, sample_at_inference=False: TopKLayer(functools.partial(ops.gumbel_top_k, k=2), seed),
        "indices",
        k=2,
        differentiable=False,
    ),
    Case(
        "estimators.sample_without_replacement",
        lambda seed, sample_at_inference=False: TopKLayer(_beam_search_top_2, seed),
        "indices",
        k=2,
        differentiable=False,
    ),
    _op("ops.relaxed_top_k", "relaxed_k", functools.partial(ops.relaxed_top_k, k=2, temperature=T), k=2),
    _op("ops.relaxed_top_k(hard)", "k_hot", functools.partial(ops.relaxed_top_k, k=2, temperature=T, hard=True), k=2),
    _op("ops.log_gumbel_softmax", "log_relaxed", functools.partial(ops.log_gumbel_softmax, temperature=T)),
    _op("ops.relaxed_bernoulli", "relaxed_binary", functools.partial(ops.relaxed_bernoulli, temperature=T)),
    _op("ops.relaxed_bernoulli_logits", "logit_binary", functools.partial(ops.relaxed_bernoulli_logits, temperature=T)),
    _op("ops.relaxed_bernoulli(hard)", "binary", functools.partial(ops.relaxed_bernoulli, temperature=T, hard=True)),
    _op("ops.hard_concrete", "gate", functools.partial(ops.hard_concrete, temperature=T)),
    _layer("GumbelSoftmax", "relaxed", keras_gumbel.GumbelSoftmax, temperature=T),
    _layer("GumbelSoftmax(log_space)", "log_relaxed", keras_gumbel.GumbelSoftmax, temperature=T, log_space=True),
    _layer("StraightThroughGumbel", "one_hot", keras_gumbel.StraightThroughGumbel, temperature=T),
    _layer(
        "StraightThroughGumbel(gumbel_rao)",
        "one_hot",
        keras_gumbel.StraightThroughGumbel,
        temperature=T,
        gradient_estimator="gumbel_rao",
        num_draws=4,
    ),
    _layer(
        "StraightThroughGumbel(reinmax)", "one_hot", keras_gumbel.StraightThroughGumbel, gradient_estimator="reinmax"
    ),
    _layer("RelaxedBernoulli", "relaxed_binary", keras_gumbel.RelaxedBernoulli, temperature=T),
    _layer("RelaxedBernoulli(log_space)", "logit_binary", keras_gumbel.RelaxedBernoulli, temperature=T, log_space=True),
    _layer("RelaxedBernoulli(hard)", "binary", keras_gumbel.RelaxedBernoulli, hard=True),
    _attention("GumbelAttention", "relaxed", False),
    _attention("GumbelAttention(hard)", "one_hot", True),
    _quantizer("GumbelVectorQuantizer"),
    _permutation_op("ops.gumbel_sinkhorn", "doubly_stochastic", functools.partial(ops.gumbel_sinkhorn, temperature=T)),
    _permutation_op(
        "ops.gumbel_sinkhorn(hard)", "permutation", functools.partial(ops.gumbel_sinkhorn, temperature=T, hard=True)
    ),
    _sinkhorn_layer("GumbelSinkhorn", "doubly_stochastic", inference_form="permutation"),
    _sinkhorn_layer("GumbelSinkhorn(hard)", "permutation", hard=True),
    _sinkhorn_layer("GumbelSinkhorn(hard_at_inference=False)", "doubly_stochastic", hard_at_inference=False),
]


# ---------------------------------------------------------------------------------------------------------------
# Modes. Each returns, for a fresh layer: two consecutive training-time samples, the gradient of
# sum(output * weights) with respect to the logits (or None where the mode has none), and two
# consecutive inference outputs.


@dataclasses.dataclass
class Run:
    draws: list  # two consecutive samples
    gradient: object  # [GRADIENT_ROWS, 5] or None
    inference: list  # two consecutive inference outputs of a layer (None for ops)


class Mode:
    name = ""
    backends = ("tensorflow",)
    samples_in_training = True  # False: samples come from a layer built with sample_at_inference=True
    has_gradient = True
    slow = False

    def run(self, case, seed):
        """Two samples, the gradient and two inference outputs of a fresh layer."""
        sampler = case.make(seed, sample_at_inference=case.is_layer and not self.samples_in_training)
        draws = self.draws(sampler, logits(), training=self.samples_in_training)
        gradient = None
        if self.has_gradient and case.differentiable:
            gradient = self.gradient(case.make(seed), logits(GRADIENT_ROWS), gradient_weights(case.shape))
        inference = None
        if case.is_layer:
            inference = self.draws(case.make(seed), logits(GRADIENT_ROWS), training=False)
        return Run(draws, gradient, inference)

    def replay(self, case, seed):
        """The two samples of another fresh layer with the same seed."""
        sampler = case.make(seed, sample_at_inference=case.is_layer and not self.samples_in_training)
        return self.draws(sampler, logits(), training=self.samples_in_training)


def _tf_function(jit_compile):
    import tensorflow as tf

    return functools.partial(tf.function, jit_compile=jit_compile, reduce_retracing=True)


class Eager(Mode):
    name = "eager"
    backends = ("tensorflow", "jax", "torch")

    def compile(self, function):
        return function

    def draws(self, layer, x, training):
        call = self.compile(lambda x: layer(x, training=training))
        return [to_numpy(call(x)) for _ in range(2)]

    def gradient(self, layer, x, weights):
        if BACKEND == "tensorflow":
            import tensorflow as tf

            @self.compile
            def gradient(x):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    loss = tf.reduce_sum(layer(x, training=True) * weights)
                return tape.gradient(loss, x)

            return to_numpy(gradient(tf.constant(x)))
        from helpers import gradient

        return gradient(lambda v: keras.ops.sum(keras.ops.multiply(layer(v, training=True), weights)), x)


class Graph(Eager):
    name = "tf.function"
    backends = ("tensorflow",)

    def compile(self, function):
        return _tf_function(False)(function)


class XLA(Eager):
    name = "xla"
    backends = ("tensorflow",)
    slow = True

    def compile(self, function):
        return _tf_function(True)(function)


class JaxJit(Mode):
    """`jax.jit` over the layer's `stateless_call`, carrying its state (the seed) from call to call."""

    name = "jax.jit"
    backends = ("jax",)

    def draws(self, layer, x, training):
        import jax

        layer.build(x.shape)
        trainable = [v.value for v in layer.trainable_variables]
        state = [v.value for v in layer.non_trainable_variables]
        call = jax.jit(lambda state, x: layer.stateless_call(trainable, state, x, training=training))
        draws = []
        for _ in range(2):
            output, state = call(state, x)
            draws.append(np.asarray(output))
        return draws

    def gradient(self, layer, x, weights):
        import jax

        layer.build(x.shape)
        trainable = [v.value for v in layer.trainable_variables]
        state = [v.value for v in layer.non_trainable_variables]

        def loss(x):
            output, _ = layer.stateless_call(trainable, state, x, training=True)
            return (output * weights).sum()

        return np.asarray(jax.jit(jax.grad(loss))(x))


class _LogitsWeight(keras.layers.Layer):
    """Holds the logits as a weight (so that `fit` computes their gradient); ignores its input."""

    def __init__(self, value, trainable, **kwargs):
        super().__init__(**kwargs)
        self.value = self.add_weight(
            shape=value.shape, initializer=keras.initializers.Constant(value), trainable=trainable
        )

    def call(self, inputs):
        return keras.ops.convert_to_tensor(self.value)


class _Record(keras.layers.Layer):
    """Passes its input through and, in training, keeps it in a variable (what `fit` trained with)."""

    def __init__(self, shape, dtype, **kwargs):
        super().__init__(**kwargs)
        self.record = self.add_weight(shape=shape, initializer="zeros", trainable=False, dtype=dtype)

    def call(self, inputs, training=None):
        if training:
            self.record.assign(keras.ops.cast(inputs, self.record.dtype))
        return inputs


class Fit(Mode):
    """What `model.fit` trains with: the sample recorded inside the train step; the gradient from one SGD step."""

    name = "fit"
    slow = True

    def run(self, case, seed):
        draws = self._fit(case, seed, logits(), epochs=2)[0]
        gradient = None
        if case.differentiable:
            gradient = self._fit(case, seed, logits(GRADIENT_ROWS), epochs=1, weights=gradient_weights(case.shape))[1]
        return Run(draws, gradient, None)

    def replay(self, case, seed):
        return self._fit(case, seed, logits(), epochs=2)[0]

    def _fit(self, case, seed, values, epochs, weights=None):
        num_rows = values.shape[0]
        output_dtype = "int32" if case.form == "indices" else "float32"
        output_shape = (case.k,) if case.form == "indices" else case.shape
        inputs = keras.Input((1,), batch_size=num_rows)
        source = _LogitsWeight(values, trainable=case.differentiable)
        record = _Record((num_rows, *output_shape), output_dtype)
        output = record(case.make(seed)(source(inputs)))
        if case.form == "indices":
            output = keras.ops.cast(output, "float32")
        model = keras.Model(inputs, output)
        model.compile(keras.optimizers.SGD(1.0), loss=_WEIGHTED_SUM)
        targets = np.zeros((num_rows, *output_shape), "float32") if weights is None else weights
        recorded = []
        callback = keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: recorded.append(to_numpy(record.record)))
        before = to_numpy(source.value)
        with warnings.catch_warnings():
            # A case without a gradient (integer indices) trains no weight, and Keras says so.
            warnings.filterwarnings("ignore", "The model does not have any trainable weights")
            self._fit_once(model, num_rows, targets, epochs, callback)
        after = to_numpy(source.value)
        with np.errstate(invalid="ignore"):
            # A masked logit (-inf) that stays -inf had a zero (or finite) gradient; a NaN one turns it NaN.
            gradient = np.where(np.isfinite(before), before - after, np.where(after == before, 0.0, np.nan))
        return recorded, gradient

    @staticmethod
    def _fit_once(model, num_rows, targets, epochs, callback):
        model.fit(
            np.zeros((num_rows, 1), "float32"),
            targets,
            batch_size=num_rows,
            epochs=epochs,
            shuffle=False,
            verbose=0,
            callbacks=[callback],
        )


class _WeightedSum(keras.losses.Loss):
    def call(self, targets, output):
        return keras.ops.sum(keras.ops.multiply(targets, output), axis=-1)


# Summed over the batch, so that the step's change of each logit is its own gradient.
_WEIGHTED_SUM = _WeightedSum(reduction="sum")


class Predict(Mode):
    """`model.predict` (inference: a layer samples only with `sample_at_inference=True`)."""

    name = "predict"
    samples_in_training = False
    has_gradient = False
    slow = True

    def draws(self, layer, x, training):
        model = _model_of(layer)
        return [model.predict(x, batch_size=x.shape[0], verbose=0) for _ in range(2)]


class Served(Mode):
    """`model.export` then `tf.saved_model.load(...).serve`, as a serving system runs it."""

    name = "savedmodel"
    samples_in_training = False
    has_gradient = False
    slow = True

    def draws(self, layer, x, training):
        import tensorflow as tf

        model = _model_of(layer)
        with tempfile.TemporaryDirectory() as directory:
            path = str(pathlib.Path(directory) / "served")
            model.export(path, verbose=False)
            served = tf.saved_model.load(path)
            return [served.serve(x).numpy() for _ in range(2)]


def _model_of(layer):
    inputs = keras.Input((LOGITS_ROW.size,))
    return keras.Model(inputs, layer(inputs))


MODES = [Eager(), Graph(), XLA(), Fit(), Predict(), Served(), JaxJit()]


@functools.cache
def run(case_name, mode_name, seed):
    case = next(case for case in CASES if case.name == case_name)
    mode = next(mode for mode in MODES if mode.name == mode_name)
    return mode.run(case, seed)


def exact_probabilities(form, k):
    """The exact law of what the law check reads: {outcome: probability} over the four valid categories."""
    p = PROBABILITIES
    if form in ("one_hot", "relaxed", "log_relaxed"):
        return {i: p[i] for i in range(4)}
    if form == "indices":  # ordered draws without replacement
        return {(i, j): p[i] * p[j] / (1 - p[i]) for i in range(4) for j in range(4) if i != j}
    if form == "k_hot":  # unordered pairs
        return {(i, j): p[i] * p[j] / (1 - p[i]) + p[j] * p[i] / (1 - p[j]) for i in range(4) for j in range(i + 1, 4)}
    if form in ("binary", "relaxed_binary", "logit_binary"):  # P(y = 1) per entry: sigmoid(log p)
        return {i: p[i] / (1 + p[i]) for i in range(4)} | {MASKED: 0.0}
    if form == "gate":  # P(y > 0) = sigmoid(log p - T log(-low / high)), stretch (-0.1, 1.1): p 11^T / (1 + p 11^T)
        shifted = p * 11.0**TEMPERATURE
        return {i: shifted[i] / (1 + shifted[i]) for i in range(4)} | {MASKED: 0.0}
    raise ValueError(form)


def masked_outputs(case, output):
    """The entries of an output [rows, ...] that the masked category forbids (exactly 0, or -inf in log space)."""
    return output[:, CYCLIC == MASKED] if case.shape == PERMUTATION_SHAPE else output[:, MASKED]


PERMUTATIONS = np.array(list(itertools.permutations(range(LOGITS_ROW.size))))
NUM_REFERENCE_DRAWS = 200_000


def _best_permutation(scores):
    """The index in PERMUTATIONS of the maximum-weight assignment of each [5, 5] matrix (-inf forbids)."""
    best = []
    for chunk in np.array_split(scores, max(1, len(scores) // 20_000)):
        with np.errstate(invalid="ignore"):
            totals = chunk[:, np.arange(LOGITS_ROW.size), PERMUTATIONS].sum(-1)  # [rows, 120]
        best.append(totals.argmax(-1))
    return np.concatenate(best)


@functools.cache
def _reference_permutation_counts():
    """Gumbel-Matching by enumeration: counts of the best permutation of cyclic scores + g over 200,000 draws."""
    scores = LOGITS_ROW[CYCLIC].astype(np.float64)
    noise = np.random.default_rng(20_260_514).gumbel(size=(NUM_REFERENCE_DRAWS, *CYCLIC.shape))
    return np.bincount(_best_permutation(scores + noise), minlength=len(PERMUTATIONS))


def permutation_law_table(form, sample):
    """The 2 x outcomes contingency table of a sample's permutations against the reference draws.

    A `permutation` sample's rows are read as the permutation (the column of each row's 1); a
    `doubly_stochastic` one through the maximum-weight assignment of its log (the same law: each
    Sinkhorn round adds a term per row and one per column to it). Permutations with fewer than 5
    expected draws in the sample are pooled into one outcome (the chi-square approximation's rule).
    """
    if form == "permutation":
        codes = {tuple(p): index for index, p in enumerate(PERMUTATIONS.tolist())}
        seen = np.array([codes[tuple(row)] for row in sample.argmax(-1).tolist()])
    else:
        with np.errstate(divide="ignore"):
            seen = _best_permutation(np.log(sample.astype(np.float64)))
    ours = np.bincount(seen, minlength=len(PERMUTATIONS))
    reference = _reference_permutation_counts()
    assert ours[reference == 0].sum() == 0, "a permutation the reference never draws (a forbidden entry?)"
    common = reference * len(sample) / NUM_REFERENCE_DRAWS >= 5
    rare = ~common & (reference > 0)  # pooled; permutations the reference never draws (forbidden) are left out
    table = np.stack([ours[common], reference[common]])
    if rare.any():
        table = np.concatenate([table, [[ours[rare].sum()], [reference[rare].sum()]]], axis=1)
    return table


ROW_ERROR_FLOOR = 1e-5  # float32 rounding of a row sum is below this; errors under it count as converged


def sinkhorn_row_errors(sample):
    """Per draw, how far its rows' sums are from 1 (Sinkhorn ends on the columns), floored at float32's rounding."""
    return np.maximum(np.abs(sample.astype(np.float64).sum(-1) - 1).max(-1), ROW_ERROR_FLOOR)


@functools.cache
def reference_sinkhorn_row_errors(temperature, num_iterations=20):
    """`sinkhorn_row_errors` of a float64 NumPy Sinkhorn (Mena et al.'s) on 20,000 draws of the same law."""
    scores = LOGITS_ROW[CYCLIC].astype(np.float64)
    noise = np.random.default_rng(20_260_515).gumbel(size=(NUM_ROWS, *CYCLIC.shape))
    return sinkhorn_row_errors(_sinkhorn(scores + noise, temperature, num_iterations))


def outcomes(form, sample):
    """What the law check reads from a sample: the outcome of each row (or, binary, the 1s per entry)."""
    if form in ("one_hot", "relaxed", "log_relaxed"):
        return sample.argmax(-1)
    if form == "indices":
        return [tuple(row) for row in sample.tolist()]
    if form == "k_hot":
        return [tuple(np.flatnonzero(row)) for row in sample]
    if form in ("binary", "relaxed_binary"):
        return sample > 0.5
    if form == "gate":
        return sample > 0
    if form == "logit_binary":
        return sample > 0
    raise ValueError(form)
