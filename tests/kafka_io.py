"""Reading test topics back."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, Message


def consume_all(settings, topic: str, expected: int, isolation: str = "read_committed", timeout: float = 20.0) -> list[Message]:
    """Every record of `topic` from the start, as a fresh consumer group with `isolation` sees it."""
    consumer = Consumer({
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": f"reader-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest",
        "isolation.level": isolation,
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    received = []
    deadline = time.monotonic() + timeout
    quiet_until = None  # after `expected` arrived, read a little longer so that extras would show up
    while time.monotonic() < deadline:
        for message in consumer.consume(500, timeout=0.5):
            assert message.error() is None, message.error()
            received.append(message)
        if len(received) >= expected:
            quiet_until = quiet_until or time.monotonic() + 1.5
            if time.monotonic() >= quiet_until:
                break
    consumer.close()
    return received
