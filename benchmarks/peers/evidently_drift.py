"""Evidently's DataDriftPreset on the benchmark data; runs in the benchmark-only venv (.run/bench-venv).

    .run/bench-venv/bin/python benchmarks/peers/evidently_drift.py DATA_DIR

Prints JSON: seconds to load the data into DataFrames, to run the report and to read its results
out, and the columns it found drifted.
"""

import json
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset


def main(data_dir: Path) -> None:
    started = time.perf_counter()
    names = json.loads((data_dir / "columns.json").read_text())
    reference = pd.DataFrame(np.load(data_dir / "reference.npy"), columns=names)
    current = pd.DataFrame(np.load(data_dir / "current.npy"), columns=names)
    loaded = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current, reference)
    ran = time.perf_counter()
    metrics = snapshot.dict()["metrics"]
    drifted = sorted(
        metric["config"]["column"]
        for metric in metrics
        if metric["config"].get("type") == "evidently:metric_v2:ValueDrift"
        and float(metric["value"]) >= float(metric["config"]["threshold"])
    )
    methods = sorted({metric["config"]["method"] for metric in metrics if "method" in metric["config"]})
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "tool": "evidently",
                "version": metadata.version("evidently"),
                "rows": len(current),
                "reference_rows": len(reference),
                "load_seconds": round(loaded - started, 3),
                "run_seconds": round(ran - loaded, 3),
                "results_seconds": round(done - ran, 3),
                "seconds": round(done - loaded, 3),
                "methods": methods,
                "drifted_columns": drifted,
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
