"""Learning to sort numbers with a Gumbel-Sinkhorn network (Mena et al., 2018, section 4.1, Table 1).

Task: a list of N numbers drawn uniformly on [0, 1]; the target is the same
numbers in increasing order. The network never sees a sorting permutation:
it is trained only on how close `transpose(P) @ numbers` is to the sorted
list, where P is a relaxed permutation matrix.

The model is the reference code's (google/gumbel_sinkhorn, sorting/): each
number on its own goes through the same network, 1 -> 32 (ReLU) -> N, whose
output is its row of the score matrix `log_alpha` [N, N] (row i: how well
number i fits each position). `keras_gumbel.GumbelSinkhorn` turns it into

- in training, a Gumbel-Sinkhorn sample `sinkhorn((log_alpha + g) / t)`,
  t = 1, 10 Sinkhorn rounds, loss `mean((sorted - transpose(P) @ numbers)^2)`,
  Adam (learning rate 0.01, cosine-decayed), 50 fresh lists a step with one
  noise sample each (the reference code draws 5 samples of each of 10 lists,
  `--samples 5 --batch-size 10`: the same cost, but at N = 80 after 3,000
  steps 59% of test lists had an error that way, 2% this way);
- at test time, without noise, the exact maximum-weight assignment of
  `log_alpha` (the Hungarian algorithm, inside the model: `model.predict`).

Metrics on 10,000 fresh test lists, as the reference code's `sorting_eval.py`:

- prop. wrong: the proportion of numbers put at a wrong position;
- prop. any wrong: the proportion of lists with at least one number misplaced;
- L1: the mean absolute difference between the true sorted list and the
  predicted one (per number).

Usage:
    python examples/sort_numbers.py --sizes 5 10 15 80 100 120 --steps 10000 \
        --output outputs/sort_numbers
"""

import argparse
import json
import math
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_gumbel  # noqa: E402


def make_model(size, temperature, num_iterations, units, seed):
    """Numbers [batch, N, 1] -> (the sorted estimate [batch, N, 1], the permutation matrix [batch, N, N]).

    Returns the model trained (to the sorted estimate) and the same layers with both outputs.
    """
    numbers = keras.Input((size, 1))
    hidden = keras.layers.Dense(units, activation="relu", name="hidden")(numbers)
    log_alpha = keras.layers.Dense(size, name="log_alpha")(hidden)  # row i: number i's scores for each position
    permutation = keras_gumbel.GumbelSinkhorn(
        temperature=temperature, num_iterations=num_iterations, seed=seed, name="sinkhorn"
    )(log_alpha)
    ordered = keras.layers.Lambda(
        lambda tensors: keras.ops.matmul(keras.ops.transpose(tensors[0], (0, 2, 1)), tensors[1]), name="ordered"
    )([permutation, numbers])
    return keras.Model(numbers, ordered), keras.Model(numbers, [ordered, permutation])


def make_lists(num_lists, size, rng):
    numbers = rng.uniform(size=(num_lists, size, 1)).astype("float32")
    return numbers, np.sort(numbers, axis=1)


def evaluate(model, numbers, batch_size=500):
    """The reference code's metrics from the noise-free, exact permutations (`model.predict`: inference)."""
    _, permutations = model.predict(numbers, batch_size=batch_size, verbose=0)
    assert np.isin(permutations, (0.0, 1.0)).all() and (permutations.sum(-1) == 1).all()
    positions = permutations.argmax(-1)  # [lists, N]: the position given to each number
    true_positions = np.argsort(np.argsort(numbers[..., 0], axis=-1), axis=-1)
    wrong = positions != true_positions
    ordered = np.take_along_axis(numbers[..., 0], np.argsort(positions, axis=-1), axis=-1)
    return {
        "prop_wrong": float(wrong.mean()),
        "prop_any_wrong": float(wrong.any(-1).mean()),
        "l1": float(np.abs(ordered - np.sort(numbers[..., 0], axis=-1)).mean()),
    }


def train_one(size, args):
    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    trainer, model = make_model(size, args.temperature, args.num_iterations, args.units, args.seed)
    # Adam, its learning rate decayed by a cosine over the run (to 1% of its start).
    learning_rate = keras.optimizers.schedules.CosineDecay(args.learning_rate, args.steps, alpha=0.01)
    trainer.compile(keras.optimizers.Adam(learning_rate), loss="mse", jit_compile=args.jit_compile)
    model.compile(jit_compile=args.jit_compile)  # for predict
    numbers, targets = make_lists(args.steps * args.batch_size, size, rng)
    # Each list is seen with `samples` independent noise draws in the same step (the reference code tiles it).
    numbers = np.repeat(numbers, args.samples, axis=0)
    targets = np.repeat(targets, args.samples, axis=0)
    callbacks = []
    if args.final_temperature is not None:  # annealed exponentially over the run
        rate = math.log(args.temperature / args.final_temperature) / args.steps
        schedule = keras_gumbel.schedules.ExponentialDecay(args.temperature, rate=rate, minimum=args.final_temperature)
        # Set every 1% of the run, so that short runs reach the final temperature too.
        callbacks.append(keras_gumbel.TemperatureAnnealing(schedule, update_every=max(1, args.steps // 100)))
    start = time.time()
    history = trainer.fit(
        numbers,
        targets,
        batch_size=args.batch_size * args.samples,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
    )
    train_seconds = time.time() - start
    test_numbers, _ = make_lists(args.test_lists, size, np.random.default_rng(args.seed + 1))
    start = time.time()
    metrics = evaluate(model, test_numbers)
    metrics.update(
        size=size,
        final_train_loss=float(history.history["loss"][-1]),
        train_seconds=round(train_seconds, 1),
        test_seconds=round(time.time() - start, 1),
    )
    return model, metrics


def plot_permutations(model, size, path, seed, temperature):
    """A test list's relaxed training-time sample next to its exact inference permutation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numbers, _ = make_lists(1, size, np.random.default_rng(seed + 2))
    _, soft = model(numbers, training=True)
    _, hard = model(numbers, training=False)
    order = np.argsort(numbers[0, :, 0])  # rows (numbers) listed from smallest to largest
    figure, axes = plt.subplots(1, 2, figsize=(8, 3.8), constrained_layout=True)
    for axis, matrix, title in (
        (axes[0], keras.ops.convert_to_numpy(soft)[0], f"training: Gumbel-Sinkhorn sample (t = {temperature:.3g})"),
        (axes[1], keras.ops.convert_to_numpy(hard)[0], "inference: exact assignment"),
    ):
        image = axis.imshow(matrix[order], vmin=0, vmax=1, cmap="viridis")
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("position")
        axis.set_ylabel("number (smallest first)")
    figure.colorbar(image, ax=axes, shrink=0.8)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown_table(results):
    lines = [
        "| N | prop. wrong | prop. any wrong | L1 | train | test |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['size']} | {r['prop_wrong']:.4f} | {r['prop_any_wrong']:.4f} | {r['l1']:.5f} "
            f"| {r['train_seconds']:.0f} s | {r['test_seconds']:.0f} s |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 10, 15, 80, 100, 120])
    parser.add_argument("--steps", type=int, default=10_000, help="training steps (fresh lists each step)")
    parser.add_argument("--batch-size", type=int, default=50, help="lists per step")
    parser.add_argument("--samples", type=int, default=1, help="noise samples per list")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--final-temperature", type=float, default=None, help="anneal to this (default: constant)")
    parser.add_argument("--num-iterations", type=int, default=10, help="Sinkhorn rounds")
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--test-lists", type=int, default=10_000)
    parser.add_argument("--jit-compile", default="auto", help="model.compile's jit_compile")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="outputs/sort_numbers")
    args = parser.parse_args()
    if args.jit_compile in ("True", "False"):
        args.jit_compile = args.jit_compile == "True"
    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)

    results = []
    for size in args.sizes:
        model, metrics = train_one(size, args)
        results.append(metrics)
        print(json.dumps(metrics), flush=True)
        if size == min(args.sizes, key=lambda s: abs(s - 10)):
            temperature = float(keras.ops.convert_to_numpy(model.get_layer("sinkhorn").temperature))
            plot_permutations(model, size, output / "permutations.png", args.seed, temperature)
    (output / "results.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    table = markdown_table(results)
    (output / "table.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
