"""The driftline topics: what each carries, how it is partitioned and retained, and their creation.

Creation is idempotent. An existing topic whose partition count or retention/cleanup
differs from what is asked is reported, never silently accepted nor changed: Kafka
cannot shrink a topic, and growing the inference/labels pair moves keys between
partitions and so breaks the label join's co-partitioning for in-flight predictions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from stream.settings import ConfigError, TopicSettings
from stream.transaction import MAX_RECORD_BYTES

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
STATE_SEGMENT_MS = 10 * 60_000


@dataclass(frozen=True)
class TopicRole:
    role: str
    carries: str
    keyed_by: str
    partitioned_like: str  # "events" or "models": which partition count of TopicSettings applies
    retention_ms: int
    cleanup_policy: str = "delete"
    max_message_bytes: int | None = None  # None: the broker's default (1 MB)
    segment_ms: int | None = None  # None: the broker's default (7 days)


TOPIC_ROLES: tuple[TopicRole, ...] = (
    TopicRole("inference", "inference events from model servers", "prediction_id", "events", 7 * DAY_MS),
    TopicRole("labels", "ground-truth label events", "prediction_id", "events", 7 * DAY_MS),
    TopicRole("partials", "window partial sketches from ingest workers", "model_id", "models", 1 * DAY_MS),
    TopicRole("outcomes", "joined prediction + label outcomes", "model_id", "models", 7 * DAY_MS),
    TopicRole("alerts", "alert events", "model_id", "models", 30 * DAY_MS),
    TopicRole("deadletter", "rejected input with reason and original bytes", "source key", "models", 30 * DAY_MS),
    # The incident service's own topics: sent to the incident's partition (that of its model's
    # alerts), so they must have the alerts topic's partition count (docs/incidents.md).
    TopicRole("incident-commands", "incident service commands: ticks, ack/resolve/silence, digest items", "command type", "models", 1 * DAY_MS),
    TopicRole("incident-deliveries", "incident service delivery requests (webhook outbox)", "idempotency key", "models", 7 * DAY_MS),
    # Checkpoints hold many window profiles (tens of kB each): they may exceed the broker's 1 MB default.
    # Compaction only cleans closed segments: rolling every 10 minutes keeps a restore reading
    # minutes of superseded checkpoints, not the days the broker's default 7-day segments would hold.
    TopicRole("ingest-state", "ingest checkpoints: open windows and the join store", "source partition", "events", -1, "compact", MAX_RECORD_BYTES, STATE_SEGMENT_MS),
    TopicRole("evaluate-state", "evaluate checkpoints: window rings, detectors, alert lifecycle", "model_id", "models", -1, "compact", MAX_RECORD_BYTES, STATE_SEGMENT_MS),
    TopicRole("join-changelog", "label join entries waiting for the other side (tombstone when they leave)", "prediction_id", "events", -1, "compact", None, STATE_SEGMENT_MS),
)
ROLES = {topic.role: topic for topic in TOPIC_ROLES}


@dataclass(frozen=True)
class TopicPlan:
    name: str
    role: TopicRole
    partitions: int
    retention_ms: int

    @property
    def configs(self) -> dict[str, str]:
        configs = {"cleanup.policy": self.role.cleanup_policy, "retention.ms": str(self.retention_ms)}
        if self.role.max_message_bytes is not None:
            configs["max.message.bytes"] = str(self.role.max_message_bytes)
        if self.role.segment_ms is not None:
            configs["segment.ms"] = str(self.role.segment_ms)
        return configs


@dataclass(frozen=True)
class TopicReport:
    name: str
    outcome: str  # "created", "exists" or "differs"
    detail: str = ""


def parse_retention(items: list[str]) -> dict[str, int]:
    """Parse ``ROLE=DURATION`` overrides (``alerts=90d``, ``partials=12h``, ``inference=-1`` keeps forever)."""
    units = {"h": HOUR_MS, "d": DAY_MS}
    overrides: dict[str, int] = {}
    for item in items:
        role, _, duration = item.partition("=")
        if role not in ROLES:
            raise ConfigError(f"--retention {item!r}: unknown topic role {role!r}; use one of {', '.join(ROLES)}")
        try:
            overrides[role] = -1 if duration == "-1" else int(duration[:-1]) * units[duration[-1]]
        except (KeyError, ValueError, IndexError):
            raise ConfigError(f"--retention {item!r}: write the duration as hours or days, e.g. {role}=12h or {role}=30d, or -1 to keep forever") from None
    return overrides


def plan_topics(settings: TopicSettings, retention_overrides: dict[str, int] | None = None) -> list[TopicPlan]:
    overrides = retention_overrides or {}
    counts = {"events": settings.event_partitions, "models": settings.model_partitions}
    return [
        TopicPlan(settings.name(role.role), role, counts[role.partitioned_like], overrides.get(role.role, role.retention_ms))
        for role in TOPIC_ROLES
    ]


def create_topics(admin: AdminClient, plans: list[TopicPlan], timeout: float = 30.0) -> list[TopicReport]:
    """Create missing topics and report how existing ones differ from the plan."""
    existing = admin.list_topics(timeout=timeout).topics
    missing = [plan for plan in plans if plan.name not in existing]
    reports: dict[str, TopicReport] = {}
    if missing:
        futures = admin.create_topics(
            [NewTopic(plan.name, num_partitions=plan.partitions, replication_factor=1, config=plan.configs) for plan in missing],
            operation_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result()
                reports[name] = TopicReport(name, "created")
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":  # a concurrent creator won the race
                    raise
        existing = _wait_visible(admin, [plan.name for plan in missing], timeout)
    present = [plan for plan in plans if plan.name not in reports]
    actual_configs = _describe_configs(admin, [plan.name for plan in present], timeout)
    for plan in present:
        differences = []
        partitions = len(existing[plan.name].partitions)
        if partitions != plan.partitions:
            differences.append(f"has {partitions} partitions, {plan.partitions} wanted")
        for key, wanted in plan.configs.items():
            if actual_configs[plan.name].get(key) != wanted:
                differences.append(f"{key}={actual_configs[plan.name].get(key)}, {wanted} wanted")
        reports[plan.name] = TopicReport(plan.name, "differs" if differences else "exists", "; ".join(differences))
    return [reports[plan.name] for plan in plans]


def co_partitioning_error(admin: AdminClient, settings: TopicSettings, timeout: float = 30.0) -> str | None:
    """The label join needs inference and labels to have the same partition count."""
    topics = admin.list_topics(timeout=timeout).topics
    counts = {role: len(topics[settings.name(role)].partitions) for role in ("inference", "labels") if settings.name(role) in topics}
    if len(counts) == 2 and counts["inference"] != counts["labels"]:
        return (
            f"{settings.name('inference')} has {counts['inference']} partitions but {settings.name('labels')} has "
            f"{counts['labels']}: the label join needs the same count; recreate one of them with the other's count"
        )
    return None


def _wait_visible(admin: AdminClient, names: list[str], timeout: float) -> dict:
    """Topic creation returns before the broker's metadata has the topic: wait until it does."""
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=timeout).topics
        if all(name in topics and topics[name].error is None and topics[name].partitions for name in names):
            return topics
        if time.monotonic() > deadline:
            raise KafkaException(f"topics {names} were created but did not appear in the broker's metadata within {timeout:.0f} s")
        time.sleep(0.1)


def _describe_configs(admin: AdminClient, names: list[str], timeout: float) -> dict[str, dict[str, str]]:
    if not names:
        return {}
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, name) for name in names], request_timeout=timeout)
    return {
        resource.name: {key: entry.value for key, entry in future.result().items()} for resource, future in futures.items()
    }
