"""Hard attention over a set, and the reference post's two open questions, measured.

Task: a set of 10 items, each with a key in R^8 and a scalar value in [-1, 1];
a query in R^8. The right item is the one whose key best matches the query
(argmax_i key_i . query); the target is sin(3 * value) of that item. A blend of
values is the wrong input for the downstream network, so hard attention is the
right answer. The model learns the query projection W (scores = key . W query)
and a small MLP on the attended value.

Trained five ways: soft attention (softmax, no noise), Gumbel-Softmax attention
and straight-through attention (`keras_gumbel.GumbelAttention`, the latter with
`hard=True`; temperature annealed 1 -> 0.3), and REINFORCE (one-hot choices,
`score_function_loss` with a leave-one-out baseline over 4 samples). Each is
then tested four ways:

- soft: softmax(scores / 1), no noise;
- cold: softmax(scores / 0.01), no noise (question 1: can the temperature
  switch a trained layer to hard attention at test time?);
- argmax: exactly the one-hot of the highest score;
- noisy: a sampled choice, noise kept at test time (question 2).

Usage:
    python examples/hard_attention.py --output outputs/hard_attention
"""

import argparse
import json
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_gumbel  # noqa: E402

SET_SIZE, KEY_DIM = 10, 8


def make_data(num_examples, seed):
    rng = np.random.default_rng(seed)
    queries = rng.normal(size=(num_examples, KEY_DIM)).astype("float32")
    keys = rng.normal(size=(num_examples, SET_SIZE, KEY_DIM)).astype("float32")
    values = rng.uniform(-1, 1, size=(num_examples, SET_SIZE, 1)).astype("float32")
    chosen = np.einsum("nd,nkd->nk", queries, keys).argmax(-1)
    targets = np.sin(3 * values[np.arange(num_examples), chosen]).astype("float32")
    return (queries, keys, values), targets, chosen


class SetModel(keras.Model):
    def __init__(self, mode, hard=False, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.projection = keras.layers.Dense(KEY_DIM, use_bias=False)
        self.attention = keras_gumbel.GumbelAttention(mode=mode, hard=hard, temperature=1.0, seed=seed)
        self.head = keras.Sequential([keras.layers.Dense(32, activation="tanh"), keras.layers.Dense(1)])

    def scores(self, queries, keys):
        return tf.einsum("bd,bnd->bn", self.projection(queries), keys) / np.sqrt(KEY_DIM)

    def call(self, inputs, training=None):
        queries, keys, values = inputs
        attended = self.attention(self.projection(queries), keys, values, training=training)
        return self.head(attended)


def train_reinforce(model, data, targets, epochs, batch_size, num_samples=4, seed=0):
    """One-hot choices sampled from softmax(scores); W by the score function, the head by regression."""
    optimizer = keras.optimizers.Adam(3e-3)
    generator = keras.random.SeedGenerator(seed)
    dataset = tf.data.Dataset.from_tensor_slices((data, targets)).shuffle(10_000, seed=seed).batch(batch_size)

    @tf.function
    def step(inputs, target):
        queries, keys, values = inputs
        with tf.GradientTape() as tape:
            scores = tf.tile(model.scores(queries, keys), (num_samples, 1))
            choice = tf.stop_gradient(keras_gumbel.ops.gumbel_softmax(scores, hard=True, seed=generator))
            attended = tf.einsum("bn,bnv->bv", choice, tf.tile(values, (num_samples, 1, 1)))
            prediction = model.head(attended)
            squared_error = tf.reshape(tf.square(prediction - tf.tile(target, (num_samples, 1))), (num_samples, -1))
            log_prob = tf.reshape(tf.reduce_sum(choice * tf.nn.log_softmax(scores), -1), (num_samples, -1))
            reward = -squared_error
            surrogate = keras_gumbel.score_function_loss(
                log_prob, reward, keras_gumbel.leave_one_out_baseline(reward, axis=0)
            )
            loss = tf.reduce_mean(squared_error) + surrogate
        variables = model.projection.trainable_variables + model.head.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

    for _ in range(epochs):
        for inputs, target in dataset:
            step(inputs, target)


def evaluate(model, data, targets, chosen, test_mode):
    layer = model.attention
    saved = (float(layer.temperature.numpy()), layer.sample_at_inference, layer.mode, layer.hard)
    if test_mode == "soft":
        layer.mode, layer.hard, layer.sample_at_inference = "softmax", False, False
        layer.temperature.assign(1.0)
    elif test_mode == "cold":
        layer.mode, layer.hard, layer.sample_at_inference = "softmax", False, False
        layer.temperature.assign(0.01)
    elif test_mode == "argmax":
        layer.mode, layer.hard, layer.sample_at_inference = "gumbel_softmax", True, False
    else:  # noisy: a one-hot choice sampled from softmax(scores) at test time
        layer.mode, layer.hard, layer.sample_at_inference = "gumbel_softmax", True, True
    prediction = keras.ops.convert_to_numpy(model(data, training=False))
    layer.temperature.assign(saved[0])
    layer.sample_at_inference, layer.mode, layer.hard = saved[1], saved[2], saved[3]
    return float(np.mean((prediction - targets) ** 2))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--output", default="outputs/hard_attention")
    args = parser.parse_args(argv)
    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    train_data, train_targets, _ = make_data(args.train, seed=0)
    test_data, test_targets, test_chosen = make_data(5_000, seed=1)
    steps_per_epoch = int(np.ceil(args.train / 100))
    rate = np.log(1 / 0.3) / (0.7 * args.epochs * steps_per_epoch)  # reaches 0.3 at 70% of training
    schedule = keras_gumbel.schedules.ExponentialDecay(1.0, rate=rate, minimum=0.3, update_every=50)
    results = {}
    for method in ("softmax", "gumbel_softmax", "straight_through", "reinforce"):
        # straight_through: Gumbel-Softmax attention with hard=True; REINFORCE samples its own one-hot choices.
        hard = method in ("straight_through", "reinforce")
        model = SetModel("softmax" if method == "softmax" else "gumbel_softmax", hard=hard, seed=1)
        model(tuple(part[:2] for part in train_data))
        if method == "reinforce":
            train_reinforce(model, train_data, train_targets, args.epochs, 100)
        else:
            model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
            callbacks = [] if method == "softmax" else [keras_gumbel.TemperatureAnnealing(schedule)]
            model.fit(train_data, train_targets, batch_size=100, epochs=args.epochs, verbose=0, callbacks=callbacks)
        scores = keras.ops.convert_to_numpy(model.scores(test_data[0], test_data[1]))
        results[method] = {
            mode: evaluate(model, test_data, test_targets, test_chosen, mode)
            for mode in ("soft", "cold", "argmax", "noisy")
        }
        results[method]["selection_accuracy"] = float(np.mean(scores.argmax(-1) == test_chosen))
        print(f"{method}: {results[method]}")
    print(f"\ntest MSE (target variance {np.var(test_targets):.3f}); {args.epochs} epochs on {args.train} sets")
    print(
        "| trained with | soft at test (t = 1) | cold at test (t = 0.01) | argmax at test | noisy at test (sampled) "
        "| right item picked |"
    )
    print("|---|---|---|---|---|---|")
    for method, row in results.items():
        cells = " | ".join(f"{row[key]:.4f}" for key in ("soft", "cold", "argmax", "noisy"))
        print(f"| {method} | {cells} | {row['selection_accuracy']:.3f} |")
    (output / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
