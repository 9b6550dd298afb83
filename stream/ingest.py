"""The ingest worker's consuming side: batch consume, decode and validate, dead-letter, hand on, commit.

Each batch is one Kafka transaction: the dead-letter records, whatever the handler publishes, and
the input offsets commit together or not at all, so after a crash the worker re-reads exactly the
uncommitted input and every consumed record ends up exactly once either handed on or
dead-lettered.

A decoder per input partition keeps the recent prediction ids for duplicate detection. Its state is
a function of the partition's recent records (see ``Decoder``), so a newly assigned partition
rebuilds it by re-decoding the records just before the committed offset: the input topic is the
changelog, and nothing extra is written per event.

A stateful handler (``PartitionHandler``, e.g. the window aggregation) checkpoints the state of every
input partition it changed into the compacted ``ingest-state`` topic in the batch's transaction
(key ``group/topic/partition``, written to the state partition of the same number), and gets it back
on assignment, so its state always matches the committed offsets.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from stream.decode import Decoder, EventKind, Limits, Reject
from stream.heartbeat import Heartbeat, HeartbeatSink, SourcePartition, unconsumed_partitions
from stream.settings import StackSettings, TopicSettings
from stream.state_topic import read_latest
from stream.transaction import Output, TransactionalProducer, group_consumer, records

if TYPE_CHECKING:
    from stream.metrics import IngestMetrics

log = logging.getLogger("driftline.ingest")

PlacedReject = tuple[int, Reject]  # (accepted events of the batch before it, the rejected value)

BATCH_SIZE = 20_000
"""Records per consumed batch, i.e. per transaction (a batch ends early when the poll times out, so
a quiet topic is not held back). A commit waits ~15 ms for the broker whatever the batch holds: in
same-run A/B runs of one worker over 300k backlogged events, 20,000 gave 10-22 % more events/s
than 5,000, for ~40 MiB more RSS; 40,000 gave no more."""


class PartitionHandler(Protocol):
    """What the worker hands accepted events to, with per-input-partition state."""

    stateful: bool
    """Whether ``checkpoints`` / ``assign`` carry state (else the state topic is never read)."""

    def assign(self, topic: str, partition: int, state: bytes | None) -> None:
        """Take over a partition, with its last committed checkpoint (None if it has none)."""

    def revoke(self, topic: str, partition: int) -> None:
        """Drop a partition's state: another worker owns it now."""

    def handle(self, topic: str, partition: int, events: list[dict], rejects: Sequence[PlacedReject] = ()) -> list[Output]:
        """Accepted events of one partition, in offset order, and the values rejected among them
        (already dead-lettered; e.g. counted per window); returns the records to publish."""

    def tick(self, behind: frozenset[SourcePartition] = frozenset()) -> list[Output]:
        """Wall-clock driven work, called after every poll (e.g. idle partitions' watermarks).
        ``behind``: assigned partitions with a backlog still to consume, whose silence says nothing."""

    def checkpoints(self) -> dict[SourcePartition, bytes]:
        """State of each partition changed since the last call (committed with the batch)."""


class ForwardingHandler:
    """A stateless handler from a function ``(topic, partition, events) -> outputs``."""

    stateful = False

    def __init__(self, forward: Callable[[str, int, list[dict]], list[Output]]) -> None:
        self._forward = forward

    def assign(self, topic: str, partition: int, state: bytes | None) -> None:
        pass

    def revoke(self, topic: str, partition: int) -> None:
        pass

    def handle(self, topic: str, partition: int, events: list[dict], rejects: Sequence[PlacedReject] = ()) -> list[Output]:
        return self._forward(topic, partition, events)

    def tick(self, behind: frozenset[SourcePartition] = frozenset()) -> list[Output]:
        return []

    def checkpoints(self) -> dict[SourcePartition, bytes]:
        return {}


class HandlerChain:
    """Several handlers in one worker (the window aggregation and the label join): each sees every
    partition and event; each input partition's checkpoint belongs to one of them."""

    def __init__(self, *handlers: PartitionHandler) -> None:
        self.handlers = handlers
        self.stateful = any(handler.stateful for handler in handlers)

    def assign(self, topic: str, partition: int, state: bytes | None) -> None:
        for handler in self.handlers:
            handler.assign(topic, partition, state)

    def revoke(self, topic: str, partition: int) -> None:
        for handler in self.handlers:
            handler.revoke(topic, partition)

    def handle(self, topic: str, partition: int, events: list[dict], rejects: Sequence[PlacedReject] = ()) -> list[Output]:
        return [output for handler in self.handlers for output in handler.handle(topic, partition, events, rejects)]

    def tick(self, behind: frozenset[SourcePartition] = frozenset()) -> list[Output]:
        return [output for handler in self.handlers for output in handler.tick(behind)]

    def checkpoints(self) -> dict[SourcePartition, bytes]:
        merged: dict[SourcePartition, bytes] = {}
        for handler in self.handlers:
            states = handler.checkpoints()
            if merged.keys() & states.keys():
                raise RuntimeError(f"two handlers checkpoint the same input partitions {sorted(merged.keys() & states.keys())}")
            merged.update(states)
        return merged


@dataclass
class IngestStats:
    """Counts of committed work: consumed == handed_on + deadlettered at every commit."""

    consumed: int = 0
    handed_on: int = 0
    deadlettered: int = 0
    batches: int = 0
    aborted_batches: int = 0
    rejects: Counter = field(default_factory=Counter)  # (reason, model_id) -> count

    def totals(self) -> dict[str, int]:
        return {"consumed": self.consumed, "handed_on": self.handed_on, "deadlettered": self.deadlettered,
                "batches": self.batches, "aborted_batches": self.aborted_batches}  # fmt: skip


class IngestWorker:
    """Consumes the inference and labels topics in one consumer group, exactly once per record."""

    def __init__(
        self,
        stack: StackSettings,
        topics: TopicSettings,
        handler: PartitionHandler | Callable[[str, int, list[dict]], list[Output]],
        *,
        group_id: str | None = None,
        worker_id: str = "0",
        limits: Mapping[EventKind, Limits] | None = None,
        batch_size: int = BATCH_SIZE,
        poll_timeout: float = 0.2,
        mirror: HeartbeatSink | None = None,
        report: Callable[[], dict] | None = None,
        metrics: IngestMetrics | None = None,
    ):
        self.topics = topics
        self.metrics = metrics
        self.handler: PartitionHandler = handler if hasattr(handler, "handle") else ForwardingHandler(handler)
        self.bootstrap = stack.kafka_bootstrap
        self.limits = {EventKind.INFERENCE: Limits(), EventKind.LABEL: Limits(), **(limits or {})}
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.group_id = group_id or f"{topics.prefix}.ingest"
        self.kinds = {topics.name("inference"): EventKind.INFERENCE, topics.name("labels"): EventKind.LABEL}
        self.deadletter_topic = topics.name("deadletter")
        self.state_topic = topics.name("ingest-state")
        self.stats = IngestStats()
        self._decoders: dict[tuple[str, int], Decoder] = {}
        self._assigned_from: dict[SourcePartition, int] = {}
        """The committed offset each partition was assigned at: where its unconsumed records start."""
        self._stop = threading.Event()
        self._consumer = group_consumer(stack.kafka_bootstrap, self.group_id, "ingest", worker_id)
        self._producer = TransactionalProducer(stack.kafka_bootstrap, f"{self.group_id}.{worker_id}")
        self._heartbeat = Heartbeat(mirror, "ingest", worker_id, self._consumer, lag_sink=metrics)
        self._report = report or self.stats.totals
        """What a heartbeat says besides the lag (run.py adds the handler's counts)."""
        self._restore_reader_config = {
            "bootstrap.servers": stack.kafka_bootstrap,
            "group.id": f"{self.group_id}.restore",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "log_level": 3,
        }

    def stop(self) -> None:
        """Finish the current batch, commit it, and return from ``run``."""
        self._stop.set()

    def run(self, max_batches: int | None = None) -> IngestStats:
        self._producer.init()
        self._consumer.subscribe(list(self.kinds), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke)
        try:
            while not self._stop.is_set() and (max_batches is None or self.stats.batches < max_batches):
                self._process(self._consumer.consume(self.batch_size, timeout=self.poll_timeout))
                self._heartbeat.beat(self._report)
        finally:
            self._consumer.close()
            self._producer.flush(30)
        return self.stats

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        committed = consumer.committed(partitions, timeout=30)
        checkpoints = self._checkpoints({position.partition for position in committed})
        for position in committed:
            kind = self.kinds[position.topic]
            decoder = Decoder(kind, self.limits[kind])
            self._rebuild(decoder, position.topic, position.partition, position.offset)
            self._decoders[(position.topic, position.partition)] = decoder
            self._assigned_from[(position.topic, position.partition)] = position.offset
            self.handler.assign(position.topic, position.partition, checkpoints.get(self._state_key(position.topic, position.partition)))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for position in partitions:
            self._decoders.pop((position.topic, position.partition), None)
            self._assigned_from.pop((position.topic, position.partition), None)
            self.handler.revoke(position.topic, position.partition)

    def _state_key(self, topic: str, partition: int) -> bytes:
        return f"{self.group_id}/{topic}/{partition}".encode()

    def _checkpoints(self, state_partitions: set[int]) -> dict[bytes, bytes]:
        """The last committed checkpoint of every key in the given partitions of the state topic."""
        if not self.handler.stateful:
            return {}
        checkpoints: dict[bytes, bytes] = {}
        for partition in sorted(state_partitions):
            checkpoints.update(read_latest(self.bootstrap, self.state_topic, partition))
        return checkpoints

    def _rebuild(self, decoder: Decoder, topic: str, partition: int, committed: int) -> None:
        """Re-decode the records before ``committed`` that the decoder's state depends on."""
        if committed <= 0:
            return
        start = decoder.replay_start(committed)
        if start >= committed:
            return
        reader = Consumer(self._restore_reader_config)
        reader.assign([TopicPartition(topic, partition, start)])
        try:
            while True:
                messages = [m for m in reader.consume(self.batch_size, timeout=5) if m.error() is None and m.offset() < committed]
                if not messages:
                    break
                decoder.decode([m.value() for m in messages], topic, partition, [m.offset() for m in messages])
                if messages[-1].offset() >= committed - 1:
                    break
        finally:
            reader.close()

    def _process(self, messages: list[Message]) -> None:
        started = time.perf_counter()
        by_partition: dict[tuple[str, int], list[Message]] = defaultdict(list)
        for message in records(messages):
            by_partition[(message.topic(), message.partition())].append(message)
        outputs: list[Output] = []
        rejects: Counter = Counter()
        handed_on = deadlettered = 0
        processed_by_kind: Counter[str] = Counter()
        rejects_by_kind: Counter[tuple[str, str]] = Counter()  # (kind, reason) -> count
        for (topic, partition), batch in by_partition.items():
            decoder = self._decoders.get((topic, partition))
            if decoder is None:  # revoked while the batch was in flight: the new owner re-reads it
                continue
            offsets = [message.offset() for message in batch]
            decoded = decoder.decode([message.value() for message in batch], topic, partition, offsets)
            position = {offset: index for index, offset in enumerate(offsets)} if decoded.rejects else {}
            for reject in decoded.rejects:
                key = batch[position[reject.offset]].key()
                outputs.append(Output(self.deadletter_topic, key, orjson.dumps(reject.deadletter_record())))
            rejects.update(decoded.counts)
            deadlettered += len(decoded.rejects)
            handed_on += len(decoded.events)
            kind = str(self.kinds[topic])
            processed_by_kind[kind] += len(decoded.events)
            rejects_by_kind.update((kind, str(reject.reason)) for reject in decoded.rejects)
            # Each reject with the number of accepted events of the batch before it.
            placed = [(position[reject.offset] - rank, reject) for rank, reject in enumerate(decoded.rejects)]
            outputs.extend(self.handler.handle(topic, partition, decoded.events, placed))
        # More than a batch to go is a backlog; less is what arrived while this batch was processed.
        outputs.extend(self.handler.tick(unconsumed_partitions(self._consumer, self._assigned_from, more_than=self.batch_size)))
        outputs.extend(
            Output(self.state_topic, self._state_key(topic, partition), state, partition)
            for (topic, partition), state in self.handler.checkpoints().items()
            if (topic, partition) in self._decoders
        )
        positions = [
            TopicPartition(topic, partition, batch[-1].offset() + 1)
            for (topic, partition), batch in by_partition.items()
            if (topic, partition) in self._decoders
        ]
        if not outputs and not positions:
            return
        if self._commit(outputs, positions) and positions:
            self.stats.consumed += handed_on + deadlettered
            self.stats.handed_on += handed_on
            self.stats.deadlettered += deadlettered
            self.stats.rejects.update(rejects)
            self.stats.batches += 1
            if self.metrics is not None:
                self.metrics.events(processed_by_kind, rejects_by_kind)
                self.metrics.batch(handed_on + deadlettered, time.perf_counter() - started)

    def _commit(self, outputs: list[Output], positions: list[TopicPartition]) -> bool:
        """Publish outputs and commit the input positions in one transaction; False if it was aborted."""
        started = time.perf_counter()
        committed = self._producer.commit(outputs, positions, self._consumer)
        if self.metrics is not None:
            self.metrics.transaction(time.perf_counter() - started, committed)
        if committed:
            return True
        self._rewind([TopicPartition(topic, partition) for topic, partition in self._decoders])
        self.stats.aborted_batches += 1
        return False

    def _rewind(self, positions: list[TopicPartition]) -> None:
        """Back to the committed offsets, with decoders rebuilt as of them (the aborted batch never happened)."""
        committed = self._consumer.committed([TopicPartition(p.topic, p.partition) for p in positions], timeout=30)
        self._on_assign(self._consumer, committed)
        for position in committed:
            offset = position.offset if position.offset >= 0 else OFFSET_BEGINNING
            self._consumer.seek(TopicPartition(position.topic, position.partition, offset))

