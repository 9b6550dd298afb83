"""docker-compose.yml cannot be run here (no Docker engine), so its wiring is checked by parsing."""

from __future__ import annotations

import re
import tomllib

import typer.main
import yaml

from stream import stack
from stream.cli import app
from stream.incidents.routing import RoutingConfig
from stream.settings import PROJECT_ROOT

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DRIFTLINE_SERVICES = {name: service for name, service in SERVICES.items() if service["image"].startswith("driftline:")}
# Commands that the compose file names ahead of their implementation, with the issue that brings them.
NOT_YET_IMPLEMENTED: dict[str, str] = {}


def test_images_are_pinned():
    for name, service in SERVICES.items():
        image, _, tag = service["image"].partition(":")
        assert tag and tag != "latest" and re.match(r"v?\d", tag), f"{name}: image {service['image']!r} is not pinned to a version"


def test_kafka_image_matches_the_local_broker_version():
    assert SERVICES["kafka"]["image"] == f"apache/kafka:{stack.kafka_version()}"


def test_driftline_image_version_matches_the_package():
    version = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert {service["image"] for service in DRIFTLINE_SERVICES.values()} == {f"driftline:{version}"}
    builders = [service for service in DRIFTLINE_SERVICES.values() if "build" in service]
    assert len(builders) == 1
    dockerfile = (PROJECT_ROOT / builders[0]["build"]["dockerfile"]).read_text()
    packages = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    for package in packages:
        assert f"COPY {package} {package}" in dockerfile


def test_kafka_runs_kraft_and_driftline_reaches_its_internal_listener():
    env = SERVICES["kafka"]["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in key for key in env)
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    assert set(advertised) | {"CONTROLLER"} == set(listeners)
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    assert "9092:9092" in SERVICES["kafka"]["ports"] and advertised["EXTERNAL"] == "localhost:9092"
    for name, service in DRIFTLINE_SERVICES.items():
        assert service["environment"]["DRIFTLINE_KAFKA"] == advertised["INTERNAL"], name
        assert service["environment"]["DRIFTLINE_REDIS"] == "redis://redis:6379/0", name
    assert "6379:6379" in SERVICES["redis"]["ports"]


def test_environment_names_are_the_ones_the_code_reads():
    source = "\n".join(path.read_text() for path in (PROJECT_ROOT / "stream").rglob("*.py"))
    read_by_code = set(re.findall(r'"(DRIFTLINE_[A-Z_]+)"', source))
    for name, service in DRIFTLINE_SERVICES.items():
        unknown = set(service["environment"]) - read_by_code
        assert not unknown, f"{name} sets {unknown}, which no driftline code reads"


def test_depends_on_is_wired_to_health():
    for name, service in SERVICES.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in SERVICES, f"{name} depends on unknown service {dependency}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], f"{name} waits for {dependency}'s health, which has no healthcheck"
    assert SERVICES["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for worker in ("ingest", "evaluate"):
        assert SERVICES[worker]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert SERVICES[worker]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_commands_are_driftline_commands():
    tree = typer.main.get_command(app)
    roles = {}
    for name, service in DRIFTLINE_SERVICES.items():
        command, path = tree, []
        for word in service["command"]:
            if word.startswith("-"):
                break
            path.append(word)
            command = command.commands.get(word) if hasattr(command, "commands") else None
            if command is None:
                break
        roles[name] = (path[0], command is not None)
    missing = {top for top, resolved in roles.values() if not resolved}
    assert missing <= set(NOT_YET_IMPLEMENTED), f"compose runs unknown driftline commands: {missing}"
    assert roles["topics"] == ("topics", True)


def test_incident_service_reads_a_mounted_routing_file_that_sends_to_the_compose_receiver(monkeypatch):
    service = SERVICES["incidents"]
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1)[::-1] for volume in service["volumes"])
    routing_file = PROJECT_ROOT / mounts[service["environment"]["DRIFTLINE_INCIDENTS_ROUTING"]]
    receiver_port = SERVICES["receiver"]["command"][SERVICES["receiver"]["command"].index("--port") + 1]
    assert service["environment"]["DRIFTLINE_DEMO_RECEIVER"] == f"http://receiver:{receiver_port}"
    monkeypatch.setenv("DRIFTLINE_DEMO_RECEIVER", service["environment"]["DRIFTLINE_DEMO_RECEIVER"])
    routing = RoutingConfig.load(routing_file)
    assert routing.default_receiver.url.startswith(f"http://receiver:{receiver_port}/")
    assert "6066:6066" in service["ports"] and service["environment"]["DRIFTLINE_INCIDENTS_HOST"] == "0.0.0.0"
