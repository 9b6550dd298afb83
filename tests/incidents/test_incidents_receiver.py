"""The local webhook receiver of the demo and of ``driftline incidents receiver``: one readable line per delivery."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request

import orjson
import pytest

from stream.incidents.receiver import LocalReceiver, delivery_lines
from stream.incidents.templates import Notice, NoticeItem, render
from stream.settings import PROJECT_ROOT
from tests.incidents.incident_helpers import free_port, interruptible, wait_until
from tests.incidents.test_incidents_templates import _incident

KEY = "fedcba9876543210fedcba9876543210"


def _post(url: str, body: bytes, key: str) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json", "Idempotency-Key": key})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


@pytest.mark.parametrize("receiver_type", ["webhook", "pagerduty", "alertmanager"])
def test_a_line_names_receiver_incident_severity_announcement_summary_and_key(receiver_type):
    incident = _incident(severity="P0")
    body = render(receiver_type, "http://x/oncall?routing_key=k", Notice(KEY, (NoticeItem("opened", incident, ()),)))
    [line] = delivery_lines("/oncall?routing_key=k", KEY, orjson.loads(orjson.dumps(body)))
    assert line.split("  ") == ["oncall", incident.incident_id, "P0", "opened", "fraud: age drifted on fraud (+1 more alerts)", f"key {KEY}"]


def test_a_digest_gives_one_line_per_incident_and_slack_only_its_headline():
    first, second = _incident(severity="P2"), _incident(severity="P2", resolve_all=True)
    digest = Notice(KEY, (NoticeItem("opened", first, ()), NoticeItem("resolved", second, ())), digest=True)
    lines = delivery_lines("/team", KEY, render("webhook", "http://x", digest))
    assert [line.split("  ")[3] for line in lines] == ["opened", "resolved"]
    [slack] = delivery_lines("/team", KEY, render("slack", "http://x", Notice(KEY, (NoticeItem("opened", first, ()),))))
    assert slack == f"team  -  -  -  [P2] fraud: incident opened (2 firing of 2 alerts)  key {KEY}"


def test_the_receiver_answers_200_and_marks_repeats_and_bodies_it_cannot_read():
    lines: list[str] = []
    receiver = LocalReceiver(lines.append).start()
    try:
        body = orjson.dumps(render("webhook", "http://x", Notice(KEY, (NoticeItem("opened", _incident(), ()),))))
        assert _post(f"{receiver.url}/ops", body, KEY) == 200
        assert _post(f"{receiver.url}/ops", body, KEY) == 200
        assert _post(f"{receiver.url}/ops", b"not json", "other") == 200
    finally:
        receiver.close()
    assert lines[0].endswith(f"key {KEY}") and lines[1] == lines[0] + "  (repeat: drop)"
    assert lines[2].startswith("/ops: a body this receiver does not understand")


def test_the_cli_command_prints_deliveries_until_ctrl_c():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "stream", "incidents", "receiver", "--port", str(port)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True,
        preexec_fn=interruptible,
    )
    try:
        assert f"receiving deliveries at http://127.0.0.1:{port}/<receiver name>" in process.stdout.readline()
        body = orjson.dumps(render("webhook", "http://x", Notice(KEY, (NoticeItem("resolved", _incident(), ()),))))
        wait_until(lambda: _try_post(f"http://127.0.0.1:{port}/ops", body), 30)
        assert process.stdout.readline().startswith("ops  ")
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def _try_post(url: str, body: bytes) -> bool:
    try:
        return _post(url, body, KEY) == 200
    except OSError:
        return False
