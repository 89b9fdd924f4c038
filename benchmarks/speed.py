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
rounds; each round runs every contender once, in a shuffled order, for a fixed
number of steps. A contender's time is its median milliseconds per step over
the rounds. Ours is compared with the alternative of the same kind (relaxed vs
relaxed, straight-through vs straight-through) and mode class (graph mode vs
every non-XLA alternative, XLA vs XLA) that has the lowest median: the ratio
is taken round by round (ours and it ran seconds apart, so drift in the
machine's load cancels) and the table shows the median of those paired ratios
with a distribution-free 95% confidence interval (order statistics of the
binomial). Single rounds on a shared 2-core machine move by +-5%; the paired
ratio's interval is what says whether a difference is real.

On the other backends (`--backend jax`, `--backend torch`), the same shapes
and the same paired ratios, against each backend's native sampler:

- JAX: `keras_gumbel.ops.gumbel_softmax(x, t, hard, seed=key)` against a
  hand-written sampler (`jax.random.gumbel`, `jax.nn.softmax`, and
  `y + stop_gradient(one_hot(argmax(y)) - y)` for straight-through), both
  inside one `jax.jit` step that splits its key, as a JAX user writes it.
- PyTorch: `keras_gumbel.ops.gumbel_softmax(x, t, hard, seed=generator)` and
  the `GumbelSoftmax` / `StraightThroughGumbel` layers against
  `torch.nn.functional.gumbel_softmax`, eager.

Usage:
    python benchmarks/speed.py                 # the three standard shapes
    python benchmarks/speed.py --quick         # a seconds-long smoke run
    python benchmarks/speed.py --kernels       # also: what one graph-mode step is made of
    python benchmarks/speed.py --backend jax   # the JAX table (also: torch)
    python benchmarks/speed.py --cpu-time      # CPU time instead of wall-clock (a shared machine)
"""

import argparse
import math
import os
import random
import statistics
import sys
import time


def _requested_backend(argv):
    """The `--backend` argument, read before Keras is imported (it fixes its backend on import)."""
    for index, arg in enumerate(argv):
        if arg == "--backend" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--backend="):
            return arg.split("=", 1)[1]
    return "tensorflow"


BACKEND = _requested_backend(sys.argv[1:])
os.environ["KERAS_BACKEND"] = BACKEND
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import keras_gumbel  # noqa: E402

if BACKEND == "tensorflow":
    import tensorflow as tf

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


def make_jax_step(sample_fn, shape):
    """A jitted forward + backward step of `sample_fn(logits, key)`; each call splits the carried key."""
    import jax

    logits = jax.random.normal(jax.random.key(1), shape)
    weights = jax.random.normal(jax.random.key(2), shape)

    @jax.jit
    def step(logits, key):
        key, subkey = jax.random.split(key)
        grads = jax.grad(lambda x: jax.numpy.sum(sample_fn(x, subkey) * weights))(logits)
        return grads, key

    state = {"key": jax.random.key(0)}

    def run():
        grads, state["key"] = step(logits, state["key"])
        grads.block_until_ready()

    return run


def jax_hand_written(hard):
    import jax

    def sample(logits, key):
        y = jax.nn.softmax((logits + jax.random.gumbel(key, logits.shape)) / TEMPERATURE)
        if not hard:
            return y
        one_hot = jax.nn.one_hot(jax.numpy.argmax(y, axis=-1), y.shape[-1], dtype=y.dtype)
        return y + jax.lax.stop_gradient(one_hot - y)

    return sample


def make_torch_ours_step(shape, hard, layer):
    import torch

    torch.manual_seed(0)
    logits = torch.randn(shape, requires_grad=True)
    weights = torch.randn(shape)
    if layer:
        layer_class = keras_gumbel.StraightThroughGumbel if hard else keras_gumbel.GumbelSoftmax
        sample_layer = layer_class(temperature=TEMPERATURE, seed=0)

        def sample():
            return sample_layer(logits, training=True)
    else:
        generator = keras.random.SeedGenerator(0)

        def sample():
            return keras_gumbel.ops.gumbel_softmax(logits, TEMPERATURE, hard=hard, seed=generator)

    def step():
        (sample() * weights).sum().backward()
        logits.grad = None

    return step


def other_backend_contenders(shape):
    """Yields (kind, name, mode, step) on JAX or PyTorch."""
    if BACKEND == "jax":
        for kind, hard in (("relaxed", False), ("straight-through", True)):

            def ours(logits, key, hard=hard):
                return keras_gumbel.ops.gumbel_softmax(logits, TEMPERATURE, hard=hard, seed=key)

            yield kind, "keras_gumbel.ops.gumbel_softmax", "jit", make_jax_step(ours, shape)
            yield kind, "hand-written JAX", "jit", make_jax_step(jax_hand_written(hard), shape)
        return
    for kind, hard in (("relaxed", False), ("straight-through", True)):
        yield kind, "keras_gumbel.ops.gumbel_softmax", "eager", make_torch_ours_step(shape, hard, layer=False)
        layer_name = "keras_gumbel." + ("StraightThroughGumbel" if hard else "GumbelSoftmax")
        yield kind, layer_name, "eager", make_torch_ours_step(shape, hard, layer=True)
        yield kind, "PyTorch F.gumbel_softmax", "eager", make_torch_step(shape, hard=hard)


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


# What the rounds time: wall-clock time, or with `--cpu-time` the CPU time of this process (all its threads), which
# other processes on a shared machine disturb much less.
CLOCK = {"clock": time.perf_counter}


def time_rounds(steps, rounds, min_seconds, seed=0):
    """Milliseconds per step of each step function in each round (a list per step), by `CLOCK`."""
    return time_rounds_by_clock(steps, rounds, min_seconds, (CLOCK["clock"],), seed)[0]


def time_rounds_by_clock(steps, rounds, min_seconds, clocks, seed=0):
    """`time_rounds` read on several clocks in the same rounds: for each clock, milliseconds per step per round.

    Each step function is warmed up and given a number of repeats that lasts
    `min_seconds` of wall time; then, in each round, every step is timed once,
    in a shuffled order.
    """
    repeats = []
    for step in steps:
        for _ in range(3):
            step()
        start, count = time.perf_counter(), 0
        while time.perf_counter() - start < min_seconds:
            step()
            count += 1
        repeats.append(max(1, count))
    order = list(range(len(steps)))
    shuffle = random.Random(seed).shuffle
    samples = [[[] for _ in steps] for _ in clocks]
    for _ in range(rounds):
        shuffle(order)
        for index in order:
            starts = [clock() for clock in clocks]
            for _ in range(repeats[index]):
                steps[index]()
            for clock, start, per_step in zip(clocks, starts, samples):
                per_step[index].append((clock() - start) / repeats[index] * 1e3)
    return samples


def median_interval(values, confidence=0.95):
    """The median of `values` and a distribution-free confidence interval for it.

    The interval is [x_(k), x_(n+1-k)] of the sorted values, with the largest
    k such that P(Binomial(n, 1/2) < k) <= (1 - confidence) / 2.
    """
    values = sorted(values)
    n = len(values)
    k, tail = 0, 0.0
    while k < n and tail + math.comb(n, k) / 2**n <= (1 - confidence) / 2:
        tail += math.comb(n, k) / 2**n
        k += 1
    if k == 0:  # too few rounds for this confidence: the full range
        return statistics.median(values), values[0], values[-1]
    return statistics.median(values), values[k - 1], values[n - k]


def kernel_steps(shape):
    """(name, step) pairs timing the kernels every graph-mode Gumbel-Softmax step runs, one at a time."""
    x = tf.Variable(tf.random.normal(shape, seed=3))
    weights = tf.random.normal(shape, seed=4)
    seed = tf.Variable([1, 2])

    @tf.function
    def empty():
        return tf.constant(0.0)

    @tf.function
    def uniform():
        key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed)
        return tf.raw_ops.StatelessRandomUniformV2(shape=shape, key=key, counter=counter, alg=3, dtype=tf.float32)

    @tf.function
    def log():
        return tf.math.log(x)

    @tf.function
    def multiply():
        return x * 2.0

    @tf.function
    def softmax_forward_backward():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(keras_gumbel._backend.softmax(x, axis=-1) * weights)
        return tape.gradient(loss, x)

    return [
        ("an empty tf.function call", empty),
        ("uniform draw (Philox kernel)", uniform),
        ("one log", log),
        ("one multiply (a memory pass)", multiply),
        ("softmax forward + backward (and the loss)", softmax_forward_backward),
    ]


def print_kernels(shapes, rounds, min_seconds):
    """Times the kernels of one step next to the whole step of `GumbelSoftmax`."""
    print()
    print("What one graph-mode step is made of (ms; the same kernels in every TensorFlow implementation):")
    print(f"| {'shape':<15} | {'kernel':<42} | {'ms':>7} | {'minus the call':>14} |")
    print(f"|{'-' * 17}|{'-' * 44}|{'-' * 9}|{'-' * 16}|")
    for shape in shapes:
        layer = keras_gumbel.GumbelSoftmax(temperature=TEMPERATURE, seed=0)
        steps = kernel_steps(shape) + [
            ("whole GumbelSoftmax step", make_tf_step(lambda x, layer=layer: layer(x, training=True), shape, False))
        ]
        samples = time_rounds([step for _, step in steps], rounds, min_seconds)
        call = statistics.median(samples[0])
        for (name, _), times in zip(steps, samples):
            median = statistics.median(times)
            print(f"| {str(shape):<15} | {name:<42} | {median:7.3f} | {median - call:14.3f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes and few rounds (smoke test)")
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--min-seconds", type=float, default=0.1, help="time per round and contender")
    parser.add_argument("--no-xla", action="store_true")
    parser.add_argument("--kernels", action="store_true", help="also time the kernels one step is made of")
    parser.add_argument(
        "--backend",
        choices=["tensorflow", "jax", "torch"],
        default="tensorflow",
        help="the Keras backend, against its native sampler (read before Keras is imported)",
    )
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time the CPU time of this process instead of wall-clock time (for a machine other jobs share)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="intra-op threads of PyTorch and TensorFlow (default: theirs); 1 keeps idle threads from spinning "
        "on a machine other jobs share",
    )
    args = parser.parse_args()
    if args.threads is not None:
        if BACKEND == "torch":
            import torch

            torch.set_num_threads(args.threads)
        elif BACKEND == "tensorflow":
            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    if args.cpu_time:
        CLOCK["clock"] = time.process_time
    shapes = [(8, 4, 5), (16, 50)] if args.quick else SHAPES
    rounds = 3 if args.quick else args.rounds
    min_seconds = 0.01 if args.quick else args.min_seconds
    modes = ["graph"] if args.no_xla else ["graph", "XLA"]

    if BACKEND == "tensorflow":
        versions = f"TF {tf.__version__}"
    elif BACKEND == "jax":
        import jax

        versions = f"JAX {jax.__version__}"
    else:
        import torch

        versions = f"PyTorch {torch.__version__}"
    print(
        f"{versions}, Keras {keras.__version__}, keras_gumbel {keras_gumbel.__version__}, "
        f"{os.cpu_count()} CPU cores; temperature {TEMPERATURE}; {rounds} rounds, contenders shuffled in each; "
        f"{'CPU time of this process' if args.cpu_time else 'wall-clock time'}"
        f"{f'; {args.threads} intra-op thread(s)' if args.threads else ''}"
    )
    header = (
        f"| {'shape':<15} | {'kind':<16} | {'implementation':<34} | {'mode':<5} "
        f"| {'ms/step':>8} | {'ours / fastest other, paired':>28} | {'95% interval':>12} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    worst = {}
    for shape in shapes:
        rows = list(contenders(shape, modes) if BACKEND == "tensorflow" else other_backend_contenders(shape))
        samples = time_rounds([row[3] for row in rows], rounds, min_seconds)
        medians = [statistics.median(s) for s in samples]
        for index, (kind, name, mode, _) in enumerate(rows):
            ratio = interval = ""
            if name.startswith("keras_gumbel"):
                # Graph mode is compared with every non-XLA alternative (PyTorch's eager
                # included); XLA with the other XLA ones.
                others = [
                    other
                    for other, (k, n, m, _) in enumerate(rows)
                    if k == kind and not n.startswith("keras_gumbel") and (m == "XLA") == (mode == "XLA")
                ]
                fastest = min(others, key=lambda other: medians[other])
                paired = [ours / theirs for ours, theirs in zip(samples[index], samples[fastest])]
                value, low, high = median_interval(paired)
                ratio = f"{value:.3f} (vs {rows[fastest][1].split()[0]})"
                interval = f"{low:.2f}-{high:.2f}"
                previous = worst.get((kind, mode), (0.0, 0.0))
                worst[(kind, mode)] = max(previous, (value, high))
            print(
                f"| {str(shape):<15} | {kind:<16} | {name:<34} | {mode:<5} | {medians[index]:8.3f} "
                f"| {ratio:>28} | {interval:>12} |"
            )
    print()
    for (kind, mode), (value, high) in sorted(worst.items()):
        print(f"worst ratio, {kind}, {mode}: {value:.3f} (upper end of its 95% interval {high:.2f})")
    if args.kernels and BACKEND == "tensorflow":
        print_kernels(shapes, rounds, min_seconds)


if __name__ == "__main__":
    main()
