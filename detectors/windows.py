"""Event-time windows: tumbling base windows with a watermark, and evaluation windows built from them.

Everything here is a function of the events' timestamps in input order, never of arrival time or
batch boundaries, so a streaming worker and ``driftline replay`` put every event in the same window
and count the same events late.

- ``EventTimeWindows`` (ingest side) assigns events to tumbling base windows ``[k*B, (k+1)*B)`` per
  key, tracks the watermark (max event time seen minus ``allowed_lateness_seconds``) and hands out
  a base window once the watermark reaches its end. An event whose window had already closed when it
  arrived is *late*: it is counted per key and returned in a mask, never silently added or dropped.
  Lateness is decided per event against the watermark of the events *before* it, so splitting the
  input into batches differently changes nothing. Rejected input values of the model (``Rejects``)
  are counted in the window profiles too (``WindowProfile.reject_count``), placed by the same rule.
- ``EvaluationSchedule`` (evaluate side) turns the closed base windows of one key into evaluation
  windows: by time, the merge of the base windows in the last ``evaluate_windows * B`` seconds,
  evaluated at every base-window close once it holds ``min_count`` events (sliding); or, for
  low-traffic models (``evaluate_every_events``), the merge of the base windows since the previous
  evaluation once they hold that many events. Each evaluation window also carries the
  equally long span before it, for window-vs-previous comparisons.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter, deque
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from detectors._serde import pack, unpack
from detectors.columns import Columns
from detectors.policy import WindowKey
from detectors.profile import WindowProfile


@dataclasses.dataclass(frozen=True)
class WindowConfig:
    """Window settings of one model.

    The defaults (60 s base windows, evaluation over the last 5 of them, 30 s lateness, at least
    500 events) are sized for models from about 10 events/s up: at 10 events/s an evaluation
    window holds 3,000 events, enough for a 0.5 standard-deviation shift to stand out of sampling
    noise, and since the primary statistic grows about linearly with the drifted share of the
    window, a shift crosses its threshold once 2 to 3 of the 5 base windows are drifted; with the
    policy's persistence (2 of 3 evaluations) it is alerted on 1,500 to 3,000 events after it
    starts (measured on normal, lognormal, gamma, uniform and Poisson features; see
    tests/replay/test_replay_acceptance.py). Models with fewer events should set
    ``evaluate_every_events``.
    """

    base_seconds: int = 60
    evaluate_windows: int = 5
    allowed_lateness_seconds: int = 30
    min_count: int = 500
    evaluate_every_events: int | None = None

    def __post_init__(self) -> None:
        if self.base_seconds < 1 or self.evaluate_windows < 1 or self.min_count < 1:
            raise ValueError("base_seconds, evaluate_windows and min_count must be at least 1")
        if self.allowed_lateness_seconds < 0:
            raise ValueError("allowed_lateness_seconds must be non-negative")
        if self.evaluate_every_events is not None and self.evaluate_every_events < 1:
            raise ValueError("evaluate_every_events must be at least 1")


@dataclasses.dataclass(frozen=True)
class Rejects:
    """One batch's input values of a model that the decoder rejected, placed among its accepted events.

    Which window a reject counts in: its own timestamp's, when it has a readable one between the
    watermark and the latest event time seen (both as of the accepted events before it); otherwise
    — no readable timestamp (malformed JSON, a wrong type), or one outside that span, which is
    suspect itself and must neither reopen a closed window nor open a far-future one — the window
    of that watermark, which is still open. Rejects never move the watermark. They count under the
    model version of the accepted event before them (segments are unknown for them). Before the
    source has seen any accepted event of the model there is no watermark: such rejects are only
    counted (``EventTimeWindows.unplaced_rejects``).
    """

    accepted_before: np.ndarray
    """Per reject, how many of the batch's accepted events of the model come before it (input order)."""
    timestamp: np.ndarray
    """Per reject, its readable event time in epoch seconds, NaN when none."""

    def __len__(self) -> int:
        return int(self.accepted_before.size)


@dataclasses.dataclass(frozen=True)
class ClosedWindow:
    """A base window the watermark has passed: ``[start, end)`` of ``key`` and its events' profile."""

    key: WindowKey
    start: float
    end: float
    profile: WindowProfile


class EventTimeWindows:
    """Open tumbling base windows of one event source, per ``WindowKey``.

    Parameters
    ----------
    config
        Base window length and allowed lateness.
    new_profile
        Makes the empty profile of a new window (``ProfileLayout.new_profile``).

    Examples
    --------
    >>> import numpy as np
    >>> from detectors.profile import ProfileLayout
    >>> windows = EventTimeWindows(WindowConfig(base_seconds=10, allowed_lateness_seconds=5),
    ...                            ProfileLayout({}, {}).new_profile)
    >>> def batch(*times):
    ...     return Columns.from_events([{"timestamp": t, "model_version": "1", "features": {}} for t in times], [], [])
    >>> key = WindowKey("m", "1")
    >>> windows.add(batch(1.0, 12.0, 14.0), {key: np.arange(3)}).tolist()  # watermark 9: nothing closes
    [False, False, False]
    >>> windows.add(batch(16.0, 3.0), {key: np.arange(2)}).tolist()  # watermark 11 closed [0, 10)
    [False, True]
    >>> [(w.start, w.end, w.profile.event_count) for w in windows.close()]
    [(0.0, 10.0, 1)]
    >>> windows.late_counts[key], windows.watermark
    (1, 11.0)

    Two rejects: the first, before any event of the batch, at the watermark 11 (window [10, 20));
    the second after the event at 25, by its readable timestamp 22 (window [20, 30)).

    >>> rejects = Rejects(np.array([0, 1]), np.array([np.nan, 22.0]))
    >>> windows.add(batch(25.0), {key: np.arange(1)}, rejects).tolist()
    [False]
    >>> [(w.start, w.profile.event_count, w.profile.reject_count) for w in windows.close(math.inf)]
    [(10.0, 3, 1), (20.0, 1, 1)]
    """

    def __init__(self, config: WindowConfig, new_profile: Callable[[], WindowProfile]) -> None:
        self.config = config
        self._new_profile = new_profile
        self._max_event_time = -math.inf
        self._open: dict[tuple[WindowKey, float], WindowProfile] = {}
        self.late_counts: Counter[WindowKey] = Counter()
        self.unplaced_rejects = 0
        """Rejects that came before any accepted event (no watermark to place them by)."""
        self._last_key: WindowKey | None = None  # the unsegmented key of the last accepted event

    @property
    def watermark(self) -> float:
        return self._max_event_time - self.config.allowed_lateness_seconds

    @property
    def max_event_time(self) -> float:
        """The latest event time seen (or advanced to); ``-inf`` before any."""
        return self._max_event_time

    def advance(self, event_time: float) -> None:
        """Move the event clock forward to ``event_time`` without an event: an idle source lets
        its windows close on wall-clock time. Events arriving later are judged late against it,
        so a closed window never reopens."""
        self._max_event_time = max(self._max_event_time, event_time)

    @property
    def open_windows(self) -> list[tuple[WindowKey, float]]:
        """``(key, start)`` of every open window."""
        return list(self._open)

    def add(self, columns: Columns, routes: Mapping[WindowKey, np.ndarray], rejects: Rejects | None = None) -> np.ndarray:
        """Add a batch: ``routes`` maps each key to the indices of its events (an event may go to
        several keys, e.g. the whole model and its segment), ``rejects`` the batch's rejected values
        of the model. Returns the mask of late events."""
        base = self.config.base_seconds
        timestamps = columns.timestamp
        starts = np.floor(timestamps / base) * base
        # Latest event time seen on arrival of each event (and after the last): from the events
        # before it, in input order.
        seen = np.maximum.accumulate(np.concatenate([[self._max_event_time], timestamps]))
        if rejects is not None and len(rejects):
            self._add_rejects(rejects, seen, routes, len(columns))
        seen_before = seen[:-1]
        late = starts + base <= seen_before - self.config.allowed_lateness_seconds
        for key, indices in routes.items():
            indices = np.asarray(indices)
            on_time = indices[~late[indices]]
            self.late_counts[key] += int(indices.size - on_time.size)
            if on_time.size == 0:
                continue
            window_starts, inverse = np.unique(starts[on_time], return_inverse=True)
            for position, start in enumerate(window_starts.tolist()):
                profile = self._open.get((key, start))
                if profile is None:
                    profile = self._open[(key, start)] = self._new_profile()
                profile.update(columns.take(on_time[inverse == position]))
        if timestamps.size:
            self._max_event_time = max(self._max_event_time, float(timestamps.max()))
            self._last_key = _unsegmented_keys(routes, len(columns))[-1]
        return late

    def _add_rejects(self, rejects: Rejects, seen: np.ndarray, routes: Mapping[WindowKey, np.ndarray], size: int) -> None:
        latest = seen[rejects.accepted_before]
        watermark = latest - self.config.allowed_lateness_seconds
        placed = np.isfinite(watermark)
        self.unplaced_rejects += int(np.count_nonzero(~placed))
        own_time = np.isfinite(rejects.timestamp) & (rejects.timestamp >= watermark) & (rejects.timestamp <= latest)
        times = np.where(own_time, rejects.timestamp, watermark)[placed]
        keys = np.concatenate([[self._last_key], _unsegmented_keys(routes, size)])[rejects.accepted_before[placed]]
        base = self.config.base_seconds
        for (key, start), count in Counter(zip(keys.tolist(), (np.floor(times / base) * base).tolist())).items():
            profile = self._open.get((key, start))
            if profile is None:
                profile = self._open[(key, start)] = self._new_profile()
            profile.reject_count += count

    def close(self, watermark: float | None = None) -> list[ClosedWindow]:
        """Pop every window whose end the watermark (or the one given, e.g. ``math.inf`` at the end
        of a replay) has reached, in (end, key) order."""
        limit = self.watermark if watermark is None else watermark
        base = self.config.base_seconds
        closing = sorted(
            ((start, key) for key, start in self._open if start + base <= limit),
            key=lambda pair: (pair[0], encode_key(pair[1])),
        )
        return [ClosedWindow(key, start, start + base, self._open.pop((key, start))) for start, key in closing]

    def to_bytes(self) -> bytes:
        """Checkpoint of the open windows, the watermark and the late counts (ingest state)."""
        header = {
            "max_event_time": None if self._max_event_time == -math.inf else self._max_event_time,
            "open": [[encode_key(key), start] for key, start in self._open],
            "late": [[encode_key(key), count] for key, count in self.late_counts.items()],
            "unplaced_rejects": self.unplaced_rejects,
            "last_key": None if self._last_key is None else encode_key(self._last_key),
        }
        return pack("EventTimeWindows", header, [profile.to_bytes() for profile in self._open.values()])

    @classmethod
    def from_bytes(
        cls, data: bytes, config: WindowConfig, new_profile: Callable[[], WindowProfile]
    ) -> EventTimeWindows:
        header, blobs = unpack("EventTimeWindows", data)
        windows = cls(config, new_profile)
        if header["max_event_time"] is not None:
            windows._max_event_time = header["max_event_time"]
        for (key, start), blob in zip(header["open"], blobs):
            windows._open[(decode_key(key), start)] = WindowProfile.from_bytes(blob)
        windows.late_counts.update({decode_key(key): count for key, count in header["late"]})
        windows.unplaced_rejects = header["unplaced_rejects"]
        windows._last_key = None if header["last_key"] is None else decode_key(header["last_key"])
        return windows


@dataclasses.dataclass(frozen=True)
class EvaluationWindow:
    """The merged profile of ``[start, end)`` and of the span of equal length before it, if any."""

    start: float
    end: float
    profile: WindowProfile
    base_windows: int
    previous: WindowProfile | None = None


class EvaluationSchedule:
    """Builds the evaluation windows of one key from its closed base windows, pushed in time order.

    Examples
    --------
    >>> from detectors.profile import ProfileLayout
    >>> def base(count):
    ...     profile = ProfileLayout({}, {}).new_profile()
    ...     profile.event_count = count
    ...     return profile
    >>> config = WindowConfig(base_seconds=60, evaluate_windows=2, min_count=100)
    >>> schedule = EvaluationSchedule(config, ProfileLayout({}, {}).new_profile)
    >>> schedule.push(0.0, 60.0, base(60)) is None  # 60 events < min_count
    True
    >>> window = schedule.push(60.0, 120.0, base(70))
    >>> window.start, window.end, window.profile.event_count, window.previous
    (0.0, 120.0, 130, None)
    >>> window = schedule.push(180.0, 240.0, base(150))  # no events in [120, 180)
    >>> window.start, window.profile.event_count, window.previous.event_count
    (180.0, 150, 130)
    """

    def __init__(self, config: WindowConfig, new_profile: Callable[[], WindowProfile]) -> None:
        self.config = config
        self._new_profile = new_profile
        # Time mode: base windows of the current span and the one before it. Count mode: base
        # windows since the last evaluation, plus the previous evaluation's merged profile.
        self._ring: deque[tuple[float, float, WindowProfile]] = deque()
        self._previous: WindowProfile | None = None

    def push(self, start: float, end: float, profile: WindowProfile) -> EvaluationWindow | None:
        """Add the next closed base window; return the evaluation window it completes, if any."""
        if self._ring and start < self._ring[-1][0]:
            raise ValueError(f"base window {start} pushed after {self._ring[-1][0]}: push in time order")
        self._ring.append((start, end, profile))
        if self.config.evaluate_every_events is None:
            return self._by_time(end)
        return self._by_count()

    def _by_time(self, end: float) -> EvaluationWindow | None:
        span = self.config.base_seconds * self.config.evaluate_windows
        while self._ring[0][0] < end - 2 * span:
            self._ring.popleft()
        current = [window for window in self._ring if window[0] >= end - span]
        previous = [window for window in self._ring if window[0] < end - span]
        merged = self._merge([profile for _, _, profile in current])
        if _inputs(merged) < self.config.min_count:
            return None
        before = self._merge([profile for _, _, profile in previous]) if previous else None
        if before is not None and _inputs(before) < self.config.min_count:
            before = None
        return EvaluationWindow(current[0][0], end, merged, len(current), before)

    def _by_count(self) -> EvaluationWindow | None:
        if sum(_inputs(profile) for _, _, profile in self._ring) < self.config.evaluate_every_events:
            return None
        merged = self._merge([profile for _, _, profile in self._ring])
        window = EvaluationWindow(self._ring[0][0], self._ring[-1][1], merged, len(self._ring), self._previous)
        self._ring.clear()
        self._previous = merged
        return window

    def _merge(self, profiles: list[WindowProfile]) -> WindowProfile:
        merged = self._new_profile()
        for profile in profiles:
            merged.merge(profile)
        return merged

    def to_bytes(self) -> bytes:
        header = {"bounds": [[start, end] for start, end, _ in self._ring], "has_previous": self._previous is not None}
        blobs = [profile.to_bytes() for _, _, profile in self._ring]
        if self._previous is not None:
            blobs.append(self._previous.to_bytes())
        return pack("EvaluationSchedule", header, blobs)

    @classmethod
    def from_bytes(cls, data: bytes, config: WindowConfig, new_profile: Callable[[], WindowProfile]) -> EvaluationSchedule:
        header, blobs = unpack("EvaluationSchedule", data)
        schedule = cls(config, new_profile)
        profiles = [WindowProfile.from_bytes(blob) for blob in blobs]
        if header["has_previous"]:
            schedule._previous = profiles.pop()
        schedule._ring.extend((start, end, profile) for (start, end), profile in zip(header["bounds"], profiles))
        return schedule


def _inputs(profile: WindowProfile) -> int:
    """Input values a window holds: accepted events and rejects (a window of rejects only is
    evaluated, so that input that is all malformed still alerts)."""
    return profile.event_count + profile.reject_count


def _unsegmented_keys(routes: Mapping[WindowKey, np.ndarray], size: int) -> np.ndarray:
    """Per event, the key of its model version without segment (every event has exactly one)."""
    keys = np.empty(size, dtype=object)
    for key, indices in routes.items():
        if not key.segment:
            keys[indices] = key
    return keys


def encode_key(key: WindowKey) -> list[Any]:
    """JSON form of a window key: ``[model_id, model_version, [[tag, value], ...]]``."""
    return [key.model_id, key.model_version, [list(pair) for pair in key.segment]]


def decode_key(encoded: list[Any]) -> WindowKey:
    model_id, version, segment = encoded
    return WindowKey(model_id, version, tuple(tuple(pair) for pair in segment))
