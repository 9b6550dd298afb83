"""PerformanceMonitor: performance-drop, concept-drift, coverage and label-lag alerts from hand-made outcomes."""

from __future__ import annotations

import dataclasses

import jsonschema
import numpy as np
import pytest

import schemas
from detectors.monitor import MonitorConfig, MonitorConfigError
from detectors.performance import OTHER_SEGMENT_VALUE, PerformanceConfig, PerformanceMonitor
from detectors.policy import WindowKey

OUTCOME = jsonschema.Draft202012Validator(schemas.load("outcome"))
ALERT = jsonschema.Draft202012Validator(schemas.load("alert"))
KEY = WindowKey("m", "1")


def outcomes(n: int, error_rate: float, seed: int, *, start: float = 0.0, lag: float = 30.0, positive_share: float = 0.5,
             segment: dict | None = None) -> list[dict]:  # fmt: skip
    """Binary outcomes, one a second; errors fall on the positive class only."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = int(rng.random() < positive_share)
        wrong = label == 1 and rng.random() < error_rate / positive_share
        score = float(rng.uniform(0.05, 0.45) if (label == 1) == wrong else rng.uniform(0.55, 0.95))
        rows.append({
            "schema_version": "1.0", "model_id": "m", "model_version": "1", "segment": segment or {},
            "prediction_id": f"p{seed}-{i}", "prediction": {"score": score}, "label": label,
            "prediction_time": start + i, "label_time": start + i + lag,
        })  # fmt: skip
    return rows


def alerts_of(evaluations: list) -> list[dict]:
    return [alert for evaluation in evaluations for alert in evaluation.alerts]


def test_hand_made_outcomes_are_valid_outcome_events_and_alerts_are_valid_alert_events() -> None:
    for row in outcomes(5, 0.1, 0):
        OUTCOME.validate(row)
    monitor = PerformanceMonitor("m", PerformanceConfig(window_labels=200, reference_windows=2))
    fired = alerts_of(monitor.update(outcomes(400, 0.05, 1) + outcomes(1_000, 0.3, 2, start=400.0)))
    assert fired
    for alert in fired:
        ALERT.validate(alert)


def test_a_drop_alerts_only_when_the_labels_make_it_significant() -> None:
    # The same 0.10 -> 0.20 error rise: 40 labels per window cannot tell it from noise, 1,000 can.
    for window, expected in ((40, False), (1_000, True)):
        monitor = PerformanceMonitor("m", PerformanceConfig(window_labels=window, reference_windows=5, detectors=()))
        monitor.update(outcomes(5 * window, 0.10, 3))
        fired = alerts_of(monitor.update(outcomes(3 * window, 0.20, 4, start=10_000.0)))
        drops = [a for a in fired if a["statistic"]["name"] == "accuracy_drop"]
        assert bool(drops) is expected, (window, fired)
    [drop] = drops
    assert drop["kind"] == "performance" and drop["statistic"]["p_value"] < 0.01 and drop["statistic"]["sample_size"] == 1_000
    assert drop["statistic"]["reference_size"] == 5_000 and drop["reference"]["id"] == "first-labelled-windows"


def test_no_alert_on_a_stationary_stream() -> None:
    monitor = PerformanceMonitor("m", PerformanceConfig(window_labels=500))
    assert alerts_of(monitor.update(outcomes(30_000, 0.15, 5))) == []


def test_concept_drift_fires_once_on_the_class_whose_errors_moved_then_resolves() -> None:
    # Errors move from the positive class to the negative one at a constant overall error rate.
    monitor = PerformanceMonitor("m", PerformanceConfig(window_labels=250, detectors=("adwin",)))
    before = outcomes(5_000, 0.15, 6)
    after = outcomes(5_000, 0.15, 7, start=5_000.0)
    for row in after:
        row["label"] = 1 - row["label"]  # errors now on the negative class
        row["prediction"]["score"] = 1 - row["prediction"]["score"]
    evaluations = monitor.update(before) + monitor.update(after)
    drift = [a for a in alerts_of(evaluations) if a["kind"] == "concept_drift"]
    firing = [a for a in drift if a["status"] == "firing"]
    assert {a["feature"] for a in firing} <= {"class=0", "class=1"} and len(firing) >= 1
    assert all(a["window"]["start"] >= "1970-01-01T01:23:20" for a in firing)  # after t = 5,000 s
    assert {a["alert_id"] for a in drift if a["status"] == "resolved"} == {a["alert_id"] for a in firing}
    assert all(a["severity"] == "P1" and a["suggested_action"] == "retrain" for a in firing)


def test_coverage_is_judged_after_the_expected_delay_and_alerts_when_labels_go_missing() -> None:
    config = PerformanceConfig(window_labels=10_000, base_seconds=60.0, label_delay_seconds=120.0, min_coverage=0.9)
    monitor = PerformanceMonitor("m", config)
    judged = []
    for minute in range(10):
        rows = outcomes(60, 0.1, 10 + minute, start=60.0 * minute)
        share = 1.0 if minute < 4 else 0.5  # labels stop arriving for half the predictions
        monitor.update(rows[: int(60 * share)])
        judged += monitor.close_window(KEY, 60.0 * minute, 60.0 * (minute + 1), 60)
    assert [(e.start, e.coverage) for e in judged] == [(60.0 * m, 1.0 if m < 4 else 0.5) for m in range(8)]
    fired = alerts_of(judged)
    assert [(a["kind"], a["statistic"]["name"], a["window"]["start"]) for a in fired] == [
        ("label_lag", "missing_label_rate", "1970-01-01T00:05:00.000Z")
    ]
    # A label for a window already judged still counts for performance, and is counted late.
    monitor.update(outcomes(1, 0.0, 99, start=30.0))
    assert monitor.late_outcomes == 1


def test_label_lag_alerts_when_the_tail_passes_the_limit() -> None:
    monitor = PerformanceMonitor("m", PerformanceConfig(window_labels=500, label_lag_seconds=600.0))
    assert alerts_of(monitor.update(outcomes(1_500, 0.1, 20, lag=60.0))) == []
    fired = alerts_of(monitor.update(outcomes(1_500, 0.1, 21, start=2_000.0, lag=900.0)))
    assert [(a["kind"], a["statistic"]["name"], a["statistic"]["value"]) for a in fired] == [("label_lag", "share_over_lag_limit", 1.0)]


def test_regression_alerts_on_a_relative_rmse_increase() -> None:
    rng = np.random.default_rng(30)

    def rows(n: int, noise: float, start: float) -> list[dict]:
        labels = rng.normal(50, 10, n)
        return [{"model_id": "m", "model_version": "1", "segment": {}, "prediction": {"value": float(y + rng.normal(0, noise))},
                 "label": float(y), "prediction_time": start + i, "label_time": start + i + 5} for i, y in enumerate(labels)]  # fmt: skip

    monitor = PerformanceMonitor("m", PerformanceConfig(task="regression", window_labels=500, detectors=("adwin", "ddm")))
    assert alerts_of(monitor.update(rows(5_000, 2.0, 0.0))) == []
    evaluations = monitor.update(rows(1_500, 3.0, 10_000.0))
    kinds = {(a["kind"], a["statistic"]["name"]) for a in alerts_of(evaluations)}
    assert ("performance", "rmse_increase") in kinds
    assert evaluations[-1].metrics["rmse"] == pytest.approx(3.0, rel=0.15)
    # DDM needs 0/1 errors: regression runs ADWIN on the absolute error only.
    assert set(monitor.detector_states()[KEY]) == {"adwin:error"}
    monitor.update([{**rows(1, 1.0, 0.0)[0], "label": "high"}])
    assert monitor.rejected == 1


def test_segments_get_their_own_windows_and_values_beyond_the_cap_are_pooled() -> None:
    config = PerformanceConfig(window_labels=100, segments=(("region", 2),))
    monitor = PerformanceMonitor("m", config)
    rows = [row for region in ("eu", "us", "apac") for row in outcomes(100, 0.1, 40, segment={"region": region})]
    keys = {evaluation.key for evaluation in monitor.update(rows)}
    assert keys == {KEY, *(WindowKey("m", "1", {"region": value}) for value in ("eu", "us", OTHER_SEGMENT_VALUE))}


def test_a_restored_monitor_continues_exactly_like_the_original() -> None:
    config = PerformanceConfig(window_labels=300, reference_windows=3, label_lag_seconds=100.0, detectors=("adwin", "ddm", "eddm"))
    stream = outcomes(3_000, 0.1, 50) + outcomes(3_000, 0.3, 51, start=3_000.0, lag=200.0)
    whole = PerformanceMonitor("m", config)
    expected = alerts_of(whole.update(stream))
    for cut in (1_234, 2_950, 4_001):
        first = PerformanceMonitor("m", config)
        before = alerts_of(first.update(stream[:cut]))
        restored = PerformanceMonitor.from_bytes(first.to_bytes(), "m", config)
        assert before + alerts_of(restored.update(stream[cut:])) == expected
    assert any(a["kind"] == "performance" for a in expected) and any(a["kind"] == "label_lag" for a in expected)


def test_config_rejects_unknown_detectors_and_tasks() -> None:
    with pytest.raises(ValueError, match="unknown performance detectors"):
        PerformanceConfig(detectors=("kswin",))
    with pytest.raises(ValueError, match="task"):
        dataclasses.replace(PerformanceConfig(), task="ranking")


def test_the_monitor_config_maps_task_performance_block_and_thresholds() -> None:
    config = MonitorConfig.from_mapping({
        "model_id": "m", "reference": "r", "task": "regression", "windows": {"base_seconds": 30},
        "performance": {"window_labels": 250, "detectors": ["adwin", "ddm"], "min_coverage": 0.8},
        "thresholds": {"performance_drop": 0.1, "label_lag_seconds": 3600}, "segments": [{"tag": "region", "max_values": 3}],
    })  # fmt: skip
    assert config.performance == PerformanceConfig(
        task="regression", window_labels=250, detectors=("adwin", "ddm"), min_coverage=0.8, max_drop=0.1,
        label_lag_seconds=3600, segments=(("region", 3),), base_seconds=30,
    )  # fmt: skip
    assert MonitorConfig.from_mapping({"model_id": "m", "reference": "r"}).performance is None
    with pytest.raises(MonitorConfigError, match="performance: has no effect without a task"):
        MonitorConfig.from_mapping({"model_id": "m", "reference": "r", "performance": {"window_labels": 10}})
    with pytest.raises(MonitorConfigError, match="did you mean 'window_labels'"):
        MonitorConfig.from_mapping({"model_id": "m", "reference": "r", "task": "classification", "performance": {"window_label": 10}})
