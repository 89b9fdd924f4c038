"""A Gumbel layer in a pure JAX training loop: `stateless_call`, `jax.value_and_grad`, a stateless optimizer.

Run with the JAX backend (the script sets it):

    python examples/jax_training_loop.py --steps 600

The model picks one of 4 codes per input with a `StraightThroughGumbel`
layer (exact one-hot forward, relaxed gradient backward) and decodes the
code; the target is the code of the input's largest feature. Everything that
changes from step to step is an explicit value passed in and returned by one
jitted function:

- the weights (`trainable_variables`) and the optimizer state,
- the layer's sampling stream (its `SeedGenerator` state, one of the
  `non_trainable_variables`): each step draws new noise, and replaying the
  same state replays the same draws,
- the temperature, annealed by a schedule of the step number
  (`keras_gumbel.schedules.ExponentialDecay` accepts a traced step), written
  into the temperature variable's slot of the state.

It prints the loss every 100 steps and the accuracy of the inference-time
(noise-free argmax) codes at the end.
"""

import argparse
import os

os.environ["KERAS_BACKEND"] = "jax"

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_gumbel  # noqa: E402


def make_data(num_rows, seed):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(num_rows, 4)).astype("float32")
    targets = np.eye(4, dtype="float32")[np.argmax(features, axis=-1)]
    return features, targets


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
    optimizer = keras.optimizers.Adam(0.01)
    optimizer.build(model.trainable_variables)
    schedule = keras_gumbel.schedules.ExponentialDecay(1.0, rate=5.0 / args.steps, minimum=0.3)
    # Where the temperature sits among the state the loop carries.
    temperature_slot = next(
        i for i, v in enumerate(model.non_trainable_variables) if v is model.get_layer("code").temperature
    )

    def loss_fn(trainable, non_trainable, x, y):
        predictions, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        loss = keras.ops.mean(keras.losses.mean_squared_error(y, predictions))
        return loss, non_trainable

    @jax.jit
    def train_step(state, step, x, y):
        trainable, non_trainable, optimizer_state = state
        # The temperature of this step, written into the layer's variable slot.
        non_trainable = list(non_trainable)
        non_trainable[temperature_slot] = schedule(step).astype("float32")
        (loss, non_trainable), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable, non_trainable, x, y)
        trainable, optimizer_state = optimizer.stateless_apply(optimizer_state, grads, trainable)
        return (trainable, non_trainable, optimizer_state), loss

    state = (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in optimizer.variables],
    )
    features, targets = make_data(args.batch_size * 50, seed=0)
    for step in range(args.steps):
        rows = slice((step % 50) * args.batch_size, (step % 50 + 1) * args.batch_size)
        state, loss = train_step(state, step, features[rows], targets[rows])
        if (step + 1) % 100 == 0 or step + 1 == args.steps:
            print(f"step {step + 1}: loss {float(loss):.4f}, temperature {float(schedule(step)):.3f}")

    # Write the final state back into the model: it then serves, saves and evaluates as usual.
    trainable, non_trainable, _ = state
    for variable, value in zip(model.trainable_variables, trainable):
        variable.assign(value)
    for variable, value in zip(model.non_trainable_variables, non_trainable):
        variable.assign(value)
    test_features, test_targets = make_data(2_000, seed=1)
    predictions = model.predict(test_features, verbose=0)
    accuracy = float(np.mean(np.argmax(predictions, -1) == np.argmax(test_targets, -1)))
    print(f"test accuracy of the inference-time codes: {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    main()
