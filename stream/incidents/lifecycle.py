"""The incident state machine: open → acknowledged → resolved, and reopen.

Pure code (no faust): the service keeps these records in changelog tables and applies
the functions here to them, one event at a time. Every function is deterministic in its
inputs, so replaying an event after a crash reaches the same state.

Placement of a firing alert (``place_firing``):
- an alert whose proposed incident (or the incident that incident was merged into) is
  open or acknowledged joins it;
- a firing alert of a model whose latest incident resolved at most ``reopen_within``
  seconds ago reopens that incident;
- otherwise the alert opens a new incident: the proposed id, or, when that id names an
  incident resolved long ago, the id of a new incident derived from the alert.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Callable, Mapping

import orjson

SEVERITY_RANK = {"P0": 0, "P1": 1, "P2": 2}


class State(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Announcement(StrEnum):
    """What a notification about an incident says."""

    OPENED = "opened"
    UPDATED = "updated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    ESCALATED = "escalated"


def hex_id(*parts: Any) -> str:
    """First 32 hex digits of SHA-256 of the compact sorted-key JSON array of parts (the contract's id recipe)."""
    return hashlib.sha256(orjson.dumps(list(parts), option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


@dataclass
class AlertEntry:
    """One alert of an incident, as its latest event describes it."""

    alert_id: str
    status: str
    severity: str
    kind: str
    feature: str | None
    summary: str
    suggested_action: str
    window: dict[str, str]
    statistic: dict[str, Any]
    segment: dict[str, str]
    model_version: str
    first_seen_at: float
    updated_at: float

    @classmethod
    def from_event(cls, alert: Mapping[str, Any], now: float) -> "AlertEntry":
        return cls(
            alert_id=alert["alert_id"], status=alert["status"], severity=alert["severity"], kind=alert["kind"],
            feature=alert["feature"], summary=alert["summary"], suggested_action=alert["suggested_action"],
            window=dict(alert["window"]), statistic=dict(alert["statistic"]), segment=dict(alert["segment"]),
            model_version=alert["model_version"], first_seen_at=now, updated_at=now,
        )


@dataclass
class Incident:
    incident_id: str
    model_id: str
    partition: int
    state: State
    opened_at: float
    state_since: float
    cycle: int = 0  # how many times it was reopened
    acknowledged_by: str | None = None
    resolved_by: str | None = None
    alerts: dict[str, AlertEntry] = field(default_factory=dict)
    announced_state: State | None = None  # the state the last notification told
    announced_cycle: int = -1
    announced_alerts: int = 0
    announced_at: float | None = None
    announcements: dict[str, int] = field(default_factory=dict)  # Announcement -> how many were sent
    escalated_cycle: int = -1

    @property
    def severity(self) -> str:
        """The highest severity among its alerts."""
        return min((entry.severity for entry in self.alerts.values()), key=SEVERITY_RANK.__getitem__, default="P2")

    @property
    def all_resolved(self) -> bool:
        return all(entry.status == "resolved" for entry in self.alerts.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Incident":
        fields = dict(data)
        fields["state"] = State(fields["state"])
        fields["announced_state"] = State(fields["announced_state"]) if fields["announced_state"] else None
        fields["alerts"] = {alert_id: AlertEntry(**entry) for alert_id, entry in fields["alerts"].items()}
        return cls(**fields)


def dedupe_key(alert: Mapping[str, Any]) -> str:
    """Alerts are deduplicated on (alert_id, status): the firing and resolved events share the alert_id."""
    return f"{alert['alert_id']}/{alert['status']}"


@dataclass(frozen=True)
class Placement:
    """Where a firing alert goes: the incident (new or existing) and an alias to remember."""

    incident: Incident
    alias: tuple[str, str] | None  # (proposed incident_id, incident it was merged into)


def place_firing(
    alert: Mapping[str, Any],
    partition: int,
    now: float,
    reopen_within: float,
    find_incident: Callable[[str], Incident | None],
    aliases: Mapping[str, str],
    latest_by_model: Mapping[str, str],
) -> Placement:
    """Put a firing alert into its incident (see the module docstring); returns the changed incident."""
    proposed = alert["incident_id"]
    target = find_incident(aliases.get(proposed, proposed))
    if target is None:
        latest_id = latest_by_model.get(alert["model_id"])
        latest = find_incident(latest_id) if latest_id else None
        if latest is not None and _reopenable(latest, now, reopen_within):
            return Placement(_add(reopen(latest, now), alert, now), (proposed, latest.incident_id))
        return Placement(_add(_new(proposed, alert, partition, now), alert, now), None)
    if target.state is not State.RESOLVED:
        return Placement(_add(target, alert, now), None)
    if _reopenable(target, now, reopen_within):
        return Placement(_add(reopen(target, now), alert, now), None)
    fresh_id = hex_id("incident", alert["alert_id"])
    return Placement(_add(_new(fresh_id, alert, partition, now), alert, now), (proposed, fresh_id))


def record_resolved(incident: Incident, alert: Mapping[str, Any], now: float) -> Incident:
    """A resolved alert event: mark the alert resolved; the incident auto-resolves when all its alerts are."""
    _add(incident, alert, now)
    if incident.state is not State.RESOLVED and incident.all_resolved:
        incident.state, incident.state_since, incident.resolved_by = State.RESOLVED, now, "auto"
    return incident


def new_incident_for_resolved(alert: Mapping[str, Any], partition: int, now: float) -> Incident:
    """A resolved alert whose firing event was never seen (e.g. it aged out of the topic) still gets recorded."""
    return record_resolved(_new(alert["incident_id"], alert, partition, now), alert, now)


def acknowledge(incident: Incident, by: str, now: float) -> bool:
    """Acknowledge an open incident; returns False (and changes nothing) in any other state."""
    if incident.state is not State.OPEN:
        return False
    incident.state, incident.state_since, incident.acknowledged_by = State.ACKNOWLEDGED, now, by
    return True


def resolve(incident: Incident, by: str, now: float) -> bool:
    """Resolve by hand; returns False when already resolved."""
    if incident.state is State.RESOLVED:
        return False
    incident.state, incident.state_since, incident.resolved_by = State.RESOLVED, now, by
    return True


def reopen(incident: Incident, now: float) -> Incident:
    incident.state, incident.state_since, incident.cycle = State.OPEN, now, incident.cycle + 1
    incident.acknowledged_by = incident.resolved_by = None
    return incident


@dataclass(frozen=True)
class Timing:
    """When notifications go out, and how long resolved incidents are kept (seconds)."""

    group_wait: float = 30.0  # alerts arriving this long after an incident (re)opens go into its first message
    group_interval: float = 300.0  # at most one "updated" message per incident per interval
    escalate_after: float = 900.0  # an open P0 not acknowledged by then is escalated
    reopen_within: float = 3600.0  # a firing alert within this long after resolution reopens the incident
    digest_interval: float = 300.0  # P2 messages to a receiver are collected and sent once per interval
    retention: float = 7 * 86400.0  # resolved incidents (and records older than this) are forgotten: see ``expired``


def next_announcement(incident: Incident, now: float, timing: Timing) -> Announcement | None:
    """What to tell the receivers now about this incident, if anything."""
    if incident.state is State.OPEN and now - incident.state_since < timing.group_wait:
        return None
    if (incident.state, incident.cycle) != (incident.announced_state, incident.announced_cycle):
        if incident.state is State.OPEN:
            return Announcement.OPENED if incident.cycle == 0 else Announcement.REOPENED
        return Announcement.ACKNOWLEDGED if incident.state is State.ACKNOWLEDGED else Announcement.RESOLVED
    if (
        incident.state is not State.RESOLVED
        and len(incident.alerts) > incident.announced_alerts
        and now - (incident.announced_at or 0.0) >= timing.group_interval
    ):
        return Announcement.UPDATED
    return None


def settled(record: Mapping[str, Any]) -> bool:
    """A stored incident (``Incident.to_dict()``) that is resolved and was announced so: no timer work left."""
    return record["state"] == State.RESOLVED and record["announced_state"] == State.RESOLVED and record["announced_cycle"] == record["cycle"]


def expired(record: Mapping[str, Any], now: float, timing: Timing) -> bool:
    """A stored incident settled (resolved and announced) with no change for ``timing.retention``: to be deleted.

    With it go its dedupe keys, so a re-delivered alert event of it would count as new; the
    service therefore ignores every record published longer than the retention ago (``too_old``),
    which covers every alert event of an expired incident: each was published before it was
    handled, and handling it changed the incident (``updated_at``) at least ``retention`` ago.
    """
    last_change = max([record["state_since"], *(alert["updated_at"] for alert in record["alerts"].values())])
    return settled(record) and now - last_change > timing.retention


def too_old(published_at: float, now: float, timing: Timing) -> bool:
    """A record published longer than ``timing.retention`` ago (a re-delivery: e.g. a consumer group
    whose committed offsets expired re-reads the alerts topic, which keeps 30 days)."""
    return now - published_at > timing.retention


def escalation_due(incident: Incident, now: float, timing: Timing) -> bool:
    """An open (unacknowledged) P0 incident is escalated once per open cycle after ``escalate_after``."""
    return (
        incident.state is State.OPEN
        and incident.severity == "P0"
        and incident.escalated_cycle < incident.cycle
        and now - incident.state_since >= timing.escalate_after
    )


def mark_announced(incident: Incident, announcement: Announcement, now: float) -> int:
    """Record that an announcement went out; returns its ordinal (1 for the first of its kind)."""
    ordinal = incident.announcements.get(announcement.value, 0) + 1
    incident.announcements[announcement.value] = ordinal
    if announcement is Announcement.ESCALATED:
        incident.escalated_cycle = incident.cycle
    else:
        incident.announced_state, incident.announced_cycle = incident.state, incident.cycle
        incident.announced_alerts, incident.announced_at = len(incident.alerts), now
    return ordinal


def _reopenable(incident: Incident, now: float, reopen_within: float) -> bool:
    return incident.state is State.RESOLVED and now - incident.state_since <= reopen_within


def _new(incident_id: str, alert: Mapping[str, Any], partition: int, now: float) -> Incident:
    return Incident(incident_id=incident_id, model_id=alert["model_id"], partition=partition, state=State.OPEN, opened_at=now, state_since=now)


def _add(incident: Incident, alert: Mapping[str, Any], now: float) -> Incident:
    existing = incident.alerts.get(alert["alert_id"])
    entry = AlertEntry.from_event(alert, now)
    if existing is not None:
        entry.first_seen_at = existing.first_seen_at
    incident.alerts[alert["alert_id"]] = entry
    return incident
