"""The producer helper and `driftline produce`, against the real broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from confluent_kafka.admin import AdminClient

from stream.producer import PredictionLogger
from stream.settings import TopicSettings
from stream.topics import create_topics, plan_topics
from tests.kafka_io import consume_all

pytestmark = pytest.mark.integration


@pytest.fixture
def topics(stack_settings, unique_name) -> TopicSettings:
    settings = TopicSettings(prefix=unique_name, event_partitions=2)
    create_topics(AdminClient({"bootstrap.servers": stack_settings.kafka_bootstrap}), plan_topics(settings))
    return settings


def test_logger_publishes_predictions_and_labels_keyed_by_prediction_id(stack_settings, topics):
    with PredictionLogger(stack_settings.kafka_bootstrap, "churn", "7", topics=topics) as logger:
        for i in range(500):
            assert logger.log_prediction(f"p-{i}", {"age": 30 + i % 7, "plan": "pro"}, {"score": 0.5}, timestamp=1_700_000_000 + i, latency_ms=3.5)
            assert logger.log_label(f"p-{i}", i % 2, timestamp=1_700_000_100 + i)
    assert logger.stats == {"sent": 1000, "delivered": 1000, "failed": 0, "dropped": 0, "pending": 0}

    predictions = consume_all(stack_settings, topics.name("inference"), expected=500)
    labels = consume_all(stack_settings, topics.name("labels"), expected=500)
    assert len(predictions) == len(labels) == 500
    first = orjson.loads(next(m.value() for m in predictions if m.key() == b"p-3"))
    assert first == {
        "schema_version": "1.0", "prediction_id": "p-3", "model_id": "churn", "model_version": "7",
        "timestamp": 1_700_000_003, "features": {"age": 33, "plan": "pro"}, "prediction": {"score": 0.5}, "latency_ms": 3.5,
    }
    label_partitions = {m.key(): m.partition() for m in labels}
    assert all(label_partitions[m.key()] == m.partition() for m in predictions)  # co-partitioned for the join


def test_unreachable_broker_drops_and_counts_instead_of_blocking():
    logger = PredictionLogger("127.0.0.1:1", "churn", "7", max_buffered_events=10, delivery_timeout_ms=1000)
    accepted = [logger.log_prediction(f"p-{i}", {"x": i}) for i in range(50)]
    assert accepted.count(True) == 10 and accepted.count(False) == 40
    stats = logger.close(timeout=5)
    assert stats == {"sent": 10, "delivered": 0, "failed": 10, "dropped": 40, "pending": 0}


def test_produce_command_sends_jsonl_byte_for_byte_and_csv_as_events(stack_settings, topics, tmp_path):
    jsonl = tmp_path / "events.jsonl"
    good = b'{"prediction_id":"a","model_id":"m","model_version":"1","timestamp":1700000000,"features":{"x":1}}'
    jsonl.write_bytes(good + b"\n" + b'{"prediction_id": "b", truncated\n')
    csv_file = tmp_path / "events.csv"
    csv_file.write_text("prediction_id,timestamp,prediction,age,plan,income\nc,1700000001,0.9,41,pro,\n")
    env = {**os.environ, "DRIFTLINE_KAFKA": stack_settings.kafka_bootstrap}
    driftline = str(Path(sys.executable).with_name("driftline"))
    for path in (jsonl, csv_file):
        result = subprocess.run(
            [driftline, "produce", "--file", str(path), "--topic", "inference", "--prefix", topics.prefix, "--model", "m", "--version", "1", "--rate", "1000"],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert result.returncode == 0, result.stderr
    received = {m.value() for m in consume_all(stack_settings, topics.name("inference"), expected=3)}
    assert good in received and b'{"prediction_id": "b", truncated' in received
    csv_event = orjson.loads(next(v for v in received if b'"c"' in v))
    assert csv_event == {
        "model_id": "m", "model_version": "1", "prediction_id": "c", "timestamp": 1700000001, "prediction": 0.9,
        "features": {"age": 41, "plan": "pro", "income": None},
    }
    assert len(received) == 3
