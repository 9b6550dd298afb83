"""The incident service on the real broker: grouping, dedupe, routing, retries, auto-resolve, the API and CLI.

The worker runs as a subprocess (``python -m stream.incidents``) with its own web port and
data folder; webhooks go to a local HTTP server in the test process.
"""

from __future__ import annotations

import base64
import subprocess
import sys

import jsonschema
import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

import schemas
from stream.settings import PROJECT_ROOT, TopicSettings
from stream.topics import create_topics, plan_topics
from tests.incidents.incident_helpers import (
    IncidentWorker,
    WebhookReceiver,
    drift_incident,
    make_alert,
    publish_alerts,
    resolved,
    wait_until,
    write_routing,
)
from tests.kafka_io import consume_all

DEADLETTER_SCHEMA = jsonschema.Draft202012Validator(schemas.load("deadletter"))

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver():
    receiver = WebhookReceiver(fail_first=2)
    yield receiver
    receiver.close()


def _publish_raw(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """Values keyed "fraud" outside any transaction (the fraud alerts' partition)."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for value in values:
        producer.produce(topic, key=b"fraud", value=value)
    assert producer.flush(30) == 0


def test_drift_alerts_become_one_incident_delivered_once_per_receiver(stack_settings, unique_name, tmp_path, receiver):
    bootstrap = stack_settings.kafka_bootstrap
    topics = TopicSettings(prefix=unique_name)
    create_topics(AdminClient({"bootstrap.servers": bootstrap}), plan_topics(topics))
    routing = write_routing(tmp_path / "routing.yaml", receiver, "fraud", group_wait=1.5)
    drift = drift_incident("fraud", ["amount", "age", "country", "merchant"])
    never_committed = make_alert("ghost", "amount")
    publish_alerts(bootstrap, topics.name("alerts"), drift, abort=[never_committed])
    publish_alerts(bootstrap, topics.name("alerts"), drift)  # every alert delivered twice
    invalid = {**make_alert("fraud", "amount"), "severity": "P9"}
    _publish_raw(bootstrap, topics.name("alerts"), [b'{"model_id": "fraud", "alert_id": ', orjson.dumps(invalid)])

    worker = IncidentWorker(bootstrap, unique_name, routing, tmp_path / "data", tmp_path / "worker.log")
    try:
        worker.wait_ready()
        incident_id = drift[0]["incident_id"]
        wait_until(lambda: receiver.at("/slack"), 30, worker.describe)
        detail = wait_until(lambda: (d := worker.get(f"/incidents/{incident_id}")) and d["deliveries"] and d, 10, worker.describe)

        incidents = worker.get("/incidents")["incidents"]
        assert [incident["incident_id"] for incident in incidents] == [incident_id], "one incident; the aborted alert is never read"
        assert sorted(alert["alert_id"] for alert in detail["alerts"]) == sorted(alert["alert_id"] for alert in drift)
        assert detail["state"] == "open" and detail["severity"] == "P1"
        assert detail["owners"] == ["risk-ml@example.com", "ml-team@example.com"]
        [message] = receiver.at("/slack")
        assert receiver.at("/pagerduty") == [] and receiver.at("/fallback") == [], "P1 goes to the slack route only"
        assert message.body["idempotency_key"] == message.idempotency_key
        assert "opened" in message.body["text"] and "4 firing of 4 alerts" in message.body["text"]
        [delivery] = detail["deliveries"]
        assert (delivery["outcome"], delivery["attempts"], delivery["idempotency_key"]) == ("delivered", 3, message.idempotency_key), "two 503s, then delivered"

        publish_alerts(bootstrap, topics.name("alerts"), [resolved(alert) for alert in drift] * 2)
        wait_until(lambda: len(receiver.at("/slack")) >= 2, 30, worker.describe)
        detail = worker.get(f"/incidents/{incident_id}")
        assert (detail["state"], detail["resolved_by"]) == ("resolved", "auto")
        assert {alert["status"] for alert in detail["alerts"]} == {"resolved"}
        assert "resolved" in receiver.at("/slack")[1].body["text"]
        assert len({request.idempotency_key for request in receiver.at("/slack")}) == 2

        # The firing events once more after the resolution: duplicates, so no reopening. The marker
        # behind them in the same partition (key "fraud") tells when they have been handled.
        publish_alerts(bootstrap, topics.name("alerts"), drift)
        _publish_raw(bootstrap, topics.name("alerts"), [b"marker"])
        wait_until(lambda: len(consume_all(stack_settings, topics.name("deadletter"), expected=3, timeout=2)) == 3, 30, worker.describe)
        assert worker.get(f"/incidents/{incident_id}")["state"] == "resolved"

        status, body = worker.post(f"/incidents/{incident_id}/ack", {"by": "alice"})
        assert status == 409 and body["error"] == "incident is resolved"
        assert worker.post("/incidents/0123456789abcdef0123456789abcdef/resolve", {})[0] == 404

        listed = subprocess.run(
            [sys.executable, "-m", "stream.incidents", "list", "--api", worker.api, "--json"],
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        assert [incident["incident_id"] for incident in orjson.loads(listed.stdout)] == [incident_id]
        assert len(receiver.at("/slack")) == 2, "nothing more was sent"

        deadletters = [orjson.loads(m.value()) for m in consume_all(stack_settings, topics.name("deadletter"), expected=3)]
        for record in deadletters:
            DEADLETTER_SCHEMA.validate(record)
        assert [(d["reason"], d["kind"], d["model_id"], d["source"]["topic"]) for d in deadletters] == [
            ("json_malformed", "alert", "fraud", topics.name("alerts")),
            ("invalid_alert", "alert", "fraud", topics.name("alerts")),
            ("json_malformed", "alert", None, topics.name("alerts")),
        ]
        assert base64.b64decode(deadletters[1]["original"]) == orjson.dumps(invalid)
        assert base64.b64decode(deadletters[2]["original"]) == b"marker"
        assert "severity" in deadletters[1]["message"]
        assert len({d["source"]["partition"] for d in deadletters}) == 1 and deadletters[0]["source"]["offset"] < deadletters[2]["source"]["offset"]
    finally:
        worker.stop()
