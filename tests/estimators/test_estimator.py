"""The Estimator interface: the default `estimate` (draw, evaluate, score, `loss`), its defaults, config and repr.

Runs on every backend: the distribution here is a small stand-in with `sample(n, seed=)` and the training
helpers' `evaluate` / `log_prob` are plain functions.
"""

import keras
import numpy as np
import pytest
from helpers import gradient
from helpers import to_numpy
from keras import ops

from keras_gumbel import estimators
from keras_gumbel.estimators import Estimator


class Shifted:
    """A stand-in distribution: `sample(n)` is `n` copies of `centre` plus the draw number, remembering its calls."""

    def __init__(self, centre):
        self.centre = centre
        self.calls = []

    def sample(self, num_samples, seed=None):
        self.calls.append((num_samples, seed))
        draws = ops.reshape(ops.arange(num_samples, dtype="float32"), (num_samples,) + (1,) * len(self.centre.shape))
        # `+`, not ops.add: Keras 3.15's TensorFlow ops.add reads [2, 1, 1] as a bias of [1, 1, 2] (no broadcast).
        return ops.expand_dims(self.centre, 0) + draws  # [S, B, ...], depends on centre


class Recorder(Estimator):
    """Records what the default `estimate` hands to `loss`; its loss is `sum(log_prob * rewards) + sum(actions)`."""

    metric_names = ("spread",)

    def loss(self, distribution, actions, log_prob, rewards, inputs, training=None):
        self.received = (distribution, actions, log_prob, rewards, inputs, training)
        loss = ops.add(ops.sum(ops.multiply(log_prob, rewards)), ops.sum(actions))
        return loss, {"spread": ops.std(rewards)}


def _log_prob(actions):
    return ops.sum(ops.multiply(actions, 0.5), axis=-1)  # [S, B]


def _evaluate(actions):
    return ops.sum(ops.square(actions), axis=-1)  # [S, B]


def test_the_default_estimate_draws_num_samples_actions_and_hands_them_to_loss():
    centre = ops.convert_to_tensor(np.array([[1.0, 2.0], [3.0, 4.0]], "float32"))  # B = 2, 2 components
    distribution, estimator = Shifted(centre), Recorder()
    evaluated = []

    def evaluate(actions):
        evaluated.append(actions)
        return _evaluate(actions)

    loss, metrics, rewards = estimator.estimate(distribution, evaluate, _log_prob, 3, "the-seed", "inputs", True)

    assert distribution.calls == [(3, "the-seed")]  # one draw of num_samples, with the step's seed
    assert len(evaluated) == 1  # one reward_fn call for all samples
    received_distribution, actions, log_prob, received_rewards, inputs, training = estimator.received
    assert received_distribution is distribution and inputs == "inputs" and training is True
    expected_actions = to_numpy(centre)[None] + np.arange(3, dtype="float32")[:, None, None]
    np.testing.assert_allclose(to_numpy(actions), expected_actions)
    np.testing.assert_allclose(to_numpy(log_prob), expected_actions.sum(-1) * 0.5)
    np.testing.assert_allclose(to_numpy(rewards), (expected_actions**2).sum(-1))
    np.testing.assert_allclose(to_numpy(received_rewards), to_numpy(rewards))
    assert to_numpy(rewards).shape == (3, 2)
    expected_loss = (expected_actions.sum(-1) * 0.5 * (expected_actions**2).sum(-1)).sum() + expected_actions.sum()
    np.testing.assert_allclose(float(to_numpy(loss)), expected_loss)
    np.testing.assert_allclose(float(to_numpy(metrics["spread"])), np.std((expected_actions**2).sum(-1)), rtol=1e-6)


def test_the_default_estimate_samples_without_gradient_and_scores_with_it():
    # The loss's gradient reaches the parameters through log_prob only: the sampled actions are constants
    # (the score function's rule), even where the sampler is differentiable.
    def loss_of(centre):
        def log_prob(actions):
            return ops.sum(ops.multiply(actions, centre), axis=-1)  # differentiable in the parameters

        def evaluate(actions):
            return ops.ones(ops.shape(actions)[:2])

        loss, _, _ = Recorder().estimate(Shifted(centre), evaluate, log_prob, 2, None, None)
        return loss  # sum_s sum_k a_sk c_k + sum(a), a_sk = c_k + s

    centre = np.array([[1.0, -2.0]], "float32")
    # With the actions held constant: d/dc_k = sum_s a_sk = 2 c_k + 1. (Through the actions it would be 4 c_k + 3.)
    np.testing.assert_allclose(gradient(loss_of, centre), 2 * centre + 1)


def test_loss_must_be_implemented_unless_estimate_is_overridden():
    with pytest.raises(NotImplementedError, match=r"Bare must implement `loss` \(or override `estimate`\)"):
        type("Bare", (Estimator,), {})().estimate(Shifted(ops.zeros((1, 2))), _evaluate, _log_prob, 1, None, None)


def test_the_defaults_of_the_interface():
    estimator = Estimator()
    assert estimator.metric_names == ()
    assert estimator.variables == ("binary", "categorical")
    assert estimator.objective == "expected_reward"
    assert estimator.layers == []
    assert estimator.check_num_samples(1) is None
    assert estimator.build((4, 3)) is None  # no weights by default
    assert estimator.get_config() == {}


class Scaled(Estimator):
    def __init__(self, scale=1.0, name="scaled", baseline=None):
        self.scale, self.name, self.baseline = scale, name, baseline

    def get_config(self):
        config = {"scale": self.scale, "name": self.name}
        if self.baseline is not None:
            config["baseline"] = keras.saving.serialize_keras_object(self.baseline)
        return config


def test_from_config_makes_the_estimator_its_config_describes():
    restored = Scaled.from_config(Scaled(2.5, "mine").get_config())
    assert isinstance(restored, Scaled)
    assert (restored.scale, restored.name) == (2.5, "mine")
    assert isinstance(Estimator.from_config({}), Estimator)


def test_repr_lists_the_config_with_nested_objects_by_class_name():
    assert repr(Scaled(2.5, "mine")) == "Scaled(scale=2.5, name='mine')"
    assert repr(Estimator()) == "Estimator()"
    with_baseline = Scaled(baseline=estimators.MovingAverageBaseline(decay=0.5))
    assert repr(with_baseline) == "Scaled(scale=1.0, name='scaled', baseline=MovingAverageBaseline(...))"


def test_every_registered_estimator_repr_names_its_class_and_arguments():
    for name in ("gumbel_softmax", "reinforce_leave_one_out", "vimco"):
        estimator = estimators.get(name)
        text = repr(estimator)
        assert text.startswith(f"{type(estimator).__name__}(")
        for key in estimator.get_config():
            assert f"{key}=" in text
