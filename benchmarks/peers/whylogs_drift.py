"""whylogs profiles of reference and current data, then its drift scores (KS on the profiles' KLL
sketches); runs in the benchmark-only venv (.run/bench-venv).

    .run/bench-venv/bin/python benchmarks/peers/whylogs_drift.py DATA_DIR

Prints JSON: seconds to load the data into DataFrames, to profile each side, to compute the drift
scores, and the columns it categorised as DRIFT.
"""

import json
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import whylogs
from whylogs.viz.drift.column_drift_algorithms import calculate_drift_scores


def main(data_dir: Path) -> None:
    started = time.perf_counter()
    names = json.loads((data_dir / "columns.json").read_text())
    reference = pd.DataFrame(np.load(data_dir / "reference.npy"), columns=names)
    current = pd.DataFrame(np.load(data_dir / "current.npy"), columns=names)
    loaded = time.perf_counter()
    reference_view = whylogs.log(reference).view()
    profiled_reference = time.perf_counter()
    current_view = whylogs.log(current).view()
    profiled_current = time.perf_counter()
    scores = calculate_drift_scores(target_view=current_view, reference_view=reference_view, with_thresholds=True)
    done = time.perf_counter()
    drifted = sorted(name for name, score in scores.items() if score and score.get("drift_category") == "DRIFT")
    print(
        json.dumps(
            {
                "tool": "whylogs",
                "version": metadata.version("whylogs"),
                "rows": len(current),
                "reference_rows": len(reference),
                "load_seconds": round(loaded - started, 3),
                "profile_reference_seconds": round(profiled_reference - loaded, 3),
                "profile_current_seconds": round(profiled_current - profiled_reference, 3),
                "drift_seconds": round(done - profiled_current, 3),
                "seconds": round(done - loaded, 3),
                "methods": sorted({score["algorithm"] for score in scores.values() if score}),
                "drifted_columns": drifted,
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
