import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.columns import Columns
from detectors.profile import NUMERIC_SHARE, PROFILE_FORMAT_VERSION, ReferenceBuilder, ReferenceProfile, WindowProfile


def event(features, prediction=None, **fields):
    return {"timestamp": 0.0, "model_version": "1", "features": features, "prediction": prediction, **fields}


def test_columns_convert_types_and_separate_null_absent_and_wrong_types() -> None:
    events = [
        event({"x": 1, "flag": True, "city": "Oslo"}, {"probabilities": {"a": 0.2, "b": 0.8}}, latency_ms=3),
        event({"x": None, "flag": False, "city": 7}, 0.25, status="error"),
        event({"x": "12", "extra": 1, "more": 2}, {"class": "a", "score": 0.4}),
        event({"x": 2.5, "flag": None, "city": None}, True),
    ]
    columns = Columns.from_events(events, numeric=["x", "flag"], categorical=["city"])
    np.testing.assert_array_equal(columns.numeric["x"], [1.0, np.nan, np.nan, 2.5])
    np.testing.assert_array_equal(columns.numeric["flag"], [1.0, 0.0, np.nan, np.nan])
    assert columns.type_error["x"].tolist() == [False, False, True, False]
    assert columns.absent["flag"].tolist() == [False, False, True, False]
    assert columns.absent["city"].tolist() == [False, False, True, False]
    assert columns.categorical["city"].tolist() == ["Oslo", 7, None, None]
    assert columns.unknown_features.tolist() == [None, None, ("extra", "more"), None]
    np.testing.assert_array_equal(columns.score, [0.8, 0.25, 0.4, np.nan])
    assert columns.predicted_class.tolist() == ["b", None, "a", True]
    assert columns.error.tolist() == [False, True, False, False]
    np.testing.assert_array_equal(columns.latency_ms, [3.0, np.nan, np.nan, np.nan])


def reference(n=2_000, seed=0) -> ReferenceProfile:
    rng = np.random.default_rng(seed)
    builder = ReferenceBuilder()
    builder.add(
        [
            {"features": {"x": float(x), "c": c}, "prediction": {"score": float(s)}, "latency_ms": float(l)}
            for x, c, s, l in zip(
                rng.normal(size=n), rng.choice(["a", "b", "c"], n).tolist(), rng.uniform(size=n), rng.lognormal(2, 0.3, n)
            )
        ]
    )
    return builder.build("m", "1", source="test", created_at=1.0)


LAYOUT = reference().layout


def window_events(rng, n):
    return [
        event({"x": float(x), "c": str(c)}, {"score": float(s)}, latency_ms=5.0)
        for x, c, s in zip(rng.normal(size=n), rng.choice(["a", "b", "z"], n), rng.uniform(size=n))
    ]


def exact_state(profile: WindowProfile):
    return (
        profile.event_count,
        profile.error_count,
        profile.type_errors,
        profile.absent,
        profile.unknown_feature_events,
        profile.numeric["x"].histogram.tolist(),
        profile.numeric["x"].null_count,
        profile.categorical["c"].counts.tolist(),
        profile.score.histogram.tolist(),
        profile.latency.count,
    )


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(0, 50), min_size=1, max_size=4), seed=st.integers(0, 1000))
def test_merging_window_profiles_equals_one_profile_of_all_events(sizes, seed) -> None:
    layout = LAYOUT
    rng = np.random.default_rng(seed)
    parts = [window_events(rng, size) for size in sizes]
    whole = layout.new_profile()
    whole.update(Columns.from_events([e for part in parts for e in part], ["x"], ["c"]))
    merged = layout.new_profile()
    for part in parts:
        profile = layout.new_profile()
        profile.update(Columns.from_events(part, ["x"], ["c"]))
        merged.merge(WindowProfile.from_bytes(profile.to_bytes()))  # through serialization, as between workers
    assert exact_state(merged) == exact_state(whole)


def test_profile_round_trips_through_bytes() -> None:
    profile = LAYOUT.new_profile()
    profile.update(Columns.from_events(window_events(np.random.default_rng(1), 300) + [event({"x": "?", "zz": 1})], ["x"], ["c"]))
    restored = WindowProfile.from_bytes(profile.to_bytes())
    assert exact_state(restored) == exact_state(profile)
    assert restored.unknown_features == {"zz": 1} and restored.type_errors == {"x": 1}
    assert restored.numeric["x"].quantiles([0.5]) == profile.numeric["x"].quantiles([0.5])
    assert 0 < profile.nbytes < 64_000


def test_merge_refuses_another_layout() -> None:
    a, b = reference().layout.new_profile(), reference(seed=1).layout.new_profile()
    with pytest.raises(ValueError):
        a.merge(b)


def test_reference_fixes_window_bins_and_keeps_metadata() -> None:
    ref = reference()
    restored = ReferenceProfile.from_bytes(ref.to_bytes())
    assert (restored.model_id, restored.model_version, restored.source, restored.row_count) == ("m", "1", "test", 2_000)
    assert restored.format_version == PROFILE_FORMAT_VERSION
    window = restored.layout.new_profile()
    np.testing.assert_array_equal(window.numeric["x"].edges, ref.profile.numeric["x"].edges)
    assert window.categorical["c"].categories == ref.profile.categorical["c"].categories
    assert window.score is not None and ref.profile.latency.count == 2_000


def test_unsupported_profile_format_is_refused_with_the_fix() -> None:
    ref = reference()
    ref.format_version = PROFILE_FORMAT_VERSION + 1
    with pytest.raises(ValueError, match="rebuild it with `driftline profile build`"):
        ReferenceProfile.from_bytes(ref.to_bytes())


@pytest.mark.parametrize(("strings", "expected"), [(4, "numeric"), (6, "categorical")])
def test_type_inference_needs_95_percent_numbers(strings, expected) -> None:
    rows = [{"f": float(i)} for i in range(100 - strings)] + [{"f": f"s{i}"} for i in range(strings)] + [{"f": None}] * 50
    builder = ReferenceBuilder()
    builder.add(rows)
    assert builder.feature_types() == {"f": expected}
    reference = builder.build("m", "1", source="t")
    if expected == "numeric":
        assert reference.profile.type_errors == {"f": strings} and reference.profile.numeric["f"].null_count == 50 + strings
    else:
        assert len(reference.profile.categorical["f"].categories) == 100
    assert NUMERIC_SHARE == 0.95


def test_declared_types_override_inference_and_chunks_do_not_matter() -> None:
    rows = [{"zip": 1000 + i % 7, "x": i * 0.5} for i in range(700)]
    whole = ReferenceBuilder(categorical=["zip"])
    whole.add(rows)
    chunked = ReferenceBuilder(categorical=["zip"])
    for start in range(0, 700, 99):
        chunked.add(rows[start : start + 99])
    a, b = whole.build("m", "1", source="t"), chunked.build("m", "1", source="t")
    assert sorted(a.profile.categorical["zip"].categories) == [str(1000 + i) for i in range(7)]
    assert a.profile.categorical["zip"].counts.tolist() == b.profile.categorical["zip"].counts.tolist()
    np.testing.assert_array_equal(a.profile.numeric["x"].edges, b.profile.numeric["x"].edges)
    # A window sends zip as a JSON number; it must match the reference's category.
    window = a.layout.new_profile()
    window.update(Columns.from_events([event({"zip": 1003, "x": 1.0})], ["x"], ["zip"]))
    assert window.categorical["zip"].unseen_count == 0


def test_declared_feature_missing_from_data_is_an_error() -> None:
    builder = ReferenceBuilder(numeric=["age"])
    builder.add([{"x": 1.0}])
    with pytest.raises(ValueError, match="age"):
        builder.build("m", "1", source="t")


def test_feature_without_any_value_is_an_error_naming_it() -> None:
    builder = ReferenceBuilder()
    builder.add([{"x": 1.0, "empty": None}] * 5)
    with pytest.raises(ValueError, match="'empty' has no values"):
        builder.build("m", "1", source="t")


def test_feature_first_seen_in_a_later_chunk_counts_earlier_rows_as_null() -> None:
    builder = ReferenceBuilder()
    builder.add([{"x": 1.0}] * 10)
    builder.add([{"x": 2.0, "y": 5.0}] * 10)
    profile = builder.build("m", "1", source="t").profile
    assert profile.numeric["y"].null_count == 10 and profile.numeric["y"].valid_count == 10


def mixed_reference(seed: int, n: int) -> ReferenceProfile:
    """A reference with every sketch in play: many unseen categories (heavy hitters), HLL in its
    list, set and dense modes, compacted KLL and REQ sketches, nulls and type errors."""
    rng = np.random.default_rng(seed)
    cities = [f"c{int(v)}" for v in rng.zipf(1.3, n)]
    builder = ReferenceBuilder(max_categories=8)
    builder.add(
        [
            {
                "features": {"x": float(x) if i % 50 else None, "n": int(k) if i % 97 else "oops", "city": city},
                "prediction": {"score": float(s), "class": "yes" if s > 0.5 else "no"},
                "latency_ms": float(latency),
                "status": "error" if i % 31 == 0 else "ok",
            }
            for i, (x, k, city, s, latency) in enumerate(
                zip(rng.normal(size=n), rng.poisson(3, n), cities, rng.uniform(size=n), rng.lognormal(2, 0.5, n))
            )
        ]
    )
    return builder.build("m", "1", source="test", created_at=float(seed))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.sampled_from([3, 40, 700, 5_000]))
def test_profile_bytes_are_canonical(seed, n) -> None:
    data = mixed_reference(seed, n).to_bytes()
    assert ReferenceProfile.from_bytes(data).to_bytes() == data  # byte for byte: profiles compare by hash
    window = ReferenceProfile.from_bytes(data).profile
    window.merge(ReferenceProfile.from_bytes(data).profile)
    merged = window.to_bytes()
    assert WindowProfile.from_bytes(merged).to_bytes() == merged


def test_column_entry_builds_the_same_profile_as_rows() -> None:
    rng = np.random.default_rng(3)
    n = 3_000
    x, k, score = rng.normal(size=n), rng.integers(0, 5, n), rng.uniform(size=n)
    x[::40] = np.nan
    city = rng.choice(["a", "b", "c"], n).astype(object)
    city[::30] = None
    k_sent = k.astype(object)
    k_sent[::100] = "n/a"  # type errors survive the column entry too
    rows = [
        {"features": {"x": None if np.isnan(a) else float(a), "k": b, "city": c}, "prediction": {"score": float(s)},
         "latency_ms": 4.0, "status": "error" if i % 9 == 0 else "ok"}
        for i, (a, b, c, s) in enumerate(zip(x.tolist(), k_sent.tolist(), city.tolist(), score.tolist()))
    ]  # fmt: skip
    by_rows = ReferenceBuilder(numeric=["k"])
    by_columns = ReferenceBuilder(numeric=["k"])
    for start in range(0, n, 1_000):
        part = slice(start, start + 1_000)
        by_rows.add(rows[part])
        by_columns.add_columns(
            {"x": x[part], "k": k_sent[part], "city": city[part]},
            score=score[part],
            predicted_class=np.full(1_000, None, dtype=object),
            latency_ms=np.full(1_000, 4.0),
            error=np.arange(start, start + 1_000) % 9 == 0,
        )
    a, b = (builder.build("m", "1", source="t", created_at=0.0).profile for builder in (by_rows, by_columns))

    def exact(profile: WindowProfile):  # everything but the randomized quantile sketches
        numeric = {name: (s.edges.tolist(), s.histogram.tolist(), s.null_count) for name, s in profile.numeric.items()}
        categorical = {name: (s.categories, s.counts.tolist(), s.null_count) for name, s in profile.categorical.items()}
        return (numeric, categorical, profile.score.histogram.tolist(), profile.latency.count, profile.type_errors,
                profile.error_count, profile.event_count)  # fmt: skip

    assert exact(a) == exact(b)
    assert b.type_errors == {"x": 0, "k": 30} and b.error_count == 334 and sorted(b.categorical) == ["city"]


def test_column_entry_refuses_columns_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        ReferenceBuilder().add_columns({"x": np.zeros(3), "y": np.zeros(4)})
