"""The ``driftline`` command."""

from __future__ import annotations

import base64
import sys
import time
from pathlib import Path
from typing import Optional

import orjson
import typer
from confluent_kafka.admin import AdminClient
from rich.console import Console
from rich.table import Table

from stream import stack as local_stack
from stream.console import err, friendly_errors, print_error
from stream.demo import demo
from stream.files import read_records
from stream.incidents.cli import incidents_app
from stream.inspect_cli import alerts_app, state_app
from stream.offline_cli import profile_app, replay
from stream.producer import PredictionLogger
from stream.run import run
from stream.settings import ConfigError, StackSettings, TopicSettings
from stream.tail import show, tail
from stream.topics import co_partitioning_error, create_topics, parse_retention, plan_topics

app = typer.Typer(
    help="driftline: streaming drift, data-quality and performance monitoring for ML models on Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
stack_app = typer.Typer(help="Run the local stack: a real Apache Kafka broker (KRaft) and Redis.", no_args_is_help=True)
topics_app = typer.Typer(help="The driftline topics.", no_args_is_help=True)
deadletter_app = typer.Typer(help="Rejected input: what was dead-lettered, why, and from where.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(topics_app, name="topics")
app.add_typer(deadletter_app, name="deadletter")
app.add_typer(profile_app, name="profile")
app.add_typer(alerts_app, name="alerts")
app.add_typer(state_app, name="state")
app.add_typer(incidents_app, name="incidents")
app.command("replay")(replay)
app.command("run")(run)
app.command("demo")(demo)

out = Console(soft_wrap=True)


@app.callback()
def main(
    ctx: typer.Context,
    run_dir: Optional[Path] = typer.Option(None, help="Run folder for broker/Redis data and logs [env DRIFTLINE_RUN_DIR; default <project>/.run]."),
    kafka_port: Optional[int] = typer.Option(None, help="Local broker port [env DRIFTLINE_KAFKA_PORT; default 9092]."),
    controller_port: Optional[int] = typer.Option(None, help="Local KRaft controller port [env DRIFTLINE_CONTROLLER_PORT; default 9093]."),
    redis_port: Optional[int] = typer.Option(None, help="Local Redis port [env DRIFTLINE_REDIS_PORT; default 6379]."),
) -> None:
    try:
        ctx.obj = StackSettings().with_overrides(run_dir=run_dir, kafka_port=kafka_port, controller_port=controller_port, redis_port=redis_port)
    except ConfigError as exc:
        print_error(str(exc))
        raise typer.Exit(1) from None


def _admin(settings: StackSettings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 0})


def _create_topics(settings: StackSettings, topics: TopicSettings, retention: list[str]) -> bool:
    """Create the topics and print what happened; returns False if any existing topic differs."""
    admin = _admin(settings)
    plans = plan_topics(topics, parse_retention(retention))
    reports = create_topics(admin, plans)
    table = Table("topic", "partitions", "outcome", title="driftline topics")
    for plan, report in zip(plans, reports):  # create_topics reports in plan order
        style = {"created": "green", "exists": "dim", "differs": "bold yellow"}[report.outcome]
        table.add_row(report.name, str(plan.partitions), f"[{style}]{report.outcome}[/] {report.detail}")
    out.print(table)
    problem = co_partitioning_error(admin, topics)
    if problem:
        print_error(problem)
    differs = [r.name for r in reports if r.outcome == "differs"]
    if differs:
        err.print(
            f"[bold yellow]warning:[/] {', '.join(differs)} differ from the requested settings and were left as they are; "
            "delete and recreate them (losing their data) or change the settings to match",
            soft_wrap=True,
        )
    return not differs and problem is None


@stack_app.command("up")
@friendly_errors
def stack_up(ctx: typer.Context) -> None:
    """Start Kafka and Redis (fetching the broker jars once), create the topics, print the status. Idempotent."""
    settings: StackSettings = ctx.obj
    state = local_stack.up(settings)
    for name, started in (("Kafka", state.kafka_started), ("Redis", state.redis_started)):
        out.print(f"{name}: {'started' if started else 'already running'}")
    _create_topics(settings, TopicSettings(), [])
    _print_status(local_stack.status(settings))


@stack_app.command("down")
@friendly_errors
def stack_down(ctx: typer.Context, purge: bool = typer.Option(False, help="Also delete broker data, logs and Redis files (the jar cache stays).")) -> None:
    """Stop the local Kafka and Redis. Fine when nothing runs."""
    state = local_stack.down(ctx.obj, purge=purge)
    for name, stopped in (("Kafka", state.kafka_started), ("Redis", state.redis_started)):
        out.print(f"{name}: {'stopped' if stopped else 'was not running'}")


@stack_app.command("status")
@friendly_errors
def stack_status(ctx: typer.Context, json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Broker version, listeners, topics with partition counts, Redis version and memory."""
    report = local_stack.status(ctx.obj)
    if json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _print_status(report)
    if not (report["kafka"]["up"] and report["redis"]["up"]):
        raise typer.Exit(3)


def _print_status(report: dict) -> None:
    kafka, redis_report = report["kafka"], report["redis"]
    if kafka["up"]:
        out.print(f"[bold]Kafka[/] {kafka['version']} at {kafka['bootstrap']} (pid {kafka['pid'] or '-'})")
        out.print(f"  listeners: {', '.join(kafka['listeners'])}")
        table = Table("topic", "partitions")
        for name, partitions in kafka["topics"].items():
            table.add_row(name, str(partitions))
        out.print(table)
    else:
        out.print(f"[bold]Kafka[/] at {kafka['bootstrap']}: [red]down[/] ({kafka['error']}); start it with `driftline stack up`")
    if redis_report["up"]:
        out.print(f"[bold]Redis[/] {redis_report['version']} at {redis_report['url']} (pid {redis_report['pid'] or '-'}): used memory {redis_report['used_memory']}, {redis_report['keys']} keys")
    else:
        out.print(f"[bold]Redis[/] at {redis_report['url']}: [red]down[/] ({redis_report['error']}); start it with `driftline stack up`")
    out.print(f"run folder: {report['run_dir']}")


@topics_app.command("create")
@friendly_errors
def topics_create(
    ctx: typer.Context,
    prefix: Optional[str] = typer.Option(None, help="Topic name prefix [env DRIFTLINE_TOPIC_PREFIX; default driftline]."),
    event_partitions: Optional[int] = typer.Option(None, min=1, help="Partitions of inference, labels and ingest-state (one count: the label join is co-partitioned) [env DRIFTLINE_EVENT_PARTITIONS; default 4]."),
    model_partitions: Optional[int] = typer.Option(None, min=1, help="Partitions of the topics keyed by model [env DRIFTLINE_MODEL_PARTITIONS; default 2]."),
    retention: list[str] = typer.Option([], help="ROLE=DURATION retention override, e.g. alerts=90d or partials=12h; repeatable."),
) -> None:
    """Create the driftline topics; existing ones are kept and any difference is reported (exit 1)."""
    defaults = TopicSettings()
    topics = TopicSettings(
        prefix=prefix or defaults.prefix,
        event_partitions=event_partitions or defaults.event_partitions,
        model_partitions=model_partitions or defaults.model_partitions,
    )
    if not _create_topics(ctx.obj, topics, retention):
        raise typer.Exit(1)


@app.command("produce")
@friendly_errors
def produce(
    ctx: typer.Context,
    file: Path = typer.Option(..., exists=True, dir_okay=False, help="Events to send: .jsonl (lines sent byte for byte) or .csv."),
    topic: str = typer.Option(..., help="inference or labels."),
    rate: Optional[float] = typer.Option(None, min=0.001, help="Events per second (default: as fast as possible)."),
    model: Optional[str] = typer.Option(None, help="model_id for CSV rows that have none."),
    version: Optional[str] = typer.Option(None, help="model_version for CSV rows that have none."),
    prefix: Optional[str] = typer.Option(None, help="Topic name prefix [env DRIFTLINE_TOPIC_PREFIX; default driftline]."),
) -> None:
    """Send an event file to the inference or labels topic, keyed by prediction_id."""
    if topic not in ("inference", "labels"):
        raise ConfigError(f"--topic {topic!r}: use inference or labels")
    settings: StackSettings = ctx.obj
    topics = TopicSettings(prefix=prefix) if prefix else TopicSettings()
    defaults = {key: value for key, value in (("model_id", model), ("model_version", version)) if value}
    logger = PredictionLogger(settings.kafka_bootstrap, model_id=model or "", model_version=version or "", topics=topics)
    started = time.monotonic()
    for count, (key, value) in enumerate(read_records(file, topic, defaults), start=1):
        while not logger.send_raw(topics.name(topic), key, value):
            logger.flush(0.1)  # a file can wait for the broker, unlike a model server
        if rate and count % max(1, int(rate // 100)) == 0:
            ahead = count / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    stats = logger.close()
    out.print(f"sent {stats['sent']} events to {topics.name(topic)}: {stats['delivered']} delivered, {stats['failed']} failed, {stats['pending']} still queued")
    if stats["failed"] or stats["pending"]:
        raise typer.Exit(1)


@deadletter_app.command("tail")
@friendly_errors
def deadletter_tail(
    ctx: typer.Context,
    last: int = typer.Option(20, min=0, help="How many of the newest records to show first (per partition, then the newest overall)."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new records until Ctrl-C."),
    json: bool = typer.Option(False, "--json", help="Print the dead-letter records as JSON lines (with the original bytes in base64)."),
    prefix: Optional[str] = typer.Option(None, help="Topic name prefix [env DRIFTLINE_TOPIC_PREFIX; default driftline]."),
) -> None:
    """Show rejected records with their reason code, model and source topic/partition/offset."""
    topic = (TopicSettings(prefix=prefix) if prefix else TopicSettings()).name("deadletter")
    show(tail(ctx.obj.kafka_bootstrap, topic, last, follow), json, lambda rows: _print_deadletters(rows, follow))


def _print_deadletters(rows, follow: bool) -> None:
    columns = ("rejected at", "reason", "model", "source", "message", "original")

    def row(record: dict) -> tuple[str, ...]:
        if "undecodable" in record:
            return ("?", "(not a dead-letter record)", "", "", record["undecodable"][:80], "")
        source = record["source"]
        original = base64.b64decode(record["original"]).decode("utf-8", "replace")
        return (
            record["rejected_at"], record["reason"], record.get("model_id") or "-",
            f"{source['topic']}[{source['partition']}]@{source['offset']}", record["message"][:80],
            original[:60] + ("…" if len(original) > 60 else ""),
        )

    if not follow:
        table = Table(title="dead letters")
        for column in columns:
            table.add_column(column, no_wrap=column not in ("message", "original"))
        for record in rows:
            table.add_row(*row(record))
        out.print(table)
        return
    out.print("  ".join(columns))
    for record in rows:
        out.print("  ".join(row(record)), highlight=False)

