"""A local webhook receiver that shows each delivery as one readable line (``driftline incidents receiver``).

For trying the service out and for the demo: point receivers at ``http://127.0.0.1:<port>/<name>``;
the first path segment is shown as the receiver's name. Every body type the service sends is
understood (templates.py); a delivery whose idempotency key was seen before is marked as a repeat,
which is what a real receiver would drop.

>>> delivery_lines("/ml-team", "k1", {"items": [{"announcement": "opened", "incident": {
...     "incident_id": "ab12", "model_id": "fraud", "severity": "P1", "alerts": [{"summary": "amount drifted"}]}}]})
['ml-team  ab12  P1  opened  fraud: amount drifted  key k1']
"""

from __future__ import annotations

import http.server
import threading
from typing import Any, Callable, Iterator

import orjson

UNKNOWN = "-"


def delivery_lines(path: str, idempotency_key: str, body: Any) -> list[str]:
    """One line per incident in a delivery: receiver, incident, severity, announcement, summary, idempotency key."""
    receiver = path.strip("/").split("/")[0].split("?")[0] or UNKNOWN
    return [
        f"{receiver}  {incident}  {severity}  {announcement}  {summary}  key {idempotency_key}"
        for incident, severity, announcement, summary in _items(body)
    ]


def _items(body: Any) -> Iterator[tuple[str, str, str, str]]:
    """(incident_id, severity, announcement, summary) of every incident a body tells about."""
    if isinstance(body, list):  # Alertmanager: one entry per alert
        incidents: dict[str, list[dict[str, Any]]] = {}
        for entry in body:
            incidents.setdefault(entry["labels"]["incident_id"], []).append(entry)
        for incident_id, entries in incidents.items():
            labels, annotations = entries[0]["labels"], entries[0]["annotations"]
            severity = min(entry["labels"]["severity"] for entry in entries)  # "P0" sorts first: the most severe
            yield incident_id, severity, annotations["announcement"], _summary(labels["model_id"], [e["annotations"]["summary"] for e in entries])
    elif "items" in body or "event_action" in body:  # generic webhook, or PagerDuty with the same items in custom_details
        for item in body["items"] if "items" in body else body["payload"]["custom_details"]["items"]:
            incident = item["incident"]
            summaries = [alert["summary"] for alert in incident["alerts"]]
            yield incident["incident_id"], incident["severity"], item["announcement"], _summary(incident["model_id"], summaries)
    else:  # Slack: only the text names the incident's model and severity
        yield UNKNOWN, UNKNOWN, UNKNOWN, body.get("text", UNKNOWN)


def _summary(model_id: str, summaries: list[str]) -> str:
    """The model and the summary of the incident's most recently added alert: one line, however many alerts."""
    more = f" (+{len(summaries) - 1} more alerts)" if len(summaries) > 1 else ""
    return f"{model_id}: {summaries[-1]}{more}"


class LocalReceiver:
    """An HTTP server on ``host:port`` (0: any free port) answering 200 to every POST and handing ``show`` its lines."""

    def __init__(self, show: Callable[[str], None], port: int = 0, host: str = "127.0.0.1") -> None:
        seen: set[str] = set()
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.end_headers()
                key = self.headers.get("Idempotency-Key") or UNKNOWN
                try:
                    lines = delivery_lines(self.path, key, orjson.loads(raw))
                except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                    lines = [f"{self.path}: a body this receiver does not understand ({type(exc).__name__}: {exc}): {raw[:200]!r}"]
                with lock:
                    repeat = key in seen
                    seen.add(key)
                    for line in lines:
                        show(line + ("  (repeat: drop)" if repeat else ""))

            def log_message(self, *args: Any) -> None:
                pass  # the lines above are the log

        self._server = http.server.ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "LocalReceiver":
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
