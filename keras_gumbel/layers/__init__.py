"""Keras layers that sample discrete choices with a usable gradient."""

from keras_gumbel.layers.concrete_selector import ConcreteSelector
from keras_gumbel.layers.gumbel_attention import GumbelAttention
from keras_gumbel.layers.gumbel_sinkhorn import GumbelSinkhorn
from keras_gumbel.layers.gumbel_softmax import GumbelSoftmax
from keras_gumbel.layers.gumbel_vector_quantizer import GumbelVectorQuantizer
from keras_gumbel.layers.hard_concrete_gate import HardConcreteGate
from keras_gumbel.layers.head_gated_attention import HeadGatedAttention
from keras_gumbel.layers.relaxed_bernoulli import RelaxedBernoulli
from keras_gumbel.layers.straight_through_gumbel import StraightThroughGumbel

__all__ = [
    "ConcreteSelector",
    "GumbelAttention",
    "GumbelSinkhorn",
    "GumbelSoftmax",
    "GumbelVectorQuantizer",
    "HardConcreteGate",
    "HeadGatedAttention",
    "RelaxedBernoulli",
    "StraightThroughGumbel",
]
