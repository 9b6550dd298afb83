"""Helpers shared by the benchmarks (the scripts in this folder import it as ``common``): machine
facts, process memory and CPU time, timing, the workload's reference profile and its events as columns, and
printing a report.

Every benchmark is a script that prints one JSON report on stdout (``emit``); ``run_all.py`` runs
them as subprocesses, so each measures in a fresh process (RSS figures are that process's alone).
"""

from __future__ import annotations

import gc
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from detectors.columns import Columns
from detectors.monitor import MonitorConfig
from detectors.profile import ReferenceBuilder, ReferenceProfile
from stream.workload import CATEGORICAL_NAMES, FEATURE_NAMES, NUMERIC_NAMES, Batch, Workload

REPO = Path(__file__).resolve().parent.parent
RUN_DIR = REPO / ".run"
T = TypeVar("T")

_VERSIONED = ("numpy", "scipy", "orjson", "datasketches", "river", "driftline")


def machine_facts() -> dict[str, Any]:
    """Where a report was measured: cores, CPU, memory, Python and library versions, commit."""
    cpu_lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu_model = next((line.split(":", 1)[1].strip() for line in cpu_lines if line.startswith("model name")), platform.processor())
    memory_kib = int(_proc_status_field(Path("/proc/meminfo"), "MemTotal"))

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    commit, dirty = git("rev-parse", "--short", "HEAD"), bool(git("status", "--porcelain"))
    return {
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "cpu": cpu_model,
        "memory_gib": round(memory_kib / 2**20, 1),
        "load_average_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: metadata.version(name) for name in _VERSIONED},
        "git_commit": commit + ("+uncommitted" if dirty else ""),
    }


def _proc_status_field(path: Path, field: str) -> str:
    for line in path.read_text().splitlines():
        if line.startswith(field + ":"):
            return line.split()[1]
    raise KeyError(f"{field} not in {path}")


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of a process (this one by default) now (VmRSS of /proc/<pid>/status)."""
    return int(_proc_status_field(Path(f"/proc/{pid}/status"), "VmRSS")) * 1024


def cpu_seconds(pid: int | str = "self") -> float:
    """CPU time (user + system, all threads) a process (this one by default) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_bytes(pid: int | str = "self") -> int:
    """Highest resident set size of a process (this one by default) so far (VmHWM of /proc/<pid>/status)."""
    return int(_proc_status_field(Path(f"/proc/{pid}/status"), "VmHWM")) * 1024


def timed(function: Callable[[], T]) -> tuple[float, T]:
    """Wall seconds of one call after a garbage collection, and its result."""
    gc.collect()
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def workload_reference(
    workload: Workload, rows: int, sentinels: dict[str, list[float]] | None = None
) -> ReferenceProfile:
    """The reference profile of ``rows`` clean training rows of ``workload``, built like
    ``driftline profile build`` does (event-shaped rows through ``ReferenceBuilder``)."""
    columns = workload.reference(rows)
    features = {name: [None if value != value else value for value in columns[name].tolist()] for name in NUMERIC_NAMES}
    features.update({name: columns[name].tolist() for name in CATEGORICAL_NAMES})
    builder = ReferenceBuilder(numeric=NUMERIC_NAMES, categorical=CATEGORICAL_NAMES, sentinels=sentinels or {})
    chunk = 20_000
    for start in range(0, rows, chunk):
        stop = min(start + chunk, rows)
        builder.add(
            [
                {
                    "features": {name: features[name][i] for name in FEATURE_NAMES},
                    "prediction": {"score": score, "class": predicted},
                    "latency_ms": latency,
                }
                for i, score, predicted, latency in zip(
                    range(start, stop),
                    columns["prediction"][start:stop].tolist(),
                    columns["class"][start:stop].tolist(),
                    columns["latency_ms"][start:stop].tolist(),
                    strict=True,
                )
            ]
        )
    return builder.build(workload.model_id, workload.model_version, source="benchmark workload", created_at=0.0)


def default_config(workload: Workload, **overrides: Any) -> MonitorConfig:
    """The default monitor config of the workload's model, with top-level ``overrides``."""
    return MonitorConfig.from_mapping({"model_id": workload.model_id, "reference": "benchmark.profile", **overrides})


def batch_columns(workload: Workload, batch: Batch) -> Columns:
    """A generated batch as the columns its JSON events decode to (same values, without the JSON
    round trip), for benchmarks that feed ``Replay.feed_columns``."""
    n = len(batch)

    def objects(values: list[Any]) -> np.ndarray:
        column = np.empty(n, dtype=object)
        column[:] = values
        return column

    no_flags = np.zeros(n, dtype=bool)
    return Columns(
        numeric={name: batch.numeric_column(name).copy() for name in NUMERIC_NAMES},
        categorical={name: batch.categorical_column(name).copy() for name in CATEGORICAL_NAMES},
        type_error=dict.fromkeys(NUMERIC_NAMES, no_flags),
        absent=dict.fromkeys(FEATURE_NAMES, no_flags),
        unknown_features=objects([None] * n),
        score=np.where(batch.error, np.nan, batch.score),
        predicted_class=objects(
            [None if error else int(c) for error, c in zip(batch.error.tolist(), batch.predicted_class.tolist())]
        ),
        latency_ms=batch.latency_ms.copy(),
        error=batch.error.copy(),
        timestamp=batch.timestamp.copy(),
        model_version=objects([workload.model_version] * n),
        segment={},
    )


def emit(report: dict[str, Any]) -> None:
    """Print a benchmark's report as JSON on stdout (what ``run_all.py`` reads)."""
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
