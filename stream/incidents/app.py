"""The incident service on faust-streaming: agents, changelog tables and the tick timer.

Inputs and state (FAUST.md: at-least-once, every handler idempotent):
- one agent reads the alerts topic *and* the incident-commands topic, so every change of
  incident state happens in one place, one event at a time. Commands are ``tick``
  (sent each ``tick_interval`` by a timer to every assigned partition: announcements,
  escalations and digest flushes are decided there, because faust tables can only be
  written while handling an event), ``ack``, ``resolve``, ``silence``, ``unsilence`` (from
  the HTTP API) and ``digest_add``.
- tables are keyed so a key lives in one partition: incidents by incident_id, written
  from the partition of their model's alerts (the alerts topic is keyed by model_id);
  commands about an incident are sent to that partition.
- a second agent reads the incident-deliveries topic and POSTs (delivery.py), logging
  every outcome in the delivery log table keyed by idempotency key.
- retention (``timing.retention``): the tick deletes what has been settled that long — resolved
  incidents with their dedupe keys, aliases and delivery-log entries, and lifted silences — and
  records published longer ago are ignored, so a re-delivered alert of a deleted incident cannot
  open it again (lifecycle.expired). Every deletion happens in the tick of the partition the key
  was written in, so it goes to the same changelog partition as the key.

Ordering for at-least-once: delivery requests are published (and acknowledged by the
broker) before the incident state that records them is written, so a crash in between
replays the event and publishes the same requests again, with the same idempotency keys.

Any failure while handling a record sends it to ``<prefix>.deadletter`` with a reason
(faust acknowledges a record whose handler raised, so it would otherwise be lost, #315).
"""

from __future__ import annotations

import base64
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import aiohttp
import faust
import jsonschema
import orjson
from faust.types import EventT

from stream.incidents.delivery import DeliveryRequest, RetryPolicy, digest_idempotency_key, idempotency_key, post_with_retries
from stream.incidents.digest import DigestBucket, bucket_key, bucket_partition
from stream.incidents.lifecycle import (
    Announcement,
    Incident,
    State,
    acknowledge,
    dedupe_key,
    escalation_due,
    expired,
    mark_announced,
    new_incident_for_resolved,
    next_announcement,
    place_firing,
    record_resolved,
    resolve,
    settled,
    too_old,
)
from stream.incidents.routing import Receiver, RoutingConfig
from stream.incidents.templates import Notice, NoticeItem, iso_time, render
from stream.incidents.transport import ReadCommittedApp
from stream.decode import readable_model_id  # one rule for dead-letter model_ids
from stream.metrics import serve_incident_metrics
from stream.reasons import Reason
from stream.settings import PROJECT_ROOT, TopicSettings

log = logging.getLogger(__name__)

COMMANDS_ROLE = "incident-commands"
PRUNE_EVERY_SECONDS = 60.0  # or a tenth of the retention, if shorter: deletion lags expiry by at most that
DELIVERIES_ROLE = "incident-deliveries"
_ALERT_VALIDATOR = jsonschema.Draft202012Validator(orjson.loads((PROJECT_ROOT / "schemas" / "alert.schema.json").read_bytes()))


class RejectedRecord(Exception):
    """A record the service cannot use; ``reason`` is its dead-letter reason code."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ServiceSettings:
    kafka_bootstrap: str
    topics: TopicSettings
    partitions: int  # of the alerts topic; every topic and table of the service has as many
    routing: RoutingConfig
    data_dir: Path
    web_port: int = 6066
    web_host: str = "127.0.0.1"
    tick_interval: float = 1.0
    retry: RetryPolicy = RetryPolicy()
    # A worker that dies without leaving the group keeps its partitions this long (faust's default is 60 s).
    session_timeout: float = 10.0

    @property
    def app_id(self) -> str:
        """Consumer group, and prefix of the changelog topics faust creates."""
        return f"{self.topics.prefix}.incidents"


class IncidentService:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.routing = settings.routing
        self.timing = settings.routing.timing
        topics = settings.topics
        self.app = ReadCommittedApp(
            settings.app_id,
            broker=f"kafka://{settings.kafka_bootstrap}",
            store="memory://",
            datadir=str(settings.data_dir),
            processing_guarantee="at_least_once",
            consumer_auto_offset_reset="earliest",
            broker_session_timeout=settings.session_timeout,
            topic_partitions=settings.partitions,
            topic_replication_factor=topics.replication_factor,
            key_serializer="raw",
            value_serializer="raw",
            web_port=settings.web_port,
            web_bind=settings.web_host,
            web_host=settings.web_host,
            web_router_enabled=False,
            web_tables_enabled=False,
            web_graph_enabled=False,
            web_stats_enabled=False,
        )
        self.alerts_topic = topics.name("alerts")
        self.commands_topic = topics.name(COMMANDS_ROLE)
        self.inputs = self.app.topic(self.alerts_topic, self.commands_topic, key_serializer="raw", value_serializer="raw")
        self.commands = self.app.topic(self.commands_topic, key_serializer="raw", value_serializer="raw")
        self.deliveries = self.app.topic(topics.name(DELIVERIES_ROLE), key_serializer="raw", value_serializer="raw")
        self.deadletter = self.app.topic(topics.name("deadletter"), key_serializer="raw", value_serializer="raw")

        def table(name: str, help_text: str) -> faust.Table:
            schema = faust.Schema(key_serializer="json", value_serializer="json")
            return self.app.Table(name, partitions=settings.partitions, schema=schema, help=help_text)

        self.incidents = table("incidents", "incident_id -> Incident.to_dict()")
        self.seen = table("seen-alerts", "alert_id/status -> incident_id: the dedupe keys")
        self.aliases = table("aliases", "proposed incident_id -> the incident it was merged into (reopen, or a new incident)")
        self.latest = table("latest-incident", "model_id -> its latest incident_id")
        self.silences = table("silences", "partition/model_id -> {until, reason, by}")
        self.digests = table("digests", "partition/receiver bucket key -> DigestBucket.to_dict()")
        self.delivery_log = table("delivery-log", "idempotency key -> request summary and outcome")
        serve_incident_metrics(self.app, self.incidents, [state.value for state in State])
        self.app.agent(self.inputs, name="incidents")(self._incidents_agent)
        self.app.agent(self.deliveries, name="deliveries")(self._deliveries_agent)
        self.app.timer(settings.tick_interval)(self._send_ticks)
        self._rng = random.Random()
        self._pruned_at: dict[int, float] = {}  # partition -> when its tick last deleted what expired

    # ---- agents -------------------------------------------------------------------------

    async def _incidents_agent(self, stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            try:
                if message.topic == self.alerts_topic:
                    self._on_alert(_decode_alert(message.value), message.partition, message.timestamp, time.time())
                else:
                    await self._on_command(orjson.loads(message.value), message.partition, time.time())
            except Exception as exc:  # noqa: BLE001 - every failure is dead-lettered, never lost
                await self._dead_letter(event, exc)

    async def _deliveries_agent(self, stream: faust.StreamT) -> None:
        async with aiohttp.ClientSession() as session:
            async for event in stream.events():
                try:
                    await self._deliver(session, DeliveryRequest.from_bytes(event.message.value), event.message.partition)
                except Exception as exc:  # noqa: BLE001
                    await self._dead_letter(event, exc)

    async def _send_ticks(self) -> None:
        """Tick every partition of the commands topic this worker owns."""
        for partition in sorted(tp.partition for tp in self.app.consumer.assignment() if tp.topic == self.commands_topic):
            await self.commands.send(key=b"tick", value=orjson.dumps({"type": "tick"}), partition=partition)

    # ---- alerts --------------------------------------------------------------------------

    def _on_alert(self, alert: dict[str, Any], partition: int, published_at: float, now: float) -> None:
        """Synchronous on purpose: no other event can interleave between reading and writing the tables."""
        key = dedupe_key(alert)
        if key in self.seen:
            return
        if too_old(published_at, now, self.timing):
            log.info("alert %s (%s) published %.0f s ago, beyond the retention: ignored", alert["alert_id"], alert["status"], now - published_at)
            return
        if alert["status"] == "firing":
            placement = place_firing(alert, partition, now, self.timing.reopen_within, self.find_incident, self.aliases, self.latest)
            incident = placement.incident
            if placement.alias is not None:
                self.aliases[placement.alias[0]] = placement.alias[1]
            self.latest[incident.model_id] = incident.incident_id
        else:
            home = self.seen.get(f"{alert['alert_id']}/firing") or self.aliases.get(alert["incident_id"], alert["incident_id"])
            existing = self.find_incident(home)
            if existing is None:
                incident = new_incident_for_resolved(alert, partition, now)
                if incident.model_id not in self.latest:
                    self.latest[incident.model_id] = incident.incident_id
            else:
                incident = record_resolved(existing, alert, now)
        self.incidents[incident.incident_id] = incident.to_dict()
        self.seen[key] = incident.incident_id

    # ---- commands ------------------------------------------------------------------------

    async def _on_command(self, command: dict[str, Any], partition: int, now: float) -> None:
        kind = command["type"]
        if kind == "tick":
            await self._on_tick(partition, now)
        elif kind in ("ack", "resolve"):
            incident = self.find_incident(command["incident_id"])
            if incident is not None and incident.partition == partition:
                change = acknowledge if kind == "ack" else resolve
                if change(incident, command["by"], now):
                    self.incidents[incident.incident_id] = incident.to_dict()
        elif kind == "silence":
            self.silences[f"{partition}/{command['model_id']}"] = {
                "model_id": command["model_id"], "until": command["until"], "reason": command["reason"], "by": command["by"],
            }
        elif kind == "unsilence":
            self.silences.pop(f"{partition}/{command['model_id']}", None)
        elif kind == "digest_add":
            key = f"{partition}/{command['bucket']}"
            bucket = DigestBucket.from_dict(self.digests[key]) if key in self.digests else DigestBucket(command["receiver"], now)
            if bucket.add(command["item_key"], command["item"]):
                self.digests[key] = bucket.to_dict()
        else:
            raise RejectedRecord(Reason.UNKNOWN_COMMAND, f"unknown command type {kind!r}")

    async def _on_tick(self, partition: int, now: float) -> None:
        for incident in list(self._unsettled_incidents_of(partition)):
            changed = False
            announcement = next_announcement(incident, now, self.timing)
            if announcement is not None:
                await self._announce(incident, announcement, partition, now)
                changed = True
            if escalation_due(incident, now, self.timing):
                await self._announce(incident, Announcement.ESCALATED, partition, now)
                changed = True
            if changed:
                self.incidents[incident.incident_id] = incident.to_dict()
        prefix = f"{partition}/"
        for key, raw in [(key, raw) for key, raw in self.digests.items() if key.startswith(prefix)]:
            bucket = DigestBucket.from_dict(raw)
            if bucket.due(now, self.timing.digest_interval):
                await self._flush_digest(bucket, partition, now)
                self.digests.pop(key)
        if now - self._pruned_at.get(partition, 0.0) >= min(PRUNE_EVERY_SECONDS, self.timing.retention / 10):
            self._prune(partition, now)
            self._pruned_at[partition] = now

    def _prune(self, partition: int, now: float) -> None:
        """Delete what the retention lets go in this partition (see the module docstring)."""
        gone = {raw["incident_id"]: raw for raw in self.incidents.values() if raw["partition"] == partition and expired(raw, now, self.timing)}
        for incident_id, raw in gone.items():
            for alert_id in raw["alerts"]:
                for status in ("firing", "resolved"):
                    key = dedupe_key({"alert_id": alert_id, "status": status})
                    if self.seen.get(key) == incident_id:
                        self.seen.pop(key)
            if self.latest.get(raw["model_id"]) == incident_id:
                self.latest.pop(raw["model_id"])
            self.incidents.pop(incident_id)
        if gone:
            for proposed in [proposed for proposed, target in self.aliases.items() if target in gone]:
                self.aliases.pop(proposed)
        for key in [
            key for key, entry in self.delivery_log.items()
            if entry["partition"] == partition
            and too_old(datetime.fromisoformat(entry["requested_at"]).timestamp(), now, self.timing)
            and not any(incident_id in self.incidents for incident_id in entry["incident_ids"])
        ]:  # fmt: skip
            self.delivery_log.pop(key)
        for key in [key for key, silence in self.silences.items() if key.startswith(f"{partition}/") and silence["until"] < now]:
            self.silences.pop(key)
        if gone:
            log.info("partition %d: forgot %d incidents settled longer than the retention", partition, len(gone))

    async def _announce(self, incident: Incident, announcement: Announcement, partition: int, now: float) -> None:
        """Publish what the receivers get; P2 goes into the receivers' digests (escalations never do)."""
        ordinal = mark_announced(incident, announcement, now)
        if announcement is Announcement.ESCALATED:
            receivers = self.routing.escalation_targets(incident.model_id)
        else:
            receivers = self.routing.receivers_for(incident.model_id, incident.alerts.values())
        owners = tuple(self.routing.owners_for(incident.model_id, sorted({alert.kind for alert in incident.alerts.values()})))
        suppressed = self._suppression(incident.model_id, partition, now, incident.severity)
        item = NoticeItem(str(announcement), incident, owners)
        for receiver in receivers:
            key = idempotency_key(incident.incident_id, receiver.name, announcement, ordinal)
            if incident.severity == "P2" and suppressed is None and announcement is not Announcement.ESCALATED:
                await self._add_to_digest(receiver, key, item)
            else:
                await self._request_delivery(receiver, Notice(key, (item,)), suppressed, partition, now)

    async def _add_to_digest(self, receiver: Receiver, item_key: str, item: NoticeItem) -> None:
        command = {
            "type": "digest_add",
            "bucket": bucket_key(receiver),
            "receiver": {"name": receiver.name, "type": receiver.type, "url": receiver.url},
            "item_key": item_key,
            "item": {"announcement": item.announcement, "incident": item.incident.to_dict(), "owners": list(item.owners)},
        }
        await self._publish(self.commands, b"digest", orjson.dumps(command), bucket_partition(receiver, self.settings.partitions))

    async def _flush_digest(self, bucket: DigestBucket, partition: int, now: float) -> None:
        receiver = Receiver(**bucket.receiver)
        items = tuple(
            NoticeItem(item["announcement"], Incident.from_dict(item["incident"]), tuple(item["owners"])) for item in bucket.items.values()
        )
        notice = Notice(digest_idempotency_key(bucket_key(receiver), list(bucket.items)), items, digest=True)
        await self._request_delivery(receiver, notice, None, partition, now)

    async def _request_delivery(self, receiver: Receiver, notice: Notice, suppressed: str | None, partition: int, now: float) -> None:
        request = DeliveryRequest(
            idempotency_key=notice.idempotency_key,
            receiver=receiver.name,
            receiver_type=receiver.type,
            url=receiver.url,
            body=render(receiver.type, receiver.url, notice),
            incident_ids=sorted({item.incident.incident_id for item in notice.items}),
            announcement="digest" if notice.digest else notice.items[0].announcement,
            suppressed=suppressed,
            requested_at=now,
        )
        await self._publish(self.deliveries, notice.idempotency_key.encode(), request.to_bytes(), partition)

    def _suppression(self, model_id: str, partition: int, now: float, severity: str) -> str | None:
        silence = self.silences.get(f"{partition}/{model_id}")
        if silence is not None and silence["until"] > now:
            return "silenced"
        if self.routing.in_quiet_hours(model_id, now, severity):
            return "quiet_hours"
        return None

    # ---- deliveries ----------------------------------------------------------------------

    async def _deliver(self, session: aiohttp.ClientSession, request: DeliveryRequest, partition: int) -> None:
        logged = self.delivery_log.get(request.idempotency_key)
        if logged is not None and logged["outcome"] != "failed":
            return  # a replay of a request already delivered or recorded as suppressed
        if too_old(request.requested_at, time.time(), self.timing):
            log.info("delivery %s requested beyond the retention ago: not sent (its log entry may be deleted)", request.idempotency_key)
            return
        if request.suppressed is not None:
            outcome, attempts, status_code, error = request.suppressed, 0, None, None
        else:
            result = await post_with_retries(session, request, self.settings.retry, self._rng)
            outcome, attempts, status_code, error = result.outcome, result.attempts, result.status_code, result.error
        self.delivery_log[request.idempotency_key] = {
            "idempotency_key": request.idempotency_key, "receiver": request.receiver, "receiver_type": request.receiver_type,
            "incident_ids": request.incident_ids, "announcement": request.announcement, "requested_at": iso_time(request.requested_at),
            "finished_at": iso_time(time.time()), "outcome": outcome, "attempts": attempts, "status_code": status_code, "error": error,
            "partition": partition,  # of the key in the table: the tick of this partition deletes it (_prune)
        }

    # ---- helpers -------------------------------------------------------------------------

    def find_incident(self, incident_id: str) -> Incident | None:
        raw = self.incidents.get(incident_id)
        return Incident.from_dict(raw) if raw is not None else None

    def _unsettled_incidents_of(self, partition: int) -> Iterator[Incident]:
        for raw in self.incidents.values():
            if raw["partition"] == partition and not settled(raw):
                yield Incident.from_dict(raw)

    async def send_command(self, command: dict[str, Any], partition: int) -> None:
        await self._publish(self.commands, command["type"].encode(), orjson.dumps(command), partition)

    async def _publish(self, topic: faust.TopicT, key: bytes, value: bytes, partition: int | None) -> None:
        """Send and wait for the broker's acknowledgement: what follows may record that it was sent."""
        pending = await topic.send(key=key, value=value, partition=partition)
        await pending

    async def _dead_letter(self, event: EventT, exc: Exception) -> None:
        message = event.message
        reason = exc.reason if isinstance(exc, RejectedRecord) else Reason.HANDLER_FAILED
        log.exception("record %s[%d]@%d dead-lettered (%s)", message.topic, message.partition, message.offset, reason, exc_info=exc)
        record = {
            "schema_version": "1.0",
            "kind": {self.alerts_topic: "alert", self.commands_topic: "incident_command"}.get(message.topic, "delivery"),
            "reason": str(reason),
            "message": f"{type(exc).__name__}: {exc}"[:1024],
            "original": base64.b64encode(message.value or b"").decode("ascii"),
            "source": {"topic": message.topic, "partition": message.partition, "offset": message.offset},
            "model_id": _model_id_of(message.value),
            "rejected_at": iso_time(time.time()),
        }
        await self._publish(self.deadletter, message.key or b"", orjson.dumps(record), None)


def _decode_alert(raw: bytes | None) -> dict[str, Any]:
    try:
        alert = orjson.loads(raw or b"")
    except orjson.JSONDecodeError as exc:
        raise RejectedRecord(Reason.JSON_MALFORMED, str(exc)) from None
    error = jsonschema.exceptions.best_match(_ALERT_VALIDATOR.iter_errors(alert))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
        raise RejectedRecord(Reason.INVALID_ALERT, f"{where}: {error.message}")
    return alert


def _model_id_of(raw: bytes | None) -> str | None:
    """The record's model_id the way ingest's dead-letter records find it (a safe id, also from broken JSON)."""
    try:
        value = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        value = None
    return readable_model_id(value, raw)
