"""Estimates of a gradient through the estimators' registry, and their bias, variance and cost.

Private: `keras_gumbel.diagnostics` re-exports `ESTIMATORS`, `estimators_for`, `gradient_estimates` and
`gradient_bias_variance`; import them from there.
"""

import math

import keras
import numpy as np

from keras_gumbel import _backend
from keras_gumbel import _validation
from keras_gumbel import estimators
from keras_gumbel.diagnostics._exact import _MAX_BITS
from keras_gumbel.diagnostics._exact import _check_logits
from keras_gumbel.diagnostics._exact import _check_variable
from keras_gumbel.diagnostics._exact import _per_row
from keras_gumbel.diagnostics._exact import exact_gradient

# The registered names when this module was imported (`estimators_for` and the functions read the registry as it
# is when called, with any estimator registered since).
ESTIMATORS = estimators.names()


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


def _embedded(estimator, variable):
    """Whether binary variables reach `estimator` as two categories, logits [l, 0] (it is made for categorical ones)."""
    return variable == "binary" and "binary" not in estimator.variables


def _estimates_with_estimator(estimator, logits, f, variable, num_estimates, num_samples, seed, steps):
    """Per-row estimates through an `Estimator`'s `estimate`, as the training helpers call it; and f's rows per row."""
    import tensorflow as tf

    from keras_gumbel.distributions import tfp_distributions

    tfd = tfp_distributions()
    embedded = _embedded(estimator, variable)

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
    # Built once, for the logits its policy will have (an embedded bit's two categories included).
    estimator.build((None, *logits.shape, *((2,) if _embedded(estimator, variable) else ())))
    if control_variate_steps:
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
