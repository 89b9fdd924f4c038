"""`Policy`: the policy's distribution for one batch, with what the estimators read of it worked out once.

The training helpers build a `Policy` for each batch and hand it to
`Estimator.estimate` as its `distribution`. It is the TFP distribution (every
attribute it lacks, `sample`, `log_prob`, `entropy`, `mode`, ..., is the
distribution's), plus what the estimators that choose their own actions need
and would otherwise dig out of TFP objects each: the `logits`, the `kind` of
variable (`"binary"`, `"categorical"`, `"index"`, or `None` for any other
distribution), the shape of one input's variables and the dtype of an
action. A distribution named by `distribution=` (`"one_hot_categorical"`,
`"categorical"`, `"bernoulli"`) is built from the logits with that view; a
distribution from a callable is read once, here, by its type.
"""

import math

from keras import ops

from keras_gumbel import _validation

__all__ = ["Policy"]

DISTRIBUTIONS = {"one_hot_categorical": "categorical", "categorical": "index", "bernoulli": "binary"}
"""The distributions the training helpers' `distribution=` names, each with the kind of variable it samples."""

_KIND_NAMES = {
    "binary": "tfd.Bernoulli (or tfd.Independent of one)",
    "categorical": "tfd.OneHotCategorical",
    "index": "tfd.Categorical",
}


class Policy:
    """A policy's distribution for a batch, with its logits, kind of variable and action form.

    Attributes:
        distribution: The TFP distribution (batch shape [B, ...]).
        logits: Its logits ([B, *variables] for bits, [B, *variables, K]
            for categories), or `None` for a distribution of no kind below.
        kind: `"binary"` (Bernoulli bits), `"categorical"` (one-hot
            actions), `"index"` (integer actions), or `None`.
        action_dtype: The dtype of its actions.
        variable_shape: The shape of one input's variables (the logits'
            axes after the batch, less the categories').
        num_categories: K (2 for bits), or `None` where `kind` is `None`.
    """

    def __init__(self, distribution, logits=None, kind=None):
        self.distribution = distribution
        self.logits = logits
        self.kind = kind
        dtype = distribution.dtype
        self.action_dtype = getattr(dtype, "name", dtype)
        if kind is None:
            self.variable_shape, self.num_categories = None, None
        else:
            shape = tuple(logits.shape)
            self.variable_shape = shape[1:] if kind == "binary" else shape[1:-1]
            self.num_categories = 2 if kind == "binary" else shape[-1]

    @classmethod
    def from_logits(cls, logits, name):
        """The policy of a distribution named by `distribution=` (see `DISTRIBUTIONS`), built from `logits`."""
        from keras_gumbel.distributions import tfp_distributions

        tfd = tfp_distributions()
        kind = DISTRIBUTIONS[name]
        if kind == "categorical":
            distribution = tfd.OneHotCategorical(logits=logits, dtype="float32")
        elif kind == "index":
            distribution = tfd.Categorical(logits=logits)
        else:
            # One independent bit an entry of logits [B, ...]: the batch axis alone is the distribution's batch.
            bits = tfd.Bernoulli(logits=logits, dtype="float32")
            distribution = tfd.Independent(bits, reinterpreted_batch_ndims=len(logits.shape) - 1)
        return cls(distribution, logits, kind)

    @classmethod
    def of(cls, distribution):
        """The policy of any distribution: a `Policy` as it is; a TFP one read by its type, once."""
        if isinstance(distribution, Policy):
            return distribution
        from keras_gumbel.distributions import tfp_distributions

        tfd = tfp_distributions()
        inner = distribution
        while isinstance(inner, tfd.Independent):
            inner = inner.distribution
        for kind, distribution_class in (
            ("binary", tfd.Bernoulli),
            ("categorical", tfd.OneHotCategorical),
            ("index", tfd.Categorical),
        ):
            if isinstance(inner, distribution_class):
                return cls(distribution, inner.logits_parameter(), kind)
        return cls(distribution)

    def __getattr__(self, name):
        # Only for attributes the view does not have: sample, log_prob, entropy, mode, batch_shape_tensor, ...
        if name == "distribution":  # not set yet (copying, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.distribution, name)

    def require(self, owner, kinds=("binary", "categorical", "index")):
        """`(logits, kind, action_dtype)`; a `TypeError` naming `owner` if the kind is not one of `kinds`."""
        if self.kind not in kinds:
            raise TypeError(
                f"{owner} works with a policy distribution that is a {' or a '.join(_KIND_NAMES[k] for k in kinds)}; "
                f"received {self.distribution!r}. Pass `distribution=` to the training helper to build one from the "
                "policy's logits (e.g. distribution='bernoulli')."
            )
        return self.logits, self.kind, self.action_dtype

    def static_sizes(self, owner):
        """`(D, K)`: one input's number of variables and their categories, which must be known when traced."""
        sizes = (*self.variable_shape, self.num_categories)
        if not all(isinstance(size, int) for size in sizes):
            raise ValueError(
                _validation.invalid(
                    "logits",
                    f"a shape known when traced but for the batch axis ({owner} lists each variable's values)",
                    tuple(self.logits.shape),
                )
            )
        return math.prod(self.variable_shape), self.num_categories

    def actions(self, values):
        """Values in this policy's action form: one-hot vectors [..., K] or bits as they are; indices for `"index"`."""
        if self.kind == "index":
            return ops.cast(ops.argmax(values, axis=-1), self.action_dtype)
        return ops.cast(values, self.action_dtype)

    def actions_from_indices(self, indices):
        """Category indices [..., *variables] (bits: 0/1) as this policy's actions."""
        if self.kind == "categorical":
            return ops.one_hot(indices, self.num_categories, dtype=self.action_dtype)
        return ops.cast(indices, self.action_dtype)
