"""Two ingest workers in one group share the 4 partitions (the second joins mid-stream, so
partitions move between workers with their checkpointed windows) and give the same answers as one."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient

from tests.pipeline.harness import EVENTS, Pipeline, assert_same_answers

pytestmark = pytest.mark.integration


def _members_with_partitions(pipeline: Pipeline) -> int:
    admin = AdminClient({"bootstrap.servers": pipeline.settings.kafka_bootstrap})
    group = f"{pipeline.topics.prefix}.ingest"
    description = admin.describe_consumer_groups([group])[group].result(10)
    return sum(1 for member in description.members if member.assignment.topic_partitions)


def test_two_ingest_workers_give_the_answers_of_one(stack_settings, unique_name, tmp_path):
    pipeline = Pipeline(stack_settings, unique_name, tmp_path)
    pipeline.produce()
    pipeline.start("evaluate")
    pipeline.start("ingest", slot=0, batch_size=500)
    try:
        pipeline.wait_until(lambda: pipeline.committed("ingest", "inference") >= EVENTS // 5, "ingest commits 20 %")
        pipeline.start("ingest", slot=1, batch_size=500)
        pipeline.wait_until(lambda: _members_with_partitions(pipeline) == 2, "both ingest workers own partitions")
        pipeline.wait_evaluated()
    finally:
        pipeline.stop_all()
    assert_same_answers(pipeline)
