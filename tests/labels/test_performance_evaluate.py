"""The evaluate worker's performance path on the real broker and Redis: outcomes in, performance and
concept-drift alerts out exactly once across a kill -9, the same alerts as the monitor in one process,
and the latest performance window in the mirror and in ``driftline state show``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import yaml
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from detectors.monitor import MonitorConfig
from detectors.performance import PerformanceMonitor
from stream.mirror import RedisMirror
from stream.settings import PROJECT_ROOT, TopicSettings
from stream.topics import create_topics, plan_topics
from stream.workload import Workload
from tests.kafka_io import consume_all
from tests.labels.test_performance_monitor import outcomes

pytestmark = pytest.mark.integration

MODEL = "labelled-model"
CONFIG = {
    "model_id": MODEL,
    "reference": "reference.profile",
    "task": "classification",
    "performance": {"window_labels": 200, "reference_windows": 3},
}
DRIFTLINE = str(Path(sys.executable).with_name("driftline"))


def stream_of_outcomes() -> list[dict]:
    """A healthy model, then errors moving onto the positive class: performance and concept-drift alerts."""
    rows = outcomes(2_000, 0.05, 60, start=1_790_000_000.0) + outcomes(3_000, 0.35, 61, start=1_790_002_000.0)
    for row in rows:
        row["model_id"] = MODEL
    return rows


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "isolation.level": "read_uncommitted"})
    try:
        positions = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    finally:
        consumer.close()
    return sum(max(position.offset, 0) for position in positions)


def test_outcomes_become_the_alerts_of_one_process_exactly_once_across_a_kill(stack_settings, unique_name, tmp_path):
    topics = TopicSettings(prefix=unique_name, event_partitions=2, model_partitions=2)
    create_topics(AdminClient({"bootstrap.servers": stack_settings.kafka_bootstrap}), plan_topics(topics))
    (tmp_path / "reference.profile").write_bytes(Workload(seed=1, model_id=MODEL).reference_profile(2_000).to_bytes())
    config_path = tmp_path / "monitor.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG))
    config = MonitorConfig.from_mapping(CONFIG)
    assert config.performance is not None

    rows = stream_of_outcomes()
    producer = Producer({"bootstrap.servers": stack_settings.kafka_bootstrap, "enable.idempotence": True, "linger.ms": 20})
    for row in rows:
        producer.produce(topics.name("outcomes"), key=MODEL.encode(), value=orjson.dumps(row))
    producer.produce(topics.name("outcomes"), key=MODEL.encode(), value=b"{not json")  # counted, skipped, committed
    assert producer.flush(60) == 0
    expected = PerformanceMonitor(MODEL, config.performance, config.policy)
    expected_alerts = [alert for evaluation in expected.update(rows) for alert in evaluation.alerts]
    kinds = {alert["kind"] for alert in expected_alerts}
    assert {"performance", "concept_drift"} <= kinds

    env = {**os.environ, "DRIFTLINE_KAFKA": stack_settings.kafka_bootstrap, "DRIFTLINE_REDIS": stack_settings.redis_url}
    command = [
        sys.executable, "-m", "stream", "run", "--role=evaluate", "--slot=0", f"--config={config_path}",
        f"--prefix={unique_name}", "--batch-size=40",
    ]  # fmt: skip

    def start() -> subprocess.Popen:
        return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait_committed(at_least: int, process: subprocess.Popen) -> int:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            done = committed(stack_settings.kafka_bootstrap, f"{unique_name}.evaluate", topics.name("outcomes"), 2)
            if done >= at_least:
                return done
            time.sleep(0.1)
        raise AssertionError(f"evaluate did not commit {at_least} outcomes within 180 s")

    worker = start()
    try:
        at_kill = wait_committed(len(rows) * 2 // 5, worker)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        assert at_kill < len(rows), "the kill must land mid-stream"
        worker = start()
        wait_committed(len(rows) + 1, worker)
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(60) == 0, worker.stderr.read().decode()[-3000:]

    alerts = [orjson.loads(m.value()) for m in consume_all(stack_settings, topics.name("alerts"), len(expected_alerts))]
    assert alerts == expected_alerts

    mirror = RedisMirror(stack_settings.redis_url, unique_name)
    try:
        state = mirror.model_state(MODEL)
    finally:
        mirror.close()
    [whole] = [window for window in state["windows"] if window["segment_key"] == "-"]
    latest = whole["performance"]["window"]
    assert latest["label_count"] == 200 and latest["reference"]["count"] == 600
    assert latest["metrics"]["accuracy"] < latest["reference"]["accuracy"]
    assert "adwin:error" in latest["detectors"]
    assert {alert["alert_id"] for alert in state["open_alerts"]} >= {a["alert_id"] for a in expected.open_alerts if a["kind"] == "performance"}

    shown = subprocess.run(
        [DRIFTLINE, "state", "show", MODEL, "--prefix", unique_name], env=env, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert "performance" in shown.stdout and "reference performance: accuracy=" in shown.stdout
    assert "test performance/accuracy_drop" in shown.stdout
