"""Bias, variance, MSE and cost of every gradient estimator against exact enumeration, categorical and binary.

Table 1 measures every estimator of `keras_gumbel.diagnostics` on two small
problems whose exact gradient is a sum over every value
(`diagnostics.exact_gradient`):

- categorical: z ~ Categorical(softmax(logits)) over K = 4 categories,
  f(z) = (z . [0, 1, 2, 3] - 1.5)^2;
- binary: 4 independent bits b_i ~ Bernoulli(sigmoid(logits_i)),
  f(b) = (b . [0.5, 1, 1.5, 2] - 2.5)^2 (16 values);

both with logits [0.5, -0.3, 0.2, 0.0] (+ `--offset` on f). Each row is
one estimator with the settings named, at about 4 evaluations of f per
estimate where it has a choice; the cost column counts them. VIMCO is
measured against the exact gradient of the bound it maximises,
E[log mean_S exp f] (its row below: against grad E[f]). REBAR and RELAX are
measured as initialised and after `--control-steps` Adam steps on their
variance (the logits fixed).

Tables 2 and 3 are the temperature sweep of the relaxed estimators and
Gumbel-Rao against its number of draws, on the categorical problem; the
figure plots bias against variance.

Usage:
    python benchmarks/estimator_quality.py [--output outputs/estimator_quality.png]
    python benchmarks/estimator_quality.py --estimates 200 --control-steps 2   # smoke run
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_gumbel import diagnostics  # noqa: E402

LOGITS = np.array([0.5, -0.3, 0.2, 0.0], "float32")
VALUES = np.arange(4.0, dtype="float32")
WEIGHTS = np.array([0.5, 1.0, 1.5, 2.0], "float32")
TEMPERATURES = (0.1, 0.2, 0.5, 1.0, 2.0)

# (label, estimator, settings; a variable's own num_samples where the budget needs it).
ROWS = (
    ("Gumbel-Softmax, t = 0.5, 1 sample", "gumbel_softmax", {"temperature": 0.5, "num_samples": 1}),
    ("straight-through, t = 0.5, 1 sample", "straight_through", {"temperature": 0.5, "num_samples": 1}),
    ("Gumbel-Rao, t = 0.5, 10 draws, 1 sample", "gumbel_rao", {"temperature": 0.5, "num_samples": 1}),
    ("ReinMax, t = 1, 1 sample", "reinmax", {"temperature": 1.0, "num_samples": 1}),
    ("REINFORCE, 1 sample", "reinforce", {"num_samples": 1}),
    ("REINFORCE leave-one-out, S = 4", "reinforce_leave_one_out", {"num_samples": 4}),
    ("REINFORCE leave-one-out, S = 8", "reinforce_leave_one_out", {"num_samples": 8}),
    ("VIMCO, S = 4 (its bound)", "vimco", {"num_samples": 4}),
    ("enumeration", "enumerate", {}),
    ("unordered set, k = 2", "unordered_set", {"num_samples": 2}),
    ("unordered set, k = 4", "unordered_set", {"num_samples": 4}),
    ("ARM, 2 pairs", "arm", {"num_samples": 4}),
    ("DisARM, 2 pairs", "disarm", {"num_samples": 4}),
    ("ARSM, 1 draw (2 on bits)", "arsm", {"num_samples": {"categorical": 1, "binary": 2}}),
    ("REBAR, S = 1, untrained", "rebar", {"num_samples": 1, "temperature": 0.5}),
    ("REBAR, S = 1, trained", "rebar", {"num_samples": 1, "temperature": 0.5, "trained": True}),
    ("RELAX, S = 4, untrained", "relax", {"num_samples": 4, "temperature": 0.5}),
    ("RELAX, S = 4, trained", "relax", {"num_samples": 4, "temperature": 0.5, "trained": True}),
)


def problems(offset):
    def categorical(z):
        return (keras.ops.sum(z * VALUES, axis=-1) - 1.5) ** 2 + offset

    def binary(b):
        return (keras.ops.sum(b * WEIGHTS, axis=-1) - 2.5) ** 2 + offset

    return {"categorical": categorical, "binary": binary}


def measure(estimator, settings, variable, f, args):
    """diagnostics.gradient_bias_variance for one row and variable, or None where the estimator does not apply."""
    if estimator not in diagnostics.estimators_for(variable):
        return None
    num_samples = settings.get("num_samples", 4)
    if isinstance(num_samples, dict):
        num_samples = num_samples[variable]
    return diagnostics.gradient_bias_variance(
        estimator,
        LOGITS,
        f,
        num_estimates=args.estimates,
        temperature=settings.get("temperature", 1.0),
        num_samples=num_samples,
        variable=variable,
        control_variate_steps=args.control_steps if settings.get("trained") else 0,
    )


def number(value):
    """4 significant digits; 0 below float32 rounding (enumeration's variance)."""
    return "0" if abs(value) < 1e-9 else f"{value:.4g}"


def cells(result):
    if result is None:
        return "n/a", "n/a"
    return f"{result['bias']:.4f} ({result['bias_z']:.1f})", f"{number(result['variance'])} / {number(result['mse'])}"


def evaluations(results):
    shown = ["-" if r is None else f"{r['evaluations']:g}" for r in results]
    return " / ".join(shown)


def budget_samples(estimator, variable, f, budget=4):
    """The most samples per estimate whose counted evaluations of f stay within `budget` (at least the fewest)."""
    fewest = None
    for num_samples in range(1, budget + 1):
        try:
            result = diagnostics.gradient_bias_variance(
                estimator, LOGITS, f, num_estimates=2, num_samples=num_samples, variable=variable
            )
        except ValueError:  # a number of samples it cannot take (ARM's pairs)
            continue
        fewest = fewest or num_samples
        if result["evaluations"] > budget:
            break
        best = num_samples
    return best if "best" in locals() else fewest


def rows(fs):
    """`ROWS`, and a row for every registered estimator without one: default settings, about 4 evaluations of f."""
    known = {estimator for _, estimator, _ in ROWS}
    added = []
    for name in diagnostics.estimators_for("binary"):  # every registered name
        if name in known:
            continue
        samples = {
            variable: budget_samples(name, variable, f)
            for variable, f in fs.items()
            if name in diagnostics.estimators_for(variable)
        }
        label = f"{name}, S = " + " / ".join(f"{samples[v]} ({v[:3]})" for v in samples)
        added.append((label, name, {"num_samples": samples}))
    return ROWS + tuple(added)


def main_table(args, fs, rows=ROWS):
    print(
        f"Table 1: every estimator, {args.estimates} estimates each; logits [0.5, -0.3, 0.2, 0.0]; categorical: K = 4, "
        f"f(z) = (z . [0,1,2,3] - 1.5)^2 + {args.offset}; binary: 4 bits, f(b) = (b . [0.5,1,1.5,2] - 2.5)^2 + "
        f"{args.offset}; trained = {args.control_steps} Adam steps on the control variate's variance"
    )
    for variable, f in fs.items():
        print(f"exact gradient, {variable}: {np.round(diagnostics.exact_gradient(LOGITS, f, variable), 4).tolist()}")
    print("z: the largest component's |mean - exact| in standard errors (below 4: no bias detected)\n")
    print(
        "| estimator | evaluations of f (cat. / bin.) | categorical: bias (z) | categorical: variance / MSE "
        "| binary: bias (z) | binary: variance / MSE |"
    )
    print("|---|---|---|---|---|---|")
    measured = {}
    for label, estimator, settings in rows:
        results = [measure(estimator, settings, variable, f, args) for variable, f in fs.items()]
        measured[label] = results
        row = [label, evaluations(results)]
        for result in results:
            row += cells(result)
        print("| " + " | ".join(row) + " |")
        if estimator == "vimco":
            row = ["VIMCO, S = 4, against grad E[f]", evaluations(results)]
            for result, (variable, f) in zip(results, fs.items()):
                exact = diagnostics.exact_gradient(LOGITS, f, variable)
                bias = float(np.linalg.norm(result["mean"] - exact))
                floor = 1e-5 * (1.0 + np.abs(exact).max())  # as diagnostics' bias_z
                z = float((np.abs(result["mean"] - exact) / np.hypot(result["standard_errors"], floor)).max())
                mse = result["variance"] + bias**2
                row += [f"{bias:.4f} ({z:.1f})", f"{number(result['variance'])} / {number(mse)}"]
            print("| " + " | ".join(row) + " |")
    return measured


def sweep_tables(args, f):
    print(f"\nTable 2: the relaxed estimators across temperatures (categorical), {args.estimates} estimates")
    print("| estimator | temperature | bias (norm) | bias / its standard error | variance (trace) | MSE |")
    print("|---|---|---|---|---|---|")
    curves = {}
    for estimator in ("gumbel_softmax", "straight_through", "gumbel_rao", "reinmax"):
        for temperature in TEMPERATURES:
            result = diagnostics.gradient_bias_variance(
                estimator, LOGITS, f, num_estimates=args.estimates, temperature=temperature, num_samples=1
            )
            curves.setdefault(estimator, []).append((temperature, result["bias"], result["variance"]))
            ratio = result["bias"] / result["bias_standard_error"]
            label = "gumbel_rao (10 draws)" if estimator == "gumbel_rao" else estimator
            print(
                f"| {label} | {temperature:g} | {result['bias']:.4f} | {ratio:.1f} | {result['variance']:.4f} "
                f"| {result['mse']:.4f} |"
            )
    print("\nTable 3: Gumbel-Rao against the number of conditional draws, temperature 0.5:")
    print("| draws | bias (norm) | variance (trace) | MSE |")
    print("|---|---|---|---|")
    for num_draws in (1, 3, 10, 30):
        result = diagnostics.gradient_bias_variance(
            "gumbel_rao", LOGITS, f, num_estimates=args.estimates, temperature=0.5, num_draws=num_draws, num_samples=1
        )
        print(f"| {num_draws} | {result['bias']:.4f} | {result['variance']:.4f} | {result['mse']:.4f} |")
    return curves


def figure(curves, measured, output):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7.5, 5))
    for estimator, points in curves.items():
        _, biases, variances = zip(*points)
        axis.plot(variances, np.maximum(biases, 1e-4), marker="o", label=f"{estimator} (t = 0.1 ... 2)")
        for temperature, bias, variance in points:
            axis.annotate(f"t={temperature:g}", (variance, max(bias, 1e-4)), fontsize=7)
    for label, (categorical, _) in measured.items():
        # The unbiased estimators of Table 1 (categorical), at their measured bias (sampling noise).
        if categorical is not None and categorical["variance"] > 1e-9 and categorical["bias_z"] < 4:
            axis.scatter(categorical["variance"], max(categorical["bias"], 1e-4), marker="x")
            axis.annotate(label, (categorical["variance"], max(categorical["bias"], 1e-4)), fontsize=6)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("variance of the gradient estimate (trace)")
    axis.set_ylabel("bias (norm of mean - exact)")
    axis.legend(fontsize=7)
    axis.set_title("gradient estimators on K = 4: bias against variance")
    figure.tight_layout()
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    figure.savefig(output, dpi=90)
    print(f"\nwrote {output}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--estimates", type=int, default=50_000)
    parser.add_argument("--offset", type=float, default=0.0, help="a constant added to f (REINFORCE feels it)")
    parser.add_argument("--control-steps", type=int, default=300, help="variance steps of 'trained' REBAR/RELAX")
    parser.add_argument("--output", default="outputs/estimator_quality.png")
    args = parser.parse_args()
    fs = problems(args.offset)
    measured = main_table(args, fs, rows(fs))
    curves = sweep_tables(args, fs["categorical"])
    figure(curves, measured, args.output)


if __name__ == "__main__":
    main()
