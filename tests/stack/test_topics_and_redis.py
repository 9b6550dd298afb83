"""Topic creation against the real broker, and the real Redis."""

from __future__ import annotations

import pytest
import redis
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from stream.settings import ConfigError, TopicSettings
from stream.topics import DAY_MS, STATE_SEGMENT_MS, TOPIC_ROLES, co_partitioning_error, create_topics, parse_retention, plan_topics

pytestmark = pytest.mark.integration


def test_create_topics_is_idempotent_and_reports_differences(stack_settings, unique_name):
    admin = AdminClient({"bootstrap.servers": stack_settings.kafka_bootstrap})
    settings = TopicSettings(prefix=unique_name, event_partitions=3, model_partitions=2)

    first = create_topics(admin, plan_topics(settings, {"alerts": 90 * DAY_MS}))
    second = create_topics(admin, plan_topics(settings, {"alerts": 90 * DAY_MS}))
    grown = create_topics(admin, plan_topics(TopicSettings(prefix=unique_name, event_partitions=5, model_partitions=2)))

    assert [r.outcome for r in first] == ["created"] * len(TOPIC_ROLES)
    assert [r.outcome for r in second] == ["exists"] * len(TOPIC_ROLES)
    by_name = {r.name: r for r in grown}
    assert by_name[f"{unique_name}.inference"].outcome == "differs"
    assert "has 3 partitions, 5 wanted" in by_name[f"{unique_name}.inference"].detail
    assert by_name[f"{unique_name}.alerts"].outcome == "differs"  # retention back to the default 30 days
    assert "retention.ms" in by_name[f"{unique_name}.alerts"].detail
    assert by_name[f"{unique_name}.partials"].outcome == "exists"
    topics = admin.list_topics(timeout=10).topics
    assert len(topics[f"{unique_name}.inference"].partitions) == 3
    assert len(topics[f"{unique_name}.partials"].partitions) == 2
    assert co_partitioning_error(admin, settings) is None


def test_state_topics_are_compacted_with_short_segments(stack_settings, unique_name):
    admin = AdminClient({"bootstrap.servers": stack_settings.kafka_bootstrap})
    reports = create_topics(admin, plan_topics(TopicSettings(prefix=unique_name)))
    assert all(r.outcome == "created" for r in reports)
    names = [f"{unique_name}.ingest-state", f"{unique_name}.evaluate-state"]
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, name) for name in names])
    for resource, future in futures.items():
        configs = future.result()
        # compaction cleans closed segments only: short segments bound what a restore reads
        assert configs["cleanup.policy"].value == "compact", resource.name
        assert int(configs["segment.ms"].value) == STATE_SEGMENT_MS <= 3_600_000, resource.name
    assert all(r.outcome == "exists" for r in create_topics(admin, plan_topics(TopicSettings(prefix=unique_name))))


def test_co_partitioning_mismatch_is_reported(stack_settings, unique_name):
    admin = AdminClient({"bootstrap.servers": stack_settings.kafka_bootstrap})
    settings = TopicSettings(prefix=unique_name, event_partitions=2)
    plans = [plan for plan in plan_topics(settings) if plan.role.role == "inference"]
    create_topics(admin, plans)
    labels_wider = [plan for plan in plan_topics(TopicSettings(prefix=unique_name, event_partitions=3)) if plan.role.role == "labels"]
    create_topics(admin, labels_wider)
    problem = co_partitioning_error(admin, settings)
    assert problem is not None and "2 partitions" in problem and "3" in problem


def test_retention_overrides_parse_and_reject_bad_input():
    assert parse_retention(["alerts=90d", "partials=12h", "inference=-1"]) == {"alerts": 90 * DAY_MS, "partials": 12 * 3_600_000, "inference": -1}
    with pytest.raises(ConfigError, match="unknown topic role 'alert'"):
        parse_retention(["alert=3d"])
    with pytest.raises(ConfigError, match="alerts=12h or alerts=30d"):
        parse_retention(["alerts=3w"])


def test_redis_round_trip(stack_settings, unique_name):
    client = redis.Redis.from_url(stack_settings.redis_url)
    key = f"driftline:test:{unique_name}"
    with client.pipeline() as pipe:
        pipe.hset(key, mapping={"psi": "0.31", "count": "5000"})
        pipe.expire(key, 60)
        pipe.execute()
    assert client.hgetall(key) == {b"psi": b"0.31", b"count": b"5000"}
    assert 0 < client.ttl(key) <= 60
    client.delete(key)
