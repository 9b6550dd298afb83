"""Reading checkpoints back from a compacted state topic (``ingest-state``, ``evaluate-state``).

A worker writes each checkpoint to an explicit partition of the state topic (the number of the input
partition it belongs to), in the transaction that commits that input's offsets. On assignment it
reads that state partition from the start to its end with ``read_committed``: the last value of each
key is the state as of the committed offsets.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

READ_TIMEOUT_SECONDS = 60.0


def read_latest(bootstrap: str, topic: str, partition: int) -> dict[bytes, bytes]:
    """The last committed value of every key in one partition of a state topic."""
    reader = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"driftline-state-reader-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
        "fetch.max.bytes": 64 * 1024 * 1024,
        "log_level": 3,
    })
    latest: dict[bytes, bytes] = {}
    reader.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    deadline = time.monotonic() + READ_TIMEOUT_SECONDS
    try:
        while time.monotonic() < deadline:
            # consume() waits its whole timeout unless the batch fills: keep it short to see the end soon.
            for message in reader.consume(1000, timeout=0.05):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        return latest
                    raise KafkaException(error)
                if message.value() is None:
                    latest.pop(message.key(), None)
                else:
                    latest[message.key()] = message.value()
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"no end of {topic}[{partition}] within {READ_TIMEOUT_SECONDS:.0f} s"))
    finally:
        reader.close()
