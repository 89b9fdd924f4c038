"""Compatibility module: the REINFORCE names, which now live in `keras_gumbel.estimators`.

`keras_gumbel.reinforce.score_function_loss` and the other names below keep
working. New code imports them from `keras_gumbel` or
`keras_gumbel.estimators`, which also holds the estimator interface
(`Estimator`, `ScoreFunction`) and the baseline objects (`baselines`):

- `score_function_terms`, `score_function_loss`: `estimators.score_function`
- `leave_one_out_baseline`, `MovingAverageBaseline`: `estimators.baselines`
- `make_train_step`, `ReinforceModel`: `estimators.training` (TensorFlow backend)
"""

from keras_gumbel.estimators.baselines import MovingAverageBaseline
from keras_gumbel.estimators.baselines import leave_one_out_baseline
from keras_gumbel.estimators.score_function import score_function_loss
from keras_gumbel.estimators.score_function import score_function_terms
from keras_gumbel.estimators.training import ReinforceModel
from keras_gumbel.estimators.training import make_train_step

__all__ = [
    "score_function_terms",
    "score_function_loss",
    "leave_one_out_baseline",
    "MovingAverageBaseline",
    "make_train_step",
    "ReinforceModel",
]
