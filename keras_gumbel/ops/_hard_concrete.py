"""The Hard Concrete gate of Louizos, Welling & Kingma (2018), the L0 gate of learned sparsity.

Private: `keras_gumbel.ops` re-exports `hard_concrete`, `hard_concrete_gate` and `hard_concrete_probability_nonzero`;
import them from there. The Numerics and Seeds that "the module docstring" names below are those of
`keras_gumbel.ops`.
"""

import math

from keras import ops

from keras_gumbel import _sampling
from keras_gumbel import _validation

STRETCH = (-0.1, 1.1)
TEMPERATURE = 2.0 / 3.0


def check_stretch(stretch):
    """`(low, high)` as floats, with `low < 0` and `high > 1` (else a gate would never be exactly 0 or 1)."""
    expected = "a pair (low, high) of finite floats with low < 0 and high > 1, e.g. (-0.1, 1.1)"
    if not isinstance(stretch, (tuple, list)) or len(stretch) != 2:
        raise ValueError(_validation.invalid("stretch", expected, stretch))
    low = _validation.check_real("stretch", stretch[0], expected, lambda v: math.isfinite(v) and v < 0)
    high = _validation.check_real("stretch", stretch[1], expected, lambda v: math.isfinite(v) and v > 1)
    return low, high


def hard_concrete(log_alpha, temperature=TEMPERATURE, stretch=STRETCH, seed=None):
    """Samples Hard Concrete gates: exactly 0 or exactly 1 with positive probability, relaxed in between.

        s = sigmoid((log_alpha + L) / temperature),  L ~ Logistic(0, 1)
        z = clip(s * (high - low) + low, 0, 1)

    `s` is the binary Concrete sample of `relaxed_bernoulli(log_alpha, temperature)`; stretched to `(low, high)`
    and clipped to `[0, 1]`, it puts mass `1 - hard_concrete_probability_nonzero(...)` exactly on 0 and a mass
    exactly on 1, and is differentiable in `log_alpha` in between (the clipped samples get a zero gradient). The
    expected L0 norm of a vector of gates, the number of non-zero gates, is the sum of their probabilities of
    being non-zero: a penalty in closed form.

    Args:
        log_alpha: Floating tensor, one gate per entry (the gate's location, `log(alpha)` in the paper).
        temperature: Positive temperature (beta); 2/3 in the paper.
        stretch: `(low, high)`, `low < 0 < 1 < high`; `(-0.1, 1.1)` in the paper.
        seed: `None`, an integer, a `keras.random.SeedGenerator` or a seed tensor (a JAX key): see Seeds in the
            module docstring.

    Returns:
        Gates in `[0, 1]` with the shape and dtype of `log_alpha`.

    Examples:
        >>> import keras, keras_gumbel
        >>> gates = keras_gumbel.ops.hard_concrete(keras.ops.zeros((1000,)), seed=0)
        >>> float(keras.ops.min(gates)), float(keras.ops.max(gates))
        (0.0, 1.0)

    Reference:
        - [Louizos, Welling & Kingma, 2018. Learning Sparse Neural Networks through L0 Regularization](
          https://arxiv.org/abs/1712.01312), section 4 and equation 12.
    """
    temperature = _sampling.check_temperature(temperature)
    stretch = check_stretch(stretch)
    return _sampling.hard_concrete(
        ops.convert_to_tensor(log_alpha), temperature, stretch, _sampling.check_seed(seed), add_noise=True
    )


def hard_concrete_gate(log_alpha, stretch=STRETCH):
    """The deterministic gate at test time: `clip(sigmoid(log_alpha) * (high - low) + low, 0, 1)`.

    Louizos et al.'s estimator of the gate once training is done (their equation 13): exactly 0 where
    `sigmoid(log_alpha) <= -low / (high - low)`, which the pruned model drops, and exactly 1 near the top.

    Args:
        log_alpha: Floating tensor, one gate per entry.
        stretch: `(low, high)`, as in `hard_concrete`.

    Returns:
        Gates in `[0, 1]` with the shape and dtype of `log_alpha`.
    """
    stretch = check_stretch(stretch)
    return _sampling.hard_concrete(ops.convert_to_tensor(log_alpha), 1.0, stretch, None, add_noise=False)


def hard_concrete_probability_nonzero(log_alpha, temperature=TEMPERATURE, stretch=STRETCH):
    """`P(z > 0)` for Hard Concrete gates: `sigmoid(log_alpha - temperature * log(-low / high))`.

    Its sum over gates is the expected number of non-zero gates (the expected L0 norm), the penalty Louizos et al.
    minimise and the expected number of kept units that a sparsity controller aims at.

    Args:
        log_alpha: Floating tensor, one gate per entry.
        temperature: Positive temperature, as in `hard_concrete`.
        stretch: `(low, high)`, as in `hard_concrete`.

    Returns:
        Probabilities with the shape and dtype of `log_alpha`.
    """
    temperature = _sampling.check_temperature(temperature)
    stretch = check_stretch(stretch)
    return _sampling.hard_concrete_tail(ops.convert_to_tensor(log_alpha), temperature, stretch)
