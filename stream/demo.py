"""``driftline demo`` (behind ``make run``): the whole pipeline, live, on the local stack.

Starts the stack (if needed) and a fresh set of topics, builds a demo reference profile from the
workload generator's clean reference set, writes a monitor config with small windows into the run
folder, starts a local webhook receiver and ``driftline run`` (ingest + evaluate + the incident
service, routed by deploy/routing.demo.yaml to that receiver), then streams about 1,000 events/s of
event time = wall time with an abrupt 1 sd shift of ``num_01`` after ``DRIFT_AFTER_SECONDS`` and a
few malformed events, printing alerts as they are committed, incident deliveries as the receiver
gets them, and dead-letter counts. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import time
from collections import Counter

import orjson
import typer
import yaml
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from rich.console import Console
from rich.markup import escape

from stream import stack as local_stack
from stream.console import friendly_errors
from stream.incidents.cli import DEFAULT_API
from stream.incidents.receiver import LocalReceiver
from stream.metrics import worker_ports
from stream.run import ROLES
from stream.settings import PROJECT_ROOT, MetricsSettings, StackSettings, TopicSettings
from stream.topics import create_topics, plan_topics
from stream.workload import AbruptShift, Malformed, Workload

MODEL = "demo-model"
EVENTS_PER_SECOND = 1_000
DRIFT_AFTER_SECONDS = 30
DRIFTED_FEATURE = "num_01"
REFERENCE_ROWS = 50_000
SEND_EVERY_SECONDS = 0.1
SUMMARY_EVERY_SECONDS = 10.0
ROUTING = PROJECT_ROOT / "deploy" / "routing.demo.yaml"
DEMO_CONFIG = {
    "model_id": MODEL,
    "reference": "reference.profile",
    "segments": [{"tag": "region", "max_values": 10}],
    "windows": {"base_seconds": 5, "evaluate_windows": 3, "allowed_lateness_seconds": 1, "min_count": 1_000},
    "policy": {"persistence": {"m": 2, "n": 3}},
}

out = Console(soft_wrap=True, highlight=False)


@friendly_errors
def demo(ctx: typer.Context) -> None:
    """Run the whole pipeline live: stack, workers, incident service, a drifting event stream, alerts and deliveries as they happen."""
    settings: StackSettings = ctx.obj
    state = local_stack.up(settings)
    topics = TopicSettings(prefix=f"demo-{int(time.time())}")
    create_topics(AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 0}), plan_topics(topics))
    folder = settings.run_dir / "demo" / topics.prefix
    folder.mkdir(parents=True, exist_ok=True)
    started = time.time()
    workload = Workload(seed=int(started), model_id=MODEL, events_per_second=EVENTS_PER_SECOND, start=started)
    (folder / "reference.profile").write_bytes(workload.reference_profile(REFERENCE_ROWS).to_bytes())
    config = folder / "monitor.yaml"
    config.write_text(yaml.safe_dump(DEMO_CONFIG))
    log_path = folder / "workers.log"
    deliveries: queue.Queue[str] = queue.Queue()
    receiver = LocalReceiver(deliveries.put).start()
    api = _api_address()
    with open(log_path, "wb") as log_file:
        workers = subprocess.Popen(
            [sys.executable, "-m", "stream", "run", f"--config={config}", f"--prefix={topics.prefix}", "--idle-seconds=5", f"--routing={ROUTING}"],
            stdout=log_file,
            stderr=log_file,
            env={
                **os.environ, "DRIFTLINE_KAFKA": settings.kafka_bootstrap, "DRIFTLINE_REDIS": settings.redis_url,
                "DRIFTLINE_DEMO_RECEIVER": receiver.url, "DRIFTLINE_INCIDENTS_PORT": api.rpartition(":")[2],
                "DRIFTLINE_INCIDENTS_DATA_DIR": str(folder / "incidents"),
            },
            start_new_session=True,  # Ctrl-C reaches the demo, which stops the workers cleanly
        )  # fmt: skip
    out.print(f"topics {topics.prefix}.*, config {config}, worker logs {log_path}")
    out.print(f"incidents API {api} (`driftline incidents list --api {api}`); deliveries go to the demo's receiver at {receiver.url}")
    metrics = MetricsSettings()
    if metrics.port:
        addresses = ", ".join(f"http://{metrics.host}:{port}/metrics ({role})" for (role, _), port in worker_ports(ROLES, 1, metrics.port).items())
        out.print(f"Prometheus metrics: {addresses}, {api}/metrics (incidents)")
    out.print(f"streaming {EVENTS_PER_SECOND:,} events/s; {DRIFTED_FEATURE} shifts by 1 sd after {DRIFT_AFTER_SECONDS} s. Ctrl-C stops.")
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` (or a supervisor) stops the demo like Ctrl-C does
    try:
        _stream(settings, topics, workload, workers, deliveries)
    except KeyboardInterrupt:
        out.print("stopping…")
    finally:
        workers.send_signal(signal.SIGTERM)
        workers.wait(60)
        receiver.close()
        if state.kafka_started and state.redis_started:
            local_stack.down(settings)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _api_address() -> str:
    """The incident service's usual address, or another free port when that one is taken (e.g. by a running service)."""
    host, port = DEFAULT_API.rpartition(":")[0], int(DEFAULT_API.rpartition(":")[2])
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        return f"{host}:{probe.getsockname()[1]}"


def _stream(settings: StackSettings, topics: TopicSettings, workload: Workload, workers: subprocess.Popen, deliveries: queue.Queue[str]) -> None:
    """Send events in wall-clock time and print committed alerts, deliveries and dead letters until interrupted."""
    drift_at = DRIFT_AFTER_SECONDS * EVENTS_PER_SECOND
    scenarios = [AbruptShift(features=(DRIFTED_FEATURE,), start=drift_at, shift_sd=1.0), Malformed(rate=0.001)]
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 20, "log_level": 0})
    reader = Consumer({
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": f"{topics.prefix}.demo-reader",
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "log_level": 0,
    })
    reader.subscribe([topics.name("alerts"), topics.name("deadletter")])
    deadletters: Counter[str] = Counter()
    sent, next_summary = 0, time.monotonic() + SUMMARY_EVERY_SECONDS
    try:
        while workers.poll() is None:
            due = int((time.time() - workload.start) * EVENTS_PER_SECOND)
            if due > sent:
                batch = workload.generate(sent, due, scenarios)
                for key, value in zip(workload.keys(batch), workload.serialize(batch)):
                    producer.produce(topics.name("inference"), key=key, value=value)
                producer.poll(0)
                if sent < drift_at <= due:
                    out.print(f"[bold]{_clock()} injected: {DRIFTED_FEATURE} shifted by 1 sd from event {drift_at:,}[/]")
                sent = due
            for message in reader.consume(1000, timeout=SEND_EVERY_SECONDS):
                if message.error() is not None:
                    continue
                record = orjson.loads(message.value())
                if message.topic() == topics.name("alerts"):
                    _print_alert(record)
                else:
                    deadletters[record["reason"]] += 1
            while not deliveries.empty():
                out.print(f"[magenta]{_clock()} DELIVERY {escape(deliveries.get())}[/]")
            if time.monotonic() >= next_summary:
                next_summary += SUMMARY_EVERY_SECONDS
                counts = ", ".join(f"{reason} {count}" for reason, count in deadletters.most_common()) or "none"
                out.print(f"[dim]{_clock()} sent {sent:,} events; dead letters: {counts}[/]")
        out.print(f"[red]the workers exited ({workers.returncode}); see the worker logs[/]")
    finally:
        reader.close()
        producer.flush(10)


def _print_alert(alert: dict) -> None:
    statistic = alert["statistic"]
    segment = " ".join(f"{tag}={value}" for tag, value in (alert.get("segment") or {}).items()) or "all traffic"
    colour = "red" if alert["status"] == "firing" else "green"
    out.print(
        f"[{colour}]{_clock()} {alert['status'].upper()} {alert['severity']} {alert['kind']} {alert['feature']} ({segment}): "
        f"{statistic['name']} {statistic['value']:.3f} vs {statistic['threshold']:.3f}, window ending {alert['window']['end']}[/]"
    )


def _clock() -> str:
    return time.strftime("%H:%M:%S")
