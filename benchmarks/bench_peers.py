"""Drift detection on the same data, same run: ``driftline replay`` (columns path and full JSON path)
next to Evidently's DataDriftPreset and whylogs profiling + drift scores.

Data: ``--rows`` rows x 20 numeric features (the workload's normal, lognormal, uniform, beta, gamma
and integer-valued distributions), and a reference of as many clean rows; in the current rows
num_01 and num_06 shift by 0.5 sd from the middle on, so every tool has drift to find. It is written
once to ``.run/bench-data/peers-<rows>/`` as .npy, which every tool loads; loading is timed apart.

What each tool's time covers:

- driftline: building the reference profile (``ReferenceBuilder.add_columns`` on the numpy
  columns, timed apart) and the replay: event-time windows of 60 s at 100 events/s (6,000 rows
  each), every window tested as it closes (a sliding 5-window evaluation: one full drift +
  data-quality evaluation per 6,000 rows) and the alert policy. The columns path starts from numpy columns; the JSON path from one JSON event per
  row (serialized beforehand, not timed; with the row's model score as its prediction, which the
  contract requires), decoded and validated like the streaming ingest does. Both must accept every
  row, or the benchmark fails rather than time rejections.
- Evidently (``Report([DataDriftPreset()]).run(current, reference)``): one comparison of all
  current rows with all reference rows, its results read out of the snapshot.
- whylogs: profiling reference and current DataFrames, then ``calculate_drift_scores``.

So driftline does more work (a full evaluation every 6,000 rows instead of one comparison). Peers
are not driftline dependencies: they are installed, pinned, into a benchmark-only venv
(``.run/bench-venv``) created here, and run there as subprocesses. A peer that cannot be installed
is reported with pip's error, never with a number.

    .venv/bin/python benchmarks/bench_peers.py [--rows 1000000] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from common import REPO, RUN_DIR, emit, timed
from detectors.columns import Columns
from detectors.monitor import MonitorConfig
from detectors.profile import ReferenceBuilder, ReferenceProfile
from stream.replay import Replay
from stream.workload import NUMERIC_NAMES, AbruptShift, Workload

PEER_VENV = RUN_DIR / "bench-venv"
# pandas 3 breaks evidently 0.7.23 at import (pandas.core.dtypes.common.infer_dtype_from_object is
# gone); whylogs' drift scores live in whylogs.viz, which needs the [viz] extra (IPython).
COMMON_PINS = ["numpy==2.3.5", "pandas==2.3.3", "scipy==1.16.3"]
PEERS: dict[str, list[str]] = {
    "evidently": ["evidently==0.7.23", *COMMON_PINS],
    "whylogs": ["whylogs[viz]==1.6.4", *COMMON_PINS],
}
PEER_SCRIPTS = {name: REPO / "benchmarks" / "peers" / f"{name}_drift.py" for name in PEERS}
PEER_TIMEOUT_SECONDS = 900
EVENTS_PER_SECOND = 100.0
BATCH = 10_000
SHIFTED = ("num_01", "num_06")
SHIFT_SD = 0.5
MODEL_ID = "peers"
START = 1_790_000_000.0
DATA_FILES = ("reference.npy", "current.npy", "current_score.npy", "columns.json")


def write_data(rows: int) -> Path:
    """Reference and current rows as .npy (written once per size), with the column names. The
    current rows' model scores go along for driftline's events, which need a prediction; no tool
    tests them (the reference has features only)."""
    folder = RUN_DIR / "bench-data" / f"peers-{rows}"
    if all((folder / name).exists() for name in DATA_FILES):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    workload = Workload(seed=5, model_id=MODEL_ID)
    reference = workload.reference(rows)
    np.save(folder / "reference.npy", np.column_stack([reference[name] for name in NUMERIC_NAMES]))
    shift = [AbruptShift(features=SHIFTED, start=rows // 2, shift_sd=SHIFT_SD)]
    current = [workload.generate(start, min(start + 100_000, rows), shift) for start in range(0, rows, 100_000)]
    np.save(folder / "current.npy", np.concatenate([batch.numeric for batch in current]))
    np.save(folder / "current_score.npy", np.concatenate([batch.score for batch in current]))
    (folder / "columns.json").write_text(json.dumps(list(NUMERIC_NAMES)))
    return folder


def build_reference(reference: np.ndarray) -> tuple[float, ReferenceProfile]:
    """Seconds spent in ``ReferenceBuilder`` (its column entry, fed 50,000-row chunks) and the profile."""
    builder = ReferenceBuilder(numeric=NUMERIC_NAMES)

    def build() -> ReferenceProfile:
        for start in range(0, len(reference), 50_000):
            chunk = reference[start : start + 50_000]
            builder.add_columns({name: chunk[:, j] for j, name in enumerate(NUMERIC_NAMES)})
        return builder.build(MODEL_ID, "1", source="bench-data", created_at=0.0)

    return timed(build)


def columns_of(current: np.ndarray, score: np.ndarray, timestamps: np.ndarray, start: int, stop: int) -> Columns:
    n = stop - start
    no_flags = np.zeros(n, dtype=bool)
    nothing = np.empty(n, dtype=object)
    versions = np.empty(n, dtype=object)
    versions[:] = "1"
    return Columns(
        numeric={name: current[start:stop, j] for j, name in enumerate(NUMERIC_NAMES)},
        categorical={},
        type_error=dict.fromkeys(NUMERIC_NAMES, no_flags),
        absent=dict.fromkeys(NUMERIC_NAMES, no_flags),
        unknown_features=nothing,
        score=score[start:stop],
        predicted_class=nothing,
        latency_ms=np.full(n, np.nan),
        error=no_flags,
        timestamp=timestamps[start:stop],
        model_version=versions,
        segment={},
    )


def json_events(current: np.ndarray, score: np.ndarray, timestamps: np.ndarray) -> list[bytes]:
    return [
        orjson.dumps(
            {
                "prediction_id": f"p-{i}",
                "model_id": MODEL_ID,
                "model_version": "1",
                "timestamp": timestamp,
                "features": dict(zip(NUMERIC_NAMES, row)),
                "prediction": {"score": row_score},
            }
        )
        for i, (timestamp, row, row_score) in enumerate(zip(timestamps.tolist(), current.tolist(), score.tolist()))
    ]


def drifted(engine: Replay) -> list[str]:
    """Features that had a firing alert during the replay."""
    alerts = [alert for evaluation in engine.evaluations for alert in evaluation.alerts]
    return sorted({alert["feature"] for alert in alerts if alert["status"] == "firing"})


def run_driftline(data: Path) -> dict[str, Any]:
    reference_rows, current, score = (np.load(data / name) for name in DATA_FILES[:3])
    rows = len(current)
    timestamps = START + np.arange(rows) / EVENTS_PER_SECOND
    reference_seconds, reference = build_reference(reference_rows)
    config = MonitorConfig.from_mapping({"model_id": MODEL_ID, "reference": "bench-data"})

    def columns_path() -> Replay:
        engine = Replay(config, reference, keep_evaluations=True)
        for start in range(0, rows, BATCH):
            engine.feed_columns(columns_of(current, score, timestamps, start, min(start + BATCH, rows)))
        engine.finish()
        return engine

    columns_seconds, columns_engine = timed(columns_path)
    values = json_events(current, score, timestamps)

    def json_path() -> Replay:
        engine = Replay(config, reference, keep_evaluations=True)
        for start in range(0, rows, BATCH):
            engine.feed(values[start : start + BATCH])
        engine.finish()
        return engine

    json_seconds, json_engine = timed(json_path)
    for path, engine in (("columns", columns_engine), ("JSON", json_engine)):
        if engine.summary.accepted != rows:
            rejects = dict(engine.summary.rejects)
            raise RuntimeError(f"the {path} path accepted {engine.summary.accepted:,} of {rows:,} rows; rejects: {rejects}")
    return {
        "rows": rows,
        "reference_rows": len(reference_rows),
        "reference_profile_seconds": round(reference_seconds, 3),
        "columns_path_seconds": round(columns_seconds, 3),
        "json_path_seconds": round(json_seconds, 3),
        "columns_path_rows_per_s": round(rows / columns_seconds),
        "json_path_rows_per_s": round(rows / json_seconds),
        "evaluations": columns_engine.summary.evaluations,
        "drifted_columns": drifted(columns_engine),
        "json_path_same_alerts": drifted(json_engine) == drifted(columns_engine),
        "mean_json_event_bytes": round(sum(map(len, values)) / rows),
    }


def ensure_peer(name: str) -> str | None:
    """Install ``name`` pinned into the benchmark venv (once); return pip's error, or None."""
    if not (PEER_VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    marker = PEER_VENV / f"installed-{name}.txt"
    wanted = "\n".join(PEERS[name])
    if marker.exists() and marker.read_text() == wanted:
        return None
    pip = subprocess.run(
        [str(PEER_VENV / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", *PEERS[name]],
        capture_output=True,
        text=True,
    )
    if pip.returncode != 0:
        return (pip.stderr or pip.stdout).strip()[-3000:]
    marker.write_text(wanted)
    return None


def run_peer(name: str, data: Path) -> dict[str, Any]:
    """The peer's own JSON report, or why there is none."""
    error = ensure_peer(name)
    if error is not None:
        return {"tool": name, "pins": PEERS[name], "error": f"pip install failed: {error}"}
    started = time.perf_counter()
    run = subprocess.run(
        [str(PEER_VENV / "bin" / "python"), str(PEER_SCRIPTS[name]), str(data)],
        capture_output=True,
        text=True,
        timeout=PEER_TIMEOUT_SECONDS,
    )
    if run.returncode != 0:
        return {"tool": name, "pins": PEERS[name], "error": f"exit {run.returncode}: {run.stderr.strip()[-3000:]}"}
    report = json.loads(run.stdout.strip().splitlines()[-1])
    report.update(pins=PEERS[name], process_seconds=round(time.perf_counter() - started, 3))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--smoke", action="store_true", help="20k rows, driftline only (seconds; no pip install)")
    args = parser.parse_args()
    rows = 20_000 if args.smoke else args.rows

    data = write_data(rows)
    driftline = run_driftline(data)
    if args.smoke:
        reason = "smoke mode: peers are installed from PyPI and run only in full mode (minutes)"
        peers = {name: {"tool": name, "pins": pins, "skipped": reason} for name, pins in PEERS.items()}
    else:
        peers = {name: run_peer(name, data) for name in PEERS}

    driftline_total = driftline["reference_profile_seconds"] + driftline["columns_path_seconds"]
    driftline_json_total = driftline["reference_profile_seconds"] + driftline["json_path_seconds"]
    ratios = {}
    for name, peer in peers.items():
        if "seconds" in peer:
            ratios[f"{name}_vs_driftline_columns"] = round(peer["seconds"] / driftline_total, 2)
            ratios[f"{name}_vs_driftline_json"] = round(peer["seconds"] / driftline_json_total, 2)
    emit(
        {
            "benchmark": "peers",
            "smoke": args.smoke,
            "rows": rows,
            "reference_rows": rows,
            "features": len(NUMERIC_NAMES),
            "shift": {"features": list(SHIFTED), "shift_sd": SHIFT_SD, "from_row": rows // 2},
            "data": str(data.relative_to(REPO)),
            "driftline": {
                **driftline,
                "seconds_with_reference_columns_path": round(driftline_total, 3),
                "seconds_with_reference_json_path": round(driftline_json_total, 3),
                "events_per_second_event_time": EVENTS_PER_SECOND,
                "batch": BATCH,
            },
            "peers": peers,
            "ratios": ratios,
            "ratio_meaning": (
                "peer seconds (its whole computation, data loading excluded) / "
                "driftline seconds (reference profile + replay)"
            ),
        }
    )


if __name__ == "__main__":
    main()
