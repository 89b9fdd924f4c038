"""Run by tests/test_distribute.py in a fresh process: two logical CPUs under MirroredStrategy.

Prints one JSON line with what it measured.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_gumbel  # noqa: E402

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
results = {"replicas": strategy.num_replicas_in_sync}
logits = tf.zeros((64, 5))


def per_replica(values):
    return [v.numpy() for v in strategy.experimental_local_results(values)]


with strategy.scope():
    layers = {
        "gumbel_softmax": keras_gumbel.GumbelSoftmax(seed=0),
        "straight_through": keras_gumbel.StraightThroughGumbel(seed=0),
    }
    plain_generator = keras.random.SeedGenerator(0)
for name, layer in layers.items():
    first, second = per_replica(strategy.run(tf.function(lambda layer=layer: layer(logits, training=True))))
    results[f"{name}_replicas_differ"] = bool(not np.array_equal(first, second))
# The quirk being fixed: keras.random with a plain SeedGenerator draws the same on every replica.
first, second = per_replica(strategy.run(tf.function(lambda: keras.random.uniform((64, 5), seed=plain_generator))))
results["plain_keras_replicas_equal"] = bool(np.array_equal(first, second))

# model.fit with a Gumbel layer and the annealing callback.
with strategy.scope():
    inputs = keras.Input((6,))
    outputs = keras_gumbel.StraightThroughGumbel(seed=1, name="choice")(keras.layers.Dense(4)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(0.05), "categorical_crossentropy")
x = np.random.default_rng(0).normal(size=(256, 6)).astype("float32")
y = np.eye(4, dtype="float32")[np.argmax(x[:, :4], -1)]
schedule = keras_gumbel.schedules.ExponentialDecay(1.0, rate=0.05, minimum=0.3)
history = model.fit(
    x, y, batch_size=32, epochs=3, verbose=0, callbacks=[keras_gumbel.TemperatureAnnealing(schedule)]
).history
results["fit_losses"] = history["loss"]
results["fit_temperatures"] = history["temperature"]
results["expected_temperatures"] = [schedule(7), schedule(15), schedule(23)]

# ReinforceModel: a bandit through fit, two replicas.
best = np.array([1, 2, 3, 0, 1])
contexts = np.eye(5, dtype="float32")[np.random.default_rng(1).integers(5, size=512)]


def reward_fn(inputs, actions):
    return tf.reduce_sum(actions * tf.one_hot(tf.gather(best, tf.argmax(inputs, -1)), 4), -1)


with strategy.scope():
    policy = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4)])
    reinforce_model = keras_gumbel.ReinforceModel(policy, reward_fn, num_samples=4, baseline="leave_one_out", seed=2)
    reinforce_model.compile(optimizer=keras.optimizers.Adam(0.05))
reinforce_model.fit(contexts, batch_size=64, epochs=4, verbose=0)
results["reinforce_greedy_reward"] = reinforce_model.evaluate(contexts, verbose=0, return_dict=True)["greedy_reward"]
print(json.dumps(results))
