"""REINFORCE against the Gumbel estimators on a small discrete task, with exact expected rewards.

The task: choose one of K = 20 items whose values `x_k` are spread over [0, 1];
the reward of item k is `4 - 10 (x_k - 0.43)^2`, so the best item is the one
closest to 0.43, and every reward is positive (1.75 to 4.0): an offset that
only a baseline can remove from REINFORCE's gradient (a leave-one-out
baseline removes it exactly; the Gumbel estimators' gradients ignore it). The
policy is `Categorical(softmax(theta))`, theta learned by Adam from zero.
The Gumbel estimators see the reward through the sample:
`4 - 10 (sample . x - 0.43)^2`, which for a relaxed sample is a different
(biased) objective. Every step, each estimator spends the same budget of
`--samples` reward evaluations (one batch of samples), and the exact expected
reward `sum_k p_k R_k` is recorded by enumeration.

Estimators: Gumbel-Softmax and straight-through (temperature 1 -> 0.5,
`ExponentialDecay`), and REINFORCE with no baseline, a moving-average baseline
and a leave-one-out baseline.

Usage:
    python examples/estimator_comparison.py --output outputs/estimator_comparison
"""

import argparse
import json
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_gumbel  # noqa: E402

NUM_ITEMS, TARGET, OFFSET = 20, 0.43, 4.0
VALUES = np.linspace(0.0, 1.0, NUM_ITEMS).astype("float32")
REWARDS = OFFSET - 10.0 * (VALUES - TARGET) ** 2
assert REWARDS.min() > 0  # the point of the offset


def reward_of(samples):
    """Reward through a (possibly relaxed) sample: OFFSET - 10 (sample . x - target)^2."""
    return OFFSET - 10.0 * tf.square(tf.reduce_sum(samples * VALUES, -1) - TARGET)


def train(estimator, steps, samples, learning_rate, seed):
    theta = tf.Variable(tf.zeros(NUM_ITEMS))
    optimizer = keras.optimizers.Adam(learning_rate)
    schedule = keras_gumbel.schedules.ExponentialDecay(1.0, rate=5e-3, minimum=0.5, update_every=10)
    relaxed = keras_gumbel.GumbelSoftmax(seed=seed)
    straight_through = keras_gumbel.StraightThroughGumbel(seed=seed)
    average = keras_gumbel.MovingAverageBaseline(decay=0.9)
    generator = keras.random.SeedGenerator(seed)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            logits = tf.tile(theta[None], (samples, 1))
            if estimator in ("gumbel_softmax", "straight_through"):
                layer = relaxed if estimator == "gumbel_softmax" else straight_through
                loss = -tf.reduce_mean(reward_of(layer(logits, training=True)))
            else:
                choice = tf.stop_gradient(keras_gumbel.ops.gumbel_softmax(logits, hard=True, seed=generator))
                log_prob = tf.reduce_sum(choice * tf.nn.log_softmax(logits), -1)
                reward = reward_of(choice)
                baseline = None
                if estimator == "reinforce_leave_one_out":
                    baseline = keras_gumbel.leave_one_out_baseline(reward)
                elif estimator == "reinforce_moving_average":
                    baseline = average(reward, training=True)
                loss = keras_gumbel.score_function_loss(log_prob, reward, baseline)
        optimizer.apply_gradients([(tape.gradient(loss, theta), theta)])

    curve = []
    for index in range(steps):
        relaxed.temperature.assign(schedule(index))
        straight_through.temperature.assign(schedule(index))
        step()
        probabilities = tf.nn.softmax(theta).numpy()
        curve.append(float(probabilities @ REWARDS))
    return curve


ESTIMATORS = (
    "gumbel_softmax",
    "straight_through",
    "reinforce_no_baseline",
    "reinforce_moving_average",
    "reinforce_leave_one_out",
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--output", default="outputs/estimator_comparison")
    args = parser.parse_args(argv)
    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    best, uniform = REWARDS.max(), REWARDS.mean()
    curves = {
        name: np.mean(
            [train(name, args.steps, args.samples, args.learning_rate, seed) for seed in range(args.seeds)], 0
        )
        for name in ESTIMATORS
    }
    print(f"K = {NUM_ITEMS} items, {args.samples} samples per step, {args.steps} steps, mean of {args.seeds} seeds")
    print(f"exact expected reward: uniform policy {uniform:.4f}, best item {best:.4f}\n")
    print("| estimator | expected reward at the end | regret at the end | steps to halve the initial regret |")
    print("|---|---|---|---|")
    summary = {}
    for name, curve in curves.items():
        regret = best - curve
        # curve[i] is measured after i + 1 steps.
        below = regret <= (best - uniform) / 2
        halved = int(np.argmax(below)) + 1 if below.any() else None
        summary[name] = {"final_expected_reward": float(curve[-1]), "final_regret": float(regret[-1]), "halved": halved}
        print(f"| {name} | {curve[-1]:.5f} | {regret[-1]:.5f} | {halved if halved is not None else 'never'} |")
    (output / "summary.json").write_text(json.dumps(summary, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.5))
    for name, curve in curves.items():
        axis.plot(best - curve, label=name)
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("regret: best - exact expected reward")
    axis.legend()
    axis.set_title(f"a {NUM_ITEMS}-item choice, {args.samples} samples per step (mean of {args.seeds} seeds)")
    figure.tight_layout()
    figure.savefig(output / "estimator_comparison.png", dpi=90)
    print(f"\nwrote {output / 'estimator_comparison.png'}")


if __name__ == "__main__":
    main()
