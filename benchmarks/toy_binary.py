"""The toy of Tucker et al. (2017) and Grathwohl et al. (2018): minimise E[(b - t)^2], b ~ Bernoulli(sigmoid(theta)).

For t < 1/2 the optimum is p = sigmoid(theta) -> 0 (theta -> -inf), but the
gradient, p (1 - p) (1 - 2t), is tiny next to the noise of a sampled estimate
when t is close to 1/2: at t = 0.499 it is 5e-4 at p = 1/2, while a
one-sample REINFORCE estimate is of size 0.25. Each estimator trains theta
from 0 with Adam (learning rate 0.01, one input a step, as in the papers'
code), through `keras_gumbel.make_train_step` (the score function, ARM,
DisARM, REBAR, RELAX) or a custom loop (straight-through and Gumbel-Softmax,
which differentiate the reward through `ops.relaxed_bernoulli`). Every
`--log-every` steps the variance of the estimator's gradient of E[reward]
with respect to theta is measured at the current parameters (and control
variate) from `--estimates` independent estimates.

Prints a table per target (evaluations of the reward per step, the log10
variance at theta = 0, the same point for every estimator, and its mean over
training, where each estimator follows its own path; the final theta and p)
and writes a figure with the curves of p and of the log10 variance, as
Grathwohl et al. (2018) plot them in their Fig. 1. A variance of 0 (every
estimate 0) is left out of the curves and means.

Usage:
    python benchmarks/toy_binary.py [--steps 10000] [--targets 0.45 0.49 0.499]
        [--output docs/figures/toy_binary.png]
"""

import argparse
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402

import keras_gumbel  # noqa: E402
from keras_gumbel import estimators  # noqa: E402

tfd = tfp.distributions

# name -> (estimator factory or None for a pathwise one, samples per step, evaluations of f per step)
ESTIMATORS = {
    "REINFORCE": (lambda: estimators.ScoreFunction(), 1, "1"),
    "REINFORCE, leave-one-out": (lambda: estimators.ScoreFunction("leave_one_out"), 2, "2"),
    "ARM": (lambda: estimators.ARM(), 2, "2"),
    "DisARM": (lambda: estimators.DisARM(), 2, "2"),
    "REBAR": (lambda: estimators.REBAR(), 1, "1 + 2 relaxed"),
    "RELAX": (lambda: estimators.RELAX(event_shape=(1,)), 1, "1 (+ 2 of c)"),
    "straight-through (t = 1)": (None, 1, "1 relaxed"),
    "Gumbel-Softmax (t = 0.5)": (None, 1, "1 relaxed"),
}


class Theta(keras.layers.Layer):
    """The one parameter: theta, the logit of every input's Bernoulli variable."""

    def build(self, input_shape):
        self.theta = self.add_weight(shape=(1,), initializer="zeros", name="theta")

    def call(self, inputs):
        return tf.zeros_like(inputs[:, :1]) + self.theta


def bernoulli(logits):
    return tfd.Independent(tfd.Bernoulli(logits=logits), 1)


def make_reward(target):
    def reward(inputs, actions):
        return -tf.reduce_sum((tf.cast(actions, tf.float32) - target) ** 2, -1)

    return reward


def pathwise_settings(name):
    return (1.0, True) if name.startswith("straight-through") else (0.5, False)


def build(name, target, learning_rate, seed):
    """Returns (policy, step, variance): a training step and a function measuring the gradient's variance."""
    factory, num_samples, _ = ESTIMATORS[name]
    policy = keras.Sequential([keras.Input((1,)), Theta()])
    reward = make_reward(target)
    optimizer = keras.optimizers.Adam(learning_rate)
    if factory is not None:
        estimator = factory()
        step = keras_gumbel.make_train_step(
            policy, reward, optimizer, num_samples=num_samples, distribution=bernoulli, estimator=estimator, seed=seed
        )

        @tf.function(autograph=False)
        def variance(num_estimates, seed_tensor):
            # One estimate per row of a batch of copies of theta: the loss averages the rows.
            logits = tf.zeros([num_estimates, 1]) + policy.layers[-1].theta
            with tf.GradientTape() as tape:
                tape.watch(logits)
                distribution = bernoulli(logits)
                inputs = tf.zeros([num_estimates, 1])
                loss, _, _ = estimator.estimate(
                    distribution,
                    lambda actions: tf.reshape(reward(None, actions), tf.shape(actions)[:2]),
                    lambda actions: distribution.log_prob(actions),
                    num_samples,
                    seed_tensor,
                    inputs,
                    training=False,
                )
            estimates = -tape.gradient(loss, logits)[:, 0] * num_estimates
            return tf.math.reduce_variance(estimates)

        return policy, step, variance

    temperature, hard = pathwise_settings(name)
    generator = keras.random.SeedGenerator(seed)
    inputs = tf.zeros([1, 1])

    def relaxed_reward(logits, seed_value):
        sample = keras_gumbel.ops.relaxed_bernoulli(logits, temperature, hard=hard, seed=seed_value)
        return -tf.reduce_sum((sample - target) ** 2, -1)

    @tf.function(autograph=False)
    def step(_):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(relaxed_reward(policy(inputs), generator))
        gradients = tape.gradient(loss, policy.trainable_variables)
        optimizer.apply_gradients(zip(gradients, policy.trainable_variables))
        return {"loss": loss}

    @tf.function(autograph=False)
    def variance(num_estimates, seed_tensor):
        logits = tf.zeros([num_estimates, 1]) + policy.layers[-1].theta
        with tf.GradientTape() as tape:
            tape.watch(logits)
            total = tf.reduce_sum(relaxed_reward(logits, seed_tensor))
        return tf.math.reduce_variance(tape.gradient(total, logits)[:, 0])

    return policy, step, variance


def run(name, target, args):
    policy, step, variance = build(name, target, args.learning_rate, args.seed)
    inputs = np.zeros((1, 1), "float32")
    thetas, log_variances = [], []
    for index in range(args.steps):
        if index % args.log_every == 0:
            measured = float(variance(args.estimates, tf.constant([args.seed, index], tf.int32)))
            # 0 when every estimate is 0 (DisARM at p = 1/2 is exact; far from it the pairs rarely differ).
            log_variances.append((index, math.log10(measured) if measured > 1e-12 else math.nan))
        step(inputs)
        thetas.append(float(policy.layers[-1].theta.numpy()[0]))
    return np.array(thetas), np.array(log_variances)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--targets", type=float, nargs="+", default=[0.45, 0.49, 0.499])
    parser.add_argument("--estimators", nargs="+", default=list(ESTIMATORS), choices=list(ESTIMATORS))
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument("--estimates", type=int, default=100_000, help="estimates per variance measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="docs/figures/toy_binary.png")
    args = parser.parse_args()

    results = {}
    for target in args.targets:
        print(f"\nt = {target}: {args.steps} Adam steps (learning rate {args.learning_rate}) from theta = 0")
        print(
            "| estimator | evaluations of f a step | log10 variance at theta = 0 | mean log10 variance over "
            "training | final theta | final p = sigmoid(theta) |"
        )
        print("|---|---|---|---|---|---|")
        for name in args.estimators:
            thetas, log_variances = run(name, target, args)
            results[target, name] = (thetas, log_variances)
            theta, start = thetas[-1], log_variances[0, 1]
            print(
                f"| {name} | {ESTIMATORS[name][2]} | {'exact (0)' if math.isnan(start) else f'{start:.2f}'} "
                f"| {np.nanmean(log_variances[:, 1]):.2f} | {theta:.2f} | {1 / (1 + math.exp(-theta)):.3g} |",
                flush=True,
            )
    if args.output:
        plot(results, args)


def plot(results, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, len(args.targets), figsize=(4.2 * len(args.targets), 6.4), squeeze=False)
    for column, target in enumerate(args.targets):
        for name in args.estimators:
            thetas, log_variances = results[target, name]
            style = "--" if ESTIMATORS[name][0] is None else "-"
            axes[0, column].plot(1 / (1 + np.exp(-thetas)), style, label=name, linewidth=1)
            axes[1, column].plot(log_variances[:, 0], log_variances[:, 1], style, label=name, linewidth=1)
        axes[0, column].set_title(f"t = {target}")
        axes[0, column].set_ylabel("p = sigmoid(theta)")
        axes[0, column].set_ylim(-0.02, 1.02)
        axes[1, column].set_ylabel("log10 variance of the gradient")
        axes[1, column].set_xlabel("step")
    axes[0, 0].legend(fontsize=7)
    figure.suptitle("minimise E[(b - t)^2], b ~ Bernoulli(sigmoid(theta)): keras_gumbel's estimators")
    figure.tight_layout()
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    figure.savefig(args.output, dpi=110)
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
