"""Join evictions alert end to end on the real broker: an ingest worker whose label join is capped at
1 MB evicts a burst of unlabelled predictions, reports the evictions beside its outcomes, and the
evaluate worker publishes exactly one eviction alert, resolved once a base window passes without
evictions (read_committed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zlib
from collections import Counter

import jsonschema
import orjson
import pytest
import yaml
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

import schemas
from detectors.performance import is_join_evictions
from detectors.profile import ReferenceBuilder
from stream.join import JoinStore
from stream.settings import PROJECT_ROOT, TopicSettings
from stream.state_topic import read_latest
from stream.topics import create_topics, plan_topics
from tests.kafka_io import consume_all
from tests.labels.test_performance_evaluate import committed

pytestmark = pytest.mark.integration

MODEL = "capped-model"
PARTITIONS = 2
BURST = 8_000
"""Unlabelled predictions, far more than a 1 MB join holds (about 3,000 entries of about 340 bytes)."""
TTL_SECONDS = 120


def partition_of(prediction_id: str) -> int:
    return zlib.crc32(prediction_id.encode()) % PARTITIONS


def wait_until(condition, what: str, processes: list[subprocess.Popen], timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            assert process.poll() is None, f"a worker died: {process.stderr.read().decode()[-3000:]}"
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def test_a_join_over_its_cap_raises_one_eviction_alert_that_resolves(stack_settings, unique_name, tmp_path):
    topics = TopicSettings(prefix=unique_name, event_partitions=PARTITIONS, model_partitions=2)
    create_topics(AdminClient({"bootstrap.servers": stack_settings.kafka_bootstrap}), plan_topics(topics), timeout=120)
    builder = ReferenceBuilder(numeric=["x"])
    builder.add([{"x": float(i % 100)} for i in range(1_000)])
    (tmp_path / "model.profile").write_bytes(builder.build(MODEL, "v1", source="test_join_evictions_integration").to_bytes())
    config_path = tmp_path / "monitor.yaml"
    config_path.write_text(yaml.safe_dump({
        "model_id": MODEL, "reference": "model.profile", "task": "classification", "labels": {"ttl_seconds": TTL_SECONDS},
    }))  # fmt: skip

    start = float(int(time.time() - 2 * 3600) // 60 * 60)
    producer = Producer({"bootstrap.servers": stack_settings.kafka_bootstrap, "enable.idempotence": True, "linger.ms": 20})
    sent = {"inference": 0, "labels": 0}

    def send(role: str, event: dict) -> None:
        producer.produce(topics.name(role), key=event["prediction_id"].encode(), value=orjson.dumps(event), partition=partition_of(event["prediction_id"]))
        sent[role] += 1

    def prediction(prediction_id: str, time: float, i: int) -> dict:
        return {"model_id": MODEL, "model_version": "v1", "prediction_id": prediction_id, "timestamp": time,
                "prediction": {"score": 0.9, "class": 1}, "features": {"x": float(i % 100)}}  # fmt: skip

    env = {**os.environ, "DRIFTLINE_KAFKA": stack_settings.kafka_bootstrap, "DRIFTLINE_REDIS": stack_settings.redis_url,
           "DRIFTLINE_JOIN_MAX_MB": "1", "DRIFTLINE_EVENT_PARTITIONS": str(PARTITIONS)}  # fmt: skip
    common = [f"--config={config_path}", f"--prefix={unique_name}", "--slot=0", "--idle-seconds=600"]  # no wall-clock watermark: event time alone closes windows
    workers = [
        subprocess.Popen([sys.executable, "-m", "stream", "run", f"--role={role}", *common], cwd=PROJECT_ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        for role in ("ingest", "evaluate")
    ]
    try:
        # 1. A burst with no labels in sight: the join fills up and evicts (the label clock never moves).
        for i in range(BURST):
            send("inference", prediction(f"burst-{i}", start + i * 240 / BURST, i))
        assert producer.flush(60) == 0
        wait_until(lambda: committed(stack_settings.kafka_bootstrap, f"{unique_name}.ingest", topics.name("inference"), PARTITIONS) == sent["inference"],
                   "ingest commits the burst", workers)  # fmt: skip
        # 2. A label from later on (one per partition) moves each label clock past the burst's deadlines: it expires.
        for partition in range(PARTITIONS):
            prediction_id = next(f"clock-{n}" for n in range(100) if partition_of(f"clock-{n}") == partition)
            send("labels", {"prediction_id": prediction_id, "label": 1, "timestamp": start + 600.0, "model_id": MODEL})
        assert producer.flush(60) == 0
        wait_until(lambda: committed(stack_settings.kafka_bootstrap, f"{unique_name}.ingest", topics.name("labels"), PARTITIONS) == sent["labels"],
                   "ingest commits the clock labels", workers)  # fmt: skip
        # 3. Predictions labelled a second later, over several base windows: nothing is evicted any more.
        for n, second in enumerate(range(600, 1_200, 2)):
            send("inference", prediction(f"late-{second}", start + second, n))
            send("labels", {"prediction_id": f"late-{second}", "label": 1, "timestamp": start + second + 1, "model_id": MODEL})
        assert producer.flush(60) == 0

        alerts_topic = topics.name("alerts")
        wait_until(lambda: len(consume_all(stack_settings, alerts_topic, 2, timeout=5)) >= 2, "the eviction alert fires and resolves",
                   workers, timeout=400)  # fmt: skip
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            assert worker.wait(120) == 0, worker.stderr.read().decode()[-3000:]

    alerts = [orjson.loads(record.value()) for record in consume_all(stack_settings, alerts_topic, 2)]
    validator = jsonschema.Draft202012Validator(schemas.load("alert"))
    for alert in alerts:
        validator.validate(alert)
    assert [(a["status"], a["kind"], a["statistic"]["name"], a["model_id"]) for a in alerts] == [
        ("firing", "label_lag", "join_evictions", MODEL), ("resolved", "label_lag", "join_evictions", MODEL)]  # fmt: skip
    assert alerts[0]["alert_id"] == alerts[1]["alert_id"] and alerts[0]["severity"] == "P1"
    # What was reported is what the join counted: every eviction, in records that validate as outcome-topic records.
    records = [orjson.loads(r.value()) for r in consume_all(stack_settings, topics.name("outcomes"), 301)]
    reported = [record for record in records if is_join_evictions(record)]
    outcome_schema = jsonschema.Draft202012Validator(schemas.load("outcome"))
    for record in records:
        outcome_schema.validate(record)
    joined = [record for record in records if not is_join_evictions(record)]
    assert len(joined) == 300
    assert all(start <= record["time"] < start + 240 for record in reported)
    counts = Counter()
    labels = topics.name("labels")
    for partition in range(PARTITIONS):
        state = read_latest(stack_settings.kafka_bootstrap, topics.name("ingest-state"), partition)
        checkpoint = state[f"{unique_name}.ingest/{labels}/{partition}".encode()]
        changelog = read_latest(stack_settings.kafka_bootstrap, topics.name("join-changelog"), partition)
        counts.update(JoinStore.from_bytes(checkpoint, changelog, {MODEL: TTL_SECONDS}, (1 << 20) // PARTITIONS).counts[MODEL])
    assert sum(record["count"] for record in reported) == counts["evicted"] > 0
    assert counts["evicted"] + counts["expired"] == BURST and counts["joined"] == 300
