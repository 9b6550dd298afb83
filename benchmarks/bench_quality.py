"""Detection quality of ``driftline replay`` with the default config: per drift scenario, was the
change alerted (an alert of the expected kind on the expected feature after it started), how long
did that take, and which alerts had no cause; and how many alerts a stationary stream raises.

Each scenario is a ``stream.workload.presets`` entry over ``--events`` events (change at 40 %,
temporary changes end at 70 %) at 100 events/s of event time, fed as JSON bytes through
``Replay.feed`` in batches of ``BATCH`` (the delay's granularity). The expected changes are
``stream.workload.ground_truth``; changes of one kind on one feature (a recurring shift's on-phases)
are one expected detection, dated from the first. An alert is *explained* when its kind and feature
match an expected change and its evaluation window overlaps the change in event time; every other
firing alert is a false alarm. The stationary runs (no scenario, several seeds) give false alarms
per 1M events.

Config: the defaults (60 s base windows, evaluation over 5, JS >= 0.1 with BH-corrected chi-square
p < 0.01, persistence 2 of 3), plus the one thing a user must declare for the sentinel scenario to be
a data-quality finding: num_06's sentinel -999 (in the config and the reference profile).

Runs are independent, so they go to a process pool (detection does not depend on speed).

    .venv/bin/python benchmarks/bench_quality.py [--events 200000] [--stationary-events 1000000] [--seeds 3] [--smoke]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from typing import Any

from common import default_config, emit, workload_reference
from detectors.profile import ReferenceProfile
from stream.replay import Replay
from stream.workload import Change, Scenario, Workload, ground_truth, presets

SCENARIOS = (
    "abrupt",
    "gradual",
    "recurring",
    "temporary",
    "nulls",
    "sentinel",
    "category_explosion",
    "class_collapse",
    "latency_spike",
    "malformed",
)
EVENTS_PER_SECOND = 100.0
BATCH = 1_000
REFERENCE_ROWS = 100_000
SENTINEL = -999.0
CONFIG_OVERRIDES = {"features": {"num_06": {"sentinels": [SENTINEL]}}}
MODEL_ID = "quality"

# Alert features that reveal a change of a pseudo-column (None: a model-level alert).
PSEUDO_COLUMNS: dict[str, set[str | None]] = {
    "prediction": {"score", "class"},
    "latency_ms": {None},
    "status": {None},
    "raw": {None},
    "label": {None},
}


@dataclasses.dataclass
class Expected:
    """One expected detection: changes of ``kind`` on ``feature``, over their event-index intervals."""

    kind: str
    feature: str
    intervals: list[tuple[int, int | None]]

    @property
    def start_index(self) -> int:
        return min(start for start, _ in self.intervals)

    def matches(self, alert: dict[str, Any]) -> bool:
        return alert["kind"] == self.kind and alert["feature"] in PSEUDO_COLUMNS.get(self.feature, {self.feature})

    def overlaps(self, workload: Workload, window_start: float, window_end: float) -> bool:
        return any(
            window_start < (workload.time_of(end) if end is not None else float("inf")) and window_end > workload.time_of(start)
            for start, end in self.intervals
        )


def expected_detections(changes: list[Change]) -> list[Expected]:
    by_condition: dict[tuple[str, str], Expected] = {}
    for change in changes:
        for feature in change.features:
            expected = by_condition.setdefault((change.kind, feature), Expected(change.kind, feature, []))
            expected.intervals.append((change.start_index, change.end_index))
    return list(by_condition.values())


def epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339).timestamp()


_reference: ReferenceProfile | None = None


def _load_reference(data: bytes) -> None:
    global _reference
    _reference = ReferenceProfile.from_bytes(data)


def replay_run(name: str, seed: int, events: int) -> dict[str, Any]:
    """Replay one scenario (``"stationary"``: none) and score its alerts against the ground truth."""
    assert _reference is not None, "the pool initializer loads the reference"
    workload = Workload(seed=seed, model_id=MODEL_ID, events_per_second=EVENTS_PER_SECOND)
    scenarios: list[Scenario] = presets(events)[name]
    engine = Replay(default_config(workload, **CONFIG_OVERRIDES), _reference)
    firing: list[tuple[int, dict[str, Any]]] = []  # (events fed when emitted, alert)
    malformed = 0
    started = time.perf_counter()
    for values, _, batch in workload.batches(events, BATCH, scenarios):
        malformed += int((batch.malformed >= 0).sum())
        alerts, _ = engine.feed(values)
        fed = batch.start + len(batch)
        firing += [(fed, alert) for alert in alerts if alert["status"] == "firing"]
    firing += [(events, alert) for alert in engine.finish() if alert["status"] == "firing"]
    seconds = time.perf_counter() - started

    expected = expected_detections(ground_truth(scenarios, events))
    detections = []
    for detection in expected:
        hits = [
            fed
            for fed, alert in firing
            if detection.matches(alert)
            and fed > detection.start_index
            and detection.overlaps(workload, epoch(alert["window"]["start"]), epoch(alert["window"]["end"]))
        ]
        delay = min(hits) - detection.start_index if hits else None
        detections.append(
            {
                "kind": detection.kind,
                "feature": detection.feature,
                "start_index": detection.start_index,
                "intervals": len(detection.intervals),
                "detected": bool(hits),
                "delay_events": delay,
                "delay_seconds": None if delay is None else round(delay / EVENTS_PER_SECOND, 1),
                "alerts": len(hits),
            }
        )
    unexplained = [
        {"kind": alert["kind"], "feature": alert["feature"], "window_end": alert["window"]["end"], "emitted_after_events": fed}
        for fed, alert in firing
        if not any(
            detection.matches(alert)
            and detection.overlaps(workload, epoch(alert["window"]["start"]), epoch(alert["window"]["end"]))
            for detection in expected
        )
    ]
    return {
        "scenario": name,
        "seed": seed,
        "events": events,
        "definition": [repr(scenario) for scenario in scenarios],
        "expected": detections,
        "detected": sum(d["detected"] for d in detections),
        "expected_count": len(detections),
        "firing_alerts": len(firing),
        "false_alarms": len(unexplained),
        "unexplained_alerts": unexplained,
        "rejected_events": sum(engine.summary.rejects.values()),
        "rejects_by_reason": dict(engine.summary.rejects),
        "malformed_events_generated": malformed,
        "evaluations": engine.summary.evaluations,
        "change_points": dict(engine.summary.change_points),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events per drift scenario")
    parser.add_argument("--stationary-events", type=int, default=1_000_000, help="events per stationary seed")
    parser.add_argument("--seeds", type=int, default=3, help="stationary seeds")
    parser.add_argument("--smoke", action="store_true", help="tiny runs (seconds): fields, not findings")
    args = parser.parse_args()
    events, stationary_events, seeds = (20_000, 20_000, 1) if args.smoke else (args.events, args.stationary_events, args.seeds)

    started = time.perf_counter()
    workload = Workload(seed=0, model_id=MODEL_ID, events_per_second=EVENTS_PER_SECOND)
    reference = workload_reference(workload, REFERENCE_ROWS, sentinels={"num_06": [SENTINEL]})
    runs = [(name, 1 + position, events) for position, name in enumerate(SCENARIOS)]
    runs += [("stationary", 101 + seed, stationary_events) for seed in range(seeds)]
    # Longest runs first, so the pool's workers finish together.
    runs.sort(key=lambda run: -run[2])
    workers = len(os.sched_getaffinity(0))
    with ProcessPoolExecutor(workers, initializer=_load_reference, initargs=(reference.to_bytes(),)) as pool:
        results = list(pool.map(replay_run, *zip(*runs)))

    scenario_results = [next(r for r in results if r["scenario"] == name) for name in SCENARIOS]
    stationary = [r for r in results if r["scenario"] == "stationary"]
    stationary_total = sum(r["events"] for r in stationary)
    stationary_alarms = sum(r["false_alarms"] for r in stationary)
    emit(
        {
            "benchmark": "quality",
            "smoke": args.smoke,
            "config": {"model_id": MODEL_ID, "reference": "(workload reference)", **CONFIG_OVERRIDES},
            "events_per_scenario": events,
            "events_per_second_event_time": EVENTS_PER_SECOND,
            "batch": BATCH,
            "reference_rows": REFERENCE_ROWS,
            "matching": "alert kind and feature as in ground_truth(); evaluation window overlapping the change",
            "scenarios": scenario_results,
            "stationary": {
                "seeds": [r["seed"] for r in stationary],
                "events_per_seed": stationary_events,
                "events": stationary_total,
                "false_alarms": stationary_alarms,
                "false_alarms_per_1m_events": round(stationary_alarms / stationary_total * 1e6, 3),
                "evaluations": sum(r["evaluations"] for r in stationary),
                "alerts": [alert for r in stationary for alert in r["unexplained_alerts"]],
            },
            "workers": workers,
            "seconds": round(time.perf_counter() - started, 1),
        }
    )


if __name__ == "__main__":
    main()
