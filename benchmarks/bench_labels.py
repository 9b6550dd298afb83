"""Concept-drift detection on public drift benchmarks: delay of each detection in labelled events.

For López-Lobo's SEA streams (abrupt and gradual, 20% label noise) and Losing's SEA stream (10%
label noise), whose features are stationary while the labelling rule changes at documented rows
(../shared/data/README.md): a logistic regression is fitted on the rows before the first drift and
kept fixed; its predictions are replayed as inference events (10 per second of event time) and the
``class`` column as labels, each delayed by an exponential delay (mean ``--label-delay`` seconds, so
labels arrive shuffled) and 3% never sent. ``driftline replay``'s core (``stream.replay.Replay`` with
its label join) takes both as raw events, interleaved in event time, with the monitor config's
performance block.

A concept-drift alert is attributed to the latest documented drift whose first label had arrived
before it; it *detects* that drift if it fires within ``--tolerance`` labelled events of that first
label, otherwise it is a false alarm (so is any alert before the first drift). The delay of a
detection is the number of labels that arrived between the drift's first label and the alert.

Variants: the default config (ADWIN on the overall and per-class error streams), ADWIN with DDM,
DDM and EDDM alone, and the same-run baseline ``overall_error_only`` (the default detector on the
overall error stream alone, as error-stream detectors are usually run); ``ratio_vs_overall_error_only``
is the mean delay over the drifts both detected, divided by the baseline's.

The tolerance (7,500 labels, three quarters of the distance between drifts) is wide because one
drift moves errors between classes: each class's error stream changes, and the slower of them is
detected a few thousand labels after the faster one. That second alert reacts to the same drift.

    .venv/bin/python benchmarks/bench_labels.py [--variants default,adwin,...] [--smoke]

References: López-Lobo, "Synthetic datasets for concept drift detection purposes", Harvard
Dataverse, doi:10.7910/DVN/5OWRGB. Losing, Hammer, Wersing, "KNN classifier with self adjusting
memory for heterogeneous concept drift", ICDM 2016.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from common import emit
from detectors.monitor import MonitorConfig
from detectors.performance import PerformanceEvaluation
from detectors.policy import WindowKey
from detectors.profile import ReferenceBuilder
from stream.replay import Replay

DATA_ENV = "DRIFTLINE_DATA"
DATA_CANDIDATES = (Path(__file__).resolve().parents[2] / "shared" / "data", Path("/work/shared/data"))
"""Where the public drift data sets live: the workspace's ``../shared/data`` beside this checkout, or
beside the workspace's main checkout when this one is a clone elsewhere (CI clones to a temporary folder)."""


def data_dir() -> Path:
    """The folder of the public data sets: ``$DRIFTLINE_DATA``, else the first candidate holding them."""
    explicit = os.environ.get(DATA_ENV)
    candidates = (Path(explicit),) if explicit else DATA_CANDIDATES
    for folder in candidates:
        if (folder / "losing_sea_data.csv.gz").is_file():
            return folder
    raise SystemExit(
        f"the public drift data sets (../shared/data) are not in {', '.join(map(str, candidates))}: "
        f"set {DATA_ENV} to the folder holding lopezlobo_sea_*.csv.gz and losing_sea_*.csv.gz"
    )


MODEL_ID = "sea"
EVENTS_PER_SECOND = 10.0
START = 1_790_000_000.0
SLICE_SECONDS = 60.0
NEVER_LABELLED = 0.03
TOLERANCE = 7_500


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str
    files: tuple[str, ...]
    drifts: tuple[int, ...]
    """Documented drift rows (0-based); for gradual drift, where the transition starts."""

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        if len(self.files) == 1:
            table = np.loadtxt(gzip.open(data_dir() / self.files[0]), delimiter=",", skiprows=1)
            return table[:, :-1], table[:, -1]
        features = np.loadtxt(gzip.open(data_dir() / self.files[0]), delimiter=",")
        return features, np.loadtxt(gzip.open(data_dir() / self.files[1]))


DATASETS = (
    Dataset("lopezlobo_sea_abrupt", ("lopezlobo_sea_0123_abrupto_noise_0.2.csv.gz",), (10_000, 20_000, 30_000)),
    Dataset("lopezlobo_sea_gradual", ("lopezlobo_sea_0123_gradual_noise_0.2.csv.gz",), (9_500, 20_000, 30_500)),
    Dataset("losing_sea", ("losing_sea_data.csv.gz", "losing_sea_class.csv.gz"), (12_500, 25_000, 37_500)),
)
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "overall_error_only": {"class_streams": 0},
    "adwin_ddm": {"detectors": ("adwin", "ddm")},
    "ddm": {"detectors": ("ddm",)},
    "eddm": {"detectors": ("eddm",)},
}


def fit_logistic(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Weights (features then intercept) of a logistic regression, by Newton's method."""
    design = np.c_[features, np.ones(len(features))]
    weights = np.zeros(design.shape[1])
    for _ in range(25):
        p = 1 / (1 + np.exp(-design @ weights))
        hessian = (design * (p * (1 - p))[:, None]).T @ design + 1e-6 * np.eye(weights.size)
        weights -= np.linalg.solve(hessian, design.T @ (p - labels))
    return weights


def monitor_config(variant: dict[str, Any], label_delay: float) -> MonitorConfig:
    config = MonitorConfig.from_mapping(
        {
            "model_id": MODEL_ID,
            "reference": "(fitted in memory)",
            "task": "classification",
            "performance": {"label_delay_seconds": 20 * label_delay},
        }
    )
    assert config.performance is not None
    return dataclasses.replace(config, performance=dataclasses.replace(config.performance, **variant))


def run(dataset: Dataset, variant: str, label_delay: float, seed: int, rows: int | None = None) -> dict[str, Any]:
    """Replay one dataset with one variant; the detections, delays and false alarms."""
    started = time.perf_counter()
    features, labels = dataset.load()
    if rows is not None:
        features, labels = features[:rows], labels[:rows]
    drifts = [drift for drift in dataset.drifts if drift < len(labels)]
    weights = fit_logistic(features[: drifts[0]], labels[: drifts[0]])
    score = 1 / (1 + np.exp(-(np.c_[features, np.ones(len(features))] @ weights)))
    names = [f"X{i + 1}" for i in range(features.shape[1])]
    events = [
        {"prediction_id": f"p{i}", "model_id": MODEL_ID, "model_version": "1", "timestamp": START + i / EVENTS_PER_SECOND,
         "features": dict(zip(names, row)), "prediction": {"score": s, "class": int(s >= 0.5)}}
        for i, (row, s) in enumerate(zip(features.tolist(), score.tolist()))
    ]  # fmt: skip
    builder = ReferenceBuilder()
    builder.add(events[: drifts[0]])
    reference = builder.build(MODEL_ID, "1", source=dataset.name)
    replay = Replay(monitor_config(VARIANTS[variant], label_delay), reference, keep_evaluations=True, labels=True)

    rng = np.random.default_rng(seed)
    sent = np.flatnonzero(rng.random(len(labels)) >= NEVER_LABELLED)
    label_time = np.array([event["timestamp"] for event in events])[sent] + rng.exponential(label_delay, sent.size)
    by_label_time = np.argsort(label_time, kind="stable")
    sent, label_time = sent[by_label_time], label_time[by_label_time]
    label_events = [
        orjson.dumps({"prediction_id": f"p{i}", "label": int(labels[i]), "timestamp": t, "model_id": MODEL_ID})
        for i, t in zip(sent.tolist(), label_time.tolist())
    ]

    raw = [orjson.dumps(event) for event in events]
    event_times = np.array([event["timestamp"] for event in events])
    alerts: list[dict] = []
    for slice_end in np.arange(START + SLICE_SECONDS, max(event_times[-1], label_time[-1]) + 2 * SLICE_SECONDS, SLICE_SECONDS):
        lo, hi = np.searchsorted(event_times, [slice_end - SLICE_SECONDS, slice_end])
        alerts += replay.feed(raw[lo:hi])[0]
        lo, hi = np.searchsorted(label_time, [slice_end - SLICE_SECONDS, slice_end])
        alerts += replay.feed_labels(label_events[lo:hi])[0]
    alerts += replay.finish()

    # The labelled index at which each concept-drift alert fired: the version's label count when
    # its performance window closed.
    labelled, fired = 0, []
    for evaluation in replay.performance_evaluations:
        if isinstance(evaluation, PerformanceEvaluation) and evaluation.key == WindowKey(MODEL_ID, "1"):
            labelled += evaluation.label_count
            fired += [(labelled, alert) for alert in evaluation.alerts if alert["status"] == "firing"]
    first_label = [int(np.argmax(sent >= drift)) for drift in drifts]
    detections = attribute([at for at, alert in fired if alert["kind"] == "concept_drift"], first_label)
    performance = attribute([at for at, alert in fired if alert["kind"] == "performance"], first_label)
    other_alerts = sorted({f"{a['kind']}/{a['statistic']['name']}" for a in alerts if a["kind"] not in ("concept_drift", "performance")})
    return {
        "dataset": dataset.name,
        "variant": variant,
        "rows": len(labels),
        "labels_sent": len(label_events),
        "joined": replay.summary.outcomes,
        "drifts": drifts,
        "first_label_of_drift": first_label,
        "concept_drift_delays": detections["delays"],
        "concept_drift_false_alarms": detections["false_alarms"],
        "concept_drift_alerts": len(detections["all"]),
        "performance_alert_delays": performance["delays"],
        "detections_by_detector": dict(replay.summary.concept_drift_detections),
        "other_alerts": other_alerts,
        "seconds": round(time.perf_counter() - started, 1),
    }


def attribute(fired_at: list[int], first_label: list[int]) -> dict[str, Any]:
    """Delay of the first alert after each drift (None: missed) and the labelled index of each false alarm."""
    delays: list[int | None] = [None] * len(first_label)
    false_alarms = []
    for at in fired_at:
        drift = max((k for k, first in enumerate(first_label) if first < at), default=None)
        if drift is None or at - first_label[drift] > TOLERANCE:
            false_alarms.append(at)
        elif delays[drift] is None:
            delays[drift] = at - first_label[drift]
    return {"delays": delays, "false_alarms": false_alarms, "all": fired_at}


def _mean_delay(results: list[dict[str, Any]]) -> float:
    delays = [d for r in results for d in r["concept_drift_delays"] if d is not None]
    return float(np.mean(delays)) if delays else math.nan


def _paired_ratio(results: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> float | None:
    """Mean delay over the drifts both detected, over the baseline's mean delay on them."""
    base = {r["dataset"]: r["concept_drift_delays"] for r in baseline}
    pairs = [(d, b) for r in results for d, b in zip(r["concept_drift_delays"], base[r["dataset"]]) if d is not None and b is not None]
    if not pairs or not sum(b for _, b in pairs):
        return None
    return round(sum(d for d, _ in pairs) / sum(b for _, b in pairs), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of: " + ", ".join(VARIANTS))
    parser.add_argument("--label-delay", type=float, default=60.0, help="mean label delay, seconds of event time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="the first 15,000 rows, default and baseline variants only")
    args = parser.parse_args()
    variants = ["default", "overall_error_only"] if args.smoke else args.variants.split(",")
    rows = 15_000 if args.smoke else None
    started = time.perf_counter()
    results = [run(dataset, variant, args.label_delay, args.seed, rows) for variant in variants for dataset in DATASETS]
    by_variant = {variant: [r for r in results if r["variant"] == variant] for variant in variants}
    summary = {
        variant: {
            "detected": sum(d is not None for r in runs for d in r["concept_drift_delays"]),
            "drifts": sum(len(r["drifts"]) for r in runs),
            "false_alarms": sum(len(r["concept_drift_false_alarms"]) for r in runs),
            "mean_delay_labels": round(_mean_delay(runs), 1),
        }
        for variant, runs in by_variant.items()
    }
    if "overall_error_only" in by_variant:
        for variant, runs in by_variant.items():
            summary[variant]["ratio_vs_overall_error_only"] = _paired_ratio(runs, by_variant["overall_error_only"])
    emit(
        {
            "benchmark": "labels",
            "smoke": args.smoke,
            "events_per_second_event_time": EVENTS_PER_SECOND,
            "label_delay_mean_seconds": args.label_delay,
            "never_labelled_share": NEVER_LABELLED,
            "tolerance_labels": TOLERANCE,
            "matching": "a concept_drift alert detects the latest drift whose first label arrived before it, "
            "if within tolerance_labels labels of that first label; otherwise it is a false alarm",
            "summary": summary,
            "runs": results,
            "seconds": round(time.perf_counter() - started, 1),
        }
    )


if __name__ == "__main__":
    main()
