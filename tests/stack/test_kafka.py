"""The real broker: plain and transactional round trips."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicCollection, TopicPartition

from confluent_kafka.admin import AdminClient, NewTopic

from tests.kafka_io import consume_all

pytestmark = pytest.mark.integration


def _create(settings, *names: str, partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for future in admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]).values():
        future.result()


def test_produce_consume_round_trip(stack_settings, unique_name):
    _create(stack_settings, unique_name, partitions=3)
    producer = Producer({"bootstrap.servers": stack_settings.kafka_bootstrap, "enable.idempotence": True})
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(1000)}
    for key, value in sent.items():
        producer.produce(unique_name, key=key, value=value)
    assert producer.flush(30) == 0
    received = consume_all(stack_settings, unique_name, expected=len(sent))
    assert {m.key(): m.value() for m in received} == sent
    assert len(received) == len(sent)


def _transform(stack_settings, source: str, sink: str, group: str, commit: bool) -> int:
    """Consume everything from `source`, write upper-cased values to `sink` and the offsets, in one transaction."""
    consumer = Consumer({
        "bootstrap.servers": stack_settings.kafka_bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
    })
    consumer.subscribe([source])
    producer = Producer({"bootstrap.servers": stack_settings.kafka_bootstrap, "transactional.id": f"tx-{group}"})
    producer.init_transactions(30)
    messages = []
    deadline = time.monotonic() + 30
    while len(messages) < 100 and time.monotonic() < deadline:
        messages.extend(m for m in consumer.consume(100, timeout=0.5) if m.error() is None)
    assert len(messages) == 100
    producer.begin_transaction()
    for message in messages:
        producer.produce(sink, key=message.key(), value=message.value().upper())
    positions = [TopicPartition(source, 0, max(m.offset() for m in messages) + 1)]
    producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
    producer.flush(30)  # in the log before the decision: an abort must hide records, not merely purge unsent ones
    if commit:
        producer.commit_transaction(30)
    else:
        producer.abort_transaction(30)
    committed = consumer.committed([TopicPartition(source, 0)], timeout=10)[0].offset
    consumer.close()
    return committed


def test_transactional_round_trip_commits_output_and_offsets(stack_settings, unique_name):
    source, sink = f"{unique_name}-in", f"{unique_name}-out"
    _create(stack_settings, source, sink)
    producer = Producer({"bootstrap.servers": stack_settings.kafka_bootstrap})
    for i in range(100):
        producer.produce(source, key=str(i).encode(), value=f"event-{i}".encode())
    producer.flush(30)

    committed = _transform(stack_settings, source, sink, group=f"g-{unique_name}", commit=True)

    assert committed == 100
    values = sorted(m.value() for m in consume_all(stack_settings, sink, expected=100))
    assert values == sorted(f"EVENT-{i}".encode() for i in range(100))


def test_aborted_transaction_is_invisible_to_read_committed(stack_settings, unique_name):
    source, sink = f"{unique_name}-in", f"{unique_name}-out"
    _create(stack_settings, source, sink)
    producer = Producer({"bootstrap.servers": stack_settings.kafka_bootstrap})
    for i in range(100):
        producer.produce(source, key=str(i).encode(), value=f"event-{i}".encode())
    producer.flush(30)

    committed = _transform(stack_settings, source, sink, group=f"g-{unique_name}", commit=False)

    assert committed < 0  # no offset committed: the group will read the input again
    assert consume_all(stack_settings, sink, expected=0, timeout=4) == []
    uncommitted = consume_all(stack_settings, sink, expected=100, isolation="read_uncommitted")
    assert len(uncommitted) == 100  # the records exist in the log, only aborted


def test_unknown_topic_is_not_auto_created(stack_settings, unique_name):
    producer = Producer({"bootstrap.servers": stack_settings.kafka_bootstrap, "message.timeout.ms": 3000})
    errors = []
    producer.produce(unique_name, value=b"x", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(10)
    assert errors and errors[0] is not None
    with pytest.raises(KafkaException):
        admin = AdminClient({"bootstrap.servers": stack_settings.kafka_bootstrap})
        admin.describe_topics(TopicCollection([unique_name]))[unique_name].result()
