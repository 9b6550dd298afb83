"""One Kafka transaction per batch: a worker's outputs and its input offsets commit together or not at all."""

from __future__ import annotations

import logging
import socket
from typing import NamedTuple

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

log = logging.getLogger("driftline.transaction")

MAX_RECORD_BYTES = 32 * 1024 * 1024
"""Largest record a worker writes: checkpoints hold many window profiles (tens of kB each)."""


class Output(NamedTuple):
    """A record to publish; ``partition`` None lets the key choose it."""

    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None


def group_consumer(bootstrap: str, group_id: str, role: str, worker_id: str) -> Consumer:
    """A worker's consumer: read_committed, offsets committed only through the producer's transaction.

    Static membership: a worker slot restarted after a crash takes its partitions back at once
    instead of waiting for the dead member's session to time out and a rebalance.
    """
    return Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "client.id": f"driftline-{role}-{worker_id}@{socket.gethostname()}",
        "group.instance.id": f"{group_id}.{worker_id}",
        "session.timeout.ms": 30_000,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "fetch.max.bytes": 64 * 1024 * 1024,
        "log_level": 3,
    })


def records(messages: list[Message]) -> list[Message]:
    """The consumed records of a batch; consumer errors are logged (end-of-partition events dropped)."""
    kept = []
    for message in messages:
        error = message.error()
        if error is None:
            kept.append(message)
        elif error.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer error: %s", error)
    return kept


class TransactionalProducer:
    """A producer with a stable ``transactional.id``: a restarted worker of the same slot fences its
    dead predecessor and aborts its open transaction at once instead of waiting for the timeout."""

    def __init__(self, bootstrap: str, transactional_id: str) -> None:
        self._producer = Producer({
            "bootstrap.servers": bootstrap,
            "transactional.id": transactional_id,
            "linger.ms": 5,
            "compression.type": "lz4",
            "message.max.bytes": MAX_RECORD_BYTES,
            "log_level": 3,
        })

    def init(self) -> None:
        self._producer.init_transactions(60)

    def commit(self, outputs: list[Output], positions: list[TopicPartition], consumer: Consumer) -> bool:
        """Publish ``outputs`` and commit the input ``positions`` in one transaction.

        Returns False if the transaction had to be aborted (the caller re-reads from its committed
        offsets); raises if the producer is fenced or failed fatally (the worker must stop).
        """
        self._producer.begin_transaction()
        try:
            for output in outputs:
                self._produce(*output)
            if positions:
                self._producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 60)
            self._producer.commit_transaction(60)
            return True
        except KafkaException as exc:
            error = exc.args[0]
            if not error.txn_requires_abort():
                raise
            log.warning("transaction aborted, re-reading the batch: %s", error)
            self._producer.abort_transaction(60)
            return False

    def flush(self, timeout: float) -> None:
        self._producer.flush(timeout)

    def _produce(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        extra = {} if partition is None else {"partition": partition}
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, **extra)
                return
            except BufferError:  # local queue full: let librdkafka send, then retry
                self._producer.poll(0.05)
