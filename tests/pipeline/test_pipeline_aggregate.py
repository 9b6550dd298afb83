"""The ingest side's window aggregation without a broker (``WindowAggregator``, a fake wall clock)."""

from __future__ import annotations

import orjson

from detectors.evaluator import ModelEvaluator
from detectors.monitor import MonitorConfig
from stream.aggregate import WindowAggregator
from stream.models import MonitoredModel
from stream.partials import WatermarkProgress, WindowPartial, decode_record
from stream.settings import TopicSettings
from stream.workload import Workload

TOPICS = TopicSettings(prefix="unit", event_partitions=2)
IDLE = 5.0
WORKLOAD = Workload(seed=3, model_id="m", events_per_second=100.0, start=1_000.0)
CONFIG = MonitorConfig.from_mapping({"model_id": "m", "reference": "r", "windows": {"base_seconds": 5, "allowed_lateness_seconds": 1}})
REFERENCE = WORKLOAD.reference_profile(2_000)
MODEL = MonitoredModel(CONFIG, REFERENCE, ModelEvaluator(CONFIG, REFERENCE).layout)


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def _events(start: int, stop: int) -> list[dict]:
    return [orjson.loads(value) for value in WORKLOAD.serialize(WORKLOAD.generate(start, stop))]


def _records(outputs) -> tuple[list[WindowPartial], list[WatermarkProgress]]:
    records = [decode_record(output.value) for output in outputs]
    return [r for r in records if isinstance(r, WindowPartial)], [r for r in records if isinstance(r, WatermarkProgress)]


def _aggregator(clock: Clock) -> WindowAggregator:
    aggregator = WindowAggregator({"m": MODEL}, TOPICS, idle_seconds=IDLE, clock=clock)
    for partition in range(2):
        aggregator.assign(TOPICS.name("inference"), partition, None)
    return aggregator


def test_windows_close_on_the_watermark_then_on_wall_clock_when_the_partition_goes_idle():
    clock = Clock()
    aggregator = _aggregator(clock)
    partials, progress = _records(aggregator.handle(TOPICS.name("inference"), 0, _events(0, 1_200)))  # 12 s of events
    assert [(p.start, p.event_count) for p in partials] == [(1_000.0, 500), (1_005.0, 500)]
    assert progress[-1].watermark == 1_000.0 + 11.99 - 1 and not progress[-1].idle
    assert all(output.key == b"m" for output in aggregator.tick())

    clock.now = IDLE + 3.0  # idle: event time runs on with the wall clock, the last window closes
    partials, progress = _records(aggregator.tick())
    assert [(p.start, p.event_count) for p in partials] == [(1_010.0, 200)]
    assert [(p.source_partition, p.idle) for p in progress] == [(0, True), (1, True)]
    late = aggregator.handle(TOPICS.name("inference"), 0, _events(1_100, 1_110))  # events of a closed window
    partials, progress = _records(late)
    assert partials == [] and [(p.idle, p.late_events) for p in progress] == [(False, 10)]  # counted, not added
    assert aggregator.handle(TOPICS.name("labels"), 0, [{"prediction_id": "x"}]) == []
    assert aggregator.counts["labels"] == 1


def test_a_partition_with_records_still_to_read_is_behind_not_idle():
    clock = Clock()
    aggregator = _aggregator(clock)
    aggregator.handle(TOPICS.name("inference"), 0, _events(0, 1_200))
    clock.now = IDLE + 3.0
    behind = frozenset({(TOPICS.name("inference"), 0), (TOPICS.name("inference"), 1)})
    partials, progress = _records(aggregator.tick(behind))  # a backlog may hold the model's next events
    assert partials == [] and progress and not any(p.idle for p in progress)
    assert progress[0].watermark == 1_000.0 + 11.99 - 1  # the event clock waits for them

    partials, progress = _records(aggregator.tick())  # read to the end: silent now
    assert [(p.start, p.event_count) for p in partials] == [(1_010.0, 200)]
    assert [(p.source_partition, p.idle) for p in progress] == [(0, True), (1, True)]


def test_a_checkpoint_restores_open_windows_and_late_counts():
    clock = Clock()
    aggregator = _aggregator(clock)
    aggregator.handle(TOPICS.name("inference"), 1, _events(0, 700))
    aggregator.handle(TOPICS.name("inference"), 1, _events(100, 110))  # late once [1000, 1005) closed
    [(source, state)] = aggregator.checkpoints().items()
    assert source == (TOPICS.name("inference"), 1) and aggregator.checkpoints() == {}

    restored = _aggregator(clock)
    restored.assign(TOPICS.name("inference"), 1, state)
    rest = _events(700, 1_200)
    original = _records(aggregator.handle(TOPICS.name("inference"), 1, rest))
    restored_partials, restored_progress = _records(restored.handle(TOPICS.name("inference"), 1, rest))
    assert [(p.start, p.event_count) for p in restored_partials] == [(p.start, p.event_count) for p in original[0]]
    assert [(p.start, p.event_count) for p in restored_partials] == [(1_005.0, 500)]
    assert [p.late_events for p in restored_progress] == [p.late_events for p in original[1]] == [10]
