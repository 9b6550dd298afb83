"""The ingest front on the real broker: every consumed record is handed on or dead-lettered, exactly once.

10,000 records (10% bad, every reason code) go to the inference and labels topics; a worker is
killed with SIGKILL midway and restarted. The expected verdict of every record is what a decoder
gives on the same records of its partition in order; the worker's committed output must be
exactly that: nothing lost, nothing twice, the right reason code at the right source offset.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from stream.decode import Decoder, EventKind
from stream.reasons import INCIDENT_SERVICE_REASONS, Reason
from stream.settings import PROJECT_ROOT, TopicSettings
from stream.topics import create_topics, plan_topics
from stream.decode import Limits
from tests.contract.reason_cases import reason_cases
from tests.ingest.forwarder import LIMITS
from tests.kafka_io import consume_all

pytestmark = pytest.mark.integration

PARTITIONS = 2
TOTAL = 10_000
BAD_SHARE = 0.10


def _good_inference(i: int, now: float) -> dict:
    return {
        "prediction_id": f"pred-{i}",
        "model_id": "fraud-detector" if i % 3 else "churn",
        "model_version": "v1",
        "timestamp": now - random.random() * 60,
        "features": {"amount": round(random.random() * 100, 3), "country": random.choice(["DE", "FR", "US"]), "age": None},
        "prediction": {"score": random.random()},
        "latency_ms": random.random() * 10,
    }


def _bad_values(now: float) -> list[tuple[str, bytes | None]]:
    """One raw value per reason-code case of the contract table that needs no special decoder set-up,
    plus models beyond the registry cap and labels of an unknown model (the worker's limits)."""
    plain = [
        ("labels" if case.kind is EventKind.LABEL else "inference", case.raw)
        for case in reason_cases(now)
        if not case.before and case.limits == Limits() and case.reason is not Reason.DUPLICATE_PREDICTION_ID
    ]
    new_models = [("inference", orjson.dumps({**_good_inference(0, now), "prediction_id": f"new-{m}", "model_id": f"new-model-{m}"})) for m in range(3)]
    unknown_label = [("labels", orjson.dumps({"prediction_id": "x", "label": 1, "timestamp": now, "model_id": "nobody"}))]
    return plain + new_models + unknown_label


def _records(now: float) -> list[tuple[str, int, bytes, bytes | None]]:
    """(role, partition, key, value) in production order: good events, every bad case, late duplicates."""
    random.seed(11)
    records: list[tuple[str, int, bytes, bytes | None]] = []
    good_inference: list[tuple[int, bytes, bytes]] = []
    n_bad = int(TOTAL * BAD_SHARE)
    bad_values = _bad_values(now)
    duplicates_at = set(range(TOTAL - n_bad // 10, TOTAL))  # the last records repeat early predictions
    bad_slots = set(random.sample(range(TOTAL - len(duplicates_at)), n_bad - len(duplicates_at)))
    for i in range(TOTAL):
        partition = i % PARTITIONS
        if i in duplicates_at:
            partition, key, value = good_inference[(i * 7) % 500]  # originals long before the kill
            records.append(("inference", partition, key, value))
        elif i in bad_slots:
            role, value = bad_values[len(records) % len(bad_values)]
            records.append((role, partition, f"bad-{i}".encode(), value))
        elif i % 5 == 4:
            label = {"prediction_id": f"pred-{i - 1}", "label": random.choice(["fraud", "ok"]), "timestamp": now, "model_id": "churn"}
            records.append(("labels", partition, label["prediction_id"].encode(), orjson.dumps(label)))
        else:
            value = orjson.dumps(_good_inference(i, now))
            good_inference.append((partition, f"pred-{i}".encode(), value))
            records.append(("inference", partition, f"pred-{i}".encode(), value))
    return records


def _expected(records, topics: TopicSettings) -> tuple[list[dict], dict[tuple[str, int, int], str]]:
    """What a decoder per partition gives on the records in order: accepted events and rejects by source."""
    decoders: dict[tuple[str, int], Decoder] = {}
    next_offset: dict[tuple[str, int], int] = {}
    accepted, rejected = [], {}
    for role, partition, _, value in records:
        topic = topics.name(role)
        kind = EventKind.LABEL if role == "labels" else EventKind.INFERENCE
        decoder = decoders.setdefault((topic, partition), Decoder(kind, LIMITS[kind]))
        offset = next_offset.get((topic, partition), 0)
        next_offset[(topic, partition)] = offset + 1
        batch = decoder.decode([value], topic, partition, [offset])
        accepted += [{"topic": topic, **event} for event in batch.events]
        rejected.update({(r.topic, r.partition, r.offset): str(r.reason) for r in batch.rejects})
    return accepted, rejected


def _committed_total(bootstrap: str, group: str, topics: TopicSettings) -> int:
    # read_uncommitted: a read_committed offset fetch would wait out a killed worker's pending offsets
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "isolation.level": "read_uncommitted"})
    positions = [TopicPartition(topics.name(role), p) for role in ("inference", "labels") for p in range(PARTITIONS)]
    total = sum(max(tp.offset, 0) for tp in consumer.committed(positions, timeout=10))
    consumer.close()
    return total


def _start_worker(bootstrap: str, prefix: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.ingest.forwarder", bootstrap, prefix],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_committed(bootstrap, group, topics, at_least: int, worker: subprocess.Popen, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.poll() is None, worker.stderr.read()
        committed = _committed_total(bootstrap, group, topics)
        if committed >= at_least:
            return committed
        time.sleep(0.05)
    raise AssertionError(f"worker committed {committed} < {at_least} records within {timeout} s")


def test_every_record_handed_on_or_deadlettered_once_across_kill_9(stack_settings, unique_name):
    bootstrap = stack_settings.kafka_bootstrap
    topics = TopicSettings(prefix=unique_name, event_partitions=PARTITIONS)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    create_topics(admin, plan_topics(topics))
    admin.create_topics([NewTopic(f"{unique_name}.accepted", num_partitions=2, replication_factor=1)])[f"{unique_name}.accepted"].result()

    records = _records(time.time())
    expected_accepted, expected_rejected = _expected(records, topics)
    assert {reason for reason in expected_rejected.values()} == {str(reason) for reason in set(Reason) - INCIDENT_SERVICE_REASONS}
    assert len(expected_accepted) + len(expected_rejected) == TOTAL

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20})
    for role, partition, key, value in records:
        producer.produce(topics.name(role), key=key, value=value, partition=partition)
    assert producer.flush(60) == 0

    group = f"{unique_name}.ingest"
    first = _start_worker(bootstrap, unique_name)
    _wait_committed(bootstrap, group, topics, TOTAL * 2 // 5, first)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    second = _start_worker(bootstrap, unique_name)
    _wait_committed(bootstrap, group, topics, TOTAL, second)
    second.send_signal(signal.SIGTERM)
    assert second.wait(30) == 0, second.stderr.read()

    accepted = [orjson.loads(m.value()) for m in consume_all(stack_settings, f"{unique_name}.accepted", expected=len(expected_accepted))]
    deadletters = [orjson.loads(m.value()) for m in consume_all(stack_settings, topics.name("deadletter"), expected=len(expected_rejected))]

    key = lambda event: (event["topic"], event["prediction_id"])  # noqa: E731
    assert sorted(accepted, key=key) == sorted(expected_accepted, key=key)
    by_source = {(d["source"]["topic"], d["source"]["partition"], d["source"]["offset"]): d["reason"] for d in deadletters}
    assert len(by_source) == len(deadletters), "a record was dead-lettered twice"
    assert by_source == expected_rejected
    assert len(accepted) + len(deadletters) == TOTAL
