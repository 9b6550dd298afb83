"""The label join store: memory per waiting prediction and join throughput, against a plain dict.

``--predictions`` decoded inference events (36-character uuid ids, ``{"score", "class"}``
predictions, one segment tag) wait in a ``JoinStore``; then a label for each arrives, in a shuffled
order, and joins it. The baseline is the least a join can do in Python: a dict from prediction_id to
the event, popped when its label comes, the outcome dict built the same way — no TTL, no cap, no
changelog, no counters.

Memory is measured with tracemalloc (Python allocations of the structure alone), so it is exact
for both and comparable: ``bytes_per_waiting_prediction`` (the store), ``..._dict`` (the baseline),
and the store's own estimate (``JoinStore.bytes``, what its cap is checked against) per entry, whose
ratio to the measured figure must stay at or above 1 for the cap to bound real memory. Joined ids
(kept until their TTL so late duplicates are recognized) are measured the same way.

    .venv/bin/python benchmarks/bench_join.py [--predictions 200000] [--repeats 3] [--smoke]
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc
import uuid

from common import emit, machine_facts
from stream.join import ENTRY_OVERHEAD_BYTES, JoinStore

MODEL = "fraud-detector"
TTL = {MODEL: 7 * 86_400.0}


def events(n: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Decoded inference events in time order and their labels, shuffled."""
    rng = random.Random(seed)
    start = 1.79e9
    predictions = [
        {
            "prediction_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "model_id": MODEL,
            "model_version": "2024.11.3",
            "timestamp": start + i * 0.01,
            "features": {"amount": rng.random() * 100, "country": "DE"},
            "prediction": {"score": round(rng.random(), 6), "class": "fraud" if i % 7 == 0 else "ok"},
            "segment": {"channel": "web"},
        }
        for i in range(n)
    ]
    labels = [
        {"prediction_id": p["prediction_id"], "label": "fraud" if rng.random() < 0.1 else "ok", "timestamp": p["timestamp"] + 60 + rng.random() * 600}
        for p in predictions
    ]
    rng.shuffle(labels)
    return predictions, labels


class DictJoin:
    """The baseline: prediction_id -> the fields an outcome needs (as the decoded objects), popped by its label."""

    def __init__(self) -> None:
        self.waiting: dict[str, tuple] = {}

    def add_predictions(self, batch: list[dict]) -> None:
        for event in batch:
            self.waiting[event["prediction_id"]] = (
                event["model_id"], event["model_version"], event.get("segment", {}), event["prediction"], event["timestamp"]
            )

    def add_labels(self, batch: list[dict]) -> list[dict]:
        outcomes = []
        for label in batch:
            fields = self.waiting.pop(label["prediction_id"], None)
            if fields is not None:
                model_id, version, segment, prediction, prediction_time = fields
                outcomes.append({
                    "schema_version": "1.0", "model_id": model_id, "model_version": version, "segment": segment,
                    "prediction_id": label["prediction_id"], "prediction": prediction, "label": label["label"],
                    "prediction_time": prediction_time, "label_time": label["timestamp"],
                })  # fmt: skip
        return outcomes


def traced(build):
    """Python bytes allocated by ``build()`` and still held by its result."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    result = build()
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held, result


def in_batches(add, items: list[dict], size: int = 5_000) -> list:
    out = []
    for start in range(0, len(items), size):
        out += add(items[start : start + size]) or []
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="20,000 predictions, 1 repeat: checks the plumbing")
    args = parser.parse_args()
    n, repeats = (20_000, 1) if args.smoke else (args.predictions, args.repeats)
    # The events are decoded inside each traced build and dropped after it: what stays allocated is
    # what the join holds (the baseline keeps the decoded objects, the store its serialized entries).

    def store_waiting() -> JoinStore:
        store = JoinStore(TTL, max_bytes=1 << 40)
        in_batches(store.add_predictions, events(n, seed=1)[0])
        store.pop_changes()  # the changelog records are handed to Kafka and not kept
        return store

    def dict_waiting() -> DictJoin:
        join = DictJoin()
        join.add_predictions(events(n, seed=1)[0])
        return join

    store_bytes, store = traced(store_waiting)
    estimate = store.bytes
    dict_bytes, _ = traced(dict_waiting)

    def store_joined() -> JoinStore:
        store = store_waiting()
        in_batches(store.add_labels, events(n, seed=1)[1])
        store.pop_changes()
        return store

    joined_bytes, joined = traced(store_joined)  # one trace: frees of the waiting entries count
    predictions, labels = events(n, seed=1)

    store_seconds, dict_seconds = [], []
    for _ in range(repeats):
        join = JoinStore(TTL, max_bytes=1 << 40)
        gc.collect()
        started = time.perf_counter()
        in_batches(join.add_predictions, predictions)
        join.pop_changes()
        outcomes = in_batches(join.add_labels, labels)
        join.pop_changes()
        store_seconds.append(time.perf_counter() - started)
        assert len(outcomes) == n
        baseline = DictJoin()
        gc.collect()
        started = time.perf_counter()
        in_batches(baseline.add_predictions, predictions)
        assert len(in_batches(baseline.add_labels, labels)) == n
        dict_seconds.append(time.perf_counter() - started)
    store_rate = 2 * n / min(store_seconds)
    dict_rate = 2 * n / min(dict_seconds)
    emit({
        "benchmark": "label_join",
        "predictions": n,
        "repeats": repeats,
        "bytes_per_waiting_prediction": round(store_bytes / n, 1),
        "bytes_per_waiting_prediction_dict": round(dict_bytes / n, 1),
        "memory_ratio_store_vs_dict": round(store_bytes / dict_bytes, 3),
        "estimated_bytes_per_waiting_prediction": round(estimate / n, 1),
        "estimate_ratio_vs_measured": round(estimate / store_bytes, 3),
        "entry_overhead_bytes": ENTRY_OVERHEAD_BYTES,
        "bytes_per_joined_id": round(joined_bytes / n, 1),
        "estimated_bytes_per_joined_id": round(joined.bytes / n, 1),
        "estimate_ratio_vs_measured_joined": round(joined.bytes / joined_bytes, 3),
        "events_per_second": round(store_rate),
        "events_per_second_dict": round(dict_rate),
        "throughput_ratio_store_vs_dict": round(store_rate / dict_rate, 3),
        "note": "events = predictions + labels; the store also writes changelog records and keeps TTL heaps and counters",
        "machine": machine_facts(),
    })  # fmt: skip


if __name__ == "__main__":
    main()
