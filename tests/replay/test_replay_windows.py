import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.columns import Columns
from detectors.policy import WindowKey
from detectors.profile import NumericLayout, ProfileLayout, WindowProfile
from detectors.windows import EvaluationSchedule, EventTimeWindows, Rejects, WindowConfig

LAYOUT = ProfileLayout({"x": NumericLayout((0.0, 1.0, 2.0))}, {})
M, SEGMENT = WindowKey("m", "1"), WindowKey("m", "1", {"region": "eu"})


def columns(times, values=None) -> Columns:
    values = values if values is not None else [0.5] * len(times)
    events = [{"timestamp": t, "model_version": "1", "features": {"x": v}} for t, v in zip(times, values)]
    return Columns.from_events(events, ["x"], [])


def everything(batch: Columns) -> dict:
    return {M: np.arange(len(batch))}


def test_events_land_in_tumbling_windows_and_close_when_the_watermark_passes_the_end() -> None:
    windows = EventTimeWindows(WindowConfig(base_seconds=60, allowed_lateness_seconds=10), LAYOUT.new_profile)
    windows.add(columns([0.0, 59.999, 60.0, 65.0]), {M: np.arange(4)})
    assert windows.close() == []  # watermark 55 < 60
    assert sorted(windows.open_windows) == [(M, 0.0), (M, 60.0)]
    windows.add(columns([69.0]), {M: np.arange(1)})
    assert windows.close() == []  # watermark 59: the end 60 is not reached yet
    windows.add(columns([70.0]), {M: np.arange(1)})
    [closed] = windows.close()  # watermark 60 reaches the end of [0, 60)
    assert (closed.key, closed.start, closed.end, closed.profile.event_count) == (M, 0.0, 60.0, 2)
    [last] = windows.close(math.inf)
    assert (last.start, last.profile.event_count) == (60.0, 4)


def test_late_events_are_counted_and_returned_not_added() -> None:
    windows = EventTimeWindows(WindowConfig(base_seconds=60, allowed_lateness_seconds=10), LAYOUT.new_profile)
    windows.add(columns([10.0, 130.0]), {M: np.arange(2)})  # watermark 120: [0, 60) and [60, 120) closed
    [first] = windows.close()
    batch = columns([59.0, 115.0, 125.0, 30.0])
    late = windows.add(batch, {M: np.arange(4), SEGMENT: np.array([0, 2])})
    assert late.tolist() == [True, True, False, True]
    assert windows.late_counts == {M: 3, SEGMENT: 1}
    assert first.profile.event_count == 1  # the late event did not reach the closed window
    remaining = windows.close(math.inf)
    assert [(w.key, w.start, w.profile.event_count) for w in remaining] == [(M, 120.0, 2), (SEGMENT, 120.0, 1)]


def test_an_event_within_the_lateness_joins_its_window() -> None:
    windows = EventTimeWindows(WindowConfig(base_seconds=60, allowed_lateness_seconds=30), LAYOUT.new_profile)
    late = windows.add(columns([10.0, 80.0, 55.0]), everything(columns([0, 0, 0])))
    assert not late.any()
    [closed] = windows.close(math.inf)[:1]
    assert closed.profile.event_count == 2


@settings(max_examples=40, deadline=None)
@given(
    times=st.lists(st.floats(0, 600, allow_nan=False), min_size=1, max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=5),
    lateness=st.integers(0, 120),
)
def test_windows_and_late_counts_do_not_depend_on_batch_boundaries(times, cuts, lateness) -> None:
    config = WindowConfig(base_seconds=60, allowed_lateness_seconds=lateness)

    def run(boundaries):
        windows = EventTimeWindows(config, LAYOUT.new_profile)
        closed, late = [], []
        for start, stop in zip(boundaries[:-1], boundaries[1:]):
            batch = columns(times[start:stop])
            late += windows.add(batch, everything(batch)).tolist()
            closed += windows.close()
        closed += windows.close(math.inf)
        return [(w.start, w.profile.event_count) for w in closed], late, windows.late_counts[M]

    one_batch = run([0, len(times)])
    split = run(sorted({0, len(times), *(min(c, len(times)) for c in cuts)}))
    assert split == one_batch
    assert sum(count for _, count in one_batch[0]) + one_batch[2] == len(times)


def batch_with_rejects(items):
    """Events and rejects from ``(is_reject, time)`` items in input order (a reject's time may be NaN)."""
    times = [time for is_reject, time in items if not is_reject]
    reject_times = [time for is_reject, time in items if is_reject]
    accepted, before = 0, []
    for is_reject, _ in items:
        if is_reject:
            before.append(accepted)
        else:
            accepted += 1
    return columns(times), Rejects(np.array(before, dtype=np.int64), np.array(reject_times, dtype=np.float64))


@settings(max_examples=40, deadline=None)
@given(
    items=st.lists(
        st.tuples(st.booleans(), st.one_of(st.floats(0, 600, allow_nan=False), st.just(math.nan))), min_size=1, max_size=60
    ),
    cuts=st.lists(st.integers(0, 60), max_size=5),
    lateness=st.integers(0, 120),
)
def test_rejects_land_in_the_same_windows_whatever_the_batch_boundaries(items, cuts, lateness) -> None:
    items = [(is_reject, time if is_reject or time == time else 0.0) for is_reject, time in items]  # events have times
    config = WindowConfig(base_seconds=60, allowed_lateness_seconds=lateness)

    def run(boundaries):
        windows = EventTimeWindows(config, LAYOUT.new_profile)
        closed = []
        for start, stop in zip(boundaries[:-1], boundaries[1:]):
            batch, rejects = batch_with_rejects(items[start:stop])
            windows.add(batch, everything(batch), rejects)
            closed += windows.close()
        closed += windows.close(math.inf)
        return [(w.start, w.profile.event_count, w.profile.reject_count) for w in closed], windows.unplaced_rejects

    one_batch = run([0, len(items)])
    assert run(sorted({0, len(items), *(min(c, len(items)) for c in cuts)})) == one_batch
    placed = sum(rejects for _, _, rejects in one_batch[0])
    assert placed + one_batch[1] == sum(is_reject for is_reject, _ in items)  # every reject counted once


def test_a_reject_counts_at_its_own_time_only_between_watermark_and_latest_event() -> None:
    windows = EventTimeWindows(WindowConfig(base_seconds=60, allowed_lateness_seconds=10), LAYOUT.new_profile)
    batch, rejects = batch_with_rejects([(True, 5.0), (False, 100.0), (True, 95.0), (True, 30.0), (True, 9e9), (True, math.nan)])
    windows.add(batch, everything(batch), rejects)
    assert windows.unplaced_rejects == 1  # before any event: no watermark yet
    # 95 lies in [watermark 90, latest 100]: its own window [60, 120); 30 (closed) and 9e9 (the
    # future) and NaN go to the watermark's window, [60, 120) too.
    [(key, start, profile)] = [(w.key, w.start, w.profile) for w in windows.close(math.inf)]
    assert (key, start, profile.event_count, profile.reject_count) == (M, 60.0, 1, 4)
    later, more = batch_with_rejects([(False, 200.0), (True, 185.0)])
    windows.add(later, {SEGMENT: np.array([0]), M: np.array([0])}, more)  # counted under the version, not the segment
    assert [(w.key, w.start, w.profile.reject_count) for w in windows.close(math.inf)] == [(M, 180.0, 1), (SEGMENT, 180.0, 0)]


def test_reject_state_round_trips() -> None:
    config = WindowConfig(base_seconds=60, allowed_lateness_seconds=10)
    original = EventTimeWindows(config, LAYOUT.new_profile)
    for items in ([(True, 1.0)], [(False, 70.0)]):
        batch, rejects = batch_with_rejects(items)
        original.add(batch, everything(batch), rejects)
    restored = EventTimeWindows.from_bytes(original.to_bytes(), config, LAYOUT.new_profile)
    assert restored.unplaced_rejects == original.unplaced_rejects == 1
    for windows in (original, restored):
        empty, rejects = batch_with_rejects([(True, math.nan)])  # placed under the last event's key
        windows.add(empty, everything(empty), rejects)
    assert [(w.key, w.profile.reject_count) for w in restored.close(math.inf)] == [(M, 1)]


def profile_with(count: int, value: float = 0.5) -> WindowProfile:
    profile = LAYOUT.new_profile()
    profile.update(columns([0.0] * count, [value] * count))
    return profile


def test_sliding_evaluation_merges_the_last_k_base_windows_and_the_span_before() -> None:
    schedule = EvaluationSchedule(WindowConfig(base_seconds=60, evaluate_windows=3, min_count=10), LAYOUT.new_profile)
    evaluations = [schedule.push(60.0 * i, 60.0 * (i + 1), profile_with(i + 1)) for i in range(8)]
    assert [e is None for e in evaluations[:3]] == [True, True, True]  # 1, 1+2, 1+2+3 < 10 events
    window = evaluations[7]
    assert (window.start, window.end, window.base_windows) == (300.0, 480.0, 3)
    assert window.profile.event_count == 6 + 7 + 8
    assert window.previous.event_count == 3 + 4 + 5
    assert window.profile.numeric["x"].valid_count == 21


def test_count_based_evaluation_for_low_traffic() -> None:
    config = WindowConfig(base_seconds=60, evaluate_every_events=10)
    schedule = EvaluationSchedule(config, LAYOUT.new_profile)
    results = [schedule.push(60.0 * i, 60.0 * (i + 1), profile_with(4)) for i in range(6)]
    windows = [r for r in results if r is not None]
    assert [(w.start, w.end, w.profile.event_count) for w in windows] == [(0.0, 180.0, 12), (180.0, 360.0, 12)]
    assert windows[0].previous is None and windows[1].previous.event_count == 12


def test_schedule_round_trips_and_continues_identically() -> None:
    config = WindowConfig(base_seconds=60, evaluate_windows=2, min_count=1)
    original = EvaluationSchedule(config, LAYOUT.new_profile)
    for i in range(3):
        original.push(60.0 * i, 60.0 * (i + 1), profile_with(i + 1))
    restored = EvaluationSchedule.from_bytes(original.to_bytes(), config, LAYOUT.new_profile)
    a = original.push(180.0, 240.0, profile_with(5))
    b = restored.push(180.0, 240.0, profile_with(5))
    assert (a.start, a.end, a.profile.event_count, a.previous.event_count) == (
        b.start, b.end, b.profile.event_count, b.previous.event_count,
    )  # fmt: skip


def test_out_of_order_pushes_are_refused() -> None:
    schedule = EvaluationSchedule(WindowConfig(), LAYOUT.new_profile)
    schedule.push(120.0, 180.0, profile_with(1))
    with pytest.raises(ValueError, match="time order"):
        schedule.push(60.0, 120.0, profile_with(1))


def test_open_windows_round_trip_and_continue_identically() -> None:
    config = WindowConfig(base_seconds=60, allowed_lateness_seconds=10)
    original = EventTimeWindows(config, LAYOUT.new_profile)
    original.add(columns([5.0, 70.0, 75.0]), {M: np.arange(3), SEGMENT: np.array([1])})
    original.add(columns([1.0]), {M: np.arange(1)})  # late: [0, 60) closed at watermark 65
    restored = EventTimeWindows.from_bytes(original.to_bytes(), config, LAYOUT.new_profile)
    assert restored.watermark == original.watermark and restored.late_counts == original.late_counts
    for windows in (original, restored):
        windows.add(columns([130.0, 2.0]), {M: np.arange(2)})
    summary = [[(w.key, w.start, w.profile.event_count) for w in windows.close(math.inf)] for windows in (original, restored)]
    assert summary[0] == summary[1] == [(M, 0.0, 1), (M, 60.0, 2), (SEGMENT, 60.0, 1), (M, 120.0, 1)]
    assert restored.late_counts[M] == 2
    assert EventTimeWindows.from_bytes(EventTimeWindows(config, LAYOUT.new_profile).to_bytes(), config, LAYOUT.new_profile).watermark == -math.inf
