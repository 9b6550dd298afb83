"""Ingest aggregation: accepted inference events into per-source-partition event-time windows, and
closed windows out as partials for the evaluate stage.

Per input partition and monitored model, an ``EventTimeWindows`` with the model's window config:
the watermark is per (source partition, model), exactly as ``driftline replay`` keeps it for the
model's events of one partition, so both decide lateness alike. When the watermark passes a base
window, each of its window keys (version, segments) is published as a ``WindowPartial``; whenever the
watermark crosses a base-window boundary — or the partition's idle state changes, or nothing was
said for ``idle_seconds`` — a ``WatermarkProgress`` tells evaluate how far this partition has got.

Idle partitions: a (partition, model) with no events for ``idle_seconds`` of wall clock lets its
event clock run on with the wall clock from its last event, so its windows still close when traffic
stops; and once it has no open window it reports itself idle, so evaluate does not wait for it.
Only a partition the worker keeps up with is silent: one with a backlog (more than a batch still to
consume: catching up after a restart, or traffic beyond the worker) may hold the model's next
events, so its clock waits and it is not reported idle — else evaluate would close the model's
windows without it and drop its partials as late.

State: each partition's open windows, late counts and segment slots are checkpointed (through the
worker, in the batch's transaction) and restored on assignment, so counts survive kill -9 exactly.
Label events are accepted by the decoder and counted here; the label join comes with its own issue.

Rejected inference values count in the windows of their model (``stream.replay.model_rejects``) for
the evaluator's ``reject_rate`` check. A reject whose model id cannot be read (e.g. invalid UTF-8
inside it) cannot be attributed to a model, so it is counted per source partition only
(``unattributed_rejects``; the dead-letter topic has every one).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from detectors._serde import pack, unpack
from detectors.windows import ClosedWindow, EventTimeWindows
from stream.ingest import PlacedReject, SourcePartition
from stream.models import MonitoredModel
from stream.partials import WatermarkProgress, WindowPartial
from stream.replay import model_rejects
from stream.routing import ModelRoutes
from stream.settings import TopicSettings
from stream.transaction import Output


@dataclasses.dataclass
class _ModelWindows:
    """One model's windows in one source partition, with the wall-clock facts of its idleness."""

    windows: EventTimeWindows
    routes: ModelRoutes
    last_event_wall: float
    """Wall time of the last event (or of the assignment): idleness is measured from it."""
    event_time_at_last_event: float
    reported: tuple[float, bool] | None = None
    """(watermark's base-window index, idle) of the last progress published."""
    reported_wall: float = -math.inf

    def silent_for(self, now: float, idle_seconds: float, caught_up: bool) -> float | None:
        """Wall seconds without events, once they reach ``idle_seconds`` on a caught-up partition;
        else ``None`` (a partition with a backlog is not silent, only behind)."""
        silent = now - self.last_event_wall
        return silent if caught_up and silent >= idle_seconds else None

    def progress_state(self, now: float, idle_seconds: float, caught_up: bool) -> tuple[float, bool]:
        base = self.windows.config.base_seconds
        watermark = self.windows.watermark
        index = math.floor(watermark / base) if math.isfinite(watermark) else -math.inf
        idle = self.silent_for(now, idle_seconds, caught_up) is not None and not self.windows.open_windows
        return index, idle


class WindowAggregator:
    """The ingest worker's handler (``stream.ingest.PartitionHandler``) for monitored models."""

    stateful = True

    def __init__(
        self,
        models: Mapping[str, MonitoredModel],
        topics: TopicSettings,
        *,
        idle_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.models = models
        self.idle_seconds = idle_seconds
        self.inference_topic = topics.name("inference")
        self.partials_topic = topics.name("partials")
        self._clock = clock
        self._partitions: dict[int, dict[str, _ModelWindows]] = {}
        self._changed: set[int] = set()
        self.counts: Counter[str] = Counter()
        """labels (accepted, awaiting the join), partials and progress published, unmonitored events."""
        self.unattributed_rejects: Counter[int] = Counter()
        """Rejected inference values without a readable model id, per source partition."""

    def assign(self, topic: str, partition: int, state: bytes | None) -> None:
        if topic != self.inference_topic:
            return
        now = self._clock()
        restored = self._restore(state) if state is not None else {}
        self._partitions[partition] = {
            model_id: self._model_windows(model, now, *restored.get(model_id, (None, {})))
            for model_id, model in self.models.items()
        }
        self._changed.discard(partition)

    def revoke(self, topic: str, partition: int) -> None:
        if topic == self.inference_topic:
            self._partitions.pop(partition, None)
            self._changed.discard(partition)

    def handle(self, topic: str, partition: int, events: list[dict], rejects: Sequence[PlacedReject] = ()) -> list[Output]:
        if topic != self.inference_topic:
            self.counts["labels"] += len(events)
            return []
        if not events and not rejects:
            return []
        by_model: dict[str, list[dict]] = {}
        for event in events:
            by_model.setdefault(event["model_id"], []).append(event)
        models = self._partitions[partition]
        for _, reject in rejects:
            if reject.model_id is None:
                self.unattributed_rejects[partition] += 1
            elif reject.model_id in models:
                by_model.setdefault(reject.model_id, [])
        now = self._clock()
        outputs: list[Output] = []
        for model_id, model_events in by_model.items():
            state = models.get(model_id)
            if state is None:  # the decoder only accepts configured models; kept countable all the same
                self.counts["unmonitored"] += len(model_events)
                continue
            columns = state.routes.columns(model_events)
            state.windows.add(columns, state.routes.routes(columns), model_rejects(model_id, events, rejects))
            if model_events:  # rejects are not traffic: they do not keep a partition from going idle
                state.last_event_wall, state.event_time_at_last_event = now, state.windows.max_event_time
            outputs += self._publish(model_id, partition, state.windows.close())
            outputs += self._progress(model_id, partition, state, now)
        self._changed.add(partition)
        return outputs

    def tick(self, behind: frozenset[SourcePartition] = frozenset()) -> list[Output]:
        now = self._clock()
        outputs: list[Output] = []
        for partition, models in self._partitions.items():
            caught_up = (self.inference_topic, partition) not in behind
            for model_id, state in models.items():
                idle_for = state.silent_for(now, self.idle_seconds, caught_up)
                if idle_for is not None and math.isfinite(state.event_time_at_last_event):
                    state.windows.advance(state.event_time_at_last_event + idle_for)
                    closed = state.windows.close()
                    if closed:
                        outputs += self._publish(model_id, partition, closed)
                        self._changed.add(partition)
                outputs += self._progress(model_id, partition, state, now, caught_up)
        return outputs

    def checkpoints(self) -> dict[SourcePartition, bytes]:
        changed = {(self.inference_topic, partition): self._checkpoint(self._partitions[partition]) for partition in self._changed}
        self._changed.clear()
        return changed

    def _model_windows(
        self, model: MonitoredModel, now: float, windows: EventTimeWindows | None, segments: Mapping[str, list[str]]
    ) -> _ModelWindows:
        routes = ModelRoutes(model.config, model.layout)
        routes.restore_segment_values(segments)
        windows = windows or EventTimeWindows(model.config.windows, model.layout.new_profile)
        return _ModelWindows(windows, routes, last_event_wall=now, event_time_at_last_event=windows.max_event_time)

    def _publish(self, model_id: str, partition: int, closed: list[ClosedWindow]) -> list[Output]:
        self.counts["partials"] += len(closed)
        key = model_id.encode()
        return [
            Output(
                self.partials_topic,
                key,
                WindowPartial(window.key, window.start, window.end, partition, window.profile.event_count, window.profile.to_bytes()).to_bytes(),
            )
            for window in closed
        ]

    def _progress(self, model_id: str, partition: int, state: _ModelWindows, now: float, caught_up: bool = True) -> list[Output]:
        """A progress record when the watermark crossed a base-window boundary, the idle state changed,
        or the last one is ``idle_seconds`` old (evaluate stops waiting for a silent partition)."""
        current = state.progress_state(now, self.idle_seconds, caught_up)
        if current == state.reported and now - state.reported_wall < self.idle_seconds:
            return []
        state.reported, state.reported_wall = current, now
        self.counts["progress"] += 1
        late = sum(count for key, count in state.windows.late_counts.items() if not key.segment)
        record = WatermarkProgress(model_id, partition, state.windows.watermark, current[1], late)
        return [Output(self.partials_topic, model_id.encode(), record.to_bytes())]

    @staticmethod
    def _checkpoint(models: Mapping[str, _ModelWindows]) -> bytes:
        seen = [model_id for model_id, state in models.items() if math.isfinite(state.windows.max_event_time)]
        header = {"models": seen, "segments": {model_id: models[model_id].routes.segment_values() for model_id in seen}}
        return pack("IngestPartitionState", header, [models[model_id].windows.to_bytes() for model_id in seen])

    def _restore(self, state: bytes) -> dict[str, tuple[EventTimeWindows, Mapping[str, list[str]]]]:
        header, blobs = unpack("IngestPartitionState", state)
        restored = {}
        for model_id, blob in zip(header["models"], blobs):
            model = self.models.get(model_id)
            if model is None:  # no longer configured: its open windows are dropped with it
                continue
            windows = EventTimeWindows.from_bytes(blob, model.config.windows, model.layout.new_profile)
            restored[model_id] = (windows, header["segments"][model_id])
        return restored
