"""Generated events: determinism, the contract, size, event time, labels, reference set and files."""

import math

import numpy as np
import orjson
from jsonschema import Draft202012Validator

from schemas import load
from stream.files import read_records
from stream.workload import (
    CATEGORICAL_NAMES,
    CHUNK_SIZE,
    FEATURE_NAMES,
    NUMERIC_FEATURES,
    AbruptShift,
    Errors,
    Malformed,
    Nulls,
    Workload,
    write_csv,
    write_jsonl,
)

SCENARIOS = [AbruptShift(features=("num_01",), start=3_000), Nulls(features=("cat_1",), rate=0.1), Malformed(rate=0.02)]


def all_values(workload: Workload, n_events: int, batch_size: int) -> list[bytes]:
    return [value for values, _, _ in workload.batches(n_events, batch_size, SCENARIOS) for value in values]


def test_same_seed_gives_byte_identical_events_whatever_the_batch_size():
    first = all_values(Workload(seed=7), 10_000, 1_000)
    assert first == all_values(Workload(seed=7), 10_000, 1_000)
    assert first == all_values(Workload(seed=7), 10_000, 3_333)
    assert first != all_values(Workload(seed=8), 10_000, 1_000)


def test_any_index_range_regenerates_on_its_own():
    workload = Workload(seed=5)
    whole = workload.serialize(workload.generate(0, 3 * CHUNK_SIZE, SCENARIOS))
    middle = workload.serialize(workload.generate(CHUNK_SIZE - 10, 2 * CHUNK_SIZE + 10, SCENARIOS))
    assert middle == whole[CHUNK_SIZE - 10 : 2 * CHUNK_SIZE + 10]


def test_events_and_keys_follow_the_contract():
    workload = Workload(seed=3, model_id="fraud-model", model_version="2.1")
    values, keys, batch = next(workload.batches(2_000, 2_000, [Errors(rate=0.05), Nulls(features=("num_00", "cat_0"), rate=0.1)]))
    validator = Draft202012Validator(load("inference"))
    events = [orjson.loads(value) for value in values]
    for event in events:
        validator.validate(event)
    assert [event["prediction_id"].encode() for event in events] == keys
    assert len(set(keys)) == len(keys)
    assert list(events[0]["features"]) == list(FEATURE_NAMES)
    assert {event["status"] for event in events} == {"ok", "error"}
    assert {event["segment"]["region"] for event in events} == {"eu", "us", "apac"}
    integer_features = [feature.name for feature in NUMERIC_FEATURES if feature.integer]
    assert all(type(event["features"][name]) is int for event in events for name in integer_features)
    ok = [(event, i) for i, event in enumerate(events) if event["status"] == "ok"]
    assert all(event["prediction"]["class"] == int(batch.predicted_class[i]) for event, i in ok)


def test_average_event_size_is_between_500_and_700_bytes():
    values = Workload(seed=1).serialize(Workload(seed=1).generate(0, 5_000))
    assert 500 <= np.mean([len(value) for value in values]) <= 700


def test_features_are_non_trivial_distributions():
    workload = Workload(seed=4)
    batch = workload.generate(0, 20_000)
    for column, feature in enumerate(NUMERIC_FEATURES):
        values = batch.numeric[:, column]
        assert len(np.unique(values)) >= (5 if feature.integer else 1_000), feature.name
        assert abs(values.mean() - feature.mean) < 5 * feature.sd / math.sqrt(len(values)), feature.name
    category_counts = [len(set(batch.categorical_column(name))) for name in CATEGORICAL_NAMES]
    assert min(category_counts) == 3 and max(category_counts) == 50


def test_event_time_advances_at_the_configured_rate_with_jitter_and_late_events():
    plain = Workload(seed=2, events_per_second=500.0, start=1_800_000_000.0)
    batch = plain.generate(0, 10_000)
    np.testing.assert_allclose(batch.timestamp, 1_800_000_000.0 + np.arange(10_000) / 500.0)
    assert plain.time_of(1_000) == 1_800_000_002.0

    jittered = Workload(seed=2, events_per_second=500.0, start=1_800_000_000.0, jitter_seconds=0.5)
    offset = jittered.generate(0, 10_000).timestamp - batch.timestamp
    assert -0.5 <= offset.min() < -0.45 and 0.45 < offset.max() <= 0.5
    assert (np.diff(jittered.generate(0, 10_000).timestamp) < 0).mean() > 0.3

    late = Workload(seed=2, events_per_second=500.0, start=1_800_000_000.0, late_fraction=0.1, max_lateness_seconds=30.0)
    offset = late.generate(0, 10_000).timestamp - batch.timestamp
    assert offset.max() == 0.0 and -30.0 <= offset.min() < -29.0
    assert abs((offset < 0).mean() - 0.1) < 5 * math.sqrt(0.1 * 0.9 / 10_000)


def test_labels_cover_the_requested_share_arrive_after_predictions_and_match_the_truth():
    workload = Workload(seed=9, model_id="churn")
    batch = workload.generate(0, 10_000)
    labels = workload.labels(batch, coverage=0.3, mean_delay_seconds=60.0)
    assert abs(len(labels.values) / len(batch) - 0.3) < 0.03
    assert (np.diff(labels.timestamps) >= 0).all()
    validator = Draft202012Validator(load("label"))
    truth = dict(zip(workload.keys(batch), batch.label.tolist(), strict=True))
    event_time = dict(zip(workload.keys(batch), batch.timestamp.tolist(), strict=True))
    for key, value in zip(labels.keys, labels.values, strict=True):
        event = orjson.loads(value)
        validator.validate(event)
        assert event["prediction_id"].encode() == key and event["model_id"] == "churn"
        assert event["label"] == truth[key]
        assert event["timestamp"] >= event_time[key] - 1e-3
    again = workload.labels(batch, coverage=0.3, mean_delay_seconds=60.0)
    assert again.values == labels.values and again.keys == labels.keys


def test_reference_set_has_the_live_distributions_from_its_own_stream():
    workload = Workload(seed=6)
    reference = workload.reference(20_000)
    assert set(reference) == set(FEATURE_NAMES) | {"prediction", "class", "label", "latency_ms", "region"}
    assert all(len(column) == 20_000 for column in reference.values())
    live = workload.generate(0, 20_000)
    assert not np.array_equal(reference["num_00"], live.numeric_column("num_00"))
    for feature in NUMERIC_FEATURES:
        assert abs(reference[feature.name].mean() - feature.mean) < 5 * feature.sd / math.sqrt(20_000), feature.name
    assert abs(reference["class"].mean() - live.predicted_class.mean()) < 0.03


def test_jsonl_and_csv_files_replay_through_stream_files(tmp_path):
    workload = Workload(seed=12, model_id="replay")
    values, keys, batch = next(workload.batches(500, 500, [Malformed(rate=0.1), Nulls(features=("num_04",), rate=0.2)]))
    assert write_jsonl(tmp_path / "events.jsonl", values) == 500
    assert [value for _, value in read_records(tmp_path / "events.jsonl", "inference")] == values

    assert write_csv(tmp_path / "events.csv", workload.columns(batch)) == 500
    replayed = [orjson.loads(value) for _, value in read_records(tmp_path / "events.csv", "inference")]
    assert [event["prediction_id"].encode() for event in replayed] == keys
    assert all(list(event["features"]) == list(FEATURE_NAMES) for event in replayed)
    num_04 = np.array([np.nan if event["features"]["num_04"] is None else event["features"]["num_04"] for event in replayed])
    np.testing.assert_allclose(num_04, batch.numeric_column("num_04"), equal_nan=True)
    assert [event["features"]["cat_3"] for event in replayed] == batch.categorical_column("cat_3").tolist()
