"""Records of the partials topic: what ingest tells evaluate.

Both are keyed by ``model_id``, so a model's partials and progress share one partials partition and
arrive in the order an ingest worker published them: a progress record that says a source
partition passed a window always comes after that partition's partials of the window.

- ``WindowPartial``: one closed base window of one window key (model, version, segment) as seen by
  one source partition: its ``WindowProfile`` bytes and event count. Identified by
  (key, start, source partition); evaluate merges each identity once.
- ``WatermarkProgress``: the watermark of one model in one source partition (event time up to which
  its windows are closed and published) and whether that partition is idle for the model (no events
  for ``idle_seconds`` and no open window), so that evaluate need not wait for it.

Wire format: the sketch envelope of ``detectors._serde`` (magic, JSON header, length-prefixed blobs).
"""

from __future__ import annotations

import dataclasses
import math

from detectors._serde import kind_of, pack, unpack
from detectors.policy import WindowKey
from detectors.windows import decode_key, encode_key


@dataclasses.dataclass(frozen=True)
class WindowPartial:
    key: WindowKey
    start: float
    end: float
    source_partition: int
    event_count: int
    profile: bytes

    def to_bytes(self) -> bytes:
        header = {
            "key": encode_key(self.key),
            "start": self.start,
            "end": self.end,
            "source_partition": self.source_partition,
            "event_count": self.event_count,
        }
        return pack("WindowPartial", header, [self.profile])

    @classmethod
    def from_header(cls, header: dict, blobs: list[bytes]) -> WindowPartial:
        return cls(decode_key(header["key"]), header["start"], header["end"], header["source_partition"], header["event_count"], blobs[0])


@dataclasses.dataclass(frozen=True)
class WatermarkProgress:
    model_id: str
    source_partition: int
    watermark: float
    """``-inf`` until the partition has seen an event of the model."""
    idle: bool
    late_events: int
    """Events of the model this partition counted late so far (their window had closed)."""

    def to_bytes(self) -> bytes:
        header = {
            "model_id": self.model_id,
            "source_partition": self.source_partition,
            "watermark": None if self.watermark == -math.inf else self.watermark,
            "idle": self.idle,
            "late_events": self.late_events,
        }
        return pack("WatermarkProgress", header, [])

    @classmethod
    def from_header(cls, header: dict, blobs: list[bytes]) -> WatermarkProgress:
        watermark = -math.inf if header["watermark"] is None else header["watermark"]
        return cls(header["model_id"], header["source_partition"], watermark, header["idle"], header["late_events"])


_RECORDS = {"WindowPartial": WindowPartial, "WatermarkProgress": WatermarkProgress}


def decode_record(data: bytes) -> WindowPartial | WatermarkProgress:
    """Decode a partials-topic value; ``ValueError`` if it is neither record."""
    kind = kind_of(data)
    if kind not in _RECORDS:
        raise ValueError(f"not a partials record: {kind}")
    header, blobs = unpack(kind, data)
    return _RECORDS[kind].from_header(header, blobs)
