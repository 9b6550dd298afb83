"""Memory of the replay path: process RSS as replayed events accumulate, and the size of the sketches.

One replay (default config, 100 events/s of event time: 6,000 events per 60 s base window) runs over
``--events`` workload events under a recurring drift, so alerts fire and resolve all along and the
alert policy's state is exercised, not just the sketches. RSS (VmRSS of /proc/self/status) is read
every ``--checkpoint`` events; the claim to check is that it stays flat (within 5 %) from the first
checkpoint to the last: windows close, evaluation windows slide, nothing grows with the stream.

Events are fed as columns (``Replay.feed_columns``, the same values their JSON decodes to): the
decoder's only state is its duplicate window, bounded by ``Limits.duplicate_window``, and feeding
bytes would spend most of the run serializing 10M events. Sizes are reported both as
``to_bytes()`` (what a checkpoint or a partial on Kafka carries) and ``nbytes`` (in memory).

    .venv/bin/python benchmarks/bench_memory.py [--events 10000000] [--checkpoint 1000000] [--smoke]
"""

from __future__ import annotations

import argparse
import gc
import time

import numpy as np

from common import batch_columns, default_config, emit, peak_rss_bytes, rss_bytes, workload_reference
from detectors.profile import WindowProfile
from stream.replay import Replay
from stream.workload import RecurringShift, Workload

EVENTS_PER_SECOND = 100.0
BATCH = 10_000
REFERENCE_ROWS = 100_000
FLAT_TOLERANCE = 0.05
MIB = 2**20


def sketch_sizes(profile: WindowProfile) -> dict[str, int]:
    """Mean serialized and in-memory bytes of one numeric and one categorical feature sketch, and of
    the whole profile."""

    def mean(values: list[int]) -> int:
        return round(float(np.mean(values)))

    numeric, categorical = profile.numeric.values(), profile.categorical.values()
    return {
        "events": profile.event_count,
        "numeric_sketch_bytes": mean([len(sketch.to_bytes()) for sketch in numeric]),
        "numeric_sketch_nbytes": mean([sketch.nbytes for sketch in numeric]),
        "categorical_sketch_bytes": mean([len(sketch.to_bytes()) for sketch in categorical]),
        "categorical_sketch_nbytes": mean([sketch.nbytes for sketch in categorical]),
        "profile_bytes": len(profile.to_bytes()),
        "profile_nbytes": profile.nbytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--checkpoint", type=int, default=1_000_000)
    parser.add_argument("--smoke", action="store_true", help="200k events, checkpoints every 50k (seconds)")
    args = parser.parse_args()
    events, checkpoint = (200_000, 50_000) if args.smoke else (args.events, args.checkpoint)
    if events % checkpoint or checkpoint % BATCH:
        parser.error(f"--events must be a multiple of --checkpoint, and --checkpoint of {BATCH}")

    workload = Workload(seed=11, model_id="memory", events_per_second=EVENTS_PER_SECOND)
    # On for 2 base windows (12,000 events) in every 10 (60,000): fires and resolves repeatedly.
    scenarios = [RecurringShift(features=("num_01", "num_07"), start=checkpoint // 2, period=60_000, duration=12_000)]
    reference = workload_reference(workload, REFERENCE_ROWS)
    engine = Replay(default_config(workload), reference)
    gc.collect()
    rss_before = rss_bytes()

    samples = []
    started = time.perf_counter()
    for start in range(0, events, BATCH):
        engine.feed_columns(batch_columns(workload, workload.generate(start, start + BATCH, scenarios)))
        fed = start + BATCH
        if fed % checkpoint == 0:
            gc.collect()
            samples.append(
                {
                    "events": fed,
                    "rss_mib": round(rss_bytes() / MIB, 1),
                    "evaluator_state_bytes": len(engine.evaluator.to_bytes()),
                    "retained_evaluations": len(engine.evaluations),
                    "firing_alerts_so_far": engine.summary.firing,
                }
            )
    engine.finish()
    seconds = time.perf_counter() - started

    first, last = samples[0], samples[-1]
    growth = last["rss_mib"] / first["rss_mib"] - 1.0
    base_window = engine.evaluator.new_profile()
    base_window.update(batch_columns(workload, workload.generate(0, int(60 * EVENTS_PER_SECOND))))
    evaluation_window = engine.evaluator.new_profile()
    evaluation_window.update(batch_columns(workload, workload.generate(0, int(300 * EVENTS_PER_SECOND))))
    emit(
        {
            "benchmark": "memory",
            "smoke": args.smoke,
            "path": "Replay.feed_columns (decode excluded; its duplicate window is bounded)",
            "events": events,
            "checkpoint_every": checkpoint,
            "events_per_second_event_time": EVENTS_PER_SECOND,
            "batch": BATCH,
            "reference_rows": REFERENCE_ROWS,
            "features": {"numeric": len(reference.profile.numeric), "categorical": len(reference.profile.categorical)},
            "scenario": [repr(scenario) for scenario in scenarios],
            "rss_before_replay_mib": round(rss_before / MIB, 1),
            "rss_after_first_checkpoint_mib": first["rss_mib"],
            "rss_after_last_checkpoint_mib": last["rss_mib"],
            "rss_growth_first_to_last": round(growth, 4),
            "flat_tolerance": FLAT_TOLERANCE,
            "rss_flat": abs(growth) <= FLAT_TOLERANCE,
            "peak_rss_mib": round(peak_rss_bytes() / MIB, 1),
            "samples": samples,
            "sketches": {
                "base_window_60s": sketch_sizes(base_window),
                "evaluation_window_300s": sketch_sizes(evaluation_window),
                "reference": sketch_sizes(reference.profile),
            },
            "evaluations": engine.summary.evaluations,
            "firing_alerts": engine.summary.firing,
            "resolved_alerts": engine.summary.resolved,
            "seconds": round(seconds, 1),
        }
    )


if __name__ == "__main__":
    main()
