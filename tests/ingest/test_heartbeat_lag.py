"""A worker's heartbeat reports how many committed records each assigned partition still holds."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from stream.heartbeat import Heartbeat, consumer_lag

pytestmark = pytest.mark.integration


class _Sink:
    def __init__(self) -> None:
        self.beats: list[tuple[str, str, dict]] = []
        self.lags: list[dict[str, int]] = []

    def heartbeat(self, role: str, worker_id: str, info: dict) -> None:
        self.beats.append((role, worker_id, info))

    def consumer_lag(self, lag: dict[str, int]) -> None:
        self.lags.append(lag)


def test_lag_is_what_the_consumer_has_not_read_and_beats_are_rate_limited(stack_settings, unique_name):
    admin = AdminClient({"bootstrap.servers": stack_settings.kafka_bootstrap})
    admin.create_topics([NewTopic(unique_name, num_partitions=2, replication_factor=1)])[unique_name].result()
    producer = Producer({"bootstrap.servers": stack_settings.kafka_bootstrap, "transactional.id": unique_name})
    producer.init_transactions(30)
    producer.begin_transaction()
    for partition, count in ((0, 100), (1, 40)):
        for i in range(count):
            producer.produce(unique_name, value=b"x%d" % i, partition=partition)
    producer.commit_transaction(30)
    consumer = Consumer({
        "bootstrap.servers": stack_settings.kafka_bootstrap, "group.id": unique_name, "isolation.level": "read_committed",
        "enable.auto.commit": False,
    })  # fmt: skip
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
