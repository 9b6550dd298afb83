"""Message bodies per receiver type: Slack-style, PagerDuty Events v2, Alertmanager, generic webhook.

A notice is one or more (announcement, incident) items: one for an ordinary message,
several for a digest. Every body carries the idempotency key (also sent as the
``Idempotency-Key`` header) so a receiver can drop a repeated delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from stream.incidents.lifecycle import Incident

PAGERDUTY_SEVERITY = {"P0": "critical", "P1": "error", "P2": "warning"}
PAGERDUTY_ACTION = {"resolved": "resolve", "acknowledged": "acknowledge"}  # anything else triggers


@dataclass(frozen=True)
class NoticeItem:
    announcement: str
    incident: Incident
    owners: tuple[str, ...]


@dataclass(frozen=True)
class Notice:
    idempotency_key: str
    items: tuple[NoticeItem, ...]
    digest: bool = False


def iso_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def render(receiver_type: str, url: str, notice: Notice) -> dict[str, Any] | list[dict[str, Any]]:
    renderers: dict[str, Callable[[str, Notice], Any]] = {
        "slack": _slack, "pagerduty": _pagerduty, "alertmanager": _alertmanager, "webhook": _webhook,
    }
    return renderers[receiver_type](url, notice)


def headline(item: NoticeItem) -> str:
    incident = item.incident
    firing = sum(alert.status == "firing" for alert in incident.alerts.values())
    return f"[{incident.severity}] {incident.model_id}: incident {item.announcement} ({firing} firing of {len(incident.alerts)} alerts)"


def incident_summary(incident: Incident) -> dict[str, Any]:
    return {
        "incident_id": incident.incident_id,
        "model_id": incident.model_id,
        "state": str(incident.state),
        "severity": incident.severity,
        "opened_at": iso_time(incident.opened_at),
        "acknowledged_by": incident.acknowledged_by,
        "resolved_by": incident.resolved_by,
        "alerts": [
            {
                "alert_id": alert.alert_id, "status": alert.status, "severity": alert.severity, "kind": alert.kind,
                "feature": alert.feature, "summary": alert.summary, "suggested_action": alert.suggested_action,
                "statistic": alert.statistic, "window": alert.window, "segment": alert.segment,
            }
            for alert in incident.alerts.values()
        ],
    }


def _webhook(url: str, notice: Notice) -> dict[str, Any]:
    return {
        "source": "driftline",
        "idempotency_key": notice.idempotency_key,
        "digest": notice.digest,
        "items": [
            {"announcement": item.announcement, "owners": list(item.owners), "incident": incident_summary(item.incident)}
            for item in notice.items
        ],
    }


def _slack(url: str, notice: Notice) -> dict[str, Any]:
    title = f"driftline digest: {len(notice.items)} updates" if notice.digest else headline(notice.items[0])
    blocks = []
    for item in notice.items:
        lines = [f"*{headline(item)}*"]
        lines += [f"• {alert.severity} {alert.kind} {alert.feature or ''} ({alert.status}): {alert.summary}" for alert in item.incident.alerts.values()]
        if item.owners:
            lines.append(f"owners: {', '.join(item.owners)}")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}})
    return {"text": title, "blocks": blocks, "idempotency_key": notice.idempotency_key}


def _pagerduty(url: str, notice: Notice) -> dict[str, Any]:
    """PagerDuty Events v2; the integration's routing key is read from the receiver url's ``routing_key`` query parameter."""
    routing_key = parse_qs(urlsplit(url).query).get("routing_key", [""])[0]
    first = notice.items[0]
    if notice.digest:
        action, dedup_key, severity = "trigger", notice.idempotency_key, "info"
    else:
        action = PAGERDUTY_ACTION.get(first.announcement, "trigger")
        dedup_key, severity = first.incident.incident_id, PAGERDUTY_SEVERITY[first.incident.severity]
    return {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key,
        "payload": {
            "summary": f"driftline digest: {len(notice.items)} updates" if notice.digest else headline(first),
            "source": first.incident.model_id,
            "severity": severity,
            "group": first.incident.model_id,
            "class": ",".join(sorted({alert.kind for item in notice.items for alert in item.incident.alerts.values()})),
            "custom_details": {
                "idempotency_key": notice.idempotency_key,
                "items": _webhook(url, notice)["items"],
            },
        },
    }


def _alertmanager(url: str, notice: Notice) -> list[dict[str, Any]]:
    """Alertmanager API v2 ``POST /api/v2/alerts`` body: one entry per alert; resolved alerts carry endsAt."""
    entries = []
    for item in notice.items:
        incident = item.incident
        for alert in incident.alerts.values():
            entry = {
                "labels": {
                    "alertname": f"driftline_{alert.kind}", "model_id": incident.model_id, "incident_id": incident.incident_id,
                    "alert_id": alert.alert_id, "severity": alert.severity, "kind": alert.kind, "feature": alert.feature or "",
                },
                "annotations": {
                    "summary": alert.summary, "suggested_action": alert.suggested_action, "announcement": item.announcement,
                    "owners": ", ".join(item.owners), "idempotency_key": notice.idempotency_key,
                },
                "startsAt": iso_time(alert.first_seen_at),
            }
            if alert.status == "resolved" or incident.state == "resolved":
                entry["endsAt"] = iso_time(alert.updated_at)
            entries.append(entry)
    return entries
