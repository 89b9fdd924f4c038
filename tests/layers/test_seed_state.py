"""`TrackSeedState`: a layer's seed-generator state is saved with its weights (every backend) and, on TensorFlow,
in checkpoints and SavedModels, so that a restored layer continues its noise stream where it stopped.
"""

import keras
import numpy as np
import pytest
from helpers import to_numpy

from keras_gumbel.layers import _seed_state
from keras_gumbel.layers._seed_state import TrackSeedState

BACKEND = keras.backend.backend()
tensorflow_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow checkpoints and SavedModels")
X = np.zeros((3, 4), "float32")


class Noisy(TrackSeedState, keras.layers.Layer):
    """Adds a weight and uniform noise from its `seed_generator` (and, optionally, a second generator's)."""

    def __init__(self, seed=1, second_seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed, self.second_seed = seed, second_seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.second = None if second_seed is None else keras.random.SeedGenerator(second_seed)

    def build(self, input_shape):
        self.offset = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="offset")

    def call(self, inputs):
        noise = keras.random.uniform(keras.ops.shape(inputs), seed=self.seed_generator)
        if self.second is not None:
            noise = noise + keras.random.uniform(keras.ops.shape(inputs), seed=self.second)
        return inputs + self.offset + noise

    def get_config(self):
        return {**super().get_config(), "seed": self.seed, "second_seed": self.second_seed}


def _built(**kwargs):
    layer = Noisy(**kwargs)
    layer.build(X.shape)
    return layer


def test_own_variables_hold_the_seed_state_next_to_the_weights():
    layer = _built()
    layer.offset.assign(np.arange(4, dtype="float32"))
    layer(X)  # advances the stream
    store = {}
    layer.save_own_variables(store)
    assert set(store) == {"0", "seed_generator_state"}
    np.testing.assert_array_equal(to_numpy(store["seed_generator_state"]), to_numpy(layer.seed_generator.state))

    fresh = _built()
    fresh.load_own_variables(store)
    np.testing.assert_array_equal(to_numpy(fresh.offset), np.arange(4))
    np.testing.assert_array_equal(to_numpy(fresh(X)), to_numpy(layer(X)))  # the same next draw


def test_weights_saved_without_a_seed_state_still_load():
    # Files written before the seed state was saved: the weights load, the stream starts from the seed.
    layer = _built()
    fresh = _built()
    fresh.load_own_variables({"0": np.full(4, 2.0, "float32")})
    np.testing.assert_array_equal(to_numpy(fresh.offset), np.full(4, 2.0))
    np.testing.assert_array_equal(to_numpy(fresh.seed_generator.state), to_numpy(layer.seed_generator.state))


def _model(**kwargs):
    return keras.Sequential([keras.Input((4,)), Noisy(**kwargs)])


def test_a_weights_file_resumes_the_stream(tmp_path):
    model = _model(seed=7)
    model(X)
    model.save_weights(tmp_path / "noisy.weights.h5")
    expected = [to_numpy(model(X)) for _ in range(2)]
    fresh = _model(seed=7)
    fresh.load_weights(tmp_path / "noisy.weights.h5")
    np.testing.assert_array_equal(np.stack([to_numpy(fresh(X)) for _ in range(2)]), np.stack(expected))


def test_a_keras_file_resumes_the_stream(tmp_path):
    model = _model(seed=8)
    model(X)
    model.save(tmp_path / "noisy.keras")
    expected = to_numpy(model(X))
    restored = keras.models.load_model(tmp_path / "noisy.keras", custom_objects={"Noisy": Noisy})
    np.testing.assert_array_equal(to_numpy(restored(X)), expected)


def test_seed_state_children_name_every_generator_on_tensorflow_only():
    layer = _built(seed=1, second_seed=2)
    children = _seed_state.seed_state_children(layer)
    if BACKEND != "tensorflow":
        assert children == {}
        return
    assert sorted(children) == ["seed_generator_state_0", "seed_generator_state_1"]
    states = {id(generator.state) for generator in (layer.seed_generator, layer.second)}
    assert {id(child) for child in children.values()} == states


@tensorflow_only
def test_a_checkpoint_restores_every_generator_and_the_weights(tmp_path):
    import tensorflow as tf

    layer = _built(seed=1, second_seed=2)
    layer.offset.assign(np.ones(4, "float32"))
    layer(X)
    path = tf.train.Checkpoint(layer=layer).write(str(tmp_path / "checkpoint"))
    expected = to_numpy(layer(X))
    layer.offset.assign(np.zeros(4, "float32"))
    layer(X)
    tf.train.Checkpoint(layer=layer).read(path).assert_consumed()
    np.testing.assert_array_equal(to_numpy(layer(X)), expected)


@tensorflow_only
def test_a_saved_model_of_a_function_that_samples_saves_and_keeps_sampling(tmp_path):
    import tensorflow as tf

    class Sampler(tf.Module):
        def __init__(self):
            super().__init__()
            self.layer = _built(seed=3)

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def sample(self, inputs):
            return self.layer(inputs)

    module = Sampler()
    module.sample(tf.constant(X))
    tf.saved_model.save(module, str(tmp_path / "sampler"))  # "untracked resource" without the seed state
    loaded = tf.saved_model.load(str(tmp_path / "sampler"))
    expected = [to_numpy(module.sample(tf.constant(X))) for _ in range(2)]
    np.testing.assert_array_equal(np.stack([loaded.sample(tf.constant(X)).numpy() for _ in range(2)]), expected)
