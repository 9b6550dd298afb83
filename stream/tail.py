"""Read the last records of a topic, then (optionally) follow it: the engine of ``driftline ... tail``."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator

import orjson
from confluent_kafka import Consumer, KafkaError, TopicPartition

from stream.settings import ConfigError


def tail(
    bootstrap: str,
    topic: str,
    last: int,
    follow: bool,
    stop: Callable[[], bool] = lambda: False,
    idle_timeout: float = 1.0,
) -> Iterator[dict]:
    """Yield the JSON records of ``topic``: the last ``last`` of each partition (oldest first), then new ones while ``follow``.

    Reads with ``read_committed`` isolation and commits nothing: tailing never disturbs a consumer group.
    A record that is not JSON is yielded as ``{"undecodable": <text>}`` rather than hidden.
    """
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"driftline-tail-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
        "log_level": 3,
    })
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise ConfigError(f"topic {topic} does not exist; create the topics with `driftline topics create`")
        starts = []
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            starts.append(TopicPartition(topic, partition, max(low, high - last)))
        consumer.assign(starts)
        backlog, at_end = [], set()
        while len(at_end) < len(starts):
            for message in consumer.consume(500, timeout=idle_timeout):
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                elif error is None:
                    backlog.append(message)
            if stop():
                return
        backlog.sort(key=lambda m: m.timestamp()[1])
        for message in backlog[-last:] if last else []:
            yield _record(message.value())
        while follow and not stop():
            for message in consumer.consume(500, timeout=idle_timeout):
                if message.error() is None:
                    yield _record(message.value())
    finally:
        consumer.close()


def _record(value: bytes | None) -> dict:
    try:
        record = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return {"undecodable": (value or b"").decode("utf-8", "replace")}
    return record if isinstance(record, dict) else {"undecodable": repr(record)}


def show(records: Iterator[dict], as_json: bool, render: Callable[[Iterator[dict]], None]) -> None:
    """Print tailed records as JSON lines or with ``render``, until they end or Ctrl-C."""
    try:
        if as_json:
            for record in records:
                sys.stdout.write(orjson.dumps(record).decode() + "\n")
                sys.stdout.flush()
        else:
            render(records)
    except KeyboardInterrupt:
        pass
