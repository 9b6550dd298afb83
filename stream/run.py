"""``driftline run``: the streaming workers (registered in stream/cli.py).

``--role all`` (local use) starts ``--workers`` ingest and as many evaluate workers as child
processes of one supervisor; ``--role ingest|evaluate`` starts only that role (deployment: one
container per role, scaled with ``--workers``). Worker slot ``i`` of a role has the stable
transactional id and static group membership ``<prefix>.<role>.<i>``, so a restarted slot fences its
dead predecessor at once. SIGTERM or Ctrl-C: every worker finishes its batch, commits and exits 0.

Every process logs JSON lines on stderr (``stream.jsonlog``). The models come from the monitor
configs (``--config``, repeatable, or ``DRIFTLINE_CONFIG`` as comma-separated paths); ingest
dead-letters events of any other model (``unknown_model``).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import typer
from confluent_kafka import KafkaException

from stream import jsonlog
from stream.aggregate import WindowAggregator
from stream.console import friendly_errors
from stream.decode import EventKind, Limits
from stream.evaluate import EvaluateWorker
from stream.ingest import IngestWorker
from stream.mirror import RedisMirror
from stream.models import MonitoredModel, config_paths, load_models
from stream.settings import ConfigError, StackSettings, TopicSettings

log = logging.getLogger("driftline.run")

ROLES = ("ingest", "evaluate")
STATS_SECONDS = 10.0
EVALUATE_IDLE_FACTOR = 2.0
"""Evaluate waits this many ingest idle periods for a silent source partition (ingest reports at
least once per period, so only a partition without a live ingest worker goes silent that long)."""


@friendly_errors
def run(
    ctx: typer.Context,
    config: list[Path] = typer.Option([], "--config", help="Monitor config (YAML); repeatable [env DRIFTLINE_CONFIG: comma-separated paths]."),
    role: str = typer.Option("all", help="all (every role, as child processes), ingest or evaluate."),
    workers: int = typer.Option(1, min=1, max=256, help="Worker processes per role (slots 0..N-1)."),
    prefix: Optional[str] = typer.Option(None, help="Topic name prefix [env DRIFTLINE_TOPIC_PREFIX; default driftline]."),
    idle_seconds: float = typer.Option(30.0, min=0.1, help="A source partition without events this long advances its watermark by wall clock."),
    batch_size: int = typer.Option(5000, min=1, help="Records per consumed batch (one transaction each)."),
    slot: Optional[int] = typer.Option(None, min=0, hidden=True, help="Run only this worker slot, in this process."),
) -> None:
    """Run the streaming pipeline: ingest (decode, windows, partials) and evaluate (merge, tests, alerts)."""
    if role not in ("all", *ROLES):
        raise ConfigError(f"--role {role!r}: use all, ingest or evaluate")
    settings: StackSettings = ctx.obj
    topics = TopicSettings(prefix=prefix) if prefix else TopicSettings()
    paths = config_paths(config)
    models = load_models(paths)  # fail here, in one line, before any worker starts
    if slot is not None and role in ROLES:
        raise typer.Exit(run_worker(role, slot, models, settings, topics, idle_seconds, batch_size))
    roles = ROLES if role == "all" else (role,)
    arguments = [
        *(f"--config={path}" for path in paths), f"--prefix={topics.prefix}", f"--idle-seconds={idle_seconds}", f"--batch-size={batch_size}"
    ]
    raise typer.Exit(supervise(roles, workers, arguments, settings))


def run_worker(
    role: str, slot: int, models: dict[str, MonitoredModel], settings: StackSettings, topics: TopicSettings, idle_seconds: float, batch_size: int
) -> int:
    """Run one worker slot until SIGTERM/SIGINT; returns the exit code."""
    jsonlog.configure(role, str(slot))
    mirror = RedisMirror(settings.redis_url, prefix=topics.prefix)
    if role == "ingest":
        known = frozenset(models)
        limits = {kind: Limits(known_models=known, unknown_model_policy="deadletter") for kind in EventKind}
        aggregator = WindowAggregator(models, topics, idle_seconds=idle_seconds)

        def stats() -> dict:
            return {**worker.stats.totals(), **aggregator.counts}

        worker = IngestWorker(
            settings, topics, aggregator, worker_id=str(slot), limits=limits, batch_size=batch_size, mirror=mirror, report=stats
        )
    else:
        worker = EvaluateWorker(
            settings, topics, models, worker_id=str(slot), idle_seconds=idle_seconds * EVALUATE_IDLE_FACTOR,
            batch_size=batch_size, mirror=mirror,
        )  # fmt: skip

        def stats() -> dict:
            return dict(worker.counts)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.stop())
    done = threading.Event()

    def report() -> None:
        while not done.wait(STATS_SECONDS):
            log.info("progress", extra={"fields": stats()})

    threading.Thread(target=report, daemon=True).start()
    log.info("started", extra={"fields": {"models": sorted(models), "prefix": topics.prefix, "bootstrap": settings.kafka_bootstrap}})
    try:
        worker.run()
    except KafkaException as exc:  # broker unreachable, fenced by a newer instance of this slot, ...
        log.error("stopped by a Kafka error", extra={"fields": {"error": str(exc.args[0]), **stats()}})
        return 1
    finally:
        done.set()
    log.info("stopped", extra={"fields": stats()})
    return 0


def supervise(roles: tuple[str, ...], workers: int, arguments: list[str], settings: StackSettings) -> int:
    """Start every worker slot as a child process; stop them all on SIGTERM/SIGINT or when one fails."""
    jsonlog.configure("supervisor", "-")
    env = {**os.environ, "DRIFTLINE_KAFKA": settings.kafka_bootstrap, "DRIFTLINE_REDIS": settings.redis_url}
    children = {
        (role, slot): subprocess.Popen(
            [sys.executable, "-m", "stream", "run", *arguments, f"--role={role}", f"--slot={slot}"], env=env
        )
        for role in roles
        for slot in range(workers)
    }
    stopping = threading.Event()

    def stop(*_: object) -> None:
        stopping.set()
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    log.info("started", extra={"fields": {"workers": {f"{role}.{slot}": child.pid for (role, slot), child in children.items()}}})
    failed = False
    while any(child.poll() is None for child in children.values()):
        for (role, slot), child in children.items():
            if child.returncode not in (None, 0) and not stopping.is_set():
                log.error("worker exited", extra={"fields": {"role": role, "slot": slot, "code": child.returncode}})
                failed = True
                stop()
        time.sleep(0.2)
    failed = failed or any(child.returncode != 0 for child in children.values())
    log.info("stopped", extra={"fields": {"codes": {f"{role}.{slot}": child.returncode for (role, slot), child in children.items()}}})
    return 1 if failed else 0
