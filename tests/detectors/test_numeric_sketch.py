import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from detectors.numeric import NumericSketch

EDGES = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
CONFIG = {"k": 200, "valid_range": (-3.0, 3.0), "sentinels": [-999.0, 999.0]}

# Values mix ordinary floats, edge hits, nulls, infinities and sentinels.
values_strategy = hnp.arrays(
    np.float64,
    st.integers(0, 60),
    elements=st.one_of(
        st.floats(-5, 5, allow_nan=False),
        st.sampled_from([-2.0, 0.0, 2.0, np.nan, np.inf, -np.inf, -999.0, 999.0]),
    ),
)


def make(values: np.ndarray) -> NumericSketch:
    sketch = NumericSketch(EDGES, **CONFIG)
    sketch.update(values)
    return sketch


def merged(*sketches: NumericSketch) -> NumericSketch:
    result = sketches[0].copy()
    for sketch in sketches[1:]:
        result.merge(sketch)
    return result


def assert_same_exact_state(a: NumericSketch, b: NumericSketch) -> None:
    np.testing.assert_array_equal(a.histogram, b.histogram)
    assert (a.count, a.null_count, a.inf_count, a.sentinel_count, a.out_of_range_count) == (
        b.count,
        b.null_count,
        b.inf_count,
        b.sentinel_count,
        b.out_of_range_count,
    )
    np.testing.assert_allclose([a.mean, a.variance, a.min, a.max], [b.mean, b.variance, b.min, b.max], rtol=1e-9, atol=1e-12)


def test_histogram_and_counters_match_numpy():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0, 1.5, 5000), EDGES, [np.nan] * 7, [np.inf, -np.inf] * 3, [-999.0] * 4])
    rng.shuffle(values)
    sketch = make(values)

    valid = values[np.isfinite(values) & ~np.isin(values, [-999.0, 999.0])]
    expected = np.concatenate([[np.sum(valid < EDGES[0])], np.histogram(valid, EDGES)[0], [np.sum(valid > EDGES[-1])]])
    np.testing.assert_array_equal(sketch.histogram, expected)
    assert sketch.histogram.dtype == np.int64
    assert sketch.count == values.size
    assert sketch.valid_count == valid.size
    assert (sketch.null_count, sketch.inf_count, sketch.sentinel_count) == (7, 6, 4)
    assert sketch.out_of_range_count == np.sum((valid < -3) | (valid > 3))
    assert sketch.mean == pytest.approx(valid.mean(), rel=1e-12)
    assert (sketch.min, sketch.max) == (valid.min(), valid.max())


def test_moments_match_numpy():
    values = np.random.default_rng(1).gamma(2.0, 3.0, 10_000) + 1e6
    sketch = make(values[:3000])
    sketch.merge(make(values[3000:]))
    assert sketch.mean == pytest.approx(values.mean(), rel=1e-12)
    assert sketch.variance == pytest.approx(values.var(ddof=1), rel=1e-9)
    assert (sketch.min, sketch.max) == (values.min(), values.max())


def test_quantiles_exact_below_k_items():
    values = np.random.default_rng(2).normal(size=150)
    sketch = make(values)
    ranks = np.linspace(0.01, 1.0, 37)
    np.testing.assert_array_equal(sketch.quantiles(ranks), np.quantile(values, ranks, method="inverted_cdf"))
    np.testing.assert_allclose(sketch.cdf([-1.0, 0.0, 1.0]), [np.mean(values <= p) for p in (-1.0, 0.0, 1.0)])


def test_quantile_rank_error_within_kll_bound():
    values = np.random.default_rng(3).lognormal(size=200_000)
    sketch = make(values)
    ranks = np.linspace(0.01, 0.99, 99)
    true_ranks = np.searchsorted(np.sort(values), sketch.quantiles(ranks), side="right") / values.size
    assert np.max(np.abs(true_ranks - ranks)) <= sketch.rank_error


def test_weighted_items_sum_to_valid_count():
    sketch = make(np.random.default_rng(4).normal(size=50_000))
    items, weights = sketch.weighted_items()
    assert weights.sum() == sketch.valid_count
    assert np.all(np.diff(items) >= 0)


@settings(max_examples=50, deadline=None)
@given(values_strategy, values_strategy)
def test_merge_of_halves_equals_whole(first, second):
    whole = make(np.concatenate([first, second]))
    halves = merged(make(first), make(second))
    assert_same_exact_state(whole, halves)
    # Below k items in total the KLL sketch is exact, so quantiles agree exactly.
    np.testing.assert_array_equal(whole.quantiles([0.1, 0.5, 0.9]), halves.quantiles([0.1, 0.5, 0.9]))


@settings(max_examples=50, deadline=None)
@given(values_strategy, values_strategy, values_strategy)
def test_merge_is_associative_and_commutative(a, b, c):
    sa, sb, sc = make(a), make(b), make(c)
    left = merged(merged(sa, sb), sc)
    right = merged(sa, merged(sb, sc))
    swapped = merged(sc, sb, sa)
    for other in (right, swapped):
        assert_same_exact_state(left, other)
        np.testing.assert_array_equal(left.quantiles([0.25, 0.5, 0.75]), other.quantiles([0.25, 0.5, 0.75]))


def test_merge_in_estimation_mode_within_rank_error():
    values = np.random.default_rng(5).normal(size=100_000)
    parts = np.array_split(values, 7)
    whole = make(values)
    combined = merged(*[make(part) for part in parts])
    assert_same_exact_state(whole, combined)
    ranks = np.linspace(0.01, 0.99, 99)
    true_ranks = np.searchsorted(np.sort(values), combined.quantiles(ranks), side="right") / values.size
    assert np.max(np.abs(true_ranks - ranks)) <= combined.rank_error


@settings(max_examples=50, deadline=None)
@given(values_strategy)
def test_bytes_round_trip(values):
    sketch = make(values)
    restored = NumericSketch.from_bytes(sketch.to_bytes())
    assert_same_exact_state(sketch, restored)
    np.testing.assert_array_equal(restored.edges, sketch.edges)
    np.testing.assert_array_equal(restored.quantiles([0.2, 0.8]), sketch.quantiles([0.2, 0.8]))
    assert restored.valid_range == sketch.valid_range
    assert restored.to_bytes() == sketch.to_bytes()
    # The restored sketch keeps its sentinels and range for further updates.
    restored.update(np.array([-999.0, 10.0]))
    assert (restored.sentinel_count, restored.out_of_range_count) == (sketch.sentinel_count + 1, sketch.out_of_range_count + 1)


def test_empty_sketch_queries_are_nan():
    sketch = NumericSketch.from_bytes(make(np.array([np.nan])).to_bytes())
    assert sketch.null_count == 1 and sketch.valid_count == 0
    assert np.isnan([sketch.mean, sketch.variance, sketch.min, sketch.max]).all()
    assert np.isnan(sketch.quantiles([0.5])).all()


def test_from_reference_uses_quantile_edges():
    reference = np.random.default_rng(6).normal(size=10_001)
    sketch = NumericSketch.from_reference(reference, n_bins=10)
    np.testing.assert_array_equal(sketch.edges, np.quantile(reference, np.linspace(0, 1, 11), method="inverted_cdf"))
    histogram = sketch.histogram
    assert histogram[0] == 0 and histogram[-1] == 0
    assert np.all(np.abs(histogram[1:-1] - 1000) <= 1)


def test_from_reference_handles_discrete_and_constant_data():
    discrete = NumericSketch.from_reference(np.array([0.0, 0.0, 0.0, 1.0, 1.0, 2.0] * 10), n_bins=10)
    np.testing.assert_array_equal(discrete.edges, [0.0, 1.0, 2.0])
    constant = NumericSketch.from_reference(np.full(20, 3.0), n_bins=10)
    assert constant.histogram.tolist() == [0, 20, 0]


def test_merge_rejects_different_configuration():
    with pytest.raises(ValueError):
        make(np.zeros(3)).merge(NumericSketch(EDGES + 1.0, **CONFIG))
    with pytest.raises(ValueError):
        make(np.zeros(3)).merge(NumericSketch(EDGES, k=100))


def test_rejects_bad_edges():
    for edges in ([1.0], [0.0, 0.0, 1.0], [0.0, np.inf]):
        with pytest.raises(ValueError):
            NumericSketch(edges)


def test_memory_is_bounded():
    sketch = make(np.zeros(0))
    rng = np.random.default_rng(7)
    sizes = []
    for _ in range(20):
        sketch.update(rng.normal(size=100_000))
        sizes.append(sketch.nbytes)
    assert sketch.valid_count == 2_000_000
    assert max(sizes) < 8_000
    assert sizes[-1] - sizes[1] < 1_000
