"""The label join on the real broker: 200,000 predictions, labels delayed and shuffled, 5 %
duplicated, 3 % never sent, 2 % sent before their prediction, plus orphan labels, through a
``driftline run --role ingest`` worker that is killed with SIGKILL midway and restarted.

Every joinable pair is joined exactly once (one outcome, with the first label), and the committed
counters equal the ones the join's rules give for the events each partition accepted. Duplicate
labels within the decoder's duplicate window are dead-lettered before the join (stream/decode.py);
the late half of the duplicates (700-900 s later) reach it and are counted ``duplicate``.
"""

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
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

import schemas
from detectors.profile import ReferenceBuilder
from stream.decode import Decoder, EventKind, Limits
from stream.join import JoinStore
from stream.mirror import RedisMirror
from stream.settings import PROJECT_ROOT, TopicSettings
from stream.state_topic import read_latest
from stream.topics import create_topics, plan_topics
from tests.kafka_io import consume_all
from tests.labels.test_join_store import Scenario

pytestmark = pytest.mark.integration

PREDICTIONS = 200_000
PARTITIONS = 2
TTL_SECONDS = {"model-a": 1100, "model-b": 1300}
"""Above 1050 s (delay 60 + late duplicate delay 900 + shuffle 30 + 60 by which a label published
before its prediction runs ahead): no late duplicate outlives its joined id, so all count as duplicate."""
JOIN_MAX_MB = 96
NEEDED_TOPICS = ("inference", "labels", "partials", "outcomes", "deadletter", "ingest-state", "join-changelog")
BATCH = 2_000


def partition_of(prediction_id: str) -> int:
    return zlib.crc32(prediction_id.encode()) % PARTITIONS


class JoinRun:
    """Topics, configs and the ingest worker process of one test."""

    def __init__(self, settings, prefix: str, folder) -> None:
        self.settings = settings
        self.topics = TopicSettings(prefix=prefix, event_partitions=PARTITIONS, model_partitions=2)
        plans = [plan for plan in plan_topics(self.topics) if plan.role.role in NEEDED_TOPICS]
        create_topics(AdminClient({"bootstrap.servers": settings.kafka_bootstrap}), plans, timeout=120)  # a busy shared broker is slow
        self.configs = []
        for model_id, ttl in TTL_SECONDS.items():
            builder = ReferenceBuilder(numeric=["x"])
            builder.add([{"x": float(i % 100)} for i in range(1_000)])
            (folder / f"{model_id}.profile").write_bytes(builder.build(model_id, "v1", source="test_join_integration").to_bytes())
            path = folder / f"{model_id}.yaml"
            path.write_text(yaml.safe_dump({"model_id": model_id, "reference": f"{model_id}.profile", "task": "classification", "labels": {"ttl_seconds": ttl}}))
            self.configs.append(path)
        self.worker: subprocess.Popen | None = None

    def produce(self, scenario: Scenario) -> dict[int, list[bytes]]:
        """Both sides in publish order, each to the partition of its prediction_id; returns the label
        values per partition in order."""
        producer = Producer({"bootstrap.servers": self.settings.kafka_bootstrap, "enable.idempotence": True, "linger.ms": 20})
        inference, labels = self.topics.name("inference"), self.topics.name("labels")
        label_values: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
        for count, (_, side, index) in enumerate(scenario.arrival):
            if side == 0:
                event = {**scenario.predictions[index], "features": {"x": float(index % 97)}}
                topic = inference
            else:
                event = scenario.labels[index]
                topic = labels
            value = orjson.dumps(event)
            partition = partition_of(event["prediction_id"])
            if side == 1:
                label_values[partition].append(value)
            while True:
                try:
                    producer.produce(topic, key=event["prediction_id"].encode(), value=value, partition=partition)
                    break
                except BufferError:  # the local queue is full while a busy broker catches up
                    producer.poll(0.5)
            if count % 10_000 == 0:
                producer.poll(0)
        assert producer.flush(120) == 0
        return label_values

    def start(self) -> None:
        env = {
            **os.environ, "DRIFTLINE_KAFKA": self.settings.kafka_bootstrap, "DRIFTLINE_REDIS": self.settings.redis_url,
            "DRIFTLINE_JOIN_MAX_MB": str(JOIN_MAX_MB), "DRIFTLINE_EVENT_PARTITIONS": str(PARTITIONS),
        }  # fmt: skip
        command = [
            sys.executable, "-m", "stream", "run", "--role=ingest", "--slot=0", *(f"--config={path}" for path in self.configs),
            f"--prefix={self.topics.prefix}", f"--batch-size={BATCH}",
        ]  # fmt: skip
        self.worker = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def kill(self) -> None:
        os.kill(self.worker.pid, signal.SIGKILL)
        self.worker.wait(10)

    def stop(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(signal.SIGTERM)
            code = self.worker.wait(120)
            assert code == 0, f"ingest exited {code}: {self.worker.stderr.read().decode()[-3000:]}"

    def committed(self, role: str) -> int:
        """Committed offsets of the ingest group on a topic (read_uncommitted: see tests/pipeline/harness.py)."""
        consumer = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap, "group.id": f"{self.topics.prefix}.ingest", "isolation.level": "read_uncommitted"})
        try:
            positions = consumer.committed([TopicPartition(self.topics.name(role), p) for p in range(PARTITIONS)], timeout=10)
        finally:
            consumer.close()
        return sum(max(position.offset, 0) for position in positions)

    def wait_until(self, condition, what: str, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.worker.poll() is None, f"ingest died: {self.worker.stderr.read().decode()[-3000:]}"
            if condition():
                return
            time.sleep(0.5)
        raise AssertionError(f"not within {timeout:.0f} s: {what}")

    def committed_stores(self) -> list[JoinStore]:
        """Each partition's join store as committed: its checkpoint plus its changelog."""
        stores = []
        labels = self.topics.name("labels")
        for partition in range(PARTITIONS):
            state = read_latest(self.settings.kafka_bootstrap, self.topics.name("ingest-state"), partition)
            checkpoint = state[f"{self.topics.prefix}.ingest/{labels}/{partition}".encode()]
            changelog = read_latest(self.settings.kafka_bootstrap, self.topics.name("join-changelog"), partition)
            stores.append(JoinStore.from_bytes(checkpoint, changelog, TTL_SECONDS, (JOIN_MAX_MB << 20) // PARTITIONS))
        return stores

    def heartbeat_join(self) -> dict:
        mirror = RedisMirror(self.settings.redis_url, prefix=self.topics.prefix)
        try:
            workers = mirror.model_state("model-a")["workers"]
        finally:
            mirror.close()
        return next((w["info"] for w in workers if w["role"] == "ingest" and "join" in w["info"]), {})


def expected(scenario: Scenario, label_values: dict[int, list[bytes]]) -> tuple[dict[str, Counter], int]:
    """Per model counters by the join's rules over the labels the decoder accepts, and the number of
    labels it dead-letters (duplicates within its window), partition by partition."""
    totals: dict[str, Counter] = {}
    rejected = 0
    limits = Limits(known_models=frozenset(TTL_SECONDS), unknown_model_policy="deadletter")
    for partition, values in label_values.items():
        decoded = Decoder(EventKind.LABEL, limits).decode(values, "labels", partition, range(len(values)))
        rejected += len(decoded.rejects)
        predictions = [p for p in scenario.predictions if partition_of(p["prediction_id"]) == partition]
        for model, counts in scenario.expected_counts(predictions, decoded.events).items():
            totals.setdefault(model, Counter()).update(counts)
    return totals, rejected


def test_200k_predictions_join_exactly_once_with_exact_counters_across_a_kill_9(stack_settings, unique_name, tmp_path):
    scenario = Scenario.generate(
        PREDICTIONS, seed=42, start=float(int(time.time()) - 3 * 3600), span=1200.0, delay=60.0, shuffle=30.0,
        ttl=TTL_SECONDS, late_duplicates=0.5, late_delay=(700.0, 900.0), orphan_times=(-1500.0, -900.0),
    )  # fmt: skip
    run = JoinRun(stack_settings, unique_name, tmp_path)
    label_values = run.produce(scenario)
    total_labels = sum(map(len, label_values.values()))
    want, deadlettered = expected(scenario, label_values)
    try:
        run.start()
        run.wait_until(lambda: run.committed("labels") >= total_labels * 2 // 5, "ingest commits 40 % of the labels")
        run.kill()
        assert run.committed("labels") < total_labels, "the kill must land mid-stream"
        run.start()
        run.wait_until(
            lambda: run.committed("labels") == total_labels and run.committed("inference") == PREDICTIONS, "ingest commits every record"
        )
        run.wait_until(lambda: run.heartbeat_join().get("join", {}).get("model-a", {}).get("joined") == want["model-a"]["joined"],
                       "a heartbeat shows the final counts", timeout=60)  # fmt: skip
        beat = run.heartbeat_join()
    finally:
        run.stop()

    # Committed counters: exactly the rules' answer, across the kill.
    stores = run.committed_stores()
    got: dict[str, Counter] = {}
    for store in stores:
        for model, counts in store.counts.items():
            got.setdefault(model, Counter()).update(counts)
    assert {model: +counts for model, counts in got.items() if +counts} == want
    assert all(want[model]["duplicate"] > 0 and want[model]["expired"] > 0 and want[model]["orphan"] > 0 for model in TTL_SECONDS)
    assert {model: +Counter(counts) for model, counts in beat["join"].items() if +Counter(counts)} == want
    # Memory: within the cap, nothing evicted under it.
    assert beat["join_peak_bytes"] <= beat["join_max_bytes"] == JOIN_MAX_MB << 20
    assert all(store.bytes <= store.max_bytes for store in stores)

    # Outcomes: one per joinable prediction, with its first label, keyed by model.
    joined = sum(counts["joined"] for counts in want.values())
    records = consume_all(stack_settings, run.topics.name("outcomes"), joined, timeout=180)
    outcomes = [orjson.loads(record.value()) for record in records]
    ids = [outcome["prediction_id"] for outcome in outcomes]
    assert len(ids) == len(set(ids)) == joined
    first = scenario.first_labels()
    assert all(outcome["label"] == first[outcome["prediction_id"]] for outcome in outcomes)
    assert all(record.key() == orjson.loads(record.value())["model_id"].encode() for record in records)
    validator = jsonschema.Draft202012Validator(schemas.load("outcome"))
    for outcome in outcomes[:: len(outcomes) // 200]:
        validator.validate(outcome)

    # Nothing lost: the decoder's duplicates are in the dead-letter topic.
    reasons = Counter(orjson.loads(r.value())["reason"] for r in consume_all(stack_settings, run.topics.name("deadletter"), deadlettered))
    assert reasons == Counter({"duplicate_prediction_id": deadlettered})
