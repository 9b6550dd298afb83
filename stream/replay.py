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

Rejected values of the model (a readable ``model_id``) count in its windows too, for the
``reject_rate`` check: ``model_rejects`` places them among the model's accepted events by input
order, so that the ingest worker of a partition and a replay of that partition's records put them
in the same windows (``detectors.windows.Rejects`` says which window).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import orjson

from detectors.columns import Columns
from detectors.evaluator import Evaluation, ModelEvaluator
from detectors.monitor import MonitorConfig
from detectors.performance import CoverageEvaluation, EvictionEvaluation, PerformanceEvaluation, PerformanceMonitor, is_join_evictions
from detectors.profile import ReferenceProfile
from detectors.windows import ClosedWindow, EventTimeWindows, Rejects
from stream.decode import Decoder, EventKind, Limits, Reject, timestamp_seconds
from stream.join import JoinStore
from stream.routing import OTHER_SEGMENT_VALUE, ModelRoutes

REPLAY_TOPIC = "replay"
"""Source topic named in the dead-letter records of a replay (partition 0, offset = record index)."""
REPLAY_LABELS_TOPIC = "replay-labels"
"""The same for rejected label events (offset = index in the label input)."""
JOIN_MAX_BYTES = 1 << 30
"""Memory of a replay's label join: one process holds what all ingest workers hold between them."""

__all__ = ["OTHER_SEGMENT_VALUE", "REPLAY_TOPIC", "Replay", "ReplaySummary", "event_time", "model_rejects"]


def model_rejects(model_id: str, events: list[dict], rejects: Sequence[tuple[int, Reject]]) -> Rejects:
    """``model_id``'s rejects among a batch's, each given with the number of the batch's accepted
    ``events`` (all models) before it, placed among the model's own accepted events."""
    own = [(before, reject) for before, reject in rejects if reject.model_id == model_id]
    is_model = np.fromiter((event["model_id"] == model_id for event in events), dtype=bool, count=len(events))
    model_before = np.concatenate([[0], np.cumsum(is_model)])
    return Rejects(
        model_before[np.array([before for before, _ in own], dtype=np.int64)],
        np.array([_readable_time(reject) for _, reject in own], dtype=np.float64),
    )


def _readable_time(reject: Reject) -> float:
    """The rejected value's event time if it parses and its timestamp is valid, else NaN."""
    return event_time(reject.original)


def event_time(raw: bytes) -> float:
    """A raw event's time in epoch seconds if it parses and its timestamp is valid, else NaN."""
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return math.nan
    seconds = timestamp_seconds(event.get("timestamp")) if type(event) is dict else None
    return seconds if type(seconds) is float else math.nan


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
    outcomes: int = 0
    labels: int = 0
    performance_windows: int = 0
    concept_drift_detections: Counter[str] = dataclasses.field(default_factory=Counter)


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
    labels
        Join label events (``feed_labels``) with the predictions, as the ingest worker does
        (``stream.join.JoinStore``); without it predictions are not kept for a join.
    join_max_bytes
        Memory cap of that join; its evictions alert as in streaming.
    """

    def __init__(
        self, config: MonitorConfig, reference: ReferenceProfile, limits: Limits | None = None, keep_evaluations: bool = False,
        labels: bool = False, join_max_bytes: int = JOIN_MAX_BYTES,
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
        self.performance = (
            None if config.performance is None else PerformanceMonitor(config.model_id, config.performance, config.policy)
        )
        """Performance from outcomes (``feed_outcomes``), when the config sets a ``task``."""
        self.performance_evaluations: list[PerformanceEvaluation | CoverageEvaluation | EvictionEvaluation] = []
        """Every performance, coverage and join-eviction evaluation, oldest first, if ``keep_evaluations``."""
        self._offset = 0
        self.join = JoinStore({config.model_id: config.label_ttl_seconds}, join_max_bytes) if labels else None
        """With ``labels``: the label join of stream/join.py, fed by ``feed`` and ``feed_labels``; its
        outcomes and ``join_evictions`` records go to ``feed_outcomes``."""
        self.label_decoder = Decoder(EventKind.LABEL, self.decoder.limits)
        self._label_offset = 0

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
        # Offsets are consecutive: a reject's offset minus the rejects before it counts the accepted events before it.
        placed = [(reject.offset - offsets.start - rank, reject) for rank, reject in enumerate(batch.rejects)]
        alerts = self.feed_outcomes(self.join.add_predictions(events) + self.join.pop_evictions()) if self.join is not None else []
        alerts += self.feed_columns(self.routes.columns(events), model_rejects(self.config.model_id, batch.events, placed))
        return alerts, batch.rejects

    def feed_labels(self, values: list[bytes]) -> tuple[list[dict], list[Reject]]:
        """Decode a batch of raw label events and join them (needs ``labels``); return the alert
        events their outcomes completed and the rejects. Feed labels and events merged by time."""
        if self.join is None:
            raise ValueError("this Replay was made without labels=True: it keeps no predictions to join labels with")
        offsets = range(self._label_offset, self._label_offset + len(values))
        self._label_offset += len(values)
        batch = self.label_decoder.decode(values, REPLAY_LABELS_TOPIC, 0, offsets)
        self.summary.labels += len(values)
        self.summary.rejects.update(str(reject.reason) for reject in batch.rejects)
        labels = [label for label in batch.events if label.get("model_id", self.config.model_id) == self.config.model_id]
        self.summary.other_models += len(batch.events) - len(labels)
        return self.feed_outcomes(self.join.add_labels(labels) + self.join.pop_evictions()), batch.rejects

    def feed_columns(self, columns: Columns, rejects: Rejects | None = None) -> list[dict]:
        """Add already decoded events of this model (and its rejects among them); return the alert events completed."""
        self.summary.accepted += len(columns)
        late = self.windows.add(columns, self.routes.routes(columns), rejects)
        self.summary.late += int(np.count_nonzero(late))
        return self._evaluate(self.windows.close())

    def feed_outcomes(self, outcomes: list[dict]) -> list[dict]:
        """Add joined outcomes (``schemas/outcome.schema.json``) in label-time order; return the alert events completed.

        Feed them interleaved in time with the events (``feed``), so that coverage is counted
        before the prediction windows it belongs to are judged.
        """
        if self.performance is None:
            return []
        outcomes = [outcome for outcome in outcomes if outcome["model_id"] == self.config.model_id]
        self.summary.outcomes += sum(not is_join_evictions(outcome) for outcome in outcomes)
        evaluations = self.performance.update(outcomes)
        self.summary.performance_windows += len(evaluations)
        for evaluation in evaluations:
            self.summary.concept_drift_detections.update(evaluation.detections)
        return self._performance_alerts(evaluations)

    def _performance_alerts(self, evaluations: list[PerformanceEvaluation] | list[CoverageEvaluation | EvictionEvaluation]) -> list[dict]:
        if self.keep_evaluations:
            self.performance_evaluations.extend(evaluations)
        alerts = [alert for evaluation in evaluations for alert in evaluation.alerts]
        self._count(alerts)
        return alerts

    def _count(self, alerts: list[dict]) -> None:
        for alert in alerts:
            self.summary.firing += alert["status"] == "firing"
            self.summary.resolved += alert["status"] == "resolved"

    def finish(self) -> list[dict]:
        """Close every open window (end of input) and return the alert events completed."""
        return self._evaluate(self.windows.close(math.inf))

    def _evaluate(self, closed: list[ClosedWindow]) -> list[dict]:
        alerts = []
        for window in closed:
            self.summary.base_windows += 1
            if self.performance is not None:
                alerts.extend(self._performance_alerts(
                    self.performance.close_window(window.key, window.start, window.end, window.profile.event_count)
                ))  # fmt: skip
            evaluation = self.evaluator.close_window(window.key, window.start, window.end, window.profile)
            if evaluation is None:
                continue
            if self.keep_evaluations:
                self.evaluations.append(evaluation)
            self.summary.evaluations += 1
            self.summary.change_points.update(evaluation.change_points)
            self._count(evaluation.alerts)
            alerts.extend(evaluation.alerts)
        return alerts
