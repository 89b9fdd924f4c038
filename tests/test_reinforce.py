"""keras_gumbel.reinforce: the compatibility module still gives the REINFORCE names, as the same objects."""

import importlib

import keras_gumbel
from keras_gumbel import estimators
from keras_gumbel import reinforce


def test_every_name_is_the_estimators_object_itself():
    assert reinforce.__all__ == [
        "score_function_terms",
        "score_function_loss",
        "leave_one_out_baseline",
        "MovingAverageBaseline",
        "make_train_step",
        "ReinforceModel",
    ]
    for name in reinforce.__all__:
        assert getattr(reinforce, name) is getattr(estimators, name), name
        assert getattr(keras_gumbel, name) is getattr(estimators, name), name


def test_star_import_gives_exactly_all():
    namespace = {}
    exec("from keras_gumbel.reinforce import *", namespace)
    assert sorted(name for name in namespace if not name.startswith("__")) == sorted(reinforce.__all__)


def test_importing_it_anew_registers_nothing_twice():
    before = estimators.names()
    importlib.reload(reinforce)
    assert estimators.names() == before
    assert reinforce.ReinforceModel is estimators.ReinforceModel
