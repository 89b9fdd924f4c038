"""`Policy`: the view of a batch's TFP distribution (logits, kind of variable, shapes, action form) the estimators
read, and the distribution itself for everything else (`sample`, `log_prob`, ...).

TensorFlow Probability distributions: TensorFlow backend only.
"""

import copy

import keras
import numpy as np
import pytest
from helpers import to_numpy

from keras_gumbel.estimators import Policy
from keras_gumbel.estimators.policy import DISTRIBUTIONS

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="policies are TFP distributions")
tf = pytest.importorskip("tensorflow")
tfd = pytest.importorskip("tensorflow_probability").distributions

LOGITS = np.random.default_rng(0).normal(size=(4, 3, 5)).astype("float32")  # B = 4, 3 variables, K = 5


def _log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


@pytest.mark.parametrize(
    "make, kind, variable_shape, num_categories, action_dtype",
    [
        (lambda: tfd.OneHotCategorical(logits=LOGITS, dtype="float32"), "categorical", (3,), 5, "float32"),
        (lambda: tfd.Categorical(logits=LOGITS), "index", (3,), 5, "int32"),
        (lambda: tfd.Bernoulli(logits=LOGITS, dtype="float32"), "binary", (3, 5), 2, "float32"),
        (lambda: tfd.Independent(tfd.Bernoulli(logits=LOGITS), 2), "binary", (3, 5), 2, "int32"),
        (
            lambda: tfd.Independent(tfd.Independent(tfd.OneHotCategorical(logits=LOGITS), 1), 0),
            "categorical",
            (3,),
            5,
            "int32",
        ),
    ],
    ids=["one_hot_categorical", "categorical", "bernoulli", "independent_bernoulli", "nested_independent"],
)
def test_of_reads_the_kind_logits_shapes_and_action_dtype(make, kind, variable_shape, num_categories, action_dtype):
    distribution = make()
    policy = Policy.of(distribution)
    assert policy.distribution is distribution
    assert policy.kind == kind
    np.testing.assert_array_equal(to_numpy(policy.logits), LOGITS)
    assert policy.variable_shape == variable_shape
    assert policy.num_categories == num_categories
    assert policy.action_dtype == action_dtype


def test_of_a_distribution_of_no_kind_keeps_it_without_logits():
    policy = Policy.of(tfd.Normal(np.zeros((4, 2), "float32"), 1.0))
    assert (policy.kind, policy.logits, policy.variable_shape, policy.num_categories) == (None, None, None, None)
    with pytest.raises(
        TypeError,
        match=r"ARSM works with a policy distribution that is a tfd.OneHotCategorical.*"
        r"Pass `distribution=` to the training helper",
    ):
        policy.require("ARSM", kinds=("categorical",))


def test_of_a_policy_is_that_policy():
    policy = Policy.of(tfd.Categorical(logits=LOGITS))
    assert Policy.of(policy) is policy


def test_the_view_forwards_everything_else_to_the_distribution():
    distribution = tfd.OneHotCategorical(logits=LOGITS, dtype="float32")
    policy = Policy.of(distribution)
    seed = tf.constant([1, 2], tf.int32)
    np.testing.assert_array_equal(to_numpy(policy.sample(3, seed=seed)), to_numpy(distribution.sample(3, seed=seed)))
    actions = distribution.sample(2, seed=seed)
    np.testing.assert_array_equal(to_numpy(policy.log_prob(actions)), to_numpy(distribution.log_prob(actions)))
    np.testing.assert_array_equal(to_numpy(policy.entropy()), to_numpy(distribution.entropy()))
    assert policy.batch_shape == distribution.batch_shape and policy.dtype == distribution.dtype
    with pytest.raises(AttributeError):
        policy.no_such_attribute  # noqa: B018


def test_the_view_can_be_copied():
    policy = Policy.of(tfd.Categorical(logits=LOGITS))
    copied = copy.copy(policy)
    assert copied.distribution is policy.distribution and copied.kind == "index"


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_from_logits_builds_the_named_distribution_with_the_right_log_prob(name):
    policy = Policy.from_logits(tf.constant(LOGITS), name)
    assert policy.kind == DISTRIBUTIONS[name]
    rng = np.random.default_rng(1)
    if name == "bernoulli":
        bits = rng.integers(0, 2, size=(2, *LOGITS.shape)).astype("float32")  # [S, B, 3, 5]
        # Every entry an independent bit; one log-probability per input: summed over all but the batch axis.
        expected = np.where(bits == 1, _log_sigmoid(LOGITS), _log_sigmoid(-LOGITS)).sum(axis=(-2, -1))
        actions = bits
    else:
        indices = rng.integers(0, 5, size=(2, 4, 3))  # [S, B, 3]
        expected = np.take_along_axis(_log_softmax(LOGITS)[None], indices[..., None], -1)[..., 0]  # [S, B, 3]
        actions = np.eye(5, dtype="float32")[indices] if name == "one_hot_categorical" else indices.astype("int32")
    np.testing.assert_allclose(to_numpy(policy.log_prob(actions)), expected, rtol=1e-5, atol=1e-5)
    sample = to_numpy(policy.sample(2, seed=tf.constant([3, 4], tf.int32)))
    assert sample.shape == actions.shape
    assert policy.batch_shape[0] == 4  # the inputs' batch is the distribution's first batch axis


def test_static_sizes_count_variables_and_categories():
    assert Policy.from_logits(tf.constant(LOGITS), "one_hot_categorical").static_sizes("VIMCO") == (3, 5)
    assert Policy.from_logits(tf.constant(LOGITS), "bernoulli").static_sizes("ARM") == (15, 2)


def test_static_sizes_refuse_sizes_unknown_when_traced():
    @tf.function(input_signature=[tf.TensorSpec([None, None, 5], tf.float32)])
    def sizes(logits):
        return Policy.from_logits(logits, "categorical").static_sizes("the unordered-set estimator")

    with pytest.raises(ValueError, match=r"a shape known when traced but for the batch axis \(the unordered-set"):
        sizes(tf.constant(LOGITS))


def test_actions_are_written_in_the_policys_form():
    values = np.eye(5, dtype="float32")[[[0, 4, 2]]]  # one input, 3 one-hot variables
    index = Policy.from_logits(tf.constant(LOGITS[:1]), "categorical")
    np.testing.assert_array_equal(to_numpy(index.actions(values)), [[0, 4, 2]])
    np.testing.assert_array_equal(to_numpy(index.actions_from_indices(np.array([[0, 4, 2]]))), [[0, 4, 2]])
    one_hot = Policy.from_logits(tf.constant(LOGITS[:1]), "one_hot_categorical")
    np.testing.assert_array_equal(to_numpy(one_hot.actions(values)), values)
    np.testing.assert_array_equal(to_numpy(one_hot.actions_from_indices(np.array([[0, 4, 2]]))), values)
    bits = Policy.from_logits(tf.constant(LOGITS[:1]), "bernoulli")
    np.testing.assert_array_equal(to_numpy(bits.actions_from_indices(np.ones((1, 3, 5), "int32"))), np.ones((1, 3, 5)))
    assert to_numpy(bits.actions(np.ones((1, 3, 5), "int32"))).dtype == np.float32


def test_require_reads_the_logits_and_kind_and_refuses_other_kinds():
    logits = np.log(np.array([[0.2, 0.8]], "float32"))
    read, kind, dtype = Policy.of(tfd.OneHotCategorical(logits=logits, dtype="float32")).require("ARSM")
    np.testing.assert_allclose(to_numpy(read), logits)
    assert (kind, dtype) == ("categorical", "float32")
    bits = tfd.Independent(tfd.Bernoulli(logits=logits, dtype="float32"), 1)
    assert Policy.of(bits).require("DisARM", kinds=("binary",))[1] == "binary"
    with pytest.raises(TypeError, match=r"DisARM works with a policy distribution that is a tfd.Bernoulli"):
        Policy.of(tfd.Categorical(logits=logits)).require("DisARM", kinds=("binary",))
