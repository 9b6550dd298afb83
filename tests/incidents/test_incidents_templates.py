"""Message bodies per receiver type, and digest buckets."""

from __future__ import annotations

import orjson
import pytest

from stream.incidents.digest import DigestBucket, bucket_key, bucket_partition
from stream.incidents.lifecycle import Incident, State, place_firing, record_resolved
from stream.incidents.routing import Receiver
from stream.incidents.templates import Notice, NoticeItem, render
from tests.incidents.incident_helpers import drift_incident, resolved

KEY = "0123456789abcdef0123456789abcdef"


def _incident(severity: str = "P0", resolve_all: bool = False) -> Incident:
    alerts = drift_incident("fraud", ["amount", "age"], severity=severity)
    incident = None
    for alert in alerts:
        incident = place_firing(alert, 0, 100.0, 60, lambda _id: incident, {}, {}).incident
    if resolve_all:
        for alert in alerts:
            record_resolved(incident, resolved(alert), 200.0)
    return incident


def _notice(announcement: str, incident: Incident) -> Notice:
    return Notice(KEY, (NoticeItem(announcement, incident, ("risk@x",)),))


@pytest.mark.parametrize("receiver_type", ["slack", "pagerduty", "alertmanager", "webhook"])
def test_every_body_is_json_and_carries_the_idempotency_key(receiver_type):
    body = render(receiver_type, "http://x", _notice("opened", _incident()))
    assert KEY in orjson.dumps(body).decode()


@pytest.mark.parametrize(
    "announcement, severity, action, pd_severity",
    [("opened", "P0", "trigger", "critical"), ("escalated", "P0", "trigger", "critical"), ("acknowledged", "P1", "acknowledge", "error"), ("resolved", "P2", "resolve", "warning")],
)
def test_pagerduty_events_v2_shape(announcement, severity, action, pd_severity):
    incident = _incident(severity)
    body = render("pagerduty", "https://events.pagerduty.com/v2/enqueue?routing_key=abc", _notice(announcement, incident))
    assert (body["routing_key"], body["event_action"], body["dedup_key"]) == ("abc", action, incident.incident_id)
    assert body["payload"]["severity"] == pd_severity and body["payload"]["source"] == "fraud"
    assert announcement in body["payload"]["summary"]


def test_alertmanager_body_has_one_entry_per_alert_and_ends_resolved_ones():
    firing = render("alertmanager", "http://am", _notice("opened", _incident()))
    assert [entry["labels"]["alertname"] for entry in firing] == ["driftline_data_drift"] * 2
    assert all("endsAt" not in entry and entry["startsAt"].endswith("Z") for entry in firing)
    over = render("alertmanager", "http://am", _notice("resolved", _incident(resolve_all=True)))
    assert all(entry["endsAt"] == "1970-01-01T00:03:20.000000Z" for entry in over)


def test_slack_message_names_model_severity_alerts_and_owners():
    body = render("slack", "http://slack", _notice("opened", _incident("P1")))
    assert body["text"] == "[P1] fraud: incident opened (2 firing of 2 alerts)"
    section = body["blocks"][0]["text"]["text"]
    assert "amount drifted on fraud" in section and "age drifted on fraud" in section and "owners: risk@x" in section


def test_digest_lists_every_item():
    first, second = _incident("P2"), _incident("P2", resolve_all=True)
    notice = Notice(KEY, (NoticeItem("opened", first, ()), NoticeItem("resolved", second, ())), digest=True)
    webhook = render("webhook", "http://hook", notice)
    assert webhook["digest"] is True and [item["announcement"] for item in webhook["items"]] == ["opened", "resolved"]
    assert render("slack", "http://slack", notice)["text"] == "driftline digest: 2 updates"
    assert render("pagerduty", "http://pd", notice)["dedup_key"] == KEY


def test_digest_bucket_collects_each_item_once_and_is_due_after_the_interval():
    bucket = DigestBucket({"name": "team", "type": "slack", "url": "http://s"}, opened_at=100.0)
    assert not bucket.due(10_000.0, 50.0), "an empty bucket is never due"
    assert bucket.add("k1", {"n": 1}) and bucket.add("k2", {"n": 2})
    assert not bucket.add("k1", {"n": 1}), "a replayed item is not collected twice"
    assert not bucket.due(149.9, 50.0) and bucket.due(150.0, 50.0)
    assert DigestBucket.from_dict(orjson.loads(orjson.dumps(bucket.to_dict()))) == bucket


def test_digest_bucket_key_and_partition_depend_on_receiver_name_and_url():
    slack = Receiver("team", "slack", "http://a")
    assert bucket_key(slack) != bucket_key(Receiver("team", "slack", "http://b"))
    assert bucket_partition(slack, 4) == bucket_partition(Receiver("team", "slack", "http://a"), 4)
    assert {bucket_partition(Receiver(f"r{i}", "slack", "http://a"), 4) for i in range(40)} == {0, 1, 2, 3}


def test_states_render_as_plain_strings():
    body = render("webhook", "http://hook", _notice("resolved", _incident(resolve_all=True)))
    assert body["items"][0]["incident"]["state"] == "resolved" == State.RESOLVED
