"""Offline commands: ``driftline profile build`` and ``driftline replay`` (registered in stream/cli.py)."""

from __future__ import annotations

import contextlib
import heapq
import math
import time
from collections.abc import Iterable, Iterator
from itertools import groupby, islice
from operator import itemgetter
from pathlib import Path
from typing import BinaryIO, Optional

import orjson
import typer
from redis import RedisError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from detectors.profile import ReferenceBuilder, ReferenceProfile
from stream.console import friendly_errors
from stream.config import load_monitor_config, load_reference
from stream.files import read_records
from stream.mirror import RedisMirror
from stream.replay import Replay, event_time
from stream.settings import ConfigError, TopicSettings

profile_app = typer.Typer(help="Reference profiles built from training data.", no_args_is_help=True)
out = Console(soft_wrap=True)
progress_console = Console(stderr=True)

CHUNK_ROWS = 20_000


def _chunks(path: Path, kind: str) -> Iterator[tuple[list[bytes], int, str]]:
    """Raw values of an event file in chunks, with the bytes each chunk covered (for progress) and the kind."""
    yield from _runs((kind, value) for _, value in read_records(path, kind))


def _merged_chunks(events: Path, labels: Path) -> Iterator[tuple[list[bytes], int, str]]:
    """Inference events and labels merged by timestamp, each file kept in its own order (as each topic
    partition is), in chunks of one kind. A record whose time cannot be read goes as soon as it is
    reached: the decoder rejects it."""

    def timed(path: Path, kind: str) -> Iterator[tuple[float, str, bytes]]:
        for _, value in read_records(path, kind):
            seconds = event_time(value)
            yield (seconds if seconds == seconds else -math.inf), kind, value

    merged = heapq.merge(timed(events, "inference"), timed(labels, "labels"), key=itemgetter(0))
    yield from _runs((kind, value) for _, kind, value in merged)


def _runs(records: Iterable[tuple[str, bytes]]) -> Iterator[tuple[list[bytes], int, str]]:
    """Consecutive values of one kind, in chunks of at most CHUNK_ROWS."""
    for kind, run in groupby(records, key=itemgetter(0)):
        values = (value for _, value in run)
        while chunk := list(islice(values, CHUNK_ROWS)):
            yield chunk, sum(map(len, chunk)) + len(chunk), kind


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=progress_console,
        transient=True,
    )


def _names(option: str, value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if len(set(names)) != len(names):
        raise ConfigError(f"{option} {value!r} repeats a feature; list each feature once")
    return names


def _sentinels(options: list[str]) -> dict[str, list[float]]:
    sentinels: dict[str, list[float]] = {}
    for option in options:
        name, _, value = option.partition("=")
        try:
            sentinels.setdefault(name.strip(), []).append(float(value))
        except ValueError:
            raise ConfigError(f"--sentinel {option!r}: write FEATURE=NUMBER, e.g. --sentinel amount=-999") from None
    return sentinels


@profile_app.command("build")
@friendly_errors
def build(
    ctx: typer.Context,
    input: Path = typer.Option(..., "--input", exists=True, dir_okay=False, help="Training data: .jsonl (flat rows or inference events) or .csv."),
    model: str = typer.Option(..., "--model", help="model_id the profile belongs to."),
    version: str = typer.Option(..., "--version", help="model_version of the training run."),
    out_path: Path = typer.Option(..., "--out", help="Profile file to write."),
    numeric: str = typer.Option("", help="Comma-separated features to treat as numeric (default: inferred)."),
    categorical: str = typer.Option("", help="Comma-separated features to treat as categorical (default: inferred)."),
    bins: int = typer.Option(10, min=2, max=1000, help="Histogram bins per numeric feature, at reference quantiles."),
    sentinel: list[str] = typer.Option([], "--sentinel", help="FEATURE=VALUE: a numeric value meaning 'missing' (e.g. num_05=-999), kept out of the distribution; repeatable."),
    redis: bool = typer.Option(False, "--redis", help="Also store the profile in Redis (keys driftline:reference:<model> and driftline:profile:<model>, see docs/redis.md) [env DRIFTLINE_REDIS]."),
) -> None:
    """Build a reference profile (bins, categories, rates) from training data, reading it in chunks."""
    try:
        builder = ReferenceBuilder(
            numeric=_names("--numeric", numeric),
            categorical=_names("--categorical", categorical),
            sentinels=_sentinels(sentinel),
            n_bins=bins,
        )
    except ValueError as exc:
        raise ConfigError(f"--numeric/--categorical: {exc}; list each feature under one type") from None
    started = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task(f"profiling {input.name}", total=input.stat().st_size, rows=0)
        for values, size, _ in _chunks(input, "inference"):
            try:
                rows = [orjson.loads(value) for value in values]
            except orjson.JSONDecodeError as exc:
                raise ConfigError(f"{input}: a row is not valid JSON ({exc}); fix or remove it") from None
            if not all(isinstance(row, dict) for row in rows):
                raise ConfigError(f"{input}: every row must be a JSON object of features (or an inference event)")
            builder.add(rows)
            progress.update(task, advance=size, rows=progress.tasks[0].fields["rows"] + len(rows))
    try:
        reference = builder.build(model, version, source=str(input))
    except ValueError as exc:
        raise ConfigError(f"--numeric/--categorical/--sentinel: {exc}; check the feature names and types against {input}") from None
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(reference.to_bytes())
    profile = reference.profile
    table = Table("feature", "type", "bins / categories", "null rate", title=f"{model} {version}: {reference.row_count:,} rows")
    for name, sketch in profile.numeric.items():
        table.add_row(name, "numeric", str(sketch.edges.size - 1), f"{sketch.null_count / max(sketch.count, 1):.3f}")
    for name, sketch in profile.categorical.items():
        table.add_row(name, "categorical", str(len(sketch.categories)), f"{sketch.null_count / max(sketch.count, 1):.3f}")
    out.print(table)
    out.print(f"wrote {out_path} ({out_path.stat().st_size:,} bytes) in {time.perf_counter() - started:.1f} s")
    if redis:
        _store_in_redis(reference, ctx.obj.redis_url)
        out.print(f"stored in Redis at {ctx.obj.redis_url}")


def _store_in_redis(reference: ReferenceProfile, redis_url: str) -> None:
    mirror = RedisMirror(redis_url, TopicSettings().prefix)
    mirror.reference(reference)
    try:
        stored = mirror.reference_profile(reference.model_id, reference.model_version)
    except RedisError as exc:
        stored, cause = None, str(exc)
    else:
        cause = "it did not keep the profile"
    finally:
        mirror.close()
    if stored is None or (stored.model_id, stored.model_version, stored.row_count, stored.layout) != (
        reference.model_id, reference.model_version, reference.row_count, reference.layout
    ):
        raise ConfigError(f"Redis at {redis_url}: {cause}; start it with `driftline stack up` or point DRIFTLINE_REDIS at one (the profile file is written)")


@friendly_errors
def replay(
    config: Path = typer.Option(..., "--config", exists=True, dir_okay=False, help="Monitor config (YAML)."),
    events: Path = typer.Option(..., "--events", exists=True, dir_okay=False, help="Inference events: .jsonl or .csv."),
    alerts_out: Optional[Path] = typer.Option(None, "--alerts-out", help="Write alert events here (JSON lines)."),
    deadletter_out: Optional[Path] = typer.Option(None, "--deadletter-out", help="Write rejected events here as dead-letter records (JSON lines)."),
    labels: Optional[Path] = typer.Option(None, "--labels", exists=True, dir_okay=False, help="Label events (.jsonl or .csv), joined with the predictions; merged with the events by timestamp, so label delays are those of the timestamps."),
) -> None:
    """Run the monitoring core over an event file with no broker: same windows, tests and alerts as streaming."""
    monitor = load_monitor_config(config)
    engine = Replay(monitor, load_reference(monitor), labels=labels is not None)
    alerts: list[dict] = []
    started = time.perf_counter()
    with (
        _open_jsonl(alerts_out) as alerts_file,
        _open_jsonl(deadletter_out) as deadletter_file,
        _progress() as progress,
    ):
        task = progress.add_task(f"replaying {events.name}", total=events.stat().st_size + (labels.stat().st_size if labels else 0), rows=0)
        chunks = _chunks(events, "inference") if labels is None else _merged_chunks(events, labels)
        for values, size, kind in chunks:
            batch_alerts, rejects = engine.feed(values) if kind == "inference" else engine.feed_labels(values)
            _write(alerts_file, batch_alerts)
            _write(deadletter_file, [reject.deadletter_record() for reject in rejects])
            alerts += batch_alerts
            progress.update(task, advance=size, rows=engine.summary.events + engine.summary.labels)
        final = engine.finish()
        _write(alerts_file, final)
        alerts += final
    _print_summary(engine, alerts, time.perf_counter() - started)


@contextlib.contextmanager
def _open_jsonl(path: Path | None) -> Iterator[BinaryIO | None]:
    """A JSON-lines output file, or None when no path was given."""
    if path is None:
        yield None
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file = open(path, "wb")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write ({exc.strerror}); choose a writable path") from None
    with file:
        yield file


def _write(file: BinaryIO | None, records: list[dict]) -> None:
    if file is not None and records:
        file.write(b"".join(orjson.dumps(record) + b"\n" for record in records))


def _print_summary(engine: Replay, alerts: list[dict], seconds: float) -> None:
    summary = engine.summary
    table = Table("", "count", title=f"replay of {engine.config.model_id}", show_header=False)
    rows = [
        ("events read", summary.events),
        ("accepted", summary.accepted),
        ("rejected (dead-letter)", sum(summary.rejects.values())),
        ("other models (skipped)", summary.other_models),
        ("late (window already closed)", summary.late),
        ("base windows closed", summary.base_windows),
        ("evaluations", summary.evaluations),
        ("alerts firing", summary.firing),
        ("alerts resolved", summary.resolved),
    ]
    if engine.join is not None:  # label counts: read, and what the join made of them
        rows += [("labels read", summary.labels)] + [(f"  labels: {name}", count) for name, count in engine.join.totals().items()]
    for label, count in rows:
        table.add_row(label, f"{count:,}")
    for reason, count in summary.rejects.most_common():
        table.add_row(f"  reject: {reason}", f"{count:,}")
    for feature, count in summary.change_points.most_common():
        table.add_row(f"  change point: {feature}", f"{count:,}")
    out.print(table)
    if alerts:
        listing = Table("window end", "status", "severity", "kind", "feature", "statistic", "value", "threshold", title="alerts")
        for alert in alerts:
            statistic = alert["statistic"]
            listing.add_row(
                alert["window"]["end"], alert["status"], alert["severity"], alert["kind"], str(alert["feature"]),
                statistic["name"], f"{statistic['value']:.4g}", f"{statistic['threshold']:.4g}",
            )  # fmt: skip
        out.print(listing)
    out.print(f"{summary.events:,} events in {seconds:.1f} s ({summary.events / max(seconds, 1e-9):,.0f} events/s)")

