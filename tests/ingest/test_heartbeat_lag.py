"""A worker's heartbeat reports how many committed records each assigned partition still holds."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from stream.heartbeat import Heartbeat, consumer_lag, unconsumed_partitions

pytestmark = pytest.mark.integration


class _Sink:
    def __init__(self) -> None:
        self.beats: list[tuple[str, str, dict]] = []
        self.lags: list[dict[str, int]] = []

    def heartbeat(self, role: str, worker_id: str, info: dict) -> None:
        self.beats.append((role, worker_id, info))

    def consumer_lag(self, lag: dict[str, int]) -> None:
        self.lags.append(lag)


def _transactional_topic(stack_settings, name: str, records: dict[int, int]) -> Consumer:
    """A 2-partition topic with ``records[partition]`` records written in one transaction, and an
    unassigned read_committed consumer of it."""
    admin = AdminClient({"bootstrap.servers": stack_settings.kafka_bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])[name].result()
    producer = Producer({"bootstrap.servers": stack_settings.kafka_bootstrap, "transactional.id": name})
    producer.init_transactions(30)
    producer.begin_transaction()
    for partition, count in records.items():
        for i in range(count):
            producer.produce(name, value=b"x%d" % i, partition=partition)
    producer.commit_transaction(30)
    return Consumer({
        "bootstrap.servers": stack_settings.kafka_bootstrap, "group.id": name, "isolation.level": "read_committed",
        "enable.auto.commit": False,
    })  # fmt: skip


def test_lag_is_what_the_consumer_has_not_read_and_beats_are_rate_limited(stack_settings, unique_name):
    consumer = _transactional_topic(stack_settings, unique_name, {0: 100, 1: 40})
    # partition 1: a predecessor committed all of it; nothing will be consumed from it here
    consumer.commit(offsets=[TopicPartition(unique_name, 1, 41)], asynchronous=False)
    consumer.assign([TopicPartition(unique_name, 0, 0), TopicPartition(unique_name, 1)])
    read = []
    deadline = time.monotonic() + 30
    while len(read) < 30 and time.monotonic() < deadline:
        read += [m for m in consumer.consume(30 - len(read), timeout=1) if m.error() is None]
    assert len(read) == 30 and {m.partition() for m in read} == {0}
    lag = consumer_lag(consumer)
    assert lag[f"{unique_name}[0]"] in (70, 71)
    assert lag.get(f"{unique_name}[1]", 0) == 0

    now = [0.0]
    sink = _Sink()
    heartbeat = Heartbeat(sink, "ingest", "3", consumer, lag_sink=sink, interval=5.0, clock=lambda: now[0])
    heartbeat.beat(lambda: {"consumed": 30})
    now[0] = 4.0
    heartbeat.beat(lambda: {"consumed": 31})
    now[0] = 5.0
    heartbeat.beat(lambda: {"consumed": 32})
    assert [(role, worker, info["consumed"]) for role, worker, info in sink.beats] == [("ingest", "3", 30), ("ingest", "3", 32)]
    assert sink.beats[0][2]["lag"][f"{unique_name}[0]"] in (70, 71)
    assert sink.lags == [beat[2]["lag"] for beat in sink.beats]  # measured once per beat, for the metrics too
    consumer.close()


def test_partitions_with_a_backlog_are_unconsumed_but_a_final_commit_marker_is_not(stack_settings, unique_name):
    consumer = _transactional_topic(stack_settings, unique_name, {0: 50})  # partition 0: records 0..49, its commit marker at 50
    consumer.assign([TopicPartition(unique_name, 0, 0), TopicPartition(unique_name, 1, 0)])
    assigned_from = {(unique_name, 0): -1001, (unique_name, 1): -1001}  # nothing committed: from the log start
    read = []
    deadline = time.monotonic() + 30
    while len(read) < 20 and time.monotonic() < deadline:
        read += [m for m in consumer.consume(20 - len(read), timeout=1) if m.error() is None]
    assert len(read) == 20
    assert (unique_name, 0) in unconsumed_partitions(consumer, assigned_from, 1)  # 30 records and the marker to go
    assert (unique_name, 0) not in unconsumed_partitions(consumer, assigned_from, 31)  # not more than 31

    while len(read) < 50 and time.monotonic() < deadline:
        read += [m for m in consumer.consume(50 - len(read), timeout=1) if m.error() is None]
    assert len(read) == 50
    # Only the marker is left in partition 0, and it is never delivered; partition 1 is empty once fetched.
    while unconsumed_partitions(consumer, assigned_from, 0) and time.monotonic() < deadline:
        assert consumer.consume(1, timeout=0.2) == []
    assert unconsumed_partitions(consumer, assigned_from, 0) == frozenset()
    consumer.close()
