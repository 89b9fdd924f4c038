"""Deprecated spellings: renamed keywords and reordered positional arguments keep working for a version, warning."""

import warnings

import pytest

from keras_gumbel import _deprecation


@_deprecation.renamed_arguments("0.9", tau="temperature", n="num_samples")
def sample(logits, temperature=1.0, num_samples=1):
    """Returns what it was given."""
    return logits, temperature, num_samples


@_deprecation.reordered_arguments("0.9", old_order=("log_weights", "log_prob"))
def bound_loss(log_prob, log_weights):
    return log_prob, log_weights


def test_an_old_keyword_is_passed_on_under_its_new_name_with_a_warning_that_names_both():
    with pytest.warns(FutureWarning, match=r"`sample\(tau=\.\.\.\)` is deprecated since keras-gumbel 0\.9") as record:
        assert sample([1.0], tau=0.5) == ([1.0], 0.5, 1)
    (warning,) = record
    assert "use `temperature=`" in str(warning.message)
    assert "removed in the next minor version" in str(warning.message)


def test_each_old_keyword_warns_once_and_all_are_renamed():
    with pytest.warns(FutureWarning) as record:
        assert sample("x", tau=2.0, n=3) == ("x", 2.0, 3)
    messages = sorted(str(warning.message) for warning in record)
    assert len(messages) == 2
    assert "`sample(n=...)`" in messages[0] and "use `num_samples=`" in messages[0]
    assert "`sample(tau=...)`" in messages[1] and "use `temperature=`" in messages[1]


def test_the_new_keywords_and_positions_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sample("x", temperature=2.0, num_samples=3) == ("x", 2.0, 3)
        assert sample("x", 2.0, 3) == ("x", 2.0, 3)


def test_old_and_new_name_together_is_a_type_error_naming_both():
    with pytest.raises(TypeError, match=r"sample\(\) got both `tau` \(its old name\) and `temperature`: pass `temp"):
        sample("x", tau=0.5, temperature=0.5)


def test_the_warning_points_at_the_callers_line():
    with pytest.warns(FutureWarning) as record:
        sample("x", tau=0.5)
    assert record[0].filename == __file__
    with pytest.warns(FutureWarning) as record:
        bound_loss(1, 2)
    assert record[0].filename == __file__


def test_the_wrapper_keeps_the_functions_name_and_docstring():
    assert sample.__name__ == "sample"
    assert sample.__doc__ == "Returns what it was given."
    assert bound_loss.__name__ == "bound_loss"


def test_a_call_passing_every_argument_by_position_is_read_in_the_old_order_with_a_warning():
    with pytest.warns(FutureWarning, match=r"bound_loss's arguments are now in the order of the other losses") as rec:
        # Old order: (log_weights, log_prob).
        assert bound_loss("weights", "prob") == ("prob", "weights")
    message = str(rec[0].message)
    assert "(log_weights, log_prob), since keras-gumbel 0.9" in message
    assert "bound_loss(log_weights=..., log_prob=...)" in message


@pytest.mark.parametrize(
    "args, kwargs",
    [((), {"log_prob": "prob", "log_weights": "weights"}), (("prob",), {"log_weights": "weights"})],
    ids=["keywords", "position_and_keyword"],
)
def test_keywords_follow_the_new_signature_without_a_warning(args, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bound_loss(*args, **kwargs) == ("prob", "weights")


def test_a_call_with_fewer_positions_than_the_old_order_is_read_in_the_new_order():
    @_deprecation.reordered_arguments("0.9", old_order=("b", "a"))
    def loss(a, b=None, c=None):
        return a, b, c

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert loss(1) == (1, None, None)
        assert loss(1, 2, 3) == (1, 2, 3)  # three positions: not the old two-argument form
