"""REBAR and RELAX: the score function with a control variate from a continuous relaxation, learned to cut variance.

A discrete sample is a hard function of a continuous one: `b = H(z)` with
`z = logits + g` (Gumbel noise g and `H = one_hot(argmax)` for a categorical
variable; logistic noise and `H = 1[z > 0]` for a binary one). Given `b`, a
second draw `z~ ~ p(z | b)` (a Gumbel or logistic draw conditioned on its
argmax or sign, written as a differentiable function of the logits and fresh
noise v) gives, for any differentiable `c(z)`, the unbiased RELAX estimator
(Grathwohl et al., 2018):

    g = (f(b) - c(z~)) * grad log p(b) + grad c(z) - grad c(z~)

of `grad_logits E[f(b)]`: the first term is the score function with the
control variate `c(z~)`, the last two add back what it subtracts in
expectation. REBAR (Tucker et al., 2017) is the case

    c(z) = scale * f(sigma_t(z))

with the Concrete relaxation `sigma_t(z) = softmax(z / t)` (`sigmoid(z / t)`
for binary variables) of the reward itself, at a learned temperature `t` and
scale (eta in the paper): the reward function must then accept relaxed
inputs and be differentiable in them. RELAX replaces (or complements) it with
a learned network `c_phi`: only `c_phi` has to be differentiable, `f` is
evaluated at hard samples alone.

Whatever `c`, g is unbiased, so its parameters phi (temperature, scale,
network weights) can be trained to minimise its variance, whose gradient is

    d Var[g] / d phi = d E[g^2] / d phi = E[2 g dg/dphi]

(the mean does not depend on phi): the gradient of the squared estimate,
a second-order derivative (`g` holds `grad c`), which nested
`tf.GradientTape`s compute. Here the variance is that of the gradient with
respect to the logits (summed over an input's logits, averaged over the
inputs), not of the network's parameters: cheaper, and the estimator stays
unbiased whatever phi is.

TensorFlow only (the gradient-of-a-gradient uses `tf.GradientTape`):
`relax_gradient` computes per-sample estimates (differentiable in phi),
`relax_loss` and `relax_variance` turn them into the policy's loss and the
control variate's; `REBAR` and `RELAX` are the `Estimator`s of the training
helpers, which train phi alongside the policy. Logits masked with `-inf` are
not supported (the conditional draw's gradient is not finite there).

References:
    - [Tucker, Mnih, Maddison, Lawson & Sohl-Dickstein, 2017. REBAR:
      Low-variance, unbiased gradient estimates for discrete latent variable
      models](https://arxiv.org/abs/1703.07370)
    - [Grathwohl, Choi, Wu, Roeder & Duvenaud, 2018. Backpropagation through
      the Void: Optimizing control variates for black-box gradient
      estimation](https://arxiv.org/abs/1711.00123)
"""

import math

import keras
import numpy as np
from keras import ops

from keras_gumbel import _backend
from keras_gumbel import _sampling
from keras_gumbel import _validation
from keras_gumbel.estimators import _discrete
from keras_gumbel.estimators.estimator import Estimator
from keras_gumbel.estimators.policy import Policy
from keras_gumbel.estimators.registry import register

__all__ = [
    "REBAR",
    "RELAX",
    "conditional_relaxation",
    "relax_gradient",
    "relax_loss",
    "relax_variance",
]


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


@keras.saving.register_keras_serializable(package="keras_gumbel")
class _ControlParameters(keras.layers.Layer):
    """The scalar parameters of REBAR's and RELAX's control variates: a log-temperature and a scale."""

    def __init__(self, temperature=0.5, scale=1.0, learn_scale=True, **kwargs):
        super().__init__(**kwargs)
        self.initial_temperature = _validation.check_temperature(temperature)
        self.initial_scale = _validation.check_real("scale", scale, "a finite float", math.isfinite)
        self.learn_scale = learn_scale
        # The temperature is learned through its log: it stays positive whatever the steps.
        self.log_temperature = self.add_weight(
            name="log_temperature",
            shape=(),
            initializer=keras.initializers.Constant(math.log(self.initial_temperature)),
            dtype="float32",
            autocast=False,
        )
        self.scale = self.add_weight(
            name="scale",
            shape=(),
            initializer=keras.initializers.Constant(self.initial_scale),
            trainable=learn_scale,
            dtype="float32",
            autocast=False,
        )
        self.built = True

    def temperature(self):
        return ops.exp(self.log_temperature)

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.initial_temperature,
            "scale": self.initial_scale,
            "learn_scale": self.learn_scale,
        }


class _ControlVariateEstimator(Estimator):
    """REBAR and RELAX: the score function with a learned control variate from the relaxation."""

    _name = None

    def __init__(self, temperature, scale, relaxed_reward, surrogate, name):
        self.relaxed_reward = _validation.check_bool("relaxed_reward", relaxed_reward)
        if surrogate is not None and not isinstance(surrogate, keras.layers.Layer):
            raise TypeError(
                _validation.invalid("surrogate", "None or a Keras model (relaxed samples -> one value each)", surrogate)
            )
        self.surrogate = surrogate
        self.parameters = _ControlParameters(temperature, scale, learn_scale=relaxed_reward, name=name)

    @property
    def metric_names(self):
        return ("variance_loss", "temperature", "scale") if self.relaxed_reward else ("variance_loss", "temperature")

    @property
    def layers(self):
        return [self.parameters] + ([] if self.surrogate is None else [self.surrogate])

    def check_num_samples(self, num_samples):
        _validation.check_int("num_samples", num_samples, minimum=1)

    def build(self, logits_shape):
        """Builds an unbuilt surrogate for relaxed samples of the policy's logits, `[batch, *event]`."""
        surrogate = self.surrogate
        if surrogate is None or surrogate.built:
            return
        event = tuple(logits_shape)[1:]
        if all(isinstance(size, int) for size in event):
            surrogate.build((None, *event))

    def _relax(self, z, binary):
        # z * exp(-log t): a product's gradients (and their gradients) take fewer ops than a quotient's.
        inverse_temperature = ops.exp(ops.negative(ops.cast(self.parameters.log_temperature, z.dtype)))
        scaled = ops.multiply(z, inverse_temperature)
        return ops.sigmoid(scaled) if binary else ops.softmax(scaled, axis=-1)

    def _surrogate_values(self, relaxed, leading):
        """The surrogate network on relaxed samples [2n, B, ...] -> [2n, B]."""
        flat = ops.reshape(relaxed, (-1, *relaxed.shape[2:]))
        values = self.surrogate(flat)
        if len(values.shape) == 2 and values.shape[-1] == 1:
            values = ops.reshape(values, (-1,))  # not values[:, 0]: a slice's gradient is a pad
        if len(values.shape) != 1:
            raise ValueError(
                f"{self._name}'s surrogate must return one value per relaxed sample, of shape [N] or [N, 1]; "
                f"for input of shape {tuple(flat.shape)} it returned shape {tuple(values.shape)}."
            )
        return ops.reshape(ops.cast(values, relaxed.dtype), leading)

    def estimate(self, distribution, evaluate, log_prob, num_samples, seed, inputs, training=None):
        _require_tensorflow(self._name)
        import tensorflow as tf

        del log_prob, inputs, training
        self.check_num_samples(num_samples)
        kinds = ("binary", "categorical") if self.relaxed_reward else ("binary", "categorical", "index")
        policy = Policy.of(distribution)
        logits, kind, _ = policy.require(self._name, kinds=kinds)
        binary = kind == "binary"
        logits = tf.convert_to_tensor(logits)
        compute_logits = _discrete.compute_logits(logits)
        compute_logits = _finite_logits(compute_logits)
        shape = tf.concat([[2, num_samples], tf.shape(compute_logits)], 0)
        noise = _discrete.uniform(shape, seed, compute_logits.dtype)
        uniform, conditional_uniform = noise[0], noise[1]

        def stacked(tensors):
            # [k, n, B, ...] -> [k n, B, ...]. Stacked, not concatenated: the gradient of a concat is slices, and
            # the gradient of that gradient (the variance's, here) a zero-padding per slice; a stack's is unstacks.
            flat_shape = tf.concat([[len(tensors) * num_samples], tf.shape(tensors[0])[1:]], 0)
            return tf.reshape(tf.stack(tensors), flat_shape)

        def evaluate_all(sample, z, z_tilde):
            relaxed_z, relaxed_z_tilde = self._relax(z, binary), self._relax(z_tilde, binary)
            relaxed = stacked([relaxed_z, relaxed_z_tilde])  # [2n, B, ...]
            if self.relaxed_reward:
                # One reward_fn call: the hard samples (as floats) and both relaxed draws.
                hard = tf.cast(sample, relaxed.dtype)
                values = tf.cast(evaluate(stacked([hard, relaxed_z, relaxed_z_tilde])), relaxed.dtype)  # [3n, B]
                # Split rather than sliced: the gradient of a split is one concat, a slice's a pad each.
                rewards, control = tf.split(values, [num_samples, 2 * num_samples], 0)
                control = tf.cast(self.parameters.scale, relaxed.dtype) * control
                if self.surrogate is not None:
                    control = control + self._surrogate_values(relaxed, tf.shape(control))
            else:
                rewards = evaluate(policy.actions(sample))
                leading = tf.stack([2 * num_samples, tf.shape(rewards)[1]])
                control = self._surrogate_values(relaxed, leading)  # RELAX without relaxed_reward has a surrogate
            control, conditional_control = tf.split(control, 2, 0)
            return rewards, control, conditional_control

        # The control variate's parameters get d E[g^2] / d phi from this tape, and only they: the policy's
        # gradient is the estimate itself, and a reward_fn's own weights are no business of the estimator.
        with tf.GradientTape() as tape:
            # The mean estimate over the samples, [B, ...]: all the loss and the variance need.
            gradient, rewards, _ = _relax_terms(
                compute_logits, uniform, conditional_uniform, binary, evaluate_all, per_sample=False
            )
            variance = relax_variance(gradient, sample_axes=0)
        variables = [v for layer in self.layers for v in layer.trainable_variables]
        control_gradients = tape.gradient(variance, variables, unconnected_gradients="zero")
        loss = _discrete.surrogate_loss(compute_logits, gradient, 1)
        loss = tf.cast(loss, tf.float32)
        for gradient_of_variable, variable in zip(control_gradients, variables):
            # A constant times (the variable less itself held constant): its gradient is the variance's, its value 0,
            # so the logged loss is the policy's alone.
            offset = variable - tf.stop_gradient(variable)
            loss += tf.reduce_sum(tf.cast(tf.stop_gradient(gradient_of_variable), variable.dtype) * offset)
        metrics = {"variance_loss": tf.cast(variance, tf.float32), "temperature": self.parameters.temperature()}
        if self.relaxed_reward:
            metrics["scale"] = tf.convert_to_tensor(self.parameters.scale)
        return loss, metrics, tf.cast(rewards, tf.float32)


@register("rebar")
class REBAR(_ControlVariateEstimator):
    """The REBAR estimator (Tucker et al., 2017) for the training helpers: a self-tuning relaxed control variate.

    For each of `num_samples` samples per input it draws `z`, `b = H(z)` and
    `z~ ~ p(z | b)` (`conditional_relaxation`), evaluates the reward at `b`
    and at the relaxed `sigma_t(z)` and `sigma_t(z~)` (one `reward_fn` call on
    3 * `num_samples` * B rows), and returns a loss whose gradient is, for the
    policy, minus the mean of

        g = (f(b) - scale * f(sigma_t(z~))) * grad log p(b)
            + scale * (grad f(sigma_t(z)) - grad f(sigma_t(z~)))

    (unbiased), and for the temperature `t` (learned through its log) and the
    scale, the gradient of the estimator's variance (`relax_variance`),
    minimised alongside the policy.

    `reward_fn` receives float actions: hard 0/1 (one-hot) values and relaxed
    ones in between, and must be differentiable in them (no argmax, no casts
    to integers); otherwise the estimate is biased and a `ValueError` is
    raised where the gradient is missing altogether. The policy's
    distribution must be a `tfd.OneHotCategorical` or a `tfd.Bernoulli` (or
    an `Independent` of one). TensorFlow only.

    Args:
        temperature: Initial temperature of the relaxation.
        scale: Initial scale of the control variate (eta in the paper).

    Metrics: `variance_loss` (the mean squared estimate whose gradient trains
    the temperature and scale), `temperature`, `scale`.

    Examples:
        >>> import keras_gumbel
        >>> estimator = keras_gumbel.estimators.REBAR(temperature=0.5)
        >>> estimator.metric_names
        ('variance_loss', 'temperature', 'scale')
    """

    _name = "REBAR"

    def __init__(self, temperature=0.5, scale=1.0):
        super().__init__(temperature, scale, relaxed_reward=True, surrogate=None, name="rebar")

    def get_config(self):
        # The initial values: the learned ones are weights, saved with the layers of whatever holds the estimator.
        return {"temperature": self.parameters.initial_temperature, "scale": self.parameters.initial_scale}


@register("relax")
class RELAX(_ControlVariateEstimator):
    """The RELAX estimator (Grathwohl et al., 2018) for the training helpers: a learned control variate network.

    As `REBAR`, with the control variate

        c(z) = surrogate(sigma_t(z))                      (relaxed_reward=False)
        c(z) = scale * f(sigma_t(z)) + surrogate(sigma_t(z))  (relaxed_reward=True)

    a Keras model on the relaxed sample (`sigmoid(z / t)` or
    `softmax(z / t)`, [N, *event_shape] for N = 2 * num_samples * B rows) at a
    learned temperature `t`: the estimate

        g = (f(b) - c(z~)) * grad log p(b) + grad c(z) - grad c(z~)

    is unbiased for any surrogate, whose weights (and `t`, and the scale)
    are trained to minimise its variance alongside the policy. Without
    `relaxed_reward`, `reward_fn` sees hard actions only and need not be
    differentiable (one `reward_fn` call on `num_samples` * B rows), and any
    categorical distribution works (`tfd.Categorical` too); with it,
    `reward_fn` must be differentiable in relaxed inputs, as for `REBAR`.
    TensorFlow only.

    Args:
        surrogate: A Keras model mapping relaxed samples [N, *event_shape] to
            one value each ([N] or [N, 1]), differentiable in its input. It
            may be unbuilt: Keras builds it on its first call, in the first
            training step, and `fit`, `make_train_step` and XLA train the
            weights it creates there. `None` builds the default: a 2-layer
            perceptron with `hidden_units` tanh units and a zero-initialised
            output (so the estimator starts as the plain score function).
        event_shape: The shape of one input's logits (e.g. `(K,)` for one
            categorical variable, `(D,)` for D binary ones), to build the
            default surrogate's weights now (with `keras.Input`); `None`
            builds them when the training helpers are given a built policy
            (from its output shape), or else from the first relaxed samples.
            Needed only to read or set the weights before that.
        hidden_units: Hidden units of the default surrogate (unused with a
            given `surrogate`).
        temperature: Initial temperature of the relaxation.
        relaxed_reward: Whether to add REBAR's `scale * f(sigma_t(z))` to the
            control variate, as the paper's discrete experiments do.
        scale: Initial scale of that term.

    Metrics: `variance_loss`, `temperature` (and `scale` with
    `relaxed_reward`).

    Raises:
        ValueError: If both `surrogate` and `event_shape` are given.

    Examples:
        >>> import keras_gumbel
        >>> estimator = keras_gumbel.estimators.RELAX(event_shape=(4,))
        >>> estimator.metric_names
        ('variance_loss', 'temperature')
        >>> len(estimator.layers)  # the temperature and the surrogate
        2
    """

    _name = "RELAX"

    def __init__(
        self, surrogate=None, event_shape=None, hidden_units=32, temperature=0.5, relaxed_reward=False, scale=1.0
    ):
        self.default_surrogate = surrogate is None
        self.hidden_units = hidden_units
        if surrogate is None:
            hidden_units = _validation.check_int("hidden_units", hidden_units, minimum=1)
            self.hidden_units = hidden_units
            layers = [
                keras.layers.Flatten(),
                keras.layers.Dense(hidden_units, activation="tanh"),
                keras.layers.Dense(1, kernel_initializer="zeros"),
            ]
            if event_shape is not None:
                event_shape = _check_event_shape(event_shape)
                layers.insert(0, keras.Input(event_shape))
            surrogate = keras.Sequential(layers, name="relax_surrogate")
        elif event_shape is not None:
            raise ValueError(
                "RELAX's `event_shape` builds the default surrogate; a given `surrogate` is built by its own "
                f"inputs. Pass one or the other. Received: surrogate={surrogate!r}, event_shape={event_shape!r}"
            )
        self.event_shape = event_shape
        super().__init__(temperature, scale, relaxed_reward=relaxed_reward, surrogate=surrogate, name="relax")

    def get_config(self):
        # The architecture and initial values; the trained surrogate, temperature and scale are weights, saved with
        # the layers of whatever holds the estimator.
        surrogate = None if self.default_surrogate else keras.saving.serialize_keras_object(self.surrogate)
        return {
            "surrogate": surrogate,
            "event_shape": None if self.event_shape is None else list(self.event_shape),
            "hidden_units": self.hidden_units,
            "temperature": self.parameters.initial_temperature,
            "relaxed_reward": self.relaxed_reward,
            "scale": self.parameters.initial_scale,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("surrogate"), dict):
            config["surrogate"] = keras.saving.deserialize_keras_object(config["surrogate"])
        return cls(**config)
