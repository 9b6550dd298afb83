import math

import numpy as np
import pytest

from detectors.categorical import CategoricalSketch
from detectors.numeric import NumericSketch
from detectors.quality import (
    cardinality_ratio,
    class_proportions,
    confident_rate,
    feature_presence,
    inf_rate,
    null_rate,
    out_of_range_rate,
    sentinel_rate,
    unseen_rate,
)


def test_numeric_rates_partition_the_window():
    rng = np.random.default_rng(0)
    values = rng.normal(50, 20, 10_000)
    values[rng.random(values.size) < 0.03] = np.nan
    values[rng.random(values.size) < 0.01] = np.inf
    values[rng.random(values.size) < 0.02] = -999.0
    sketch = NumericSketch([0.0, 50.0, 100.0], valid_range=(0.0, 100.0), sentinels=[-999.0])
    sketch.update(values)

    finite = values[np.isfinite(values) & (values != -999.0)]
    assert null_rate(sketch) == np.mean(np.isnan(values))
    assert inf_rate(sketch) == np.mean(np.isinf(values))
    assert sentinel_rate(sketch) == np.mean(values == -999.0)
    assert out_of_range_rate(sketch) == np.sum((finite < 0) | (finite > 100)) / values.size
    valid_rate = sketch.valid_count / sketch.count
    assert null_rate(sketch) + inf_rate(sketch) + sentinel_rate(sketch) + valid_rate == pytest.approx(1.0)


def test_categorical_rates():
    reference = CategoricalSketch.from_reference(np.array(["a", "b", "c"] * 10))
    window = CategoricalSketch(reference.categories)
    window.update(np.array(["a", None, "new", "new", "b", None, "c", "other"], dtype=object))
    assert null_rate(window) == 2 / 8
    assert unseen_rate(window) == 3 / 8
    assert cardinality_ratio(window, reference) == pytest.approx(5 / 3, rel=0.01)


def test_cardinality_explosion_is_visible():
    reference = CategoricalSketch.from_reference(np.array([f"c{i}" for i in range(20)] * 50))
    window = CategoricalSketch(reference.categories)
    window.update(np.array([f"id-{i}" for i in range(5_000)]))
    assert cardinality_ratio(window, reference) == pytest.approx(250, rel=0.05)


def test_confident_rate_matches_exact_share():
    scores = np.random.default_rng(1).beta(5, 2, 100_000)
    sketch = NumericSketch([0.0, 0.5, 1.0], valid_range=(0.0, 1.0))
    sketch.update(scores)
    assert abs(confident_rate(sketch, 0.9) - np.mean(scores > 0.9)) <= sketch.rank_error
    small = NumericSketch([0.0, 1.0])
    small.update(scores[:100])
    assert confident_rate(small, 0.9) == pytest.approx(np.mean(scores[:100] > 0.9), abs=1e-12)


def test_class_proportions_sum_to_one():
    sketch = CategoricalSketch(["0", "1"])
    sketch.update(np.array(["0"] * 70 + ["1"] * 25 + ["2"] * 5 + [None] * 10, dtype=object))
    proportions = class_proportions(sketch)
    assert proportions == {"0": 0.7, "1": 0.25, None: 0.05}


def test_empty_window_rates_are_nan():
    numeric = NumericSketch([0.0, 1.0])
    categorical = CategoricalSketch(["a"])
    for value in (null_rate(numeric), out_of_range_rate(numeric), unseen_rate(categorical), confident_rate(numeric, 0.5)):
        assert math.isnan(value)
    assert all(math.isnan(v) for v in class_proportions(categorical).values())


def test_feature_presence():
    presence = feature_presence({"a", "b", "c"}, ["c", "d", "a", "e"])
    assert presence.missing == ["b"] and presence.unknown == ["d", "e"]
    assert feature_presence(["a"], ["a"]) == ([], [])
