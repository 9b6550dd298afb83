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

import numpy as np

from detectors.columns import Columns
from detectors.evaluator import Evaluation, ModelEvaluator
from detectors.monitor import MonitorConfig
from detectors.profile import ReferenceProfile
from detectors.windows import ClosedWindow, EventTimeWindows
from stream.decode import Decoder, EventKind, Limits, Reject
from stream.routing import OTHER_SEGMENT_VALUE, ModelRoutes

REPLAY_TOPIC = "replay"
"""Source topic named in the dead-letter records of a replay (partition 0, offset = record index)."""

__all__ = ["OTHER_SEGMENT_VALUE", "REPLAY_TOPIC", "Replay", "ReplaySummary"]


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
    keep_evaluations
        Keep every :class:`Evaluation` in ``evaluations`` (for tests and analyses); off by default so
        that a long replay runs in bounded memory.
    """

    def __init__(
        self, config: MonitorConfig, reference: ReferenceProfile, limits: Limits | None = None, keep_evaluations: bool = False
    ) -> None:
        self.config = config
        self.evaluator = ModelEvaluator(config, reference)
        self.windows = EventTimeWindows(config.windows, self.evaluator.new_profile)
        self.decoder = Decoder(
            EventKind.INFERENCE, limits or Limits(max_past_seconds=math.inf, max_future_seconds=math.inf)
        )
        self.summary = ReplaySummary()
        self.keep_evaluations = keep_evaluations
        self.evaluations: list[Evaluation] = []
        """Every evaluation, oldest first, if ``keep_evaluations`` (memory grows with the input)."""
        self.routes = ModelRoutes(config, self.evaluator.layout)
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
        alerts = self.feed_columns(self.routes.columns(events))
        return alerts, batch.rejects

    def feed_columns(self, columns: Columns) -> list[dict]:
        """Add already decoded events of this model; return the alert events completed."""
        self.summary.accepted += len(columns)
        late = self.windows.add(columns, self.routes.routes(columns))
        self.summary.late += int(np.count_nonzero(late))
        return self._evaluate(self.windows.close())

    def finish(self) -> list[dict]:
        """Close every open window (end of input) and return the alert events completed."""
        return self._evaluate(self.windows.close(math.inf))

    def _evaluate(self, closed: list[ClosedWindow]) -> list[dict]:
        alerts = []
        for window in closed:
            self.summary.base_windows += 1
            evaluation = self.evaluator.close_window(window.key, window.start, window.end, window.profile)
            if evaluation is None:
                continue
            if self.keep_evaluations:
                self.evaluations.append(evaluation)
            self.summary.evaluations += 1
            self.summary.change_points.update(evaluation.change_points)
            for alert in evaluation.alerts:
                self.summary.firing += alert["status"] == "firing"
                self.summary.resolved += alert["status"] == "resolved"
            alerts.extend(evaluation.alerts)
        return alerts
