"""Alert events: identifiers, incidents, severity, suggested actions, wording and configuration."""

from __future__ import annotations

import hashlib
import random
from datetime import datetime

import orjson
import pytest

from detectors.policy import (
    MAX_RELATED_ALERTS,
    SCHEMA_VERSION,
    AlertPolicy,
    PolicyConfig,
    SeverityRule,
    TestResult,
    WindowKey,
    suggested_action,
)
from tests.policy.policy_scenarios import KEY, STEP, T0, Feed, drift

VIOLATION = drift(0.31)
CLEAN = drift(0.05)


def sha(*parts: object) -> str:
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()[:32]


def lifecycle(feed: Feed) -> list[dict]:
    """Fires on windows 0-1, resolves on 2-3; returns [firing, resolved]."""
    return [e for events in feed.run([[VIOLATION], [VIOLATION], [CLEAN], [CLEAN]]) for e in events]


def test_event_is_shaped_for_the_alert_schema() -> None:
    fired, resolved = lifecycle(Feed())
    assert set(fired) == {
        "schema_version", "alert_id", "incident_id", "model_id", "model_version", "segment", "kind",
        "feature", "severity", "status", "statistic", "window", "reference", "summary",
        "suggested_action", "related_alert_ids", "created_at",
    }  # fmt: skip
    assert set(resolved) == set(fired)
    assert fired["schema_version"] == SCHEMA_VERSION == "1.0"
    assert (fired["model_id"], fired["model_version"], fired["segment"]) == ("fraud", "3", {"region": "eu"})
    assert (fired["kind"], fired["feature"], fired["status"], resolved["status"]) == (
        "data_drift", "age", "firing", "resolved",
    )  # fmt: skip
    assert fired["statistic"] == {
        "name": "psi", "value": 0.31, "threshold": 0.2, "p_value": 1e-6, "sample_size": 5000, "reference_size": 100_000,
    }  # fmt: skip
    assert resolved["statistic"]["value"] == CLEAN.value
    assert fired["reference"] == {"id": "profiles/fraud/3.json", "description": "training data 2025-10"}
    assert fired["window"] == {"start": "2025-11-24T16:05:00.000Z", "end": "2025-11-24T16:10:00.000Z"}
    assert datetime.fromisoformat(resolved["window"]["end"]).timestamp() == T0 + 4 * STEP
    assert (fired["created_at"], resolved["created_at"]) == (fired["window"]["end"], resolved["window"]["end"])
    assert orjson.loads(orjson.dumps([fired, resolved])) == [fired, resolved]


def test_alert_id_is_the_documented_digest_and_survives_resolution() -> None:
    fired, resolved = lifecycle(Feed())
    start = "2025-11-24T16:05:00.000Z"
    assert fired["alert_id"] == sha("fraud", "3", {"region": "eu"}, "data_drift", "age", "psi", start)
    assert fired["incident_id"] == sha("incident", fired["alert_id"])
    assert resolved["alert_id"] == fired["alert_id"]
    assert resolved["incident_id"] == fired["incident_id"]


def test_same_inputs_give_the_same_events_across_runs() -> None:
    assert lifecycle(Feed()) == lifecycle(Feed())
    same_segment_other_spelling = WindowKey("fraud", "3", (("region", "eu"),))
    assert lifecycle(Feed(key=same_segment_other_spelling)) == lifecycle(Feed())


def test_two_tag_segments_hash_with_sorted_tags() -> None:
    key = WindowKey("fraud", "3", {"region": "eu", "channel": "web"})
    fired, _ = lifecycle(Feed(key=key))
    segment = {"channel": "web", "region": "eu"}
    assert fired["alert_id"] == sha("fraud", "3", segment, "data_drift", "age", "psi", fired["window"]["start"])
    assert lifecycle(Feed(key=WindowKey("fraud", "3", {"channel": "web", "region": "eu"})))[0] == fired


def test_created_at_is_the_processing_time_given() -> None:
    policy = AlertPolicy()
    policy.evaluate(KEY, T0, T0 + STEP, [VIOLATION], created_at=T0 + STEP + 4.12)
    [fired] = policy.evaluate(KEY, T0 + STEP, T0 + 2 * STEP, [VIOLATION], created_at=T0 + 2 * STEP + 4.12)
    assert fired["created_at"] == "2025-11-24T16:10:04.120Z"
    assert policy.open_alerts[0]["created_at"] == fired["created_at"]


def test_events_carry_corrected_p_values() -> None:
    family = [drift(0.5, feature=f"f{i}", p_value=p) for i, p in enumerate([1e-4, 2e-4, 0.5, 0.9])]
    [[], fired] = Feed(PolicyConfig(correction="bonferroni")).run([family] * 2)
    assert [(e["feature"], e["statistic"]["p_value"]) for e in fired] == [("f0", 4e-4), ("f1", 8e-4)]
    assert "(p=4e-4, n=5,000)" in fired[0]["summary"]


@pytest.mark.parametrize(
    "key",
    [WindowKey("fraud", "4", {"region": "eu"}), WindowKey("fraud", "3", {"region": "us"}), WindowKey("fraud", "3")],
)
def test_a_different_condition_gets_a_different_id(key: WindowKey) -> None:
    assert lifecycle(Feed(key=key))[0]["alert_id"] != lifecycle(Feed())[0]["alert_id"]


def test_a_later_firing_of_the_same_condition_gets_a_new_id() -> None:
    feed = Feed()
    first, _ = lifecycle(feed)
    feed.start += 3600
    second, _ = lifecycle(feed)
    assert second["alert_id"] != first["alert_id"]


def test_events_do_not_depend_on_result_order() -> None:
    family = [drift(0.3 + i / 100, feature=f"f{i}", p_value=1e-4 * (i + 1)) for i in range(8)]
    family.append(TestResult("latency", None, "p99_ms", 900.0, threshold=500.0, sample_size=5000))
    shuffled = random.Random(7).sample(family, len(family))
    assert Feed().run([family] * 3) == Feed().run([shuffled] * 3)


def test_returned_events_do_not_alias_policy_state() -> None:
    feed = Feed()
    [[], [fired]] = feed.run([[VIOLATION], [VIOLATION]])
    fired["statistic"]["value"] = -1.0
    fired["related_alert_ids"].append("x")
    assert feed.policy.open_alerts[0]["statistic"]["value"] == 0.31
    assert feed.policy.open_alerts[0]["related_alert_ids"] == []


def test_alerts_of_one_model_within_the_incident_window_share_an_incident() -> None:
    feed = Feed()
    # age fires at window 1; income starts violating later and fires at window 4 (900 s later).
    windows = feed.run([[VIOLATION], [VIOLATION], [VIOLATION], [VIOLATION, drift(0.4, "income")]])
    windows.append(feed(VIOLATION, drift(0.4, "income")))
    [age] = windows[1]
    [income] = windows[4]
    assert income["incident_id"] == age["incident_id"] == sha("incident", age["alert_id"])
    assert income["related_alert_ids"] == [age["alert_id"]]
    assert age["related_alert_ids"] == []


def test_other_segments_and_versions_of_the_model_join_its_incident_other_models_do_not() -> None:
    policy = AlertPolicy()
    eu, us, v4, other = (
        Feed(policy, WindowKey("fraud", "3", {"region": "eu"})),
        Feed(policy, WindowKey("fraud", "3", {"region": "us"})),
        Feed(policy, WindowKey("fraud", "4")),
        Feed(policy, WindowKey("churn", "1")),
    )
    fired = {}
    for _ in range(2):
        for name, feed in {"eu": eu, "us": us, "v4": v4, "other": other}.items():
            for event in feed(VIOLATION):
                fired[name] = event
    assert fired["eu"]["incident_id"] == fired["us"]["incident_id"] == fired["v4"]["incident_id"]
    assert fired["v4"]["related_alert_ids"] == [fired["eu"]["alert_id"], fired["us"]["alert_id"]]
    assert fired["other"]["incident_id"] != fired["eu"]["incident_id"]
    assert fired["other"]["related_alert_ids"] == []


def test_an_alert_after_the_incident_closed_opens_a_new_one() -> None:
    feed = Feed(PolicyConfig(incident_window_seconds=900.0))
    age, age_resolved = lifecycle(feed)  # fires at window end T0+600, resolved by T0+1200
    feed.start = T0 + 600 + 900  # income fires at T0+600+900+600: more than 900 s after age started
    [[], [income]] = feed.run([[drift(0.4, "income")], [drift(0.4, "income")]])
    assert income["incident_id"] != age["incident_id"]
    assert income["related_alert_ids"] == []
    assert age_resolved["related_alert_ids"] == []


def test_a_firing_alert_keeps_its_incident_open_past_the_window() -> None:
    feed = Feed(PolicyConfig(incident_window_seconds=0.0))
    windows = feed.run([[VIOLATION]] * 2 + [[VIOLATION, drift(0.4, "income")]] * 2)
    [age], [income] = windows[1], windows[3]
    assert income["incident_id"] == age["incident_id"]
    [[], [resolved_age, resolved_income]] = feed.run([[CLEAN, drift(0.05, "income")]] * 2)
    assert resolved_age["related_alert_ids"] == [income["alert_id"]]
    assert resolved_income["related_alert_ids"] == [age["alert_id"]]


@pytest.mark.parametrize(
    ("kind", "value", "threshold", "severity"),
    [
        ("data_drift", 0.3, 0.2, "P2"),
        ("data_drift", 0.4, 0.2, "P1"),
        ("data_quality", 0.06, 0.05, "P2"),
        ("latency", 1200.0, 500.0, "P1"),
        ("concept_drift", 0.11, 0.1, "P1"),
        ("schema", 0.02, 0.01, "P1"),
        ("performance", 0.06, 0.05, "P1"),
        ("performance", 0.1, 0.05, "P0"),
        ("error_rate", 0.09, 0.03, "P0"),
    ],
)
def test_default_severity_table(kind: str, value: float, threshold: float, severity: str) -> None:
    result = TestResult(kind, None, "stat", value, threshold=threshold, sample_size=1000)
    assert PolicyConfig().severity_for(result, threshold) == severity
    [[], [fired]] = Feed().run([[result]] * 2)
    assert fired["severity"] == severity
    assert fired["suggested_action"] == suggested_action(kind, severity)


def test_severity_rules_can_name_features() -> None:
    config = PolicyConfig(severity_rules=(SeverityRule("P0", features=frozenset({"amount"})),))
    assert config.severity_for(drift(0.3, "amount"), 0.2) == "P0"
    assert config.severity_for(drift(0.9, "age"), 0.2) == "P2"


def test_the_most_severe_matching_rule_wins() -> None:
    config = PolicyConfig.from_mapping(
        {
            "severity_rules": [
                {"severity": "P1", "kinds": ["data_drift"]},
                {"severity": "P0", "statistics": ["psi"], "min_ratio": 3.0},
                {"severity": "P2", "min_ratio": 5.0},
            ]
        }
    )
    assert config.severity_for(drift(0.3), 0.2) == "P1"
    assert config.severity_for(drift(0.65), 0.2) == "P0"
    assert config.severity_for(drift(1.5), 0.2) == "P0"
    assert config.severity_for(TestResult("latency", None, "p99_ms", 600.0), 500.0) == "P2"


@pytest.mark.parametrize(
    ("kind", "severity", "action"),
    [
        ("data_quality", "P0", "fix_pipeline"),
        ("schema", "P1", "fix_pipeline"),
        ("label_lag", "P2", "fix_pipeline"),
        ("data_drift", "P1", "investigate"),
        ("prediction_drift", "P0", "investigate"),
        ("concept_drift", "P1", "retrain"),
        ("performance", "P1", "retrain"),
        ("performance", "P0", "rollback"),
        ("error_rate", "P1", "investigate"),
        ("error_rate", "P0", "rollback"),
        ("latency", "P0", "rollback"),
    ],
)
def test_suggested_action_mapping(kind: str, severity: str, action: str) -> None:
    assert suggested_action(kind, severity) == action


def test_summaries_say_what_happened_with_the_evidence() -> None:
    feed = Feed()
    [[], [], [fired]] = feed.run([[VIOLATION], [CLEAN], [VIOLATION]])
    assert fired["summary"] == (
        "Feature 'age' drifted from reference: PSI 0.31 ≥ 0.20 (p=1e-6, n=5,000) in 2 of the last 3 windows"
    )
    [[], [resolved]] = feed.run([[drift(0.12)], [drift(0.1)]])
    assert resolved["summary"] == (
        "Resolved: Feature 'age' drifted from reference; PSI 0.10 < 0.16 (0.8 × threshold 0.20) "
        "in each of the last 2 windows"
    )


def test_summary_of_a_model_level_check_without_p_value() -> None:
    latency = TestResult("latency", None, "p99_ms", 1234.5, threshold=500.0, sample_size=12_000)
    [[fired]] = Feed(PolicyConfig(persistence_m=1, persistence_n=1)).run([[latency]])
    assert fired["summary"] == "Latency rose: p99_ms 1,234 ≥ 500.00 (n=12,000) in the last window"


def test_config_from_mapping_names_unknown_keys() -> None:
    with pytest.raises(ValueError, match=r"unknown PolicyConfig keys: 'cooldown', 'persistance_m'"):
        PolicyConfig.from_mapping({"persistance_m": 2, "cooldown": 5, "alpha": 0.05})
    with pytest.raises(ValueError, match=r"unknown SeverityRule keys: 'kind'"):
        PolicyConfig.from_mapping({"severity_rules": [{"severity": "P0", "kind": ["performance"]}]})


def test_config_thresholds_override_defaults_and_results_override_config() -> None:
    config = PolicyConfig.from_mapping({"thresholds": {"psi": 0.5, "null_rate": 0.05}})
    assert config.threshold_for(drift(0.3)) == 0.5
    assert config.threshold_for(TestResult("data_drift", "age", "js", 0.3)) == 0.1
    assert config.threshold_for(drift(0.3, threshold=0.25)) == 0.25
    assert not any(Feed(config).run([[drift(0.31)]] * 3))
    with pytest.raises(ValueError, match="no threshold for statistic 'mmd'"):
        config.threshold_for(TestResult("data_drift", "age", "mmd", 0.3))


@pytest.mark.parametrize(
    "settings",
    [
        {"alpha": 0.0},
        {"correction": "holm"},
        {"persistence_m": 4, "persistence_n": 3},
        {"persistence_m": 0},
        {"resolve_ratio": 1.2},
        {"resolve_after": 0},
        {"cooldown_seconds": -1},
        {"thresholds": {"psi": 0.0}},
        {"severity_rules": [{"severity": "P3"}]},
        {"severity_rules": [{"severity": "P1", "kinds": ["drift"]}]},
    ],
)
def test_invalid_config_is_rejected(settings: dict) -> None:
    with pytest.raises(ValueError):
        PolicyConfig.from_mapping(settings)


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "drift"},
        {"value": float("nan")},
        {"threshold": 0.0},
        {"p_value": 1.5},
        {"sample_size": -1},
    ],
)
def test_invalid_results_are_rejected(fields: dict) -> None:
    with pytest.raises(ValueError):
        TestResult(**{"kind": "data_drift", "feature": "age", "statistic": "psi", "value": 0.3, **fields})


def test_related_alert_ids_stay_within_the_schema_limit() -> None:
    family = [drift(0.5, feature=f"f{i:03d}", p_value=None) for i in range(MAX_RELATED_ALERTS + 5)]
    feed = Feed()
    [[], fired] = feed.run([family] * 2)
    assert len(fired) == MAX_RELATED_ALERTS + 5 and len({e["incident_id"] for e in fired}) == 1
    assert fired[-1]["related_alert_ids"] == [e["alert_id"] for e in fired[:MAX_RELATED_ALERTS]]
    assert all(len(e["related_alert_ids"]) <= MAX_RELATED_ALERTS for e in fired)
    [[], resolved] = feed.run([[drift(0.01, feature=r.feature, p_value=None) for r in family]] * 2)
    assert all(len(e["related_alert_ids"]) == MAX_RELATED_ALERTS for e in resolved)


def test_open_alerts_lists_firing_events_oldest_first() -> None:
    feed = Feed()
    feed.run([[VIOLATION], [VIOLATION], [VIOLATION, drift(0.4, "income")], [VIOLATION, drift(0.4, "income")]])
    open_alerts = feed.policy.open_alerts
    assert [(a["feature"], a["status"]) for a in open_alerts] == [("age", "firing"), ("income", "firing")]
    assert open_alerts[0]["window"]["start"] < open_alerts[1]["window"]["start"]
