"""Run by tests/test_distribute.py as two local worker processes under MultiWorkerMirroredStrategy.

Usage: python distributed_multi_worker_check.py PORT0 PORT1 TASK_INDEX OUTPUT_JSON

Keras 3's `fit` does not support MultiWorkerMirroredStrategy (keras-team/keras#20585), so this is the custom loop
that does: `strategy.run` + `GradientTape` + a Keras optimizer, with a Gumbel layer, and the REINFORCE
`make_train_step`. Each worker writes what it measured to OUTPUT_JSON.
"""

import json
import os
import sys

port0, port1, task_index, output = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
os.environ["TF_CONFIG"] = json.dumps(
    {
        "cluster": {"worker": [f"localhost:{port0}", f"localhost:{port1}"]},
        "task": {"type": "worker", "index": task_index},
    }
)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

strategy = tf.distribute.MultiWorkerMirroredStrategy()

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_gumbel  # noqa: E402

results = {"task": task_index, "replicas": strategy.num_replicas_in_sync}
with strategy.scope():
    dense = keras.layers.Dense(4)
    gumbel = keras_gumbel.GumbelSoftmax(temperature=0.5, seed=0)
    model = keras.Sequential([keras.Input((6,)), dense, gumbel])
    optimizer = keras.optimizers.SGD(0.5)

rng = np.random.default_rng(0)  # the same data on both workers; each replica draws its own noise
features = rng.normal(size=(32, 6)).astype("float32")
x = tf.constant(features)
target = tf.constant(np.eye(4, dtype="float32")[np.argmax(features[:, :4], -1)])  # learnable by the Dense layer


@tf.function
def train_step():
    def replica_step():
        with tf.GradientTape() as tape:
            sample = model(x, training=True)
            loss = tf.reduce_mean(tf.reduce_sum(tf.square(sample - target), -1)) / strategy.num_replicas_in_sync
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss, sample

    loss, sample = strategy.run(replica_step)
    total = strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
    return total, strategy.gather(sample, axis=0)


def accuracy():
    return float(np.mean(np.argmax(dense(x).numpy(), -1) == np.argmax(target.numpy(), -1)))


results["accuracy_before"] = accuracy()
losses = []
for step in range(60):
    gumbel.temperature.assign(max(0.2, 0.5 * 0.97**step))  # annealing in a custom loop
    loss, samples = train_step()
    losses.append(float(loss))
samples = samples.numpy()
results["replica_samples_differ"] = bool(not np.allclose(samples[:32], samples[32:]))
results["losses"] = [losses[0], losses[-1]]
results["accuracy_after"] = accuracy()
results["kernels_agree_marker"] = float(tf.reduce_sum(dense.kernel))

# The REINFORCE helper in the same custom loop.
best = np.array([1, 2, 3, 0, 1])
contexts = tf.constant(np.eye(5, dtype="float32")[rng.integers(5, size=64)])


def reward_fn(inputs, actions):
    return tf.reduce_sum(actions * tf.one_hot(tf.gather(best, tf.argmax(inputs, -1)), 4), -1)


with strategy.scope():
    policy = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4)])
    step_fn = keras_gumbel.make_train_step(
        policy, reward_fn, keras.optimizers.Adam(0.05), num_samples=4, baseline="leave_one_out", seed=3
    )


@tf.function
def reinforce_step():
    metrics = strategy.run(step_fn, args=(contexts,))
    return strategy.reduce(tf.distribute.ReduceOp.MEAN, metrics["reward"], axis=None)


rewards = [float(reinforce_step()) for _ in range(60)]
results["reinforce_rewards"] = [float(np.mean(rewards[:3])), float(np.mean(rewards[-5:]))]
with open(output, "w") as handle:
    json.dump(results, handle)
