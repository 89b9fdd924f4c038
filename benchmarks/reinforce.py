"""REINFORCE: cost of one training step by number of samples, and the baselines' variance reduction.

Table 1 times one `make_train_step` step (graph mode) on a contextual bandit
(batch 256, 64 contexts, 32 actions, an MLP policy) with num_samples = 1, 4
and 16, drawn vectorised, against 16 separate single-sample steps.

Table 2 measures the variance of the score-function gradient estimate (per
input, averaged over its 4 samples) on a 4-category problem with positive
rewards, with each baseline, against exact enumeration of the true gradient.

Usage:
    python benchmarks/reinforce.py           # a minute on 2 CPU cores
    python benchmarks/reinforce.py --quick   # smoke run
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402

import keras_gumbel  # noqa: E402

tfd = tfp.distributions


def bandit(num_contexts, num_actions, batch_size, seed=0):
    rng = np.random.default_rng(seed)
    payoff = tf.constant(rng.uniform(size=(num_contexts, num_actions)).astype("float32"))
    contexts = tf.constant(np.eye(num_contexts, dtype="float32")[rng.integers(num_contexts, size=batch_size)])

    def reward_fn(inputs, actions):
        return tf.reduce_sum(actions * tf.matmul(inputs, payoff), -1)

    return contexts, reward_fn


def time_step(step, inputs, repeats, rounds):
    for _ in range(3):
        step(inputs)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            step(inputs)["reward"].numpy()
        samples.append((time.perf_counter() - start) / repeats)
    return statistics.median(samples)


def cost_table(quick):
    num_contexts, num_actions, batch_size = 64, 32, 256
    contexts, reward_fn = bandit(num_contexts, num_actions, batch_size)
    repeats, rounds = (3, 2) if quick else (30, 7)
    print(f"Table 1: one training step, batch {batch_size}, {num_actions} actions, MLP policy (median of {rounds})")
    print("| num_samples | ms/step | x the 1-sample step | vs 16 single-sample steps |")
    print("|---|---|---|---|")
    times = {}
    for num_samples in (1, 4, 16):
        policy = keras.Sequential(
            [keras.Input((num_contexts,)), keras.layers.Dense(128, activation="relu"), keras.layers.Dense(num_actions)]
        )
        baseline = "leave_one_out" if num_samples > 1 else "moving_average"
        step = keras_gumbel.make_train_step(
            policy, reward_fn, keras.optimizers.Adam(1e-3), num_samples=num_samples, baseline=baseline, seed=0
        )
        times[num_samples] = time_step(step, contexts, repeats, rounds)
    for num_samples, seconds in times.items():
        loop = 16 * times[1]
        ratio = seconds / times[1]
        print(f"| {num_samples} | {seconds * 1e3:.3f} | {ratio:.2f} | {seconds / loop:.2f} of {loop * 1e3:.2f} ms |")


def variance_table(quick):
    logits = np.array([0.3, -0.2, 0.5, 0.0], "float32")
    payoff = np.array([6.0, 7.0, 8.0, 9.0], "float32")
    probabilities = np.exp(logits) / np.exp(logits).sum()
    exact = probabilities * (payoff - probabilities @ payoff)
    num_inputs, num_samples = (500, 4) if quick else (20_000, 4)
    print(f"\nTable 2: gradient estimates of d/dlogits E[f], {num_inputs} inputs x {num_samples} samples, rewards 6..9")
    print("| baseline | max abs bias / standard error | total variance | variance reduction |")
    print("|---|---|---|---|")
    reference = None
    for kind in (None, "leave_one_out", "moving_average"):
        theta = tf.Variable(np.tile(logits, (num_inputs, 1)))
        distribution = tfd.OneHotCategorical(logits=theta, dtype="float32")
        actions = distribution.sample(num_samples, seed=tf.constant([0, 1]))
        rewards = tf.reduce_sum(actions * payoff, -1)
        with tf.GradientTape() as tape:
            baseline = None
            if kind == "leave_one_out":
                baseline = keras_gumbel.leave_one_out_baseline(rewards)
            elif kind == "moving_average":
                average = keras_gumbel.MovingAverageBaseline(decay=0.9)
                for _ in range(20):
                    average(tf.reduce_sum(tfd.OneHotCategorical(logits=logits).sample(10) * payoff, -1), training=True)
                baseline = average(rewards, training=False)
            terms = keras_gumbel.score_function_terms(distribution.log_prob(actions), rewards, baseline)
            loss = tf.reduce_sum(tf.reduce_mean(terms, axis=0))
        estimates = -tape.gradient(loss, theta).numpy()
        standard_error = estimates.std(axis=0) / np.sqrt(num_inputs)
        bias = np.max(np.abs(estimates.mean(axis=0) - exact) / standard_error)
        variance = estimates.var(axis=0).sum()
        reference = reference or variance
        print(f"| {kind or 'none'} | {bias:.2f} | {variance:.4f} | {reference / variance:.1f}x |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(f"TF {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU cores")
    cost_table(args.quick)
    variance_table(args.quick)


if __name__ == "__main__":
    main()
