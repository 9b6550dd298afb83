import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from detectors.correlation import CorrelationSketch

COLUMNS = ["a", "b", "c"]
PAIRS = [("a", "b"), ("a", "c"), ("b", "c")]
rows_strategy = hnp.arrays(
    np.float64,
    st.tuples(st.integers(0, 40), st.just(3)),
    elements=st.one_of(st.floats(-100, 100, allow_nan=False), st.just(np.nan)),
)


def make(rows: np.ndarray) -> CorrelationSketch:
    sketch = CorrelationSketch(COLUMNS, PAIRS)
    sketch.update(rows)
    return sketch


def merged(*sketches: CorrelationSketch) -> CorrelationSketch:
    result = sketches[0].copy()
    for sketch in sketches[1:]:
        result.merge(sketch)
    return result


def numpy_pearson(rows: np.ndarray) -> list[float]:
    result = []
    for left, right in PAIRS:
        x, y = rows[:, COLUMNS.index(left)], rows[:, COLUMNS.index(right)]
        both = np.isfinite(x) & np.isfinite(y)
        result.append(np.corrcoef(x[both], y[both])[0, 1])
    return result


def test_pearson_matches_numpy_with_missing_values():
    rng = np.random.default_rng(0)
    a = rng.normal(size=5000)
    rows = np.column_stack([a, 2 * a + rng.normal(size=5000), -a + rng.normal(0, 3, 5000)])
    rows[rng.random(rows.shape) < 0.1] = np.nan
    sketch = make(rows[:1234])
    sketch.merge(make(rows[1234:]))
    np.testing.assert_allclose(sketch.pearson(), numpy_pearson(rows), rtol=1e-9)
    assert sketch.pair_counts.tolist() == [
        int(np.sum(np.isfinite(rows[:, i]) & np.isfinite(rows[:, j]))) for i, j in ((0, 1), (0, 2), (1, 2))
    ]


def test_undefined_correlation_is_nan():
    sketch = make(np.array([[1.0, 5.0, np.nan], [2.0, 5.0, 1.0]]))
    assert np.isnan(sketch.pearson()).all()


def assert_same_state(a: CorrelationSketch, b: CorrelationSketch) -> None:
    np.testing.assert_array_equal(a.pair_counts, b.pair_counts)
    np.testing.assert_allclose(a.pearson(), b.pearson(), rtol=1e-9, atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(rows_strategy, rows_strategy)
def test_merge_of_halves_equals_whole(first, second):
    assert_same_state(make(np.concatenate([first, second])), merged(make(first), make(second)))


@settings(max_examples=50, deadline=None)
@given(rows_strategy, rows_strategy, rows_strategy)
def test_merge_is_associative_and_commutative(a, b, c):
    sa, sb, sc = make(a), make(b), make(c)
    left = merged(merged(sa, sb), sc)
    assert_same_state(left, merged(sa, merged(sb, sc)))
    assert_same_state(left, merged(sc, sb, sa))


@settings(max_examples=50, deadline=None)
@given(rows_strategy)
def test_bytes_round_trip(rows):
    sketch = make(rows)
    restored = CorrelationSketch.from_bytes(sketch.to_bytes())
    assert restored.pairs == sketch.pairs
    np.testing.assert_array_equal(restored.pearson(), sketch.pearson())
    np.testing.assert_array_equal(restored.pair_counts, sketch.pair_counts)


def test_rejects_wrong_shape_and_mismatched_merge():
    with pytest.raises(ValueError):
        make(np.zeros((4, 2)))
    with pytest.raises(ValueError):
        make(np.zeros((4, 3))).merge(CorrelationSketch(COLUMNS, PAIRS[:1]))


def test_constant_column_with_rounding_residue_is_nan():
    rng = np.random.default_rng(1)
    rows = np.column_stack([rng.normal(size=37), np.full(37, 25.26969951), rng.normal(size=37)])
    r = make(rows).pearson()
    assert np.isnan(r[0]) and np.isnan(r[2]) and np.isfinite(r[1])
