"""Redis down: mirror writes neither raise nor stall, and refill Redis once it is back."""

from __future__ import annotations

import logging
import socket
import threading
import time
from urllib.parse import urlparse

import pytest

from stream.mirror import MirrorUnavailable, RedisMirror
from tests.mirror.conftest import MODEL_ID, VERSION, drift_story
from tests.mirror.scenario import reference

pytestmark = pytest.mark.integration


class RedisComesBack:
    """A port where nothing listens until ``open()``; then it forwards connections to the real Redis."""

    def __init__(self, redis_url: str) -> None:
        target = urlparse(redis_url)
        self.target = (target.hostname, target.port)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.listener: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def open(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            sink.close()


def test_writes_while_redis_is_down_do_not_raise_and_refill_it_when_it_is_back(stack_settings, prefix, mirror, caplog):
    evaluator, story = drift_story()
    redis_port = RedisComesBack(stack_settings.redis_url)
    outage = RedisMirror(redis_port.url, prefix, retry_seconds=0.0)
    caplog.set_level(logging.INFO, logger="stream.mirror")
    started = time.monotonic()
    try:
        for evaluation in story:
            outage.evaluation(evaluation, evaluator.config.policy)
            outage.alerts(evaluation.alerts)
        outage.reference(reference(MODEL_ID, VERSION))
        outage.detector_states(MODEL_ID, VERSION, {}, {"adwin:x": {"width": 7}})
        assert time.monotonic() - started < 5.0, "writes to an unreachable Redis stall the worker"
        assert len([r for r in caplog.records if "unavailable" in r.getMessage()]) == 1  # rate-limited
        assert mirror.model_state(MODEL_ID)["windows"] == []

        redis_port.open()
        outage.heartbeat("evaluate", "w1", {"lag": {}})
    finally:
        redis_port.close()
        outage.close()

    state = mirror.model_state(MODEL_ID)
    [window] = state["windows"]
    assert window["event_count"] == story[-1].event_count
    assert window["end"].startswith(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(story[-1].end)))
    assert window["detectors"] == {"adwin:x": {"width": 7}}
    assert state["open_alerts"] == evaluator.policy.open_alerts
    assert state["recent_alerts"] == [a for e in story for a in e.alerts][::-1]
    assert state["references"][VERSION]["row_count"] == 5000
    assert [w["worker_id"] for w in state["workers"]] == ["w1"]
    events = [a for e in story for a in e.alerts]
    # Only the latest write of a group is kept: one evaluation, one open-alerts entry per alert, one
    # recent-alerts push per event, the reference, the detector states and the heartbeat.
    groups = 1 + len({e["alert_id"] for e in events}) + len(events) + 3
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        f"Redis mirror at {redis_port.url} is back; {groups} key groups sent"
    ]


def test_writes_wait_for_the_retry_interval_after_a_failure(stack_settings, prefix, mirror):
    redis_port = RedisComesBack(stack_settings.redis_url)
    patient = RedisMirror(redis_port.url, prefix, retry_seconds=1.0)
    try:
        patient.heartbeat("evaluate", "w1", {})
        redis_port.open()
        patient.heartbeat("evaluate", "w2", {})
        assert mirror.model_state(MODEL_ID)["workers"] == []  # still backing off: nothing sent yet
        time.sleep(1.1)
        patient.heartbeat("evaluate", "w3", {})
    finally:
        redis_port.close()
        patient.close()
    assert sorted(w["worker_id"] for w in mirror.model_state(MODEL_ID)["workers"]) == ["w1", "w2", "w3"]


def test_reading_from_a_redis_that_is_down_says_what_to_do(stack_settings):
    closed = RedisComesBack(stack_settings.redis_url)
    with pytest.raises(MirrorUnavailable, match=r"is not reachable .*driftline stack up"):
        RedisMirror(closed.url).model_state(MODEL_ID)


def test_writes_redis_refuses_are_dropped_not_resent(prefix, mirror, caplog):
    mirror.client.set(f"{prefix}:models", "not a sorted set")
    mirror.reference(reference(MODEL_ID, VERSION))  # its ZADD to the models index fails: WRONGTYPE
    assert mirror.dropped == 1
    assert [r.levelno for r in caplog.records if "refused" in r.getMessage()] == [logging.WARNING]
    mirror.client.delete(f"{prefix}:models")
    mirror.heartbeat("evaluate", "w1", {})
    state = mirror.model_state(MODEL_ID)
    assert [w["worker_id"] for w in state["workers"]] == ["w1"]
    assert state["known_models"] == []  # the refused write was not sent again
