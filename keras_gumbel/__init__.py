"""keras-gumbel: trainable discrete choices for Keras 3.

The public API: layers, the backend-agnostic `ops` module and the TFP bridge.
"""

from keras_gumbel import distributions
from keras_gumbel import ops
from keras_gumbel import schedules
from keras_gumbel.callbacks import TemperatureAnnealing
from keras_gumbel.layers import GumbelSoftmax
from keras_gumbel.layers import StraightThroughGumbel

__version__ = "0.1.0"

__all__ = [
    "GumbelSoftmax",
    "StraightThroughGumbel",
    "TemperatureAnnealing",
    "distributions",
    "ops",
    "schedules",
]
