"""The observability tests' Prometheus (Debian's package, installed if missing), shared by concurrent sessions."""

from __future__ import annotations

import pytest

from stream.settings import PROJECT_ROOT
from tests.observability.prometheus_server import PrometheusServer, shared_by_sessions

_used: list[str] = []


@pytest.fixture(scope="session")
def prometheus() -> PrometheusServer:
    with shared_by_sessions(PrometheusServer(PROJECT_ROOT / ".run" / "test-stack" / "prometheus")) as server:
        _used.append(f"Prometheus {server.version()} at {server.url}")
        yield server


def pytest_terminal_summary(terminalreporter) -> None:
    if _used:
        terminalreporter.write_line(f"observability tests queried the real {_used[0]}")
