"""keras-gumbel demo: a categorical VAE with a discrete latent code, on data that needs no download.

Runs `examples/categorical_vae.py` on scikit-learn's 8x8 digits: the VAE of
Jang et al. (2017) with 20 categorical variables of 10 classes, trained through
`model.fit` with each estimator (`GumbelSoftmax`, `StraightThroughGumbel` and
REINFORCE with a leave-one-out baseline) and the temperature annealed by
`TemperatureAnnealing`, then:

- prints the test negative ELBO of each (nats per image, discrete samples),
- writes reconstructions, samples from the prior, the training curves and the
  temperature curve to `<output>/<estimator>.png`,
- exports the straight-through model as a SavedModel and checks that the
  served model gives the same deterministic output.

Usage:
    python examples/demo.py                     # about a minute on 2 CPU cores (100 epochs each)
    python examples/demo.py --epochs 2          # a smoke run
"""

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import categorical_vae  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--output", default="outputs/demo")
    args = parser.parse_args()
    results = []
    for estimator in categorical_vae.ESTIMATORS:
        print(f"\n== {estimator} ==")
        _, result = categorical_vae.run(
            dataset="digits",
            estimator=estimator,
            epochs=args.epochs,
            batch_size=64,
            rate=7e-4,  # max(0.5, exp(-7e-4 * step)) reaches 0.5 near step 1000 (epoch 45)
            update_every=100,
            output=args.output,
            export=estimator == "straight_through",
        )
        results.append(result)
    print("\n| estimator | test -ELBO (nats) | wall time |")
    print("|---|---|---|")
    for result in results:
        print(
            f"| {result['estimator']} | {result['test_neg_elbo']:.2f} +- {result['test_neg_elbo_standard_error']:.2f} "
            f"| {result['wall_seconds']:.0f} s |"
        )
    print(f"\nfigures and the SavedModel are in {args.output}/")


if __name__ == "__main__":
    main()
