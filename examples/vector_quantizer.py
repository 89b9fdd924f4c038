"""Learning a codebook with `keras_gumbel.GumbelVectorQuantizer`, and how much of it gets used.

Each scikit-learn digit (8x8, no download) is read as a sequence of 8 frames, its rows, of 8 features. A
small frame autoencoder learns a codebook: a Dense encoder (8 -> 32, ReLU), the quantizer (2 groups of 16
codes, 16-dimensional codevectors, wav2vec 2.0's initialisation), a Dense decoder back to the frame. The loss
is the frames' mean squared error plus the quantizer's diversity loss (weight 0.1, wav2vec 2.0's), which
pushes the batch-averaged code probabilities of each group towards uniform.

The temperature follows wav2vec 2.0's schedule `max(2 * decay**step, 0.5)`
(`keras_gumbel.schedules.ExponentialDecay(2.0, rate=-log(decay), minimum=0.5)` with
`keras_gumbel.TemperatureAnnealing`), with `decay` chosen so that the floor is reached at 70% of the run
(wav2vec 2.0's 0.999995 reaches it after 277k updates).

Codebook usage is the quantizer's perplexity, between G = 2 (one code per group) and G * V = 32 (all codes
equally used): in training the perplexity of the soft probabilities (what the diversity loss raises; read from
`layer.perplexity` after each step), and on the held-out digits the perplexity of the codes chosen at inference
(how many codes are in use). The run is repeated without the diversity loss; the figure plots both.

Usage:
    python examples/vector_quantizer.py --output docs/figures/vector_quantizer.png
    python examples/vector_quantizer.py --epochs 2 --output /tmp/vq.png      # smoke run
"""

import argparse
import math
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_gumbel  # noqa: E402

GROUPS, CODES, CODE_DIM = 2, 16, 16


def load_frames(seed=0):
    """scikit-learn's digits as sequences of 8 row-frames in [0, 1]: (train, test), [n, 8, 8]."""
    from sklearn.datasets import load_digits

    images = load_digits().data.astype("float32").reshape(-1, 8, 8) / 16.0
    order = np.random.default_rng(seed).permutation(len(images))
    cut = int(0.8 * len(images))
    return images[order[:cut]], images[order[cut:]]


def frame_autoencoder(diversity_weight, seed):
    inputs = keras.Input((8, 8))
    hidden = keras.layers.Dense(32, activation="relu")(inputs)
    quantizer = keras_gumbel.GumbelVectorQuantizer(
        GROUPS, CODES, CODE_DIM, temperature=2.0, diversity_weight=diversity_weight, seed=seed, name="quantizer"
    )
    outputs = keras.layers.Dense(8)(quantizer(hidden))
    return keras.Model(inputs, outputs), quantizer


class UsageLog(keras.callbacks.Callback):
    """The soft perplexity after every training step, and at each epoch's end the held-out code perplexity."""

    def __init__(self, quantizer, held_out):
        super().__init__()
        self.quantizer, self.held_out = quantizer, held_out
        self.soft, self.codes, self.codes_in_use = [], [], []

    def on_train_batch_end(self, batch, logs=None):
        self.soft.append(float(keras.ops.convert_to_numpy(self.quantizer.perplexity)))

    def on_epoch_end(self, epoch, logs=None):
        features = self._features()
        _, perplexity = self.quantizer(features, return_perplexity=True)
        self.codes.append(float(keras.ops.convert_to_numpy(perplexity)))
        self.codes_in_use.append(len(used_codes(self.quantizer, features)))
        if logs is not None:
            logs["held_out_code_perplexity"] = self.codes[-1]

    def _features(self):
        if not hasattr(self, "_encoder"):  # the model up to the quantizer
            self._encoder = keras.Model(self.model.inputs[0], self.quantizer.input)
        return self._encoder(self.held_out)


def used_codes(quantizer, features):
    """The distinct (group, code) pairs chosen at inference for `features`."""
    logits = keras.ops.convert_to_numpy(keras.ops.matmul(features, quantizer.kernel) + quantizer.bias)
    chosen = logits.reshape(-1, GROUPS, CODES).argmax(-1)
    return {(group, code) for group in range(GROUPS) for code in np.unique(chosen[:, group])}


def train(diversity_weight, train_frames, test_frames, epochs, seed):
    keras.utils.set_random_seed(seed)
    model, quantizer = frame_autoencoder(diversity_weight, seed)
    model.compile(keras.optimizers.Adam(3e-3), "mse")
    batch_size = 32
    steps = epochs * math.ceil(len(train_frames) / batch_size)
    # wav2vec 2.0's max(2 * decay**step, 0.5), with the floor reached at 70% of this run.
    decay = 0.25 ** (1 / (0.7 * steps))
    schedule = keras_gumbel.schedules.ExponentialDecay(2.0, rate=-math.log(decay), minimum=0.5)
    usage = UsageLog(quantizer, test_frames)
    history = model.fit(
        train_frames,
        train_frames,
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=[keras_gumbel.TemperatureAnnealing(schedule), usage],
    ).history
    test_mse = float(np.mean((model.predict(test_frames, verbose=0) - test_frames) ** 2))
    return {"history": history, "usage": usage, "test_mse": test_mse, "decay": decay}


def plot(path, runs, epochs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (soft_axis, codes_axis) = plt.subplots(1, 2, figsize=(10, 3.6))
    for (label, run), color in zip(runs.items(), ("C0", "C3")):
        soft = np.asarray(run["usage"].soft)
        steps_per_epoch = len(soft) / epochs
        soft_axis.plot(np.arange(1, len(soft) + 1) / steps_per_epoch, soft, color=color, lw=0.8, label=label)
        codes_axis.plot(np.arange(1, epochs + 1), run["usage"].codes, "-o", ms=2.5, color=color, label=label)
    for axis, title in (
        (soft_axis, "training: perplexity of the soft probabilities"),
        (codes_axis, "held-out digits: perplexity of the chosen codes"),
    ):
        axis.axhline(GROUPS * CODES, color="gray", ls=":", lw=0.8)
        axis.axhline(GROUPS, color="gray", ls=":", lw=0.8)
        axis.set_xlabel("epoch")
        axis.set_ylabel("perplexity (G = 2 ... G * V = 32)")
        axis.set_title(title, fontsize=10)
        axis.set_ylim(0, GROUPS * CODES + 2)
        axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="outputs/vector_quantizer.png", help="the figure")
    args = parser.parse_args()
    started = time.perf_counter()
    train_frames, test_frames = load_frames(args.seed)
    print(f"data: scikit-learn digits, {len(train_frames)} train / {len(test_frames)} held out, 8 frames of 8 each")
    runs = {
        "diversity loss, weight 0.1": train(0.1, train_frames, test_frames, args.epochs, args.seed),
        "no diversity loss": train(0.0, train_frames, test_frames, args.epochs, args.seed),
    }
    print(f"\n{args.epochs} epochs; codebook G x V = {GROUPS} x {CODES}\n")
    print("| run | soft perplexity (last step) | held-out code perplexity | codes in use | held-out MSE |")
    print("| --- | --- | --- | --- | --- |")
    for label, run in runs.items():
        usage = run["usage"]
        print(
            f"| {label} | {usage.soft[-1]:.2f} | {usage.codes[-1]:.2f} | {usage.codes_in_use[-1]} of "
            f"{GROUPS * CODES} | {run['test_mse']:.4f} |"
        )
    path = pathlib.Path(args.output)
    plot(path, runs, args.epochs)
    print(f"\nwall time {time.perf_counter() - started:.0f} s; figure: {path}")


if __name__ == "__main__":
    main()
