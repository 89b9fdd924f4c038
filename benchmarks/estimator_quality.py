"""Bias and variance of the gradient estimators against exact enumeration, across temperatures.

The reference post's drawbacks, measured: for z ~ Categorical(softmax(logits))
over K = 4 categories and f(z) = (z . [0, 1, 2, 3] - 1.5)^2 + offset, each
estimator's estimates of grad E[f(z)] are compared with the exact gradient
(`keras_gumbel.diagnostics`). Gumbel-Softmax and straight-through are measured
at several temperatures; REINFORCE (1 sample, no baseline) and REINFORCE with
a leave-one-out baseline (4 samples per estimate) do not depend on it.
Gumbel-Rao (Paulus et al. 2021) is measured with 10 conditional draws, and
against the number of draws at temperature 0.5; ReinMax (Liu et al. 2023)
across temperatures.

Prints a table and writes a bias-variance figure.

Usage:
    python benchmarks/estimator_quality.py [--output outputs/estimator_quality.png]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_gumbel import diagnostics  # noqa: E402

LOGITS = np.array([0.5, -0.3, 0.2, 0.0], "float32")
VALUES = np.arange(4.0, dtype="float32")
TEMPERATURES = (0.1, 0.2, 0.5, 1.0, 2.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--estimates", type=int, default=50_000)
    parser.add_argument("--offset", type=float, default=0.0, help="a constant added to f (REINFORCE feels it)")
    parser.add_argument("--output", default="outputs/estimator_quality.png")
    args = parser.parse_args()

    def f(z):
        return (keras.ops.sum(z * VALUES, axis=-1) - 1.5) ** 2 + args.offset

    print(
        f"K = 4, logits {LOGITS.tolist()}, f(z) = (z . [0,1,2,3] - 1.5)^2 + {args.offset}, {args.estimates} estimates"
    )
    print(f"exact gradient: {np.round(diagnostics.exact_gradient(LOGITS, f), 4).tolist()}\n")
    print("| estimator | temperature | bias (norm) | bias / its standard error | variance (trace) | MSE |")
    print("|---|---|---|---|---|---|")
    curves = {}
    for estimator in diagnostics.ESTIMATORS:
        relaxed = ("gumbel_softmax", "straight_through", "gumbel_rao", "reinmax")
        temperatures = TEMPERATURES if estimator in relaxed else (None,)
        for temperature in temperatures:
            result = diagnostics.gradient_bias_variance(
                estimator, LOGITS, f, num_estimates=args.estimates, temperature=temperature or 1.0
            )
            curves.setdefault(estimator, []).append((temperature, result["bias"], result["variance"]))
            ratio = result["bias"] / result["bias_standard_error"]
            shown = "-" if temperature is None else f"{temperature:g}"
            label = "gumbel_rao (10 draws)" if estimator == "gumbel_rao" else estimator
            print(
                f"| {label} | {shown} | {result['bias']:.4f} | {ratio:.1f} | {result['variance']:.4f} "
                f"| {result['mse']:.4f} |"
            )
    print("\nGumbel-Rao against the number of conditional draws, temperature 0.5:")
    print("| draws | bias (norm) | variance (trace) | MSE |")
    print("|---|---|---|---|")
    for num_draws in (1, 3, 10, 30):
        result = diagnostics.gradient_bias_variance(
            "gumbel_rao", LOGITS, f, num_estimates=args.estimates, temperature=0.5, num_draws=num_draws
        )
        print(f"| {num_draws} | {result['bias']:.4f} | {result['variance']:.4f} | {result['mse']:.4f} |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for estimator, points in curves.items():
        _, biases, variances = zip(*points)
        axis.plot(variances, np.maximum(biases, 1e-4), marker="o", label=estimator)
        for temperature, bias, variance in points:
            if temperature is not None:
                axis.annotate(f"t={temperature:g}", (variance, max(bias, 1e-4)), fontsize=7)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("variance of the gradient estimate (trace)")
    axis.set_ylabel("bias (norm of mean - exact)")
    axis.legend()
    axis.set_title("gradient estimators: the bias-variance trade-off")
    figure.tight_layout()
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    figure.savefig(args.output, dpi=90)
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
