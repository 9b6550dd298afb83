"""Structured logs: one JSON object per line on stderr (ts, level, role, worker, msg, fields)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson


class JsonFormatter(logging.Formatter):
    def __init__(self, role: str, worker: str) -> None:
        super().__init__()
        self.role, self.worker = role, worker

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "role": self.role,
            "worker": self.worker,
            "msg": record.getMessage(),
            "fields": getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["fields"] = {**entry["fields"], "exception": self.formatException(record.exc_info)}
        return orjson.dumps(entry, option=orjson.OPT_SERIALIZE_NUMPY, default=str).decode()


def configure(role: str, worker: str, level: int = logging.INFO) -> None:
    """Send every driftline log record to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(role, worker))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
