"""Timer-driven behaviour on the real broker: P0 escalation (and none once acknowledged), P2 digests, silences."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from confluent_kafka.admin import AdminClient

from stream.settings import PROJECT_ROOT, TopicSettings
from stream.topics import create_topics, plan_topics
from tests.incidents.incident_helpers import (
    IncidentWorker,
    WebhookReceiver,
    drift_incident,
    make_alert,
    publish_alerts,
    wait_until,
    write_routing,
)

pytestmark = pytest.mark.integration

ESCALATE_AFTER = 10.0  # the `driftline incidents ack` subprocess must get there first, on a busy 2-core machine too
DIGEST_INTERVAL = 4.0


@pytest.fixture
def receiver():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


def _cli(worker: IncidentWorker, *args: str) -> str:
    """``driftline incidents <args>`` against the worker's API."""
    done = subprocess.run(
        [sys.executable, "-m", "stream.incidents", *args, "--api", worker.api], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _incident_ids(requests) -> list[str]:
    return [request.body["dedup_key"] for request in requests]


def test_unacknowledged_p0_escalates_p2_burst_is_one_digest_silenced_is_recorded_only(stack_settings, unique_name, tmp_path, receiver):
    bootstrap = stack_settings.kafka_bootstrap
    topics = TopicSettings(prefix=unique_name)
    create_topics(AdminClient({"bootstrap.servers": bootstrap}), plan_topics(topics))
    routing = write_routing(tmp_path / "routing.yaml", receiver, "fraud", group_wait=0.5, escalate_after=ESCALATE_AFTER, digest_interval=DIGEST_INTERVAL)
    worker = IncidentWorker(bootstrap, unique_name, routing, tmp_path / "data", tmp_path / "worker.log")
    try:
        worker.wait_ready()
        assert "quiet-model: silenced until" in _cli(worker, "silence", "quiet-model", "--minutes", "10", "--reason", "maintenance")
        [silence] = wait_until(lambda: worker.get("/silences")["silences"], 10, worker.describe)
        assert (silence["model_id"], silence["reason"]) == ("quiet-model", "maintenance")

        paged = make_alert("fraud", None, kind="performance", severity="P0", statistic="accuracy")
        acknowledged = make_alert("payments", None, kind="error_rate", severity="P0", statistic="error_rate")
        burst = [alert for model in ("m1", "m2", "m3") for alert in drift_incident(model, ["a", "b"], severity="P2")]
        silenced = drift_incident("quiet-model", ["x"])
        started = time.time()
        publish_alerts(bootstrap, topics.name("alerts"), [paged, acknowledged, *burst, *silenced])

        wait_until(lambda: worker.get(f"/incidents/{acknowledged['incident_id']}"), 20, worker.describe)
        assert _cli(worker, "ack", acknowledged["incident_id"], "--by", "bob") == f"{acknowledged['incident_id']}: acknowledged by bob\n"
        assert worker.get(f"/incidents/{acknowledged['incident_id']}")["state"] == "acknowledged"

        escalation = wait_until(
            lambda: [r for r in receiver.at("/pagerduty?routing_key=test-key") if "escalated" in r.body["payload"]["summary"]], 30, worker.describe
        )
        assert time.time() - started >= ESCALATE_AFTER
        assert _incident_ids(escalation) == [paged["incident_id"]]
        assert escalation[0].body["payload"]["severity"] == "critical" and escalation[0].body["routing_key"] == "test-key"

        digest = wait_until(lambda: [r for r in receiver.at("/fallback") if r.body["digest"]], 30, worker.describe)
        time.sleep(DIGEST_INTERVAL / 2)  # a second digest would show up within the interval
        digests = [r for r in receiver.at("/fallback") if r.body["digest"]]
        assert len(digests) == 1, digests
        items = digests[0].body["items"]
        assert sorted(item["incident"]["model_id"] for item in items) == ["m1", "m2", "m3"]
        assert all(item["announcement"] == "opened" and len(item["incident"]["alerts"]) == 2 for item in items)
        assert digest[0].at - started >= DIGEST_INTERVAL

        time.sleep(ESCALATE_AFTER)  # the acknowledged P0 had as long to escalate as the paged one
        pagerduty = receiver.at("/pagerduty?routing_key=test-key")
        assert [(r.body["event_action"], r.body["dedup_key"]) for r in pagerduty] == [
            ("trigger", paged["incident_id"]), ("trigger", paged["incident_id"]),
        ], "opened and escalated for the paged P0; nothing for the acknowledged one (unrouted → fallback, escalation → oncall)"
        fallback_single = {(r.body["items"][0]["incident"]["model_id"], r.body["items"][0]["announcement"]) for r in receiver.at("/fallback") if not r.body["digest"]}
        assert fallback_single <= {("payments", "opened"), ("payments", "acknowledged")} and ("payments", "acknowledged") in fallback_single

        quiet = worker.get(f"/incidents/{silenced[0]['incident_id']}")
        assert quiet["state"] == "open" and [d["outcome"] for d in quiet["deliveries"]] == ["silenced"]
        assert not [r for r in receiver.requests if "quiet-model" in str(r.body)], "silenced: recorded, not delivered"
    finally:
        worker.stop()
