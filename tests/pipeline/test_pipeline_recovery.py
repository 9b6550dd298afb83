"""kill -9 of a worker mid-stream changes nothing: the restarted worker resumes from the state and
offsets committed together, so window counts stay exact and the alerts are those of an
uninterrupted run (which tests/pipeline/test_pipeline_same_answers.py shows equal replay's)."""

from __future__ import annotations

import pytest

from tests.pipeline.harness import EVENTS, Pipeline, assert_same_answers

pytestmark = pytest.mark.integration

SMALL_BATCHES = 500  # many transactions, so the kill lands between and inside them


def test_ingest_killed_mid_stream_restores_open_windows_exactly(stack_settings, unique_name, tmp_path):
    pipeline = Pipeline(stack_settings, unique_name, tmp_path)
    pipeline.produce()
    pipeline.start("evaluate")
    pipeline.start("ingest", batch_size=SMALL_BATCHES)
    try:
        pipeline.wait_until(lambda: pipeline.committed("ingest", "inference") >= EVENTS * 2 // 5, "ingest commits 40 %")
        pipeline.kill("ingest")
        at_kill = pipeline.committed("ingest", "inference")
        assert at_kill < EVENTS, "the kill must land mid-stream"
        pipeline.start("ingest", batch_size=SMALL_BATCHES)
        pipeline.wait_evaluated()
    finally:
        pipeline.stop_all()
    assert_same_answers(pipeline)


def test_evaluate_killed_mid_stream_resumes_from_its_checkpoint(stack_settings, unique_name, tmp_path):
    pipeline = Pipeline(stack_settings, unique_name, tmp_path)
    pipeline.produce()
    pipeline.start("ingest", batch_size=SMALL_BATCHES)
    pipeline.start("evaluate", batch_size=20)
    mid_stream = pipeline.events.time_of(EVENTS // 2)
    try:
        pipeline.wait_until(lambda: pipeline.evaluated_through(with_nothing_pending=False) >= mid_stream, "evaluate passes mid-stream")
        pipeline.kill("evaluate")
        assert pipeline.evaluated_through() < pipeline.events.time_of(EVENTS - 1), "the kill must land mid-stream"
        pipeline.start("evaluate", batch_size=20)
        pipeline.wait_evaluated()
    finally:
        pipeline.stop_all()
    assert_same_answers(pipeline)
