"""Label-join evictions become an alert: the join reports them per model as ``join_evictions`` records
beside the outcomes, the performance monitor judges them at each base window (any eviction fires,
a window without any resolves), and replay does the same with its own join."""

from __future__ import annotations

import math

import jsonschema
import orjson

import schemas
from detectors.monitor import MonitorConfig
from detectors.performance import JOIN_EVICTIONS, EvictionEvaluation, PerformanceConfig, PerformanceMonitor, is_join_evictions
from detectors.policy import WindowKey
from detectors.profile import ReferenceBuilder
from stream.join import UNKNOWN_MODEL, JoinStore, LabelJoin
from stream.replay import Replay
from tests.labels.test_join_handler import MODELS, TOPICS, label, prediction

OUTCOME = jsonschema.Draft202012Validator(schemas.load("outcome"))
ALERT = jsonschema.Draft202012Validator(schemas.load("alert"))
KEY = WindowKey("m", "1")


def evictions(count: int, time: float, model_id: str = "m") -> dict:
    return {"schema_version": "1.0", "kind": JOIN_EVICTIONS, "model_id": model_id, "count": count, "time": time}


def judged(evaluations: list) -> list[EvictionEvaluation]:
    return [evaluation for evaluation in evaluations if isinstance(evaluation, EvictionEvaluation)]


def test_evictions_fire_at_their_base_window_and_resolve_at_the_first_window_without_any():
    monitor = PerformanceMonitor("m", PerformanceConfig())
    assert monitor.update([evictions(40, 130.0), evictions(10, 150.0)]) == []
    assert judged(monitor.close_window(KEY, 60.0, 120.0, 100)) == []  # reported after this window: not its evictions
    [fired] = judged(monitor.close_window(KEY, 120.0, 180.0, 100))
    [alert] = fired.alerts
    ALERT.validate(alert)
    assert fired.evicted == 50
    assert (alert["status"], alert["kind"], alert["feature"], alert["severity"], alert["suggested_action"]) == (
        "firing", "label_lag", None, "P1", "fix_pipeline")  # 50 >= 2 x the threshold of 1: P1 by the default rules
    assert alert["statistic"]["name"] == "join_evictions" and alert["statistic"]["value"] == 50
    assert alert["window"] == {"start": "1970-01-01T00:02:00.000Z", "end": "1970-01-01T00:03:00.000Z"}
    assert [a["alert_id"] for a in monitor.open_alerts] == [alert["alert_id"]]
    [resolved] = judged(monitor.close_window(KEY, 180.0, 240.0, 100))[0].alerts
    ALERT.validate(resolved)
    assert (resolved["status"], resolved["alert_id"]) == ("resolved", alert["alert_id"])
    assert monitor.open_alerts == []


def test_a_late_report_counts_in_the_next_window_and_segments_are_not_judged_twice():
    monitor = PerformanceMonitor("m", PerformanceConfig(segments=(("region", 5),)))
    monitor.close_window(KEY, 0.0, 60.0, 10)
    monitor.update([evictions(1, 30.0)])  # its window is judged already: it is not lost
    assert judged(monitor.close_window(WindowKey("m", "1", {"region": "eu"}), 60.0, 120.0, 10)) == []
    [late] = judged(monitor.close_window(KEY, 60.0, 120.0, 10))
    assert late.evicted == 1 and late.alerts[0]["severity"] == "P2"  # one eviction: at the threshold, no rule escalates it
    monitor.update([evictions(2, 90.0)])
    assert judged(monitor.close_window(WindowKey("m", "2"), 60.0, 120.0, 10)) == []  # the window is judged for the model
    [next_window] = judged(monitor.close_window(WindowKey("m", "2"), 120.0, 180.0, 10))
    assert (next_window.evicted, next_window.key, next_window.alerts) == (2, KEY, [])  # one alert per model: still firing for version 1
    [resolved] = judged(monitor.close_window(WindowKey("m", "2"), 180.0, 240.0, 10))[0].alerts
    assert (resolved["status"], resolved["model_version"]) == ("resolved", "1")


def test_pending_evictions_and_a_firing_alert_survive_a_checkpoint():
    config = PerformanceConfig()
    monitor = PerformanceMonitor("m", config)
    monitor.update([evictions(5, 10.0), evictions(7, 70.0)])
    [fired] = judged(monitor.close_window(KEY, 0.0, 60.0, 10))[0].alerts
    restored = PerformanceMonitor.from_bytes(monitor.to_bytes(), "m", config)
    assert restored.open_alerts == monitor.open_alerts == [fired]
    assert judged(restored.close_window(KEY, 60.0, 120.0, 10))[0].evicted == 7
    [resolved] = judged(restored.close_window(KEY, 120.0, 180.0, 10))[0].alerts
    assert resolved["status"] == "resolved" and resolved["alert_id"] == fired["alert_id"]


def test_the_store_reports_its_evictions_per_model_once_as_valid_outcome_records():
    store = JoinStore({"m": 1e6, "n": 1e6}, max_bytes=1 << 20)
    store.add_predictions([prediction("first", 1000.0)])
    cap = 20 * store.bytes
    store = JoinStore({"m": 1e6, "n": 1e6}, max_bytes=cap)
    assert store.pop_evictions() == []
    store.add_labels([{"prediction_id": f"orphan{i}", "label": 1, "timestamp": 900.0} for i in range(10)])  # no model: counted only
    store.add_predictions([prediction(f"p{i}", 1000.0 + i) for i in range(30)])
    store.add_predictions([{**prediction(f"q{i}", 1100.0 + i), "model_id": "n"} for i in range(30)])
    records = store.pop_evictions()
    for record in records:
        OUTCOME.validate(record)
        assert is_join_evictions(record)
    evicted = {model_id: counts["evicted"] for model_id, counts in store.counts.items() if counts["evicted"]}
    assert evicted[UNKNOWN_MODEL] == 10
    assert {record["model_id"]: record["count"] for record in records} == {m: c for m, c in evicted.items() if m != UNKNOWN_MODEL}
    assert {record["time"] for record in records} == {1129.0}  # the prediction clock when they were reported
    assert store.pop_evictions() == []


def test_the_join_handler_publishes_evictions_with_the_batch_outcomes_keyed_by_model():
    join = LabelJoin(MODELS, TOPICS, lambda partition: {}, max_bytes=2 * 20 * 400)
    for topic in ("t.inference", "t.labels"):
        join.assign(topic, 0, None)
    outputs = join.handle("t.inference", 0, [prediction(f"p{i}", 10.0 + i) for i in range(100)])
    outputs += join.handle("t.labels", 0, [label("p99", 200.0)])
    records = [orjson.loads(o.value) for o in outputs if o.topic == "t.outcomes"]
    [reported, outcome] = records
    assert is_join_evictions(reported) and reported["count"] == join.report()["join"]["m"]["evicted"] > 0
    assert outcome["prediction_id"] == "p99" and not is_join_evictions(outcome)
    assert all(o.key == b"m" for o in outputs if o.topic == "t.outcomes")


def test_unreadable_eviction_records_are_not_taken_for_evictions():
    assert not is_join_evictions({**evictions(3, 1.0), "count": "3"})
    assert not is_join_evictions({**evictions(3, 1.0), "time": math.nan})
    assert not is_join_evictions({key: value for key, value in evictions(3, 1.0).items() if key != "model_id"})
    assert not is_join_evictions([evictions(3, 1.0)])


def test_replay_alerts_on_the_evictions_of_its_join_and_resolves_when_they_stop(tmp_path):
    builder = ReferenceBuilder(numeric=["x"])
    builder.add([{"x": float(i % 100)} for i in range(1_000)])
    reference = builder.build("m", "v", source="test_join_evictions")
    config = MonitorConfig.from_mapping({"model_id": "m", "reference": "unused", "task": "classification", "labels": {"ttl_seconds": 120}})
    replay = Replay(config, reference, labels=True, join_max_bytes=60_000)
    start = 1_700_000_040.0
    burst = [{**prediction(f"p{i}", start + i / 10), "features": {"x": float(i % 100)}} for i in range(1_000)]  # 100 s, no labels
    alerts = []
    for offset in range(0, len(burst), 100):
        alerts += replay.feed([orjson.dumps(event) for event in burst[offset : offset + 100]])[0]
    # Labels from later on expire what waits; then predictions joined at once, for a few windows.
    alerts += replay.feed_labels([orjson.dumps({"prediction_id": "none", "label": 0, "timestamp": start + 400.0, "model_id": "m"})])[0]
    for second in range(400, 700):
        event = {**prediction(f"r{second}", start + second), "features": {"x": float(second % 100)}}
        alerts += replay.feed([orjson.dumps(event)])[0]
        alerts += replay.feed_labels([orjson.dumps(label(f"r{second}", start + second + 1))])[0]
    alerts += replay.finish()
    eviction_alerts = [alert for alert in alerts if alert["statistic"]["name"] == "join_evictions"]
    assert [alert["status"] for alert in eviction_alerts] == ["firing", "resolved"]
    assert replay.join.counts["m"]["evicted"] > 0
