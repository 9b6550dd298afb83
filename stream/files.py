"""Event files (JSONL and CSV) as Kafka records: ``(key, value)`` pairs keyed by prediction_id.

JSONL lines are passed on byte for byte, even malformed ones, so a file can replay bad input
into the dead-letter path. CSV rows become JSON events: the columns named in
``INFERENCE_COLUMNS``/``LABEL_COLUMNS`` fill those fields, every other column of an inference
file is a feature (an empty cell is null, a number is a number, anything else a string).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import orjson

from stream.settings import ConfigError

INFERENCE_COLUMNS = ("prediction_id", "model_id", "model_version", "timestamp", "prediction", "latency_ms", "status", "error")
LABEL_COLUMNS = ("prediction_id", "label", "timestamp", "model_id")


def _scalar(text: str) -> float | int | str | None:
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _key_of(line: bytes) -> bytes | None:
    try:
        prediction_id = orjson.loads(line).get("prediction_id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return prediction_id.encode() if isinstance(prediction_id, str) else None


def _csv_event(row: dict[str, str], kind: str, defaults: dict[str, str]) -> dict:
    reserved = INFERENCE_COLUMNS if kind == "inference" else LABEL_COLUMNS
    event = {**defaults, **{column: _scalar(row[column]) for column in reserved if column in row and row[column] != ""}}
    for column in ("prediction_id", "model_id", "model_version"):
        if column in event:
            event[column] = str(event[column])
    if kind == "inference":
        event["features"] = {name: _scalar(value) for name, value in row.items() if name not in reserved}
    return event


def read_records(path: Path, kind: str, defaults: dict[str, str] | None = None) -> Iterator[tuple[bytes | None, bytes]]:
    """Yield ``(key, value)`` for each event of a ``.jsonl`` or ``.csv`` file; ``defaults`` fill missing CSV fields."""
    if kind not in ("inference", "labels"):
        raise ConfigError(f"unknown event kind {kind!r}: use inference or labels")
    if path.suffix == ".jsonl":
        with open(path, "rb") as lines:
            for line in lines:
                line = line.rstrip(b"\r\n")
                if line:
                    yield _key_of(line), line
    elif path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as text:
            for row in csv.DictReader(text):
                event = _csv_event(row, "inference" if kind == "inference" else "labels", defaults or {})
                key = event.get("prediction_id")
                yield (key.encode() if isinstance(key, str) else None), orjson.dumps(event)
    else:
        raise ConfigError(f"{path}: unsupported file type {path.suffix!r}; use .jsonl (one JSON event per line) or .csv")
