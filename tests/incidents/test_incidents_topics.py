"""The incident service's topics: made by ``driftline topics create`` or by the service itself, always with the
alerts topic's partition count (commands and delivery requests are sent to an incident's partition by number)."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient

from stream.incidents.cli import prepare_topics
from stream.settings import ConfigError, TopicSettings
from stream.topics import ROLES, TopicPlan, create_topics, plan_topics

pytestmark = pytest.mark.integration

SERVICE_ROLES = ("incident-commands", "incident-deliveries")


def _partitions(admin: AdminClient, names: list[str]) -> list[int]:
    topics = admin.list_topics(timeout=30).topics
    return [len(topics[name].partitions) for name in names]


def test_topics_create_makes_them_with_the_alerts_count_and_the_service_accepts_them(stack_settings, unique_name):
    bootstrap = stack_settings.kafka_bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = TopicSettings(prefix=unique_name, model_partitions=3)
    plans = {plan.role.role: plan for plan in plan_topics(topics)}
    assert {role: plans[role].partitions for role in ("alerts", *SERVICE_ROLES)} == {"alerts": 3, "incident-commands": 3, "incident-deliveries": 3}
    assert [report.outcome for report in create_topics(admin, list(plans.values()))] == ["created"] * len(plans)
    assert prepare_topics(bootstrap, topics) == 3
    assert all(report.outcome == "exists" for report in create_topics(admin, list(plans.values()))), "the service changed nothing"


def test_the_service_creates_its_topics_like_the_alerts_topic_when_missing(stack_settings, unique_name):
    bootstrap = stack_settings.kafka_bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = TopicSettings(prefix=unique_name, model_partitions=2)
    alerts_and_deadletter = [plan for plan in plan_topics(topics) if plan.role.role in ("alerts", "deadletter")]
    create_topics(admin, [TopicPlan(plan.name, plan.role, 5, plan.retention_ms) for plan in alerts_and_deadletter])
    assert prepare_topics(bootstrap, topics) == 5, "the alerts topic's count, not model_partitions"
    names = [topics.name(role) for role in SERVICE_ROLES]
    assert _partitions(admin, names) == [5, 5]
    assert prepare_topics(bootstrap, topics) == 5, "idempotent"


def test_a_service_topic_with_another_count_is_a_one_line_error(stack_settings, unique_name):
    bootstrap = stack_settings.kafka_bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = TopicSettings(prefix=unique_name, model_partitions=2)
    create_topics(admin, [plan for plan in plan_topics(topics) if plan.role.role in ("alerts", "deadletter")])
    commands = topics.name("incident-commands")
    create_topics(admin, [TopicPlan(commands, ROLES["incident-commands"], 3, ROLES["incident-commands"].retention_ms)])
    with pytest.raises(ConfigError) as error:
        prepare_topics(bootstrap, topics)
    assert str(error.value).startswith(f"topic {commands} has 3 partitions but {topics.name('alerts')} has 2: ")
    assert "\n" not in str(error.value)


def test_missing_alerts_topic_is_a_one_line_error(stack_settings, unique_name):
    with pytest.raises(ConfigError, match=r"does not exist .*; create the topics with `driftline topics create`"):
        prepare_topics(stack_settings.kafka_bootstrap, TopicSettings(prefix=unique_name))
