"""SIGKILL of the incident service mid-run: no incident lost, no announcement under two idempotency keys."""

from __future__ import annotations

from collections import defaultdict

import pytest
from confluent_kafka.admin import AdminClient

from stream.settings import TopicSettings
from stream.topics import create_topics, plan_topics
from tests.incidents.incident_helpers import IncidentWorker, WebhookReceiver, drift_incident, publish_alerts, resolved, wait_until, write_routing

pytestmark = pytest.mark.integration

MODELS_PER_BATCH = 6


def _announcements(receiver: WebhookReceiver) -> dict[tuple[str, str], set[str]]:
    """(incident_id, announcement) → the idempotency keys it was delivered under."""
    keys: dict[tuple[str, str], set[str]] = defaultdict(set)
    for request in receiver.at("/fallback"):
        [item] = request.body["items"]
        keys[(item["incident"]["incident_id"], item["announcement"])].add(request.idempotency_key)
    return keys


def test_kill_9_and_restart_loses_no_incident_and_repeats_deliveries_only_under_their_key(stack_settings, unique_name, tmp_path):
    bootstrap = stack_settings.kafka_bootstrap
    topics = TopicSettings(prefix=unique_name)
    create_topics(AdminClient({"bootstrap.servers": bootstrap}), plan_topics(topics))
    receiver = WebhookReceiver()
    routing = write_routing(tmp_path / "routing.yaml", receiver, "routed-elsewhere", group_wait=0.5)
    before = [drift_incident(f"before-{i}", ["a", "b", "c"]) for i in range(MODELS_PER_BATCH)]
    after = [drift_incident(f"after-{i}", ["a", "b"]) for i in range(MODELS_PER_BATCH)]
    alerts_topic = topics.name("alerts")

    first = IncidentWorker(bootstrap, unique_name, routing, tmp_path / "data", tmp_path / "first.log")
    second = None
    try:
        publish_alerts(bootstrap, alerts_topic, [alert for incident in before for alert in incident] * 2)
        first.wait_ready()
        wait_until(lambda: len(_announcements(receiver)) >= 2, 30, first.describe)
        first.kill()

        publish_alerts(bootstrap, alerts_topic, [alert for incident in after for alert in incident])
        publish_alerts(bootstrap, alerts_topic, [resolved(alert) for incident in before for alert in incident])
        second = IncidentWorker(bootstrap, unique_name, routing, tmp_path / "data", tmp_path / "second.log")
        second.wait_ready()

        wanted = {(incident[0]["incident_id"], "resolved") for incident in before} | {(incident[0]["incident_id"], "opened") for incident in after}
        wait_until(lambda: wanted <= set(_announcements(receiver)), 60, second.describe)

        incidents = {incident["incident_id"]: incident for incident in second.get("/incidents")["incidents"]}
        assert set(incidents) == {incident[0]["incident_id"] for incident in before + after}, "no incident lost, none doubled"
        for incident in before:
            shown = incidents[incident[0]["incident_id"]]
            assert shown["state"] == "resolved" and sorted(a["alert_id"] for a in shown["alerts"]) == sorted(a["alert_id"] for a in incident)
        for incident in after:
            shown = incidents[incident[0]["incident_id"]]
            assert shown["state"] == "open" and len(shown["alerts"]) == 2

        announcements = _announcements(receiver)
        assert all(len(keys) == 1 for keys in announcements.values()), {k: v for k, v in announcements.items() if len(v) > 1}
        assert {announcement for _, announcement in announcements} <= {"opened", "resolved"}
        distinct_keys = {request.idempotency_key for request in receiver.at("/fallback")}
        assert len(distinct_keys) == len(announcements), "every distinct key is a distinct announcement"
        logged = {entry["idempotency_key"] for entry in second.get("/deliveries")["deliveries"] if entry["outcome"] == "delivered"}
        assert logged == distinct_keys, "the delivery log survived the kill and lists every delivered key"
    finally:
        first.stop()
        if second is not None:
            second.stop()
        receiver.close()
