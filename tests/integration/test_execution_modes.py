"""Every property of every op and layer, asserted in every mode users run it in (see `matrix.py`).

Sample sizes and tolerances: each law check draws `matrix.NUM_ROWS` = 20,000
rows and asserts a chi-square (or, per binary entry, an exact binomial)
p-value above 1e-4: a correct sampler fails one such check in 10,000 seeds,
and the seeds are fixed. The checks of exactness (0/1, row sums, masks) are
exact equalities.
"""

import keras
import numpy as np
import pytest
import scipy.special
import scipy.stats
from matrix import BACKEND
from matrix import CASES
from matrix import GRADIENT_ROWS
from matrix import MASKED
from matrix import MODES
from matrix import NUM_ROWS
from matrix import PERMUTATION_FORMS
from matrix import exact_probabilities
from matrix import logits
from matrix import masked_outputs
from matrix import outcomes
from matrix import permutation_law_table
from matrix import reference_sinkhorn_row_errors
from matrix import run
from matrix import sinkhorn_row_errors

SEED = 3
LOG_FORMS = ("log_relaxed", "logit_binary")
SIGNIFICANCE = 1e-4


def _grid(select=lambda case, mode: True):
    params = []
    for mode in MODES:
        for case in CASES:
            if not select(case, mode):
                continue
            marks = [pytest.mark.slow] if mode.slow else []
            if BACKEND not in mode.backends:
                marks.append(pytest.mark.skip(reason=f"{mode.name} runs on {', '.join(mode.backends)}"))
            params.append(pytest.param(case, mode, marks=marks, id=f"{mode.name}-{case.name}"))
    return params


@pytest.mark.parametrize("case,mode", _grid())
def test_forward_values_are_exact(case, mode):
    for draw in run(case.name, mode.name, SEED).draws:
        _assert_form(case, draw, case.draw_form(mode))


def _assert_form(case, draw, form):
    if form in PERMUTATION_FORMS:
        assert draw.shape == (NUM_ROWS, *case.shape) and draw.dtype == np.float32
        if form == "permutation":
            assert np.isin(draw, (0.0, 1.0)).all(), "values off 0/1"
            np.testing.assert_array_equal(draw.sum(-1), 1.0)  # exact: integers in float32
            np.testing.assert_array_equal(draw.sum(-2), 1.0)
            return
        assert np.isfinite(draw).all() and (draw >= 0).all()
        np.testing.assert_allclose(draw.sum(-2), 1.0, rtol=1e-5)  # Sinkhorn's last normalisation: the columns
        # The rows approach 1 as closely as 20 rounds of a float64 NumPy Sinkhorn bring them on draws of the same law.
        ours, reference = sinkhorn_row_errors(draw), reference_sinkhorn_row_errors(case.temperature)
        assert scipy.stats.ks_2samp(ours, reference).pvalue > SIGNIFICANCE, (np.median(ours), np.median(reference))
        return
    if form == "indices":
        assert draw.shape == (NUM_ROWS, case.k) and draw.dtype == np.int32
        assert ((draw >= 0) & (draw < MASKED)).all(), "a masked or out-of-range index was drawn"
        assert (draw[:, 0] != draw[:, 1]).all(), "an index was drawn twice"
        return
    assert draw.shape == logits().shape and draw.dtype == np.float32
    if form in ("log_relaxed", "logit_binary"):
        assert np.isfinite(draw[:, :MASKED]).all() and (draw[:, MASKED] == -np.inf).all()
        if form == "log_relaxed":
            assert (draw <= 0).all()
            np.testing.assert_allclose(scipy.special.logsumexp(draw, axis=-1), 0.0, atol=1e-5)
        return
    if form in ("one_hot", "k_hot", "binary"):
        assert np.isin(draw, (0.0, 1.0)).all(), f"values off 0/1: {np.unique(draw[~np.isin(draw, (0.0, 1.0))])[:5]}"
    else:
        assert np.isfinite(draw).all() and (draw >= 0).all()
    if form in ("one_hot", "k_hot"):
        np.testing.assert_array_equal(draw.sum(-1), float(case.k))  # exact: integers in float32
    elif form in ("relaxed", "relaxed_k"):
        np.testing.assert_allclose(draw.sum(-1), case.k, rtol=1e-5)
    elif form == "relaxed_binary":
        assert (draw <= 1).all()
    elif form == "gate":  # the clip puts mass exactly on 0 and on 1
        assert (draw <= 1).all() and (draw[:, :MASKED] == 0).any() and (draw == 1).any()


@pytest.mark.parametrize("case,mode", _grid(lambda case, mode: case.form != "relaxed_k"))
def test_samples_follow_the_law(case, mode):
    draw = run(case.name, mode.name, SEED).draws[0]
    if case.form in PERMUTATION_FORMS:
        table = permutation_law_table(case.draw_form(mode), draw)
        assert scipy.stats.chi2_contingency(table).pvalue > SIGNIFICANCE, table
        return
    expected = exact_probabilities(case.form, case.k)
    seen = outcomes(case.form, draw)
    if case.form in ("binary", "relaxed_binary", "logit_binary", "gate"):
        ones = seen.sum(0)
        assert ones[MASKED] == 0
        for entry in range(MASKED):
            test = scipy.stats.binomtest(int(ones[entry]), NUM_ROWS, expected[entry])
            assert test.pvalue > SIGNIFICANCE, (entry, ones[entry] / NUM_ROWS, expected[entry])
        return
    keys = list(expected)
    counts = {key: 0 for key in keys}
    for outcome in seen.tolist() if isinstance(seen, np.ndarray) else seen:
        counts[outcome] += 1  # an outcome outside the law (a masked category) is a KeyError
    observed = np.array([counts[key] for key in keys])
    probabilities = np.array([expected[key] for key in keys])
    assert scipy.stats.chisquare(observed, probabilities * NUM_ROWS).pvalue > SIGNIFICANCE


@pytest.mark.parametrize("case,mode", _grid(lambda case, mode: case.form != "indices"))
def test_masked_category_is_exactly_zero(case, mode):
    result = run(case.name, mode.name, SEED)
    masked_value = -np.inf if case.form in LOG_FORMS else 0.0  # log(0)
    for draw in result.draws + (result.inference or []):
        np.testing.assert_array_equal(masked_outputs(case, draw), masked_value)


@pytest.mark.parametrize("case,mode", _grid(lambda case, mode: mode.has_gradient and case.differentiable))
def test_gradients_are_finite_and_zero_on_masked_categories(case, mode):
    gradient = run(case.name, mode.name, SEED).gradient
    assert gradient.shape == (GRADIENT_ROWS, MASKED + 1)
    assert np.isfinite(gradient).all()
    if case.form not in LOG_FORMS:  # d log_softmax_j / d logits_j = 1 - p_j, not 0
        np.testing.assert_array_equal(gradient[:, MASKED], 0.0)
    assert np.abs(gradient).sum() > 0, "no gradient reached the logits"


@pytest.mark.parametrize("case,mode", _grid(lambda case, mode: case.is_layer and mode.name != "fit"))
def test_inference_is_deterministic_and_noise_free(case, mode):
    first, second = run(case.name, mode.name, SEED).inference
    np.testing.assert_array_equal(first, second)
    expected = case.expected_inference(logits(GRADIENT_ROWS))
    form = case.inference_form or case.form
    if form in ("one_hot", "binary") + LOG_FORMS:
        np.testing.assert_array_equal(first[:, MASKED], expected[:, MASKED])
    if form in ("one_hot", "binary", "permutation"):
        np.testing.assert_array_equal(first, expected)
    elif form == "doubly_stochastic":  # float32 Sinkhorn against NumPy's float64, 20 rounds
        np.testing.assert_allclose(first, expected, rtol=1e-4, atol=1e-6)
    elif case.form in LOG_FORMS:
        np.testing.assert_allclose(first[:, :MASKED], expected[:, :MASKED], rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("case,mode", _grid())
def test_the_same_seed_gives_the_same_stream(case, mode):
    first, second = run(case.name, mode.name, SEED).draws
    assert not np.array_equal(first, second), "two consecutive draws are the same"
    replay = _mode(mode).replay(case, SEED)
    np.testing.assert_array_equal(replay[0], first)
    np.testing.assert_array_equal(replay[1], second)


def _mode(mode):
    keras.utils.set_random_seed(0)
    return mode
