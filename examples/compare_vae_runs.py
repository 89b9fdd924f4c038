"""Side-by-side curves and table of the categorical VAE runs written by `categorical_vae.py`.

Reads `<runs>/<estimator>.json` for each estimator found and writes
`<output>`: the test -ELBO (1 sample, 2,000 images) per epoch of each, and
prints the final table.

Usage:
    python examples/compare_vae_runs.py --runs outputs/categorical_vae --output outputs/vae_curves.png
"""

import argparse
import json
import pathlib


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default="outputs/categorical_vae")
    parser.add_argument("--output", default="outputs/vae_curves.png")
    args = parser.parse_args(argv)
    runs = {}
    for estimator in ("gumbel_softmax", "straight_through", "reinforce", "vimco", "unordered_set", "enumerate"):
        path = pathlib.Path(args.runs) / f"{estimator}.json"
        if path.exists():
            runs[estimator] = json.loads(path.read_text())
    if not runs:
        raise SystemExit(f"no <estimator>.json in {args.runs}")
    print("| estimator | test -ELBO (discrete) | relaxed test -ELBO | epochs | wall time |")
    print("|---|---|---|---|---|")
    for estimator, run in runs.items():
        relaxed = run.get("relaxed_test_neg_elbo")
        print(
            f"| {estimator} | {run['test_neg_elbo']:.2f} ± {run['test_neg_elbo_standard_error']:.2f} "
            f"| {'' if relaxed is None else f'{relaxed:.2f}'} | {run['epochs']} | {run['wall_seconds'] / 60:.1f} min |"
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.5))
    for estimator, run in runs.items():
        curve = run["history"]["test_neg_elbo"]
        axis.plot(range(1, len(curve) + 1), curve, label=f"{estimator} (final {run['test_neg_elbo']:.1f})")
    low = min(min(run["history"]["test_neg_elbo"]) for run in runs.values())
    axis.set_ylim(low - 3, low + 40)
    axis.set_xlabel("epoch")
    axis.set_ylabel("test -ELBO, nats (1 sample, 2k images)")
    axis.set_title("categorical VAE on MNIST: the estimators side by side")
    axis.legend()
    figure.tight_layout()
    pathlib.Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output, dpi=90)
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
