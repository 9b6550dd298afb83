"""Throughput of ``driftline replay`` (decode → columns → windows → profiles → evaluator → policy)
next to bare ``orjson.loads`` of the same bytes, and the size of the sketches per feature.

Rows have 20 features (15 numeric, 5 categorical), a score and class, latency; event time advances
at ``--rate`` events per second (default 100/s: a base window of 60 s holds 6,000 events, so the
per-evaluation cost is amortized over them; at lower rates evaluations weigh more per event).
Stages are timed in the same run, so compare ratios, not absolute numbers, across machines.

    .venv/bin/python benchmarks/bench_replay.py [--rows 1000000] [--rate 100] [--batch 10000]
"""

import argparse
import gc
import json
import platform
import time

import numpy as np
import orjson

from detectors.columns import Columns
from detectors.monitor import MonitorConfig
from detectors.profile import ReferenceBuilder
from stream.replay import Replay

NUMERIC = [f"num_{i:02d}" for i in range(15)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
START = 1_767_225_600.0


def make_values(rows: int, rate: float, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    numeric = {name: np.round(rng.normal(10.0 * i, 1.0 + i, rows), 4).tolist() for i, name in enumerate(NUMERIC)}
    categories = [np.array([f"c{i}_{j}" for j in range(4 + 3 * i)]) for i in range(len(CATEGORICAL))]
    categorical = {name: rng.choice(values, rows).tolist() for name, values in zip(CATEGORICAL, categories)}
    score = np.round(rng.uniform(size=rows), 6).tolist()
    latency = np.round(rng.lognormal(2.5, 0.4, rows), 3).tolist()
    timestamp = np.round(START + np.arange(rows) / rate, 3).tolist()
    values = []
    for i in range(rows):
        features = {name: column[i] for name, column in numeric.items()}
        features.update({name: column[i] for name, column in categorical.items()})
        values.append(
            orjson.dumps(
                {
                    "prediction_id": f"p-{seed}-{i}",
                    "model_id": "bench",
                    "model_version": "1",
                    "timestamp": timestamp[i],
                    "features": features,
                    "prediction": {"score": score[i], "class": "yes" if score[i] > 0.5 else "no"},
                    "latency_ms": latency[i],
                }
            )
        )
    return values


def timed(function) -> tuple[float, object]:
    gc.collect()
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--batch", type=int, default=10_000)
    args = parser.parse_args()

    reference_values = make_values(100_000, args.rate, seed=1)
    builder = ReferenceBuilder()
    builder.add([orjson.loads(value) for value in reference_values])
    reference = builder.build("bench", "1", source="bench", created_at=0.0)
    config = MonitorConfig.from_mapping({"model_id": "bench", "reference": "bench.profile"})
    values = make_values(args.rows, args.rate, seed=2)
    batches = [values[start : start + args.batch] for start in range(0, len(values), args.batch)]

    orjson_seconds, _ = timed(lambda: [[orjson.loads(value) for value in batch] for batch in batches])

    def run_replay() -> Replay:
        engine = Replay(config, reference)
        for batch in batches:
            engine.feed(batch)
        engine.finish()
        return engine

    replay_seconds, engine = timed(run_replay)

    decoded = [[orjson.loads(value) for value in batch] for batch in batches]
    for events in decoded:
        for event in events:
            event["timestamp"] = float(event["timestamp"])
    columns_seconds, columns = timed(
        lambda: [Columns.from_events(events, NUMERIC, CATEGORICAL) for events in decoded]
    )

    def run_core() -> Replay:
        core = Replay(config, reference)
        for batch in columns:
            core.feed_columns(batch)
        core.finish()
        return core

    core_seconds, _ = timed(run_core)

    # Sketch sizes: one base window's profile and a profile of every row, serialized.
    window_profile = engine.evaluator.new_profile()
    window_profile.update(columns[0].take(np.arange(min(len(columns[0]), int(60 * args.rate)))))
    whole = engine.evaluator.new_profile()
    for batch in columns:
        whole.update(batch)

    def bytes_per_feature(profile, kind):
        sketches = profile.numeric if kind == "numeric" else profile.categorical
        return round(float(np.mean([len(sketch.to_bytes()) for sketch in sketches.values()])))

    report = {
        "benchmark": "replay",
        "rows": args.rows,
        "features": {"numeric": len(NUMERIC), "categorical": len(CATEGORICAL)},
        "event_rate_per_s": args.rate,
        "batch": args.batch,
        "evaluations": engine.summary.evaluations,
        "alerts": engine.summary.firing,
        "orjson_loads_rows_per_s": round(args.rows / orjson_seconds),
        "replay_rows_per_s": round(args.rows / replay_seconds),
        "replay_vs_orjson_ratio": round(orjson_seconds / replay_seconds, 4),
        "columns_rows_per_s": round(args.rows / columns_seconds),
        "core_from_columns_rows_per_s": round(args.rows / core_seconds),
        "seconds": {
            "orjson_loads": round(orjson_seconds, 2),
            "replay": round(replay_seconds, 2),
            "columns": round(columns_seconds, 2),
            "core_from_columns": round(core_seconds, 2),
        },
        "sketch_bytes_per_feature": {
            "numeric_base_window": bytes_per_feature(window_profile, "numeric"),
            "categorical_base_window": bytes_per_feature(window_profile, "categorical"),
            "numeric_all_rows": bytes_per_feature(whole, "numeric"),
            "categorical_all_rows": bytes_per_feature(whole, "categorical"),
        },
        "profile_bytes": {
            "base_window": len(window_profile.to_bytes()),
            "all_rows": len(whole.to_bytes()),
            "reference": len(reference.to_bytes()),
        },
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
