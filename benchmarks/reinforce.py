"""REINFORCE and the other estimators: cost of one training step, and the baselines' variance reduction.

Table 1 times one `make_train_step` step (graph mode) on a contextual bandit
(batch 256, 64 contexts, 32 actions, an MLP policy) with num_samples = 1, 4
and 16, drawn vectorised, against the 1-sample step and 16 separate
single-sample steps.

Table 2 measures the variance of the score-function gradient estimate (per
input, averaged over its 4 samples) on a 4-category problem with positive
rewards, with each baseline, against exact enumeration of the true gradient.

Table 3 times every estimator's `make_train_step` step on the same bandit
against REINFORCE with a leave-one-out baseline at the same number of
evaluations of the reward per input (its `num_samples`), side by side in one
run: the categorical bandit (a `OneHotCategorical` policy over the 32
actions) and its binary version (an `Independent(Bernoulli)` policy over 32
bits, reward the sum of the chosen payoffs). Table 4 times VIMCO with 2, 4
and 16 samples against its 2-sample step (VIMCO has no 1-sample step: each
sample's baseline is built from the others) and the 1-sample REINFORCE step.
Both use the paired timing of `benchmarks/speed.py`: each round runs every
step function for a fixed number of steps in a shuffled order, a ratio is
taken round by round (the two ran seconds apart, so the machine's load
cancels), and the table gives the median ratio with a distribution-free 95%
interval; for wall time and for the CPU time of the process (which a loaded
machine does not stretch).

Usage:
    python benchmarks/reinforce.py               # 15 minutes on 2 loaded CPU cores
    python benchmarks/reinforce.py --tables 3,4  # the estimators' step times only
    python benchmarks/reinforce.py --quick       # smoke run
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402

import keras_gumbel  # noqa: E402
from keras_gumbel import estimators  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from speed import median_interval  # noqa: E402
from speed import time_rounds_by_clock  # noqa: E402

tfd = tfp.distributions

NUM_CONTEXTS, NUM_ACTIONS, BATCH_SIZE = 64, 32, 256


def bandit(num_contexts, num_actions, batch_size, seed=0):
    rng = np.random.default_rng(seed)
    payoff = tf.constant(rng.uniform(size=(num_contexts, num_actions)).astype("float32"))
    contexts = tf.constant(np.eye(num_contexts, dtype="float32")[rng.integers(num_contexts, size=batch_size)])

    def reward_fn(inputs, actions):
        return tf.reduce_sum(actions * tf.matmul(inputs, payoff), -1)

    return contexts, reward_fn


def cost_table(rounds, min_seconds):
    counts = (1, 4, 16)
    # The 1-sample step with a moving-average baseline (leave-one-out needs 2 samples), the others leave-one-out.
    steps = [timed_step(num_samples=n, baseline="leave_one_out" if n > 1 else "moving_average") for n in counts]
    wall, cpu = time_rounds_with_cpu(steps, rounds, min_seconds)
    print(
        f"Table 1: one training step, batch {BATCH_SIZE}, {NUM_ACTIONS} actions, MLP policy; {rounds} rounds, "
        "ratios to the 1-sample step paired round by round, median [95% interval]"
    )
    print("| num_samples | ms/step | wall / the 1-sample step | CPU / the 1-sample step | vs 16 single-sample steps |")
    print("|---|---|---|---|---|")
    for index, num_samples in enumerate(counts):
        loop = [16 * one for one in wall[0]]
        value, _, _ = median_interval([a / b for a, b in zip(wall[index], loop)])
        print(
            f"| {num_samples} | {statistics.median(wall[index]):.3f} | {ratio_cell(wall, index, 0)} "
            f"| {ratio_cell(cpu, index, 0)} | {value:.2f} of {statistics.median(loop):.2f} ms |"
        )


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


def bernoulli_policy(logits):
    return tfd.Independent(tfd.Bernoulli(logits=logits, dtype="float32"), 1)


def timed_step(estimator=None, num_samples=1, binary=False, baseline=None, seed=0):
    """A zero-argument function running one `make_train_step` step on the bandit (and waiting for it)."""
    contexts, reward_fn = bandit(NUM_CONTEXTS, NUM_ACTIONS, BATCH_SIZE)
    policy = keras.Sequential(
        [keras.Input((NUM_CONTEXTS,)), keras.layers.Dense(128, activation="relu"), keras.layers.Dense(NUM_ACTIONS)]
    )
    step = keras_gumbel.make_train_step(
        policy,
        reward_fn,
        keras.optimizers.Adam(1e-3),
        num_samples=num_samples,
        baseline=baseline,
        distribution=bernoulli_policy if binary else None,
        seed=seed,
        estimator=estimator,
    )
    return lambda: step(contexts)["loss"].numpy()


# (label, binary policy, estimator factory, num_samples, evaluations of the reward per input).
ARSM_EVALUATIONS = 1 + NUM_ACTIONS * (NUM_ACTIONS - 1) // 2
ESTIMATOR_ROWS = (
    ("VIMCO, S = 4", False, lambda: estimators.VIMCO(), 4, 4),
    ("VIMCO, S = 16", False, lambda: estimators.VIMCO(), 16, 16),
    ("unordered set, k = 4", False, lambda: estimators.UnorderedSet(), 4, 4),
    ("enumeration (K = 32)", False, lambda: estimators.Enumerate(), 1, NUM_ACTIONS),
    ("ARSM, 1 draw", False, lambda: estimators.ARSM(), 1, ARSM_EVALUATIONS),
    ("REBAR, S = 4", False, lambda: estimators.REBAR(), 4, 12),
    ("RELAX, S = 4", False, lambda: estimators.RELAX(event_shape=(NUM_ACTIONS,)), 4, 4),
    ("ARM, 2 pairs (bits)", True, lambda: estimators.ARM(), 4, 4),
    ("DisARM, 2 pairs (bits)", True, lambda: estimators.DisARM(), 4, 4),
    ("REBAR, S = 4 (bits)", True, lambda: estimators.REBAR(), 4, 12),
    ("RELAX, S = 4 (bits)", True, lambda: estimators.RELAX(event_shape=(NUM_ACTIONS,)), 4, 4),
)


def time_rounds_with_cpu(steps, rounds, min_seconds, seed=0):
    """`speed.time_rounds` timing both clocks in the same rounds: (wall ms, CPU ms) per step per round.

    CPU time (`time.process_time`, all the process's threads, as `speed.py
    --cpu-time`) is what the step costs this process whatever else the
    machine runs: a loaded machine stretches the wall time of a step while it
    waits for a core, much less its CPU time.
    """
    return time_rounds_by_clock(steps, rounds, min_seconds, (time.perf_counter, time.process_time), seed)


def paired(samples, index, reference):
    """Median of the round-by-round ratios samples[index] / samples[reference], and its 95% interval."""
    return median_interval([a / b for a, b in zip(samples[index], samples[reference])])


def ratio_cell(samples, index, reference):
    value, low, high = paired(samples, index, reference)
    return f"{value:.2f} [{low:.2f}, {high:.2f}]"


def estimator_table(quick, rounds, min_seconds):
    rows = ESTIMATOR_ROWS[:1] + ESTIMATOR_ROWS[6:8] if quick else ESTIMATOR_ROWS
    steps = [timed_step(factory(), num_samples, binary) for _, binary, factory, num_samples, _ in rows]
    # The references, after the estimators: REINFORCE leave-one-out at each estimator's number of evaluations.
    keys = list(dict.fromkeys((binary, evaluations) for _, binary, _, _, evaluations in rows))
    steps += [
        timed_step(num_samples=evaluations, binary=binary, baseline="leave_one_out") for binary, evaluations in keys
    ]
    wall, cpu = time_rounds_with_cpu(steps, rounds, min_seconds)
    print(
        f"\nTable 3: one make_train_step step (graph mode) of each estimator against REINFORCE with a leave-one-out "
        f"baseline (LOO) at the same evaluations of the reward per input; bandit of Table 1, batch {BATCH_SIZE}; "
        f"{rounds} rounds; ratios paired round by round, median [95% interval]"
    )
    print("| estimator | evaluations | wall ms/step (LOO's) | CPU ms/step (LOO's) | wall / LOO's | CPU / LOO's |")
    print("|---|---|---|---|---|---|")
    for index, (label, binary, _, _, evaluations) in enumerate(rows):
        reference = len(rows) + keys.index((binary, evaluations))
        times = [f"{statistics.median(t[index]):.2f} ({statistics.median(t[reference]):.2f})" for t in (wall, cpu)]
        print(
            f"| {label} | {evaluations} | {times[0]} | {times[1]} | {ratio_cell(wall, index, reference)} "
            f"| {ratio_cell(cpu, index, reference)} |"
        )


def vimco_table(rounds, min_seconds):
    counts = (2, 4, 16)
    steps = [timed_step(estimators.VIMCO(), num_samples) for num_samples in counts]
    steps.append(timed_step(num_samples=1, baseline="moving_average"))  # Table 1's 1-sample step
    wall, cpu = time_rounds_with_cpu(steps, rounds, min_seconds)
    print(
        "\nTable 4: VIMCO by number of samples (vectorised), against its 2-sample step (it has no 1-sample step) "
        f"and the 1-sample REINFORCE step of Table 1 ({statistics.median(wall[-1]):.2f} ms, CPU "
        f"{statistics.median(cpu[-1]):.2f} ms); {rounds} rounds; "
        "paired ratios, median [95% interval]"
    )
    print(
        "| num_samples | ms/step | wall / 2-sample VIMCO | CPU / 2-sample VIMCO | wall / 1-sample REINFORCE "
        "| CPU / 1-sample REINFORCE |"
    )
    print("|---|---|---|---|---|---|")
    for index, num_samples in enumerate(counts):
        print(
            f"| {num_samples} | {statistics.median(wall[index]):.2f} | {ratio_cell(wall, index, 0)} "
            f"| {ratio_cell(cpu, index, 0)} | {ratio_cell(wall, index, len(counts))} "
            f"| {ratio_cell(cpu, index, len(counts))} |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tables", default="1,2,3,4", help="which tables to print, e.g. 3,4")
    parser.add_argument("--rounds", type=int, default=21, help="timing rounds of Tables 3 and 4")
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"TF {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU cores, load average {load:.1f}")
    rounds, min_seconds = (3, 0.02) if args.quick else (args.rounds, 0.3)
    tables = {int(table) for table in args.tables.split(",")}
    if 1 in tables:
        cost_table(rounds, min_seconds)
    if 2 in tables:
        variance_table(args.quick)
    if 3 in tables:
        estimator_table(args.quick, rounds, min_seconds)
    if 4 in tables:
        vimco_table(rounds, min_seconds)


if __name__ == "__main__":
    main()
