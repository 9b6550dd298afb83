"""Prometheus metrics of the driftline workers: every metric declared once, in :data:`METRICS`.

Each worker process (ingest or evaluate slot) serves its own registry at
``http://<host>:<port>/metrics`` (``MetricsSettings``; ``driftline run --metrics-port``). One port
per process rather than prometheus-client's multiprocess mode: the supervisor's children are whole
workers, each is one Prometheus target with its own ``up``, a ``kill -9``'d slot leaves no stale
files behind, and gauges need no cross-process merge rule. Under one supervisor, worker ``k`` in
(role, slot) order — ingest slots first, then evaluate — listens on ``port + k``
(:func:`worker_ports`). The incident service serves ``/metrics`` on its own web port.

Names follow Prometheus conventions: the ``driftline_`` prefix, base units (seconds, ratios), and
``_total`` counters. Workers update metrics once per committed batch, never per event.

Cardinality is bounded. Labels take values from closed sets (reason codes, kinds, severities,
statistics, quantiles, configured models) except ``version`` and ``feature``:

- per (model, version) at most ``max_features`` features get per-feature series: those nearest to
  alerting (largest value / threshold over their tests) in the latest evaluation;
- at most ``max_model_versions`` (model, version) pairs keep series; the least recently evaluated
  pair's series are removed when a new one arrives;
- only whole-traffic windows get per-feature series (segments show in the alerts, not here);
- predicted classes: at most ``MAX_CLASSES`` (the most frequent), the rest as ``(other)``.

Every series left out by a cap counts in ``driftline_metrics_series_dropped_total``. Per-feature
series are therefore at most ``max_model_versions x max_features x`` (statistics + quality checks
+ quantiles). ``python -m stream.metrics`` prints the metric table of README.md (a test keeps it
current).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import Counter as Tally
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from detectors.evaluator import Evaluation
from detectors.performance import CoverageEvaluation, PerformanceEvaluation
from detectors.policy import DEFAULT_THRESHOLDS, TestResult
from detectors.profile import WindowProfile
from detectors.windows import ClosedWindow
from stream.models import MonitoredModel
from stream.settings import MetricsSettings

log = logging.getLogger("driftline.metrics")
disable_created_metrics()  # a ``_created`` series per counter series doubles the cardinality, and nothing reads them

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
"""Quantiles of feature values and prediction scores."""
LATENCY_QUANTILES = (0.5, 0.95, 0.99)
LAG_QUANTILES = (("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99"))
"""Label-lag quantile labels and the ``LabelLagSketch.query`` fields they show."""
MAX_CLASSES = 20
"""Most predicted classes with their own ``class`` label per model version."""
OTHER = "(other)"
DRIFT_STATISTICS = ("js", "psi", "hellinger", "chi2", "ks", "wasserstein", "js_previous")
"""Statistics of ``Evaluation.statistics`` exported as ``driftline_drift_statistic``."""
P_VALUES = {"chi2_p_value": "chi2", "ks_p_value": "ks"}
"""``Evaluation.statistics`` entries exported as ``driftline_drift_p_value``, by test."""
ROLES = ("ingest", "evaluate", "incidents")
RECORD_BUCKETS = (1, 10, 50, 100, 500, 1_000, 2_000, 5_000, 10_000, 20_000)
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DELAY_BUCKETS = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """One metric: its name (as scraped), type, labels, the roles that serve it, and its help."""

    name: str
    type: str
    labels: tuple[str, ...]
    roles: tuple[str, ...]
    help: str
    buckets: tuple[float, ...] = ()
    collected: bool = False
    """Produced at scrape time by a collector of its own, not updated by the worker."""

    def create(self, registry: CollectorRegistry) -> Counter | Gauge | Histogram:
        if self.type == "counter":
            return Counter(self.name.removesuffix("_total"), self.help, self.labels, registry=registry)
        if self.type == "gauge":
            return Gauge(self.name, self.help, self.labels, registry=registry)
        return Histogram(self.name, self.help, self.labels, registry=registry, buckets=self.buckets)


WORKERS = ("ingest", "evaluate")
METRICS: tuple[MetricSpec, ...] = (
    # Both workers: batches, transactions, lag.
    MetricSpec("driftline_batch_records", "histogram", (), WORKERS, "Records per committed batch.", RECORD_BUCKETS),
    MetricSpec("driftline_batch_duration_seconds", "histogram", (), WORKERS,
               "Processing time of a committed batch, from consume to commit.", SECONDS_BUCKETS),
    MetricSpec("driftline_transaction_commit_duration_seconds", "histogram", (), WORKERS,
               "Time to publish a batch's outputs and commit its Kafka transaction.", SECONDS_BUCKETS),
    MetricSpec("driftline_transactions_aborted_total", "counter", (), WORKERS, "Kafka transactions aborted (the batch is re-read)."),
    MetricSpec("driftline_consumer_lag_records", "gauge", ("topic", "partition"), WORKERS,
               "Records between the consumer's position and the partition's high watermark (assigned partitions)."),
    # Ingest.
    MetricSpec("driftline_events_consumed_total", "counter", ("kind",), ("ingest",), "Events consumed and committed (inference or label)."),
    MetricSpec("driftline_events_processed_total", "counter", ("kind",), ("ingest",), "Events accepted and handed on."),
    MetricSpec("driftline_events_deadlettered_total", "counter", ("kind", "reason"), ("ingest",),
               "Events dead-lettered, by reason code (docs/contract.md)."),
    MetricSpec("driftline_join_store_bytes", "gauge", (), ("ingest",),
               "Memory of the predictions and labels waiting in the label join store (its size cap applies to it)."),
    MetricSpec("driftline_join_evictions_total", "counter", ("reason",), ("ingest",),
               "Join store entries dropped unjoined: expired (TTL passed) or evicted (size cap).", collected=True),
    # Evaluate: windows.
    MetricSpec("driftline_windows_closed_total", "counter", ("model",), ("evaluate",), "Whole-traffic base windows closed and evaluated."),
    MetricSpec("driftline_window_close_delay_seconds", "histogram", (), ("evaluate",),
               "Wall-clock time from a base window's end (event time) to its close.", DELAY_BUCKETS),
    MetricSpec("driftline_late_events_total", "counter", ("model",), ("evaluate",),
               "Events that arrived after their window closed, over all source partitions.", collected=True),
    MetricSpec("driftline_evaluations_total", "counter", ("model",), ("evaluate",), "Whole-traffic evaluation windows tested."),
    MetricSpec("driftline_evaluation_window_events", "gauge", ("model", "version"), ("evaluate",),
               "Events in the latest evaluation window."),
    # Evaluate: statistics of the latest evaluation (capped, see the module docs).
    MetricSpec("driftline_drift_statistic", "gauge", ("model", "version", "feature", "statistic"), ("evaluate",),
               "Drift statistic of the latest evaluation vs the reference (js_previous: vs the previous window); "
               "features score/class are the prediction outputs."),
    MetricSpec("driftline_drift_p_value", "gauge", ("model", "version", "feature", "test"), ("evaluate",),
               "p-value of the latest evaluation's drift test (chi2 on the reference bins, ks)."),
    MetricSpec("driftline_drift_threshold", "gauge", ("model", "statistic"), ("evaluate",),
               "Effect-size threshold of a drift statistic (alerting also needs significance and persistence)."),
    MetricSpec("driftline_data_quality_rate", "gauge", ("model", "version", "feature", "check"), ("evaluate",),
               "Data-quality rate of the latest evaluation (check: null_rate, type_error_rate, out_of_range_rate, sentinel_rate, "
               "unseen_rate, missing_rate; error_rate and unknown_feature_rate with feature (model))."),
    MetricSpec("driftline_data_quality_threshold", "gauge", ("model", "check"), ("evaluate",),
               "Alerting threshold of a data-quality check: the increase of its rate over the reference's "
               "(latency_p99_ratio: a multiple of the reference p99)."),
    MetricSpec("driftline_feature_quantile", "gauge", ("model", "version", "feature", "quantile", "source"), ("evaluate",),
               "Quantile of a numeric feature: source live (latest base window) or reference."),
    MetricSpec("driftline_prediction_score", "gauge", ("model", "version", "quantile"), ("evaluate",),
               "Quantile of the prediction score in the latest base window."),
    MetricSpec("driftline_prediction_class_ratio", "gauge", ("model", "version", "class"), ("evaluate",),
               "Share of each predicted class in the latest base window."),
    MetricSpec("driftline_latency_seconds", "gauge", ("model", "version", "quantile"), ("evaluate",),
               "Model latency quantile (p50/p95/p99) from the events' latency_ms, latest base window."),
    MetricSpec("driftline_alerts_total", "counter", ("model", "kind", "severity", "status"), ("evaluate",),
               "Alert events published, by status (firing, resolved)."),
    MetricSpec("driftline_label_coverage_ratio", "gauge", ("model", "version"), ("evaluate",),
               "Share of the latest evaluation window's predictions that have a label."),
    MetricSpec("driftline_label_lag_seconds", "gauge", ("model", "version", "quantile"), ("evaluate",),
               "Time from prediction to label, latest evaluation window."),
    MetricSpec("driftline_performance", "gauge", ("model", "version", "metric"), ("evaluate",),
               "Live performance metric of the latest evaluation window (accuracy, f1, auc, mae, ...)."),
    MetricSpec("driftline_metrics_series_dropped_total", "counter", ("metric",), ("evaluate",),
               "Series left out by the cardinality caps (features per model version, model versions, classes)."),
    # Incident service.
    MetricSpec("driftline_incidents", "gauge", ("state",), ("incidents",),
               "Incidents by state (open, acknowledged, resolved) in the partitions this worker owns.", collected=True),
)  # fmt: skip
"""Every metric driftline exports (besides the client's standard ``process_*`` metrics)."""

_SPECS = {spec.name: spec for spec in METRICS}


def markdown_table() -> str:
    """The metric table of README.md, one row per metric in declaration order."""
    rows = ["| metric | type | labels | served by | meaning |", "| --- | --- | --- | --- | --- |"]
    rows += [
        f"| `{spec.name}` | {spec.type} | {', '.join(f'`{label}`' for label in spec.labels) or '–'} | {', '.join(spec.roles)} | {spec.help} |"
        for spec in METRICS
    ]
    return "\n".join(rows) + "\n"


def worker_ports(roles: Iterable[str], workers: int, base: int) -> dict[tuple[str, int], int]:
    """The metrics port of each (role, slot) under one supervisor: ``base + k`` in (role, slot) order.

    >>> worker_ports(("ingest", "evaluate"), 2, 9400)
    {('ingest', 0): 9400, ('ingest', 1): 9401, ('evaluate', 0): 9402, ('evaluate', 1): 9403}
    """
    slots = [(role, slot) for role in roles for slot in range(workers)]
    return {slot: base + index for index, slot in enumerate(slots)}


class WorkerMetrics:
    """The metrics of one worker process of ``role``: the batch figures every worker has, and the server."""

    def __init__(self, role: str) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self._metrics = {spec.name: spec.create(self.registry) for spec in METRICS if role in spec.roles and not spec.collected}
        self._lag_series: set[tuple[str, str]] = set()
        self._server: Any = None

    def __getitem__(self, name: str) -> Any:
        return self._metrics[name]

    def serve(self, settings: MetricsSettings, port: int) -> str | None:
        """Serve ``/metrics`` on ``port`` (0: not at all); returns the address, None if not served.

        A taken port is logged, not fatal: metrics are for inspection and must not stop the data path.
        """
        if port == 0:
            return None
        try:
            self._server, _ = start_http_server(port, settings.host, registry=self.registry)
        except OSError as exc:
            log.error(
                "metrics not served: cannot listen on %s:%d (%s); choose another port with --metrics-port or DRIFTLINE_METRICS_PORT",
                settings.host, port, exc.strerror,
            )  # fmt: skip
            return None
        return f"http://{settings.host}:{port}/metrics"

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def batch(self, records: int, seconds: float) -> None:
        """A committed batch of ``records`` input records that took ``seconds`` from consume to commit."""
        self["driftline_batch_records"].observe(records)
        self["driftline_batch_duration_seconds"].observe(seconds)

    def transaction(self, seconds: float, committed: bool) -> None:
        self["driftline_transaction_commit_duration_seconds"].observe(seconds)
        if not committed:
            self["driftline_transactions_aborted_total"].inc()

    def consumer_lag(self, lag_by_partition: Mapping[str, int]) -> None:
        """Lag of every assigned partition, ``{"topic[partition]": records}`` (``stream.heartbeat.consumer_lag``)."""
        gauge, current = self["driftline_consumer_lag_records"], set()
        for name, lag in lag_by_partition.items():
            topic, partition = name.removesuffix("]").rsplit("[", 1)
            gauge.labels(topic, partition).set(lag)
            current.add((topic, partition))
        for labels in self._lag_series - current:  # revoked: another worker reports it now
            gauge.remove(*labels)
        self._lag_series = current


class IngestMetrics(WorkerMetrics):
    """An ingest worker's metrics.

    >>> metrics = IngestMetrics()
    >>> metrics.events({"inference": 98}, {("inference", "json_malformed"): 2})
    >>> metrics.registry.get_sample_value("driftline_events_consumed_total", {"kind": "inference"})
    100.0
    """

    def __init__(self) -> None:
        super().__init__("ingest")
        self._evictions = _Cumulative("driftline_join_evictions_total")
        self.registry.register(self._evictions)
        self._join_report: Callable[[], Mapping[str, Any]] | None = None

    def watch_join(self, report: Callable[[], Mapping[str, Any]]) -> None:
        """Read the label join's figures (``stream.join.LabelJoin.report``) after every committed batch."""
        self._join_report = report

    def batch(self, records: int, seconds: float) -> None:
        super().batch(records, seconds)
        if self._join_report is not None:
            report = self._join_report()
            self["driftline_join_store_bytes"].set(report["join_bytes"])
            evictions: Tally[str] = Tally()
            for counts in report["join"].values():
                evictions.update({reason: counts.get(reason, 0) for reason in ("expired", "evicted")})
            self._evictions.totals = {(reason,): total for reason, total in evictions.items()}

    def events(self, processed: Mapping[str, int], deadlettered: Mapping[tuple[str, Any], int]) -> None:
        """Counts of one committed batch: accepted events by kind, rejected ones by (kind, reason)."""
        consumed: Tally[str] = Tally(processed)
        for (kind, reason), count in deadlettered.items():
            self["driftline_events_deadlettered_total"].labels(kind, str(reason)).inc(count)
            consumed[kind] += count
        for kind, count in processed.items():
            self["driftline_events_processed_total"].labels(kind).inc(count)
        for kind, count in consumed.items():
            self["driftline_events_consumed_total"].labels(kind).inc(count)


class _CappedSeries:
    """Series replaced as a group per key, for at most ``max_keys`` keys (least recently updated go first)."""

    def __init__(self, metrics: WorkerMetrics, max_keys: int) -> None:
        self._metrics = metrics
        self._max_keys = max_keys
        self._series: OrderedDict[tuple, dict[str, set[tuple[str, ...]]]] = OrderedDict()
        self._children: dict[str, dict[tuple[str, ...], Any]] = {}
        """Per metric, the child of each labels tuple set: ``labels()`` validates on every call, a dict lookup does not."""

    def replace(self, key: tuple, samples: Mapping[str, Mapping[tuple[str, ...], float]]) -> None:
        """Set ``samples`` (metric name -> labels -> value) as ``key``'s series; remove its others."""
        previous = self._series.pop(key, {})
        for name, values in samples.items():
            gauge, children = self._metrics[name], self._children.setdefault(name, {})
            for labels, value in values.items():
                child = children.get(labels)
                if child is None:
                    child = children[labels] = gauge.labels(*labels)
                child.set(value)
        self._remove(previous, samples)
        self._series[key] = {name: set(values) for name, values in samples.items()}
        while len(self._series) > self._max_keys:
            _, evicted = self._series.popitem(last=False)
            self._remove(evicted, {})
            for name, labels in evicted.items():
                self._metrics["driftline_metrics_series_dropped_total"].labels(name).inc(len(labels))

    def __contains__(self, key: tuple) -> bool:
        return key in self._series

    def forget(self, model_ids: set[str]) -> None:
        """Remove the series of these models (keys are ``(group, model_id, version)``)."""
        for key in [key for key in self._series if key[1] in model_ids]:
            self._remove(self._series.pop(key), {})

    def _remove(self, series: Mapping[str, set[tuple[str, ...]]], keep: Mapping[str, Mapping[tuple[str, ...], float]]) -> None:
        for name, labels in series.items():
            for stale in labels - set(keep.get(name, {})):
                self._metrics[name].remove(*stale)
                self._children[name].pop(stale, None)


class EvaluateMetrics(WorkerMetrics):
    """An evaluate worker's metrics for the models in ``models``."""

    def __init__(self, models: Mapping[str, MonitoredModel], settings: MetricsSettings) -> None:
        super().__init__("evaluate")
        self.models = models
        self.max_features = settings.max_features
        self._evaluations = _CappedSeries(self, settings.max_model_versions)
        self._windows = _CappedSeries(self, settings.max_model_versions)
        self._performance = _CappedSeries(self, settings.max_model_versions)
        self._features: dict[tuple[str, str], list[str]] = {}
        """Features with series per (model, version): the latest evaluation's nearest to alerting."""
        self._reference_quantiles: dict[tuple[str, str], np.ndarray] = {}
        self._late = _Cumulative("driftline_late_events_total")
        self.registry.register(self._late)
        for model_id, model in models.items():
            policy = model.config.policy
            for statistic in {*DEFAULT_THRESHOLDS, *policy.thresholds}:
                self["driftline_drift_threshold"].labels(model_id, statistic).set(policy.thresholds.get(statistic, DEFAULT_THRESHOLDS.get(statistic)))
            for check, threshold in model.config.quality_thresholds.items():
                self["driftline_data_quality_threshold"].labels(model_id, check).set(threshold)

    def forget(self, model_ids: set[str]) -> None:
        """Models this worker no longer owns: their latest figures are now the new owner's to report."""
        for series in (self._evaluations, self._windows, self._performance):
            series.forget(model_ids)
        self._features = {key: features for key, features in self._features.items() if key[0] not in model_ids}

    def late_events(self, totals: Mapping[str, int]) -> None:
        """Late events so far per model (cumulative over source partitions, as committed)."""
        self._late.totals = {(model_id,): total for model_id, total in totals.items()}

    def windows_closed(self, windows: Iterable[tuple[str, ClosedWindow]], now: float) -> None:
        """Base windows closed in a committed batch (wall-clock ``now``): counts, delay, window figures."""
        for model_id, window in windows:
            if window.key.segment:
                continue
            self["driftline_windows_closed_total"].labels(model_id).inc()
            self["driftline_window_close_delay_seconds"].observe(max(now - window.end, 0.0))
            self._window_figures(model_id, window.key.model_version, window.profile)

    def evaluations(self, evaluations: Iterable[Evaluation]) -> None:
        """Evaluations and alerts of a committed batch."""
        for evaluation in evaluations:
            model_id = evaluation.key.model_id
            for alert in evaluation.alerts:
                self["driftline_alerts_total"].labels(model_id, alert["kind"], alert["severity"], alert["status"]).inc()
            if evaluation.key.segment or model_id not in self.models:
                continue
            self["driftline_evaluations_total"].labels(model_id).inc()
            self._evaluation_figures(evaluation)

    def _evaluation_figures(self, evaluation: Evaluation) -> None:
        model_id, version = evaluation.key.model_id, evaluation.key.model_version
        features = self._nearest_to_alerting(evaluation.results, self.models[model_id])
        self._features[(model_id, version)] = [name for name in features if name != "(model)"]
        drift: dict[tuple[str, ...], float] = {}
        p_values: dict[tuple[str, ...], float] = {}
        quality: dict[tuple[str, ...], float] = {}
        left_out: Tally[str] = Tally()
        for feature, entry in evaluation.statistics.items():
            for statistic, value in entry.items():
                if not math.isfinite(value):
                    continue
                if statistic in DRIFT_STATISTICS:
                    name, labels, series = "driftline_drift_statistic", (model_id, version, feature, statistic), drift
                elif statistic in P_VALUES:
                    name, labels, series = "driftline_drift_p_value", (model_id, version, feature, P_VALUES[statistic]), p_values
                elif statistic.endswith("_rate"):
                    name, labels, series = "driftline_data_quality_rate", (model_id, version, feature, statistic), quality
                else:
                    continue
                if feature in features:
                    series[labels] = value
                else:
                    left_out[name] += 1
        for name, count in left_out.items():
            self["driftline_metrics_series_dropped_total"].labels(name).inc(count)
        self._evaluations.replace(
            ("evaluation", model_id, version),
            {
                "driftline_drift_statistic": drift,
                "driftline_drift_p_value": p_values,
                "driftline_data_quality_rate": quality,
                "driftline_evaluation_window_events": {(model_id, version): float(evaluation.event_count)},
            },
        )
        self._features = {key: names for key, names in self._features.items() if ("evaluation", *key) in self._evaluations}

    def _nearest_to_alerting(self, results: list[TestResult], model: MonitoredModel) -> set[str]:
        """The ``max_features`` features (and ``(model)``) whose tests are nearest to their thresholds."""
        ratios: dict[str, float] = {}
        for result in results:
            feature = result.feature or "(model)"
            ratio = result.value / model.config.policy.threshold_for(result)
            ratios[feature] = max(ratios.get(feature, -math.inf), ratio)
        ranked = sorted(ratios, key=lambda name: (-ratios[name], name))
        return {"(model)", *[name for name in ranked if name != "(model)"][: self.max_features]}

    def _window_figures(self, model_id: str, version: str, profile: WindowProfile) -> None:
        model = self.models.get(model_id)
        if model is None:
            return
        reference = model.reference.profile
        quantiles: dict[tuple[str, ...], float] = {}
        features = self._features.get((model_id, version)) or list(profile.numeric)[: self.max_features]
        for feature in features:
            live = profile.numeric.get(feature)
            if live is None or live.valid_count == 0:
                continue
            if (model_id, feature) not in self._reference_quantiles:
                self._reference_quantiles[(model_id, feature)] = reference.numeric[feature].quantiles(QUANTILES)
            for source, values in (("live", live.quantiles(QUANTILES)), ("reference", self._reference_quantiles[(model_id, feature)])):
                for rank, value in zip(QUANTILES, values):
                    quantiles[(model_id, version, feature, str(rank), source)] = float(value)
        scores: dict[tuple[str, ...], float] = {}
        if profile.score is not None and profile.score.valid_count:
            scores = {(model_id, version, str(rank)): float(value) for rank, value in zip(QUANTILES, profile.score.quantiles(QUANTILES))}
        latency: dict[tuple[str, ...], float] = {}
        if profile.latency.count:
            values = profile.latency.quantiles(LATENCY_QUANTILES) / 1000.0
            latency = {(model_id, version, str(rank)): float(value) for rank, value in zip(LATENCY_QUANTILES, values)}
        self._windows.replace(
            ("window", model_id, version),
            {
                "driftline_feature_quantile": quantiles,
                "driftline_prediction_score": scores,
                "driftline_prediction_class_ratio": self._class_ratios(model_id, version, profile),
                "driftline_latency_seconds": latency,
            },
        )

    def _class_ratios(self, model_id: str, version: str, profile: WindowProfile) -> dict[tuple[str, ...], float]:
        sketch = profile.predicted_class
        if sketch is None or sketch.valid_count == 0:
            return {}
        counts = sketch.counts
        names = [*sketch.categories, "(unseen)"]
        order = np.argsort(-counts, kind="stable")
        ratios = counts / counts.sum()
        kept = {(model_id, version, names[index]): float(ratios[index]) for index in order[:MAX_CLASSES]}
        if counts.size > MAX_CLASSES:
            kept[(model_id, version, OTHER)] = float(ratios[order[MAX_CLASSES:]].sum())
            self["driftline_metrics_series_dropped_total"].labels("driftline_prediction_class_ratio").inc(counts.size - MAX_CLASSES)
        return kept

    def performance(self, evaluations: Iterable[PerformanceEvaluation | CoverageEvaluation]) -> None:
        """Live performance of the latest labelled window and label coverage of the latest judged
        prediction window, per model version (whole traffic; segments show in the alerts)."""
        for evaluation in evaluations:
            key = evaluation.key
            if key.segment:
                continue
            model_id, version = key.model_id, key.model_version
            if isinstance(evaluation, CoverageEvaluation):
                if math.isfinite(evaluation.coverage):
                    self._performance.replace(
                        ("coverage", model_id, version), {"driftline_label_coverage_ratio": {(model_id, version): evaluation.coverage}}
                    )
                continue
            lag = evaluation.metrics.get("label_lag", {})
            self._performance.replace(
                ("performance", model_id, version),
                {
                    "driftline_performance": {
                        (model_id, version, name): float(value) for name, value in evaluation.metrics.items()
                        if isinstance(value, (int, float)) and name != "count" and math.isfinite(value)
                    },
                    "driftline_label_lag_seconds": {
                        (model_id, version, quantile): lag[name] for quantile, name in LAG_QUANTILES
                        if isinstance(lag.get(name), (int, float)) and math.isfinite(lag[name])
                    },
                },
            )  # fmt: skip


class _Cumulative(Collector):
    """A counter whose totals come from the worker's committed state (``totals``: label values -> count),
    so a restarted worker goes on from them instead of from zero."""

    def __init__(self, name: str) -> None:
        self.spec = _SPECS[name]
        self.totals: dict[tuple[str, ...], float] = {}

    def collect(self) -> Iterable[Any]:
        family = CounterMetricFamily(self.spec.name.removesuffix("_total"), self.spec.help, labels=self.spec.labels)
        for labels, total in sorted(self.totals.items()):  # the worker replaces the dict, never mutates it
            family.add_metric(list(labels), total)
        yield family


class IncidentCounts(Collector):
    """``driftline_incidents`` of an incident service, counted from its incidents table at scrape time."""

    def __init__(self, incidents: Mapping[str, Mapping[str, Any]], states: Iterable[str]) -> None:
        self.incidents = incidents
        self.states = tuple(states)

    def collect(self) -> Iterable[Any]:
        spec = _SPECS["driftline_incidents"]
        counts = Tally(raw["state"] for raw in list(self.incidents.values()))
        family = GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)
        for state in self.states:
            family.add_metric([state], counts.get(state, 0))
        yield family


def incident_registry(incidents: Mapping[str, Mapping[str, Any]], states: Iterable[str]) -> CollectorRegistry:
    """The registry an incident service serves: ``driftline_incidents`` from its table, and ``process_*``."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    registry.register(IncidentCounts(incidents, states))
    return registry


def serve_incident_metrics(app: Any, incidents: Mapping[str, Mapping[str, Any]], states: Iterable[str]) -> None:
    """``GET /metrics`` on a faust app's web port: :func:`incident_registry` of its incidents table."""
    from faust import web  # here, not at the top: the ingest and evaluate workers never load faust

    registry = incident_registry(incidents, states)

    @app.page("/metrics")
    class Metrics(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return self.bytes(generate_latest(registry), content_type="text/plain; version=0.0.4")


if __name__ == "__main__":
    print(markdown_table(), end="")
