"""keras-gumbel demo: a categorical VAE with a discrete latent code, on data that needs no download.

Runs `examples/categorical_vae.py` on scikit-learn's 8x8 digits: the VAE of
Jang et al. (2017) with 20 categorical variables of 10 classes, trained through
`model.fit` with each estimator (`GumbelSoftmax`, `StraightThroughGumbel` and
REINFORCE with a leave-one-out baseline) and the temperature annealed by
`TemperatureAnnealing`, then:

- prints one line per estimator (epochs, training time, test negative ELBO in
  nats per image with discrete samples; no per-epoch lines, no warnings), then
  the table,
- writes reconstructions, samples from the prior, the training curves and the
  temperature curve to `<output>/<estimator>.png`,
- exports the straight-through model as a SavedModel and checks that the
  served model gives the same deterministic output.

Usage:
    python examples/demo.py                     # about 2 minutes on 2 CPU cores (100 epochs each)
    python examples/demo.py --epochs 2          # a smoke run

Measured: 1 min 58 s (`time python examples/demo.py`) on 2 CPU cores shared
with other jobs (load average 2.7 to 3.7 during the run).
"""

import argparse
import os
import pathlib
import re
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported

# TensorFlow's C++ start-up lines (absl's "WARNING: All log messages before absl::InitializeLog() ...", then
# "I... cudart_stub.cc] Could not find cuda drivers" on a machine without a GPU) are printed while it is imported,
# whatever TF_CPP_MIN_LOG_LEVEL says. Lines in that format are dropped below that level; anything else is kept.
_CPP_LOG_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+:\d+\] ")
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def import_tensorflow_quietly():
    """Imports TensorFlow with its C++ start-up log filtered by TF_CPP_MIN_LOG_LEVEL (anything else goes through)."""
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0")
    level = int(level) if level.isdigit() else 0
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            dropping = False
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                match = _CPP_LOG_LINE.match(line)
                if match:
                    dropping = "IWEF".index(match.group(1)) < level
                elif line.startswith(_ABSL_PREAMBLE):
                    dropping = level > 0
                elif line.startswith("Traceback") or "Warning:" in line:
                    dropping = False  # not a continuation of a C++ log line
                if not dropping:
                    sys.stderr.write(line)
            sys.stderr.flush()


import_tensorflow_quietly()
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import categorical_vae  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--output", default="outputs/demo")
    args = parser.parse_args()
    train, test, source = categorical_vae.load_images("digits")
    print(f"data: {source}; {len(train)} train / {len(test)} test images of {train.shape[1]} pixels")
    results = []
    # The three of Jang et al.'s table; categorical_vae.py has the others (VIMCO, the unordered set, enumeration).
    for estimator in ("gumbel_softmax", "straight_through", "reinforce"):
        print(f"{estimator:<17}", end="", flush=True)  # the line is finished when the estimator is
        _, result = categorical_vae.run(
            dataset="digits",
            estimator=estimator,
            epochs=args.epochs,
            batch_size=64,
            rate=7e-4,  # max(0.5, exp(-7e-4 * step)) reaches 0.5 near step 1000 (epoch 45)
            update_every=100,
            output=args.output,
            export=estimator == "straight_through",
            verbose=0,
        )
        line = (
            f"{result['epochs']} epochs in {result['wall_seconds']:.0f} s, test -ELBO {result['test_neg_elbo']:.2f} "
            f"+- {result['test_neg_elbo_standard_error']:.2f} nats"
        )
        if "saved_model" in result:
            line += "; SavedModel exported, served output checked"
        print(line)
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
