"""The routing file: matching routes, the default receiver, owners by kind, quiet hours, validation."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from stream.incidents.lifecycle import AlertEntry
from stream.incidents.routing import RoutingConfig
from stream.settings import PROJECT_ROOT, ConfigError
from tests.incidents.incident_helpers import make_alert


def _config(**models) -> dict:
    return {
        "default_receiver": "fallback",
        "receivers": {
            "fallback": {"type": "webhook", "url": "http://fallback"},
            "oncall": {"type": "pagerduty", "url": "http://pd"},
            "shared-slack": {"type": "slack", "url": "http://shared"},
        },
        "team_owners": {"ml": "ml@x", "operations": "ops@x"},
        "escalation_receivers": ["oncall"],
        "models": models,
    }


FRAUD = {
    "owners": ["risk@x"],
    "routing": {
        "receivers": {"shared-slack": {"type": "slack", "url": "http://fraud-slack"}, "am": {"type": "alertmanager", "url": "http://am"}},
        "routes": [
            {"receivers": ["shared-slack"]},
            {"severities": ["P0"], "receivers": ["oncall"]},
            {"kinds": ["latency", "error_rate"], "severities": ["P0", "P1"], "receivers": ["am"]},
        ],
    },
}


def _entry(severity: str, kind: str) -> AlertEntry:
    return AlertEntry.from_event(make_alert("fraud", "f", severity=severity, kind=kind), 0.0)


def _names(receivers) -> list[tuple[str, str]]:
    return [(receiver.name, receiver.url) for receiver in receivers]


def test_every_matching_route_adds_its_receivers_and_model_receivers_override_shared_ones():
    routing = RoutingConfig.from_mapping(_config(fraud=FRAUD))
    assert _names(routing.receivers_for("fraud", [_entry("P2", "data_drift")])) == [("shared-slack", "http://fraud-slack")]
    assert _names(routing.receivers_for("fraud", [_entry("P0", "latency")])) == [
        ("shared-slack", "http://fraud-slack"), ("oncall", "http://pd"), ("am", "http://am"),
    ]
    assert _names(routing.receivers_for("fraud", [_entry("P2", "latency"), _entry("P1", "error_rate")])) == [
        ("shared-slack", "http://fraud-slack"), ("am", "http://am"),
    ]


def test_unrouted_alerts_go_to_the_default_receiver():
    only_p0 = {"routing": {"receivers": {}, "routes": [{"severities": ["P0"], "receivers": ["oncall"]}]}}
    routing = RoutingConfig.from_mapping(_config(fraud=only_p0))
    assert _names(routing.receivers_for("fraud", [_entry("P1", "data_drift")])) == [("fallback", "http://fallback")]
    assert _names(routing.receivers_for("unknown-model", [_entry("P0", "latency")])) == [("fallback", "http://fallback")]


def test_escalation_goes_to_escalation_receivers_else_to_the_default():
    assert _names(RoutingConfig.from_mapping(_config()).escalation_targets("fraud")) == [("oncall", "http://pd")]
    without = {**_config(), "escalation_receivers": []}
    without.pop("escalation_receivers")
    assert _names(RoutingConfig.from_mapping(without).escalation_targets("fraud")) == [("fallback", "http://fallback")]


def test_owners_are_the_models_then_the_configured_teams_of_its_alert_kinds():
    routing = RoutingConfig.from_mapping(_config(fraud=FRAUD))
    assert routing.owners_for("fraud", ["data_drift", "latency", "schema"]) == ["risk@x", "ml@x", "ops@x"]  # no data-engineering team configured
    assert routing.owners_for("other", ["performance", "concept_drift"]) == ["ml@x"]


def test_quiet_hours_span_midnight_in_the_models_timezone_and_spare_p0():
    quiet = {**FRAUD, "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}}
    routing = RoutingConfig.from_mapping(_config(fraud=quiet))
    berlin = ZoneInfo("Europe/Berlin")
    at = lambda hour, minute=0: datetime(2026, 11, 24, hour, minute, tzinfo=berlin).timestamp()  # noqa: E731
    assert routing.in_quiet_hours("fraud", at(23), "P1") and routing.in_quiet_hours("fraud", at(6, 59), "P2")
    assert not routing.in_quiet_hours("fraud", at(7), "P1") and not routing.in_quiet_hours("fraud", at(21, 59), "P1")
    assert not routing.in_quiet_hours("fraud", at(23), "P0")
    assert not routing.in_quiet_hours("other", at(23), "P1")


def test_urls_expand_environment_variables(monkeypatch):
    config = _config()
    config["receivers"]["fallback"]["url"] = "https://hooks/${HOOK_SECRET}/x"
    monkeypatch.setenv("HOOK_SECRET", "s3cr3t")
    assert RoutingConfig.from_mapping(config).default_receiver.url == "https://hooks/s3cr3t/x"
    monkeypatch.delenv("HOOK_SECRET")
    with pytest.raises(ConfigError, match=r"\$\{HOOK_SECRET\}"):
        RoutingConfig.from_mapping(config)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c["models"]["fraud"]["routing"]["routes"].append({"receivers": ["nobody"]}), "unknown receivers"),
        (lambda c: c["models"]["fraud"]["routing"]["routes"][0].update(severites=["P0"]), "severites"),
        (lambda c: c.update(default_receiver="am"), "top-level receivers"),
        (lambda c: c["receivers"]["oncall"].update(type="email"), "email"),
        (lambda c: c.update(timing={"group_wait_seconds": 0}), "group_wait_seconds"),
        (lambda c: c.update(timing={"retention_seconds": 600}), "retention_seconds .600. is shorter than timing/reopen_within_seconds .3600."),
    ],
)
def test_mistakes_are_reported_with_where_they_are(change, message):
    config = _config(fraud={**FRAUD, "routing": {**FRAUD["routing"], "routes": [dict(route) for route in FRAUD["routing"]["routes"]]}})
    change(config)
    with pytest.raises(ConfigError, match=message):
        RoutingConfig.from_mapping(config)


def test_the_example_file_loads(monkeypatch):
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", "key")
    monkeypatch.setenv("SLACK_WEBHOOK_RISK", "https://hooks.slack.test/x")
    routing = RoutingConfig.load(PROJECT_ROOT / "deploy" / "routing.example.yaml")
    assert routing.default_receiver.name == "ops-fallback"
    assert [r.name for r in routing.receivers_for("fraud-detector", [_entry("P0", "latency")])] == ["risk-slack", "oncall", "risk-alertmanager"]
    assert routing.timing.escalate_after == 900


def test_the_demo_file_loads_and_sends_everything_to_the_demo_receiver(monkeypatch):
    monkeypatch.setenv("DRIFTLINE_DEMO_RECEIVER", "http://127.0.0.1:9099")
    routing = RoutingConfig.load(PROJECT_ROOT / "deploy" / "routing.demo.yaml")
    receivers = [*routing.shared_receivers.values(), *(r for model in routing.models.values() for r in model.receivers.values())]
    assert all(receiver.url.startswith("http://127.0.0.1:9099/") for receiver in receivers)
    assert routing.timing.retention >= routing.timing.reopen_within
    assert [r.name for r in routing.receivers_for("demo-model", [_entry("P1", "data_drift")])] == ["ml-team"]


def test_retention_defaults_to_seven_days():
    assert RoutingConfig.from_mapping(_config()).timing.retention == 7 * 86400


def test_a_missing_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read routing file"):
        RoutingConfig.load(tmp_path / "absent.yaml")
