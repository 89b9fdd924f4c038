"""Run by tests/test_distribute.py in a fresh process: Keras' DataParallel distribution on JAX, two CPU devices.

On JAX, `model.fit` runs data-parallel through `keras.distribution.DataParallel` (the route for `fit` on many
devices). Prints one JSON line with what it measured.
"""

import json
import os

os.environ["KERAS_BACKEND"] = "jax"
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_gumbel  # noqa: E402

devices = jax.devices("cpu")
keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
results = {"devices": len(devices)}

inputs = keras.Input((6,))
layer = keras_gumbel.StraightThroughGumbel(seed=0, name="choice")
model = keras.Model(inputs, layer(keras.layers.Dense(4)(inputs)))
model.compile(keras.optimizers.Adam(0.05), "mse")
features = np.random.default_rng(0).normal(size=(512, 6)).astype("float32")
target = np.eye(4, dtype="float32")[np.argmax(features[:, :4], -1)]
schedule = keras_gumbel.schedules.ExponentialDecay(1.0, rate=0.02, minimum=0.3)
history = model.fit(
    features, target, batch_size=64, epochs=5, verbose=0, callbacks=[keras_gumbel.TemperatureAnnealing(schedule)]
).history
results["losses"] = [history["loss"][0], history["loss"][-1]]
results["temperatures"] = history["temperature"]
results["expected_temperatures"] = [schedule(8 * (epoch + 1) - 1) for epoch in range(5)]
# Identical rows on both devices' halves of a batch: their noise must differ.
sample = keras.ops.convert_to_numpy(layer(np.zeros((64, 4), "float32"), training=True))
results["halves_differ"] = bool(not np.array_equal(sample[:32], sample[32:]))
results["accuracy"] = float(np.mean(np.argmax(model.predict(features, verbose=0), -1) == np.argmax(target, -1)))
print(json.dumps(results))
