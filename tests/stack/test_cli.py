"""`driftline stack` as a user meets it: idempotent up/down, status, and one-line errors."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from stream import stack
from stream.settings import StackSettings

pytestmark = pytest.mark.integration

DRIFTLINE = str(Path(sys.executable).with_name("driftline"))


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([DRIFTLINE, *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def private_stack_env(tmp_path):
    kafka, controller, redis_port = _free_ports(3)
    env = {key: value for key, value in os.environ.items() if key not in ("DRIFTLINE_KAFKA", "DRIFTLINE_REDIS")}
    env.update(
        DRIFTLINE_RUN_DIR=str(tmp_path / "run"),
        DRIFTLINE_KAFKA_PORT=str(kafka),
        DRIFTLINE_CONTROLLER_PORT=str(controller),
        DRIFTLINE_REDIS_PORT=str(redis_port),
    )
    yield env
    _run(["stack", "down", "--purge"], env)


def test_up_twice_status_down_twice_leaves_nothing_running(stack_settings, private_stack_env):
    first = _run(["stack", "up"], private_stack_env)
    assert first.returncode == 0, first.stderr
    assert "Kafka: started" in first.stdout and "Redis: started" in first.stdout
    second = _run(["stack", "up"], private_stack_env)
    assert second.returncode == 0, second.stderr
    assert "Kafka: already running" in second.stdout and "Redis: already running" in second.stdout

    status = _run(["stack", "status", "--json"], private_stack_env)
    assert status.returncode == 0, status.stderr
    report = orjson.loads(status.stdout)
    kafka_port = private_stack_env["DRIFTLINE_KAFKA_PORT"]
    assert report["kafka"]["version"] == f"Apache Kafka {stack.kafka_version()}"
    assert f"PLAINTEXT://127.0.0.1:{kafka_port}" in report["kafka"]["listeners"]
    assert report["kafka"]["topics"]["driftline.inference"] == report["kafka"]["topics"]["driftline.labels"] == 4
    assert report["redis"]["version"].startswith("7.") and report["redis"]["used_memory"]
    pids = [report["kafka"]["pid"], report["redis"]["pid"]]

    first_down = _run(["stack", "down"], private_stack_env)
    assert "Kafka: stopped" in first_down.stdout and "Redis: stopped" in first_down.stdout
    second_down = _run(["stack", "down"], private_stack_env)
    assert second_down.returncode == 0
    assert "Kafka: was not running" in second_down.stdout
    for pid in pids:
        assert not stack.is_running(pid, ""), f"pid {pid} still running after `stack down`"
    after = _run(["stack", "status"], private_stack_env)
    assert after.returncode == 3 and "down" in after.stdout


def test_second_up_downloads_nothing(stack_settings):
    assert stack.KafkaBroker(stack_settings).ensure_jars() is False


def test_taken_port_is_named_with_its_owner(private_stack_env):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(private_stack_env["DRIFTLINE_KAFKA_PORT"])))
        squatter.listen()
        result = _run(["stack", "up"], private_stack_env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert "\n" not in line
    assert f"port {private_stack_env['DRIFTLINE_KAFKA_PORT']} for the Kafka broker is already taken" in line
    assert f"(pid {os.getpid()})" in line
    assert "DRIFTLINE_KAFKA_PORT" in line


def test_missing_java_says_how_to_install_it(private_stack_env, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = {**private_stack_env, "PATH": str(bin_dir)}
    result = _run(["stack", "up"], env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "error: Java is not installed (Kafka 4 needs Java 17+): install it with "
        "`apt-get install -y openjdk-17-jre-headless`, then retry"
    )


def test_missing_maven_says_how_to_install_it(private_stack_env, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(shutil.which("java"))
    env = {**private_stack_env, "PATH": str(bin_dir), "DRIFTLINE_JARS_DIR": str(tmp_path / "jars")}
    result = _run(["stack", "up"], env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Maven (mvn) is not installed: install it with `apt-get install -y maven`" in result.stderr


def test_stale_pid_file_is_cleared(private_stack_env):
    settings = StackSettings(run_dir=Path(private_stack_env["DRIFTLINE_RUN_DIR"]))
    broker = stack.KafkaBroker(settings)
    broker.folder.mkdir(parents=True)
    broker.process.pid_file.write_text("999999999")  # above pid_max: no such process
    assert broker.process.running_pid() is None
    assert not broker.process.pid_file.exists()


def test_stale_data_folder_names_the_fix(private_stack_env):
    run_dir = Path(private_stack_env["DRIFTLINE_RUN_DIR"])
    (run_dir / "kafka" / "data").mkdir(parents=True)
    (run_dir / "kafka" / "data" / "leftover.log").write_text("half-formatted")
    result = _run(["stack", "up"], private_stack_env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "stale run folder" in result.stderr and "driftline stack down --purge" in result.stderr


def test_bad_port_setting_names_the_variable(private_stack_env):
    result = _run(["stack", "status"], {**private_stack_env, "DRIFTLINE_REDIS_PORT": "63.79"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "DRIFTLINE_REDIS_PORT='63.79' is not a whole number" in result.stderr
