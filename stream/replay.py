"""``driftline replay``: the streaming core — decode, columns, windows, profiles, evaluator, policy — in
one process over an event file, with no broker.

The streaming workers run the same pieces split across processes (ingest: decode → columns →
``EventTimeWindows``; evaluate: ``ModelEvaluator.close_window``). Every piece depends only on the
events and their order, and every alert decision rests on exact counts (histograms, category
counts, rates), which merge identically however a window was split across workers. So replay and
streaming produce the same alerts for the same events and the same late events: a replay of one
partition's records decides lateness exactly as that partition's ingest worker does. (Reported
quantile-sketch statistics — KS, Wasserstein, p99 — may differ in the last digits, as KLL and REQ
compaction is randomized.)
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable

import numpy as np

from detectors.columns import Columns
from detectors.evaluator import Evaluation, ModelEvaluator
from detectors.monitor import MonitorConfig
from detectors.policy import WindowKey
from detectors.profile import ReferenceProfile
from detectors.windows import ClosedWindow, EventTimeWindows
from stream.decode import Decoder, EventKind, Limits, Reject

REPLAY_TOPIC = "replay"
"""Source topic named in the dead-letter records of a replay (partition 0, offset = record index)."""

OTHER_SEGMENT_VALUE = "__other__"
"""Segment value pooling a tag's values beyond its ``max_values``."""


@dataclasses.dataclass
class ReplaySummary:
    """Counts of one replay."""

    events: int = 0
    accepted: int = 0
    other_models: int = 0
    late: int = 0
    rejects: Counter[str] = dataclasses.field(default_factory=Counter)
    base_windows: int = 0
    evaluations: int = 0
    firing: int = 0
    resolved: int = 0
    change_points: Counter[str] = dataclasses.field(default_factory=Counter)


class Replay:
    """One model's monitoring pipeline fed with raw event bytes (or decoded columns) in file order.

    ``feed`` returns the alert events each batch completed; ``finish`` closes the windows still open
    at the end of the input (the watermark jumps to infinity) and returns the last alerts.

    Parameters
    ----------
    config, reference
        The model's monitor config and reference profile.
    limits
        Decoder limits; the default accepts any event time (historical files).
    """

    def __init__(self, config: MonitorConfig, reference: ReferenceProfile, limits: Limits | None = None) -> None:
        self.config = config
        self.evaluator = ModelEvaluator(config, reference)
        self.windows = EventTimeWindows(config.windows, self.evaluator.new_profile)
        self.decoder = Decoder(
            EventKind.INFERENCE, limits or Limits(max_past_seconds=math.inf, max_future_seconds=math.inf)
        )
        self.summary = ReplaySummary()
        self.evaluations: list[Evaluation] = []
        self._numeric = list(self.evaluator.layout.numeric)
        self._categorical = list(self.evaluator.layout.categorical)
        self._segment_tags = [tag for tag, _ in config.segments]
        self._segment_values: dict[str, dict[str, None]] = {tag: {} for tag in self._segment_tags}
        self._offset = 0

    def feed(self, values: list[bytes]) -> tuple[list[dict], list[Reject]]:
        """Decode a batch of raw events; return the alert events it completed and the rejects."""
        offsets = range(self._offset, self._offset + len(values))
        self._offset += len(values)
        batch = self.decoder.decode(values, REPLAY_TOPIC, 0, offsets)
        self.summary.events += len(values)
        for reject in batch.rejects:
            self.summary.rejects[str(reject.reason)] += 1
        events = [event for event in batch.events if event["model_id"] == self.config.model_id]
        self.summary.other_models += len(batch.events) - len(events)
        alerts = self.feed_columns(Columns.from_events(events, self._numeric, self._categorical, self._segment_tags))
        return alerts, batch.rejects

    def feed_columns(self, columns: Columns) -> list[dict]:
        """Add already decoded events of this model; return the alert events completed."""
        self.summary.accepted += len(columns)
        late = self.windows.add(columns, self._routes(columns))
        self.summary.late += int(np.count_nonzero(late))
        return self._evaluate(self.windows.close())

    def finish(self) -> list[dict]:
        """Close every open window (end of input) and return the alert events completed."""
        return self._evaluate(self.windows.close(math.inf))

    def _routes(self, columns: Columns) -> dict[WindowKey, np.ndarray]:
        """Indices of the events of each window key: the model version, and each of its segments."""
        routes: dict[WindowKey, np.ndarray] = {}
        versions, version_of = np.unique(columns.model_version.astype(str), return_inverse=True)
        for position, version in enumerate(versions.tolist()):
            indices = np.flatnonzero(version_of == position)
            routes[WindowKey(self.config.model_id, version)] = indices
            for tag in self._segment_tags:
                for value, members in self._segments(tag, columns.segment[tag][indices]):
                    routes[WindowKey(self.config.model_id, version, {tag: value})] = indices[members]
        return routes

    def _segments(self, tag: str, values: np.ndarray) -> Iterable[tuple[str, np.ndarray]]:
        present = values != None  # noqa: E711
        if not present.any():
            return []
        spelled = values[present].astype(str)
        uniques, first, inverse = np.unique(spelled, return_index=True, return_inverse=True)
        known = self._segment_values[tag]
        cap = dict(self.config.segments)[tag]
        # Values claim the tag's slots in order of first appearance, so batching does not matter.
        for value in uniques[np.argsort(first, kind="stable")].tolist():
            if value not in known and len(known) < cap:
                known[value] = None
        pooled = np.array([value if value in known else OTHER_SEGMENT_VALUE for value in uniques.tolist()], dtype=object)
        present_indices = np.flatnonzero(present)
        names = pooled[inverse]
        return [(name, present_indices[names == name]) for name in sorted(set(pooled.tolist()))]

    def _evaluate(self, closed: list[ClosedWindow]) -> list[dict]:
        alerts = []
        for window in closed:
            self.summary.base_windows += 1
            evaluation = self.evaluator.close_window(window.key, window.start, window.end, window.profile)
            if evaluation is None:
                continue
            self.evaluations.append(evaluation)
            self.summary.evaluations += 1
            self.summary.change_points.update(evaluation.change_points)
            for alert in evaluation.alerts:
                self.summary.firing += alert["status"] == "firing"
                self.summary.resolved += alert["status"] == "resolved"
            alerts.extend(evaluation.alerts)
        return alerts
