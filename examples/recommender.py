"""A recommender that keeps sampling when it is served: trained in Keras, exported to LiteRT and ONNX.

The reference post's second question: should a network keep sampling at test time? A recommender should: shown the
single most likely item on every visit, a user never sees the rest of what they may like. Here a small scorer learns
each user's taste from clicks (softmax regression on synthetic data, no download), then a
`StraightThroughGumbel(sample_at_inference=True)` layer on its logits turns it into a sampler: every call draws an
item from the learned distribution, an exact sample (one-hot) of Categorical(softmax(logits)).

The sampler is exported with `model.export(format="litert")` and `format="onnx"` and served by ai-edge-litert's
standard interpreter and onnxruntime (neither needs keras_gumbel, TensorFlow Select ops or custom ops: the noise is
each runtime's own random op). The script draws from each served model and prints, for one user, the model's
probabilities next to the served draws' frequencies, and how many distinct items 10 visits show.

Usage (TensorFlow backend; needs the `export` extra: onnx, onnxruntime, tf2onnx, ai-edge-litert):
    python examples/recommender.py [--draws 2000] [--output outputs/recommender]
"""

import argparse
import os
import pathlib
import warnings

import keras
import numpy as np

import keras_gumbel

NUM_USERS, NUM_ITEMS = 16, 12


def clicks(rng, num_clicks):
    """Synthetic interactions: each user has a taste (a distribution over items); each click is drawn from it."""
    taste = rng.dirichlet(np.full(NUM_ITEMS, 0.5), size=NUM_USERS).astype("float32")
    users = rng.integers(0, NUM_USERS, size=num_clicks)
    items = np.array([rng.choice(NUM_ITEMS, p=taste[user]) for user in users])
    return taste, np.eye(NUM_USERS, dtype="float32")[users], items


def build_scorer():
    """User features (one-hot ids here) -> item logits."""
    inputs = keras.Input((NUM_USERS,), name="user")
    hidden = keras.layers.Dense(32, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(NUM_ITEMS, name="item_logits")(hidden))


def serve_litert(path, batch):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    (entry,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(entry["index"], batch.shape)
    interpreter.allocate_tensors()

    def draw():
        interpreter.set_tensor(entry["index"], batch)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()

    return draw


def serve_onnx(path, batch):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda: session.run(None, {name: batch})[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=2000, help="draws from each served model, for one user")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--output", default="outputs/recommender")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    taste, users, items = clicks(rng, 8000)

    scorer = build_scorer()
    scorer.compile(optimizer=keras.optimizers.Adam(0.02), loss=keras.losses.SparseCategoricalCrossentropy(True))
    history = scorer.fit(users, items, epochs=args.epochs, batch_size=256, verbose=0)
    print(f"trained on {len(items)} clicks: cross-entropy {history.history['loss'][-1]:.3f}")

    inputs = keras.Input((NUM_USERS,), name="user")
    sample = keras_gumbel.StraightThroughGumbel(sample_at_inference=True, seed=0, name="recommend")
    recommender = keras.Model(inputs, sample(scorer(inputs)))
    user = 3
    batch = np.repeat(np.eye(NUM_USERS, dtype="float32")[user : user + 1], args.draws, axis=0)
    recommender(batch[:1])  # Keras' ONNX export needs a model that has been called

    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    served = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recommender.export(str(output / "recommender.tflite"), format="litert", verbose=False)
        recommender.export(str(output / "recommender.onnx"), format="onnx", verbose=False)
    served["LiteRT"] = serve_litert(str(output / "recommender.tflite"), batch)
    served["ONNX Runtime"] = serve_onnx(str(output / "recommender.onnx"), batch)

    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(scorer(batch[:1])))[0]
    frequencies, visits = {}, {}
    for runtime, draw in served.items():
        draws = draw()
        assert ((draws == 0) | (draws == 1)).all() and (draws.sum(-1) == 1).all(), "not one-hot draws"
        frequencies[runtime] = draws.mean(0)
        visits[runtime] = len({int(np.argmax(draw()[0])) for _ in range(10)})
    print(f"\nuser {user}: {args.draws} draws from each served model (exports in {output})\n")
    print("| item | true taste | model P(item) | " + " | ".join(f"{name} frequency" for name in served) + " |")
    print("| ---: | ---: | ---: | " + " | ".join("---:" for _ in served) + " |")
    for item in np.argsort(-probabilities):
        cells = " | ".join(f"{frequencies[name][item]:.3f}" for name in served)
        print(f"| {item} | {taste[user, item]:.3f} | {probabilities[item]:.3f} | {cells} |")
    print()
    for name in served:
        distance = 0.5 * np.abs(frequencies[name] - probabilities).sum()
        print(
            f"{name}: total variation to the model's distribution {distance:.3f}; 10 visits showed {visits[name]} items"
        )
    print(f"the mode alone (sample_at_inference=False) would show item {int(np.argmax(probabilities))} on every visit")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
