"""``driftline demo`` (``make run``) on the test stack: alerts and incident deliveries show up live, Ctrl-C stops everything."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from stream.settings import PROJECT_ROOT
from tests.incidents.incident_helpers import interruptible
from tests.incidents.test_incidents_run import _alive, _children

pytestmark = pytest.mark.integration

SCREEN_TIMEOUT = 300.0  # the drift starts after 30 s; windows of 5 s, 2 of 3 must violate; a busy machine is slower


def _start_demo(stack_settings, tmp_path) -> tuple[subprocess.Popen, list[str]]:
    """``driftline demo`` on the test stack, in its own session, with its screen collected line by line."""
    env = {
        **os.environ, "DRIFTLINE_KAFKA": stack_settings.kafka_bootstrap, "DRIFTLINE_REDIS": stack_settings.redis_url,
        "DRIFTLINE_RUN_DIR": str(tmp_path), "COLUMNS": "400",
    }  # fmt: skip
    demo = subprocess.Popen(
        [sys.executable, "-m", "stream", "demo"], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, preexec_fn=interruptible,
    )  # fmt: skip
    screen: list[str] = []
    threading.Thread(target=lambda: screen.extend(iter(demo.stdout.readline, "")), daemon=True).start()
    return demo, screen


def test_the_demo_shows_alerts_and_deliveries_and_ctrl_c_stops_everything(stack_settings, tmp_path):
    demo, screen = _start_demo(stack_settings, tmp_path)
    try:
        deadline = time.monotonic() + SCREEN_TIMEOUT
        while not any(" DELIVERY " in line for line in screen) and time.monotonic() < deadline and demo.poll() is None:
            time.sleep(1)
        text = "".join(screen)
        assert re.search(r"incidents API http://127\.0\.0\.1:\d+ ", text), text
        assert re.search(r"\d\d:\d\d:\d\d FIRING P[012] data_drift num_01", text), text
        deliveries = [line.rstrip("\n") for line in screen if " DELIVERY " in line]
        assert deliveries, f"no delivery on the screen within {SCREEN_TIMEOUT:.0f} s:\n{text[-3000:]}"
        delivery = deliveries[0]
        assert re.search(r" DELIVERY ml-team  [0-9a-f]{32}  P[012]  opened  demo-model: .+ drifted .+  key [0-9a-f]{32}$", delivery), delivery
        workers = _children(demo.pid)  # the supervisor of `driftline run`
        [supervisor] = [pid for pid, command in workers.items() if " stream run " in command]
        supervised = _children(supervisor)
        assert len(supervised) == 3, supervised

        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C: the demo's process group (the workers run in their own session)
        assert demo.wait(120) == 0, "".join(screen)[-3000:]
        assert not [pid for pid in [supervisor, *supervised] if _alive(pid)], "the demo left processes running"
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(10)


def test_sigterm_stops_the_demo_and_everything_it_started(stack_settings, tmp_path):
    demo, screen = _start_demo(stack_settings, tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not any(" sent " in line for line in screen) and time.monotonic() < deadline and demo.poll() is None:
            time.sleep(0.5)
        assert any(" sent " in line for line in screen), "".join(screen)[-3000:]
        [supervisor] = [pid for pid, command in _children(demo.pid).items() if " stream run " in command]
        supervised = _children(supervisor)
        demo.send_signal(signal.SIGTERM)  # `kill PID`, not the terminal's Ctrl-C to the whole group
        assert demo.wait(120) == 0, "".join(screen)[-3000:]
        assert not [pid for pid in [supervisor, *supervised] if _alive(pid)], "the demo left processes running"
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(10)
