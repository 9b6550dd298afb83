"""The events the policy publishes validate against the alert event schema (schemas/alert.schema.json)."""

from __future__ import annotations

import jsonschema
import pytest

import schemas
from detectors.policy import PolicyConfig, TestResult, WindowKey
from tests.policy.policy_scenarios import Feed, drift


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = schemas.load("alert")
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def test_every_kind_of_event_validates(validator: jsonschema.Draft202012Validator) -> None:
    family = [
        drift(0.4),
        drift(0.5, "amount", p_value=None),
        TestResult("latency", None, "p99_latency_ms", 900.0, threshold=500.0, sample_size=5000),
        TestResult("performance", None, "accuracy_drop", 0.2, threshold=0.05, p_value=1e-5, sample_size=800),
        TestResult("data_quality", "age", "null_rate", 0.3, threshold=0.05, sample_size=5000, reference_size=None),
    ]
    feed = Feed(PolicyConfig(), WindowKey("fraud-detector", "2024.11.3", {"channel": "web"}))
    fired = [e for events in feed.run([family] * 2) for e in events]
    calm = [
        drift(0.01),
        drift(0.01, "amount", p_value=None),
        TestResult("latency", None, "p99_latency_ms", 100.0, threshold=500.0, sample_size=5000),
        TestResult("performance", None, "accuracy_drop", 0.0, threshold=0.05, p_value=0.9, sample_size=800),
        TestResult("data_quality", "age", "null_rate", 0.0, threshold=0.05, sample_size=5000),
    ]
    resolved = [e for events in feed.run([calm] * 2) for e in events]
    assert [e["status"] for e in fired + resolved] == ["firing"] * 5 + ["resolved"] * 5
    for event in fired + resolved:
        validator.validate(event)
