"""`driftline deadletter tail` on the real broker."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from stream.decode import Decoder
from stream.settings import TopicSettings
from stream.topics import create_topics, plan_topics

pytestmark = pytest.mark.integration

DRIFTLINE = str(Path(sys.executable).with_name("driftline"))


def _publish_rejects(bootstrap: str, topic: str, values: list[bytes], first_offset: int) -> list[dict]:
    batch = Decoder().decode(values, "driftline.inference", 1, range(first_offset, first_offset + len(values)))
    records = [reject.deadletter_record() for reject in batch.rejects]
    producer = Producer({"bootstrap.servers": bootstrap})
    for record in records:
        producer.produce(topic, value=orjson.dumps(record))
    producer.flush(30)
    return records


def test_tail_shows_the_newest_records_then_follows(stack_settings, unique_name):
    bootstrap = stack_settings.kafka_bootstrap
    topics = TopicSettings(prefix=unique_name, model_partitions=1)
    create_topics(AdminClient({"bootstrap.servers": bootstrap}), plan_topics(topics))
    topic = topics.name("deadletter")
    env = {**os.environ, "DRIFTLINE_KAFKA": bootstrap}
    first = _publish_rejects(bootstrap, topic, [b'{"prediction_id": "a", truncated', b"[1, 2]", b"\xff\xfe"], first_offset=40)

    as_json = subprocess.run([DRIFTLINE, "deadletter", "tail", "--prefix", unique_name, "--json", "--last", "2"], env=env, capture_output=True, text=True, timeout=60)
    assert as_json.returncode == 0, as_json.stderr
    assert [orjson.loads(line) for line in as_json.stdout.splitlines()] == first[1:]

    table = subprocess.run([DRIFTLINE, "deadletter", "tail", "--prefix", unique_name], env={**env, "COLUMNS": "250"}, capture_output=True, text=True, timeout=60)
    assert table.returncode == 0, table.stderr
    for reason in ("json_malformed", "not_object", "not_utf8"):
        assert reason in table.stdout
    assert "driftline.inference[1]@41" in table.stdout

    follower = subprocess.Popen(
        [DRIFTLINE, "deadletter", "tail", "--prefix", unique_name, "--json", "--last", "0", "--follow"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        later = _await_line_after_publishing(follower, bootstrap, topic)
        assert orjson.loads(later)["reason"] == "missing_prediction_id"
        assert orjson.loads(later)["source"]["offset"] == 99
    finally:
        follower.terminate()
        follower.wait(10)


def _await_line_after_publishing(follower: subprocess.Popen, bootstrap: str, topic: str) -> str:
    selector = selectors.DefaultSelector()
    selector.register(follower.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _publish_rejects(bootstrap, topic, [b'{"model_id": "m"}'], first_offset=99)
        if selector.select(timeout=2):
            return follower.stdout.readline()
    raise AssertionError(f"the follower printed nothing: {follower.stderr.read() if follower.poll() is not None else ''}")
