"""Worker heartbeats for the Redis mirror: alive, what the worker did, and how far behind it is.

Both workers beat from their consume loop, at most every ``interval`` seconds, so a worker stuck in
a batch stops beating and fades out of ``driftline state show`` after the mirror's heartbeat TTL.
The lag is measured once per beat and also handed to the worker's metrics: measuring it may ask the
broker for committed offsets, which the consume loop must not do on every poll.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from confluent_kafka import Consumer, TopicPartition

log = logging.getLogger("driftline.heartbeat")

SourcePartition = tuple[str, int]  # topic, partition


class HeartbeatSink(Protocol):
    def heartbeat(self, role: str, worker_id: str, info: dict) -> None: ...


class LagSink(Protocol):
    def consumer_lag(self, lag: dict[str, int]) -> None: ...


def unconsumed_records(consumer: Consumer, starts: Callable[[list[TopicPartition]], Mapping[SourcePartition, int]]) -> dict[SourcePartition, int | None]:
    """Records each assigned partition still has to deliver; ``None`` while its high end is unknown.

    The high end is librdkafka's cached one from the last fetch (with ``read_committed`` the last
    stable offset), so no broker round trip is made for it. A partition nothing was consumed from
    since assignment counts from ``starts(those partitions)`` (from the log start where that has
    no offset: the workers' ``auto.offset.reset`` is earliest).
    """
    assigned = consumer.assignment()
    if not assigned:
        return {}
    positions = consumer.position(assigned)
    unread = [TopicPartition(p.topic, p.partition) for p in positions if p.offset < 0]
    start_of = starts(unread) if unread else {}
    unconsumed: dict[SourcePartition, int | None] = {}
    for position in positions:
        low, high = consumer.get_watermark_offsets(position, cached=True)
        consumed_to = position.offset if position.offset >= 0 else start_of.get((position.topic, position.partition), -1)
        unconsumed[(position.topic, position.partition)] = None if high < 0 else max(high - (consumed_to if consumed_to >= 0 else low), 0)
    return unconsumed


def consumer_lag(consumer: Consumer) -> dict[str, int]:
    """Records each assigned partition still has to deliver, ``{"topic[partition]": n}``, for the
    partitions fetched since assignment (``unconsumed_records`` from the committed offsets)."""

    def committed(unread: list[TopicPartition]) -> dict[SourcePartition, int]:
        return {(p.topic, p.partition): p.offset for p in consumer.committed(unread, timeout=5)}

    return {f"{topic}[{partition}]": n for (topic, partition), n in unconsumed_records(consumer, committed).items() if n is not None}


def unconsumed_partitions(consumer: Consumer, assigned_from: Mapping[SourcePartition, int], more_than: int) -> frozenset[SourcePartition]:
    """The assigned partitions with a backlog: more than ``more_than`` records not consumed yet, by
    ``unconsumed_records`` from the offsets they were assigned at (no broker round trip), or not
    fetched yet. ``more_than`` is at least 1: a transactional producer's commit marker takes a
    partition's last offset and is never delivered (librdkafka issue 3917)."""
    return frozenset(
        source for source, n in unconsumed_records(consumer, lambda _: assigned_from).items() if n is None or n > max(more_than, 1)
    )


class Heartbeat:
    """Rate-limited heartbeats of one worker, with its consumer lag by partition."""

    def __init__(
        self,
        sink: HeartbeatSink | None,
        role: str,
        worker_id: str,
        consumer: Consumer,
        *,
        lag_sink: LagSink | None = None,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink, self.role, self.worker_id, self.consumer = sink, role, worker_id, consumer
        self.lag_sink = lag_sink
        self.interval = interval
        self._clock = clock
        self._last = -float("inf")

    def beat(self, info: Callable[[], dict[str, Any]]) -> None:
        """Send ``info()`` plus ``lag`` (and the lag to ``lag_sink``) if the last beat is ``interval`` old; never raises."""
        now = self._clock()
        if (self.sink is None and self.lag_sink is None) or now - self._last < self.interval:
            return
        self._last = now
        try:
            lag = consumer_lag(self.consumer)
            if self.lag_sink is not None:
                self.lag_sink.consumer_lag(lag)
            if self.sink is not None:
                self.sink.heartbeat(self.role, self.worker_id, {"lag": lag, **info()})
        except Exception:  # noqa: BLE001 - the mirror and metrics are for inspection: their failures must not stop a worker
            log.exception("heartbeat failed")
