"""The incident state machine, as pure functions: placement, dedupe keys, transitions, announcements, escalation."""

from __future__ import annotations

import orjson
import pytest

from stream.incidents.lifecycle import (
    Announcement,
    Incident,
    State,
    Timing,
    acknowledge,
    dedupe_key,
    escalation_due,
    expired,
    hex_id,
    mark_announced,
    new_incident_for_resolved,
    next_announcement,
    place_firing,
    record_resolved,
    resolve,
    settled,
    too_old,
)
from tests.incidents.incident_helpers import drift_incident, make_alert, resolved

TIMING = Timing(group_wait=10, group_interval=100, escalate_after=60, reopen_within=300, digest_interval=50, retention=1000)


class Book:
    """The tables, as dicts, with the agent's write-back."""

    def __init__(self) -> None:
        self.incidents: dict[str, Incident] = {}
        self.aliases: dict[str, str] = {}
        self.latest: dict[str, str] = {}

    def fire(self, alert: dict, now: float) -> Incident:
        placement = place_firing(alert, 0, now, TIMING.reopen_within, self.incidents.get, self.aliases, self.latest)
        if placement.alias:
            self.aliases[placement.alias[0]] = placement.alias[1]
        return self.store(placement.incident)

    def store(self, incident: Incident) -> Incident:
        round_tripped = Incident.from_dict(orjson.loads(orjson.dumps(incident.to_dict())))  # as the table keeps it
        self.incidents[incident.incident_id] = round_tripped
        self.latest[incident.model_id] = incident.incident_id
        return round_tripped


def test_alerts_of_one_proposed_incident_are_grouped():
    book = Book()
    alerts = drift_incident("fraud", ["amount", "age", "country"])
    for t, alert in enumerate(alerts):
        incident = book.fire(alert, 1000.0 + t)
    assert list(book.incidents) == [alerts[0]["incident_id"]]
    assert list(incident.alerts) == [alert["alert_id"] for alert in alerts]
    assert (incident.state, incident.opened_at, incident.severity) == (State.OPEN, 1000.0, "P1")


def test_dedupe_key_is_alert_id_and_status():
    alert = make_alert("fraud", "amount")
    assert dedupe_key(alert) == f"{alert['alert_id']}/firing"
    assert dedupe_key(resolved(alert)) == f"{alert['alert_id']}/resolved"
    assert dedupe_key(make_alert("fraud", "age")) != dedupe_key(alert)


def test_incident_auto_resolves_only_when_all_its_alerts_resolved():
    book = Book()
    first, second = drift_incident("fraud", ["amount", "age"])
    book.fire(first, 0.0)
    incident = book.fire(second, 1.0)
    incident = book.store(record_resolved(incident, resolved(first), 5.0))
    assert incident.state is State.OPEN
    incident = book.store(record_resolved(incident, resolved(second), 6.0))
    assert (incident.state, incident.resolved_by, incident.state_since) == (State.RESOLVED, "auto", 6.0)


def test_firing_alert_within_reopen_window_reopens_the_models_latest_incident():
    book = Book()
    [old] = drift_incident("fraud", ["amount"])
    incident = book.fire(old, 0.0)
    book.store(record_resolved(incident, resolved(old), 100.0))
    [new] = drift_incident("fraud", ["age"])  # the producer proposes a new incident
    reopened = book.fire(new, 100.0 + TIMING.reopen_within)
    assert reopened.incident_id == old["incident_id"] and reopened.state is State.OPEN and reopened.cycle == 1
    assert book.aliases == {new["incident_id"]: old["incident_id"]}
    assert set(reopened.alerts) == {old["alert_id"], new["alert_id"]}


def test_firing_alert_after_reopen_window_opens_a_new_incident_even_with_the_old_proposed_id():
    book = Book()
    first, late = drift_incident("fraud", ["amount", "age"])
    incident = book.fire(first, 0.0)
    book.store(record_resolved(incident, resolved(first), 100.0))
    fresh = book.fire(late, 100.0 + TIMING.reopen_within + 1)
    assert fresh.incident_id == hex_id("incident", late["alert_id"]) != first["incident_id"]
    assert (fresh.state, fresh.cycle, list(fresh.alerts)) == (State.OPEN, 0, [late["alert_id"]])
    assert book.incidents[first["incident_id"]].state is State.RESOLVED
    assert book.aliases == {first["incident_id"]: fresh.incident_id}


def test_different_models_never_share_an_incident():
    book = Book()
    book.fire(make_alert("fraud", "amount"), 0.0)
    book.fire(make_alert("churn", "amount"), 0.0)
    assert {incident.model_id for incident in book.incidents.values()} == {"fraud", "churn"}
    assert len(book.incidents) == 2


def test_resolved_alert_whose_firing_was_never_seen_is_recorded_resolved():
    alert = resolved(make_alert("fraud", "amount"))
    incident = new_incident_for_resolved(alert, 3, 10.0)
    assert (incident.incident_id, incident.partition, incident.state) == (alert["incident_id"], 3, State.RESOLVED)


def test_acknowledge_and_resolve_transitions():
    incident = Book().fire(make_alert("fraud", "amount"), 0.0)
    assert acknowledge(incident, "alice", 5.0) and (incident.state, incident.acknowledged_by) == (State.ACKNOWLEDGED, "alice")
    assert not acknowledge(incident, "bob", 6.0), "only an open incident can be acknowledged"
    assert resolve(incident, "bob", 7.0) and (incident.state, incident.resolved_by) == (State.RESOLVED, "bob")
    assert not resolve(incident, "carol", 8.0) and incident.resolved_by == "bob"


def test_announcements_wait_for_grouping_then_follow_state_changes():
    book = Book()
    incident = book.fire(make_alert("fraud", "amount"), 0.0)
    assert next_announcement(incident, TIMING.group_wait - 0.1, TIMING) is None
    assert next_announcement(incident, TIMING.group_wait, TIMING) is Announcement.OPENED
    assert mark_announced(incident, Announcement.OPENED, TIMING.group_wait) == 1
    assert next_announcement(incident, 20.0, TIMING) is None, "announced once"

    incident = book.fire(make_alert("fraud", "age", incident_of=make_alert("fraud", "amount")["alert_id"]), 30.0)
    assert next_announcement(incident, TIMING.group_wait + TIMING.group_interval - 1, TIMING) is None
    assert next_announcement(incident, TIMING.group_wait + TIMING.group_interval, TIMING) is Announcement.UPDATED
    mark_announced(incident, Announcement.UPDATED, 200.0)

    acknowledge(incident, "alice", 210.0)
    assert next_announcement(incident, 210.0, TIMING) is Announcement.ACKNOWLEDGED
    mark_announced(incident, Announcement.ACKNOWLEDGED, 210.0)
    resolve(incident, "alice", 220.0)
    assert next_announcement(incident, 220.0, TIMING) is Announcement.RESOLVED
    mark_announced(incident, Announcement.RESOLVED, 220.0)
    assert next_announcement(incident, 10_000.0, TIMING) is None


def test_reopened_incident_is_announced_as_reopened_after_group_wait():
    book = Book()
    [alert] = drift_incident("fraud", ["amount"])
    incident = book.fire(alert, 0.0)
    mark_announced(incident, Announcement.OPENED, 10.0)
    incident = book.store(record_resolved(incident, resolved(alert), 20.0))
    mark_announced(incident, Announcement.RESOLVED, 20.0)
    incident = book.fire(make_alert("fraud", "age"), 30.0)
    assert next_announcement(incident, 30.0 + TIMING.group_wait - 1, TIMING) is None
    assert next_announcement(incident, 30.0 + TIMING.group_wait, TIMING) is Announcement.REOPENED


@pytest.mark.parametrize("severity, acknowledged, escalates", [("P0", False, True), ("P0", True, False), ("P1", False, False)])
def test_escalation_only_for_an_unacknowledged_p0_after_the_delay(severity, acknowledged, escalates):
    incident = Book().fire(make_alert("fraud", None, kind="performance", severity=severity, statistic="accuracy"), 0.0)
    if acknowledged:
        acknowledge(incident, "alice", 1.0)
    assert not escalation_due(incident, TIMING.escalate_after - 0.1, TIMING)
    assert escalation_due(incident, TIMING.escalate_after + 1.0, TIMING) is escalates


def test_escalation_happens_once_per_open_cycle():
    book = Book()
    alert = make_alert("fraud", None, kind="performance", severity="P0", statistic="accuracy")
    incident = book.fire(alert, 0.0)
    assert mark_announced(incident, Announcement.ESCALATED, 60.0) == 1
    assert not escalation_due(incident, 1000.0, TIMING)
    incident = book.store(record_resolved(incident, resolved(alert), 100.0))
    incident = book.fire(make_alert("fraud", "x", kind="latency", severity="P0", statistic="p99_latency_ms"), 150.0)
    assert incident.cycle == 1 and escalation_due(incident, 150.0 + TIMING.escalate_after, TIMING)
    assert mark_announced(incident, Announcement.ESCALATED, 300.0) == 2, "the ordinal makes the second escalation's key differ"


def test_an_incident_is_settled_once_its_resolution_was_announced():
    book = Book()
    [alert] = drift_incident("fraud", ["amount"])
    incident = book.fire(alert, 0.0)
    mark_announced(incident, Announcement.OPENED, 10.0)
    assert not settled(incident.to_dict())
    incident = book.store(record_resolved(incident, resolved(alert), 20.0))
    assert not settled(incident.to_dict()), "its resolution is still to be announced"
    mark_announced(incident, Announcement.RESOLVED, 20.0)
    assert settled(incident.to_dict())


def test_an_incident_expires_once_settled_and_unchanged_for_the_retention():
    book = Book()
    first, second = drift_incident("fraud", ["amount", "age"])
    incident = book.fire(first, 0.0)
    incident = book.fire(second, 5.0)
    mark_announced(incident, Announcement.OPENED, 10.0)
    incident = book.store(record_resolved(incident, resolved(first), 20.0))
    assert not expired(incident.to_dict(), 20.0 + 2 * TIMING.retention, TIMING), "open: kept however old"
    incident = book.store(record_resolved(incident, resolved(second), 30.0))
    mark_announced(incident, Announcement.RESOLVED, 31.0)
    # A late resolved event of an alert of the already resolved incident still counts as a change.
    incident = book.store(record_resolved(incident, {**resolved(first), "summary": "again"}, 400.0))
    assert incident.state_since == 30.0 and settled(incident.to_dict())
    assert not expired(incident.to_dict(), 400.0 + TIMING.retention, TIMING)
    assert expired(incident.to_dict(), 400.0 + TIMING.retention + 0.1, TIMING)


def test_records_published_longer_than_the_retention_ago_are_too_old():
    assert not too_old(published_at=100.0, now=100.0 + TIMING.retention, timing=TIMING)
    assert too_old(published_at=100.0, now=100.1 + TIMING.retention, timing=TIMING)
