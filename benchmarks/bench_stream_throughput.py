"""End-to-end ingest throughput on the real broker, next to a bare consume of the same topic (the ceiling).

``--events`` workload events (20 numeric + 5 categorical features, about 600 bytes each, 10,000
events/s of event time, default monitor config: 60 s base windows) are pre-loaded, lz4-compressed,
into an inference topic of 4 partitions — twice, into two deployments' topics, from one generation
pass. Then, on the same broker in the same run:

1. the ceiling: a bare confluent-kafka consumer (same fetch settings as the workers) reads the first
   topic in batches and ``orjson.loads`` every value, in a fresh process — once before the workers
   and once after them, and the ratios use the mean of the two;
2. one ingest worker — ``python -m stream run --role ingest``, i.e. the real ``IngestWorker`` and
   ``WindowAggregator`` as ``driftline run`` builds them: decode and validate every event (schema,
   types, time, duplicates), window sketches of every feature, partials, checkpoints, one Kafka
   transaction per batch — consumes the same topic;
3. two ingest workers (separate processes, one consumer group) consume the second topic;
4. one ingest worker consumes a third deployment whose model has a ``task``: the same predictions
   and, after each generated batch, labels for half of them (exponentially delayed, so shuffled),
   joined by the label join (``stream/join.py``) in the same worker. Its rate counts predictions
   and labels.

A worker's rate is measured between its first committed batch (for two workers: once both own
partitions) and the commit of the last event, from the group's committed offsets; the ceiling's
between its first batch and its last. Events per CPU second (all threads of the process) are
reported too, and the share of the ceiling by both: on a shared machine CPU seconds vary less than
wall-clock rates (other processes take turns on the cores between the runs). Targets: >= 100,000
events/s per worker and >= 50 % of the ceiling (wall clock).

    .venv/bin/python benchmarks/bench_stream_throughput.py [--events 1000000] [--batch-size 20000] [--smoke]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from common import cpu_seconds, emit
from streaming import (
    EVENT_PARTITIONS, GENERATE_BATCH, Deployment, broker, broker_facts, bulk_producer, in_fresh_process, mean_ceiling, produce,
    produce_workload, read_topic, time_workers,
)  # fmt: skip
from stream.ingest import BATCH_SIZE
from stream.settings import StackSettings
from stream.workload import Workload

EVENTS_PER_SECOND = 10_000.0
SIZE_SAMPLE = 10_000
TARGET_EVENTS_PER_SECOND = 100_000
TARGET_SHARE_OF_CEILING = 0.5
RUN_TIMEOUT_SECONDS = 900.0
LABEL_COVERAGE = 0.5


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` to 3 decimals; None when either is unknown (a run too short to time)."""
    return round(numerator / denominator, 3) if numerator and denominator else None


def bare_consume(bootstrap: str, topic: str, events: int, batch_size: int) -> dict[str, Any]:
    """The ceiling: batch consume + ``orjson.loads`` of every value, nothing else (run in a fresh process)."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"{topic}.ceiling", "enable.auto.commit": False,
        "isolation.level": "read_committed", "fetch.max.bytes": 64 * 1024 * 1024, "log_level": 3,
    })  # fmt: skip
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in range(EVENT_PARTITIONS)])
    decoded, started, deadline = 0, None, time.monotonic() + RUN_TIMEOUT_SECONDS
    try:
        while decoded < events:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the bare consumer read {decoded:,} of {events:,} events in {RUN_TIMEOUT_SECONDS:.0f} s")
            batch = [orjson.loads(message.value()) for message in consumer.consume(batch_size, timeout=1.0) if message.error() is None]
            if started is None and batch:  # the span starts after the first batch: connecting is not consuming
                started, first = (time.monotonic(), cpu_seconds()), len(batch)
            decoded += len(batch)
        seconds, cpu = time.monotonic() - started[0], cpu_seconds() - started[1]
    finally:
        consumer.close()
    measured = decoded - first
    return {"events": decoded, "measured_events": measured, "seconds": round(seconds, 2),
            "events_per_s": round(measured / seconds), "events_per_cpu_second": round(measured / cpu)}  # fmt: skip


def joined_outcomes(bootstrap: str, topic: str) -> dict[str, int]:
    """The records committed to the outcomes topic: joined predictions, and predictions lost to the
    join's memory cap (``join_evictions`` records carry their count)."""
    counts = {"joined": 0, "evicted": 0}
    for message in read_topic(bootstrap, topic):
        record = orjson.loads(message.value())
        if "label" in record:
            counts["joined"] += 1
        else:
            counts["evicted"] += record["count"]
    return counts


def measure_workers(
    deployment: Deployment, workers: int, events: int, batch_size: int, topic_roles: tuple[str, ...] = ("inference",)
) -> dict[str, Any]:
    """Run ``workers`` ingest workers over the pre-loaded topics (``events`` records in all); their
    committed rate and final counts."""
    progresses = [deployment.progress("ingest", role) for role in topic_roles]
    try:
        run = time_workers(deployment, "ingest", workers, events, lambda: sum(each.committed() for each in progresses), RUN_TIMEOUT_SECONDS, batch_size=batch_size)
    finally:
        for each in progresses:
            each.close()
    rate = run.measured / run.seconds if run.seconds > 0 else None
    return {
        "workers": workers,
        "batch_size": batch_size,
        "measured_events": run.measured,
        "seconds": round(run.seconds, 2),
        "events_per_s": round(rate) if rate else None,
        "events_per_s_per_worker": round(rate / workers) if rate else None,
        "events_per_cpu_second": round(run.measured / run.cpu_seconds) if run.cpu_seconds > 0 else None,
        "rss_mib_at_end": round(run.rss_mib, 1),
        "consumed": sum(worker.get("consumed", 0) for worker in run.final_counts.values()),
        "deadlettered": sum(worker.get("deadlettered", 0) for worker in run.final_counts.values()),
        "final_counts": run.final_counts,
    }


def produce_with_labels(settings: StackSettings, deployment: Deployment, workload: Workload, events: int) -> int:
    """Pre-load ``events`` predictions and, after each generated batch, the labels of a
    ``LABEL_COVERAGE`` share of them (delayed, shuffled); the number of labels."""
    producer, labels = bulk_producer(settings), 0
    for values, keys, batch in workload.batches(events, GENERATE_BATCH):
        produce(producer, deployment.inference_topic, keys, values)
        label_events = workload.labels(batch, coverage=LABEL_COVERAGE)
        labels += produce(producer, deployment.topics.name("labels"), label_events.keys, label_events.values)
    if producer.flush(300) != 0:
        raise RuntimeError("the producer could not deliver every event within 300 s")
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="records per consumed batch (driftline run's default)")
    parser.add_argument("--smoke", action="store_true", help="50k events (seconds)")
    args = parser.parse_args()
    events = 50_000 if args.smoke else args.events

    # Recent event times (the decoder rejects events too far in the past), 60 s windows that close along the way.
    start = 60 * (int(time.time() - 2 * events / EVENTS_PER_SECOND) // 60)
    workload = Workload(seed=21, model_id="throughput", events_per_second=EVENTS_PER_SECOND, start=float(start))
    sample = workload.serialize(workload.generate(0, min(events, SIZE_SAMPLE)))
    with (
        broker() as settings,
        Deployment(settings, "throughput-1", [workload], {}) as one,
        Deployment(settings, "throughput-2", [workload], {}) as two,
        Deployment(settings, "throughput-labels", [workload], {"task": "classification"}) as joining,
    ):
        preload_seconds = produce_workload(settings, [one.inference_topic, two.inference_topic], workload, events)
        labels = produce_with_labels(settings, joining, workload, events)
        ceiling_before = in_fresh_process(bare_consume, settings.kafka_bootstrap, one.inference_topic, events, args.batch_size)
        single = measure_workers(one, 1, events, args.batch_size)
        double = measure_workers(two, 2, events, args.batch_size)
        with_labels = measure_workers(joining, 1, events + labels, args.batch_size, ("inference", "labels"))
        outcomes = joined_outcomes(settings.kafka_bootstrap, joining.topics.name("outcomes"))
        ceiling_after = in_fresh_process(bare_consume, settings.kafka_bootstrap, one.inference_topic, events, args.batch_size)
        ceiling = {"events": events, **mean_ceiling(ceiling_before, ceiling_after, ("events_per_s", "events_per_cpu_second"))}
        facts = broker_facts(settings)

    share = ratio(single["events_per_s"], ceiling["events_per_s"])
    emit(
        {
            "benchmark": "stream_throughput",
            "smoke": args.smoke,
            "broker": facts,
            "events": events,
            "partitions": EVENT_PARTITIONS,
            "events_per_second_event_time": EVENTS_PER_SECOND,
            "config": "default monitor config (60 s base windows, evaluation over 5, no segments)",
            "producer": "lz4-compressed batches, linger 20 ms",
            "preload": {"seconds": round(preload_seconds, 1), "mean_event_bytes": round(np.mean([len(value) for value in sample]))},
            "ceiling": ceiling,
            "one_worker": single,
            "two_workers": double,
            "one_worker_with_labels": {"predictions": events, "labels": labels, "label_coverage": LABEL_COVERAGE, "outcomes": outcomes, **with_labels},
            "one_worker_vs_ceiling": share,
            "one_worker_vs_ceiling_per_cpu_second": ratio(single["events_per_cpu_second"], ceiling["events_per_cpu_second"]),
            "two_workers_vs_ceiling": ratio(double["events_per_s"], ceiling["events_per_s"]),
            "two_workers_vs_one": ratio(double["events_per_s"], single["events_per_s"]),
            "with_labels_vs_one_worker": ratio(with_labels["events_per_s"], single["events_per_s"]),
            "targets": {"events_per_s_per_worker": TARGET_EVENTS_PER_SECOND, "share_of_ceiling": TARGET_SHARE_OF_CEILING},
            "target_per_worker_met_by_one_worker": bool(single["events_per_s"] and single["events_per_s"] >= TARGET_EVENTS_PER_SECOND),
            "target_per_worker_met_by_two_workers": bool(double["events_per_s_per_worker"] and double["events_per_s_per_worker"] >= TARGET_EVENTS_PER_SECOND),
            "target_share_of_ceiling_met": bool(share and share >= TARGET_SHARE_OF_CEILING),
        }
    )


if __name__ == "__main__":
    main()
