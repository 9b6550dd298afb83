"""The running workers keep the mirror whole: heartbeats with consumer lag from both roles, the
reference, detector states and open alerts; after Redis lost everything, a restarted evaluate worker
writes back what it restored, without waiting for new events."""

from __future__ import annotations

import pytest

from stream.mirror import RedisMirror
from tests.pipeline.harness import MODEL, PARTITIONS, Pipeline

pytestmark = pytest.mark.integration


def _open_alert_ids(alerts: list[dict]) -> set[str]:
    firing = {a["alert_id"] for a in alerts if a["status"] == "firing"}
    return firing - {a["alert_id"] for a in alerts if a["status"] == "resolved"}


def test_workers_mirror_lag_reference_detectors_and_refill_after_redis_loss(stack_settings, unique_name, tmp_path):
    pipeline = Pipeline(stack_settings, unique_name, tmp_path)
    mirror = RedisMirror(stack_settings.redis_url, prefix=unique_name)
    replayed, _, _ = pipeline.replay()
    expected_open = _open_alert_ids(replayed)
    assert expected_open, "the scenario must leave an alert open for this test to mean anything"
    pipeline.produce()
    pipeline.start("ingest")
    pipeline.start("evaluate")
    try:
        pipeline.wait_evaluated()

        def caught_up() -> bool:
            beats = {beat["role"]: beat["info"] for beat in mirror.model_state(MODEL)["workers"]}
            return (
                set(beats) == {"ingest", "evaluate"}
                and sum(".inference[" in source for source in beats["ingest"]["lag"]) == PARTITIONS
                and len(beats["evaluate"]["lag"]) == pipeline.topics.model_partitions
                and sum(beats["ingest"]["lag"].values()) == 0
                and beats["ingest"]["consumed"] == len(pipeline.values)
            )

        pipeline.wait_until(caught_up, "both workers report their partitions' lag, all consumed")

        def whole(state: dict) -> bool:
            detectors = {name for window in state["windows"] for name in window["detectors"]}
            return (
                {alert["alert_id"] for alert in state["open_alerts"]} == expected_open
                and pipeline.config.model_id in state["known_models"]
                and bool(state["references"])
                and "adwin:num_01" in detectors
            )

        pipeline.wait_until(lambda: whole(mirror.model_state(MODEL)), "the mirror holds open alerts, reference and detectors")

        # Redis loses everything; the restarted evaluate worker restores its models from Kafka and
        # writes them back although no new partial arrives.
        mirror.client.delete(*mirror.client.scan_iter(f"{unique_name}:*"))
        assert mirror.model_state(MODEL)["open_alerts"] == []
        pipeline.kill("evaluate")
        pipeline.start("evaluate")
        pipeline.wait_until(lambda: whole(mirror.model_state(MODEL)), "the restored worker refills the mirror")
    finally:
        pipeline.stop_all()
        keys = list(mirror.client.scan_iter(f"{unique_name}:*"))
        if keys:
            mirror.client.delete(*keys)
        mirror.close()
