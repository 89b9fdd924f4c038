"""The pathwise (reparameterised) estimators: the reward differentiated through a relaxed or straight-through sample.

They estimate `grad E[R(z)]` by `grad R(z(logits, noise))` at a sample drawn
from the Gumbel-Softmax relaxation (or, straight-through, at the exact
sample with the relaxation's gradient): low variance, but biased, and only
for a reward differentiable in the sample. The layers and ops
(`GumbelSoftmax`, `StraightThroughGumbel`, `ops.gumbel_rao`, `ops.reinmax`)
are how a model uses them; `Pathwise` names the same gradients in the
estimators' vocabulary, so that the training helpers can train a policy
through a differentiable `reward_fn` with them and the diagnostics measure
them on the same path as every other estimator.

| name | forward | gradient |
| --- | --- | --- |
| `"gumbel_softmax"` | `softmax((logits + g) / t)` (relaxed) | its own |
| `"straight_through"` | the exact one-hot (0/1) sample | the relaxed sample's |
| `"gumbel_rao"` | the exact sample | the relaxed gradient averaged over `num_draws` Gumbels given the sample |
| `"reinmax"` | the exact sample | ReinMax's second-order gradient |

Binary policies (`Bernoulli`) get the binary Concrete (`ops.relaxed_bernoulli`)
for the first two, and the two-category embedding (logits `[l, 0]`, category
0 the bit 1) for Gumbel-Rao and ReinMax. Runs on every backend as maths;
the training helpers need TensorFlow.

Reference:
    - [Jang, Gu & Poole, 2017](https://arxiv.org/abs/1611.01144)
    - [Paulus, Maddison & Krause, 2021. Rao-Blackwellizing the Straight-Through Gumbel-Softmax Gradient Estimator](https://arxiv.org/abs/2010.04838)
    - [Liu et al., 2023. Bridging Discrete and Backpropagation: Straight-Through and Beyond](https://arxiv.org/abs/2304.08612)
"""

from keras import ops

from keras_gumbel import _validation
from keras_gumbel import ops as gumbel_ops
from keras_gumbel.estimators import _discrete
from keras_gumbel.estimators.estimator import Estimator
from keras_gumbel.estimators.policy import Policy
from keras_gumbel.estimators.registry import register

__all__ = ["Pathwise"]

RELAXATIONS = ("gumbel_softmax", "straight_through", "gumbel_rao", "reinmax")


# Decorators apply from the bottom up: this registers gumbel_softmax first.
@register("reinmax", relaxation="reinmax")
@register("gumbel_rao", relaxation="gumbel_rao")
@register("straight_through", relaxation="straight_through")
@register("gumbel_softmax", relaxation="gumbel_softmax")
class Pathwise(Estimator):
    """The gradient of the reward through a Gumbel-Softmax sample, or straight through the exact one (biased).

    For each input it draws `num_samples` samples with `relaxation` (see the
    module's table), evaluates their rewards in one `reward_fn` call, and
    returns `-mean(rewards)`: its gradient reaches the logits through the
    samples. `reward_fn` must be differentiable in the actions (float
    one-hot or 0/1 values, relaxed ones in between). The policy's
    distribution must be a `tfd.OneHotCategorical` or a `tfd.Bernoulli` (or
    an `Independent` of one).

    Args:
        relaxation: `"gumbel_softmax"`, `"straight_through"`, `"gumbel_rao"`
            or `"reinmax"`.
        temperature: The relaxation's temperature.
        num_draws: Conditional draws of `"gumbel_rao"` (unused otherwise).

    Examples:
        >>> import keras_gumbel
        >>> estimator = keras_gumbel.estimators.get(
        ...     "straight_through", temperature=0.5
        ... )
        >>> estimator
        Pathwise(relaxation='straight_through', temperature=0.5, num_draws=10)
    """

    metric_names = ()

    def __init__(self, relaxation="gumbel_softmax", temperature=1.0, num_draws=10):
        if relaxation not in RELAXATIONS:
            raise ValueError(_validation.invalid("relaxation", f"one of {RELAXATIONS}", relaxation))
        self.relaxation = relaxation
        self.temperature = _validation.check_temperature(temperature)
        self.num_draws = _validation.check_int("num_draws", num_draws, minimum=1)

    def get_config(self):
        return {"relaxation": self.relaxation, "temperature": self.temperature, "num_draws": self.num_draws}

    def sample(self, logits, binary, seed):
        """A sample of the relaxation for `logits` (bits for `binary`), differentiable in the logits."""
        t, relaxation = self.temperature, self.relaxation
        if binary and relaxation in ("gumbel_softmax", "straight_through"):
            return gumbel_ops.relaxed_bernoulli(logits, t, hard=relaxation == "straight_through", seed=seed)
        if binary:
            # Two categories, logits [l, 0]: category 0 is the bit 1 (the two-category Concrete is the binary one).
            logits = ops.stack([logits, ops.zeros_like(logits)], axis=-1)
        if relaxation in ("gumbel_softmax", "straight_through"):
            sample = gumbel_ops.gumbel_softmax(logits, t, hard=relaxation == "straight_through", seed=seed)
        elif relaxation == "gumbel_rao":
            sample = gumbel_ops.gumbel_rao(logits, t, num_draws=self.num_draws, seed=seed)
        else:
            sample = gumbel_ops.reinmax(logits, t, seed=seed)
        return sample[..., 0] if binary else sample

    def estimate(self, distribution, evaluate, log_prob, num_samples, seed, inputs, training=None):
        del log_prob, inputs, training
        self.check_num_samples(num_samples)
        logits, kind, dtype = Policy.of(distribution).require("Pathwise", kinds=("binary", "categorical"))
        logits = _discrete.compute_logits(logits)
        tiled = ops.repeat(ops.expand_dims(logits, 0), num_samples, axis=0)  # [S, B, ...]
        actions = ops.cast(self.sample(tiled, kind == "binary", seed), dtype)
        rewards = evaluate(actions)  # [S, B], differentiable in the actions
        return ops.negative(ops.mean(ops.cast(rewards, "float32"))), {}, rewards
