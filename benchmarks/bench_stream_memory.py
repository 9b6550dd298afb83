"""Resident memory of a streaming ingest worker as events flow through Kafka: does it stay flat?

One ``driftline run`` ingest worker (``python -m stream run --role ingest``: decode, duplicate
window, event-time windows of every feature, partials, checkpoints, one transaction per batch)
consumes a 4-partition inference topic while a separate process produces ``--events`` workload events
into it (10,000 events/s of event time, default monitor config: 60 s base windows, so windows keep
closing and being published). Every ``--checkpoint`` committed events the worker's RSS (VmRSS of
/proc/<pid>/status) is read; the claim to check is that it stays flat (within 5 %) from the first
checkpoint to the last: nothing the worker keeps grows with the stream.

    .venv/bin/python benchmarks/bench_stream_memory.py [--events 10000000] [--checkpoint 1000000] [--smoke]
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

from common import emit, peak_rss_bytes, rss_bytes
from streaming import MIB, Deployment, broker, broker_facts, produce_workload, wait_until
from stream.workload import Workload

EVENTS_PER_SECOND = 10_000.0
FLAT_TOLERANCE = 0.05
RUN_TIMEOUT_SECONDS = 1_800.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--checkpoint", type=int, default=1_000_000)
    parser.add_argument("--smoke", action="store_true", help="200k events, checkpoints every 50k (seconds)")
    args = parser.parse_args()
    events, checkpoint = (200_000, 50_000) if args.smoke else (args.events, args.checkpoint)
    if events % checkpoint:
        parser.error("--events must be a multiple of --checkpoint")

    # Recent event times (the decoder rejects events too far in the past).
    start = 60 * (int(time.time() - 2 * events / EVENTS_PER_SECOND) // 60)
    workload = Workload(seed=41, model_id="ingest-memory", events_per_second=EVENTS_PER_SECOND, start=float(start))
    samples = []
    with broker() as settings, Deployment(settings, "ingest-memory", [workload], {}) as deployment:
        worker = deployment.start("ingest")
        wait_until(lambda: deployment.members_with_partitions("ingest") == 1, "the ingest worker joins", deployment, 120)
        rss_idle = rss_bytes(worker.pid)
        progress = deployment.progress("ingest", "inference")
        started = time.monotonic()
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            producing = pool.submit(produce_workload, settings, [deployment.inference_topic], workload, events)
            try:
                while len(samples) < events // checkpoint:
                    committed = progress.committed()
                    if committed >= (len(samples) + 1) * checkpoint:
                        samples.append({"events": committed, "rss_mib": round(rss_bytes(worker.pid) / MIB, 1), "seconds": round(time.monotonic() - started, 1)})
                        continue
                    if time.monotonic() - started > RUN_TIMEOUT_SECONDS:
                        raise RuntimeError(f"the ingest worker committed {committed:,} of {events:,} events in {RUN_TIMEOUT_SECONDS:.0f} s")
                    if producing.done():
                        producing.result()  # raises the producer's error, if any
                    deployment.check_alive()
                    time.sleep(0.1)
            finally:
                progress.close()
            produce_seconds = producing.result()
        peak = peak_rss_bytes(worker.pid)
        counts = deployment.stop_workers()["ingest.0"]
        facts = broker_facts(settings)

    first, last = samples[0], samples[-1]
    growth = last["rss_mib"] / first["rss_mib"] - 1.0
    emit(
        {
            "benchmark": "ingest_worker_memory",
            "smoke": args.smoke,
            "broker": facts,
            "path": "python -m stream run --role ingest (IngestWorker + WindowAggregator), 4 partitions, default monitor config",
            "events": events,
            "checkpoint_every": checkpoint,
            "events_per_second_event_time": EVENTS_PER_SECOND,
            "rss_joined_idle_mib": round(rss_idle / MIB, 1),
            "rss_after_first_checkpoint_mib": first["rss_mib"],
            "rss_after_last_checkpoint_mib": last["rss_mib"],
            "rss_growth_first_to_last": round(growth, 4),
            "flat_tolerance": FLAT_TOLERANCE,
            "rss_flat": abs(growth) <= FLAT_TOLERANCE,
            "peak_rss_mib": round(peak / MIB, 1),
            "samples": samples,
            "seconds": last["seconds"],
            "producer_seconds": round(produce_seconds, 1),
            "final_counts": counts,
        }
    )


if __name__ == "__main__":
    main()
