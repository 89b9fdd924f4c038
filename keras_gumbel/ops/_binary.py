"""The binary samplers: the binary Concrete (Gumbel-sigmoid) relaxation of a Bernoulli, and its logit.

Private: `keras_gumbel.ops` re-exports `relaxed_bernoulli` and `relaxed_bernoulli_logits`; import them from there.
The Numerics and Seeds that "the module docstring" names in the docstrings below are those of `keras_gumbel.ops`.
"""

from keras import ops

from keras_gumbel import _sampling
from keras_gumbel import _validation


def relaxed_bernoulli(logits, temperature=1.0, hard=False, seed=None):
    """Samples the binary Concrete (Gumbel-sigmoid) relaxation of Bernoulli(sigmoid(logits)).

        y = sigmoid((logits + L) / temperature),
        L = log(u) - log(1 - u) ~ Logistic(0, 1)

    (the difference of two Gumbels: the two-category Gumbel-Softmax on the
    logits `[logits, 0]`). With `hard=True` the forward value is the exact
    Bernoulli sample `1[logits + L > 0]` and the gradient is that of `y`.

    Args:
        logits: Floating tensor of log-odds; every entry is an independent variable.
        temperature: Positive temperature.
        hard: Exact 0/1 forward, relaxed gradient backward.
        seed: `None`, an integer, a `keras.random.SeedGenerator` or a seed
            tensor (a JAX key): see Seeds in the module docstring.

    Returns:
        A tensor with the shape and dtype of `logits`.

    Reference:
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712), section 3.3.
    """
    temperature = _sampling.check_temperature(temperature)
    _validation.check_bool("hard", hard)
    logits = ops.convert_to_tensor(logits)
    return _sampling.bernoulli(logits, temperature, hard, _sampling.check_seed(seed), add_noise=True)


def relaxed_bernoulli_logits(logits, temperature=1.0, seed=None):
    """The logit of a relaxed Bernoulli sample: `(logits + L) / temperature`, L ~ Logistic(0, 1).

    `sigmoid` of it is `relaxed_bernoulli(logits, temperature, seed=seed)`
    (the same noise for the same seed). It is a sample of
    `Logistic(logits / temperature, 1 / temperature)` and its log-density is
    always finite, where the relaxed sample's is not: in float32, samples at
    temperature 0.5 reach exactly 0.0 and 1.0, whose log-probability is
    infinite (and an entropy gradient NaN). Score it with
    `tfp.distributions.Logistic(logits / temperature, 1 / temperature)`, or
    `RelaxedBernoulli(log_space=True).distribution(logits)`.

    Args:
        logits: Floating tensor of log-odds; every entry is an independent variable.
        temperature: Positive temperature.
        seed: `None`, an integer, a `keras.random.SeedGenerator` or a seed
            tensor (a JAX key): see Seeds in the module docstring.

    Returns:
        A tensor with the shape and dtype of `logits`.

    Reference:
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712), section 3.3 and appendix C.
    """
    temperature = _sampling.check_temperature(temperature)
    logits = ops.convert_to_tensor(logits)
    return _sampling.bernoulli(logits, temperature, False, _sampling.check_seed(seed), add_noise=True, log_space=True)
