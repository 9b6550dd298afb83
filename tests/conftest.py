"""The test session's stack: the real Kafka broker and Redis.

If DRIFTLINE_KAFKA and DRIFTLINE_REDIS point at running services, tests use them;
otherwise the session starts the local stack on test ports in its own run folder
(.run/test-stack). Concurrent sessions share it and the last one to finish stops it.
Tests create uniquely named topics, so a session can run twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid

import pytest

from stream import stack
from stream.settings import PROJECT_ROOT, StackSettings

TEST_PORTS = {"kafka_port": 19092, "controller_port": 19093, "redis_port": 16379}
_used_services: dict[str, str] = {}


def _test_settings() -> StackSettings:
    defaults = StackSettings()
    if defaults.external_kafka and defaults.external_redis:
        return defaults
    return defaults.with_overrides(run_dir=PROJECT_ROOT / ".run" / "test-stack", **TEST_PORTS)


@contextlib.contextmanager
def _stack_lock(settings: StackSettings):
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.run_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def stack_settings() -> StackSettings:
    """The stack, shared by concurrent test sessions: the last session to finish stops it."""
    settings = _test_settings()
    local = not (settings.external_kafka and settings.external_redis)
    sessions = settings.run_dir / "sessions"
    with _stack_lock(settings):
        stack.up(settings)
        if local:
            sessions.mkdir(exist_ok=True)
            (sessions / str(os.getpid())).touch()
    report = stack.status(settings)
    assert report["kafka"]["up"] and report["redis"]["up"], report
    _used_services["kafka"] = f"{report['kafka']['version']} at {settings.kafka_bootstrap}"
    _used_services["redis"] = f"Redis {report['redis']['version']} at {settings.redis_url}"
    yield settings
    if local:
        with _stack_lock(settings):
            (sessions / str(os.getpid())).unlink(missing_ok=True)
            if not any(stack.is_running(int(other.name), "") for other in sessions.iterdir()):
                stack.down(settings)


@pytest.fixture
def unique_name(request) -> str:
    """A topic-safe name unique to this test run."""
    return f"t-{request.node.name[:40].replace('[', '-').replace(']', '')}-{uuid.uuid4().hex[:8]}"


def pytest_terminal_summary(terminalreporter) -> None:
    if _used_services:
        terminalreporter.write_line(
            f"integration tests ran against the real {_used_services['kafka']} and {_used_services['redis']}"
        )
