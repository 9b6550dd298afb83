"""``driftline incidents``: run the incident service, or talk to its HTTP API.

``driftline incidents`` with no subcommand runs the service (a faust worker);
``list``, ``show``, ``ack``, ``resolve`` and ``silence`` call the API of a running one;
``receiver`` runs a local webhook receiver that prints each delivery (receiver.py).
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Optional

import faust
import orjson
import typer
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from rich.console import Console
from rich.table import Table

from stream import jsonlog
from stream.incidents.api import register_views
from stream.incidents.app import COMMANDS_ROLE, DELIVERIES_ROLE, IncidentService, ServiceSettings
from stream.incidents.receiver import LocalReceiver
from stream.incidents.routing import RoutingConfig
from stream.console import print_error
from stream.settings import ConfigError, StackSettings, TopicSettings
from stream.topics import ROLES, TopicPlan, create_topics

DEFAULT_API = "http://127.0.0.1:6066"

incidents_app = typer.Typer(
    help="Incidents: run the incident service (no subcommand), list/show/ack/resolve/silence through its API, or run a local receiver.",
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console(soft_wrap=True)
API_OPTION = typer.Option(DEFAULT_API, "--api", envvar="DRIFTLINE_INCIDENTS_API", help="URL of the incident service's API.")


@incidents_app.callback()
def run_service(
    ctx: typer.Context,
    routing: Path = typer.Option(Path("deploy/routing.example.yaml"), envvar="DRIFTLINE_INCIDENTS_ROUTING", help="Routing file (see deploy/routing.example.yaml)."),
    prefix: Optional[str] = typer.Option(None, help="Topic name prefix [env DRIFTLINE_TOPIC_PREFIX; default driftline]."),
    web_port: int = typer.Option(6066, envvar="DRIFTLINE_INCIDENTS_PORT", help="Port of the HTTP API."),
    web_host: str = typer.Option("127.0.0.1", envvar="DRIFTLINE_INCIDENTS_HOST", help="Address the HTTP API listens on."),
    data_dir: Optional[Path] = typer.Option(None, envvar="DRIFTLINE_INCIDENTS_DATA_DIR", help="faust's data folder [default <run dir>/incidents]."),
    tick_interval: float = typer.Option(1.0, min=0.05, help="Seconds between the checks for due announcements, escalations and digests."),
) -> None:
    """Run the incident service until interrupted."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        routing_config = RoutingConfig.load(routing)
        stack = StackSettings()
        topics = TopicSettings(prefix=prefix) if prefix else TopicSettings()
        settings = ServiceSettings(
            kafka_bootstrap=stack.kafka_bootstrap,
            topics=topics,
            partitions=prepare_topics(stack.kafka_bootstrap, topics),
            routing=routing_config,
            data_dir=data_dir or stack.run_dir / "incidents",
            web_port=web_port,
            web_host=web_host,
            tick_interval=tick_interval,
        )
    except ConfigError as exc:
        print_error(str(exc))
        raise typer.Exit(1) from None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    service = IncidentService(settings)
    register_views(service)
    jsonlog.configure("incidents", "0")  # faust logs as every driftline worker does: JSON lines on stderr
    worker = faust.Worker(service.app, loglevel="INFO", quiet=True, override_logging=False)
    worker.spinner = None  # a terminal progress spinner: escape codes in the log otherwise
    worker.execute_from_commandline()


def service_command(routing: Path, prefix: str) -> list[str]:
    """The command line that runs the service as a child process (``driftline run`` starts it so)."""
    return [sys.executable, "-m", "stream", "incidents", f"--routing={routing.resolve()}", f"--prefix={prefix}"]


def prepare_topics(bootstrap: str, topics: TopicSettings) -> int:
    """The alerts and dead-letter topics must exist; the service's own are created if missing
    (``driftline topics create`` creates them too) and must have the alerts topic's partition count."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        existing = admin.list_topics(timeout=30).topics
    except KafkaException as exc:
        raise ConfigError(f"cannot reach Kafka at {bootstrap} ({exc.args[0].str()}); start it with `driftline stack up` or set DRIFTLINE_KAFKA") from None
    for role in ("alerts", "deadletter"):
        if topics.name(role) not in existing:
            raise ConfigError(f"topic {topics.name(role)} does not exist at {bootstrap}; create the topics with `driftline topics create`")
    alerts = topics.name("alerts")
    partitions = len(existing[alerts].partitions)
    plans = [TopicPlan(topics.name(role), ROLES[role], partitions, ROLES[role].retention_ms) for role in (COMMANDS_ROLE, DELIVERIES_ROLE)]
    create_topics(admin, plans)  # a retention set by `driftline topics create --retention` is kept
    existing = admin.list_topics(timeout=30).topics
    for plan in plans:
        found = len(existing[plan.name].partitions)
        if found != partitions:
            raise ConfigError(
                f"topic {plan.name} has {found} partitions but {alerts} has {partitions}: the service sends to an incident's "
                f"partition by number, so they must match; delete {plan.name} (losing the requests pending in it) and restart"
            )
    return partitions


def _call(api: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        api.rstrip("/") + path, method=method, data=orjson.dumps(body) if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()
        try:
            message = orjson.loads(detail).get("error", detail.decode(errors="replace"))
        except orjson.JSONDecodeError:
            message = detail.decode(errors="replace")
        print_error(f"{exc.code}: {message}")
        raise typer.Exit(1) from None
    except urllib.error.URLError as exc:
        print_error(f"cannot reach the incident service at {api} ({exc.reason}); start it with `driftline incidents` or set --api")
        raise typer.Exit(2) from None


def _print_json(value: Any) -> None:
    out.print_json(orjson.dumps(value).decode())


@incidents_app.command("list")
def list_incidents(
    api: str = API_OPTION,
    state: Optional[str] = typer.Option(None, help="open, acknowledged or resolved."),
    model: Optional[str] = typer.Option(None, help="Only this model's incidents."),
    json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Incidents, newest first."""
    query = urllib.parse.urlencode({key: value for key, value in (("state", state), ("model_id", model)) if value})
    incidents = _call(api, "GET", "/incidents" + (f"?{query}" if query else ""))["incidents"]
    if json:
        _print_json(incidents)
        return
    table = Table("incident", "model", "state", "severity", "alerts", "opened")
    for incident in incidents:
        firing = sum(alert["status"] == "firing" for alert in incident["alerts"])
        table.add_row(incident["incident_id"], incident["model_id"], incident["state"], incident["severity"], f"{firing} firing / {len(incident['alerts'])}", incident["opened_at"])
    out.print(table)


@incidents_app.command("show")
def show_incident(incident_id: str, api: str = API_OPTION) -> None:
    """One incident with its alerts, owners and deliveries (JSON)."""
    _print_json(_call(api, "GET", f"/incidents/{incident_id}"))


@incidents_app.command("ack")
def acknowledge_incident(incident_id: str, api: str = API_OPTION, by: str = typer.Option(os.environ.get("USER", "cli"), help="Who acknowledges.")) -> None:
    """Acknowledge an open incident (stops its escalation)."""
    incident = _call(api, "POST", f"/incidents/{incident_id}/ack", {"by": by})
    out.print(f"{incident['incident_id']}: {incident['state']} by {incident['acknowledged_by']}")


@incidents_app.command("resolve")
def resolve_incident(incident_id: str, api: str = API_OPTION, by: str = typer.Option(os.environ.get("USER", "cli"), help="Who resolves.")) -> None:
    """Resolve an incident by hand."""
    incident = _call(api, "POST", f"/incidents/{incident_id}/resolve", {"by": by})
    out.print(f"{incident['incident_id']}: {incident['state']} by {incident['resolved_by']}")


@incidents_app.command("silence")
def silence_model(
    model_id: str,
    api: str = API_OPTION,
    minutes: float = typer.Option(60.0, "--minutes", min=0.1, help="How long; notifications are recorded but not sent."),
    reason: str = typer.Option("", help="Why (shown in the list of silences)."),
    lift: bool = typer.Option(False, "--lift", help="Lift the model's silence instead."),
    by: str = typer.Option(os.environ.get("USER", "cli"), help="Who silences."),
) -> None:
    """Silence a model's notifications for a while, or lift its silence."""
    if lift:
        _call(api, "DELETE", f"/silences/{model_id}")
        out.print(f"{model_id}: silence lifted")
        return
    silence = _call(api, "POST", "/silences", {"model_id": model_id, "duration_seconds": minutes * 60, "reason": reason, "by": by})
    out.print(f"{model_id}: silenced until {silence['until']}")


@incidents_app.command("receiver")
def run_receiver(
    port: int = typer.Option(9099, min=0, max=65535, help="Port to listen on (receivers' urls: http://127.0.0.1:PORT/<name>)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
) -> None:
    """A local webhook receiver printing each delivery as one line, until interrupted (for trying the service out)."""
    try:
        receiver = LocalReceiver(lambda line: out.print(line, highlight=False, markup=False), port, host).start()
    except OSError as exc:
        print_error(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port")
        raise typer.Exit(1) from None
    out.print(f"receiving deliveries at {receiver.url}/<receiver name>; Ctrl-C stops", highlight=False)
    try:
        while True:  # not one endless wait: Ctrl-C may reach a server thread, and Python acts on it in the main thread only
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        receiver.close()
