"""``driftline run``: the streaming workers (registered in stream/cli.py).

``--role all`` (local use) starts ``--workers`` ingest and as many evaluate workers as child
processes of one supervisor, and the incident service (one faust worker, ``driftline incidents``)
when a routing file is given (``--routing`` or ``DRIFTLINE_INCIDENTS_ROUTING``: without one there is
nowhere to send incidents, so it is left out, with a warning); ``--role ingest|evaluate|incidents``
starts only that role (deployment: one container per role, scaled with ``--workers``; the incident
service is always one process). Worker slot ``i`` of a role has the stable transactional id and
static group membership ``<prefix>.<role>.<i>``, so a restarted slot fences its dead predecessor at
once. SIGTERM or Ctrl-C: every worker finishes its batch, commits and exits 0 (the incident service
commits its offsets and exits 0).

Every process logs JSON lines on stderr (``stream.jsonlog``). The models come from the monitor
configs (``--config``, repeatable, or ``DRIFTLINE_CONFIG`` as comma-separated paths); ingest
dead-letters events of any other model (``unknown_model``).
"""

from __future__ import annotations

import gc
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
from stream.incidents.cli import service_command
from stream.incidents.routing import RoutingConfig
from stream.ingest import BATCH_SIZE, HandlerChain, IngestWorker
from stream.join import LabelJoin
from stream.metrics import EvaluateMetrics, IngestMetrics, worker_ports
from stream.mirror import RedisMirror
from stream.models import MonitoredModel, config_paths, load_models
from stream.settings import ConfigError, MetricsSettings, StackSettings, TopicSettings, env_int
from stream.state_topic import read_latest

log = logging.getLogger("driftline.run")

ROLES = ("ingest", "evaluate")
INCIDENTS_ROLE = "incidents"
STATS_SECONDS = 10.0
GC_YOUNG_THRESHOLD = 50_000
"""Net container allocations that trigger a young-generation collection (CPython's default: 700)."""
EVALUATE_IDLE_FACTOR = 2.0
"""Evaluate waits this many ingest idle periods for a silent source partition (ingest reports at
least once per period, so only a partition without a live ingest worker goes silent that long)."""


@friendly_errors
def run(
    ctx: typer.Context,
    config: list[Path] = typer.Option([], "--config", help="Monitor config (YAML); repeatable [env DRIFTLINE_CONFIG: comma-separated paths]."),
    role: str = typer.Option("all", help="all (every role, as child processes), ingest, evaluate or incidents."),
    workers: int = typer.Option(1, min=1, max=256, help="Worker processes per role (slots 0..N-1)."),
    prefix: Optional[str] = typer.Option(None, help="Topic name prefix [env DRIFTLINE_TOPIC_PREFIX; default driftline]."),
    idle_seconds: float = typer.Option(30.0, min=0.1, help="A source partition without events this long advances its watermark by wall clock."),
    batch_size: int = typer.Option(BATCH_SIZE, min=1, help="Records per consumed batch (one transaction each)."),
    slot: Optional[int] = typer.Option(None, min=0, hidden=True, help="Run only this worker slot, in this process."),
    routing: Optional[Path] = typer.Option(None, envvar="DRIFTLINE_INCIDENTS_ROUTING", help="Routing file of the incident service; with it, --role all includes the service."),
    metrics_port: Optional[int] = typer.Option(
        None, min=0, max=65535,
        help="Prometheus metrics port; worker k (ingest slots, then evaluate slots) serves on this + k; 0: none [env DRIFTLINE_METRICS_PORT; default 9400].",
    ),
) -> None:
    """Run the streaming pipeline: ingest (decode, windows, partials), evaluate (merge, tests, alerts) and incidents."""
    if role not in ("all", *ROLES, INCIDENTS_ROLE):
        raise ConfigError(f"--role {role!r}: use all, ingest, evaluate or incidents")
    settings: StackSettings = ctx.obj
    topics = TopicSettings(prefix=prefix) if prefix else TopicSettings()
    incidents = _incidents_command(role, routing, topics)
    if role == INCIDENTS_ROLE:
        raise typer.Exit(supervise((), workers, [], settings, incidents))
    paths = config_paths(config)
    models = load_models(paths)  # fail here, in one line, before any worker starts
    if slot is not None and role in ROLES:  # a supervisor's child: its port is explicit (none if absent)
        raise typer.Exit(run_worker(role, slot, models, settings, topics, idle_seconds, batch_size, metrics_port or 0))
    base_port = MetricsSettings().port if metrics_port is None else metrics_port
    roles = ROLES if role == "all" else (role,)
    arguments = [
        *(f"--config={path}" for path in paths), f"--prefix={topics.prefix}", f"--idle-seconds={idle_seconds}", f"--batch-size={batch_size}"
    ]
    ports = worker_ports(roles, workers, base_port) if base_port else {}
    raise typer.Exit(supervise(roles, workers, arguments, settings, incidents, ports))


def _incidents_command(role: str, routing: Path | None, topics: TopicSettings) -> list[str] | None:
    """The incident service's command line, if this run includes it; its routing file is checked here."""
    if role not in ("all", INCIDENTS_ROLE):
        return None
    if routing is None:
        if role == INCIDENTS_ROLE:
            raise ConfigError("--role incidents needs a routing file: pass --routing routing.yaml or set DRIFTLINE_INCIDENTS_ROUTING")
        jsonlog.configure("supervisor", "-")
        log.warning("incident service not started: no routing file (--routing or DRIFTLINE_INCIDENTS_ROUTING)")
        return None
    RoutingConfig.load(routing)  # fail here, in one line, before any worker starts
    return service_command(routing, topics.prefix)


JOIN_MAX_BYTES_ENV = "DRIFTLINE_JOIN_MAX_MB"


def join_max_bytes() -> int:
    """An ingest worker's label-join memory budget (``DRIFTLINE_JOIN_MAX_MB``, default 256 MB)."""
    return env_int(JOIN_MAX_BYTES_ENV, 256, high=1 << 20) << 20


def run_worker(
    role: str, slot: int, models: dict[str, MonitoredModel], settings: StackSettings, topics: TopicSettings, idle_seconds: float, batch_size: int,
    metrics_port: int = 0,
) -> int:
    """Run one worker slot until SIGTERM/SIGINT, serving its metrics on ``metrics_port`` (0: none); returns the exit code."""
    jsonlog.configure(role, str(slot))
    mirror = RedisMirror(settings.redis_url, prefix=topics.prefix)
    metrics_settings = MetricsSettings()
    metrics: IngestMetrics | EvaluateMetrics
    if role == "ingest":
        known = frozenset(models)
        limits = {kind: Limits(known_models=known, unknown_model_policy="deadletter") for kind in EventKind}
        aggregator = WindowAggregator(models, topics, idle_seconds=idle_seconds)
        changelog = topics.name("join-changelog")
        join = LabelJoin(models, topics, lambda partition: read_latest(settings.kafka_bootstrap, changelog, partition), max_bytes=join_max_bytes())

        def stats() -> dict:
            return {**worker.stats.totals(), **aggregator.counts, **join.report()}

        metrics = IngestMetrics()
        metrics.watch_join(join.report)

        worker = IngestWorker(
            settings, topics, HandlerChain(aggregator, join), worker_id=str(slot), limits=limits, batch_size=batch_size, mirror=mirror, report=stats,
            metrics=metrics,
        )
    else:
        metrics = EvaluateMetrics(models, metrics_settings)
        worker = EvaluateWorker(
            settings, topics, models, worker_id=str(slot), idle_seconds=idle_seconds * EVALUATE_IDLE_FACTOR,
            batch_size=batch_size, mirror=mirror, metrics=metrics,
        )  # fmt: skip

        def stats() -> dict:
            return dict(worker.counts)

    metrics_address = metrics.serve(metrics_settings, metrics_port)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.stop())
    done = threading.Event()

    def report() -> None:
        while not done.wait(STATS_SECONDS):
            log.info("progress", extra={"fields": stats()})

    threading.Thread(target=report, daemon=True).start()
    started = {"models": sorted(models), "prefix": topics.prefix, "bootstrap": settings.kafka_bootstrap, "metrics": metrics_address}
    log.info("started", extra={"fields": started})
    tune_garbage_collection()
    try:
        worker.run()
    except KafkaException as exc:  # broker unreachable, fenced by a newer instance of this slot, ...
        log.error("stopped by a Kafka error", extra={"fields": {"error": str(exc.args[0]), **stats()}})
        return 1
    finally:
        done.set()
        metrics.close()
    log.info("stopped", extra={"fields": stats()})
    return 0


def tune_garbage_collection() -> None:
    """Keep CPython's cycle collector out of the hot path: a batch allocates a few dicts per event
    that all live until the batch ends, so at the default threshold the collector ran about every
    175 events and re-scanned the batch's object arrays each time (15 % of an ingest worker's time,
    measured). Objects from start-up are frozen out of every scan; young collections now wait for
    a net growth of ``GC_YOUNG_THRESHOLD`` containers, which cyclic garbage would still reach."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def supervise(
    roles: tuple[str, ...], workers: int, arguments: list[str], settings: StackSettings, incidents: list[str] | None = None,
    metrics_ports: dict[tuple[str, int], int] | None = None,
) -> int:
    """Start every worker slot (and the ``incidents`` command line, if given) as a child process, each
    serving metrics on its port in ``metrics_ports`` (none if absent); stop them all on SIGTERM/SIGINT
    or when one fails."""
    jsonlog.configure("supervisor", "-")
    env = {**os.environ, "DRIFTLINE_KAFKA": settings.kafka_bootstrap, "DRIFTLINE_REDIS": settings.redis_url}
    children = {
        (role, slot): subprocess.Popen(
            [sys.executable, "-m", "stream", "run", *arguments, f"--role={role}", f"--slot={slot}",
             f"--metrics-port={(metrics_ports or {}).get((role, slot), 0)}"],
            env=env,
        )  # fmt: skip
        for role in roles
        for slot in range(workers)
    }
    if incidents is not None:
        children[(INCIDENTS_ROLE, 0)] = subprocess.Popen(incidents, env=env)
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
