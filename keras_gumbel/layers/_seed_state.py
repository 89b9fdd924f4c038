"""`TrackSeedState`: a layer's (or model's) SeedGenerator state saved with its weights."""

from keras_gumbel import _backend
from keras_gumbel import _tf_private


class TrackSeedState:
    """Mixin for Keras layers and models whose `seed_generator` draws their noise.

    Keras saves a SeedGenerator's state nowhere; this mixin keeps it:

    - in `.keras` and `.weights.h5` files (`save_own_variables` /
      `load_own_variables`), on every backend, so that a reloaded model
      continues the same stream;
    - on TensorFlow, in SavedModels and checkpoints, as a trackable child
      (without it, saving a function that samples failed with an
      "untracked resource" error). TensorFlow's hook for that is private:
      `_tf_private.add_trackable_children` installs it, below.
    """

    _SEED_STATE_KEY = "seed_generator_state"

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[self._SEED_STATE_KEY] = self.seed_generator.state

    def load_own_variables(self, store):
        keys = list(store.keys())
        if self._SEED_STATE_KEY in keys:
            self.seed_generator.state.assign(store[self._SEED_STATE_KEY])
        super().load_own_variables({key: store[key] for key in keys if key != self._SEED_STATE_KEY})


def seed_state_children(owner):
    """The states of `owner`'s SeedGenerators, named as SavedModels and checkpoints hold them.

    Empty off TensorFlow (only TensorFlow's checkpoints ask for children).
    """
    if _backend.backend() != "tensorflow":
        return {}
    return {
        f"seed_generator_state_{index}": generator.state
        for index, generator in enumerate(_tf_private.seed_generators(owner))
    }


_tf_private.add_trackable_children(TrackSeedState, seed_state_children)
