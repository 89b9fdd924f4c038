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
helpers, which train phi alongside the policy. The estimators take logits
masked with `-inf` (a category never chosen, a bit always 0 or 1): they
replace them by finite stand-ins 1e4 beyond the others, which give the same
samples and no `inf * 0` in the gradients. The pure functions do not (the
conditional draw's gradient is not finite there): give them finite logits.
The maths live in `_relaxation`, the Keras state (the learned temperature,
scale and network) here.

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
from keras import ops

from keras_gumbel import _validation
from keras_gumbel.estimators import _discrete
from keras_gumbel.estimators._relaxation import _check_event_shape
from keras_gumbel.estimators._relaxation import _finite_logits
from keras_gumbel.estimators._relaxation import _relax_terms
from keras_gumbel.estimators._relaxation import _require_tensorflow
from keras_gumbel.estimators._relaxation import conditional_relaxation
from keras_gumbel.estimators._relaxation import relax_gradient
from keras_gumbel.estimators._relaxation import relax_loss
from keras_gumbel.estimators._relaxation import relax_variance
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
