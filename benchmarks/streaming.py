"""What the streaming benchmarks share: a broker of their own, a deployment (fresh topics, a monitored
workload model, ``driftline run`` worker processes), bulk producing, and how far a consumer group has
committed.

The broker: with ``DRIFTLINE_KAFKA`` and ``DRIFTLINE_REDIS`` set (``make test`` points the smoke runs
at the test session's stack this way), those; otherwise the project's local stack on ports
29092/29093/26379 in ``.run/bench-stack`` — never the dev stack (9092) nor the test stack (19092),
whose traffic would mix with the measurement. A stack started here is stopped and purged here (10M
events are gigabytes of topic data). Topic prefixes are unique per run (``DRIFTLINE_TOPIC_PREFIX``,
default ``bench``, then the benchmark's name and a random suffix) and the topics are deleted at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from common import REPO, RUN_DIR, cpu_seconds, rss_bytes, workload_reference
from stream import stack
from stream.ingest import BATCH_SIZE
from stream.settings import StackSettings, TopicSettings
from stream.topics import create_topics, plan_topics
from stream.workload import Workload

BENCH_PORTS = {"kafka_port": 29092, "controller_port": 29093, "redis_port": 26379}
EVENT_PARTITIONS = 4
MODEL_PARTITIONS = 2
REFERENCE_ROWS = 50_000
WORKER_STOP_SECONDS = 120.0
GENERATE_BATCH = 8_192
COORDINATOR_NOT_READY = {KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR}
MIB = 2**20


def bench_settings() -> StackSettings:
    """The services given by DRIFTLINE_KAFKA/DRIFTLINE_REDIS, else the bench stack's."""
    defaults = StackSettings()
    if defaults.external_kafka and defaults.external_redis:
        return defaults
    return defaults.with_overrides(run_dir=RUN_DIR / "bench-stack", external_kafka="", external_redis="", **BENCH_PORTS)


@contextlib.contextmanager
def broker() -> Iterator[StackSettings]:
    """The benchmarks' Kafka and Redis, running; stopped and purged at the end if started here."""
    settings = bench_settings()
    started = stack.up(settings)
    try:
        yield settings
    finally:
        if started.kafka_started or started.redis_started:
            stack.down(settings, purge=True)


def broker_facts(settings: StackSettings) -> dict[str, Any]:
    """Which broker a report was measured on (the bench stack's, or one given by DRIFTLINE_KAFKA)."""
    bench_stack = settings.kafka_bootstrap == f"127.0.0.1:{BENCH_PORTS['kafka_port']}"
    return {"kafka": f"Apache Kafka {stack.kafka_version()}" if bench_stack else "external", "bootstrap": settings.kafka_bootstrap}


def bulk_producer(settings: StackSettings) -> Producer:
    """A producer for pre-loading topics: large lz4-compressed batches, as a busy model server's client sends."""
    return Producer({
        "bootstrap.servers": settings.kafka_bootstrap,
        "linger.ms": 20,
        "batch.size": 1_000_000,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 500_000,
        "log_level": 3,
    })


def produce(producer: Producer, topic: str, keys: Iterable[bytes], values: Iterable[bytes]) -> int:
    """Queue every (key, value); waits for room when the local queue is full. Returns the count."""
    count = 0
    for key, value in zip(keys, values, strict=True):
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:  # the queue is full: let librdkafka send, then retry
                producer.poll(0.05)
        count += 1
    producer.poll(0)
    return count


def produce_workload(settings: StackSettings, topics: list[str], workload: Workload, events: int) -> float:
    """Generate the workload's first ``events`` events once and produce them into every topic; the seconds it took."""
    started = time.monotonic()
    producer = bulk_producer(settings)
    for values, keys, _ in workload.batches(events, GENERATE_BATCH):
        for topic in topics:
            produce(producer, topic, keys, values)
    if producer.flush(300) != 0:
        raise RuntimeError("the producer could not deliver every event within 300 s")
    return time.monotonic() - started


def in_fresh_process(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a fresh (spawned) Python process, whose imports, heap and CPU time are
    its own: how the ceilings are measured."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def mean_ceiling(before: dict[str, Any], after: dict[str, Any], rates: tuple[str, ...]) -> dict[str, Any]:
    """A ceiling measured before and after the workers, and the mean of its ``rates``: the machine's
    speed drifts during a run, and bracketing the workers keeps that drift out of the ratios."""
    return {**{rate: round((before[rate] + after[rate]) / 2) for rate in rates}, "before": before, "after": after}


def read_topic(bootstrap: str, topic: str, timeout: float = 600.0) -> Iterator[Message]:
    """Every committed record of ``topic``, from the beginning of each partition to its current end
    (read_committed: the records of aborted transactions are skipped, as workers skip them)."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"{topic}.reader", "enable.auto.commit": False,
        "isolation.level": "read_committed", "enable.partition.eof": True, "fetch.max.bytes": 64 * MIB, "log_level": 3,
    })  # fmt: skip
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in partitions])
        unread, deadline = set(partitions), time.monotonic() + timeout
        while unread:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{topic}: partitions {sorted(unread)} not read to their end in {timeout:.0f} s")
            for message in consumer.consume(10_000, timeout=1.0):
                if message.error() is None:
                    yield message
                elif message.error().code() == KafkaError._PARTITION_EOF:
                    unread.discard(message.partition())
                else:
                    raise KafkaException(message.error())
    finally:
        consumer.close()


class GroupProgress:
    """How many records of a topic a consumer group has committed, summed over its partitions.

    Asked with read_uncommitted isolation: a read_committed offset fetch asks for stable offsets and
    waits while a worker's transaction is open — which, for a busy worker, is nearly always."""

    def __init__(self, settings: StackSettings, group: str, topic: str, partitions: int) -> None:
        self._positions = [TopicPartition(topic, partition) for partition in range(partitions)]
        self._consumer = Consumer({
            "bootstrap.servers": settings.kafka_bootstrap, "group.id": group, "isolation.level": "read_uncommitted", "log_level": 3,
        })  # fmt: skip

    def committed(self) -> int:
        return sum(self.offsets().values())

    def offsets(self) -> dict[int, int]:
        """The committed offset of each partition (0 before the first commit, or while a fresh broker
        cannot say yet)."""
        try:
            positions = self._consumer.committed(self._positions, timeout=30)
        except KafkaException as exc:
            if exc.args[0].code() in COORDINATOR_NOT_READY:
                return {position.partition: 0 for position in self._positions}
            raise
        return {position.partition: max(position.offset, 0) for position in positions}

    def close(self) -> None:
        self._consumer.close()


class Deployment:
    """One benchmark's topics (``<prefix>.*``, 4 event partitions), its monitored models (one per
    workload: a reference profile of the workloads' clean reference set and a monitor config) and its ``driftline run``
    worker processes (their JSON logs in ``.run/bench-runs/<prefix>``, kept if the run fails).
    Closing it stops the workers and deletes the topics.
    """

    def __init__(self, settings: StackSettings, name: str, workloads: Sequence[Workload], config: Mapping[str, Any]) -> None:
        self.settings = settings
        base = os.environ.get("DRIFTLINE_TOPIC_PREFIX") or "bench"
        self.topics = TopicSettings(prefix=f"{base}-{name}-{uuid.uuid4().hex[:8]}", event_partitions=EVENT_PARTITIONS, model_partitions=MODEL_PARTITIONS)
        # Quiet: its errors raise anyway, and it would log reconnect attempts once the stack has stopped.
        self.admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 0})
        create_topics(self.admin, plan_topics(self.topics))
        self.folder = RUN_DIR / "bench-runs" / self.topics.prefix
        self.folder.mkdir(parents=True, exist_ok=True)
        # The workloads draw from the same clean distributions: one reference, relabelled per model.
        reference = workload_reference(workloads[0], REFERENCE_ROWS)
        self.config_paths: list[Path] = []
        for workload in workloads:
            model = workload.model_id
            (self.folder / f"{model}.profile").write_bytes(dataclasses.replace(reference, model_id=model).to_bytes())
            self.config_paths.append(self.folder / f"{model}.yaml")
            self.config_paths[-1].write_text(yaml.safe_dump({"model_id": model, "reference": f"{model}.profile", **config}))
        self.workers: dict[tuple[str, int], subprocess.Popen] = {}

    @property
    def inference_topic(self) -> str:
        return self.topics.name("inference")

    def start(self, role: str, slot: int = 0, *, idle_seconds: float = 30.0, batch_size: int = BATCH_SIZE) -> subprocess.Popen:
        """Start one worker slot as ``driftline run`` does (``python -m stream run --role R --slot S``)."""
        command = [
            sys.executable, "-m", "stream", "run", f"--role={role}", f"--slot={slot}",
            *(f"--config={path}" for path in self.config_paths), f"--prefix={self.topics.prefix}", f"--idle-seconds={idle_seconds}", f"--batch-size={batch_size}",
        ]  # fmt: skip
        env = {**os.environ, "DRIFTLINE_KAFKA": self.settings.kafka_bootstrap, "DRIFTLINE_REDIS": self.settings.redis_url}
        with open(self.log_path(role, slot), "wb") as log:
            process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log)
        self.workers[(role, slot)] = process
        return process

    def log_path(self, role: str, slot: int) -> Path:
        return self.folder / f"{role}-{slot}.log"

    def progress(self, role: str, topic_role: str) -> GroupProgress:
        """The committed progress of a role's consumer group on one of the deployment's topics."""
        partitions = EVENT_PARTITIONS if topic_role in ("inference", "labels") else MODEL_PARTITIONS
        return GroupProgress(self.settings, f"{self.topics.prefix}.{role}", self.topics.name(topic_role), partitions)

    def members_with_partitions(self, role: str) -> int:
        """How many members of the role's consumer group own partitions now (0 while the broker cannot say yet)."""
        group = f"{self.topics.prefix}.{role}"
        try:
            description = self.admin.describe_consumer_groups([group])[group].result(10)
        except KafkaException as exc:
            if exc.args[0].code() in COORDINATOR_NOT_READY:  # a fresh broker still loading its group coordinator
                return 0
            raise
        return sum(1 for member in description.members if member.assignment.topic_partitions)

    def check_alive(self) -> None:
        for (role, slot), process in self.workers.items():
            if process.poll() is not None:
                raise RuntimeError(f"the {role} worker {slot} exited with {process.returncode}: {self._log_tail(role, slot)}")

    def resources(self) -> dict[str, float]:
        """CPU seconds used so far and resident MiB now, summed over the running workers."""
        pids = [process.pid for process in self.workers.values()]
        return {"cpu_seconds": sum(cpu_seconds(pid) for pid in pids), "rss_mib": sum(rss_bytes(pid) for pid in pids) / MIB}

    def stop_workers(self) -> dict[str, dict[str, Any]]:
        """SIGTERM every worker (each commits its batch and exits 0); their final counts by ``role.slot``."""
        for process in self.workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        counts = {}
        for (role, slot), process in self.workers.items():
            code = process.wait(WORKER_STOP_SECONDS)
            if code != 0:
                raise RuntimeError(f"the {role} worker {slot} exited with {code}: {self._log_tail(role, slot)}")
            counts[f"{role}.{slot}"] = self._final_counts(role, slot)
        self.workers.clear()
        return counts

    def close(self) -> None:
        for process in self.workers.values():
            if process.poll() is None:
                process.kill()
                process.wait(30)
        self.workers.clear()
        names = [plan.name for plan in plan_topics(self.topics)]
        for future in self.admin.delete_topics(names, operation_timeout=60).values():
            with contextlib.suppress(Exception):  # already gone is fine: deleting is housekeeping
                future.result()

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, error_type: type | None, *_: object) -> None:
        self.close()
        if error_type is None:  # the worker logs stay for a failed run only
            shutil.rmtree(self.folder, ignore_errors=True)

    def _final_counts(self, role: str, slot: int) -> dict[str, Any]:
        """The counts of the worker's last JSON log line that has them ("stopped")."""
        for line in reversed(self.log_path(role, slot).read_bytes().splitlines()):
            with contextlib.suppress(orjson.JSONDecodeError):
                entry = orjson.loads(line)
                if entry.get("msg") == "stopped":
                    return entry["fields"]
        return {}

    def _log_tail(self, role: str, slot: int) -> str:
        return " | ".join(self.log_path(role, slot).read_text(errors="replace").strip().splitlines()[-5:])


@dataclasses.dataclass(frozen=True)
class TimedRun:
    """A worker group's run over pre-loaded records, timed from its committed offsets."""

    measured: int
    """Records committed between the span's first and last look."""
    seconds: float
    cpu_seconds: float
    """CPU seconds of every thread of the workers over the span."""
    rss_mib_at_start: float
    rss_mib: float
    """The workers' resident memory at the span's start and end, summed."""
    final_counts: dict[str, dict[str, Any]]
    """Each worker's counts when it stopped, by ``role.slot``."""


def time_workers(
    deployment: Deployment, role: str, workers: int, records: int, committed: Callable[[], int], timeout: float,
    *, from_assignment: bool = False, **start_options: Any,
) -> TimedRun:
    """Start ``workers`` slots of ``role``, wait until ``committed()`` reaches ``records`` and stop them.

    The span ends at the first look at which everything is committed. It starts at the first look at
    which every worker owns partitions and something is committed — a worker's start-up, connecting
    and first fetch are not throughput — or, ``from_assignment``, as soon as every worker owns
    partitions (for runs whose first batch may be all of it); a tiny run can finish before the last
    worker joins, and is then timed from its first commit."""
    for slot in range(workers):
        deployment.start(role, slot, **start_options)
    start = first_commit = end = None
    deadline = time.monotonic() + timeout
    while end is None:
        deployment.check_alive()
        done, now = committed(), time.monotonic()
        resources = deployment.resources()
        look = (now, done, resources["cpu_seconds"], resources["rss_mib"])
        if done > 0 and first_commit is None:
            first_commit = look
        if (done > 0 or from_assignment) and start is None and deployment.members_with_partitions(role) == workers:
            start = look
        if done >= records:
            end = look
        elif now > deadline:
            raise RuntimeError(f"{workers} {role} worker(s) committed {done:,} of {records:,} records in {timeout:.0f} s")
        else:
            time.sleep(0.05)
    start = start if start is not None and start[1] < records else first_commit
    final_counts = deployment.stop_workers()
    return TimedRun(end[1] - start[1], end[0] - start[0], end[2] - start[2], start[3], end[3], final_counts)


def wait_until(condition: Callable[[], bool], what: str, deployment: Deployment, timeout: float) -> None:
    """Poll ``condition`` until it holds; the deployment's workers must stay alive meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deployment.check_alive()
        if condition():
            return
        time.sleep(0.2)
    raise RuntimeError(f"not within {timeout:.0f} s: {what}")
