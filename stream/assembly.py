"""Evaluate side: one model's base windows assembled from the partials of every source partition.

A partial is identified by (window key, window start, source partition) and merged once: a
redelivered one is counted and ignored. A window of the model is complete — and handed to the
evaluator, in (start, key) order as ``EventTimeWindows.close`` orders them — when every source
partition of the inference topic has passed its end, except partitions not waited for:

- a partition whose last progress says it is idle for the model (no events for the ingest's
  ``idle_seconds``, no open window): it has nothing for the window;
- a partition evaluate has heard nothing from for ``idle_seconds`` of wall clock while others
  spoke (no ingest worker runs it): evaluate goes on without it. When every partition is silent,
  the ingest tier is down rather than idle (idle partitions say so), and evaluate waits.

A partial that arrives for a window already handed on (from a partition not waited for) is late:
counted, not merged, since the evaluator's schedule only moves forward in time.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

from detectors._serde import pack, unpack
from detectors.policy import WindowKey
from detectors.profile import ProfileLayout, WindowProfile
from detectors.windows import ClosedWindow, decode_key, encode_key
from stream.partials import WatermarkProgress, WindowPartial


@dataclasses.dataclass
class _Pending:
    end: float
    profile: WindowProfile
    sources: set[int]


@dataclasses.dataclass
class _Progress:
    watermark: float
    idle: bool
    late_events: int


class WindowAssembly:
    """Pending base windows, per-partition progress and the completeness rule of one model."""

    def __init__(self, layout: ProfileLayout, source_partitions: int, idle_seconds: float, now: float) -> None:
        self.layout = layout
        self.source_partitions = source_partitions
        self.idle_seconds = idle_seconds
        self._pending: dict[tuple[WindowKey, float], _Pending] = {}
        self._progress: dict[int, _Progress] = {}
        # Wall clock is not checkpointed: a restored assembly waits idle_seconds afresh.
        self._heard: dict[int, float] = dict.fromkeys(range(source_partitions), now)
        self.closed_through = -math.inf
        self.counts: Counter[str] = Counter()
        """merged and duplicate partials, late partials (window already evaluated)."""

    @property
    def pending_windows(self) -> int:
        """Window keys and starts with partials waiting for completeness."""
        return len(self._pending)

    @property
    def late_events(self) -> int:
        """Events the source partitions counted late (their base window had closed there)."""
        return sum(progress.late_events for progress in self._progress.values())

    def add_partial(self, partial: WindowPartial, now: float) -> None:
        self._heard[partial.source_partition] = now
        if partial.end <= self.closed_through:
            self.counts["late_partials"] += 1
            return
        pending = self._pending.get((partial.key, partial.start))
        if pending is None:
            pending = self._pending[(partial.key, partial.start)] = _Pending(partial.end, self.layout.new_profile(), set())
        if partial.source_partition in pending.sources:
            self.counts["duplicate_partials"] += 1
            return
        pending.profile.merge(WindowProfile.from_bytes(partial.profile))
        pending.sources.add(partial.source_partition)
        self.counts["merged_partials"] += 1

    def add_progress(self, progress: WatermarkProgress, now: float) -> None:
        self._heard[progress.source_partition] = now
        self._progress[progress.source_partition] = _Progress(progress.watermark, progress.idle, progress.late_events)

    def complete_until(self, now: float) -> float:
        """Event time up to which every partition waited for has closed its windows."""
        heard_recently = {p for p in range(self.source_partitions) if now - self._heard.get(p, now) < self.idle_seconds}
        if not heard_recently:  # every partition silent: ingest is down, not idle (idle ones say so); wait
            return -math.inf
        waited = [
            self._progress[partition].watermark if partition in self._progress else -math.inf
            for partition in heard_recently
            if not (partition in self._progress and self._progress[partition].idle)
        ]
        return min(waited, default=math.inf)

    def pop_complete(self, now: float) -> list[ClosedWindow]:
        """The complete pending windows, in (start, key) order."""
        limit = self.complete_until(now)
        ready = sorted(
            (start, encode_key(key), key) for (key, start), pending in self._pending.items() if pending.end <= limit
        )
        closed = []
        for start, _, key in ready:
            pending = self._pending.pop((key, start))
            closed.append(ClosedWindow(key, start, pending.end, pending.profile))
            self.closed_through = max(self.closed_through, pending.end)
        return closed

    def to_bytes(self) -> bytes:
        pending = list(self._pending.items())
        header = {
            "source_partitions": self.source_partitions,
            "pending": [[encode_key(key), start, entry.end, sorted(entry.sources)] for (key, start), entry in pending],
            "progress": [
                [partition, None if progress.watermark == -math.inf else progress.watermark, progress.idle, progress.late_events]
                for partition, progress in self._progress.items()
            ],
            "closed_through": None if self.closed_through == -math.inf else self.closed_through,
            "counts": dict(self.counts),
        }
        return pack("WindowAssembly", header, [entry.profile.to_bytes() for _, entry in pending])

    @classmethod
    def from_bytes(cls, data: bytes, layout: ProfileLayout, source_partitions: int, idle_seconds: float, now: float) -> WindowAssembly:
        header, blobs = unpack("WindowAssembly", data)
        assembly = cls(layout, source_partitions, idle_seconds, now)
        for (key, start, end, sources), blob in zip(header["pending"], blobs):
            assembly._pending[(decode_key(key), start)] = _Pending(end, WindowProfile.from_bytes(blob), set(sources))
        for partition, watermark, idle, late in header["progress"]:
            assembly._progress[partition] = _Progress(-math.inf if watermark is None else watermark, idle, late)
        if header["closed_through"] is not None:
            assembly.closed_through = header["closed_through"]
        assembly.counts.update(header["counts"])
        return assembly
