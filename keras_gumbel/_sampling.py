"""The kernels the public ops and the layers share: noise, relaxed and exact samples, custom gradients.

Private: `keras_gumbel.ops` holds the public functions, which check their
arguments and call these. Everything here is written with `keras.ops`, with
`_backend` for the few backend-specific routes.

- `prepare`, `compute_dtype_for`, `check_temperature`: arguments as the kernels take them.
- `floored_temperature`, `inverse_temperature`: the temperature as every kernel and layer applies it, at least
  `_validation.MIN_TEMPERATURE`.
- `check_seed`, `log_exponential`, `perturb`, `derived_seed`: the Gumbel noise; `gumbel_from_uniform`,
  `logistic_from_uniform`, `gumbel_given_argmax`: the noise from given uniforms (the estimators draw their own),
  and the Gumbels conditioned on their argmax (Gumbel-Rao, REBAR, RELAX).
- `step`, `one_hot_of_argmax`: the hard value of a perturbed logit or of perturbed logits, by selects.
- `categorical`, `bernoulli`: a relaxed or exact sample (or, without noise,
  the deterministic output the layers give at inference).
- `hard_concrete`, `hard_concrete_tail`: the Hard Concrete gate (the binary Concrete sample stretched and
  clipped) and its closed-form probability of passing a threshold (0: of being non-zero).
- `one_hot_of_argmax`, `with_softmax_gradient`, `with_gradient_of`,
  `custom_gradient`, `softmax_jvp`: exact forwards built from selects, with
  the gradient attached by one custom-gradient helper.
- `log_one_minus_softmax`, `top_k_arguments`: for the relaxed k-hot.
"""

import math

import keras
from keras import ops

from keras_gumbel import _backend
from keras_gumbel import _validation


def log_one_minus_softmax(scaled, log_softmax):
    """`log(1 - softmax(scaled))` along the last axis, with a bounded gradient.

    `log(1 - p)` written as is has the gradient `-1 / (1 - p)`, which explodes
    as a category is fully taken (p -> 1: 1e10 at temperature 1e-4, infinite
    once cast to float16). Only the largest entry can have p > 1/2; for it,
    `log(1 - p_max) = logsumexp(the others) - logsumexp(all)`, whose gradient
    is a difference of two softmaxes. The others use `log1p(-p)`, p <= 1/2.
    The result is kept >= log(tiny) (finite where nothing is left to take).
    """
    num_classes = scaled.shape[-1]
    if num_classes is None:
        num_classes = ops.shape(scaled)[-1]
    is_max = ops.cast(ops.one_hot(_backend.argmax(scaled, -1), num_classes, dtype="int32"), "bool")
    others = ops.where(is_max, ops.full_like(scaled, -math.inf), scaled)
    # A row with one finite entry has no others: a stand-in row keeps the gradient finite (unused below).
    any_other = ops.isfinite(_backend.max(others, axis=-1, keepdims=True))
    others = ops.where(any_other, others, ops.zeros_like(scaled))
    log_rest = ops.subtract(
        ops.logsumexp(others, axis=-1, keepdims=True), ops.logsumexp(scaled, axis=-1, keepdims=True)
    )
    floor = math.log(_backend.tiny(scaled.dtype))
    log_rest = ops.where(any_other, log_rest, ops.full_like(log_rest, floor))
    log_not_max = ops.log1p(ops.negative(ops.exp(ops.minimum(log_softmax, math.log(0.5)))))
    return ops.maximum(ops.where(is_max, log_rest, log_not_max), floor)


def top_k_arguments(logits, k):
    logits, _, out_dtype = prepare(logits)
    if _validation.rank(logits) == 0:
        raise ValueError(_validation.invalid("logits", "a tensor of rank >= 1 (categories on the last axis)", logits))
    num_classes = logits.shape[-1]
    k = _validation.check_int("k", k, minimum=1)
    if num_classes is not None and k > num_classes:
        raise ValueError(_validation.invalid("k", f"at most the number of categories ({num_classes})", k))
    return logits, k, out_dtype


def bernoulli(logits, temperature, hard, seed, add_noise, log_space=False, differentiable=True):
    """The computation behind `relaxed_bernoulli` and `RelaxedBernoulli` (arguments checked).

    `log_space=True` returns the relaxed sample's logit, `(logits + L) / temperature`. `differentiable=False`
    (the layers at inference) gives a hard sample no gradient: the same values, without the custom gradient.
    """
    logits, _, out_dtype = prepare(logits)
    if add_noise:
        uniform = _backend.uniform_positive(ops.shape(logits), seed=seed, dtype=logits.dtype)
        logits = _backend.add(logits, logistic_from_uniform(uniform, exportable=_backend.sampling_inference()))
    scaled = ops.multiply(logits, inverse_temperature(temperature, logits.dtype))
    if log_space:
        return ops.cast(scaled, out_dtype)
    if not hard:
        return ops.cast(ops.sigmoid(scaled), out_dtype)
    # 1[logits + L > 0] whatever the temperature (NaN stays NaN), by selects only.
    hard_value = step(logits)
    if not differentiable:
        # At inference: no custom gradient for exporters to trip on (see `categorical`).
        return ops.cast(hard_value, out_dtype)

    def grad(scaled, upstream):
        y = ops.sigmoid(scaled)
        return ops.multiply(upstream, ops.multiply(y, ops.subtract(1.0, y)))

    return ops.cast(custom_gradient(hard_value, grad)(scaled), out_dtype)


def hard_concrete(log_alpha, temperature, stretch, seed, add_noise):
    """The computation behind `ops.hard_concrete` and `HardConcreteGate` (arguments checked).

    `add_noise`: the sample `clip(s * (high - low) + low, 0, 1)`, `s` the binary Concrete sample of
    `relaxed_bernoulli(log_alpha, temperature)` (the same kernel, `bernoulli`); without it, the deterministic gate
    `clip(sigmoid(log_alpha) * (high - low) + low, 0, 1)` (Louizos et al.'s test-time estimator). The clip gives exact
    0s and 1s forward and, where it clips, a zero gradient.
    """
    low, high = stretch
    log_alpha, _, out_dtype = prepare(log_alpha)
    if add_noise:
        relaxed = bernoulli(log_alpha, temperature, hard=False, seed=seed, add_noise=True)
    else:
        relaxed = ops.sigmoid(log_alpha)
    stretched = ops.add(ops.multiply(relaxed, high - low), low)
    return ops.cast(ops.clip(stretched, 0.0, 1.0), out_dtype)


def hard_concrete_tail(log_alpha, temperature, stretch, threshold=0.0):
    """`P(gate > threshold)` of Hard Concrete gates, in closed form, for thresholds in [0, 1) (arguments checked).

    The gate passes `v` when the relaxed sample passes `c = (v - low) / (high - low)`, i.e. when
    `(log_alpha + L) / temperature > logit(c)`: `P = sigmoid(log_alpha - temperature * logit(c))`. At `v = 0`,
    `logit(c) = log(-low / high)`: the probability that the gate is non-zero. `threshold` broadcasts against
    `log_alpha` (a grid of them gives the tail to integrate for the mean gate).
    """
    low, high = stretch
    log_alpha, _, out_dtype = prepare(log_alpha)
    temperature = floored_temperature(temperature, log_alpha.dtype)
    c = ops.divide(ops.subtract(ops.cast(threshold, log_alpha.dtype), low), high - low)
    logit_c = ops.subtract(ops.log(c), ops.log1p(ops.negative(c)))
    return ops.cast(ops.sigmoid(ops.subtract(log_alpha, ops.multiply(temperature, logit_c))), out_dtype)


def check_temperature(temperature):
    """Checks a number (Python or NumPy); tensors and variables pass through (the kernels floor them)."""
    # On TensorFlow `is_tensor` also counts variables; elsewhere Keras variables are not tensors.
    if ops.is_tensor(temperature) or isinstance(temperature, keras.Variable):
        return temperature
    return _validation.check_temperature(temperature)


def floored_temperature(temperature, dtype="float32", floor=_validation.MIN_TEMPERATURE):
    """The temperature as every kernel and layer applies it: cast to `dtype`, and at least `floor`.

    Numbers are checked against `MIN_TEMPERATURE` before they get here; a
    tensor or a variable cannot be checked inside a compiled function (XLA
    has no asserts), so one below the floor (0, negative, tiny: e.g.
    `layer.temperature.assign(-0.07)`) is read as the floor, the limit of a
    vanishing temperature (the argmax), never as a negative temperature,
    which would turn the samples towards the argmin. Cast first, so that a
    float64 value that rounds to 0 in float32 is floored too. Below the
    floor the temperature gets a zero gradient. A layer that learns its
    temperature passes its own, higher, `floor`. (NaN stays NaN.)
    """
    return ops.maximum(ops.cast(temperature, dtype), floor)


def inverse_temperature(temperature, dtype):
    """`1 / floored_temperature(temperature)`: at most 2**104, so `logits * it` is finite for |logits| < 2**24."""
    return ops.divide(1.0, floored_temperature(temperature, dtype))


def check_seed(seed):
    """An op's `seed` argument, checked and in the form the backend draws with (see `_backend.normalize_seed`)."""
    return _backend.normalize_seed(_validation.check_seed(seed, tensors=True))


def derived_seed(seed):
    """A second seed from a stateless `seed` (an integer or a seed tensor), for a second independent draw.

    An integer gives an integer in [0, 2**31): every backend's seed dtype
    holds it (JAX's is uint32). A seed tensor gives the backend's fold-in.
    """
    if isinstance(seed, int):
        return (seed * 0x9E3779B1 + 0x7F4A7C15) % 2**31
    return _backend.fold_in(seed, 1)


def prepare(logits, axis=None):
    """Logits as a tensor in their compute dtype, with their dtype and the normalised axis."""
    logits = ops.convert_to_tensor(logits)
    out_dtype = keras.backend.standardize_dtype(logits.dtype)
    logits = ops.cast(logits, compute_dtype_for(out_dtype))
    if axis is None:
        _validation.rank(logits)  # a named error for an unknown rank
    else:
        axis = _validation.check_category_axis(logits, axis)
    return logits, axis, out_dtype


def log_exponential(shape, seed, dtype):
    """log(E) for E ~ Exp(1) drawn as -log(u), u on [tiny, 1): always finite; -log(E) is Gumbel(0, 1)."""
    return ops.log(ops.negative(ops.log(_backend.uniform_positive(shape, seed=seed, dtype=dtype))))


def gumbel_from_uniform(uniform):
    """`-log(-log(u))`: Gumbel(0, 1) noise from uniforms on (0, 1) (finite for u on [tiny, 1))."""
    return ops.negative(ops.log(ops.negative(ops.log(uniform))))


def logistic_from_uniform(uniform, exportable=False):
    """`log(u) - log(1 - u)`: Logistic(0, 1) noise from uniforms on (0, 1); u < 1 in floating point, so finite.

    `log1p(-u)` for the second term, or, with `exportable` (a layer sampling at inference), `log(1 - u)`:
    ONNX and LiteRT have no `Log1p` op; the two differ by at most 6e-8 (the rounding of `1 - u`).
    """
    log_one_minus = ops.log(ops.subtract(1.0, uniform)) if exportable else ops.log1p(ops.negative(uniform))
    return ops.subtract(ops.log(uniform), log_one_minus)


def gumbel_given_argmax(logits, chosen, log_exponential, axis=-1):
    """`z = logits + g`, g ~ Gumbel(0, 1), conditioned on `argmax(z) = chosen` (Maddison et al. 2014).

    From exponentials `E` (given as `log(E)`, broadcasting against `logits`),
    with `i` the chosen category:

        z_i = logsumexp(logits) - log(E_i)
        z_j = -logaddexp(log(E_j) - logits_j, log(E_i) - logsumexp(logits))

    The second written as `-(c + softplus(a - c))`: both terms finite (a is
    `+inf` only for a masked, `-inf`, category, whose z is then `-inf`), three
    ops where logaddexp's NaN guards take nine, and a shorter gradient. Used
    by `ops.gumbel_rao` (its conditional draws) and REBAR/RELAX.

    Args:
        logits: Floating tensor, categories on `axis`.
        chosen: The one-hot of the chosen category (0/1), broadcasting against
            `log_exponential`.
        log_exponential: `log(E)`, E ~ Exp(1), with the shape of the draws.
        axis: The category axis of the draws (negative: counted from the end).
    """
    log_normalizer = ops.logsumexp(logits, axis=axis, keepdims=True)
    log_exponential_chosen = ops.sum(ops.multiply(log_exponential, chosen), axis=axis, keepdims=True)
    top = ops.subtract(log_normalizer, log_exponential_chosen)
    chosen_term = ops.subtract(log_exponential_chosen, log_normalizer)
    others = ops.negative(
        ops.add(chosen_term, ops.softplus(ops.subtract(ops.subtract(log_exponential, logits), chosen_term)))
    )
    return ops.where(ops.greater(chosen, 0.5), top, others)


def step(z):
    """`1[z > 0]` in the dtype of `z`, by selects (no arithmetic on the 0s and 1s); NaN stays NaN."""
    return ops.where(ops.isnan(z), z, ops.where(ops.greater(z, 0.0), ops.ones_like(z), ops.zeros_like(z)))


def perturb(logits, seed):
    """logits + g, g ~ Gumbel(0, 1), written as one subtraction."""
    return ops.subtract(logits, log_exponential(ops.shape(logits), seed, logits.dtype))


def softmax_jvp(probabilities, upstream, axis):
    """The softmax Jacobian `diag(p) - p p^T` applied to `upstream`: p * (dy - <dy, p>)."""
    return ops.multiply(
        probabilities, ops.subtract(upstream, ops.sum(ops.multiply(upstream, probabilities), axis=axis, keepdims=True))
    )


def compute_dtype_for(dtype):
    """The dtype the noise and softmax are computed in for logits of `dtype`.

    float16 and bfloat16 cannot hold the noise's range and the softmax's small
    probabilities well, so they are lifted to float32; float64 stays float64.
    """
    dtype = keras.backend.standardize_dtype(dtype)
    if not any(dtype.startswith(kind) for kind in ("float", "bfloat")):
        raise TypeError(
            f"Gumbel-Softmax expects floating-point logits; received logits of dtype {dtype}. "
            "Cast them with `keras.ops.cast(logits, 'float32')` (and if they are class "
            "indices, one-hot encode them or pass log-probabilities instead)."
        )
    return "float64" if dtype == "float64" else "float32"


def categorical(logits, temperature, axis, hard, seed, add_noise, log_space=False, differentiable=True):
    """The computation behind `gumbel_softmax` and the layers (arguments checked).

    Args:
        logits: Floating tensor.
        temperature: Scalar (float, tensor or variable), applied as `floored_temperature`.
        axis: Non-negative category axis.
        hard: One-hot forward with the relaxed gradient if `True`.
        seed: Passed to `gumbel_noise` when `add_noise` is `True`.
        add_noise: If `False`, no noise is added: the result is
            `softmax(logits / temperature)` or `one_hot(argmax(logits))`.
        log_space: Return `log_softmax` instead of `softmax` (not with `hard`).
        differentiable: If `False` (the layers at inference), a hard result
            has no gradient: the same one-hot, without the custom gradient
            that exporters cannot read.
    """
    logits, _, out_dtype = prepare(logits)
    inverse = inverse_temperature(temperature, logits.dtype)
    if add_noise:
        logits = perturb(logits, seed)
    scaled = ops.multiply(logits, inverse)
    if hard and not differentiable:
        # At inference nothing differentiates the choice: no custom gradient, which exporters cannot read (jax2tf's
        # SavedModel, the TorchScript ONNX exporter). The forward is the same.
        result = one_hot_of_argmax(logits, axis)
    elif hard:
        # The choice is argmax(logits + g), whatever the temperature (which only shapes the gradient).
        result = with_softmax_gradient(one_hot_of_argmax(logits, axis), scaled, axis)
    elif log_space:
        result = ops.log_softmax(scaled, axis=axis)
    else:
        result = _backend.softmax(scaled, axis)
    return ops.cast(result, out_dtype)


def one_hot_of_argmax(perturbed, axis):
    """The exact one-hot of `argmax(perturbed)` along `axis`; a NaN row where there is no valid choice.

    A row has no valid choice when its maximum is not finite: all `-inf`
    (everything masked), or holding NaN or `+inf`. Built from selects only
    (`one_hot`, `where`): no arithmetic touches the 0s and 1s, so no graph
    rewrite can move them (TensorFlow's optimiser once turned
    `one_hot * (max - max + 1)` into sums that rounded to 0.99999994, 0 and 2).
    """
    row_max, one_hot = _backend.max_and_one_hot(perturbed, axis)
    return ops.where(ops.isfinite(row_max), one_hot, math.nan)


def with_softmax_gradient(value, scaled, axis):
    """`value` forward, exactly; the gradient of `softmax(scaled)` backward.

    The softmax is only computed when a gradient is asked for.
    """

    def grad(scaled, upstream):
        return softmax_jvp(_backend.softmax(scaled, axis), upstream, axis)

    return custom_gradient(value, grad)(scaled)


def with_gradient_of(value, surrogate):
    """`value` forward, exactly; the gradient of `surrogate` backward.

    Not `value + surrogate - stop_gradient(surrogate)`: graph optimisers drop
    `stop_gradient` in the forward pass and reorder the sum, which rounds
    (an exact 1 came out as 0.99999994).
    """
    return custom_gradient(value, lambda surrogate, upstream: upstream)(surrogate)


def custom_gradient(value, backward):
    """A function of `x` whose value is `value` and whose vector-Jacobian product is `backward(x, upstream)`.

    `value` is a constant of the function (on JAX its own gradient is stopped:
    there a custom gradient must not close over a traced value). Keras passes the
    upstream gradient positionally on TensorFlow and JAX and as the keyword
    `upstream` on PyTorch.
    """
    if _backend.backend() == "jax":
        value = ops.stop_gradient(value)  # (elsewhere the value is no function of `x` to differentiate)

    @ops.custom_gradient
    def function(x):
        def grad(*args, upstream=None):
            return backward(x, args[0] if upstream is None else upstream)

        return value, grad

    return function
