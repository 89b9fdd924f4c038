"""Learned structured sparsity measured: test error, kept weights and FLOPs, and the pruned model's CPU latency.

On MNIST (the classic `mnist.pkl.gz`, as the examples load it) or scikit-learn's 8x8 digits (`--data digits`, no
download), three networks:

- LeNet-300-100 (784-300-100-10, ReLU), with a `HardConcreteGate` on the input pixels and on each hidden layer's
  units (the gates of Louizos, Welling & Kingma's Table 1);
- a LeNet-5-Caffe-like conv net (Conv 20 5x5, max-pool, Conv 50 5x5, max-pool, Dense 500, Dense 10), with gates on
  the filters of each convolution and on the units of the Dense 500;
- a one-block Transformer on a synthetic task (below), with `HeadGatedAttention` on its 4 heads.

For each: a dense baseline trained for `pre + fine` epochs, then for each target the gated network trained for
`pre` epochs with `pruning.SparsityController` aiming at that fraction of the multiply-adds (`measure="flops"`;
for the heads, of the heads), `pruning.prune`d into a plain Keras model, and that model fine-tuned for `fine`
epochs (plain Keras: the pruned model is an ordinary one). Reported: test error after pruning and after
fine-tuning, the weights and multiply-adds per example that remain (`pruning.cost`, counted), the kept widths, and
the latency of the pruned model against the dense one at batch 1 and 256 (a paired ratio: dense and pruned calls
alternate, each a compiled `tf.function`; the median of the per-pair ratios, since this machine is shared and noisy).

Beside LeNet-300-100, where `tensorflow-model-optimization` is installed, TensorFlow Model Optimization's
`prune_low_magnitude` at the same number of weights as each of our pruned models (`benchmarks/tfmot_lenet.py`, in a
process of its own: TF-MOT runs on `tf_keras` only), with its latency against its own dense twin.

The heads task: sequences of 8 positions, each a token in {0, 1, 2} (one-hot) and its position (one-hot); the label
is `(token[0] - token[1]) mod 3`. Only positions 0 and 1 matter, and one head can read both: the gates keep the
heads the task needs, and the table gives the share of each kept head's attention that falls on positions 0 and 1.

Usage:
    python benchmarks/pruning.py [--data mnist|digits] [--pre 10] [--fine 10] [--targets 0.8 0.9]
        [--networks lenet300 conv heads]
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

import keras
import numpy as np
from paired_latency import paired_latency
from paired_latency import paired_latency_ratio

import keras_gumbel
from keras_gumbel import pruning

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "examples"))

BATCH = 128
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def load(data):
    if data == "digits":
        from sklearn.datasets import load_digits

        features, labels = load_digits(return_X_y=True)
        features = (features / 16).astype("float32")
        return (features[:1400], labels[:1400]), (features[1400:], labels[1400:]), "scikit-learn digits (1400/397)"
    import gzip
    import pickle

    from categorical_vae import _classic_mnist_pickle

    with gzip.open(_classic_mnist_pickle(), "rb") as file:
        train, _, test = pickle.load(file, encoding="latin1")
    return (train[0], train[1]), (test[0], test[1]), "MNIST, classic mnist.pkl.gz (50k train / 10k test)"


def _gate(x, gated, name, seed):
    return keras_gumbel.HardConcreteGate(seed=seed, name=name)(x) if gated else x


def lenet300(pixels, gated, seed=0):
    keras.utils.set_random_seed(seed)
    x = first = keras.Input((pixels,))
    x = _gate(x, gated, "pixels", 10)
    for index, width in enumerate((300, 100)):
        x = keras.layers.Dense(width, activation="relu", name=f"hidden_{index}")(x)
        x = _gate(x, gated, f"gate_{index}", index)
    x = pruning.SparsityPenalty()(x) if gated else x
    return keras.Model(first, keras.layers.Dense(10, name="logits")(x))


def conv_net(pixels, gated, seed=0):
    keras.utils.set_random_seed(seed)
    side = int(round(np.sqrt(pixels)))
    kernel = 5 if side >= 28 else 3  # MNIST 28x28: 24, 12, 8, 4 (800 features); digits 8x8: 6, 3, 1
    first = keras.Input((pixels,))
    x = keras.layers.Reshape((side, side, 1))(first)
    for index, filters in enumerate((20, 50)):
        x = keras.layers.Conv2D(filters, kernel, activation="relu", name=f"conv_{index}")(x)
        x = _gate(x, gated, f"filters_{index}", index)
        x = keras.layers.MaxPooling2D(2 if x.shape[1] >= 2 else 1)(x)
    x = keras.layers.Dense(500, activation="relu", name="hidden")(keras.layers.Flatten()(x))
    x = _gate(x, gated, "units", 2)
    x = pruning.SparsityPenalty()(x) if gated else x
    return keras.Model(first, keras.layers.Dense(10, name="logits")(x))


def widths(model):
    """The kept units of each weighted layer but the last (filters, units), and the inputs the first one reads."""
    layers = [layer for layer in model.layers if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D))]
    return [int(layers[0].kernel.shape[-2])] + [int(layer.kernel.shape[-1]) for layer in layers[:-1]]


def error(model, x, y):
    return float((keras.ops.convert_to_numpy(model.predict(x, batch_size=1024, verbose=0)).argmax(-1) != y).mean())


def fit(model, x, y, epochs, learning_rate, callbacks=()):
    model.compile(keras.optimizers.Adam(learning_rate), LOSS)
    return model.fit(x, y, epochs=epochs, batch_size=BATCH, verbose=0, callbacks=list(callbacks))


def run_network(build, train, test, args):
    """The dense baseline and, per target, the gated model's rows (before and after fine-tuning)."""
    (x_train, y_train), (x_test, y_test) = train, test
    pixels = x_train.shape[1]
    dense = build(pixels, gated=False)
    fit(dense, x_train, y_train, args.pre + args.fine, 1e-3)
    dense_weights, dense_flops = pruning.cost(dense, "parameters"), pruning.cost(dense, "flops")
    rows = [("dense", None, None, None, error(dense, x_test, y_test), dense_weights, dense_flops, 1.0, 1.0, None)]
    steps = args.pre * int(np.ceil(len(x_train) / BATCH))
    # Where the time goes at batch 256: the smallest model on this input (one Dense to the 10 logits) is the floor
    # of a call (the tf.function's dispatch, the input's and output's handling).
    floor_model = keras.Sequential([keras.Input((pixels,)), keras.layers.Dense(10)])
    _, dense_ms, floor_ms = paired_latency(dense, floor_model, 256, args.repeats)
    timings = {"dense": dense_ms, "floor": floor_ms}
    for target in args.targets:
        model = build(pixels, gated=True)
        controller = pruning.SparsityController(target, warmup_steps=steps // 2, measure="flops")
        history = fit(model, x_train, y_train, args.pre, 1e-2, [controller])
        pruned = pruning.prune(model)
        pruned_error = error(pruned, x_test, y_test)
        fit(pruned, x_train, y_train, args.fine, 1e-3)
        ratio_256, _, timings[f"target {target:.2f}"] = paired_latency(dense, pruned, 256, args.repeats)
        rows.append(
            (f"gated, target {target:.2f}", 1 - pruning.cost(pruned, "flops") / dense_flops,
             history.history["sparsity"][-1], pruned_error, error(pruned, x_test, y_test),
             pruning.cost(pruned, "parameters"), pruning.cost(pruned, "flops"),
             paired_latency_ratio(dense, pruned, 1, args.repeats), ratio_256, widths(pruned))
        )  # fmt: skip
    return rows, dense_weights, dense_flops, widths(dense), timings


def tfmot_rows(train, test, args, ours, dense_weights):
    """TF-MOT's magnitude pruning at our pruned models' numbers of weights, run by `tfmot_lenet.py`."""
    with tempfile.TemporaryDirectory() as directory:
        data = os.path.join(directory, "data.npz")
        np.savez(data, x_train=train[0], y_train=train[1], x_test=test[0], y_test=test[1])
        sparsities = [f"{1 - row[5] / dense_weights:.4f}" for row in ours]
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tfmot_lenet.py")
        environment = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
        result = subprocess.run(
            [sys.executable, script, data, str(args.pre + args.fine), str(args.repeats), *sparsities],
            capture_output=True,
            text=True,
            env=environment,
            check=True,
        )
    rows = []
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            measured = json.loads(line)
            kept = measured["nonzero"] / measured["weights"]
            rows.append(
                (f"TF-MOT, {kept:.1%} of weights", None, None, None, measured["error"], measured["nonzero"],
                 None, measured["ratio_1"], measured["ratio_256"], None)
            )  # fmt: skip
    return rows


def print_timings(timings):
    measured = ", ".join(f"{name} {ms:.3f} ms" for name, ms in timings.items() if name != "floor")
    print(
        f"\nMedian latency at batch 256: {measured}; a model of one Dense to the logits on the same input (the "
        f"call's floor) {timings['floor']:.3f} ms."
    )


def print_table(title, rows, dense_weights, dense_flops, dense_widths):
    print(f"\n{title}\n")
    print("| model | FLOPs removed (expected) | test error: pruned / fine-tuned | weights (FLOPs) kept | "
          "speed-up, batch 1 / 256 | widths |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, removed, expected, pruned_error, final_error, weights, flops, ratio_1, ratio_256, kept in rows:
        removed = "-" if removed is None else f"{removed:.3f} ({expected:.3f})"
        errors = f"{100 * final_error:.2f}%" if pruned_error is None else (
            f"{100 * pruned_error:.2f}% / {100 * final_error:.2f}%"
        )  # fmt: skip
        # An unstructured sparse model keeps its dense shapes: every multiply-add is still computed.
        flops_kept = "100.0%" if flops is None else f"{flops / dense_flops:.1%}"
        print(
            f"| {name} | {removed} | {errors} | {weights / dense_weights:.1%} ({flops_kept}) | "
            f"{ratio_1:.2f}x / {ratio_256:.2f}x | {kept or dense_widths} |"
        )


# ----------------------------------------------------------------------------------------------------------- heads

TOKENS, POSITIONS, HEADS = 3, 8, 4


def heads_data(count, seed):
    """Sequences of (one-hot token, one-hot position); the label is `(token[0] - token[1]) mod 3`."""
    tokens = np.random.default_rng(seed).integers(0, TOKENS, (count, POSITIONS))
    positions = np.broadcast_to(np.eye(POSITIONS), (count, POSITIONS, POSITIONS))
    x = np.concatenate([np.eye(TOKENS)[tokens], positions], -1).astype("float32")
    return x, (tokens[:, 0] - tokens[:, 1]) % TOKENS


def transformer(gated, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((POSITIONS, TOKENS + POSITIONS))
    x = keras.layers.Dense(16, name="embed")(inputs)
    if gated:
        attention = keras_gumbel.HeadGatedAttention(HEADS, 8, gate_seed=1, name="attention")
    else:
        attention = keras.layers.MultiHeadAttention(HEADS, 8, name="attention")
    x = keras.layers.LayerNormalization()(keras.layers.Add()([x, attention(x, x)]))
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = pruning.SparsityPenalty()(x) if gated else x
    x = keras.layers.Dense(32, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(TOKENS)(x))


def attention_on_the_informative_positions(model, x):
    """Per head of the model's attention layer: the mean share of its attention on positions 0 and 1."""
    attention = model.get_layer("attention")
    embedded = model.get_layer("embed")(x)
    _, scores = attention(embedded, embedded, return_attention_scores=True)  # [batch, heads, queries, keys]
    return keras.ops.convert_to_numpy(scores)[..., :2].sum(-1).mean(axis=(0, 2))


def run_heads(args):
    (x_train, y_train), (x_test, y_test) = heads_data(20000 if args.data == "mnist" else 4000, 0), heads_data(4000, 1)
    epochs = args.pre
    dense = transformer(gated=False)
    fit(dense, x_train, y_train, epochs, 3e-3)
    fit(dense, x_train, y_train, args.fine, 3e-4)
    share = attention_on_the_informative_positions(dense, x_test)
    rows = [("dense", HEADS, f"{100 * error(dense, x_test, y_test):.2f}%", share)]
    steps = epochs * int(np.ceil(len(x_train) / BATCH))
    for target in (0.5, 0.75):
        model = transformer(gated=True)
        fit(model, x_train, y_train, epochs, 3e-3, [pruning.SparsityController(target, warmup_steps=steps // 2)])
        pruned = pruning.prune(model)
        pruned_error = error(pruned, x_test, y_test)
        fit(pruned, x_train, y_train, args.fine, 3e-4)
        errors = f"{100 * pruned_error:.2f}% / {100 * error(pruned, x_test, y_test):.2f}%"
        share = attention_on_the_informative_positions(pruned, x_test)
        rows.append((f"gated, target {target:.2f}", pruned.get_layer("attention").num_heads, errors, share))
    print(
        f"\nHeads: a one-block Transformer (4 heads of 8), {len(x_train)} training sequences; Adam 3e-3 for {epochs}"
        f" epochs (gated: with the controller on the heads), then 3e-4 for {args.fine}\n"
    )
    print("| model | heads kept | test error: pruned / fine-tuned | attention on positions 0-1, per kept head |")
    print("| --- | ---: | ---: | --- |")
    for name, kept, errors, share in rows:
        print(f"| {name} | {kept} | {errors} | {', '.join(f'{s:.2f}' for s in share)} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["mnist", "digits"], default="mnist")
    parser.add_argument("--pre", type=int, default=10, help="epochs of the gated model (dense: pre + fine)")
    parser.add_argument("--fine", type=int, default=10, help="epochs of fine-tuning the pruned model")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.8, 0.9], help="FLOPs sparsity targets")
    parser.add_argument("--networks", nargs="+", default=["lenet300", "conv", "heads"])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--no-tfmot", action="store_true", help="skip TensorFlow Model Optimization's rows")
    args = parser.parse_args()
    train, test, described = load(args.data)
    print(
        f"{described}; batch {BATCH}; dense: Adam 1e-3 for {args.pre + args.fine} epochs; gated: Adam 1e-2 for "
        f"{args.pre} epochs with the controller (warm-up: half of them), pruned, then Adam 1e-3 for {args.fine}"
    )
    if "lenet300" in args.networks:
        rows, weights, flops, dense_widths, timings = run_network(lenet300, train, test, args)
        if not args.no_tfmot and importlib.util.find_spec("tensorflow_model_optimization") is not None:
            rows += tfmot_rows(train, test, args, rows[1:], weights)
        print_table("LeNet-300-100 (widths: input pixels, hidden units)", rows, weights, flops, dense_widths)
        print_timings(timings)
    if "conv" in args.networks:
        rows, weights, flops, dense_widths, timings = run_network(conv_net, train, test, args)
        print_table("Conv net (widths: input channels, filters, filters, units)", rows, weights, flops, dense_widths)
        print_timings(timings)
    if "heads" in args.networks:
        run_heads(args)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
