"""Estimator diagnostics: bias, variance and cost of gradient estimators against the exact gradient.

Two small problems have an exact gradient by enumeration:

- categorical (`variable="categorical"`): `z ~ Categorical(softmax(logits))`
  over K one-hot values, for which

      grad_logits E[f] = p * (F - p . F),  p = softmax(logits),  F_k = f(one_hot(k));

- binary (`variable="binary"`): a vector `b` of n independent bits,
  `b_i ~ Bernoulli(sigmoid(logits_i))`, for which

      grad_logits E[f] = sum_b p(b) f(b) (b - sigmoid(logits))

  over the 2^n values of b.

So any estimator's bias, variance and mean squared error can be measured,
not guessed, along with its cost: the evaluations of f it makes per
estimate (counted, not declared). Every estimator is measured on one path:
the `Estimator` a registered name makes (`keras_gumbel.estimators.get`, any
of `keras_gumbel.estimators.names()`; or an `Estimator` object) computes its
loss with `estimate`, as the training helpers call it, one independent
estimate per row of a batch (rows do not interact, so the gradient of the
summed loss holds each row's estimate), from `num_samples` samples per
estimate. The built-in ones:

| estimator | variables | estimates | evaluations of f |
| --- | --- | --- | --- |
| `gumbel_softmax`, `straight_through`, `gumbel_rao`, `reinmax` | both | grad E[f], biased | `num_samples`, and grad f |
| `reinforce` | both | grad E[f] | `num_samples` |
| `reinforce_leave_one_out` | both | grad E[f] | `num_samples` |
| `vimco` | both | grad E[log mean_S exp f] | S = `num_samples` |
| `enumerate` | both | grad E[f], exactly | K, or 2^n |
| `unordered_set` | both | grad E[f] | k = `num_samples` |
| `arm`, `disarm` | binary | grad E[f] | `num_samples` (pairs of 2) |
| `arsm` | both | grad E[f] | `num_samples` (1 + K (K - 1) / 2) |
| `rebar` | both | grad E[f] | 3 `num_samples`, and grad f |
| `relax` | both | grad E[f] | `num_samples` (and 2 of its network) |
| `indecater` | both | grad E[f] | `num_samples` D K, for D variables of K categories |

Binary variables are given to the estimators made for categorical ones
only (those whose `variables` lack `"binary"`: `unordered_set`, `arsm`) as
two-category variables with logits `[logits_i, 0]` (category 0 is the bit 1:
the two-category Gumbel-Softmax is the binary Concrete), the gradient
reaching `logits_i` through that embedding; `Pathwise` embeds bits so
itself for `gumbel_rao` and `reinmax`, and uses `ops.relaxed_bernoulli` for
Gumbel-Softmax and straight-through.

VIMCO (an estimator whose `objective` is `"multi_sample_bound"`) maximises a
multi-sample bound, not `E[f]`: with S samples it
estimates `grad E[log((1/S) sum_s exp f(z_s))]`, so it is measured against
the exact gradient of that objective (`exact_gradient(...,
bound_samples=S)`, an enumeration of the K^S, or 2^(n S), tuples of samples).
REBAR and RELAX (the estimators with weights of their own) are measured with
their control variates as initialised (RELAX's network outputs 0: it starts
as the plain score function), or after `control_variate_steps` Adam steps on
their variance loss, the logits fixed.

TensorFlow backend (it uses `tf.GradientTape`).

Examples:
    >>> import keras, numpy as np, keras_gumbel
    >>> values = np.arange(4.0, dtype="float32")
    >>> f = lambda z: (keras.ops.sum(z * values, axis=-1) - 1.5) ** 2
    >>> logits = np.zeros(4, "float32")
    >>> result = keras_gumbel.diagnostics.gradient_bias_variance(
    ...     "reinforce_leave_one_out", logits, f, num_estimates=2000
    ... )
    >>> bool(result["bias"] < 5 * result["bias_standard_error"])  # unbiased
    True
    >>> result["evaluations"]  # of f, per estimate
    4.0
"""

from keras_gumbel.diagnostics._estimates import ESTIMATORS
from keras_gumbel.diagnostics._estimates import estimators_for
from keras_gumbel.diagnostics._estimates import gradient_bias_variance
from keras_gumbel.diagnostics._estimates import gradient_estimates
from keras_gumbel.diagnostics._exact import VARIABLES
from keras_gumbel.diagnostics._exact import exact_gradient

__all__ = [
    "ESTIMATORS",
    "VARIABLES",
    "estimators_for",
    "exact_gradient",
    "gradient_estimates",
    "gradient_bias_variance",
]
