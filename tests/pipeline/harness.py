"""The streaming pipeline on the real broker, and the same events through ``Replay`` for comparison.

A seeded workload (400 events/s of event time, 5 s base windows, evaluation over 3 of them) with an
abrupt shift of ``num_01`` and 1 % malformed events; ingest and evaluate run as ``driftline run``
worker processes (``python -m stream run --role R --slot S``), so tests can kill -9 them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import yaml
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from detectors._serde import unpack
from detectors.monitor import MonitorConfig
from stream.config import load_reference
from stream.decode import Decoder, EventKind, Limits
from stream.partials import WatermarkProgress, WindowPartial, decode_record
from stream.replay import Replay
from stream.settings import PROJECT_ROOT, StackSettings, TopicSettings
from stream.state_topic import read_latest
from stream.topics import create_topics, plan_topics
from stream.workload import AbruptShift, Malformed, Workload
from tests.kafka_io import consume_all

MODEL = "pipeline-model"
EVENTS = 30_000
EVENTS_PER_SECOND = 400.0
BASE_SECONDS = 5
IDLE_SECONDS = 4.0
PARTITIONS = 4
SCENARIOS = [AbruptShift(features=("num_01",), start=12_000, shift_sd=1.0), Malformed(rate=0.01)]
LIMITS = Limits(known_models=frozenset({MODEL}), unknown_model_policy="deadletter")
CONFIG = {
    "model_id": MODEL,
    "reference": "reference.profile",
    "segments": [{"tag": "region"}],
    "windows": {"base_seconds": BASE_SECONDS, "evaluate_windows": 3, "min_count": 500, "allowed_lateness_seconds": 1},
}


def workload() -> Workload:
    # Recent event times, so the decoder's time checks accept them as a production worker would.
    start = BASE_SECONDS * (int(time.time() - 3_600) // BASE_SECONDS)
    return Workload(seed=5, model_id=MODEL, events_per_second=EVENTS_PER_SECOND, start=float(start))


def write_model(folder: Path, events: Workload) -> tuple[Path, MonitorConfig]:
    """The reference profile (from the workload's clean reference set) and the monitor config file."""
    (folder / "reference.profile").write_bytes(events.reference_profile(20_000).to_bytes())
    path = folder / "monitor.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path, MonitorConfig.from_mapping(CONFIG, source=str(path))


class Pipeline:
    """Topics, events and worker processes of one test."""

    def __init__(self, settings: StackSettings, prefix: str, folder: Path) -> None:
        self.settings = settings
        self.topics = TopicSettings(prefix=prefix, event_partitions=PARTITIONS, model_partitions=2)
        create_topics(AdminClient({"bootstrap.servers": settings.kafka_bootstrap}), plan_topics(self.topics))
        self.events = workload()
        self.config_path, self.config = write_model(folder, self.events)
        self.values: list[bytes] = []
        self.keys: list[bytes] = []
        for values, keys, _ in self.events.batches(EVENTS, 5_000, SCENARIOS):
            self.values += values
            self.keys += keys
        self.workers: dict[tuple[str, int], subprocess.Popen] = {}

    # -- the comparison ---------------------------------------------------------------------------

    def window_counts(self) -> Counter[float]:
        """Accepted events per base-window start, as a decoder over all events in order decides."""
        batch = Decoder(EventKind.INFERENCE, LIMITS).decode(self.values, "expected", 0, range(len(self.values)))
        starts = np.floor(np.array([event["timestamp"] for event in batch.events]) / BASE_SECONDS) * BASE_SECONDS
        return Counter(starts.tolist())

    def replay(self) -> tuple[list[dict], Counter[str], int]:
        """Alerts, dead-letter reasons and accepted events of the same events through ``Replay``."""
        engine = Replay(self.config, load_reference(self.config), LIMITS)
        alerts = []
        for start in range(0, len(self.values), 5_000):
            alerts += engine.feed(self.values[start : start + 5_000])[0]
        alerts += engine.finish()
        assert engine.summary.late == 0
        return alerts, engine.summary.rejects, engine.summary.accepted

    # -- the streaming side -----------------------------------------------------------------------

    def produce(self, start: int = 0, stop: int = EVENTS) -> None:
        producer = Producer({"bootstrap.servers": self.settings.kafka_bootstrap, "enable.idempotence": True, "linger.ms": 20})
        inference = self.topics.name("inference")
        for key, value in zip(self.keys[start:stop], self.values[start:stop]):
            producer.produce(inference, key=key, value=value)
        assert producer.flush(60) == 0

    def start(self, role: str, slot: int = 0, batch_size: int = 5_000) -> subprocess.Popen:
        env = {**os.environ, "DRIFTLINE_KAFKA": self.settings.kafka_bootstrap, "DRIFTLINE_REDIS": self.settings.redis_url}
        command = [
            sys.executable, "-m", "stream", "run", f"--role={role}", f"--slot={slot}", f"--config={self.config_path}",
            f"--prefix={self.topics.prefix}", f"--idle-seconds={IDLE_SECONDS}", f"--batch-size={batch_size}",
        ]  # fmt: skip
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.workers[(role, slot)] = process
        return process

    def kill(self, role: str, slot: int = 0) -> None:
        process = self.workers.pop((role, slot))
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)

    def stop_all(self) -> None:
        """SIGTERM every worker; each must commit and exit 0."""
        for process in self.workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for (role, slot), process in self.workers.items():
            code = process.wait(60)
            assert code == 0, f"{role} {slot} exited {code}: {process.stderr.read().decode()[-3000:]}"
        self.workers.clear()

    def check_alive(self) -> None:
        for (role, slot), process in self.workers.items():
            assert process.poll() is None, f"{role} {slot} died: {process.stderr.read().decode()[-3000:]}"

    def committed(self, role: str, topic_role: str) -> int:
        """Offsets the role's consumer group has committed on a topic, summed over partitions.

        Read with read_uncommitted isolation: a read_committed offset fetch asks for stable offsets
        and waits while a killed worker's open transaction holds pending ones (until its successor
        fences it); the offsets of committed transactions are what this question is about."""
        topic = self.topics.name(topic_role)
        partitions = PARTITIONS if topic_role == "inference" else self.topics.model_partitions
        consumer = Consumer({
            "bootstrap.servers": self.settings.kafka_bootstrap,
            "group.id": f"{self.topics.prefix}.{role}",
            "isolation.level": "read_uncommitted",
        })
        try:
            positions = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        finally:
            consumer.close()
        return sum(max(position.offset, 0) for position in positions)

    def evaluated_through(self, with_nothing_pending: bool = True) -> float:
        """How far the committed evaluate state has handed windows to the evaluator (-inf if pending
        remain and ``with_nothing_pending``)."""
        checkpoints = {}
        for partition in range(self.topics.model_partitions):
            checkpoints.update(read_latest(self.settings.kafka_bootstrap, self.topics.name("evaluate-state"), partition))
        value = checkpoints.get(MODEL.encode())
        if value is None:
            return -float("inf")
        assembly_bytes, _ = unpack("EvaluateCheckpoint", value)[1]
        header = unpack("WindowAssembly", assembly_bytes)[0]
        if (header["pending"] and with_nothing_pending) or header["closed_through"] is None:
            return -float("inf")
        return header["closed_through"]

    def wait_until(self, condition, what: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if condition():
                return
            time.sleep(0.1)
        raise AssertionError(f"not within {timeout:.0f} s: {what}")

    def wait_evaluated(self) -> None:
        """Until evaluate has handed on the window of the last event, with nothing pending."""
        last_end = (self.events.time_of(EVENTS - 1) // BASE_SECONDS + 1) * BASE_SECONDS
        self.wait_until(lambda: self.evaluated_through() >= last_end, f"evaluate closes the window ending {last_end}")

    # -- reading the outputs ----------------------------------------------------------------------

    def alerts(self, expected: int) -> list[dict]:
        return [orjson.loads(m.value()) for m in consume_all(self.settings, self.topics.name("alerts"), expected)]

    def deadletter_reasons(self, expected: int) -> Counter[str]:
        records = consume_all(self.settings, self.topics.name("deadletter"), expected)
        return Counter(orjson.loads(m.value())["reason"] for m in records)

    def partials(self) -> tuple[list[WindowPartial], list[WatermarkProgress]]:
        records = [decode_record(m.value()) for m in consume_all(self.settings, self.topics.name("partials"), expected=1)]
        return [r for r in records if isinstance(r, WindowPartial)], [r for r in records if isinstance(r, WatermarkProgress)]


def alert_identities(alerts: list[dict]) -> list[tuple]:
    return sorted((a["alert_id"], a["kind"], a["feature"], a["severity"], a["status"]) for a in alerts)


def assert_same_answers(pipeline: Pipeline) -> None:
    """The committed outputs equal replay's: alerts (each (alert_id, status) once), dead letters, and
    exact per-window event counts in the partials (no partial twice)."""
    expected_alerts, expected_reasons, accepted = pipeline.replay()
    assert {(a["kind"], a["feature"]) for a in expected_alerts} >= {("data_drift", "num_01")}
    alerts = pipeline.alerts(expected=len(expected_alerts))
    assert alert_identities(alerts) == alert_identities(expected_alerts)
    assert len({(a["alert_id"], a["status"]) for a in alerts}) == len(alerts)
    assert pipeline.deadletter_reasons(expected=sum(expected_reasons.values())) == expected_reasons

    partials, progress = pipeline.partials()
    identities = [(p.key, p.start, p.source_partition) for p in partials]
    assert len(set(identities)) == len(identities), "a partial was published twice"
    whole_model = [p for p in partials if not p.key.segment]
    assert sum(p.event_count for p in whole_model) == accepted
    counts: Counter[float] = Counter()
    for partial in whole_model:
        counts[partial.start] += partial.event_count
    assert counts == pipeline.window_counts()
    assert {p.source_partition for p in partials} == set(range(PARTITIONS))
    assert all(record.late_events == 0 for record in progress)
