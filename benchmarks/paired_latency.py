"""The paired latency ratio `benchmarks/pruning.py` and `benchmarks/tfmot_lenet.py` report (Keras 3 or `tf_keras`).

This machine is shared and noisy: a model's latency is compared with its dense twin's by calling the two, each a
compiled `tf.function`, alternately, and reporting the median of the per-pair ratios (the load cancels in a pair).
"""

import time

import numpy as np
import tensorflow as tf


def paired_latency(dense, other, batch, repeats):
    """`(ratio, dense ms, other ms)`: the median over `repeats` pairs of `dense`'s latency over `other`'s, and each
    model's median latency in milliseconds, on a batch of `batch` normal inputs."""
    x = tf.constant(np.random.default_rng(0).normal(size=(batch, *dense.input_shape[1:])).astype("float32"))
    calls = [tf.function(lambda v, m=m: m(v, training=False)) for m in (dense, other)]
    for call in calls:
        call(x)  # traced
    times = np.zeros((repeats, 2))
    for index in range(repeats):
        for side, call in enumerate(calls):
            start = time.perf_counter()
            call(x).numpy()
            times[index, side] = time.perf_counter() - start
    ratio = float(np.median(times[:, 0] / times[:, 1]))
    return ratio, 1e3 * float(np.median(times[:, 0])), 1e3 * float(np.median(times[:, 1]))


def paired_latency_ratio(dense, other, batch, repeats):
    """Median over `repeats` pairs of `dense`'s latency over `other`'s, on a batch of `batch` normal inputs."""
    return paired_latency(dense, other, batch, repeats)[0]
