"""Forward + backward time of Gumbel-Softmax implementations, side by side in one run.

Compared on each shape, in TensorFlow graph mode (`tf.function`) and under XLA
(`jit_compile=True`):

- keras_gumbel: `GumbelSoftmax` and `StraightThroughGumbel` layers (training=True).
- hand-written TF: `softmax((logits - log(-log(u + eps) + eps)) / t)`, and its
  straight-through form `one_hot(argmax(y)) - stop_gradient(y) + y`.
- TFP: `tfd.RelaxedOneHotCategorical(t, logits).sample()` (and the same
  straight-through wrapper).
- PyTorch `F.gumbel_softmax(hard=False/True)`, eager, where torch is installed.

Each step draws a sample, takes `sum(sample * weights)` and its gradient with
respect to the logits. Timing: after warm-up, the contenders are timed in
interleaved rounds (so that drift in machine load hits all alike); the table
shows the median milliseconds per step and the ratio of ours to the fastest
alternative of the same kind (relaxed vs relaxed, straight-through vs
straight-through) in the same mode.

Usage:
    python benchmarks/speed.py                 # the three standard shapes
    python benchmarks/speed.py --quick         # a seconds-long smoke run
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_gumbel  # noqa: E402

SHAPES = [(1024, 20, 10), (64, 32000), (4096, 64)]
TEMPERATURE = 0.5


def hand_relaxed(logits):
    u = tf.random.uniform(tf.shape(logits))
    eps = 1e-20
    gumbel = -tf.math.log(-tf.math.log(u + eps) + eps)
    return tf.nn.softmax((logits + gumbel) / TEMPERATURE)


def straight_through(relaxed):
    def sample(logits):
        y = relaxed(logits)
        hard = tf.one_hot(tf.argmax(y, axis=-1), tf.shape(y)[-1], dtype=y.dtype)
        return hard - tf.stop_gradient(y) + y

    return sample


def tfp_relaxed(logits):
    import tensorflow_probability as tfp

    return tfp.distributions.RelaxedOneHotCategorical(TEMPERATURE, logits=logits).sample()


def make_tf_step(sample_fn, shape, jit_compile):
    logits = tf.Variable(tf.random.normal(shape, seed=1))
    weights = tf.random.normal(shape, seed=2)

    @tf.function(jit_compile=jit_compile)
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(sample_fn(logits) * weights)
        return tape.gradient(loss, logits)

    return lambda: step().numpy()


def make_torch_step(shape, hard):
    import torch
    import torch.nn.functional as F

    logits = torch.randn(shape, requires_grad=True)
    weights = torch.randn(shape)

    def step():
        sample = F.gumbel_softmax(logits, tau=TEMPERATURE, hard=hard)
        (sample * weights).sum().backward()
        logits.grad = None

    return step


def contenders(shape, modes):
    """Yields (kind, name, mode, step) for every implementation and mode."""
    relaxed_layer = keras_gumbel.GumbelSoftmax(temperature=TEMPERATURE, seed=0)
    hard_layer = keras_gumbel.StraightThroughGumbel(temperature=TEMPERATURE, seed=0)
    tf_functions = [
        ("relaxed", "keras_gumbel.GumbelSoftmax", lambda x: relaxed_layer(x, training=True)),
        ("relaxed", "hand-written TF", hand_relaxed),
        ("relaxed", "TFP RelaxedOneHotCategorical", tfp_relaxed),
        ("straight-through", "keras_gumbel.StraightThroughGumbel", lambda x: hard_layer(x, training=True)),
        ("straight-through", "hand-written TF", straight_through(hand_relaxed)),
        ("straight-through", "TFP RelaxedOneHotCategorical", straight_through(tfp_relaxed)),
    ]
    for mode in modes:
        for kind, name, fn in tf_functions:
            yield kind, name, mode, make_tf_step(fn, shape, jit_compile=(mode == "XLA"))
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    yield "relaxed", "PyTorch F.gumbel_softmax", "eager", make_torch_step(shape, hard=False)
    yield "straight-through", "PyTorch F.gumbel_softmax", "eager", make_torch_step(shape, hard=True)


def time_all(steps, rounds, min_seconds):
    """Median seconds per step for each step function, timed in interleaved rounds."""
    repeats = []
    for step in steps:
        for _ in range(3):
            step()
        start, count = time.perf_counter(), 0
        while time.perf_counter() - start < min_seconds:
            step()
            count += 1
        repeats.append(max(1, count))
    samples = [[] for _ in steps]
    for _ in range(rounds):
        for index, step in enumerate(steps):
            start = time.perf_counter()
            for _ in range(repeats[index]):
                step()
            samples[index].append((time.perf_counter() - start) / repeats[index])
    return [statistics.median(s) for s in samples]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes and few rounds (smoke test)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--min-seconds", type=float, default=0.2, help="time per round and contender")
    parser.add_argument("--no-xla", action="store_true")
    args = parser.parse_args()
    shapes = [(8, 4, 5), (16, 50)] if args.quick else SHAPES
    rounds = 2 if args.quick else args.rounds
    min_seconds = 0.01 if args.quick else args.min_seconds
    modes = ["graph"] if args.no_xla else ["graph", "XLA"]

    print(
        f"TF {tf.__version__}, Keras {keras.__version__}, keras_gumbel {keras_gumbel.__version__}, "
        f"{os.cpu_count()} CPU cores; temperature {TEMPERATURE}; median of {rounds} interleaved rounds"
    )
    header = (
        f"| {'shape':<15} | {'kind':<16} | {'implementation':<34} | {'mode':<5} "
        f"| {'ms/step':>8} | {'ours / fastest other':>20} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    worst = {}
    for shape in shapes:
        rows = list(contenders(shape, modes))
        times = time_all([row[3] for row in rows], rounds, min_seconds)
        results = [(kind, name, mode, t) for (kind, name, mode, _), t in zip(rows, times)]
        for kind, name, mode, seconds in results:
            ratio = ""
            if name.startswith("keras_gumbel"):
                # Graph mode is compared with every non-XLA alternative (PyTorch's eager
                # included); XLA with the other XLA ones.
                others = [
                    t
                    for k, n, m, t in results
                    if k == kind and not n.startswith("keras_gumbel") and (m == "XLA") == (mode == "XLA")
                ]
                value = seconds / min(others)
                ratio = f"{value:.2f}"
                worst[(kind, mode)] = max(worst.get((kind, mode), 0.0), value)
            print(f"| {str(shape):<15} | {kind:<16} | {name:<34} | {mode:<5} | {seconds * 1e3:8.3f} | {ratio:>20} |")
    print()
    for (kind, mode), value in sorted(worst.items()):
        print(f"worst ratio, {kind}, {mode}: {value:.2f}")


if __name__ == "__main__":
    main()
