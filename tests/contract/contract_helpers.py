"""Shared helpers for the contract tests."""

import jsonschema
import orjson

import schemas

# A fixed "now" (2026-11-18T11:06:40Z) so time-window checks are deterministic.
NOW = 1_795_000_000.0


def clock() -> float:
    return NOW


def inference(now: float = NOW, **changes: object) -> dict:
    """A valid inference event at ``now``, with fields replaced (or removed when the value is ...)."""
    event = {
        "schema_version": "1.0",
        "prediction_id": "p-1",
        "model_id": "fraud-detector",
        "model_version": "v3",
        "timestamp": now - 10,
        "features": {"amount": 12.5, "country": "DE", "new": True, "age": None},
        "prediction": {"score": 0.5},
        "latency_ms": 3.0,
        "status": "ok",
        "segment": {"channel": "web"},
        "metadata": {"request": {"id": "r1"}},
    }
    return _apply(event, changes)


def label(now: float = NOW, **changes: object) -> dict:
    """A valid label event at ``now``, with fields replaced (or removed when the value is ...)."""
    return _apply({"prediction_id": "p-1", "label": "fraud", "timestamp": now - 5, "model_id": "fraud-detector"}, changes)


def _apply(event: dict, changes: dict) -> dict:
    for name, value in changes.items():
        if value is ...:
            event.pop(name, None)
        else:
            event[name] = value
    return event


def dumps(event: object) -> bytes:
    return orjson.dumps(event)


VALIDATORS = {name: jsonschema.Draft202012Validator(schemas.load(name)) for name in schemas.NAMES}
