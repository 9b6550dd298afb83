"""The exporter without a broker: names, the README table, serving, counts, and the cardinality caps."""

from __future__ import annotations

import dataclasses
import doctest
import logging
import re
import urllib.request

import numpy as np
import pytest

import stream.metrics
from detectors.columns import Columns
from detectors.evaluator import ModelEvaluator
from detectors.monitor import MonitorConfig
from detectors.policy import WindowKey
from detectors.profile import ReferenceBuilder
from detectors.windows import ClosedWindow
from stream.incidents.lifecycle import State
from stream.metrics import METRICS, EvaluateMetrics, IngestMetrics, incident_registry, markdown_table
from stream.models import MonitoredModel
from stream.settings import PROJECT_ROOT, MetricsSettings
from tests.incidents.incident_helpers import free_port
from tests.observability.exporter import served_names

FEATURES = [f"x{i}" for i in range(6)]
DRIFTED = "x3"


def test_names_follow_prometheus_conventions():
    names = [spec.name for spec in METRICS]
    assert len(set(names)) == len(names)
    for spec in METRICS:
        assert re.fullmatch(r"driftline_[a-z0-9_]+", spec.name), spec.name
        assert spec.name.endswith("_total") == (spec.type == "counter"), f"{spec.name}: only counters end in _total"
        assert not re.search(r"_(milliseconds|ms|percent)\b", spec.name), f"{spec.name}: use base units (seconds, ratios)"
        assert "le" not in spec.labels and len(set(spec.labels)) == len(spec.labels), spec.name
        assert spec.type in ("counter", "gauge", "histogram") and spec.roles and spec.help.endswith(".")
        assert (spec.type == "histogram") == bool(spec.buckets), spec.name


def test_readme_table_is_generated_from_the_code():
    readme = (PROJECT_ROOT / "README.md").read_text()
    embedded = readme.split("<!-- metrics:start -->\n", 1)[1].split("<!-- metrics:end -->", 1)[0]
    assert embedded == markdown_table(), "README.md's metric table is stale: paste `python -m stream.metrics` between the markers"


def test_doctests():
    assert doctest.testmod(stream.metrics).failed == 0


def test_every_declared_metric_is_served_by_its_role():
    served = served_names()
    for spec in METRICS:
        scraped = f"{spec.name}_bucket" if spec.type == "histogram" else spec.name
        assert scraped in served, f"{spec.name} is declared but no registry serves it"


def test_serves_metrics_over_http_and_survives_a_taken_port(caplog):
    metrics, port = IngestMetrics(), free_port()
    settings = MetricsSettings(port=port, host="127.0.0.1")
    assert metrics.serve(settings, port) == f"http://127.0.0.1:{port}/metrics"
    try:
        metrics.events({"inference": 3}, {})
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert 'driftline_events_processed_total{kind="inference"} 3.0' in body
        assert "process_resident_memory_bytes" in body
        second = IngestMetrics()
        with caplog.at_level(logging.ERROR, logger="driftline.metrics"):
            assert second.serve(settings, port) is None
        assert f"cannot listen on 127.0.0.1:{port}" in caplog.text and "--metrics-port" in caplog.text
    finally:
        metrics.close()
    assert IngestMetrics().serve(settings, 0) is None


def test_ingest_counts_consumed_as_processed_plus_deadlettered():
    metrics = IngestMetrics()
    metrics.events({"inference": 10, "label": 4}, {("inference", "json_malformed"): 2, ("label", "missing_label"): 1})
    metrics.events({"inference": 5}, {("inference", "json_malformed"): 1})
    value = metrics.registry.get_sample_value
    assert value("driftline_events_consumed_total", {"kind": "inference"}) == 18
    assert value("driftline_events_consumed_total", {"kind": "label"}) == 5
    assert value("driftline_events_processed_total", {"kind": "inference"}) == 15
    assert value("driftline_events_deadlettered_total", {"kind": "inference", "reason": "json_malformed"}) == 3
    assert value("driftline_events_deadlettered_total", {"kind": "label", "reason": "missing_label"}) == 1


def test_incident_counts_by_state():
    incidents = {"a": {"state": "open"}, "b": {"state": "open"}, "c": {"state": "resolved"}}
    registry = incident_registry(incidents, [state.value for state in State])
    counts = {state.value: registry.get_sample_value("driftline_incidents", {"state": state.value}) for state in State}
    assert counts == {"open": 2, "acknowledged": 0, "resolved": 1}


@pytest.fixture(scope="module")
def model() -> MonitoredModel:
    rng = np.random.default_rng(7)
    builder = ReferenceBuilder()
    builder.add([{name: float(value) for name, value in zip(FEATURES, row)} for row in rng.normal(size=(5000, len(FEATURES)))])
    reference = builder.build("m", "1", source="test", created_at=0.0)
    config = MonitorConfig.from_mapping({"model_id": "m", "reference": "r", "windows": {"evaluate_windows": 1, "min_count": 100}})
    return MonitoredModel(config, reference, ModelEvaluator(config, reference).layout)


def _evaluate(model: MonitoredModel, evaluator: ModelEvaluator, version: str, metrics: EvaluateMetrics, start: float) -> None:
    rng = np.random.default_rng(int(start))
    values = rng.normal(size=(2000, len(FEATURES)))
    values[:, FEATURES.index(DRIFTED)] += 1.0
    events = [{"timestamp": start, "model_version": version, "features": dict(zip(FEATURES, map(float, row)))} for row in values]
    profile = evaluator.new_profile()
    profile.update(Columns.from_events(events, FEATURES, []))
    key = WindowKey("m", version)
    evaluation = evaluator.close_window(key, start, start + 60.0, profile)
    assert evaluation is not None
    metrics.evaluations([evaluation])
    metrics.windows_closed([("m", ClosedWindow(key, start, start + 60.0, profile))], now=start + 61.0)


def _series(metrics: EvaluateMetrics, name: str) -> list[dict[str, str]]:
    return [sample.labels for family in metrics.registry.collect() for sample in family.samples if sample.name == name]


def test_per_feature_series_are_capped_and_the_drifted_feature_kept(model):
    metrics = EvaluateMetrics({"m": model}, MetricsSettings(max_features=2, max_model_versions=1))
    evaluator = model.new_evaluator()
    _evaluate(model, evaluator, "1", metrics, 0.0)

    drift = _series(metrics, "driftline_drift_statistic")
    features = {labels["feature"] for labels in drift}
    assert DRIFTED in features and len(features) == 2, features
    statistics = {labels["statistic"] for labels in drift if labels["feature"] == DRIFTED}
    assert {"js", "psi", "chi2"} <= statistics
    js = metrics.registry.get_sample_value("driftline_drift_statistic", {"model": "m", "version": "1", "feature": DRIFTED, "statistic": "js"})
    threshold = metrics.registry.get_sample_value("driftline_drift_threshold", {"model": "m", "statistic": "js"})
    assert js > threshold == 0.1
    quantiles = _series(metrics, "driftline_feature_quantile")
    assert {labels["feature"] for labels in quantiles} == {DRIFTED, *features} - {"(model)"}
    assert {labels["source"] for labels in quantiles} == {"live", "reference"}
    dropped = metrics.registry.get_sample_value("driftline_metrics_series_dropped_total", {"metric": "driftline_drift_statistic"})
    assert dropped > 0, "features beyond the cap are counted as dropped"
    assert metrics.registry.get_sample_value("driftline_windows_closed_total", {"model": "m"}) == 1
    assert metrics.registry.get_sample_value("driftline_window_close_delay_seconds_count") == 1

    # A second version evicts the first (one model version kept): no stale series stay behind.
    _evaluate(model, model.new_evaluator(), "2", metrics, 600.0)
    versions = {labels["version"] for name in ("driftline_drift_statistic", "driftline_feature_quantile") for labels in _series(metrics, name)}
    assert versions == {"2"}

    metrics.forget({"m"})
    assert _series(metrics, "driftline_drift_statistic") == [] and _series(metrics, "driftline_feature_quantile") == []


def test_join_figures_are_read_after_each_batch():
    reports = iter([
        {"join": {"m": {"joined": 5, "expired": 2}}, "join_bytes": 4096},
        {"join": {"m": {"joined": 9, "expired": 3, "evicted": 1}, "n": {"expired": 1}}, "join_bytes": 1024},
    ])
    metrics = IngestMetrics()
    metrics.watch_join(lambda: next(reports))
    value = metrics.registry.get_sample_value
    metrics.batch(10, 0.01)
    assert value("driftline_join_store_bytes") == 4096
    assert value("driftline_join_evictions_total", {"reason": "expired"}) == 2
    metrics.batch(10, 0.01)
    assert value("driftline_join_store_bytes") == 1024
    assert value("driftline_join_evictions_total", {"reason": "expired"}) == 4
    assert value("driftline_join_evictions_total", {"reason": "evicted"}) == 1
    assert value("driftline_batch_records_count") == 2


def test_performance_label_lag_and_coverage_series_follow_the_latest_windows(model):
    from detectors.performance import CoverageEvaluation, PerformanceConfig, PerformanceMonitor
    from tests.labels.test_performance_monitor import outcomes

    metrics = EvaluateMetrics({"m": model}, MetricsSettings())
    monitor = PerformanceMonitor("m", PerformanceConfig(window_labels=500, detectors=()))
    evaluations = monitor.update(outcomes(1_000, 0.2, 1, lag=30.0))
    latest = evaluations[-1]
    segment = dataclasses.replace(latest, key=WindowKey("m", "1", (("region", "eu"),)), metrics={**latest.metrics, "accuracy": 0.01})
    metrics.performance([*evaluations, segment])  # segments show in the alerts, not as series
    value = metrics.registry.get_sample_value
    accuracy = value("driftline_performance", {"model": "m", "version": "1", "metric": "accuracy"})
    assert accuracy == pytest.approx(latest.metrics["accuracy"]) and 0.7 < accuracy < 0.9
    assert value("driftline_label_lag_seconds", {"model": "m", "version": "1", "quantile": "0.5"}) == pytest.approx(30.0, rel=0.05)
    assert {series["metric"] for series in _series(metrics, "driftline_performance")} >= {"accuracy", "f1", "roc_auc", "log_loss"}
    assert all(series["version"] == "1" for series in _series(metrics, "driftline_performance"))

    metrics.performance([CoverageEvaluation(WindowKey("m", "1"), 0.0, 60.0, predicted=200, labelled=150, alerts=[])])
    assert value("driftline_label_coverage_ratio", {"model": "m", "version": "1"}) == 0.75
    assert value("driftline_performance", {"model": "m", "version": "1", "metric": "accuracy"}) == pytest.approx(accuracy)
