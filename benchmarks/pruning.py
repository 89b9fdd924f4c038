"""Learned structured sparsity measured: test error, kept weights and FLOPs, and the pruned model's CPU latency.

LeNet-300-100 (784-300-100-10, ReLU) on MNIST (the classic `mnist.pkl.gz`, as the examples load it) or on
scikit-learn's 8x8 digits (`--data digits`, no download): a dense baseline, then, for each target, the same network
with a `HardConcreteGate` after each hidden layer, trained with `pruning.SparsityController` to that fraction of
hidden units removed, and `pruning.prune`d into a plain Keras model. For each: test error, the weights and the
multiply-adds per example that remain, and the latency of the pruned model against the dense one at batch 1 and
256 (a paired ratio: dense and pruned calls alternate, each a compiled `tf.function`, and the median of the per-pair
ratios is reported, since this machine is shared and noisy).

Beside them, where `tensorflow-model-optimization` is installed, TensorFlow Model Optimization's
`prune_low_magnitude` at the same number of weights as each of our pruned models (`benchmarks/tfmot_lenet.py`, in a
process of its own: TF-MOT runs on `tf_keras` only), with its latency against its own dense twin.

Usage:
    python benchmarks/pruning.py [--data mnist|digits] [--epochs 10] [--targets 0.5 0.8 0.9]
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
from paired_latency import paired_latency_ratio

import keras_gumbel
from keras_gumbel import pruning

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "examples"))


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


def lenet(inputs, gated, seed):
    keras.utils.set_random_seed(seed)
    x = first = keras.Input((inputs,))
    for index, width in enumerate((300, 100)):
        x = keras.layers.Dense(width, activation="relu", name=f"hidden_{index}")(x)
        if gated:
            x = keras_gumbel.HardConcreteGate(seed=index, name=f"gate_{index}")(x)
    if gated:
        x = pruning.SparsityPenalty()(x)
    return keras.Model(first, keras.layers.Dense(10, name="logits")(x))


def dense_cost(model):
    """(weights, multiply-adds per example) of the Dense layers of a plain model."""
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    weights = sum(int(np.prod(layer.kernel.shape)) + (layer.units if layer.use_bias else 0) for layer in dense)
    return weights, sum(int(np.prod(layer.kernel.shape)) for layer in dense)


def tfmot_rows(x_train, y_train, x_test, y_test, args, ours, dense_weights):
    """TF-MOT's magnitude pruning at our pruned models' numbers of weights, run by `tfmot_lenet.py`."""
    with tempfile.TemporaryDirectory() as directory:
        data = os.path.join(directory, "data.npz")
        np.savez(data, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
        sparsities = [f"{1 - row[4] / dense_weights:.4f}" for row in ours]
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tfmot_lenet.py")
        environment = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
        result = subprocess.run(
            [sys.executable, script, data, str(args.epochs), str(args.repeats), *sparsities],
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
                (f"TF-MOT, {kept:.1%} of weights", None, None, measured["error"], measured["nonzero"],
                 None, measured["ratio_1"], measured["ratio_256"], None)
            )  # fmt: skip
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["mnist", "digits"], default="mnist")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--targets", type=float, nargs="+", default=[0.5, 0.8, 0.9])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--no-tfmot", action="store_true", help="skip TensorFlow Model Optimization's rows")
    args = parser.parse_args()
    (x_train, y_train), (x_test, y_test), described = load(args.data)
    steps = args.epochs * int(np.ceil(len(x_train) / 128))
    print(f"{described}; LeNet-300-100, Adam 1e-3 (gates' model 1e-2), batch 128, {args.epochs} epochs")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    dense = lenet(x_train.shape[1], gated=False, seed=0)
    dense.compile(keras.optimizers.Adam(1e-3), loss)
    dense.fit(x_train, y_train, epochs=args.epochs, batch_size=128, verbose=0)
    dense_error = float((keras.ops.convert_to_numpy(dense(x_test)).argmax(-1) != y_test).mean())
    dense_weights, dense_flops = dense_cost(dense)
    rows = [("dense", 0.0, 0.0, dense_error, dense_weights, dense_flops, 1.0, 1.0, None)]
    for target in args.targets:
        model = lenet(x_train.shape[1], gated=True, seed=0)
        model.compile(keras.optimizers.Adam(1e-2), loss)
        controller = pruning.SparsityController(target, warmup_steps=steps // 2)
        history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=128, verbose=0, callbacks=[controller])
        pruned = pruning.prune(model)
        error = float((keras.ops.convert_to_numpy(pruned(x_test)).argmax(-1) != y_test).mean())
        weights, flops = dense_cost(pruned)
        ratio_1 = paired_latency_ratio(dense, pruned, 1, args.repeats)
        ratio_256 = paired_latency_ratio(dense, pruned, 256, args.repeats)
        widths = [layer.units for layer in pruned.layers[1:-1]]
        expected = history.history["sparsity"][-1]
        rows.append((f"gated, target {target:.2f}", pruning.sparsity(model), expected, error, weights, flops,
                     ratio_1, ratio_256, widths))  # fmt: skip
    if not args.no_tfmot and importlib.util.find_spec("tensorflow_model_optimization") is not None:
        rows += tfmot_rows(x_train, y_train, x_test, y_test, args, rows[1:], dense_weights)
    print()
    print("| model | units removed (expected) | test error | weights (FLOPs) kept | speed-up, batch 1 / 256 | widths |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, removed, expected, error, weights, flops, ratio_1, ratio_256, widths in rows:
        units = "-" if removed is None else f"{removed:.3f} ({expected:.3f})"
        # An unstructured sparse model keeps its dense shapes: every multiply-add is still computed.
        flops_kept = "100.0%" if flops is None else f"{flops / dense_flops:.1%}"
        print(
            f"| {name} | {units} | {100 * error:.2f}% | {weights / dense_weights:.1%} ({flops_kept}) | "
            f"{ratio_1:.2f}x / {ratio_256:.2f}x | {widths or [300, 100]} |"
        )


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
