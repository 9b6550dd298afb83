"""Retention on the real broker: settled incidents, their dedupe keys and delivery-log entries are deleted,
and re-delivered records older than the retention are ignored (so dedupe still holds for them).

The service creates its own topics here (only alerts and dead-letter exist), the other path of
test_incidents_topics.py.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from stream.incidents.delivery import DeliveryRequest
from stream.settings import TopicSettings
from stream.topics import create_topics, plan_topics
from tests.incidents.incident_helpers import IncidentWorker, WebhookReceiver, drift_incident, publish_alerts, resolved, wait_until, write_routing

pytestmark = pytest.mark.integration

RETENTION = 10.0  # long enough for a busy 2-core machine to handle the first alerts within it


def test_settled_incidents_are_forgotten_after_the_retention_and_old_redeliveries_stay_ignored(stack_settings, unique_name, tmp_path):
    bootstrap = stack_settings.kafka_bootstrap
    topics = TopicSettings(prefix=unique_name)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    create_topics(admin, [plan for plan in plan_topics(topics) if plan.role.role in ("alerts", "deadletter")])
    receiver = WebhookReceiver()
    routing = write_routing(tmp_path / "routing.yaml", receiver, "fraud", group_wait=0.5, reopen_within=RETENTION, retention=RETENTION)
    worker = IncidentWorker(bootstrap, unique_name, routing, tmp_path / "data", tmp_path / "worker.log")
    try:
        worker.wait_ready()
        wait_until(lambda: "Worker ready" in worker.log_path.read_text(), 60, worker.describe)  # consuming: the next alerts are handled at once
        firing = drift_incident("fraud", ["amount", "age"])
        incident_id = firing[0]["incident_id"]
        published_ms = int(time.time() * 1000)
        publish_alerts(bootstrap, topics.name("alerts"), firing, timestamp_ms=published_ms)
        wait_until(lambda: receiver.at("/slack"), 30, worker.describe)
        publish_alerts(bootstrap, topics.name("alerts"), [resolved(alert) for alert in firing], timestamp_ms=published_ms + 1)
        wait_until(lambda: len(receiver.at("/slack")) == 2, 30, worker.describe)
        assert worker.get(f"/incidents/{incident_id}")["state"] == "resolved"
        assert len(worker.get("/deliveries")["deliveries"]) == 2

        # Forgotten once settled for the retention: the incident and its delivery-log entries.
        wait_until(lambda: worker.get("/incidents")["incidents"] == [] and worker.get("/deliveries")["deliveries"] == [], 60, worker.describe)
        assert worker.get(f"/incidents/{incident_id}") is None, "404 now"

        # A re-delivery as after an offset reset: the same records, with their old timestamps, are ignored.
        publish_alerts(bootstrap, topics.name("alerts"), firing, timestamp_ms=published_ms)
        publish_alerts(bootstrap, topics.name("alerts"), [resolved(alert) for alert in firing], timestamp_ms=published_ms + 1)
        old_request = DeliveryRequest(
            idempotency_key="0" * 32, receiver="ml-slack", receiver_type="slack", url=f"{receiver.url}/slack", body={"text": "stale"},
            incident_ids=[incident_id], announcement="opened", suppressed=None, requested_at=published_ms / 1000,
        )  # fmt: skip
        producer = Producer({"bootstrap.servers": bootstrap})
        producer.produce(topics.name("incident-deliveries"), key=old_request.idempotency_key.encode(), value=old_request.to_bytes(), partition=0)
        assert producer.flush(30) == 0

        # The first alert published anew (fresh timestamp) is new to the service: its dedupe keys are gone.
        # Behind the re-deliveries in the same partition, it also tells when they have been handled.
        publish_alerts(bootstrap, topics.name("alerts"), firing[:1])
        detail = wait_until(lambda: worker.get(f"/incidents/{incident_id}"), 30, worker.describe)
        assert detail["state"] == "open" and [alert["alert_id"] for alert in detail["alerts"]] == [firing[0]["alert_id"]], (
            "the old re-delivered events changed nothing"
        )
        wait_until(lambda: len(receiver.at("/slack")) == 3, 30, worker.describe)
        time.sleep(2)  # the stale delivery request, if it were sent, would have arrived by now
        texts = [request.body["text"] for request in receiver.at("/slack")]
        assert len(texts) == 3 and "stale" not in texts, f"only the new incident was announced: {texts}"
        assert "incident opened (1 firing of 1 alerts)" in texts[2]
        assert "beyond the retention: ignored" in worker.log_path.read_text()
    finally:
        worker.stop()
        receiver.close()
