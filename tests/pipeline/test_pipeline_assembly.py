"""The evaluate side's completeness rule and idempotent merge, without a broker (``WindowAssembly``)."""

from __future__ import annotations

import math

import numpy as np

from detectors.columns import Columns
from detectors.policy import WindowKey
from detectors.profile import ProfileLayout
from stream.assembly import WindowAssembly
from stream.partials import WatermarkProgress, WindowPartial, decode_record

LAYOUT = ProfileLayout({}, {})
KEY = WindowKey("m", "1")
IDLE = 10.0


def _partial(start: float, partition: int, events: int, key: WindowKey = KEY) -> WindowPartial:
    profile = LAYOUT.new_profile()
    profile.update(Columns.from_events([{"timestamp": start, "model_version": "1", "features": {}}] * events, [], []))
    return WindowPartial(key, start, start + 5.0, partition, events, profile.to_bytes())


def _progress(partition: int, watermark: float, idle: bool = False) -> WatermarkProgress:
    return WatermarkProgress("m", partition, watermark, idle, late_events=0)


def test_a_window_closes_once_every_partition_passed_it_and_merges_each_partial_once():
    assembly = WindowAssembly(LAYOUT, source_partitions=2, idle_seconds=IDLE, now=0.0)
    assembly.add_partial(_partial(0.0, 0, 3), now=1.0)
    assembly.add_partial(_partial(0.0, 0, 3), now=1.0)  # redelivered
    assembly.add_progress(_progress(0, 5.0), now=1.0)
    assert assembly.pop_complete(now=1.0) == []  # partition 1 has not passed 5.0
    assembly.add_partial(_partial(0.0, 1, 4), now=2.0)
    assembly.add_progress(_progress(1, 7.0), now=2.0)
    [window] = assembly.pop_complete(now=2.0)
    assert (window.key, window.start, window.end, window.profile.event_count) == (KEY, 0.0, 5.0, 7)
    assert assembly.counts == {"merged_partials": 2, "duplicate_partials": 1}


def test_idle_partitions_are_not_waited_for_and_late_partials_are_counted_not_merged():
    assembly = WindowAssembly(LAYOUT, source_partitions=2, idle_seconds=IDLE, now=0.0)
    assembly.add_partial(_partial(0.0, 0, 3), now=1.0)
    assembly.add_progress(_progress(0, 5.0), now=1.0)
    assembly.add_progress(_progress(1, -math.inf, idle=True), now=1.0)
    [window] = assembly.pop_complete(now=1.0)
    assert window.profile.event_count == 3
    assembly.add_partial(_partial(0.0, 1, 2), now=2.0)  # partition 1 woke up with events of a closed window
    assert assembly.counts["late_partials"] == 1 and assembly.pending_windows == 0


def test_a_silent_partition_is_waited_for_idle_seconds_unless_every_partition_is_silent():
    assembly = WindowAssembly(LAYOUT, source_partitions=2, idle_seconds=IDLE, now=0.0)
    assembly.add_partial(_partial(0.0, 0, 3), now=1.0)
    assembly.add_progress(_progress(0, 5.0), now=1.0)
    assert assembly.pop_complete(now=IDLE - 1.0) == []
    assembly.add_progress(_progress(0, 5.0), now=IDLE + 0.5)  # partition 0 keeps reporting, 1 never did
    assert [w.profile.event_count for w in assembly.pop_complete(now=IDLE + 0.5)] == [3]

    quiet = WindowAssembly(LAYOUT, source_partitions=2, idle_seconds=IDLE, now=0.0)
    quiet.add_partial(_partial(0.0, 0, 3), now=1.0)
    quiet.add_progress(_progress(0, 5.0), now=1.0)
    assert quiet.pop_complete(now=10 * IDLE) == [], "all silent: ingest is down, keep waiting"


def test_windows_close_in_start_then_key_order_and_the_state_round_trips():
    segment = WindowKey("m", "1", {"region": "eu"})
    assembly = WindowAssembly(LAYOUT, source_partitions=1, idle_seconds=IDLE, now=0.0)
    for start in (5.0, 0.0):
        assembly.add_partial(_partial(start, 0, 1, segment), now=1.0)
        assembly.add_partial(_partial(start, 0, 2), now=1.0)
    assembly.add_progress(_progress(0, 7.0), now=1.0)
    restored = WindowAssembly.from_bytes(assembly.to_bytes(), LAYOUT, 1, IDLE, now=1.0)
    assert restored.counts == assembly.counts
    closed = restored.pop_complete(now=1.0)
    assert [(w.start, w.key) for w in closed] == [(0.0, KEY), (0.0, segment)]
    restored.add_progress(_progress(0, 10.0), now=2.0)
    assert [(w.start, w.key) for w in restored.pop_complete(now=2.0)] == [(5.0, KEY), (5.0, segment)]


def test_partials_records_round_trip():
    partial = _partial(10.0, 3, 5)
    assert decode_record(partial.to_bytes()) == partial
    progress = _progress(2, -math.inf, idle=True)
    assert decode_record(progress.to_bytes()) == progress
    assert np.isneginf(decode_record(progress.to_bytes()).watermark)
