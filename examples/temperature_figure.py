"""The reference post's figure: Gumbel-Softmax samples and their expectation across temperatures.

For a fixed categorical distribution over 5 classes, draws relaxed samples with
`keras_gumbel.GumbelSoftmax` at temperatures 0.1, 0.5, 1 and 10 and plots, per
temperature, the expectation of the sample (estimated from `--samples` draws)
and three single samples. As the temperature goes to 0 the expectation tends
to the categorical probabilities and each sample to a one-hot vector; as it
grows both tend to the uniform vector.

Usage:
    python examples/temperature_figure.py --output docs/figures/temperature.png
"""

import argparse
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_gumbel  # noqa: E402

PROBABILITIES = np.array([0.05, 0.1, 0.45, 0.3, 0.1], "float32")
TEMPERATURES = (0.1, 0.5, 1.0, 10.0)


def expectations_and_samples(num_samples, seed=0):
    """Returns {temperature: (mean sample, three samples)}."""
    logits = np.tile(np.log(PROBABILITIES), (num_samples, 1))
    results = {}
    for temperature in TEMPERATURES:
        layer = keras_gumbel.GumbelSoftmax(temperature=temperature, seed=seed)
        samples = keras.ops.convert_to_numpy(layer(logits, training=True))
        results[temperature] = (samples.mean(axis=0), samples[:3])
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--output", default="outputs/temperature.png")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = expectations_and_samples(args.samples)
    classes = np.arange(len(PROBABILITIES))
    figure, axes = plt.subplots(4, len(TEMPERATURES), figsize=(11, 7), sharey=True)
    for column, temperature in enumerate(TEMPERATURES):
        mean, samples = results[temperature]
        axes[0, column].bar(classes, mean, color="tab:blue")
        axes[0, column].set_title(f"temperature {temperature:g}\nexpectation", fontsize=9)
        for row in range(3):
            axes[row + 1, column].bar(classes, samples[row], color="tab:orange")
            axes[row + 1, column].set_title("sample", fontsize=8)
        print(f"temperature {temperature:>4}: expectation {np.round(mean, 3)}")
    print(f"categorical probabilities: {PROBABILITIES}")
    for axis in axes.flat:
        axis.set_xticks(classes)
        axis.set_ylim(0, 1)
    figure.suptitle("Gumbel-Softmax samples of Categorical(p = [0.05, 0.1, 0.45, 0.3, 0.1])")
    figure.tight_layout()
    output = pathlib.Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=90)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
