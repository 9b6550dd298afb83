"""Benjamini–Hochberg and Bonferroni against scipy and against their textbook definitions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.multiple_testing import benjamini_hochberg, bonferroni


def random_p_values(seed: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # A mix of null (uniform) and signal (tiny) p-values, with ties from rounding.
    p = np.concatenate([rng.uniform(size=size), rng.uniform(size=size) ** 8])
    p[: size // 4] = np.round(p[: size // 4], 2)
    return rng.permutation(p)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("size", [1, 2, 7, 50, 500])
def test_benjamini_hochberg_matches_scipy(seed: int, size: int) -> None:
    p = random_p_values(seed, size)
    np.testing.assert_allclose(benjamini_hochberg(p), scipy.stats.false_discovery_control(p), rtol=0, atol=1e-12)


p_value_lists = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=60)
alphas = st.floats(min_value=1e-4, max_value=0.2)


@settings(max_examples=200, deadline=None)
@given(p_value_lists, alphas)
def test_benjamini_hochberg_rejects_what_the_step_up_rule_rejects(p_values: list[float], alpha: float) -> None:
    # Benjamini & Hochberg (1995): reject the k smallest p-values, k the largest i with p_(i) <= i alpha / m.
    p = np.array(p_values)
    m = p.size
    ranked = np.sort(p)
    passing = np.flatnonzero(ranked <= np.arange(1, m + 1) * alpha / m)
    expected = p <= ranked[passing[-1]] if passing.size else np.zeros(m, dtype=bool)
    adjusted = benjamini_hochberg(p)
    # Rank-scaling by m / i rounds; only p-values within an ulp of the cut may disagree.
    on_edge = np.isclose(adjusted, alpha, rtol=1e-12, atol=0)
    np.testing.assert_array_equal((adjusted <= alpha)[~on_edge], expected[~on_edge])


@settings(max_examples=200, deadline=None)
@given(p_value_lists, alphas)
def test_bonferroni_rejects_p_values_below_alpha_over_m(p_values: list[float], alpha: float) -> None:
    p = np.array(p_values)
    adjusted = bonferroni(p)
    on_edge = np.isclose(p * p.size, alpha, rtol=1e-12, atol=0)
    np.testing.assert_array_equal((adjusted <= alpha)[~on_edge], (p <= alpha / p.size)[~on_edge])
    assert np.all((adjusted >= p) & (adjusted <= 1.0))


@pytest.mark.parametrize("seed", range(20))
def test_bonferroni_is_never_less_conservative_than_benjamini_hochberg(seed: int) -> None:
    p = random_p_values(seed, 100)
    assert np.all(bonferroni(p) >= benjamini_hochberg(p) - 1e-15)


def test_a_single_test_is_left_as_is() -> None:
    assert benjamini_hochberg([0.03]).tolist() == bonferroni([0.03]).tolist() == [0.03]


@pytest.mark.parametrize("correction", [benjamini_hochberg, bonferroni])
@pytest.mark.parametrize("bad", [[0.1, float("nan")], [-0.1], [1.5], [[0.1, 0.2]]])
def test_invalid_p_values_are_rejected(correction, bad) -> None:
    with pytest.raises(ValueError):
        correction(bad)


@pytest.mark.parametrize("correction", [benjamini_hochberg, bonferroni])
def test_no_tests_give_no_adjusted_p_values(correction) -> None:
    assert correction([]).shape == (0,)
