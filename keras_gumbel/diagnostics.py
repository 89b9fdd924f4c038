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

import itertools
import math

import keras
import numpy as np

from keras_gumbel import _backend
from keras_gumbel import _validation
from keras_gumbel import estimators

__all__ = [
    "ESTIMATORS",
    "VARIABLES",
    "estimators_for",
    "exact_gradient",
    "gradient_estimates",
    "gradient_bias_variance",
]

# The registered names when this module was imported (`estimators_for` and the functions read the registry as it
# is when called, with any estimator registered since).
ESTIMATORS = estimators.names()

VARIABLES = ("categorical", "binary")

# The most bits the binary problem enumerates (2^n values of f), and tuples VIMCO's exact gradient sums over.
_MAX_BITS = 16
_MAX_TUPLES = 2**20


def estimators_for(variable):
    """The registered estimator names (`keras_gumbel.estimators.names()`) that apply to one kind of variable.

    Args:
        variable: `"categorical"` or `"binary"`.

    Returns:
        A tuple of names, in registration order: for `"binary"` every one
        (those made for categorical variables see each bit as two
        categories), for `"categorical"` those that estimate gradients for
        categorical variables (not `arm` and `disarm`).

    Raises:
        ValueError: If `variable` is not one of `VARIABLES`.

    Examples:
        >>> from keras_gumbel import diagnostics
        >>> "arm" in diagnostics.estimators_for("categorical")
        False
        >>> "arm" in diagnostics.estimators_for("binary")
        True
    """
    variable = _check_variable(variable)
    return tuple(
        name
        for name in estimators.names()
        if variable == "binary" or "categorical" in estimators.registry.entry(name)[0].variables
    )


def _check_variable(variable):
    if variable not in VARIABLES:
        raise ValueError(_validation.invalid("variable", f"one of {VARIABLES}", variable))
    return variable


def _check_estimator(estimator, variable):
    if isinstance(estimator, estimators.Estimator):
        variables = estimator.variables
    elif estimator in estimators.names():
        variables = estimators.registry.entry(estimator)[0].variables
    else:
        raise ValueError(
            _validation.invalid(
                "estimator", f"an Estimator or one of the registered names {estimators.names()}", estimator
            )
        )
    if "categorical" not in variables and variable != "binary":
        raise ValueError(
            f"Invalid value received for argument `estimator`. {estimator!r} estimates gradients for binary "
            "variables only: pass variable='binary', or use 'arsm' (its categorical extension) for categorical "
            f"ones. Received: estimator={estimator!r}, variable={variable!r}"
        )
    return estimator


def _check_logits(logits, variable="categorical"):
    logits = np.asarray(logits)
    if variable == "binary":
        if (
            logits.ndim != 1
            or not 1 <= logits.shape[0] <= _MAX_BITS
            or not np.issubdtype(logits.dtype, np.floating)
            or not np.isfinite(logits).all()
        ):
            raise ValueError(
                _validation.invalid("logits", f"a float vector of 1 to {_MAX_BITS} finite logits (one per bit)", logits)
            )
        return logits
    if (
        logits.ndim != 1
        or logits.shape[0] < 2
        or not np.issubdtype(logits.dtype, np.floating)
        or np.isnan(logits).any()
        or np.isposinf(logits).any()
    ):
        raise ValueError(_validation.invalid("logits", "a float vector of K >= 2 logits, none NaN or +inf", logits))
    return logits


def _per_row(f):
    """`f` with its output checked: one value per row, [N] (or [N, 1], flattened)."""

    def checked(z):
        values = f(z)
        shape = tuple(values.shape)
        if shape == (z.shape[0], 1):
            return keras.ops.reshape(values, (-1,))
        if shape != (z.shape[0],):
            raise ValueError(
                f"`f` must map a batch of samples (one-hot vectors [N, K], or bits [N, n]) to one value per row, "
                f"[N]; for input of shape {tuple(z.shape)} it returned shape {shape}."
            )
        return values

    return checked


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def _support(logits, variable):
    """Every value of the variable [C, D], its probability [C] and its score grad log p [C, D], in float64."""
    logits = logits.astype(np.float64)
    if variable == "categorical":
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        values = np.eye(len(logits))
        return values, probabilities, values - probabilities
    values = np.array(list(itertools.product((0.0, 1.0), repeat=len(logits))))  # [2^n, n]
    log_p = values @ _log_sigmoid(logits) + (1.0 - values) @ _log_sigmoid(-logits)
    return values, np.exp(log_p), values - 1.0 / (1.0 + np.exp(-logits))


def exact_gradient(logits, f, variable="categorical", bound_samples=None):
    """The exact gradient of E[f(z)] (or of VIMCO's multi-sample bound) by enumeration.

    Args:
        logits: A vector of K logits (`variable="categorical"`, `-inf` for an
            impossible category) or of n bit logits (`"binary"`, n <= 16).
        f: A function mapping a batch of samples, one-hot vectors [N, K] or
            bits [N, n], to values [N] (or [N, 1]).
        variable: `"categorical"` (z ~ Categorical(softmax(logits))) or
            `"binary"` (independent bits, b_i ~ Bernoulli(sigmoid(logits_i))).
        bound_samples: `None` for the gradient of `E[f(z)]`; an integer
            S >= 2 for that of the multi-sample bound VIMCO estimates,
            `E[log((1/S) sum_s exp f(z_s))]` over S independent samples,
            summed over all C^S tuples of values (at most 2^20).

    Returns:
        A NumPy vector of partial derivatives, one per logit.

    Raises:
        ValueError: For logits, `variable`, `bound_samples` or an output of
            `f` that do not fit.

    Examples:
        >>> import keras, numpy as np
        >>> from keras_gumbel import diagnostics
        >>> f = lambda b: keras.ops.sum(b, axis=-1)  # E[f] = sum sigmoid
        >>> diagnostics.exact_gradient(np.zeros(2, "float32"), f, "binary")
        array([0.25, 0.25])
    """
    variable = _check_variable(variable)
    logits = _check_logits(logits, variable)
    values, probabilities, score = _support(logits, variable)
    if bound_samples is not None:
        bound_samples = _validation.check_int("bound_samples", bound_samples, minimum=2)
        count = len(values) ** bound_samples
        if count > _MAX_TUPLES:
            raise ValueError(
                _validation.invalid(
                    "bound_samples",
                    f"a number of samples S whose {len(values)}^S tuples of values are at most {_MAX_TUPLES} "
                    f"(here {len(values)}^{bound_samples} = {count})",
                    bound_samples,
                )
            )
    rewards = keras.ops.convert_to_numpy(_per_row(f)(keras.ops.convert_to_tensor(values.astype("float32"))))
    rewards = np.asarray(rewards, dtype=np.float64)
    if bound_samples is None:
        return (probabilities * rewards) @ score
    tuples = np.stack(np.unravel_index(np.arange(count), (len(values),) * bound_samples), axis=-1)  # [C^S, S]
    tuple_rewards = rewards[tuples]
    top = tuple_rewards.max(axis=1, keepdims=True)
    bound = top[:, 0] + np.log(np.exp(tuple_rewards - top).mean(axis=1))
    weights = probabilities[tuples].prod(axis=1) * bound
    # grad E[L] = sum_tuples p(tuple) L(tuple) sum_s grad log p(z_s): L has no gradient of its own.
    return sum(weights @ score[tuples[:, s]] for s in range(bound_samples))


def _estimator_object(estimator, temperature, num_draws):
    """The `Estimator` measured: a registered name, made with the options it takes, or an estimator as given."""
    import inspect

    if isinstance(estimator, estimators.Estimator):
        return estimator
    cls, fixed = estimators.registry.entry(estimator)
    parameters = inspect.signature(cls.__init__).parameters
    # Options an estimator takes (the relaxations' temperature and draws, the most values enumerated), unless its
    # name fixes them.
    options = {"temperature": temperature, "num_draws": num_draws, "max_configurations": 2**_MAX_BITS}
    return estimators.get(estimator, **{k: v for k, v in options.items() if k in parameters and k not in fixed})


def _estimates_with_estimator(estimator, logits, f, variable, num_estimates, num_samples, seed, steps):
    """Per-row estimates through an `Estimator`'s `estimate`, as the training helpers call it; and f's rows per row."""
    import tensorflow as tf

    from keras_gumbel.distributions import tfp_distributions

    tfd = tfp_distributions()
    # Binary variables reach an estimator made for categorical ones as two categories, logits [l, 0].
    embedded = variable == "binary" and "binary" not in estimator.variables

    def distribution_of(theta):
        if variable == "categorical":
            return tfd.OneHotCategorical(logits=theta, dtype="float32")
        if embedded:
            pairs = tf.stack([theta, tf.zeros_like(theta)], axis=-1)  # category 0 is the bit 1
            return tfd.Independent(tfd.OneHotCategorical(logits=pairs, dtype="float32"), 1)
        return tfd.Independent(tfd.Bernoulli(logits=theta, dtype="float32"), 1)

    rows = []

    def run(theta, step_seed):
        distribution = distribution_of(theta)
        batch_size = tf.shape(theta)[0]

        def evaluate(actions):  # [S', B, ...] -> [S', B]
            samples = actions[..., 0] if embedded else actions
            samples = tf.reshape(tf.cast(samples, "float32"), [-1, logits.shape[0]])
            rows.append(samples.shape[0])
            return tf.reshape(f(samples), [-1, batch_size])

        def log_prob(actions):
            return tf.cast(distribution.log_prob(actions), "float32")

        loss, _, _ = estimator.estimate(distribution, evaluate, log_prob, num_samples, step_seed, None, True)
        return loss

    estimator.build((None, *logits.shape, *((2,) if embedded else ())))
    generator = keras.random.SeedGenerator(_backend.fold_seed(seed))
    if steps:
        _train_control_variate(estimator, run, logits, steps, generator)
        rows.clear()
    variable_logits = tf.Variable(np.tile(logits, (num_estimates, 1)))
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(variable_logits)
        loss = run(variable_logits, _backend.tf_seed(generator))
    # The loss averages the per-row estimates of -grad E over the rows: undo the mean and the sign.
    gradient = -num_estimates * tape.gradient(loss, variable_logits).numpy()
    return gradient, sum(rows) / num_estimates


def _trainable_variables(estimator):
    return [v for layer in estimator.layers for v in layer.trainable_variables]


def _train_control_variate(estimator, run, logits, steps, generator, batch_size=256):
    """`steps` Adam steps (learning rate 0.01) on the estimator's own loss (REBAR's, RELAX's variance), fixed logits."""
    import tensorflow as tf

    variables = _trainable_variables(estimator)
    optimizer = keras.optimizers.Adam(0.01)
    fixed = tf.constant(np.tile(logits, (batch_size, 1)))

    @tf.function
    def step(step_seed):
        with tf.GradientTape() as tape:
            # The estimator's loss gives its own weights the gradient of the variance, and only them.
            loss = run(fixed, step_seed)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

    for _ in range(steps):
        step(_backend.tf_seed(generator))


def _estimates(
    estimator, logits, f, num_estimates, temperature, num_samples, seed, num_draws, variable, control_variate_steps
):
    """(estimates [num_estimates, D], evaluations of f per estimate)."""
    _backend.require_tensorflow("keras_gumbel.diagnostics", "uses tf.GradientTape")
    variable = _check_variable(variable)
    num_estimates = _validation.check_int("num_estimates", num_estimates, minimum=1)
    num_samples = _validation.check_int("num_samples", num_samples, minimum=1)
    num_draws = _validation.check_int("num_draws", num_draws, minimum=1)
    control_variate_steps = _validation.check_int("control_variate_steps", control_variate_steps, minimum=0)
    temperature = _validation.check_temperature(temperature)
    seed = _validation.check_seed(seed)
    if isinstance(seed, keras.random.SeedGenerator):
        raise TypeError(_validation.invalid("seed", "None or an integer", seed))
    logits = _check_logits(logits, variable).astype("float32")
    estimator = _estimator_object(_check_estimator(estimator, variable), temperature, num_draws)
    estimator.check_num_samples(num_samples)
    if control_variate_steps:
        estimator.build((None, *logits.shape))
        if not _trainable_variables(estimator):
            raise ValueError(
                "Invalid value received for argument `control_variate_steps`. Only estimators with weights of "
                f"their own (a control variate: {_learned()}) have something to train; {estimator!r} has none. "
                f"Received: control_variate_steps={control_variate_steps}"
            )
    estimates, evaluations = _estimates_with_estimator(
        estimator, logits, _per_row(f), variable, num_estimates, num_samples, seed, control_variate_steps
    )
    return estimates, evaluations, estimator


def _learned():
    """The registered names whose estimators have trainable weights (a control variate)."""
    learned = []
    for name in estimators.names():
        estimator = estimators.get(name)
        estimator.build((None, 2))
        if _trainable_variables(estimator):
            learned.append(name)
    return tuple(learned)


def gradient_estimates(
    estimator,
    logits,
    f,
    num_estimates=10_000,
    temperature=1.0,
    num_samples=4,
    seed=0,
    num_draws=10,
    variable="categorical",
    control_variate_steps=0,
):
    """Independent estimates of grad E[f(z)] by one estimator, one per row.

    Args:
        estimator: A registered name (`keras_gumbel.estimators.names()`;
            `estimators_for(variable)` lists those for a kind of variable),
            made with the options below that its constructor takes, or an
            `Estimator` object, measured as given. Among the built-in ones:
            `"gumbel_softmax"` (the pathwise gradient of f at a relaxed sample),
            `"straight_through"` (f at the hard sample, the relaxed gradient),
            `"gumbel_rao"` (f at the hard sample, the relaxed gradient averaged
            over `num_draws` conditional draws),
            `"reinmax"` (f at the hard sample, ReinMax's second-order gradient),
            `"reinforce"` (no baseline),
            `"reinforce_leave_one_out"` (leave-one-out baseline), `"vimco"`
            (it estimates the gradient of the multi-sample bound, see the
            module docstring), `"enumerate"` (the exact expectation over
            every value), `"unordered_set"` (`num_samples` distinct samples),
            `"arm"` and `"disarm"` (binary only: `num_samples / 2` antithetic
            pairs), `"arsm"` (`num_samples` Dirichlet draws, each with its
            swaps), `"rebar"` and `"relax"` (a control variate from the
            relaxation at initial temperature `temperature`).
        logits: A vector of K logits (categorical) or n logits (binary).
        f: A function of a batch of samples, one-hot vectors [N, K] or bits
            [N, n] -> [N] (or [N, 1]); differentiable in relaxed samples for
            the pathwise estimators and `"rebar"`.
        num_estimates: Number of independent estimates.
        temperature: Temperature of the Gumbel estimators, and initial
            temperature of REBAR's and RELAX's relaxation.
        num_samples: Samples per estimate, every estimator alike (the
            `num_samples` of the training helpers; see `estimator`).
        seed: Integer seed (`None`: a different draw each call).
        num_draws: Conditional draws per estimate for `"gumbel_rao"`.
        variable: `"categorical"` or `"binary"`.
        control_variate_steps: For `"rebar"` and `"relax"`: Adam steps
            (learning rate 0.01, 256 estimates a step) that train their
            control variate to lower the variance before measuring, at the
            same logits; 0 measures it as initialised.

    Returns:
        A NumPy array [num_estimates, K or n].

    Raises:
        ValueError: For an unknown `estimator` or `variable`, `"arm"` or
            `"disarm"` with categorical variables, a `num_samples` the
            estimator cannot use, `control_variate_steps` for an estimator
            without a control variate, or bad logits.
        TypeError: For a seed that is not an integer.
        RuntimeError: On a backend other than TensorFlow.
    """
    estimates, _, _ = _estimates(
        estimator, logits, f, num_estimates, temperature, num_samples, seed, num_draws, variable, control_variate_steps
    )
    return estimates


def gradient_bias_variance(
    estimator,
    logits,
    f,
    num_estimates=10_000,
    temperature=1.0,
    num_samples=4,
    seed=0,
    num_draws=10,
    variable="categorical",
    control_variate_steps=0,
):
    """Bias, variance and cost of an estimator of grad E[f(z)] against the exact gradient.

    The arguments are those of `gradient_estimates`. VIMCO is compared with
    the exact gradient of its own objective, the multi-sample bound with S =
    `num_samples` (`exact_gradient(..., bound_samples=num_samples)`).

    Returns:
        A dict: `bias` (norm of mean estimate minus exact),
        `bias_standard_error` (the norm's sampling error, about
        sqrt(variance / num_estimates)), `bias_z` (the largest
        |mean - exact| over the components, in standard errors of that
        component's mean, with a float32 rounding floor of 1e-5 times the largest exact component: about |N(0, 1)|
        for an unbiased estimator), `standard_errors` (each component's
        standard error of the mean, a vector), `variance` (trace of the
        estimates' covariance), `mse` (mean squared error = bias^2 + variance),
        `evaluations` (of f per estimate, as counted), `target` (`"E[f]"`, or
        `"E[log mean_S exp f]"` for VIMCO), `exact` and `mean` (the vectors).

    Raises:
        ValueError, TypeError, RuntimeError: As `gradient_estimates`.
    """
    estimates, evaluations, estimator = _estimates(
        estimator, logits, f, num_estimates, temperature, num_samples, seed, num_draws, variable, control_variate_steps
    )
    bound = estimator.objective == "multi_sample_bound"
    # Statistics in float64: NumPy's float32 mean of 50,000 equal values is off by 5e-4 relative.
    estimates = estimates.astype(np.float64)
    bound_samples = num_samples if bound else None
    exact = exact_gradient(logits, f, variable, bound_samples)
    mean = estimates.mean(axis=0)
    component_variances = estimates.var(axis=0)
    variance = float(component_variances.sum())
    floor = 1e-5 * (1.0 + np.abs(exact).max())
    z = np.abs(mean - exact) / np.sqrt(component_variances / len(estimates) + floor**2)
    return {
        "bias": float(np.linalg.norm(mean - exact)),
        "bias_standard_error": math.sqrt(variance / len(estimates)),
        "bias_z": float(z.max()),
        "variance": variance,
        "mse": float(((estimates - exact) ** 2).sum(axis=1).mean()),
        "standard_errors": np.sqrt(component_variances / len(estimates)),
        "evaluations": float(evaluations),
        "target": f"E[log mean_{num_samples} exp f]" if bound else "E[f]",
        "exact": exact,
        "mean": mean,
    }
