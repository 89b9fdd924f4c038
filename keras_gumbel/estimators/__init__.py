"""Gradient estimators for expectations over samples whose reward has no gradient.

- `score_function`: `score_function_terms`, `score_function_loss` (pure maths)
  and `ScoreFunction`, the REINFORCE estimator with a baseline and an entropy
  bonus.
- `baselines`: `leave_one_out_baseline` and the `Baseline` objects
  (`LeaveOneOut`, `MovingAverageBaseline`, `Learned`); `baselines.get` turns a
  `baseline=` argument into one.
- `Estimator`: the interface the training helpers call; new estimators
  implement it.

These run on every backend (keras.ops only).
"""

from keras_gumbel.estimators import baselines
from keras_gumbel.estimators import score_function
from keras_gumbel.estimators.baselines import Baseline
from keras_gumbel.estimators.baselines import Learned
from keras_gumbel.estimators.baselines import LeaveOneOut
from keras_gumbel.estimators.baselines import MovingAverageBaseline
from keras_gumbel.estimators.baselines import leave_one_out_baseline
from keras_gumbel.estimators.estimator import Estimator
from keras_gumbel.estimators.score_function import ScoreFunction
from keras_gumbel.estimators.score_function import score_function_loss
from keras_gumbel.estimators.score_function import score_function_terms

__all__ = [
    "Baseline",
    "Estimator",
    "LeaveOneOut",
    "Learned",
    "MovingAverageBaseline",
    "ScoreFunction",
    "baselines",
    "leave_one_out_baseline",
    "score_function",
    "score_function_loss",
    "score_function_terms",
]
