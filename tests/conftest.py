import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _float32_policy_and_fixed_seeds():
    """Each test starts and ends under the float32 policy, with Python, NumPy, TF and Keras seeded.

    Weight initialisers and `seed=None` draws then give the same values whatever other tests ran before.
    """
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")
