"""Multiple-testing corrections for the tests run in one evaluation window.

One evaluation of a model tests many (feature, statistic) pairs at once. At alpha = 0.01 and 200
tests, about two would look significant by chance alone in every window; correcting the p-values for
the size of the family keeps those chance findings from becoming alerts.

Both corrections return *adjusted* p-values: a test is significant at level ``alpha`` when its
adjusted p-value is ``<= alpha``.

- Benjamini–Hochberg controls the false discovery rate (the expected share of false alarms among the
  significant tests). It keeps its power as the number of features grows, which is why the alert
  policy uses it by default.
- Bonferroni controls the family-wise error rate (the chance of any false alarm). It is stricter and
  loses power quickly as the family grows.

References
----------
Benjamini, Y. and Hochberg, Y. (1995). Controlling the false discovery rate: a practical and powerful
approach to multiple testing. Journal of the Royal Statistical Society, Series B, 57(1), 289–300.

Dunn, O. J. (1961). Multiple comparisons among means. Journal of the American Statistical
Association, 56(293), 52–64.

"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["CORRECTIONS", "benjamini_hochberg", "bonferroni"]


def _p_values(p_values: ArrayLike) -> np.ndarray:
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p-values must be one-dimensional, got shape {p.shape}")
    if not np.all((p >= 0.0) & (p <= 1.0)):  # also rejects NaN
        raise ValueError("p-values must lie in [0, 1]")
    return p


def benjamini_hochberg(p_values: ArrayLike) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values, in the order given.

    The i-th smallest of m p-values is scaled by m / i, then a running minimum from the largest
    down makes the adjusted values monotone in the raw ones (the step-up rule): every test whose
    adjusted p-value is <= alpha is rejected, exactly the set the original procedure rejects.

    Examples
    --------
    >>> benjamini_hochberg([0.01, 0.04, 0.03, 0.5]).round(4).tolist()
    [0.04, 0.0533, 0.0533, 0.5]

    """
    p = _p_values(p_values)
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (m / np.arange(1, m + 1))
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def bonferroni(p_values: ArrayLike) -> np.ndarray:
    """Bonferroni adjusted p-values: each p-value times the number of tests, capped at 1.

    Examples
    --------
    >>> bonferroni([0.01, 0.04, 0.03, 0.5]).tolist()
    [0.04, 0.16, 0.12, 1.0]

    """
    p = _p_values(p_values)
    return np.minimum(p * p.size, 1.0)


CORRECTIONS: dict[str, Callable[[ArrayLike], np.ndarray]] = {
    "bh": benjamini_hochberg,
    "bonferroni": bonferroni,
}
"""Corrections by the name used in the policy configuration."""
