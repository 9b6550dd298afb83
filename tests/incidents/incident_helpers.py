"""Helpers of the incident-service tests: alert events, a webhook receiver, a worker subprocess."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jsonschema
import orjson
import yaml
from confluent_kafka import Producer

from stream.incidents.lifecycle import hex_id
from stream.settings import PROJECT_ROOT

ALERT_VALIDATOR = jsonschema.Draft202012Validator(orjson.loads((PROJECT_ROOT / "schemas" / "alert.schema.json").read_bytes()))


def make_alert(
    model_id: str,
    feature: str | None,
    *,
    kind: str = "data_drift",
    severity: str = "P1",
    status: str = "firing",
    window_start: str = "2026-11-24T04:00:00Z",
    incident_of: str | None = None,
    statistic: str = "psi",
) -> dict[str, Any]:
    """An alert event valid against schemas/alert.schema.json, ids made by the contract's recipe.

    ``incident_of``: alert_id of the incident's first alert (default: this alert's own id).
    """
    alert_id = hex_id(model_id, "v1", {}, kind, feature, statistic, window_start)
    alert = {
        "schema_version": "1.0",
        "alert_id": alert_id,
        "incident_id": hex_id("incident", incident_of or alert_id),
        "model_id": model_id,
        "model_version": "v1",
        "segment": {},
        "kind": kind,
        "feature": feature,
        "severity": severity,
        "status": status,
        "statistic": {"name": statistic, "value": 0.31 if status == "firing" else 0.05, "threshold": 0.2, "p_value": 0.001, "sample_size": 5000, "reference_size": 100000},
        "window": {"start": window_start, "end": "2026-11-24T05:00:00Z"},
        "reference": {"id": f"profiles/{model_id}.json", "description": "training data"},
        "summary": f"{feature or kind} {'drifted' if status == 'firing' else 'is back to normal'} on {model_id}",
        "suggested_action": "investigate",
        "related_alert_ids": [],
        "created_at": "2026-11-24T05:00:04.120Z",
    }
    ALERT_VALIDATOR.validate(alert)
    return alert


def drift_incident(model_id: str, features: list[str], severity: str = "P1", kind: str = "data_drift") -> list[dict[str, Any]]:
    """Firing alerts of one model the producer bundled into one incident (the first alert's)."""
    first = make_alert(model_id, features[0], severity=severity, kind=kind)
    return [first] + [make_alert(model_id, feature, severity=severity, kind=kind, incident_of=first["alert_id"]) for feature in features[1:]]


def resolved(alert: dict[str, Any]) -> dict[str, Any]:
    """The resolved event of a firing alert: same alert_id and incident_id."""
    event = {**alert, "status": "resolved", "statistic": {**alert["statistic"], "value": 0.05}, "summary": "back to normal"}
    ALERT_VALIDATOR.validate(event)
    return event


def publish_alerts(bootstrap: str, topic: str, alerts: list[dict[str, Any]], abort: list[dict[str, Any]] = (), timestamp_ms: int = 0) -> None:
    """Publish like the evaluate stage: in a Kafka transaction, keyed by model_id; ``abort`` goes in an aborted one first.

    ``timestamp_ms``: the records' timestamp (0: now), e.g. an earlier publication's to re-deliver it as it was."""
    # lz4, as stream.transaction.TransactionalProducer compresses: the service must decode it (aiokafka needs cramjam).
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"test-evaluate-{uuid.uuid4().hex}", "compression.type": "lz4"})
    producer.init_transactions(30)
    if abort:
        producer.begin_transaction()
        for alert in abort:
            producer.produce(topic, key=alert["model_id"].encode(), value=orjson.dumps(alert))
        producer.flush(30)
        producer.abort_transaction(30)
    producer.begin_transaction()
    for alert in alerts:
        producer.produce(topic, key=alert["model_id"].encode(), value=orjson.dumps(alert), timestamp=timestamp_ms)
    producer.commit_transaction(30)


def interruptible() -> None:
    """``preexec_fn`` of a child the test stops with Ctrl-C (SIGINT): a test session started as a
    background job of a non-interactive shell ignores SIGINT, and its children would inherit that
    (Python then installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    path: str
    idempotency_key: str
    body: Any
    at: float


@dataclass
class WebhookReceiver:
    """A local HTTP server recording every POST; the first ``fail_first`` requests get ``fail_status`` instead."""

    fail_first: int = 0
    fail_status: int = 503
    requests: list[Received] = field(default_factory=list)
    failed: int = 0

    def __post_init__(self) -> None:
        receiver = self
        self._lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    if receiver.failed < receiver.fail_first:
                        receiver.failed += 1
                        self.send_response(receiver.fail_status)
                        self.end_headers()
                        return
                    receiver.requests.append(Received(self.path, self.headers["Idempotency-Key"], orjson.loads(body), time.time()))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [request for request in self.requests if request.path == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def write_routing(path: Path, receiver: WebhookReceiver, routed_model: str, **timing: float) -> Path:
    """Routing for the tests: ``routed_model`` → slack (all) and pagerduty (P0); every other model is unrouted → fallback."""
    config = {
        "default_receiver": "fallback",
        "receivers": {
            "fallback": {"type": "webhook", "url": f"{receiver.url}/fallback"},
            "oncall": {"type": "pagerduty", "url": f"{receiver.url}/pagerduty?routing_key=test-key"},
        },
        "escalation_receivers": ["oncall"],
        "team_owners": {"ml": "ml-team@example.com", "data_engineering": "data-eng@example.com", "operations": "ops@example.com"},
        "timing": {f"{name}_seconds": value for name, value in timing.items()},
        "models": {
            routed_model: {
                "owners": ["risk-ml@example.com"],
                "routing": {
                    "receivers": {"ml-slack": {"type": "slack", "url": f"{receiver.url}/slack"}},
                    "routes": [{"receivers": ["ml-slack"]}, {"severities": ["P0"], "receivers": ["oncall"]}],
                },
            }
        },
    }
    path.write_text(yaml.safe_dump(config))
    return path


class ServiceProcess:
    """A process serving the incident API at ``port`` (the service itself, or ``driftline run`` supervising it), logging to ``log``."""

    def __init__(self, process: subprocess.Popen, port: int, log: Path) -> None:
        self.process, self.port, self.log_path = process, port, log
        self.api = f"http://127.0.0.1:{port}"

    def wait_ready(self, timeout: float = 60) -> None:
        """Ready once the API answers (alerts published before are read from the start)."""
        wait_until(lambda: self.get("/incidents") is not None, timeout, self.describe)

    def get(self, path: str) -> Any:
        assert self.process.poll() is None, self.describe()
        try:
            with urllib.request.urlopen(self.api + path, timeout=5) as response:
                return orjson.loads(response.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        request = urllib.request.Request(self.api + path, method="POST", data=orjson.dumps(body), headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, orjson.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, orjson.loads(exc.read())

    def describe(self) -> str:
        return f"worker exit code {self.process.poll()}; log tail:\n" + self.log_path.read_text(errors="replace")[-4000:]


class IncidentWorker(ServiceProcess):
    """``python -m stream.incidents`` as a subprocess with its own web port and data folder."""

    def __init__(self, bootstrap: str, prefix: str, routing: Path, data_dir: Path, log: Path) -> None:
        port = free_port()
        with open(log, "ab") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "stream.incidents", "--routing", str(routing), "--prefix", prefix,
                 "--web-port", str(port), "--data-dir", str(data_dir), "--tick-interval", "0.2"],
                cwd=PROJECT_ROOT, env={**os.environ, "DRIFTLINE_KAFKA": bootstrap}, stdout=output, stderr=subprocess.STDOUT,
            )  # fmt: skip
        super().__init__(process, port, log)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_until(condition: Callable[[], Any], timeout: float, describe: Callable[[], str] = lambda: "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout} s. {describe()}")
