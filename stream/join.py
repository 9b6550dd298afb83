"""The label join: each prediction meets its first label, in the ingest worker and in replay.

Only models with performance monitoring (a ``task`` in their monitor config) are joined: the
evaluate stage uses outcomes for nothing else. Their predictions and the labels wait; predictions of
other models only tell how far the inference stream has got.

The inference and labels topics are keyed by prediction_id with one partition count, so a
prediction and its labels land in the same partition number of both, and the consumer group's range
assignor hands both to one ingest worker. Per partition pair a ``JoinStore`` keeps whichever side
came first until the other arrives:

- a prediction waits until the pair's *label clock* (latest label time seen) passes its time plus
  its model's TTL (``labels.ttl_seconds``), then it is counted ``expired``;
- a label waits until the *prediction clock* passes its time plus the TTL of the model it names (the
  longest configured TTL if it names none), then it is counted ``orphan``;
- the first label makes the outcome (``joined``); the prediction's id is then kept (a few bytes)
  until its deadline, so that later labels are counted ``duplicate`` rather than orphan;
- over ``max_bytes``, the entries nearest their deadline go first, counted ``evicted`` and reported
  to the evaluate stage, which alerts on them (below).

Each side expires by the other side's clock because that is the stream the missing event would
arrive in: a label consumer running far ahead of the inference consumer (say after a restart) does
not orphan labels whose predictions are merely unread. Expiry is checked before every event, so
the result depends on the order of events only, never on where batches begin: a worker restarted
after kill -9 reaches exactly the counts of an uninterrupted one.

Outcome contract (the ingest and evaluate stages rely on it; change it only here and in
schemas/outcome.schema.json): a dict ``{"schema_version": "1.0", "model_id", "model_version",
"segment": {tag: value} ({} if none), "prediction_id", "prediction": <the inference event's
prediction as sent>, "label": <the label event's label>, "prediction_time": <float unix seconds>,
"label_time": <float unix seconds>}``, published as orjson JSON to ``<prefix>.outcomes`` keyed by
model_id. Predictions with ``status: error`` carry no usable prediction: they are counted
``unscored`` and never joined (their labels end as orphans).

Evictions are published to the same topic in the same transaction, one record per model and batch
that evicted: ``{"schema_version": "1.0", "kind": "join_evictions", "model_id", "count": <entries
evicted>, "time": <float unix seconds: the pair's prediction clock, or its label clock before any
prediction>}`` (``JoinStore.pop_evictions``); the performance monitor turns them into a
``label_lag``/``join_evictions`` alert (detectors/performance.py). Evicted labels that name no joined
model are counted under ``_unknown`` only: no model's monitor could take them.

Persistence: every change to an entry is also a record of the compacted ``join-changelog`` topic
(key prediction_id, value the entry's bytes, a Kafka tombstone when it leaves), written in the
batch's transaction to the partition of the same number; clocks and counters go to ``ingest-state``
as the labels partition's checkpoint. A newly assigned partition is rebuilt from both, so the store
always matches the committed offsets.
"""

from __future__ import annotations

import heapq
import logging
import math
import struct
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import orjson

from detectors._serde import pack, unpack
from detectors.monitor import DEFAULT_LABEL_TTL_SECONDS
from detectors.performance import JOIN_EVICTIONS
from stream.decode import SCHEMA_VERSION
from stream.ingest import SourcePartition
from stream.models import MonitoredModel
from stream.settings import TopicSettings
from stream.transaction import Output

log = logging.getLogger("driftline.join")

UNKNOWN_MODEL = "_unknown"
"""Counter key of labels that name no model (a safe id cannot start with '_')."""
COUNTERS = ("joined", "duplicate", "orphan", "expired", "evicted", "repeated", "unscored")
"""joined: outcomes made; duplicate: labels after the first; orphan: labels whose prediction never
came; expired: predictions whose label never came; evicted: entries dropped over the size cap;
repeated: predictions whose id was already waiting or joined; unscored: predictions with status error."""
ENTRY_OVERHEAD_BYTES = 260
"""Python memory of one entry beyond its key and value bytes: the dict slot, the key str and value
bytes object headers and the deadline heap's tuple and float. benchmarks/bench_join.py measures
about 210 with tracemalloc; the margin keeps the cap above real memory."""

_HEAD = struct.Struct("<cd")  # entry kind, deadline
_PREDICTION, _LABEL, _JOINED = b"P", b"L", b"J"
_PREDICTION_KINDS = (_PREDICTION, _JOINED)  # entries on the prediction heap, expired by the label clock


class JoinStore:
    """Predictions and labels of one partition pair waiting for each other; see the module docstring.

    ``ttl_seconds`` names the models joined: predictions of other models only move the clock.

    Entries are the changelog values: kind and deadline, then the waiting side's fields as JSON.
    ``pop_changes`` hands over the entries changed since the last call (None: removed),
    ``pop_evictions`` the ``join_evictions`` records of the entries evicted since the last call.

    Examples
    --------
    >>> store = JoinStore({"churn": 3600}, max_bytes=1 << 20)
    >>> store.add_labels([{"prediction_id": "p1", "label": 1, "timestamp": 100.0}])
    []
    >>> [outcome] = store.add_predictions([
    ...     {"prediction_id": "p1", "model_id": "churn", "model_version": "v1", "timestamp": 90.0, "prediction": 0.8}])
    >>> outcome["label"], outcome["prediction"], outcome["label_time"] - outcome["prediction_time"]
    (1, 0.8, 10.0)
    >>> store.add_labels([{"prediction_id": "p1", "label": 0, "timestamp": 120.0}])
    []
    >>> store.totals()["joined"], store.totals()["duplicate"]
    (1, 1)
    """

    def __init__(self, ttl_seconds: Mapping[str, float], max_bytes: int, default_ttl_seconds: float | None = None) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.ttl_seconds = dict(ttl_seconds)
        self.default_ttl_seconds = default_ttl_seconds or max(self.ttl_seconds.values(), default=DEFAULT_LABEL_TTL_SECONDS)
        self.max_bytes = max_bytes
        self.prediction_clock = -math.inf
        self.label_clock = -math.inf
        self.counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
        """Model id (``UNKNOWN_MODEL`` for labels naming none) -> counter name -> count."""
        self.bytes = 0
        """Memory of the entries, as ``ENTRY_OVERHEAD_BYTES`` + key + value per entry; at most ``max_bytes``."""
        self.peak_bytes = 0
        self._entries: dict[str, bytes] = {}
        self._prediction_deadlines: list[tuple[float, str]] = []  # heap of waiting and joined predictions
        self._label_deadlines: list[tuple[float, str]] = []  # heap of waiting labels
        self._changes: dict[str, bytes | None] = {}
        self._evictions: Counter[str] = Counter()  # model id -> entries evicted since pop_evictions

    def __len__(self) -> int:
        return len(self._entries)

    def add_predictions(self, events: Iterable[dict]) -> list[dict]:
        """Decoded inference events in offset order; returns the outcomes they complete."""
        outcomes = []
        entries = self._entries
        for event in events:
            prediction_id, model_id, time = event["prediction_id"], event["model_id"], event["timestamp"]
            if time > self.prediction_clock:  # every prediction tells how far the inference stream has got
                self.prediction_clock = time
                if self._label_deadlines and self._label_deadlines[0][0] < time:
                    self._expire(self._label_deadlines, time)
            ttl = self.ttl_seconds.get(model_id)
            if ttl is None:  # a model not joined
                continue
            if event.get("status") == "error" or event.get("prediction") is None:
                self.counts[model_id]["unscored"] += 1
                continue
            deadline = time + ttl
            held = entries.get(prediction_id)
            if held is None:
                fields = [model_id, event["model_version"], event.get("segment", {}), event["prediction"], time]
                self._put(prediction_id, _HEAD.pack(_PREDICTION, deadline) + orjson.dumps(fields), None)
                heapq.heappush(self._prediction_deadlines, (deadline, prediction_id))
                if deadline < self.label_clock:  # labels are past its deadline already
                    self._expire(self._prediction_deadlines, self.label_clock)
            elif held[:1] == _LABEL:
                label, label_time, _, duplicates = orjson.loads(held[_HEAD.size :])
                outcomes.append(_outcome(prediction_id, model_id, event["model_version"], event.get("segment", {}), event["prediction"], time, label, label_time))
                counts = self.counts[model_id]
                counts["joined"] += 1
                counts["duplicate"] += duplicates
                self._put(prediction_id, _HEAD.pack(_JOINED, deadline) + model_id.encode(), held)
                heapq.heappush(self._prediction_deadlines, (deadline, prediction_id))
            else:
                self.counts[model_id]["repeated"] += 1
            if self.bytes > self.peak_bytes:  # only then can it be over the cap
                self._evict()
        return outcomes

    def add_labels(self, events: Iterable[dict]) -> list[dict]:
        """Decoded label events in offset order; returns the outcomes they complete."""
        outcomes = []
        entries = self._entries
        for event in events:
            prediction_id, time = event["prediction_id"], event["timestamp"]
            if time > self.label_clock:
                self.label_clock = time
                if self._prediction_deadlines and self._prediction_deadlines[0][0] < time:
                    self._expire(self._prediction_deadlines, time)
            held = entries.get(prediction_id)
            if held is None:
                model_id = event.get("model_id")
                if model_id not in self.ttl_seconds:  # counted under UNKNOWN_MODEL: keys stay bounded by the configured models
                    model_id = None
                deadline = time + self.ttl_seconds.get(model_id, self.default_ttl_seconds)
                self._put(prediction_id, _HEAD.pack(_LABEL, deadline) + orjson.dumps([event["label"], time, model_id, 0]), None)
                heapq.heappush(self._label_deadlines, (deadline, prediction_id))
                if deadline < self.prediction_clock:  # predictions are past its deadline already
                    self._expire(self._label_deadlines, self.prediction_clock)
            elif held[:1] == _PREDICTION:
                _, deadline = _HEAD.unpack_from(held)
                model_id, version, segment, prediction, prediction_time = orjson.loads(held[_HEAD.size :])
                outcomes.append(_outcome(prediction_id, model_id, version, segment, prediction, prediction_time, event["label"], time))
                self.counts[model_id]["joined"] += 1
                self._put(prediction_id, _HEAD.pack(_JOINED, deadline) + model_id.encode(), held)  # same deadline: its heap item stays valid
            elif held[:1] == _JOINED:
                self.counts[held[_HEAD.size :].decode()]["duplicate"] += 1
            else:  # a label waiting already: the first one wins, this one is counted where the first ends
                fields = orjson.loads(held[_HEAD.size :])
                fields[3] += 1
                self._put(prediction_id, held[: _HEAD.size] + orjson.dumps(fields), held)
            if self.bytes > self.peak_bytes:  # only then can it be over the cap
                self._evict()
        return outcomes

    def pop_changes(self) -> dict[str, bytes | None]:
        """Entries changed since the last call: prediction_id -> entry bytes, or None if it left."""
        changes, self._changes = self._changes, {}
        return changes

    def pop_evictions(self) -> list[dict]:
        """The ``join_evictions`` records (module docstring) of the entries evicted since the last call."""
        if not self._evictions:
            return []
        time = self.prediction_clock if self.prediction_clock > -math.inf else self.label_clock
        records = [
            {"schema_version": SCHEMA_VERSION, "kind": JOIN_EVICTIONS, "model_id": model_id, "count": count, "time": time}
            for model_id, count in sorted(self._evictions.items())
        ]
        self._evictions.clear()
        return records

    def totals(self) -> dict[str, int]:
        """Counters summed over models, and what is waiting."""
        totals = Counter({name: 0 for name in COUNTERS})
        for counts in self.counts.values():
            totals.update(counts)
        waiting = Counter(value[:1] for value in self._entries.values())
        return {
            **totals,
            "waiting_predictions": waiting[_PREDICTION],
            "waiting_labels": waiting[_LABEL],
            "joined_ids": waiting[_JOINED],
        }

    def to_bytes(self) -> bytes:
        """Clocks and counters; the entries themselves are the changelog (``from_bytes``)."""
        counts = {model_id: dict(counts) for model_id, counts in self.counts.items()}
        clocks = np.array([self.prediction_clock, self.label_clock], dtype=np.float64)
        return pack("JoinStore", {"counts": counts}, [clocks.tobytes()])

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        entries: Mapping[bytes, bytes],
        ttl_seconds: Mapping[str, float],
        max_bytes: int,
        default_ttl_seconds: float | None = None,
    ) -> JoinStore:
        """The store of ``to_bytes`` with the latest changelog value of each key (``entries``)."""
        header, [clocks] = unpack("JoinStore", data)
        store = cls(ttl_seconds, max_bytes, default_ttl_seconds)
        store.prediction_clock, store.label_clock = np.frombuffer(clocks, dtype=np.float64).tolist()
        for model_id, counts in header["counts"].items():
            store.counts[model_id].update(counts)
        for key, value in entries.items():
            prediction_id = key.decode()
            store._entries[prediction_id] = value
            store.bytes += ENTRY_OVERHEAD_BYTES + len(prediction_id) + len(value)
            kind, deadline = _HEAD.unpack_from(value)
            heap = store._prediction_deadlines if kind in _PREDICTION_KINDS else store._label_deadlines
            heap.append((deadline, prediction_id))
        heapq.heapify(store._prediction_deadlines)
        heapq.heapify(store._label_deadlines)
        store._evict()  # a smaller cap than the one the entries were kept under
        return store

    def _put(self, prediction_id: str, value: bytes, old: bytes | None) -> None:
        """Set an entry whose current value is ``old`` (None: a new one)."""
        self.bytes += len(value) - (len(old) if old is not None else -(ENTRY_OVERHEAD_BYTES + len(prediction_id)))
        self._entries[prediction_id] = value
        self._changes[prediction_id] = value

    def _expire(self, heap: list[tuple[float, str]], clock: float) -> None:
        while heap and heap[0][0] < clock:
            deadline, prediction_id = heapq.heappop(heap)
            self._retire(prediction_id, deadline, heap is self._prediction_deadlines, evicted=False)

    def _evict(self) -> None:
        """Drop the entries nearest their deadline until the store fits in ``max_bytes``; note the peak."""
        predictions, labels = self._prediction_deadlines, self._label_deadlines
        while self.bytes > self.max_bytes:
            from_predictions = not labels or (predictions and predictions[0] <= labels[0])
            deadline, prediction_id = heapq.heappop(predictions if from_predictions else labels)
            self._retire(prediction_id, deadline, from_predictions, evicted=True)
        if self.bytes > self.peak_bytes:
            self.peak_bytes = self.bytes

    def _retire(self, prediction_id: str, deadline: float, prediction_heap: bool, evicted: bool) -> None:
        """Remove an entry whose heap item came due, and count it; stale heap items are skipped."""
        value = self._entries.get(prediction_id)
        if value is None:
            return
        kind, current_deadline = _HEAD.unpack_from(value)
        if current_deadline != deadline or (kind in _PREDICTION_KINDS) != prediction_heap:
            return  # the entry changed since this item was pushed: a newer item stands for it
        del self._entries[prediction_id]
        self.bytes -= ENTRY_OVERHEAD_BYTES + len(prediction_id) + len(value)
        self._changes[prediction_id] = None
        fields = value[_HEAD.size :]
        if kind == _JOINED:
            model_id = fields.decode()
            if evicted:
                self.counts[model_id]["evicted"] += 1
        elif kind == _PREDICTION:
            model_id = orjson.loads(fields)[0]
            self.counts[model_id]["evicted" if evicted else "expired"] += 1
        else:
            _, _, model_id, duplicates = orjson.loads(fields)
            counts = self.counts[model_id or UNKNOWN_MODEL]
            counts["evicted" if evicted else "orphan"] += 1
            counts["duplicate"] += duplicates
        if evicted and model_id is not None:
            self._evictions[model_id] += 1


def _evicted(store: JoinStore) -> int:
    return sum(counts["evicted"] for counts in store.counts.values())


def _outcome(prediction_id, model_id, version, segment, prediction, prediction_time, label, label_time) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "model_id": model_id,
        "model_version": version,
        "segment": segment,
        "prediction_id": prediction_id,
        "prediction": prediction,
        "label": label,
        "prediction_time": prediction_time,
        "label_time": label_time,
    }


class LabelJoin:
    """The ingest worker's handler (``stream.ingest.PartitionHandler``) for the label join.

    One ``JoinStore`` per partition pair, created on assignment of the labels partition from its
    checkpoint and ``read_changelog(partition)`` (the latest value of every key of that changelog
    partition). ``max_bytes`` is the worker's budget, split evenly over the event partitions so that a
    worker owning all of them stays within it.
    """

    stateful = True

    def __init__(
        self,
        models: Mapping[str, MonitoredModel],
        topics: TopicSettings,
        read_changelog: Callable[[int], Mapping[bytes, bytes]],
        *,
        max_bytes: int,
    ) -> None:
        self.inference_topic = topics.name("inference")
        self.labels_topic = topics.name("labels")
        self.outcomes_topic = topics.name("outcomes")
        self.changelog_topic = topics.name("join-changelog")
        self.ttl_seconds = {model_id: model.config.label_ttl_seconds for model_id, model in models.items() if model.config.task is not None}
        """The models joined: those with performance monitoring (a ``task``), the only users of outcomes."""
        self.partition_bytes = max(max_bytes // topics.event_partitions, 1)
        self._read_changelog = read_changelog
        self._stores: dict[int, JoinStore] = {}
        self._changed: set[int] = set()

    def assign(self, topic: str, partition: int, state: bytes | None) -> None:
        if topic != self.labels_topic:
            return
        if state is None:  # nothing committed yet: the changelog has nothing either
            self._stores[partition] = JoinStore(self.ttl_seconds, self.partition_bytes)
        else:
            entries = self._read_changelog(partition)
            self._stores[partition] = JoinStore.from_bytes(state, entries, self.ttl_seconds, self.partition_bytes)
        self._changed.discard(partition)

    def revoke(self, topic: str, partition: int) -> None:
        if topic == self.labels_topic:
            self._stores.pop(partition, None)
            self._changed.discard(partition)

    def handle(self, topic: str, partition: int, events: list[dict], rejects: Iterable = ()) -> list[Output]:  # rejects: not joined
        if not events or not self.ttl_seconds:  # no model to join: labels would only wait to be orphans
            return []
        store = self._stores.get(partition)
        if store is None:
            raise RuntimeError(
                f"{topic}[{partition}] is assigned without {self.labels_topic}[{partition}]: the label join needs both "
                "partitions of a number in one worker (the consumer group's default range assignor does that)"
            )
        evicted_before = _evicted(store)
        outcomes = store.add_predictions(events) if topic == self.inference_topic else store.add_labels(events)
        self._changed.add(partition)
        evicted = _evicted(store) - evicted_before
        if evicted:  # the cap is too small for the traffic and TTLs: joins are being lost
            log.warning("label join over its memory cap", extra={"fields": {
                "partition": partition, "evicted": evicted, "bytes": store.bytes, "max_bytes": store.max_bytes}})  # fmt: skip
        records = outcomes + store.pop_evictions()
        outputs = [Output(self.outcomes_topic, record["model_id"].encode(), orjson.dumps(record)) for record in records]
        outputs += [
            Output(self.changelog_topic, prediction_id.encode(), value, partition)
            for prediction_id, value in store.pop_changes().items()
        ]
        return outputs

    def tick(self, behind: frozenset[SourcePartition] = frozenset()) -> list[Output]:
        return []

    def checkpoints(self) -> dict[SourcePartition, bytes]:
        changed = {(self.labels_topic, partition): self._stores[partition].to_bytes() for partition in self._changed}
        self._changed.clear()
        return changed

    def report(self) -> dict:
        """Counters per model over the owned partitions, and the stores' memory (for heartbeats)."""
        by_model: defaultdict[str, Counter[str]] = defaultdict(Counter)
        for store in self._stores.values():
            for model_id, counts in store.counts.items():
                by_model[model_id].update(counts)
        return {
            "join": {model_id: dict(counts) for model_id, counts in sorted(by_model.items())},
            "join_bytes": sum(store.bytes for store in self._stores.values()),
            "join_peak_bytes": sum(store.peak_bytes for store in self._stores.values()),
            "join_max_bytes": self.partition_bytes * max(len(self._stores), 1),
        }
