from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.categorical import CategoricalSketch

CATEGORIES = ["a", "b", "c"]
values_strategy = st.lists(st.one_of(st.sampled_from(["a", "b", "c", "x", "y", "z", "w"]), st.none()), max_size=60)


def make(values) -> CategoricalSketch:
    sketch = CategoricalSketch(CATEGORIES, heavy_hitters_lg_size=4)
    sketch.update(np.array(values, dtype=object))
    return sketch


def merged(*sketches: CategoricalSketch) -> CategoricalSketch:
    result = sketches[0].copy()
    for sketch in sketches[1:]:
        result.merge(sketch)
    return result


def assert_same_counts(a: CategoricalSketch, b: CategoricalSketch) -> None:
    np.testing.assert_array_equal(a.counts, b.counts)
    assert a.null_count == b.null_count
    assert sorted(a.heavy_hitters()) == sorted(b.heavy_hitters())


def test_counts_nulls_unseen_and_heavy_hitters():
    values = ["a", "b", None, "zz", "a", float("nan"), True, "zz", "c", "zz", 7]
    sketch = make(values)
    assert sketch.counts.tolist() == [2, 1, 1, 5]
    assert sketch.null_count == 2
    assert sketch.count == len(values)
    assert sketch.unseen_count == 5
    assert dict(sketch.heavy_hitters()) == {"zz": 3, "True": 1, "7": 1}
    assert sketch.heavy_hitters(min_count=1) == [("zz", 3)]


def test_string_arrays_and_category_order():
    sketch = CategoricalSketch(["z", "m", "a"])
    sketch.update(np.array(["a", "a", "m", "q"]))
    assert sketch.counts.tolist() == [0, 1, 2, 1]


def test_cardinality_within_hll_error():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 20_000, 100_000).astype(str)
    sketch = CategoricalSketch(["1", "2"])
    sketch.update(values)
    distinct = np.unique(values).size
    lower, upper = sketch.cardinality_bounds(3)
    assert lower <= distinct <= upper
    assert abs(sketch.cardinality - distinct) / distinct < 0.05


def test_from_reference_caps_categories_by_frequency():
    values = np.array(["a"] * 5 + ["b"] * 3 + ["c"] * 3 + ["d"] + [None], dtype=object)
    sketch = CategoricalSketch.from_reference(values, max_categories=3)
    assert sketch.categories == ["a", "b", "c"]
    assert sketch.counts.tolist() == [5, 3, 3, 1]
    assert sketch.null_count == 1


@settings(max_examples=50, deadline=None)
@given(values_strategy, values_strategy)
def test_merge_of_halves_equals_whole(first, second):
    whole, halves = make(first + second), merged(make(first), make(second))
    assert_same_counts(whole, halves)
    # Few distinct values keep the HLL in its exact coupon-list mode.
    assert halves.cardinality == pytest.approx(whole.cardinality, rel=1e-9)


@settings(max_examples=50, deadline=None)
@given(values_strategy, values_strategy, values_strategy)
def test_merge_is_associative_and_commutative(a, b, c):
    sa, sb, sc = make(a), make(b), make(c)
    left = merged(merged(sa, sb), sc)
    for other in (merged(sa, merged(sb, sc)), merged(sc, sb, sa)):
        assert_same_counts(left, other)
        assert other.cardinality == pytest.approx(left.cardinality, rel=1e-9)


def test_merge_of_high_cardinality_halves_within_hll_error():
    values = np.random.default_rng(1).integers(0, 50_000, 200_000).astype(str)
    whole = CategoricalSketch(["1"])
    whole.update(values)
    parts = []
    for chunk in np.array_split(values, 4):
        part = CategoricalSketch(["1"])
        part.update(chunk)
        parts.append(part)
    combined = merged(*parts)
    np.testing.assert_array_equal(whole.counts, combined.counts)
    distinct = np.unique(values).size
    # HIP (single sketch) and composite (union) estimators differ, both within the HLL bound.
    for sketch in (whole, combined):
        lower, upper = sketch.cardinality_bounds(3)
        assert lower <= distinct <= upper


@settings(max_examples=50, deadline=None)
@given(values_strategy)
def test_bytes_round_trip(values):
    sketch = make(values)
    restored = CategoricalSketch.from_bytes(sketch.to_bytes())
    assert_same_counts(sketch, restored)
    assert restored.categories == sketch.categories
    assert restored.cardinality == sketch.cardinality


def test_heavy_hitters_memory_is_capped():
    sketch = CategoricalSketch(["a"], heavy_hitters_lg_size=6)
    rng = np.random.default_rng(2)
    hot = np.array([f"hot{i}" for i in range(5)])
    for _ in range(10):
        cold = rng.integers(0, 1_000_000, 20_000).astype(str)
        sketch.update(np.concatenate([cold, np.repeat(hot, 2_000)]))
    reported = dict(sketch.heavy_hitters())
    assert set(hot) <= set(reported)
    assert len(reported) <= 2**6
    assert sketch.nbytes < 16_000


def test_merge_rejects_different_categories():
    with pytest.raises(ValueError):
        make(["a"]).merge(CategoricalSketch(["a", "b"]))


def test_counts_match_counter_on_random_data():
    rng = np.random.default_rng(3)
    values = rng.choice(["a", "b", "c", "d", "e"], 10_000).astype(object)
    values[rng.random(values.size) < 0.05] = None
    sketch = make(values)
    counter = Counter(values.tolist())
    assert sketch.counts.tolist() == [counter["a"], counter["b"], counter["c"], counter["d"] + counter["e"]]
    assert sketch.null_count == counter[None]


mixed_values = st.lists(
    st.one_of(
        st.sampled_from(["a", "b", "1", "1.0", "True", "x"]),
        st.sampled_from([1, 1.0, True, 0, 0.0, False, 2.5]),
        st.none(),
        st.just(float("nan")),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(mixed_values)
def test_every_value_counts_as_its_string_even_where_python_keys_coincide(values):
    # 1 == 1.0 == True hash alike, yet they are the categories "1", "1.0" and "True".
    sketch = CategoricalSketch(["a", "1", "True"], heavy_hitters_lg_size=4)
    sketch.update(np.array(values, dtype=object))
    strings = Counter(str(value) for value in values if value is not None and value == value)
    assert sketch.counts.tolist() == [strings["a"], strings["1"], strings["True"], sum(strings.values()) - strings["a"] - strings["1"] - strings["True"]]
    assert sketch.null_count == len(values) - sum(strings.values())
    assert dict(sketch.heavy_hitters()) == {name: count for name, count in strings.items() if name not in ("a", "1", "True")}


def test_state_does_not_depend_on_the_order_of_a_batch():
    values = [f"v{i % 97}" for i in range(2_000)]
    forward, backward = CategoricalSketch(["v1"], heavy_hitters_lg_size=4), CategoricalSketch(["v1"], heavy_hitters_lg_size=4)
    forward.update(np.array(values, dtype=object))
    backward.update(np.array(values[::-1], dtype=object))
    assert forward.to_bytes() == backward.to_bytes()
