"""TensorFlow Model Optimization's magnitude pruning of LeNet-300-100, for `benchmarks/pruning.py` to compare.

TF-MOT runs on Keras 2 (`tf_keras`) only, so this runs in a process of its own with `TF_USE_LEGACY_KERAS=1` set
before TensorFlow is imported (`pruning.py` starts it so). For each requested kernel sparsity: the network wrapped in
`prune_low_magnitude` (polynomial decay from 0 to the sparsity over the first half of training, as TF-MOT's guide
does), trained like the others, `strip_pruning`ed; then its test error, its non-zero weights, and the latency of
the stripped model against a dense `tf_keras` twin (a paired ratio, as in `pruning.py`): an unstructured sparse
model keeps its dense shapes, so it runs at dense speed.

Usage (by `pruning.py`): python benchmarks/tfmot_lenet.py DATA.npz EPOCHS REPEATS SPARSITY [SPARSITY ...]
prints one JSON object per sparsity.
"""

import json
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
import tf_keras  # noqa: E402
from paired_latency import paired_latency_ratio  # noqa: E402


def lenet(inputs):
    tf_keras.utils.set_random_seed(0)
    return tf_keras.Sequential(
        [
            tf_keras.Input((inputs,)),
            tf_keras.layers.Dense(300, activation="relu"),
            tf_keras.layers.Dense(100, activation="relu"),
            tf_keras.layers.Dense(10),
        ]
    )


def main(data, epochs, repeats, sparsities):
    arrays = np.load(data)
    x_train, y_train, x_test, y_test = (arrays[name] for name in ("x_train", "y_train", "x_test", "y_test"))
    steps = epochs * int(np.ceil(len(x_train) / 128))
    loss = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    dense = lenet(x_train.shape[1])
    dense.compile(tf_keras.optimizers.Adam(1e-3), loss)
    dense.fit(x_train, y_train, epochs=epochs, batch_size=128, verbose=0)
    for sparsity in sparsities:
        # Pruned every `frequency` steps (TF-MOT's default, 100, never reaches a short run's end step).
        frequency = max(1, min(100, steps // 20))
        schedule = tfmot.sparsity.keras.PolynomialDecay(
            0.0, sparsity, begin_step=0, end_step=steps // 2, frequency=frequency
        )
        model = tfmot.sparsity.keras.prune_low_magnitude(lenet(x_train.shape[1]), pruning_schedule=schedule)
        model.compile(tf_keras.optimizers.Adam(1e-3), loss)
        model.fit(
            x_train,
            y_train,
            epochs=epochs,
            batch_size=128,
            verbose=0,
            callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
        )
        stripped = tfmot.sparsity.keras.strip_pruning(model)
        error = float((stripped.predict(x_test, verbose=0).argmax(-1) != y_test).mean())
        weights = [w for layer in stripped.layers for w in layer.get_weights()]
        print(
            json.dumps(
                {
                    "sparsity": sparsity,
                    "error": error,
                    "nonzero": int(sum(np.count_nonzero(w) for w in weights)),
                    "weights": int(sum(w.size for w in weights)),
                    "ratio_1": paired_latency_ratio(dense, stripped, 1, repeats),
                    "ratio_256": paired_latency_ratio(dense, stripped, 256, repeats),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), [float(value) for value in sys.argv[4:]])
