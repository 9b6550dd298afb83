"""One evaluate worker serving many models: windows merged and evaluated per second, against a bare
read of the same partials.

``--models`` models (default 100) share the workload's distributions, a reference profile each and
the default monitor config (60 s base windows, evaluation over the last 5). Each model gets
``--windows`` base windows of ``--events-per-window`` events (and one window more, whose events
close the last measured one), pre-loaded into the 4 inference partitions window by window, the
models interleaved as live traffic has them. One ingest worker turns
them into partials — a window partial per model, window and source partition, and watermark
progress — and is stopped. The partials topic is then read, in the same run, by:

1. the ceiling: a bare consume that decodes every record and deserializes every window profile
   (what evaluate must do before it can merge anything), nothing else;
2. one evaluate worker (``driftline run --role evaluate``): it merges a window's partials once all
   source partitions have passed it, tests the merged window against the model's reference (drift
   statistics, data quality, detectors, policy), publishes alerts, and checkpoints every model it
   changed in the batch's transaction.

The worker's rate runs from its partitions' assignment (one batch may hold every record) to the
commit of the last partials record (exact record counts: offsets taken by transaction markers are
not counted); ``evaluations`` are the evaluation windows it tested, one per closed base window of
each model, and its evaluations per second are its records per second times the evaluations per
record.

    .venv/bin/python benchmarks/bench_evaluate.py [--models 100] [--windows 8] [--events-per-window 1000] [--smoke]
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import time
from typing import Any

from common import cpu_seconds, emit
from streaming import (
    EVENT_PARTITIONS,
        MIB,
    Deployment,
    broker,
    broker_facts,
    bulk_producer,
    in_fresh_process,
    mean_ceiling,
    produce,
    read_topic,
    time_workers,
    wait_until,
)
from detectors.profile import WindowProfile
from stream.partials import WindowPartial, decode_record
from stream.settings import StackSettings
from stream.workload import Workload

BASE_WINDOW_SECONDS = 60
INGEST_IDLE_SECONDS = 5.0
EVALUATE_IDLE_SECONDS = 60.0
"""Evaluate's idle timeout is twice this: long enough that no window closes by timeout in the run."""
RUN_TIMEOUT_SECONDS = 900.0


def model_workloads(models: int, windows: int, events_per_window: int) -> list[Workload]:
    """One workload per model, starting on a minute boundary recent enough for the decoder."""
    rate = events_per_window / BASE_WINDOW_SECONDS
    start = BASE_WINDOW_SECONDS * (int(time.time()) // BASE_WINDOW_SECONDS - windows - 2)
    first = Workload(seed=51, model_id="many-000", events_per_second=rate, start=float(start))
    return [dataclasses.replace(first, seed=51 + k, model_id=f"many-{k:03d}") for k in range(models)]


def preload(settings: StackSettings, topic: str, workloads: list[Workload], windows: int, events_per_window: int) -> float:
    """Produce every model's events, a base window of every model at a time, as live traffic
    interleaves them; the seconds it took.

    Model after model would not do: a source partition that has not reached a model's block yet
    goes idle for it, and evaluate closes the model's windows without that partition."""
    started, producer = time.monotonic(), bulk_producer(settings)
    for window in range(windows):
        for workload in workloads:
            batch = workload.generate(window * events_per_window, (window + 1) * events_per_window)
            produce(producer, topic, workload.keys(batch), workload.serialize(batch))
    if producer.flush(300) != 0:
        raise RuntimeError("the producer could not deliver every event within 300 s")
    return time.monotonic() - started


@dataclasses.dataclass
class PartialsTopic:
    """What the ingest worker left in the partials topic: record counts, bytes, and each partition's
    record offsets (to count the records a committed offset covers)."""

    partials: int = 0
    progress: int = 0
    profile_bytes: int = 0
    offsets: dict[int, list[int]] = dataclasses.field(default_factory=dict)

    @classmethod
    def read(cls, bootstrap: str, topic: str) -> PartialsTopic:
        found = cls()
        for message in read_topic(bootstrap, topic):
            record = decode_record(message.value())
            found.offsets.setdefault(message.partition(), []).append(message.offset())
            if isinstance(record, WindowPartial):
                found.partials += 1
                found.profile_bytes += len(record.profile)
            else:
                found.progress += 1
        return found

    @property
    def records(self) -> int:
        return self.partials + self.progress

    def records_before(self, committed: dict[int, int]) -> int:
        """Records below each partition's committed offset."""
        return sum(bisect.bisect_left(self.offsets.get(partition, []), offset) for partition, offset in committed.items())


def bare_read(bootstrap: str, topic: str) -> dict[str, Any]:
    """The ceiling: consume + decode every partials record + deserialize every window profile (run in a fresh process)."""
    records = profiles = 0
    started = None
    for message in read_topic(bootstrap, topic):
        record = decode_record(message.value())
        if isinstance(record, WindowPartial):
            WindowProfile.from_bytes(record.profile)
            profiles += 1
        records += 1
        # The span runs from the first record (connecting is not consuming) to the last (not to the end-of-partition signals).
        last = (time.monotonic(), cpu_seconds())
        started = started or last
    seconds, cpu, measured = last[0] - started[0], last[1] - started[1], records - 1
    return {"records": records, "profiles": profiles, "seconds": round(seconds, 2),
            "records_per_s": round(measured / seconds), "records_per_cpu_second": round(measured / cpu)}  # fmt: skip


def build_partials(deployment: Deployment, events: int, expected_partials: int) -> PartialsTopic:
    """Run one ingest worker over the pre-loaded events until every measured window's partials are
    published; stop it and read what it left in the partials topic."""
    progress = deployment.progress("ingest", "inference")
    try:
        deployment.start("ingest", 0, idle_seconds=INGEST_IDLE_SECONDS)
        wait_until(lambda: progress.committed() >= events, f"ingest commits {events:,} events", deployment, RUN_TIMEOUT_SECONDS)
    finally:
        progress.close()
    counts = deployment.stop_workers()["ingest.0"]
    if counts.get("deadlettered"):
        raise RuntimeError(f"the ingest worker dead-lettered {counts['deadlettered']:,} events: {counts}")
    found = PartialsTopic.read(deployment.settings.kafka_bootstrap, deployment.topics.name("partials"))
    if found.partials != expected_partials:
        raise RuntimeError(f"expected {expected_partials:,} window partials (models x windows x partitions), found {found.partials:,}")
    return found


def measure_evaluate(deployment: Deployment, found: PartialsTopic) -> dict[str, Any]:
    progress = deployment.progress("evaluate", "partials")
    try:
        run = time_workers(
            deployment, "evaluate", 1, found.records, lambda: found.records_before(progress.offsets()), RUN_TIMEOUT_SECONDS,
            from_assignment=True, idle_seconds=EVALUATE_IDLE_SECONDS,
        )  # fmt: skip
    finally:
        progress.close()
    counts = run.final_counts["evaluate.0"]
    # The span starts after the first commit: its evaluations are the measured records' share of them all.
    evaluations = counts.get("evaluations", 0) * run.measured / found.records
    return {
        "measured_records": run.measured,
        "seconds": round(run.seconds, 2),
        "records_per_s": round(run.measured / run.seconds) if run.seconds > 0 else None,
        "records_per_cpu_second": round(run.measured / run.cpu_seconds) if run.cpu_seconds > 0 else None,
        "evaluations_per_s": round(evaluations / run.seconds, 1) if run.seconds > 0 else None,
        "ms_per_evaluation": round(1000 * run.cpu_seconds / evaluations, 2) if evaluations else None,
        "rss_mib_at_assignment": round(run.rss_mib_at_start, 1),
        "rss_mib_at_end": round(run.rss_mib, 1),
        "final_counts": counts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--windows", type=int, default=8, help="base windows evaluated per model")
    parser.add_argument("--events-per-window", type=int, default=1_000, help="events per model and base window")
    parser.add_argument("--smoke", action="store_true", help="3 models x 3 windows x 600 events (seconds)")
    args = parser.parse_args()
    models, windows, per_window = (3, 3, 600) if args.smoke else (args.models, args.windows, args.events_per_window)
    workloads = model_workloads(models, windows, per_window)
    events_per_model = (windows + 1) * per_window
    with broker() as settings, Deployment(settings, "evaluate", workloads, {}) as deployment:
        preload_seconds = preload(settings, deployment.inference_topic, workloads, windows + 1, per_window)
        found = build_partials(deployment, models * events_per_model, models * windows * EVENT_PARTITIONS)
        partials_topic = deployment.topics.name("partials")
        ceiling_before = in_fresh_process(bare_read, settings.kafka_bootstrap, partials_topic)
        evaluate = measure_evaluate(deployment, found)
        ceiling_after = in_fresh_process(bare_read, settings.kafka_bootstrap, partials_topic)
        facts = broker_facts(settings)

    ceiling = mean_ceiling(ceiling_before, ceiling_after, ("records_per_s", "records_per_cpu_second"))
    counts = evaluate["final_counts"]
    emit(
        {
            "benchmark": "evaluate_worker_many_models",
            "smoke": args.smoke,
            "broker": facts,
            "models": models,
            "windows_per_model": windows,
            "events_per_window": per_window,
            "events": models * events_per_model,
            "config": "default monitor config (60 s base windows, evaluation over 5, no segments), one reference profile per model",
            "preload_seconds": round(preload_seconds, 1),
            "partials": {"window_partials": found.partials, "progress_records": found.progress, "records": found.records,
                         "mean_profile_bytes": round(found.profile_bytes / found.partials), "mib": round(found.profile_bytes / MIB, 1)},
            "ceiling": ceiling,
            "evaluate_worker": evaluate,
            "evaluations": counts.get("evaluations", 0),
            "expected_evaluations": models * windows,
            "alerts": counts.get("alerts", 0),
            # What a model's evaluation state (window rings, pending partials, detectors) adds to the worker.
            "state_mib_per_model": round((evaluate["rss_mib_at_end"] - evaluate["rss_mib_at_assignment"]) / models, 2),
            "evaluate_vs_ceiling": round(evaluate["records_per_s"] / ceiling["records_per_s"], 3) if evaluate["records_per_s"] else None,
            "evaluate_vs_ceiling_per_cpu_second": (
                round(evaluate["records_per_cpu_second"] / ceiling["records_per_cpu_second"], 3) if evaluate["records_per_cpu_second"] else None
            ),
        }
    )  # fmt: skip


if __name__ == "__main__":
    main()
