"""The incident service's ``/metrics`` (its web port), scraped by the real Prometheus: incidents by state."""

from __future__ import annotations

import time

import pytest
from confluent_kafka.admin import AdminClient

from stream.topics import create_topics, plan_topics
from stream.settings import TopicSettings
from tests.incidents.incident_helpers import IncidentWorker, WebhookReceiver, drift_incident, publish_alerts, resolved, write_routing
from tests.observability.prometheus_server import PrometheusServer

pytestmark = pytest.mark.integration


def _states(prometheus: PrometheusServer, selector: str) -> dict[str, int]:
    return {sample["metric"]["state"]: int(float(sample["value"][1])) for sample in prometheus.query(f"driftline_incidents{{{selector}}}")}


def _wait_for_states(prometheus: PrometheusServer, selector: str, expected: dict[str, int], worker: IncidentWorker, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while (states := _states(prometheus, selector)) != expected:
        assert time.monotonic() < deadline, f"incidents by state {states}, expected {expected}; {worker.describe()}"
        time.sleep(1.0)


def test_incident_counts_by_state_reach_prometheus(stack_settings, prometheus: PrometheusServer, unique_name, tmp_path):
    bootstrap = stack_settings.kafka_bootstrap
    topics = TopicSettings(prefix=unique_name)
    create_topics(AdminClient({"bootstrap.servers": bootstrap}), plan_topics(topics))
    receiver = WebhookReceiver()
    routing = write_routing(tmp_path / "routing.yaml", receiver, "fraud", group_wait=0.5)
    worker = IncidentWorker(bootstrap, unique_name, routing, tmp_path / "data", tmp_path / "worker.log")
    selector = f'prefix="{unique_name}"'
    targets = prometheus.register(unique_name, {f"127.0.0.1:{worker.port}": {"job": "incidents", "prefix": unique_name}})
    try:
        worker.wait_ready()
        _wait_for_states(prometheus, selector, {"open": 0, "acknowledged": 0, "resolved": 0}, worker)
        drift = drift_incident("fraud", ["amount", "age"])
        publish_alerts(bootstrap, topics.name("alerts"), drift)
        _wait_for_states(prometheus, selector, {"open": 1, "acknowledged": 0, "resolved": 0}, worker)
        publish_alerts(bootstrap, topics.name("alerts"), [resolved(alert) for alert in drift])
        _wait_for_states(prometheus, selector, {"open": 0, "acknowledged": 0, "resolved": 1}, worker)
    finally:
        targets.unlink(missing_ok=True)
        worker.stop()
        receiver.close()
