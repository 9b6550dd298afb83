"""Data-quality and prediction-health rates read off window sketches.

Every ``*_rate`` function's denominator is the sketch's ``count`` (all values seen, nulls included),
so for a numeric feature null, inf, sentinel and valid rates add up to one and rates
of different kinds can be compared directly. An empty window gives NaN.

Prediction checks reuse the same sketches: the predicted class is a
``CategoricalSketch`` (``class_proportions``, and its counts go to the binned drift
statistics), the score is a ``NumericSketch`` (its distribution goes to the drift
statistics, ``confident_rate`` reads its tail), and outputs outside configured bounds
are the score sketch's ``out_of_range_rate`` with ``valid_range`` set to those bounds.

>>> import numpy as np
>>> from detectors.numeric import NumericSketch
>>> sketch = NumericSketch([0.0, 1.0], valid_range=(0.0, 1.0), sentinels=[-1.0])
>>> sketch.update(np.array([0.2, 0.95, np.nan, -1.0, 1.7, np.inf, 0.99, 0.5]))
>>> null_rate(sketch), inf_rate(sketch), sentinel_rate(sketch), out_of_range_rate(sketch)
(0.125, 0.125, 0.125, 0.125)
>>> confident_rate(sketch, 0.9)
0.6
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from detectors.categorical import CategoricalSketch
from detectors.numeric import NumericSketch


def _rate(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def null_rate(sketch: NumericSketch | CategoricalSketch) -> float:
    """Share of values that were missing (None / NaN)."""
    return _rate(sketch.null_count, sketch.count)


def inf_rate(sketch: NumericSketch) -> float:
    return _rate(sketch.inf_count, sketch.count)


def sentinel_rate(sketch: NumericSketch) -> float:
    """Share of values equal to a configured missing-value code such as -999."""
    return _rate(sketch.sentinel_count, sketch.count)


def out_of_range_rate(sketch: NumericSketch) -> float:
    """Share of values that were valid numbers outside the configured ``valid_range``."""
    return _rate(sketch.out_of_range_count, sketch.count)


def unseen_rate(sketch: CategoricalSketch) -> float:
    """Share of values that are not reference categories (see ``heavy_hitters`` for which)."""
    return _rate(sketch.unseen_count, sketch.count)


def cardinality_ratio(window: CategoricalSketch, reference: CategoricalSketch) -> float:
    """Estimated distinct values in the window over those in the reference.

    A ratio well above one (e.g. > 2) flags a cardinality explosion such as IDs or
    free text leaking into a categorical feature. Both are HLL estimates, each within
    about 1.6% (lg_k=12) of the truth.

    >>> import numpy as np
    >>> reference = CategoricalSketch.from_reference(np.array(["a", "b", "a"]))
    >>> window = CategoricalSketch(reference.categories)
    >>> window.update(np.array([f"user-{i}" for i in range(100)]))
    >>> round(cardinality_ratio(window, reference))
    50
    """
    return window.cardinality / reference.cardinality if reference.cardinality else float("nan")


def confident_rate(scores: NumericSketch, threshold: float) -> float:
    """Share of valid scores strictly above ``threshold``.

    Feed the sketch the model's confidence (e.g. the top class probability). Read
    from the quantile sketch: within ``scores.rank_error`` of the exact share
    (exact while the sketch holds fewer than k values).
    """
    if scores.valid_count == 0:
        return float("nan")
    return float(1.0 - scores.cdf([threshold])[0])


def class_proportions(predictions: CategoricalSketch) -> dict[str, float]:
    """Share of each predicted class among non-null predictions; ``None`` keys the unseen bucket.

    >>> import numpy as np
    >>> sketch = CategoricalSketch(["cat", "dog"])
    >>> sketch.update(np.array(["cat", "cat", "dog", "fox"]))
    >>> class_proportions(sketch)
    {'cat': 0.5, 'dog': 0.25, None: 0.25}
    """
    counts = predictions.counts
    total = int(counts.sum())
    keys: list[str | None] = [*predictions.categories, None]
    return {key: _rate(int(count), total) for key, count in zip(keys, counts, strict=True)}


class FeaturePresence(NamedTuple):
    missing: list[str]
    """Expected features absent from the window."""
    unknown: list[str]
    """Features in the window that the monitor config does not know."""


def feature_presence(expected: Iterable[str], seen: Iterable[str]) -> FeaturePresence:
    """Compare the configured feature set with the features seen in a window.

    >>> feature_presence(["age", "income", "zip"], ["age", "zip", "zipcode"])
    FeaturePresence(missing=['income'], unknown=['zipcode'])
    """
    expected_set, seen_set = set(expected), set(seen)
    return FeaturePresence(sorted(expected_set - seen_set), sorted(seen_set - expected_set))
