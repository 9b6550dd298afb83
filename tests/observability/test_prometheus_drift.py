"""A drift scenario through ``driftline run``, observed only through a real Prometheus' query API.

The pipeline harness's 30,000 events (an abrupt 1 sd shift of num_01 after 12,000, 1 % malformed)
go through the supervisor (``--role all``, ingest and evaluate as child processes, metrics on
``--metrics-port`` and the next port). Prometheus scrapes both every second; the test asserts what
an on-call engineer would look at: the drifted feature's statistic above its threshold, the alert
counter equal to the alerts on the topic, exact event and dead-letter counts, and that every
expression of the Grafana dashboards evaluates.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

import pytest

from stream.settings import PROJECT_ROOT
from tests.observability.dashboards import dashboard_expressions, substitute_variables
from tests.observability.prometheus_server import PrometheusServer, free_ports
from tests.pipeline.harness import EVENTS, IDLE_SECONDS, MODEL, Pipeline

pytestmark = pytest.mark.integration

DRIFTED = "num_01"
SCRAPED_TIMEOUT = 90.0
NOT_IN_THIS_SCENARIO = ("driftline_join_", "driftline_label_", "driftline_performance", "driftline_incidents", "driftline_transactions_aborted")
"""Metrics this scenario does not produce (no labels, no incident service, no aborted transaction)."""


def _wait_for(prometheus: PrometheusServer, expression: str, check, what: str, timeout: float = SCRAPED_TIMEOUT) -> list[dict]:
    """Query until ``check(result)`` holds; the last result is in the failure message."""
    deadline = time.monotonic() + timeout
    while True:
        result = prometheus.query(expression)
        if check(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}; {expression} gave {result}")
        time.sleep(1.0)


def _by(result: list[dict], *labels: str) -> Counter:
    return Counter({tuple(sample["metric"].get(label, "") for label in labels): round(float(sample["value"][1])) for sample in result})


def test_drift_shows_in_prometheus(stack_settings, prometheus: PrometheusServer, unique_name, tmp_path):
    pipeline = Pipeline(stack_settings, unique_name, tmp_path)
    base = free_ports(2)
    selector = f'prefix="{pipeline.topics.prefix}"'
    targets = prometheus.register(
        unique_name,
        {
            f"127.0.0.1:{base}": {"job": "ingest", "slot": "0", "prefix": pipeline.topics.prefix},
            f"127.0.0.1:{base + 1}": {"job": "evaluate", "slot": "0", "prefix": pipeline.topics.prefix},
        },
    )
    env = {**os.environ, "DRIFTLINE_KAFKA": stack_settings.kafka_bootstrap, "DRIFTLINE_REDIS": stack_settings.redis_url}
    env.pop("DRIFTLINE_INCIDENTS_ROUTING", None)
    command = [
        sys.executable, "-m", "stream", "run", "--role=all", f"--config={pipeline.config_path}", f"--prefix={pipeline.topics.prefix}",
        f"--idle-seconds={IDLE_SECONDS}", f"--metrics-port={base}",
    ]  # fmt: skip
    pipeline.workers[("all", 0)] = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(prometheus, f'up{{{selector}}} == 1', lambda result: len(result) == 2, "both workers are scraped")
        pipeline.produce()
        pipeline.wait_evaluated()
        expected_alerts, expected_reasons, accepted = pipeline.replay()
        alerts = pipeline.alerts(expected=len(expected_alerts))

        # The drifted feature's statistic crossed its threshold (the primary statistic, js).
        crossed = _wait_for(
            prometheus,
            f'max_over_time(driftline_drift_statistic{{{selector},model="{MODEL}",feature="{DRIFTED}",statistic="js"}}[10m])'
            f' > on(model, statistic) group_left max by (model, statistic) (driftline_drift_threshold{{{selector}}})',
            lambda result: len(result) >= 1,
            f"js of {DRIFTED} above its threshold",
        )
        assert {sample["metric"]["feature"] for sample in crossed} == {DRIFTED}
        steady = prometheus.query(
            f'driftline_drift_statistic{{{selector},feature!="{DRIFTED}",statistic="js"}}'
            f' > on(model, statistic) group_left max by (model, statistic) (driftline_drift_threshold{{{selector}}})'
        )
        assert {sample["metric"]["feature"] for sample in steady} <= {"score", "class"}, "only the outputs of the shifted input may drift too"

        # The alert counter moved exactly as the alerts topic did.
        published = Counter((alert["kind"], alert["status"]) for alert in alerts)
        assert published[("data_drift", "firing")] >= 1
        _wait_for(
            prometheus, f"sum by (kind, status) (driftline_alerts_total{{{selector}}})",
            lambda result: _by(result, "kind", "status") == published, f"alert counters equal the alerts published {dict(published)}",
        )  # fmt: skip

        # Every consumed event is counted once: processed or dead-lettered by reason.
        _wait_for(
            prometheus, f'sum(driftline_events_consumed_total{{{selector},kind="inference"}})',
            lambda result: _by(result) == Counter({(): EVENTS}), f"{EVENTS} events consumed",
        )  # fmt: skip
        _wait_for(
            prometheus, f'sum(driftline_events_processed_total{{{selector}}})',
            lambda result: _by(result) == Counter({(): accepted}), f"{accepted} events processed",
        )  # fmt: skip
        _wait_for(
            prometheus, f"sum by (reason) (driftline_events_deadlettered_total{{{selector}}})",
            lambda result: _by(result, "reason") == Counter({(reason,): count for reason, count in expected_reasons.items()}),
            f"dead letters by reason {dict(expected_reasons)}",
        )

        # Every dashboard expression evaluates; those over metrics this scenario produces return data.
        empty = []
        for dashboard, title, expression in dashboard_expressions():
            result = prometheus.query(substitute_variables(expression, model=MODEL, feature=DRIFTED))
            if not result and not any(name in expression for name in NOT_IN_THIS_SCENARIO):
                empty.append(f"{dashboard} / {title}: {expression}")
        assert not empty, "dashboard expressions without data:\n" + "\n".join(empty)
    finally:
        targets.unlink(missing_ok=True)
        pipeline.stop_all()
