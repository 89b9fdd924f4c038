"""The maths of REBAR and RELAX: the conditional relaxation and the estimate, differentiable in the control variate.

Private: `keras_gumbel.estimators.relax` holds the public names (it re-exports
`conditional_relaxation`, `relax_gradient`, `relax_loss`, `relax_variance`) and
the `REBAR` and `RELAX` estimators; its docstring gives the maths. The noise
kernels (Gumbel and logistic noise from uniforms, the Gumbels given their
argmax, the hard value of a perturbed logit) are `_sampling`'s.
"""

import keras
import numpy as np
from keras import ops

from keras_gumbel import _backend
from keras_gumbel import _sampling
from keras_gumbel import _validation
from keras_gumbel.estimators import _discrete


def _require_tensorflow(what):
    _backend.require_tensorflow(
        what,
        "differentiates a gradient with nested tf.GradientTape",
        "ARM, DisARM and ARSM (keras_gumbel.estimators.arm) and the score-function estimators run on every backend.",
    )


def _perturb(logits, uniform, binary):
    """`z = logits + noise`: logistic noise (binary) or Gumbel noise from the uniforms."""
    if binary:
        return ops.add(logits, _sampling.logistic_from_uniform(uniform))
    return ops.add(logits, _sampling.gumbel_from_uniform(uniform))


def _hard(z, binary):
    """`H(z)`: `1[z > 0]`, or the one-hot of the argmax, by selects (no arithmetic on the 0s and 1s)."""
    return _sampling.step(z) if binary else _sampling.one_hot_of_argmax(z, len(z.shape) - 1)


def _conditional(logits, sample, noise, binary):
    """A draw of `z ~ p(z | H(z) = sample)`, differentiable in `logits` for fixed `noise`.

    `noise` is a uniform `v` on (0, 1) for binary variables, `log(E)` for
    exponentials `E` for categorical ones.
    """
    if binary:
        # The logistic z = logits + logit(w), w ~ U(0, 1), has z > 0 iff w > q = sigmoid(-logits). Given the
        # sample, w is uniform on (q, 1), w = q + v p, or on (0, q), w = v q (p = 1 - q). In closed form:
        #   sample 1: z~ = softplus(logits + log(v)) - log(1 - v)
        #   sample 0: z~ = log(v) - softplus(log(1 - v) - logits)
        # that is z~ = s (softplus(s logits + A) - C), s = +-1, with (A, C) = (log v, log(1 - v)) for a 1 and
        # (log(1 - v), log v) for a 0: one softplus, finite for any logits, its gradient sigmoid(...) in (0, 1).
        is_one = ops.greater(sample, 0.5)
        log_v, log_1mv = ops.log(noise), ops.log1p(ops.negative(noise))
        sign = ops.where(is_one, ops.ones_like(logits), ops.negative(ops.ones_like(logits)))
        inner = ops.where(is_one, log_v, log_1mv)
        outer = ops.where(is_one, log_1mv, log_v)
        return ops.multiply(sign, ops.subtract(ops.softplus(ops.add(ops.multiply(sign, logits), inner)), outer))
    # The Gumbels given their argmax: the draw of ops.gumbel_rao.
    return _sampling.gumbel_given_argmax(logits, sample, noise)


def _shared_noise(logits, z, sample, binary):
    """The conditional noise that gives `z~ = z` in value (common random numbers), held constant.

    Given the sample, the noise behind `z` has the conditional noise's law
    (uniform on the sample's interval, or exponentials given the argmax), so
    reading it back from `z` is a valid draw of `z~ ~ p(z | b)`: `z~` equals
    `z` but depends on the logits through the conditional reparametrisation.
    """
    dtype = keras.backend.standardize_dtype(logits.dtype)
    if binary:
        # u = sigmoid(z - logits) = q + v p (sample 1) or v q (sample 0), with p = sigmoid(logits), q = 1 - p.
        one = ops.negative(ops.expm1(ops.subtract(ops.log_sigmoid(ops.subtract(logits, z)), ops.log_sigmoid(logits))))
        zero = ops.exp(ops.subtract(ops.log_sigmoid(ops.subtract(z, logits)), ops.log_sigmoid(ops.negative(logits))))
        noise = ops.where(ops.greater(sample, 0.5), one, zero)
        # On (0, 1) exactly, as a drawn uniform is.
        noise = ops.clip(noise, _backend.tiny(dtype), 1.0 - float(np.finfo(dtype).epsneg))
        return ops.stop_gradient(noise)
    # E_i = exp(logsumexp(logits) - z_i) for the argmax i; E_j = exp(logits_j) (exp(-z_j) - exp(-z_i)).
    top = ops.sum(ops.multiply(z, sample), axis=-1, keepdims=True)
    gap = ops.minimum(ops.subtract(z, top), -_backend.tiny(dtype))  # < 0 off the argmax
    others = ops.add(ops.subtract(logits, z), ops.log(ops.negative(ops.expm1(gap))))
    chosen = ops.subtract(ops.logsumexp(logits, axis=-1, keepdims=True), z)
    return ops.stop_gradient(ops.where(ops.greater(sample, 0.5), chosen, others))


def conditional_relaxation(logits, uniform, conditional_uniform=None, binary=False):
    """The continuous draws of REBAR and RELAX: `z`, the discrete sample `b = H(z)`, and `z~ ~ p(z | b)`.

    Categorical (`binary=False`, categories on the last axis):

        z    = logits - log(-log(u)),  b = one_hot(argmax(z))  (Gumbel-max)
        z~_b = logsumexp(logits) - log(E_b)
        z~_j = -logaddexp(log(E_j) - logits_j, log(E_b) - logsumexp(logits))

    with `E = -log(v)`, the Gumbels conditioned on their argmax being b.
    Binary: `z = logits + log(u) - log(1 - u)`, `b = 1[z > 0]`, and `z~` the
    logistic draw conditioned on its sign, `logits + logit(w)` with `w`
    uniform on `(sigmoid(-logits), 1)` (b = 1) or `(0, sigmoid(-logits))`.
    Both `z` and `z~` are differentiable in the logits (`b` is not).

    Args:
        logits: Logits (any float tensor).
        uniform: Uniforms on [0, 1) for `z`, [*samples, *logits.shape] (a 0
            is raised to the smallest normal number, so `z` stays finite).
        conditional_uniform: Independent uniforms for `z~`, of the same
            shape, or `None` to read `z~`'s noise back from `z` (common random
            numbers, as Tucker et al.'s code does): given b, the noise behind
            `z` has the conditional law, so `z~` equals `z` in value but
            depends on the logits through the conditional draw.
        binary: Whether the variables are Bernoulli (each entry a variable)
            rather than categorical.

    Returns:
        `(z, b, z_tilde)`, each of the shape of `uniform`; `b` holds 0s and 1s
        (one-hot rows for categorical variables).

    Examples:
        >>> import keras, keras_gumbel
        >>> logits = keras.ops.convert_to_tensor([[1.0, 0.0, -1.0]])
        >>> u = keras.random.uniform((4, 1, 3), seed=1)
        >>> v = keras.random.uniform((4, 1, 3), seed=2)
        >>> z, b, z_tilde = keras_gumbel.estimators.conditional_relaxation(
        ...     logits, u, v
        ... )
        >>> same = keras.ops.argmax(z_tilde, -1) == keras.ops.argmax(b, -1)
        >>> bool(keras.ops.all(same))  # z~ has the argmax of z
        True
    """
    logits = _discrete.as_float(logits)
    uniform = ops.cast(ops.convert_to_tensor(uniform), logits.dtype)
    _discrete.check_noise("uniform", uniform, logits)
    # `keras.random.uniform` can draw an exact 0, whose z is infinite: raised to the smallest normal number, as
    # the package's own draws are (`_discrete.uniform`).
    floor = _backend.tiny(logits.dtype)
    uniform = ops.maximum(uniform, floor)
    z = _perturb(logits, uniform, binary)
    sample = ops.stop_gradient(_hard(z, binary))
    if conditional_uniform is None:
        noise = _shared_noise(logits, z, sample, binary)
    else:
        conditional_uniform = ops.cast(ops.convert_to_tensor(conditional_uniform), logits.dtype)
        _discrete.check_noise("conditional_uniform", conditional_uniform, logits)
        conditional_uniform = ops.maximum(conditional_uniform, floor)
        noise = conditional_uniform if binary else ops.log(ops.negative(ops.log(conditional_uniform)))
    return z, sample, _conditional(logits, sample, noise, binary)


def _score(logits, sample, binary):
    """`grad_logits log p(sample)`: `b - sigmoid(logits)`, or `one_hot - softmax(logits)`."""
    if binary:
        return ops.subtract(sample, ops.sigmoid(logits))
    return ops.subtract(sample, ops.softmax(logits, axis=-1))


def _relax_terms(logits, uniform, conditional_uniform, binary, evaluate, per_sample=True):
    """RELAX estimates, and the rewards of the hard samples.

    `evaluate(b, z, z_tilde) -> (f(b), c(z), c(z~))`, each [*samples] (the
    leading axes of `uniform` that index samples and inputs). The estimate is
    differentiable in whatever `c` reads (its weights), not in `logits`
    (a stopped copy is differentiated instead).

    With `per_sample`, one estimate per sample, [*uniform.shape]; without,
    their mean over the one leading sample axis of `uniform` ([n, *logits.shape]),
    [*logits.shape], computed without a copy of the logits per sample: the
    control variate's gradient is then taken once, for the sum over the
    samples, and whatever depends on the logits alone (log-normalisers,
    log-sigmoids) is computed once per input. The training helpers need only
    that mean: the policy's loss and the variance both average the samples.
    """
    import tensorflow as tf

    # Differentiated with the gradient to the policy stopped: the policy gets `-mean(g)` from `relax_loss`, the
    # control variate `d E[g^2] / d phi` from the variance.
    if per_sample:
        watched = tf.stop_gradient(tf.broadcast_to(logits, tf.shape(uniform)))  # one copy per sample
    else:
        watched = tf.stop_gradient(logits)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(watched)
        z, sample, z_tilde = conditional_relaxation(watched, uniform, conditional_uniform, binary)
        rewards, control, conditional_control = evaluate(sample, z, z_tilde)
        difference = tf.reduce_sum(tf.cast(control, watched.dtype) - tf.cast(conditional_control, watched.dtype))
    control_gradient = tape.gradient(difference, watched)  # grad c(z) - grad c(z~), per sample or summed
    if control_gradient is None:
        raise ValueError(
            "The control variate c(z) returned values with no gradient with respect to z: RELAX needs a "
            "c differentiable in z (for REBAR, a reward_fn differentiable in its relaxed inputs, e.g. without "
            "argmax or casts to integers). Without it the estimate is biased."
        )
    rewards = tf.stop_gradient(tf.cast(rewards, watched.dtype))
    advantage = _discrete.per_sample("rewards", rewards - tf.cast(conditional_control, watched.dtype), uniform)
    # The score depends on the logits only: computed once per input and broadcast over the samples.
    score_term = advantage * _score(tf.stop_gradient(tf.cast(logits, watched.dtype)), sample, binary)
    if per_sample:
        return score_term + control_gradient, rewards, sample
    num_samples = tf.cast(tf.shape(uniform)[0], watched.dtype)
    return tf.reduce_mean(score_term, axis=0) + control_gradient / num_samples, rewards, sample


def _finite_logits(logits):
    """Infinite logits (a masked category, a bit never or always 1) as finite ones far beyond the others.

    The samples are the same (the Gumbel or logistic noise cannot bridge a
    gap of 1e4), and so are the estimates, whose entries there are 0; but no
    `inf * 0` appears in the relaxation's gradients or in the loss. The
    gradient reaches only the finite logits.
    """
    import tensorflow as tf

    finite = tf.math.is_finite(logits)
    span = tf.reduce_max(tf.abs(tf.where(finite, logits, tf.zeros_like(logits)))) + 1e4
    return tf.where(finite, logits, tf.stop_gradient(tf.sign(logits) * span))


def _leading(tensor, reference):
    """`tensor` [n * R, ...] -> [n, R...] with the leading shape of `reference` ([n, R...])."""
    return ops.reshape(tensor, ops.shape(reference))


def relax_gradient(logits, reward_fn, control_variate, uniform, conditional_uniform=None, binary=False):
    """Per-sample RELAX (or REBAR) estimates of `grad_logits E[f(b)]`, differentiable in the control variate.

        g = (f(b) - c(z~)) * grad log p(b) + grad c(z) - grad c(z~)

    with `(z, b, z~) = conditional_relaxation(logits, uniform,
    conditional_uniform, binary)` (Grathwohl et al., 2018). For REBAR,
    `c(z) = scale * f(softmax(z / t))` (`sigmoid` for binary). Unbiased for
    any differentiable `c`. Call it inside the `tf.GradientTape` that trains
    the control variate: the estimates carry the gradient of `c`'s
    parameters (a gradient of a gradient).

    Args:
        logits: Logits (categories on the last axis unless `binary`).
        reward_fn: `f`: hard samples [*samples, *logits.shape] (0s and 1s, in
            the dtype of `logits`) -> one reward per sample, of a shape that
            leads theirs (e.g. [n, B] for samples [n, B, K]). Its gradient is
            not used.
        control_variate: `c`: continuous draws of the shape of the samples
            -> one value per sample, differentiable in its input. It is
            called once, on `z` and `z~` concatenated on the first axis.
        uniform: Uniforms on (0, 1) for `z`, [*samples, *logits.shape]
            (e.g. [num_samples, *logits.shape]).
        conditional_uniform: Independent uniforms for `z~`, of the same shape,
            or `None` for `z~` read back from `z` (see
            `conditional_relaxation`).
        binary: Whether the variables are Bernoulli rather than categorical.

    Returns:
        `(gradient, rewards)`: the estimates [*samples, *logits.shape] (one
        per sample: average them over the samples) and the rewards `f(b)`.

    Raises:
        ValueError: If `c` has no gradient with respect to its input, or the
            shapes do not fit.
        RuntimeError: On a backend other than TensorFlow.

    Examples:
        >>> import keras, keras_gumbel
        >>> import tensorflow as tf
        >>> logits = tf.Variable([[0.5, 0.0, -0.5]])
        >>> f = lambda b: keras.ops.sum(b * [0.0, 1.0, 3.0], axis=-1)
        >>> temperature, scale = tf.Variable(0.5), tf.Variable(1.0)
        >>> rebar_c = lambda z: scale * f(keras.ops.softmax(z / temperature))
        >>> u = keras.random.uniform((4, 1, 3), seed=1)
        >>> v = keras.random.uniform((4, 1, 3), seed=2)
        >>> with tf.GradientTape(persistent=True) as tape:
        ...     gradient, rewards = keras_gumbel.estimators.relax_gradient(
        ...         logits, f, rebar_c, u, v
        ...     )
        ...     loss = keras_gumbel.estimators.relax_loss(logits, gradient)
        ...     variance = keras_gumbel.estimators.relax_variance(gradient)
        >>> policy_gradient = tape.gradient(loss, logits)  # -mean estimate
        >>> control_gradients = tape.gradient(variance, [temperature, scale])
        >>> tuple(gradient.shape), all(g is not None for g in control_gradients)
        ((4, 1, 3), True)
    """
    _require_tensorflow("relax_gradient")
    if not callable(reward_fn):
        raise TypeError(_validation.invalid("reward_fn", "a callable samples -> rewards", reward_fn))
    if not callable(control_variate):
        raise TypeError(_validation.invalid("control_variate", "a callable z -> values", control_variate))
    logits = _discrete.as_float(logits)
    uniform = ops.cast(ops.convert_to_tensor(uniform), logits.dtype)

    def evaluate(sample, z, z_tilde):
        values = control_variate(ops.concatenate([z, z_tilde], axis=0))
        values = ops.reshape(values, (2, -1))
        rewards = ops.convert_to_tensor(reward_fn(sample))
        return rewards, ops.reshape(values[0], ops.shape(rewards)), ops.reshape(values[1], ops.shape(rewards))

    gradient, rewards, _ = _relax_terms(logits, uniform, conditional_uniform, binary, evaluate)
    return gradient, rewards


def relax_loss(logits, gradient, batch_axes=1):
    """The policy's loss: a scalar whose gradient with respect to `logits` is minus the mean estimate.

    `-sum(stop_gradient(gradient) * logits)`, summed over an input's logits
    and averaged over the samples and inputs, as `score_function_loss`
    averages its terms.

    Args:
        logits: The logits the estimates are for, differentiable.
        gradient: `relax_gradient`'s estimates, [*samples, *logits.shape].
        batch_axes: How many leading axes of `logits` index inputs (1 for
            logits [B, ...]; 0 for the logits of one input).

    Returns:
        A scalar tensor (minimising it maximises `E[f(b)]`).
    """
    logits = ops.convert_to_tensor(logits)
    gradient = ops.convert_to_tensor(gradient)
    batch_axes = _validation.check_int("batch_axes", batch_axes, minimum=0)
    sample_axes = len(gradient.shape) - len(logits.shape)
    return _discrete.surrogate_loss(logits, gradient, sample_axes + batch_axes)


def relax_variance(gradient, sample_axes=1, batch_axes=1):
    """The control variate's loss: the squared mean estimate, summed over an input's logits, averaged over inputs.

        mean_inputs sum_logits (mean_samples g)^2

    Its gradient with respect to the control variate's parameters is that of
    the variance of the estimator (the mean of g does not depend on them,
    Grathwohl et al., 2018). Minimise it with respect to those
    parameters only, not the policy's.

    Args:
        gradient: `relax_gradient`'s estimates, [*samples, *inputs, ...]:
            the samples' axes, then the inputs', then one input's logits.
        sample_axes: How many leading axes index samples.
        batch_axes: How many axes after them index inputs.

    Returns:
        A scalar tensor.
    """
    gradient = ops.convert_to_tensor(gradient)
    sample_axes = _validation.check_int("sample_axes", sample_axes, minimum=0)
    batch_axes = _validation.check_int("batch_axes", batch_axes, minimum=0)
    square = ops.square(ops.mean(gradient, axis=tuple(range(sample_axes))) if sample_axes else gradient)
    event_axes = tuple(range(batch_axes, len(square.shape)))
    if event_axes:
        square = ops.sum(square, axis=event_axes)
    return ops.mean(square)


def _check_event_shape(event_shape):
    """`event_shape` as a tuple of positive ints (an int is one axis), or a named error."""
    expected = "a tuple of positive ints, the shape of one input's logits (e.g. (num_categories,))"
    if isinstance(event_shape, int) and not isinstance(event_shape, bool):
        event_shape = (event_shape,)
    try:
        sizes = tuple(event_shape)
    except TypeError:
        raise TypeError(_validation.invalid("event_shape", expected, event_shape)) from None
    if not sizes or not all(isinstance(size, int) and not isinstance(size, bool) and size >= 1 for size in sizes):
        raise ValueError(_validation.invalid("event_shape", expected, event_shape))
    return sizes
