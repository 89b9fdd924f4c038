"""keras-gumbel: trainable discrete choices for Keras 3.

The public API: layers, the backend-agnostic `ops` module, temperature
schedules and the annealing callback, the REINFORCE estimators and their
training helpers (`estimators`; `reinforce` keeps the old names), and the
TFP bridge.
"""

from keras_gumbel import diagnostics
from keras_gumbel import distributions
from keras_gumbel import estimators
from keras_gumbel import ops
from keras_gumbel import pruning
from keras_gumbel import reinforce
from keras_gumbel import schedules
from keras_gumbel.callbacks import TemperatureAnnealing
from keras_gumbel.estimators import MovingAverageBaseline
from keras_gumbel.estimators import ReinforceModel
from keras_gumbel.estimators import leave_one_out_baseline
from keras_gumbel.estimators import make_train_step
from keras_gumbel.estimators import score_function_loss
from keras_gumbel.estimators import score_function_terms
from keras_gumbel.layers import ConcreteSelector
from keras_gumbel.layers import GumbelAttention
from keras_gumbel.layers import GumbelSinkhorn
from keras_gumbel.layers import GumbelSoftmax
from keras_gumbel.layers import GumbelVectorQuantizer
from keras_gumbel.layers import HardConcreteGate
from keras_gumbel.layers import HeadGatedAttention
from keras_gumbel.layers import RelaxedBernoulli
from keras_gumbel.layers import StraightThroughGumbel

__version__ = "0.3.0.dev0"

__all__ = [
    "ConcreteSelector",
    "GumbelAttention",
    "GumbelSinkhorn",
    "GumbelSoftmax",
    "GumbelVectorQuantizer",
    "HardConcreteGate",
    "HeadGatedAttention",
    "MovingAverageBaseline",
    "ReinforceModel",
    "RelaxedBernoulli",
    "StraightThroughGumbel",
    "TemperatureAnnealing",
    "diagnostics",
    "distributions",
    "estimators",
    "leave_one_out_baseline",
    "make_train_step",
    "ops",
    "pruning",
    "reinforce",
    "schedules",
    "score_function_loss",
    "score_function_terms",
]
