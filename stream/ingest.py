"""The ingest worker's consuming side: batch consume, decode and validate, dead-letter, hand on, commit.

Each batch is one Kafka transaction: the dead-letter records, whatever the handler publishes, and
the input offsets commit together or not at all, so after a crash the worker re-reads exactly the
uncommitted input and every consumed record ends up exactly once either handed on or
dead-lettered.

A decoder per input partition keeps the recent prediction ids for duplicate detection. Its state is
a function of the partition's recent records (see ``Decoder``), so a newly assigned partition
rebuilds it by re-decoding the records just before the committed offset: the input topic is the
changelog, and nothing extra is written per event.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from stream.decode import Decoder, EventKind, Limits
from stream.settings import StackSettings, TopicSettings

log = logging.getLogger("driftline.ingest")

Output = tuple[str, bytes | None, bytes]  # topic, key, value
Handler = Callable[[str, int, list[dict]], list[Output]]


@dataclass
class IngestStats:
    """Counts of committed work: consumed == handed_on + deadlettered at every commit."""

    consumed: int = 0
    handed_on: int = 0
    deadlettered: int = 0
    batches: int = 0
    aborted_batches: int = 0
    rejects: Counter = field(default_factory=Counter)  # (reason, model_id) -> count


class IngestWorker:
    """Consumes the inference and labels topics in one consumer group, exactly once per record."""

    def __init__(
        self,
        stack: StackSettings,
        topics: TopicSettings,
        handler: Handler,
        *,
        group_id: str | None = None,
        worker_id: str = "0",
        limits: Mapping[EventKind, Limits] | None = None,
        batch_size: int = 5000,
        poll_timeout: float = 0.2,
    ):
        self.topics = topics
        self.handler = handler
        self.limits = {EventKind.INFERENCE: Limits(), EventKind.LABEL: Limits(), **(limits or {})}
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.group_id = group_id or f"{topics.prefix}.ingest"
        self.kinds = {topics.name("inference"): EventKind.INFERENCE, topics.name("labels"): EventKind.LABEL}
        self.deadletter_topic = topics.name("deadletter")
        self.stats = IngestStats()
        self._decoders: dict[tuple[str, int], Decoder] = {}
        self._stop = threading.Event()
        self._consumer = Consumer({
            "bootstrap.servers": stack.kafka_bootstrap,
            "group.id": self.group_id,
            "client.id": f"driftline-ingest-{worker_id}@{socket.gethostname()}",
            # Static membership: a worker restarted after a crash takes its slot back at once instead
            # of waiting for the dead member's session to time out and a rebalance.
            "group.instance.id": f"{self.group_id}.{worker_id}",
            "session.timeout.ms": 30_000,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "fetch.max.bytes": 64 * 1024 * 1024,
            "log_level": 3,
        })
        # A stable transactional id per worker slot: a restarted worker fences its dead predecessor
        # and aborts its open transaction at once instead of waiting for the transaction timeout.
        self._producer = Producer({
            "bootstrap.servers": stack.kafka_bootstrap,
            "transactional.id": f"{self.group_id}.{worker_id}",
            "linger.ms": 5,
            "compression.type": "lz4",
            "log_level": 3,
        })
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
        self._producer.init_transactions(60)
        self._consumer.subscribe(list(self.kinds), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke)
        try:
            while not self._stop.is_set() and (max_batches is None or self.stats.batches < max_batches):
                messages = self._consumer.consume(self.batch_size, timeout=self.poll_timeout)
                if messages:
                    self._process(messages)
        finally:
            self._consumer.close()
            self._producer.flush(30)
        return self.stats

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for position in consumer.committed(partitions, timeout=30):
            kind = self.kinds[position.topic]
            decoder = Decoder(kind, self.limits[kind])
            self._rebuild(decoder, position.topic, position.partition, position.offset)
            self._decoders[(position.topic, position.partition)] = decoder

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for position in partitions:
            self._decoders.pop((position.topic, position.partition), None)

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
        by_partition: dict[tuple[str, int], list[Message]] = defaultdict(list)
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", error)
                continue
            by_partition[(message.topic(), message.partition())].append(message)
        if not by_partition:
            return
        outputs: list[Output] = []
        rejects: Counter = Counter()
        handed_on = deadlettered = 0
        for (topic, partition), batch in by_partition.items():
            decoder = self._decoders.get((topic, partition))
            if decoder is None:  # revoked while the batch was in flight: the new owner re-reads it
                continue
            decoded = decoder.decode([m.value() for m in batch], topic, partition, [m.offset() for m in batch])
            for reject, message in zip(decoded.rejects, self._rejected_messages(batch, decoded)):
                outputs.append((self.deadletter_topic, message.key(), orjson.dumps(reject.deadletter_record())))
            rejects.update(decoded.counts)
            deadlettered += len(decoded.rejects)
            handed_on += len(decoded.events)
            outputs.extend(self.handler(topic, partition, decoded.events))
        positions = [
            TopicPartition(topic, partition, batch[-1].offset() + 1)
            for (topic, partition), batch in by_partition.items()
            if (topic, partition) in self._decoders
        ]
        if self._commit(outputs, positions):
            self.stats.consumed += handed_on + deadlettered
            self.stats.handed_on += handed_on
            self.stats.deadlettered += deadlettered
            self.stats.rejects.update(rejects)
            self.stats.batches += 1

    @staticmethod
    def _rejected_messages(batch: list[Message], decoded) -> list[Message]:
        by_offset = {m.offset(): m for m in batch}
        return [by_offset[reject.offset] for reject in decoded.rejects]

    def _commit(self, outputs: list[Output], positions: list[TopicPartition]) -> bool:
        """Publish outputs and commit the input positions in one transaction; False if it was aborted."""
        self._producer.begin_transaction()
        try:
            for topic, key, value in outputs:
                self._produce(topic, key, value)
            self._producer.send_offsets_to_transaction(positions, self._consumer.consumer_group_metadata(), 60)
            self._producer.commit_transaction(60)
            return True
        except KafkaException as exc:
            error = exc.args[0]
            if not error.txn_requires_abort():
                raise  # fatal (e.g. fenced by a newer instance): this worker must stop
            log.warning("transaction aborted, re-reading the batch: %s", error)
            self._producer.abort_transaction(60)
            self._rewind(positions)
            self.stats.aborted_batches += 1
            return False

    def _produce(self, topic: str, key: bytes | None, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(topic, value=value, key=key)
                return
            except BufferError:  # local queue full: let librdkafka send, then retry
                self._producer.poll(0.05)

    def _rewind(self, positions: list[TopicPartition]) -> None:
        """Back to the committed offsets, with decoders rebuilt as of them (the aborted batch never happened)."""
        committed = self._consumer.committed([TopicPartition(p.topic, p.partition) for p in positions], timeout=30)
        self._on_assign(self._consumer, committed)
        for position in committed:
            offset = position.offset if position.offset >= 0 else OFFSET_BEGINNING
            self._consumer.seek(TopicPartition(position.topic, position.partition, offset))

