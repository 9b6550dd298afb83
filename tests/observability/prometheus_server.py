"""Debian's Prometheus for the test session: 127.0.0.1, a generated scrape config, data under the run folder.

Tests register the workers they start as file-based service discovery targets (one JSON file per
test under ``targets/``), so concurrent sessions share one server: it watches the folder and
scrapes every second. Each test labels its targets with its topic prefix and queries by it. The
server is shared like the stack (tests/conftest.py): under a file lock, stopped by the last session.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from stream.stack import ManagedProcess, StackError, ensure_debian_package, ensure_port_free, is_running

PORT = int(os.environ.get("DRIFTLINE_TEST_PROMETHEUS_PORT") or 19090)
SCRAPE_SECONDS = 1
READY_TIMEOUT_SECONDS = 60.0


class PrometheusServer:
    """One Prometheus on 127.0.0.1:``port`` with its config, data and targets in ``folder``."""

    def __init__(self, folder: Path, port: int = PORT) -> None:
        self.folder = folder
        self.port = port
        self.targets = folder / "targets"
        self.data = folder / "data"
        self.process = ManagedProcess("prometheus", folder, f"--storage.tsdb.path={self.data.resolve()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def scrape_config(self) -> dict[str, Any]:
        """Scrape every worker a test registered, every second."""
        return {
            "global": {"scrape_interval": f"{SCRAPE_SECONDS}s", "scrape_timeout": f"{SCRAPE_SECONDS}s", "evaluation_interval": f"{SCRAPE_SECONDS}s"},
            "scrape_configs": [
                {
                    "job_name": "driftline",
                    "file_sd_configs": [{"files": [str(self.targets.resolve() / "*.json")], "refresh_interval": f"{SCRAPE_SECONDS}s"}],
                }
            ],
        }

    def start(self) -> bool:
        """Start the server unless ours runs; returns whether it started one."""
        if self.process.running_pid() is not None:
            return False
        ensure_debian_package("prometheus", "prometheus")
        ensure_port_free(self.port, "the test Prometheus", "DRIFTLINE_TEST_PROMETHEUS_PORT")
        self.targets.mkdir(parents=True, exist_ok=True)
        config = self.folder / "prometheus.yml"
        config.write_text(json.dumps(self.scrape_config(), indent=2))  # YAML is a superset of JSON
        pid = self.process.spawn([
            "prometheus", f"--config.file={config.resolve()}", f"--storage.tsdb.path={self.data.resolve()}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1d", "--log.level=warn",
        ])  # fmt: skip
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.exited_with(pid) is not None:
                self.process.pid_file.unlink(missing_ok=True)
                raise StackError(f"prometheus exited during start-up ({self.process.log_tail()})")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return True
            time.sleep(0.2)
        raise StackError(f"prometheus was not ready within {READY_TIMEOUT_SECONDS:.0f} s; see {self.process.log_file}")

    def stop(self) -> bool:
        return self.process.stop()

    def version(self) -> str:
        return self._get("/api/v1/status/buildinfo")["version"]

    def register(self, name: str, targets: Mapping[str, Mapping[str, str]]) -> Path:
        """Scrape ``targets`` (address -> labels) from now on, under ``name``; returns the file to delete."""
        path = self.targets / f"{name}.json"
        staged = path.with_suffix(".tmp")  # written whole, then renamed: Prometheus never reads half a file
        staged.write_text(json.dumps([{"targets": [address], "labels": dict(labels)} for address, labels in targets.items()]))
        staged.rename(path)
        return path

    def query(self, expression: str) -> list[dict[str, Any]]:
        """An instant query's result vector; raises AssertionError with Prometheus' message on an error."""
        return self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expression}))["result"]

    def query_range(self, expression: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        parameters = {"query": expression, "start": start, "end": end, "step": step}
        return self._get("/api/v1/query_range?" + urllib.parse.urlencode(parameters))["result"]

    def active_targets(self) -> list[dict[str, Any]]:
        return self._get("/api/v1/targets?state=active")["activeTargets"]

    def _get(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:  # 400/422: a bad expression; the body says why
            body = json.load(exc)
        assert body["status"] == "success", f"{path}: {body.get('errorType')}: {body.get('error')}"
        return body["data"]


@contextlib.contextmanager
def shared_by_sessions(server: PrometheusServer) -> Iterator[PrometheusServer]:
    """The server for this session: started by the first concurrent session, stopped by the last."""
    server.folder.mkdir(parents=True, exist_ok=True)
    sessions = server.folder / "sessions"
    with _locked(server.folder / ".lock"):
        server.start()
        sessions.mkdir(exist_ok=True)
        (sessions / str(os.getpid())).touch()
    try:
        yield server
    finally:
        with _locked(server.folder / ".lock"):
            (sessions / str(os.getpid())).unlink(missing_ok=True)
            if not any(is_running(int(other.name), "") for other in sessions.iterdir()):
                server.stop()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def free_ports(count: int, start: int = 19400, stop: int = 19900) -> int:
    """The first of ``count`` consecutive ports that are free now (for a supervisor's ``--metrics-port``)."""
    for base in range(start + (os.getpid() % 50) * count, stop - count):
        try:
            for port in range(base, base + count):
                ensure_port_free(port, "", "")
        except StackError:
            continue
        return base
    raise StackError(f"no {count} consecutive free ports in {start}-{stop}")

