"""Backend-agnostic Gumbel-Softmax operations, written with `keras.ops` only.

These are the pure functions the layers are built on; use them directly
outside layers, for example inside a custom training step.

Examples:
    >>> import keras, keras_gumbel
    >>> logits = keras.ops.log([[0.2, 0.3, 0.5]])
    >>> sample = keras_gumbel.ops.gumbel_softmax(logits, temperature=0.5, seed=1)
    >>> tuple(sample.shape)
    (1, 3)

Numerics, for every function here:

- Gumbel noise is `-log(-log(u))` with `u` uniform on `[tiny, 1)` (as TFP
  draws it), so it is always finite; it is drawn in float32 (float64 for
  float64 logits) whatever the dtype of the logits, and the softmax is computed
  in that dtype too. Results are cast back to the dtype of the logits.
- `-inf` logits mark masked categories: they are never selected, get exactly
  zero mass and zero gradient.
- A row whose logits are all `-inf` has no category to choose: like
  `softmax`, it gives NaN (the whole row, in the relaxed and hard forms). If a
  row can be fully masked (padding), build the logits with `mask_logits`,
  which keeps such rows finite.
- NaN or `+inf` logits are invalid input and are not hidden: the row's output
  holds NaN (the whole row for `hard=True`) and so does its gradient.
- The temperature has a floor, `2**-104` (about 4.9e-32): a number below it is
  a `ValueError`, and a tensor or variable below it (0, negative) is read as
  the floor, the zero-temperature limit (never a negative temperature, which
  would turn the samples towards the least likely categories). At the floor,
  `logits / temperature` is finite for every `|logits + noise| < 2**24` (float32
  numbers that large are 2 or more apart, too coarse for the noise), so
  outputs are finite at every temperature the functions take.

Seeds, for every function here, as `keras.random` takes them:

- `None`: Keras' global generator (inside `jax.jit`, only under a
  `keras.StatelessScope`, as for `keras.random`);
- an integer: the same draw on every call (a constant inside `jax.jit` or a
  `tf.function`);
- a `keras.random.SeedGenerator`: a reproducible stream of different draws;
- a seed tensor, the functional way, also inside `jax.jit` and `tf.function`
  where it may be traced: on JAX a key (`jax.random.key(0)`, or
  `jax.random.PRNGKey(0)`), on TensorFlow two integers as
  `tf.random.stateless_*` takes them, on PyTorch two integers `[a, b]` drawn
  as the integer `(a + b) mod 2**31`. The same key gives the same draw,
  different keys independent draws; split or fold in a key per call, as with
  `jax.random`.

These checks cost nothing extra: detecting and repairing all-masked rows inside
the sampler would add two passes over the data to every call (about 7-10% of
the forward and backward time in `benchmarks/speed.py`).
"""

from keras_gumbel.ops._binary import relaxed_bernoulli
from keras_gumbel.ops._binary import relaxed_bernoulli_logits
from keras_gumbel.ops._categorical import gumbel_noise
from keras_gumbel.ops._categorical import gumbel_rao
from keras_gumbel.ops._categorical import gumbel_softmax
from keras_gumbel.ops._categorical import log_gumbel_softmax
from keras_gumbel.ops._categorical import reinmax
from keras_gumbel.ops._hard_concrete import hard_concrete
from keras_gumbel.ops._hard_concrete import hard_concrete_gate
from keras_gumbel.ops._hard_concrete import hard_concrete_probability_nonzero
from keras_gumbel.ops._masks import mask_logits
from keras_gumbel.ops._permutations import gumbel_sinkhorn
from keras_gumbel.ops._permutations import max_weight_assignment
from keras_gumbel.ops._permutations import sinkhorn
from keras_gumbel.ops._subsets import gumbel_top_k
from keras_gumbel.ops._subsets import relaxed_top_k

__all__ = [
    "gumbel_noise",
    "gumbel_softmax",
    "log_gumbel_softmax",
    "gumbel_rao",
    "reinmax",
    "gumbel_top_k",
    "relaxed_top_k",
    "sinkhorn",
    "gumbel_sinkhorn",
    "max_weight_assignment",
    "relaxed_bernoulli",
    "hard_concrete",
    "hard_concrete_gate",
    "hard_concrete_probability_nonzero",
    "relaxed_bernoulli_logits",
    "mask_logits",
]
