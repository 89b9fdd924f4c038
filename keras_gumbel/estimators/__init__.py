"""Gradient estimators for expectations over samples whose reward has no gradient.

- `score_function`: `score_function_terms`, `score_function_loss` (pure, every backend).
- `baselines`: `leave_one_out_baseline`, `MovingAverageBaseline` (every backend).
"""

from keras_gumbel.estimators import baselines
from keras_gumbel.estimators import score_function
from keras_gumbel.estimators.baselines import MovingAverageBaseline
from keras_gumbel.estimators.baselines import leave_one_out_baseline
from keras_gumbel.estimators.score_function import score_function_loss
from keras_gumbel.estimators.score_function import score_function_terms

__all__ = [
    "MovingAverageBaseline",
    "baselines",
    "leave_one_out_baseline",
    "score_function",
    "score_function_loss",
    "score_function_terms",
]
