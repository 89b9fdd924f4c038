"""Training with an estimator: `make_train_step` for custom loops, `ReinforceModel` for `fit` (TensorFlow).

Both draw `num_samples` actions per input from the policy's distribution (one
vectorised `sample` call and one `reward_fn` call on `num_samples *
batch_size` rows), hand the actions, their log-probabilities [S, B] and
rewards [S, B] to an `Estimator` (by default `ScoreFunction(baseline,
entropy_weight)`), and minimise the loss it returns, logging its metrics.
They use `tf.GradientTape` and TensorFlow Probability: TensorFlow backend
only (the estimators themselves run on every backend).
"""

import keras

from keras_gumbel import _backend
from keras_gumbel import _validation
from keras_gumbel.estimators._objective import _apply_gradients
from keras_gumbel.estimators._objective import _Objective
from keras_gumbel.estimators._objective import _require_tensorflow
from keras_gumbel.estimators.reinforce_model import ReinforceModel

__all__ = ["make_train_step", "ReinforceModel"]


def make_train_step(
    policy,
    reward_fn,
    optimizer,
    num_samples=1,
    baseline=None,
    entropy_weight=0.0,
    distribution=None,
    seed=None,
    jit_compile=False,
    estimator=None,
):
    """Builds a compiled REINFORCE training step for custom loops.

    Each call draws `num_samples` actions per input from the policy's
    distribution (vectorised: one `sample` call and one `reward_fn` call on
    `num_samples * batch_size` rows), hands them to the estimator (by default
    `ScoreFunction(baseline, entropy_weight)`: `score_function_loss` with the
    chosen baseline and the entropy bonus), and applies the gradients of its
    loss.

    Args:
        policy: A Keras model (or layer) mapping inputs to logits (actions are
            then one-hot samples of `OneHotCategorical(logits)`), or to
            anything `distribution` turns into a TFP distribution. It may
            also return a `tfp.distributions.Distribution` directly.
        reward_fn: `reward_fn(inputs, actions) -> rewards`, one reward per row:
            it receives the inputs repeated `num_samples` times and the
            actions as a batch of `num_samples * batch_size` rows. If the step
            is called with targets, `reward_fn(inputs, actions, targets)`. A
            length known only at run time is checked when the step runs,
            except under XLA, which drops run-time checks.
        optimizer: A Keras optimizer, or its name (`"adam"`). A
            `LossScaleOptimizer` (mixed precision) scales the loss as in `fit`.
        num_samples: Actions drawn per input.
        baseline: `None`, `"leave_one_out"` (needs `num_samples >= 2`),
            `"moving_average"` or a `MovingAverageBaseline`, or a Keras model
            mapping inputs to a predicted reward (trained alongside, by mean
            squared error). See `keras_gumbel.estimators.baselines`.
        entropy_weight: Non-negative weight of the entropy bonus.
        distribution: `None` (`"one_hot_categorical"`), a name:
            `"one_hot_categorical"` (one-hot actions of logits [B, ..., K]),
            `"categorical"` (integer actions) or `"bernoulli"` (one
            independent bit per entry of logits [B, ...]); or a callable
            `policy_output -> Distribution` (e.g. `lambda logits:
            tfd.Normal(logits, 1.0)`): any distribution with `sample` and
            `log_prob` works.
        seed: Integer seed of the sampling stream.
        jit_compile: Compile the step with XLA.
        estimator: A `keras_gumbel.estimators.Estimator`, or a registered
            name (`"disarm"`, see `keras_gumbel.estimators.names()`) or
            config, to use instead of `ScoreFunction(baseline,
            entropy_weight)`; giving it with `baseline` or `entropy_weight`
            raises a `ValueError`.

    Returns:
        A `tf.function` `step(inputs, targets=None) -> dict` of metrics:
        `loss` (the surrogate), `reward` (mean), the estimator's (for
        `ScoreFunction`, when they apply, `baseline`, `baseline_loss`,
        `entropy`) and `gradient_norm`. The step's `estimator` attribute holds
        the estimator, its `baseline` attribute a baseline's layer (a moving
        average, a learned model), if any, its `optimizer` the optimizer, and
        its `state` a `tf.Module` tracking everything training changes (the
        policy, the optimizer, the estimator's layers, the sampling stream):
        `tf.train.Checkpoint(step=step.state)` saves it, and restoring it
        into a step built the same way resumes the run exactly.
    """
    _require_tensorflow("make_train_step")
    import tensorflow as tf

    try:
        optimizer = keras.optimizers.get(optimizer)
    except ValueError as error:
        raise ValueError(_validation.invalid("optimizer", "a Keras optimizer or its name", optimizer)) from error
    objective = _Objective(policy, reward_fn, num_samples, distribution, seed, estimator, baseline, entropy_weight)

    @tf.function(jit_compile=jit_compile)
    def step(inputs, targets=None):
        with tf.GradientTape() as tape:
            policy_output = objective.policy(inputs, training=True)
            loss, metrics = objective(inputs, targets, policy_output, training=True, jit_compile=jit_compile)
            # Optimizers sum gradients over tf.distribute replicas: average them instead.
            loss = loss / _backend.replicas_in_sync()
        metrics["gradient_norm"] = _apply_gradients(optimizer, tape, loss, objective.trainable_variables())
        return metrics

    step.baseline = objective.baseline
    step.estimator = objective.estimator
    step.objective = objective
    step.optimizer = optimizer
    step.state = _step_state(objective, optimizer)
    return step


def _step_state(objective, optimizer):
    """A `tf.Module` tracking all a step's training state, for `tf.train.Checkpoint(step=step.state)`."""
    import tensorflow as tf

    state = tf.Module(name="train_step_state")
    state.policy = objective.policy
    state.optimizer = optimizer
    state.estimator_layers = list(objective.estimator.layers)
    state.seed_generator_state = objective.seed_generator.state
    return state
