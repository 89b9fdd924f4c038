"""A Gumbel layer in a PyTorch training loop: the Keras model is a `torch.nn.Module`, trained by `torch.optim`.

Run with the PyTorch backend (the script sets it):

    python examples/torch_training_loop.py --steps 600

On the PyTorch backend a Keras model is a `torch.nn.Module`: its
`parameters()` are the Keras weights, `loss.backward()` fills their `.grad`,
and any torch optimizer trains it. The model picks one of 4 codes per input
with a `StraightThroughGumbel` layer (exact one-hot forward, relaxed gradient
backward) and decodes the code; the target is the code of the input's
largest feature. The temperature is annealed by assigning a schedule's value
to the layer's temperature variable each step (what `TemperatureAnnealing`
does inside `fit`). The layer's own `SeedGenerator` draws new noise at every
call. It prints the loss every 100 steps and the accuracy of the
inference-time (noise-free argmax) codes at the end.
"""

import argparse
import os

os.environ["KERAS_BACKEND"] = "torch"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import keras_gumbel  # noqa: E402


def make_data(num_rows, seed):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(num_rows, 4)).astype("float32")
    targets = np.eye(4, dtype="float32")[np.argmax(features, axis=-1)]
    return torch.from_numpy(features), torch.from_numpy(targets)


def build_model():
    inputs = keras.Input((4,))
    logits = keras.layers.Dense(4)(keras.layers.Dense(32, activation="relu")(inputs))
    code = keras_gumbel.StraightThroughGumbel(temperature=1.0, seed=0, name="code")(logits)
    return keras.Model(inputs, keras.layers.Dense(4)(code))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(0)  # the initial weights
    model = build_model()
    assert isinstance(model, torch.nn.Module)
    # The temperature is not trainable, so `parameters()` holds the Dense weights only.
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    schedule = keras_gumbel.schedules.ExponentialDecay(1.0, rate=5.0 / args.steps, minimum=0.3)
    temperature = model.get_layer("code").temperature

    features, targets = make_data(args.batch_size * 50, seed=0)
    model.train()
    for step in range(args.steps):
        rows = slice((step % 50) * args.batch_size, (step % 50 + 1) * args.batch_size)
        temperature.assign(schedule(step))
        optimizer.zero_grad()
        predictions = model(features[rows], training=True)
        loss = torch.nn.functional.mse_loss(predictions, targets[rows])
        loss.backward()
        optimizer.step()
        if (step + 1) % 100 == 0 or step + 1 == args.steps:
            print(f"step {step + 1}: loss {loss.item():.4f}, temperature {schedule(step):.3f}")

    model.eval()
    test_features, test_targets = make_data(2_000, seed=1)
    with torch.no_grad():
        predictions = model(test_features, training=False)
    accuracy = float((predictions.argmax(-1) == test_targets.argmax(-1)).float().mean())
    print(f"test accuracy of the inference-time codes: {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    main()
