"""Keras layers that sample discrete choices with a usable gradient."""

from keras_gumbel.layers.gumbel_attention import GumbelAttention
from keras_gumbel.layers.gumbel_softmax import GumbelSoftmax
from keras_gumbel.layers.relaxed_bernoulli import RelaxedBernoulli
from keras_gumbel.layers.straight_through_gumbel import StraightThroughGumbel

__all__ = ["GumbelAttention", "GumbelSoftmax", "RelaxedBernoulli", "StraightThroughGumbel"]
