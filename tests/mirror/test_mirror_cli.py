"""`driftline alerts tail` on the real broker and `driftline state show` on the real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

import schemas
from stream.mirror import RedisMirror
from stream.settings import TopicSettings
from stream.topics import create_topics, plan_topics
from tests.mirror.conftest import MODEL_ID, VERSION, drift_story
from tests.mirror.scenario import reference

pytestmark = pytest.mark.integration

DRIFTLINE = str(Path(sys.executable).with_name("driftline"))

PAGING_ALERT = {
    "schema_version": "1.0",
    "alert_id": "0123456789abcdef0123456789abcdef",
    "incident_id": "fedcba9876543210fedcba9876543210",
    "model_id": "churn",
    "model_version": "7",
    "segment": {"tier": "gold", "region": "eu"},
    "kind": "error_rate",
    "feature": None,
    "severity": "P0",
    "status": "firing",
    "statistic": {"name": "error_rate", "value": 0.12, "threshold": 0.05, "p_value": None, "sample_size": 4000, "reference_size": 100000},
    "window": {"start": "2026-11-24T04:00:00Z", "end": "2026-11-24T04:05:00Z"},
    "reference": {"id": "monitor-config", "description": "fixed thresholds of the monitor config"},
    "summary": "Error rate 12% is above 5% for 3 of the last 3 windows.",
    "suggested_action": "rollback",
    "related_alert_ids": [],
    "created_at": "2026-11-24T04:05:02.500Z",
}


def _env(stack_settings, **extra: str) -> dict[str, str]:
    return {**os.environ, "DRIFTLINE_KAFKA": stack_settings.kafka_bootstrap, "DRIFTLINE_REDIS": stack_settings.redis_url, "COLUMNS": "250", **extra}


def _driftline(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([DRIFTLINE, *args], env=env, capture_output=True, text=True, timeout=60)


def test_alerts_tail_prints_json_lines_and_a_table(stack_settings, unique_name):
    bootstrap = stack_settings.kafka_bootstrap
    topics = TopicSettings(prefix=unique_name, model_partitions=1)
    create_topics(AdminClient({"bootstrap.servers": bootstrap}), plan_topics(topics))
    _, story = drift_story()
    events = [alert for evaluation in story for alert in evaluation.alerts] + [PAGING_ALERT]
    validator = jsonschema.Draft202012Validator(schemas.load("alert"), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    for event in events:
        validator.validate(event)
    producer = Producer({"bootstrap.servers": bootstrap})
    for event in events:
        producer.produce(topics.name("alerts"), key=event["model_id"].encode(), value=orjson.dumps(event))
    producer.flush(30)
    env = _env(stack_settings)

    as_json = _driftline("alerts", "tail", "--prefix", unique_name, "--json", "--last", "3", env=env)
    assert as_json.returncode == 0, as_json.stderr
    assert [orjson.loads(line) for line in as_json.stdout.splitlines()] == events[-3:]

    table = _driftline("alerts", "tail", "--prefix", unique_name, env=env)
    assert table.returncode == 0, table.stderr
    rows = [line for line in table.stdout.splitlines() if MODEL_ID in line or "churn" in line]
    assert len(rows) == len(events)
    city, x_firing, x_resolved, paging = rows
    assert f"│ {events[0]['severity']} " in city and "firing" in city and "│ city " in city and "data_drift" in city
    assert "resolved" in x_resolved and f"{MODEL_ID}/{VERSION}" in x_resolved
    threshold = events[1]["statistic"]["threshold"]
    assert f"js {events[1]['statistic']['value']:.4g} ≥ {threshold:.4g}" in x_firing
    assert f"js {events[2]['statistic']['value']:.4g} < {threshold:.4g}" in x_resolved
    for cell in ("2026-11-24T04:05:02.500Z", "P0", "churn/7 [region=eu,tier=gold]", "error_rate 0.12 ≥ 0.05", "Error rate 12% is above 5%"):
        assert cell in paging

    missing = _driftline("alerts", "tail", "--prefix", f"{unique_name}-none", env=env)
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr and "Traceback" not in missing.stderr


def test_state_show_prints_windows_by_worst_drift_open_alerts_and_workers(stack_settings, prefix, mirror):
    evaluator, story = drift_story()
    for evaluation in story:
        mirror.evaluation(evaluation, evaluator.config.policy)
        mirror.alerts(evaluation.alerts)
    mirror.reference(reference(MODEL_ID, VERSION))
    mirror.heartbeat("evaluate", "host-1.42", {"lag": {"driftline.partials[0]": 1200, "driftline.partials[1]": 34}, "processed": {"partials": 99}})
    env = _env(stack_settings)

    table = _driftline("state", "show", MODEL_ID, "--prefix", prefix, env=env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    feature_rows = [next(i for i, line in enumerate(lines) if line.startswith(f"│ {name} ")) for name in ("city", "x", "(model)")]
    assert feature_rows == sorted(feature_rows)  # city drifted, x recovered, no model-level check fails
    latest = story[-1]
    assert f"{latest.event_count:,} events" in table.stdout
    assert "open alerts (1)" in table.stdout
    [open_row] = [line for line in lines if "firing" in line]
    [still_firing] = evaluator.policy.open_alerts
    assert "│ city " in open_row and f"│ {still_firing['severity']} " in open_row
    assert "train.csv" in table.stdout and "5,000" in table.stdout
    [worker] = [line for line in lines if "host-1.42" in line]
    assert "1,234" in worker and "driftline.partials[0]: 1,200" in worker and '{"processed":{"partials":99}}' in worker

    as_json = _driftline("state", "show", MODEL_ID, "--prefix", prefix, "--version", VERSION, "--json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    assert orjson.loads(as_json.stdout) == orjson.loads(orjson.dumps(mirror.model_state(MODEL_ID, VERSION)))


def test_state_show_explains_missing_state_and_unreachable_redis(stack_settings, prefix, mirror):
    mirror.heartbeat("evaluate", "w1", {})
    mirror.reference(reference(MODEL_ID, VERSION))
    unknown = _driftline("state", "show", "no-such-model", "--prefix", prefix, env=_env(stack_settings))
    assert unknown.returncode == 1
    [message] = unknown.stderr.splitlines()
    assert "no state for model no-such-model" in message and f"known models: {MODEL_ID}" in message

    other_version = _driftline("state", "show", MODEL_ID, "--version", "9", "--prefix", prefix, env=_env(stack_settings))
    assert other_version.returncode == 1 and "no state for model fraud-detector version 9" in other_version.stderr

    down = _driftline("state", "show", MODEL_ID, env=_env(stack_settings, DRIFTLINE_REDIS="redis://127.0.0.1:1/0"))
    assert down.returncode == 1
    [message] = down.stderr.splitlines()
    assert "Redis at redis://127.0.0.1:1/0 is not reachable" in message and "driftline stack up" in message
