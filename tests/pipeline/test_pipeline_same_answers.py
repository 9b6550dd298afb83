"""Streaming and replay give the same answers for the same events.

30,000 events (an abrupt 1 sd shift of num_01 after 12,000, 1 % malformed) go through ``Replay`` in
this process and through Kafka: an ingest worker (decode, windows per source partition, partials)
and an evaluate worker (merge, evaluator, alerts), as separate processes over 4 partitions.
"""

from __future__ import annotations

import pytest

from tests.pipeline.harness import Pipeline, assert_same_answers

pytestmark = pytest.mark.integration


def test_streaming_alerts_deadletters_and_window_counts_equal_replay(stack_settings, unique_name, tmp_path):
    pipeline = Pipeline(stack_settings, unique_name, tmp_path)
    pipeline.produce()
    pipeline.start("ingest")
    pipeline.start("evaluate")
    try:
        pipeline.wait_evaluated()
    finally:
        pipeline.stop_all()
    assert_same_answers(pipeline)
