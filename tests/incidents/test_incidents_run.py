"""``driftline run`` with a routing file: the supervisor starts the incident service next to ingest and
evaluate, an alert on the alerts topic reaches a local receiver, and SIGTERM (or Ctrl-C) stops every child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from confluent_kafka.admin import AdminClient

from stream.settings import PROJECT_ROOT, TopicSettings
from stream.topics import create_topics, plan_topics
from tests.incidents.incident_helpers import ServiceProcess, WebhookReceiver, drift_incident, free_port, publish_alerts, wait_until, write_routing
from tests.pipeline.harness import workload, write_model

pytestmark = pytest.mark.integration


def _children(pid: int) -> dict[int, str]:
    """Live child processes of ``pid``: pid → command line."""
    children = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # it exited meanwhile
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:  # field 4, after the parenthesised name
            children[int(entry.name)] = command
    return children


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _log_lines(path: Path) -> list[dict]:
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            lines.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue
    return [line for line in lines if isinstance(line, dict)]


def _start(arguments: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "stream", "run", *arguments], cwd=PROJECT_ROOT, env={**os.environ, **env},
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def test_role_all_with_routing_runs_the_incident_service_and_sigterm_stops_every_child(stack_settings, unique_name, tmp_path):
    bootstrap = stack_settings.kafka_bootstrap
    topics = TopicSettings(prefix=unique_name)
    create_topics(AdminClient({"bootstrap.servers": bootstrap}), plan_topics(topics))  # as `driftline topics create`
    receiver = WebhookReceiver()
    routing = write_routing(tmp_path / "routing.yaml", receiver, "routed-elsewhere", group_wait=0.5)
    config, _ = write_model(tmp_path, workload())
    port = free_port()
    env = {
        "DRIFTLINE_KAFKA": bootstrap, "DRIFTLINE_REDIS": stack_settings.redis_url,
        "DRIFTLINE_INCIDENTS_PORT": str(port), "DRIFTLINE_INCIDENTS_DATA_DIR": str(tmp_path / "incidents"),
    }  # fmt: skip
    log = tmp_path / "run.log"
    supervisor = _start([f"--config={config}", f"--prefix={unique_name}", f"--routing={routing}"], env, log)
    api = ServiceProcess(supervisor, port, log)
    try:
        children = wait_until(lambda: found if len(found := _children(supervisor.pid)) == 3 else None, 60, api.describe)
        assert sorted(" ".join(command.split()[2:4]) for command in children.values()) == ["stream incidents", "stream run", "stream run"]
        api.wait_ready()

        incident = drift_incident("fraud", ["amount", "age"])
        publish_alerts(bootstrap, topics.name("alerts"), incident)
        [delivery] = wait_until(lambda: receiver.at("/fallback"), 60, api.describe)
        [item] = delivery.body["items"]
        assert (item["announcement"], item["incident"]["incident_id"]) == ("opened", incident[0]["incident_id"])
        assert delivery.idempotency_key == delivery.body["idempotency_key"]

        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(90) == 0, api.describe()
        assert not [pid for pid in children if _alive(pid)], f"children left running: {children}"
        [stopped] = [line for line in _log_lines(log) if line.get("role") == "supervisor" and line["msg"] == "stopped"]
        assert stopped["fields"]["codes"] == {"ingest.0": 0, "evaluate.0": 0, "incidents.0": 0}
        assert any(line.get("role") == "incidents" for line in _log_lines(log)), "the service logs JSON lines like every worker"
    finally:
        if supervisor.poll() is None:
            os.killpg(supervisor.pid, signal.SIGKILL)
            supervisor.wait(10)
        receiver.close()


def test_role_incidents_alone_stops_on_ctrl_c(stack_settings, unique_name, tmp_path):
    """Ctrl-C in a terminal signals the whole process group: the service gets SIGINT and then the supervisor's SIGTERM."""
    bootstrap = stack_settings.kafka_bootstrap
    create_topics(AdminClient({"bootstrap.servers": bootstrap}), plan_topics(TopicSettings(prefix=unique_name)))
    receiver = WebhookReceiver()
    routing = write_routing(tmp_path / "routing.yaml", receiver, "routed-elsewhere")
    port = free_port()
    env = {"DRIFTLINE_KAFKA": bootstrap, "DRIFTLINE_INCIDENTS_PORT": str(port), "DRIFTLINE_INCIDENTS_DATA_DIR": str(tmp_path / "incidents")}
    log = tmp_path / "run.log"
    supervisor = _start(["--role=incidents", f"--prefix={unique_name}"], {**env, "DRIFTLINE_INCIDENTS_ROUTING": str(routing)}, log)
    api = ServiceProcess(supervisor, port, log)
    try:
        [service] = wait_until(lambda: _children(supervisor.pid) or None, 60, api.describe)
        api.wait_ready()
        os.killpg(supervisor.pid, signal.SIGINT)
        assert supervisor.wait(90) == 0, api.describe()
        assert not _alive(service)
    finally:
        if supervisor.poll() is None:
            os.killpg(supervisor.pid, signal.SIGKILL)
            supervisor.wait(10)
        receiver.close()


def test_role_incidents_without_routing_is_a_one_line_error(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "DRIFTLINE_INCIDENTS_ROUTING"}
    done = subprocess.run([sys.executable, "-m", "stream", "run", "--role=incidents"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["error: --role incidents needs a routing file: pass --routing routing.yaml or set DRIFTLINE_INCIDENTS_ROUTING"]
