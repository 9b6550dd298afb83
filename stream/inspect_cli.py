"""Inspection commands: ``driftline alerts tail`` (the alerts topic) and ``driftline state show`` (the Redis mirror).

Registered in stream/cli.py.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Optional

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stream.console import friendly_errors
from stream.mirror import RedisMirror, segment_key
from stream.settings import ConfigError, StackSettings, TopicSettings
from stream.tail import show, tail

alerts_app = typer.Typer(help="Alert events as the evaluate workers published them.", no_args_is_help=True)
state_app = typer.Typer(help="Live monitoring state mirrored in Redis by the evaluate workers.", no_args_is_help=True)
out = Console(soft_wrap=True, emoji=False)  # ":x:" in "adwin:x:..." is a name, not an emoji

SEVERITY_STYLES = {"P0": "bold red", "P1": "yellow", "P2": "cyan"}
STATUS_STYLES = {"firing": "red", "resolved": "green"}
ALERT_COLUMNS = ("time", "severity", "status", "model/version", "kind", "feature", "statistic", "summary")


@alerts_app.command("tail")
@friendly_errors
def alerts_tail(
    ctx: typer.Context,
    last: int = typer.Option(20, min=0, help="How many of the newest alerts to show first (per partition, then the newest overall)."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new alerts until Ctrl-C."),
    json: bool = typer.Option(False, "--json", help="Print the alert events as JSON lines."),
    prefix: Optional[str] = typer.Option(None, help="Topic name prefix [env DRIFTLINE_TOPIC_PREFIX; default driftline]."),
) -> None:
    """Show alert events: time, severity, status, model, kind, feature, statistic against threshold, summary."""
    topic = (TopicSettings(prefix=prefix) if prefix else TopicSettings()).name("alerts")
    show(tail(ctx.obj.kafka_bootstrap, topic, last, follow), json, lambda records: _print_alerts(records, follow))


def _alert_cells(record: dict) -> tuple[str, ...]:
    """Rich-markup cells of one alert event (``record`` may be an undecodable one from ``tail``)."""
    if "undecodable" in record:
        return ("?", "", "", "", "", "", "", escape(f"(not an alert event) {record['undecodable'][:80]}"))
    severity, status, statistic = record["severity"], record["status"], record["statistic"]
    model = f"{record['model_id']}/{record['model_version']}"
    if record["segment"]:
        model += f" [{segment_key(record['segment'])}]"
    comparison = "≥" if statistic["value"] >= statistic["threshold"] else "<"
    return (
        record["created_at"],
        f"[{SEVERITY_STYLES[severity]}]{severity}[/]",
        f"[{STATUS_STYLES[status]}]{status}[/]",
        escape(model),
        record["kind"],
        escape(record["feature"] or "-"),
        f"{statistic['name']} {statistic['value']:.4g} {comparison} {statistic['threshold']:.4g}",
        escape(record["summary"]),
    )


def _print_alerts(records: Iterable[dict], follow: bool) -> None:
    if not follow:
        table = Table(title="alerts")
        for column in ALERT_COLUMNS:
            table.add_column(column, no_wrap=column != "summary")
        for record in records:
            table.add_row(*_alert_cells(record))
        out.print(table, highlight=False)
        return
    out.print("  ".join(ALERT_COLUMNS))
    for record in records:
        out.print("  ".join(_alert_cells(record)), highlight=False)


@state_app.command("show")
@friendly_errors
def state_show(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="model_id"),
    version: Optional[str] = typer.Option(None, help="Only this model_version."),
    json: bool = typer.Option(False, "--json", help="Print the state as JSON."),
    prefix: Optional[str] = typer.Option(None, help="Name prefix of the topics and Redis keys the workers use [env DRIFTLINE_TOPIC_PREFIX; default driftline]."),
) -> None:
    """Latest window per version/segment with per-feature statistics (worst drift first), open alerts, references, workers."""
    settings: StackSettings = ctx.obj
    prefix = (TopicSettings(prefix=prefix) if prefix else TopicSettings()).prefix
    mirror = RedisMirror(settings.redis_url, prefix)
    try:
        state = mirror.model_state(model, version)
    finally:
        mirror.close()
    if not (state["windows"] or state["open_alerts"] or state["recent_alerts"] or state["references"]):
        scope = f"model {model}" + (f" version {version}" if version else "")
        known = ", ".join(state["known_models"][:20]) or "none"
        raise ConfigError(
            f"no state for {scope} in Redis at {settings.redis_url} (key prefix {prefix}); known models: {known}. "
            "check the model id and --prefix, or start the workers (`driftline run`) so they mirror it"
        )
    if json:
        sys.stdout.write(orjson.dumps(state, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    _print_state(state)


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def _ratio(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    style = "bold red" if ratio >= 1 else "yellow" if ratio >= 0.5 else "green"
    return f"[{style}]{ratio:.2f}[/]"


_CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "calibration_error")
_REGRESSION_METRICS = ("mae", "rmse", "mape", "r2", "mean_error")


def _performance_lines(performance: dict) -> list[str]:
    """The latest performance window (metrics, reference, label lag, tests) and label coverage of a key."""
    lines = []
    latest = performance.get("window")
    if latest is not None:
        metrics, reference = latest["metrics"], latest["reference"]
        names = _CLASSIFICATION_METRICS if "accuracy" in metrics else _REGRESSION_METRICS
        lines.append(
            f"  performance {latest['start']} → {latest['end']}, {latest['label_count']:,} labels: "
            + " ".join(f"{name}={_number(metrics.get(name))}" for name in names)
        )
        if reference is not None:
            lines.append("  reference performance: " + " ".join(f"{name}={_number(reference.get(name))}" for name in names))
        lag = metrics["label_lag"]
        lines.append(
            f"  label lag (s): p50={_number(lag['p50'])} p95={_number(lag['p95'])} p99={_number(lag['p99'])} "
            f"max={_number(lag['max'])}, {lag['early']:,} labels stamped before their prediction"
        )
        for test in sorted(latest["tests"], key=lambda test: -test["ratio"]):
            feature = f" {test['feature']}" if test.get("feature") else ""
            lines.append(
                f"  test {test['kind']}/{test['statistic']}{feature}: {_number(test['value'])} vs threshold "
                f"{_number(test['threshold'])} (ratio {test['ratio']:.2f}, p-value {_number(test['p_value'])})"
            )
        for name, detector in latest["detectors"].items():
            lines.append(f"  error-stream detector {name}: {orjson.dumps(detector).decode()}")
    coverage = performance.get("coverage")
    if coverage is not None:
        lines.append(
            f"  label coverage {_number(coverage['coverage'])}: {coverage['labelled']:,} of {coverage['predicted']:,} "
            f"predictions of {coverage['start']} → {coverage['end']} labelled"
        )
    return lines


def _print_state(state: dict) -> None:
    out.print(f"[bold]{state['model_id']}[/]", highlight=False)
    for window in state["windows"]:
        segment = "all traffic" if window["segment_key"] == "-" else f"segment {window['segment_key']}"
        heading = f"version {window['model_version']}, {segment}"
        if "start" in window:
            heading += f": window {window['start']} → {window['end']}, {window['event_count']:,} events, evaluated {window['evaluated_at']}"
        if window.get("change_points"):
            heading += f"; change points: {', '.join(window['change_points'])}"
        heading = escape(heading)
        table = Table("feature", "worst test", "value", "threshold", "value/threshold", "p-value", "statistics", title=heading, title_justify="left")
        ranked = sorted(window["features"].items(), key=lambda item: -(item[1]["worst_ratio"] if item[1]["worst_ratio"] is not None else -1))
        for feature, entry in ranked:
            worst = max(entry["tests"], key=lambda test: test["ratio"], default=None)
            statistics = " ".join(f"{name}={_number(value)}" for name, value in entry["statistics"].items())
            if worst is None:
                table.add_row(escape(feature), "-", "-", "-", "-", "-", statistics)
            else:
                table.add_row(
                    escape(feature), f"{worst['kind']}/{worst['statistic']}", _number(worst["value"]), _number(worst["threshold"]),
                    _ratio(worst["ratio"]), _number(worst["p_value"]), statistics,
                )  # fmt: skip
        # A key with performance but no drift evaluation yet has no feature rows: its heading is enough.
        out.print(table if window["features"] else heading, highlight=False)
        for name, detector in window["detectors"].items():
            out.print(escape(f"  detector {name}: {orjson.dumps(detector).decode()}"), highlight=False)
        for line in _performance_lines(window.get("performance", {})):
            out.print(escape(line), highlight=False)

    alerts = Table(*ALERT_COLUMNS, title=f"open alerts ({len(state['open_alerts'])})", title_justify="left")
    for alert in state["open_alerts"]:
        alerts.add_row(*_alert_cells(alert))
    out.print(alerts, highlight=False)

    if state["references"]:
        references = Table("version", "source", "rows", "features", "created", title="reference profiles", title_justify="left")
        for version, summary in state["references"].items():
            references.add_row(version, escape(summary["source"]), f"{summary['row_count']:,}", str(len(summary["features"])), summary["created_at"])
        out.print(references, highlight=False)

    workers = Table("role", "worker", "last seen", "lag", "lag by partition", "info", title="workers", title_justify="left")
    for beat in state["workers"]:
        info = dict(beat["info"])
        lag = info.pop("lag", {})
        seconds = time.time() - datetime.fromisoformat(beat["at"]).timestamp()
        workers.add_row(
            escape(beat["role"]), escape(beat["worker_id"]), f"{seconds:.0f} s ago", f"{sum(lag.values()):,}" if lag else "-",
            escape(", ".join(f"{source}: {behind:,}" for source, behind in sorted(lag.items()))),
            escape(orjson.dumps(info).decode()),
        )  # fmt: skip
    out.print(workers if state["workers"] else "workers: no heartbeat (no worker is running, or none mirrors to this Redis)", highlight=False)
