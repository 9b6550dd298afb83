"""The label join store: exactly one outcome per joinable prediction, first label wins, and every
counter equal to what the rules give, whatever the interleaving, batching or restarts."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter, defaultdict

import jsonschema
import numpy as np
import pytest

import schemas
from stream.join import ENTRY_OVERHEAD_BYTES, UNKNOWN_MODEL, JoinStore

OUTCOME = jsonschema.Draft202012Validator(schemas.load("outcome"))
TTL = {"model-a": 300.0, "model-b": 420.0}


@dataclasses.dataclass
class Scenario:
    """Predictions (in time order) and label events (in publish order) with known answers.

    Labels arrive ``delay`` seconds after their prediction and are published shuffled by up to
    ``shuffle`` seconds; some are duplicated (a second label, later), some never sent, some sent just
    before their prediction, and some name predictions that do not exist (orphans). The TTLs exceed
    twice the delay plus the shuffle, so the answers do not depend on how the two streams interleave.
    """

    predictions: list[dict]
    labels: list[dict]
    arrival: list[tuple[float, int, int]]
    """(publish time, side 0 prediction / 1 label, index): the order a producer sends them in."""
    ttl: dict[str, float]

    @classmethod
    def generate(
        cls, n: int, seed: int = 0, *, start: float = 1.7e9, span: float = 2400.0, delay: float = 60.0, shuffle: float = 30.0,
        unlabelled: float = 0.03, duplicated: float = 0.05, early: float = 0.02, orphans: float = 0.01,
        ttl: dict[str, float] = TTL, late_duplicates: float = 0.0, late_delay: tuple[float, float] = (0.0, 0.0),
        orphan_times: tuple[float, float] | None = None,
    ) -> Scenario:  # fmt: skip
        """``late_duplicates`` of the duplicates come ``late_delay`` seconds after the first label;
        orphan labels have times in ``orphan_times`` (seconds from ``start``; default the span)."""
        rng = np.random.default_rng(seed)
        models = list(ttl)
        times = start + np.sort(rng.uniform(0, span, n))
        model_of = rng.integers(0, len(models), n)
        predictions = [
            {
                "prediction_id": f"p-{seed}-{i}",
                "model_id": models[model_of[i]],
                "model_version": "v1",
                "timestamp": float(times[i]),
                "prediction": {"score": round(float(score), 4)} if i % 2 else round(float(score), 4),
                **({"segment": {"region": f"r{i % 3}"}} if i % 5 else {}),
            }
            for i, score in enumerate(rng.uniform(0, 1, n))
        ]
        arrival = [(float(t), 0, i) for i, t in enumerate(times)]
        labels: list[dict] = []
        publish: list[float] = []
        for i in np.flatnonzero(rng.uniform(size=n) >= unlabelled):
            label_time = float(times[i] + rng.uniform(0, delay))
            labels.append({"prediction_id": f"p-{seed}-{i}", "label": int(rng.integers(0, 2)), "timestamp": label_time})
            publish.append(times[i] - 1e-3 if rng.uniform() < early else label_time + rng.uniform(0, shuffle))
            if rng.uniform() < duplicated:
                late = rng.uniform() < late_duplicates
                again = label_time + float(rng.uniform(*late_delay) if late else rng.uniform(0, delay))
                labels.append({"prediction_id": f"p-{seed}-{i}", "label": 2, "timestamp": again})
                publish.append(again + rng.uniform(0, shuffle))
        for k in range(int(n * orphans)):
            label_time = float(start + rng.uniform(*(orphan_times or (0, span))))
            named = {"model_id": models[k % len(models)]} if k % 3 == 0 else {}
            labels.append({"prediction_id": f"orphan-{seed}-{k}", "label": 1, "timestamp": label_time, **named})
            publish.append(label_time + rng.uniform(0, shuffle))
        order = np.argsort(publish, kind="stable")
        labels = [labels[j] for j in order]
        arrival += [(float(publish[j]), 1, position) for position, j in enumerate(order)]
        return cls(predictions, labels, sorted(arrival), dict(ttl))

    def first_labels(self) -> dict[str, object]:
        first: dict[str, object] = {}
        for label in self.labels:
            first.setdefault(label["prediction_id"], label["label"])
        return first

    def expected_counts(self, predictions: list[dict] | None = None, labels: list[dict] | None = None) -> dict[str, Counter]:
        """Per model counters after all of ``predictions`` and ``labels`` (default: all) went in, by
        the rules of stream/join.py rather than by running it."""
        predictions = self.predictions if predictions is None else predictions
        labels = self.labels if labels is None else labels
        prediction_clock = max((p["timestamp"] for p in predictions), default=-math.inf)
        label_clock = max((label["timestamp"] for label in labels), default=-math.inf)
        default_ttl = max(self.ttl.values())
        labels_of: defaultdict[str, list[dict]] = defaultdict(list)
        for label in labels:
            labels_of[label["prediction_id"]].append(label)
        counts: defaultdict[str, Counter] = defaultdict(Counter)
        predicted = set()
        for prediction in predictions:
            model, prediction_id = prediction["model_id"], prediction["prediction_id"]
            predicted.add(prediction_id)
            if labels_of[prediction_id]:
                counts[model]["joined"] += 1
                counts[model]["duplicate"] += len(labels_of[prediction_id]) - 1
            elif prediction["timestamp"] + self.ttl[model] < label_clock:
                counts[model]["expired"] += 1
        for prediction_id, its_labels in labels_of.items():
            if prediction_id not in predicted and its_labels:
                model = its_labels[0].get("model_id")
                if its_labels[0]["timestamp"] + self.ttl.get(model, default_ttl) < prediction_clock:
                    counts[model or UNKNOWN_MODEL]["orphan"] += 1
        return {model: +counter for model, counter in counts.items() if +counter}


def run_interleaved(store: JoinStore, scenario: Scenario, rng: np.random.Generator, changelog: dict | None = None) -> list[dict]:
    """Feed both sides in random batches, each side in its own order, one side running ahead at random."""
    outcomes: list[dict] = []
    p = q = 0
    while p < len(scenario.predictions) or q < len(scenario.labels):
        if q >= len(scenario.labels) or (p < len(scenario.predictions) and rng.uniform() < 0.5):
            size = int(rng.integers(1, 3000))
            outcomes += store.add_predictions(scenario.predictions[p : p + size])
            p += size
        else:
            size = int(rng.integers(1, 3000))
            outcomes += store.add_labels(scenario.labels[q : q + size])
            q += size
        if changelog is not None:
            apply_changes(changelog, store.pop_changes())
    return outcomes


def apply_changes(changelog: dict[bytes, bytes], changes: dict[str, bytes | None]) -> None:
    """What a compacted changelog topic keeps: the last value of each key, none after a tombstone."""
    for prediction_id, value in changes.items():
        if value is None:
            changelog.pop(prediction_id.encode(), None)
        else:
            changelog[prediction_id.encode()] = value


def counts_of(store: JoinStore) -> dict[str, Counter]:
    return {model: +Counter(counts) for model, counts in store.counts.items() if +Counter(counts)}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_joinable_prediction_is_joined_once_with_its_first_label_and_counts_are_exact(seed):
    scenario = Scenario.generate(20_000, seed)
    store = JoinStore(scenario.ttl, max_bytes=1 << 30)
    outcomes = run_interleaved(store, scenario, np.random.default_rng(seed))
    first = scenario.first_labels()
    predicted = {p["prediction_id"]: p for p in scenario.predictions}
    ids = [outcome["prediction_id"] for outcome in outcomes]
    assert len(ids) == len(set(ids)) == len(first.keys() & predicted.keys())
    for outcome in outcomes[:300]:  # jsonschema is slow; the fields of every outcome are checked below
        OUTCOME.validate(outcome)
    for outcome in outcomes:
        prediction = predicted[outcome["prediction_id"]]
        assert outcome["label"] == first[outcome["prediction_id"]]
        assert (outcome["model_id"], outcome["prediction"], outcome["prediction_time"]) == (
            prediction["model_id"], prediction["prediction"], prediction["timestamp"]
        )
        assert outcome["segment"] == prediction.get("segment", {})
    expected = scenario.expected_counts()
    assert counts_of(store) == expected
    assert all(expected[model]["expired"] > 0 and expected[model]["duplicate"] > 0 for model in TTL)
    assert expected[UNKNOWN_MODEL]["orphan"] > 0


def test_counts_do_not_depend_on_interleaving_or_batching():
    scenario = Scenario.generate(5_000, 7)
    results = []
    for seed in range(4):
        store = JoinStore(scenario.ttl, max_bytes=1 << 30)
        outcomes = run_interleaved(store, scenario, np.random.default_rng(seed))
        results.append((counts_of(store), sorted((o["prediction_id"], o["label"]) for o in outcomes)))
    assert all(result == results[0] for result in results)


def test_restore_from_checkpoint_and_changelog_after_a_crash_gives_the_uninterrupted_answer():
    """Commits after random batches; a crash loses what followed the last commit, which is re-fed."""
    scenario = Scenario.generate(10_000, 11)
    rng = np.random.default_rng(11)
    store = JoinStore(scenario.ttl, max_bytes=1 << 30)
    committed = {"state": store.to_bytes(), "changelog": {}, "positions": (0, 0), "outcomes": []}
    changelog: dict[bytes, bytes] = {}
    pending_outcomes: list[dict] = []
    p = q = 0
    crashes = 0
    while p < len(scenario.predictions) or q < len(scenario.labels):
        if q >= len(scenario.labels) or (p < len(scenario.predictions) and rng.uniform() < 0.5):
            size = int(rng.integers(1, 800))
            pending_outcomes += store.add_predictions(scenario.predictions[p : p + size])
            p += size
        else:
            size = int(rng.integers(1, 800))
            pending_outcomes += store.add_labels(scenario.labels[q : q + size])
            q += size
        apply_changes(changelog, store.pop_changes())
        if rng.uniform() < 0.1:  # kill -9: everything since the last commit is lost
            crashes += 1
            store = JoinStore.from_bytes(committed["state"], committed["changelog"], scenario.ttl, 1 << 30)
            changelog = dict(committed["changelog"])
            p, q = committed["positions"]
            pending_outcomes = []
        elif rng.uniform() < 0.5:  # the batch's transaction commits
            committed = {
                "state": store.to_bytes(), "changelog": dict(changelog), "positions": (p, q),
                "outcomes": committed["outcomes"] + pending_outcomes,
            }  # fmt: skip
            pending_outcomes = []
    outcomes = committed["outcomes"] + pending_outcomes
    assert crashes > 5
    assert counts_of(store) == scenario.expected_counts()
    ids = [outcome["prediction_id"] for outcome in outcomes]
    assert len(ids) == len(set(ids)) == sum(scenario.expected_counts()[m]["joined"] for m in TTL)
    # The changelog alone holds the whole store: a fresh restore is the same store.
    restored = JoinStore.from_bytes(store.to_bytes(), changelog, scenario.ttl, 1 << 30)
    assert restored.bytes == store.bytes and restored.totals() == store.totals()


def test_predictions_expire_by_the_label_clock_and_labels_by_the_prediction_clock():
    store = JoinStore({"m": 100.0}, max_bytes=1 << 20)
    store.add_predictions([{"prediction_id": "a", "model_id": "m", "model_version": "v", "timestamp": 1000.0, "prediction": 1.0}])
    store.add_predictions([{"prediction_id": "b", "model_id": "m", "model_version": "v", "timestamp": 1150.0, "prediction": 1.0}])
    assert store.totals()["expired"] == 0, "predictions running ahead do not expire a waiting prediction"
    store.add_labels([{"prediction_id": "x", "label": 1, "timestamp": 1100.0}])
    assert store.totals()["expired"] == 0, "deadline 1100 is not passed yet"
    store.add_labels([{"prediction_id": "y", "label": 1, "timestamp": 1100.5}])
    assert store.counts["m"]["expired"] == 1
    assert store.counts[UNKNOWN_MODEL]["orphan"] == 0, "labels x, y wait until predictions pass 1200"
    store.add_predictions([{"prediction_id": "c", "model_id": "m", "model_version": "v", "timestamp": 1201.0, "prediction": 1.0}])
    assert store.counts[UNKNOWN_MODEL]["orphan"] == 2
    store.add_labels([{"prediction_id": "late", "label": 1, "timestamp": 1100.9}])
    assert store.counts[UNKNOWN_MODEL]["orphan"] == 3, "a label already past its deadline is an orphan at once"


def test_each_model_keeps_its_own_ttl_and_a_label_naming_a_model_uses_it():
    store = JoinStore({"short": 10.0, "long": 1000.0}, max_bytes=1 << 20)
    store.add_predictions([
        {"prediction_id": "s", "model_id": "short", "model_version": "v", "timestamp": 0.0, "prediction": 1},
        {"prediction_id": "l", "model_id": "long", "model_version": "v", "timestamp": 0.0, "prediction": 1},
    ])  # fmt: skip
    store.add_labels([{"prediction_id": "z", "label": 0, "timestamp": 500.0, "model_id": "short"}])
    assert (store.counts["short"]["expired"], store.counts["long"]["expired"]) == (1, 0)
    store.add_predictions([{"prediction_id": "q", "model_id": "long", "model_version": "v", "timestamp": 511.0, "prediction": 1}])
    assert store.counts["short"]["orphan"] == 1, "a label naming 'short' waits 10 s of prediction time"


def test_duplicates_before_the_prediction_are_counted_once_the_first_label_joins():
    store = JoinStore({"m": 100.0}, max_bytes=1 << 20)
    store.add_labels([{"prediction_id": "a", "label": "yes", "timestamp": 10.0}, {"prediction_id": "a", "label": "no", "timestamp": 11.0}])
    [outcome] = store.add_predictions([{"prediction_id": "a", "model_id": "m", "model_version": "v", "timestamp": 5.0, "prediction": "yes"}])
    assert outcome["label"] == "yes"
    store.add_labels([{"prediction_id": "a", "label": "maybe", "timestamp": 12.0}])
    assert store.counts["m"] == Counter(joined=1, duplicate=2)


def test_error_predictions_are_unscored_and_repeated_ids_are_counted():
    store = JoinStore({"m": 100.0}, max_bytes=1 << 20)
    store.add_predictions([
        {"prediction_id": "e", "model_id": "m", "model_version": "v", "timestamp": 1.0, "status": "error", "error": "timeout"},
        {"prediction_id": "a", "model_id": "m", "model_version": "v", "timestamp": 1.0, "prediction": 0.5},
        {"prediction_id": "a", "model_id": "m", "model_version": "v", "timestamp": 2.0, "prediction": 0.7},
    ])  # fmt: skip
    [outcome] = store.add_labels([{"prediction_id": "a", "label": 1, "timestamp": 3.0}])
    assert outcome["prediction"] == 0.5
    assert store.counts["m"] == Counter(unscored=1, repeated=1, joined=1)


def test_the_size_cap_evicts_the_entries_nearest_their_deadline_and_counts_them():
    events = [{"prediction_id": f"p{i:04d}", "model_id": "m", "model_version": "v", "timestamp": 1000.0 + i, "prediction": 0.5} for i in range(1000)]
    one = JoinStore({"m": 1e6}, max_bytes=1 << 20)
    one.add_predictions(events[:1])
    cap = 40 * one.bytes + one.bytes // 2  # room for 40 entries (all of one size)
    store = JoinStore({"m": 1e6}, max_bytes=cap)
    for start in range(0, 1000, 7):
        store.add_predictions(events[start : start + 7])
        assert store.bytes <= cap
    assert store.peak_bytes <= cap
    assert len(store) == 40
    assert store.counts["m"]["evicted"] == 1000 - 40
    # The oldest went first: the newest predictions still join.
    assert len(store.add_labels([{"prediction_id": "p0999", "label": 1, "timestamp": 1000.0}])) == 1
    assert store.add_labels([{"prediction_id": "p0000", "label": 1, "timestamp": 1000.0}]) == []


def test_a_smaller_cap_at_restore_evicts_down_to_it():
    scenario = Scenario.generate(2_000, 5)
    store, changelog = JoinStore(scenario.ttl, max_bytes=1 << 30), {}
    run_interleaved(store, scenario, np.random.default_rng(5), changelog)
    smaller = store.bytes // 2
    restored = JoinStore.from_bytes(store.to_bytes(), changelog, scenario.ttl, smaller)
    assert restored.bytes <= smaller < store.bytes
    assert sum(counts["evicted"] for counts in restored.counts.values()) == len(store) - len(restored)


def test_pop_changes_replays_to_the_store_entries():
    scenario = Scenario.generate(3_000, 9)
    store, changelog = JoinStore(scenario.ttl, max_bytes=1 << 30), {}
    run_interleaved(store, scenario, np.random.default_rng(9), changelog)
    totals = store.totals()
    assert len(changelog) == len(store) == totals["waiting_predictions"] + totals["waiting_labels"] + totals["joined_ids"]
    assert store.bytes == sum(ENTRY_OVERHEAD_BYTES + len(key) + len(value) for key, value in changelog.items())


def test_predictions_of_models_not_joined_only_move_the_prediction_clock():
    store = JoinStore({"m": 100.0}, max_bytes=1 << 20)
    store.add_labels([{"prediction_id": "x", "label": 1, "timestamp": 10.0}])
    store.add_predictions([{"prediction_id": "o", "model_id": "other", "model_version": "v", "timestamp": 500.0, "prediction": 1}])
    assert len(store) == 0
    assert counts_of(store) == {UNKNOWN_MODEL: Counter(orphan=1)}
