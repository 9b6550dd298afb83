"""RedisMirror writes read back through model_state, on the real Redis."""

from __future__ import annotations

import dataclasses
import time

import pytest

from detectors.policy import PolicyConfig
from stream.mirror import HEARTBEAT, OPEN_ALERTS, PROFILE, RECENT_ALERTS, STATISTICS, WINDOW, RedisMirror, segment_key
from tests.mirror.conftest import MODEL_ID, VERSION, drift_story
from tests.mirror.scenario import reference

pytestmark = pytest.mark.integration

EU = (("region", "eu"),)


def _all_alerts(story) -> list[dict]:
    return [alert for evaluation in story for alert in evaluation.alerts]


def test_latest_evaluation_per_segment_with_statistics_and_threshold_ratios(mirror):
    evaluator, whole = drift_story()
    _, eu = drift_story(EU)
    for evaluation in whole + eu[:5]:
        mirror.evaluation(evaluation, evaluator.config.policy)

    state = mirror.model_state(MODEL_ID)
    windows = {window["segment_key"]: window for window in state["windows"]}
    assert sorted(windows) == ["-", "region=eu"]
    for segment, latest in (("-", whole[-1]), ("region=eu", eu[4])):
        window = windows[segment]
        assert (window["model_version"], window["segment"]) == (VERSION, dict(latest.key.segment))
        assert window["event_count"] == latest.event_count
        assert window["end"] == time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(latest.end))
        assert sorted(window["features"]) == sorted(latest.statistics)
        for feature, statistics in latest.statistics.items():
            assert window["features"][feature]["statistics"] == pytest.approx(statistics, nan_ok=True)
        for result in latest.results:
            [test] = [t for t in windows[segment]["features"][result.feature or "(model)"]["tests"]
                      if (t["kind"], t["statistic"]) == (result.kind, result.statistic)]
            threshold = evaluator.config.policy.threshold_for(result)
            assert test["value"] == pytest.approx(result.value)
            assert test["ratio"] == pytest.approx(result.value / threshold)
    city, x = windows["-"]["features"]["city"], windows["-"]["features"]["x"]
    assert city["worst_ratio"] > 1 > x["worst_ratio"]  # city stays drifted, x recovered
    assert [w["segment_key"] for w in mirror.model_state(MODEL_ID, VERSION)["windows"]] == ["-", "region=eu"]
    assert mirror.model_state(MODEL_ID, "other-version")["windows"] == []


def test_window_keys_age_out_and_are_replaced_in_full(mirror, prefix):
    _, story = drift_story()
    mirror.evaluation(story[-1])
    parts = {"model": MODEL_ID, "version": VERSION, "segment": "-"}
    for spec in (WINDOW, STATISTICS):
        assert 0 < mirror.client.ttl(spec.key(prefix, **parts)) <= mirror.window_ttl

    fewer = dataclasses.replace(story[-1], statistics={"x": story[-1].statistics["x"]}, results=[])
    mirror.evaluation(fewer, PolicyConfig())
    assert sorted(mirror.model_state(MODEL_ID)["windows"][0]["features"]) == ["x"]


def test_change_points_are_kept_newest_first(mirror):
    _, story = drift_story()
    mirror.evaluation(dataclasses.replace(story[5], change_points=["x"]))
    mirror.evaluation(dataclasses.replace(story[6], change_points=["city", "x"]))
    state = mirror.model_state(MODEL_ID)
    assert state["windows"][0]["change_points"] == ["city", "x"]
    assert [(c["feature"], c["window_end"]) for c in state["change_points"]] == [
        ("city", state["windows"][0]["end"]), ("x", state["windows"][0]["end"]), ("x", state["change_points"][2]["window_end"]),
    ]
    assert state["change_points"][2]["window_end"] < state["windows"][0]["end"]


def test_firing_opens_and_resolved_closes_alerts(mirror, prefix):
    evaluator, story = drift_story()
    events = _all_alerts(story)
    assert {e["status"] for e in events} == {"firing", "resolved"}
    for evaluation in story:
        mirror.alerts(evaluation.alerts)

    state = mirror.model_state(MODEL_ID)
    assert state["open_alerts"] == evaluator.policy.open_alerts
    assert [a["feature"] for a in state["open_alerts"]] == ["city"]
    assert state["recent_alerts"] == events[::-1]
    assert mirror.client.ttl(OPEN_ALERTS.key(prefix, model=MODEL_ID)) == -1  # open until resolved
    assert 0 < mirror.client.ttl(RECENT_ALERTS.key(prefix, model=MODEL_ID)) <= mirror.recent_ttl
    assert mirror.model_state(MODEL_ID, "other-version")["open_alerts"] == []


def test_firing_and_resolved_in_one_call_leave_nothing_open(mirror):
    _, story = drift_story()
    x_alerts = [e for e in _all_alerts(story) if e["feature"] == "x"]
    mirror.alerts(x_alerts)
    assert mirror.model_state(MODEL_ID)["open_alerts"] == []


def test_recent_alerts_are_capped(stack_settings, prefix, mirror):
    capped = RedisMirror(stack_settings.redis_url, prefix, recent_cap=2)
    _, story = drift_story()
    events = _all_alerts(story)
    capped.alerts(events)
    assert mirror.model_state(MODEL_ID)["recent_alerts"] == events[::-1][:2]


def test_heartbeats_expire(stack_settings, prefix, mirror):
    short = RedisMirror(stack_settings.redis_url, prefix, heartbeat_ttl=1)
    info = {"lag": {"driftline.partials[0]": 12, "driftline.partials[1]": 0}, "processed": {"partials": 4000}}
    short.heartbeat("evaluate", "host-1.4242", info)
    [beat] = mirror.model_state(MODEL_ID)["workers"]
    assert (beat["role"], beat["worker_id"], beat["info"]) == ("evaluate", "host-1.4242", info)
    assert 0 < mirror.client.ttl(HEARTBEAT.key(prefix, role="evaluate", worker_id="host-1.4242")) <= 1
    time.sleep(1.5)
    short.heartbeat("evaluate", "host-2.7", {})
    assert [b["worker_id"] for b in mirror.model_state(MODEL_ID)["workers"]] == ["host-2.7"]
    assert mirror.client.zrange(f"{prefix}:workers", 0, -1) == [b"evaluate:host-2.7"]


def test_reference_summary_and_profile_copy(stack_settings, prefix, mirror):
    profile = reference(MODEL_ID, VERSION)
    mirror.reference(profile)
    summary = mirror.model_state(MODEL_ID)["references"][VERSION]
    assert summary["row_count"] == profile.row_count == 5000
    assert summary["source"] == "train.csv"
    assert summary["created_at"] == "2025-12-31T00:00:00.000Z"
    assert summary["features"]["x"]["type"] == "numeric"
    assert summary["features"]["x"]["bins"] == profile.profile.numeric["x"].edges.size - 1
    assert summary["features"]["city"] == {"type": "categorical", "categories": 3}
    assert mirror.reference_profile(MODEL_ID, VERSION).to_bytes() == profile.to_bytes()

    without_copy = RedisMirror(stack_settings.redis_url, f"{prefix}-summary-only", copy_profiles=False)
    without_copy.reference(profile)
    assert without_copy.model_state(MODEL_ID)["references"] == {VERSION: summary}
    assert not without_copy.client.exists(PROFILE.key(f"{prefix}-summary-only", model=MODEL_ID))
    without_copy.client.delete(*without_copy.client.scan_iter(f"{prefix}-summary-only:*"))


def test_detector_states_are_replaced_in_full(mirror, prefix):
    mirror.detector_states(MODEL_ID, VERSION, {"region": "eu"}, {"adwin:x": {"width": 40, "mean": 0.1}, "adwin:y": {"width": 3}})
    mirror.detector_states(MODEL_ID, VERSION, EU, {"adwin:x": {"width": 41, "mean": 0.2}})
    [window] = mirror.model_state(MODEL_ID)["windows"]
    assert window["segment_key"] == segment_key(EU) == "region=eu"
    assert window["detectors"] == {"adwin:x": {"width": 41, "mean": 0.2}}
    key = f"{prefix}:detectors:{MODEL_ID}:{VERSION}:region=eu"
    assert 0 < mirror.client.ttl(key) <= mirror.window_ttl


def test_segment_keys_are_deterministic_and_unambiguous():
    assert segment_key({"tier": "gold", "region": "eu"}) == segment_key([("region", "eu"), ("tier", "gold")]) == "region=eu,tier=gold"
    assert segment_key({}) == "-"
    assert segment_key({"a": "b,c=d"}) != segment_key({"a": "b", "c": "d"})
    assert ":" not in segment_key({"host": "a:1"})
