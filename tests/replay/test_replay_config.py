import doctest
import importlib
from pathlib import Path

import pytest

import schemas
from detectors.monitor import MonitorConfig, MonitorConfigError
from detectors.policy import PolicyConfig
from detectors.windows import WindowConfig
from stream.config import load_monitor_config, load_reference, reference_path
from stream.settings import ConfigError

MINIMAL = {"model_id": "churn", "reference": "profiles/churn.profile"}


@pytest.mark.parametrize(
    "name", ["detectors.columns", "detectors.profile", "detectors.windows", "detectors.monitor", "detectors.evaluator"]
)
def test_docstring_examples(name) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


def test_minimal_config_takes_every_default_from_policy_and_windows() -> None:
    config = MonitorConfig.from_mapping(MINIMAL)
    assert config.policy == PolicyConfig()
    assert config.windows == WindowConfig()
    assert (config.windows.base_seconds, config.windows.evaluate_windows) == (60, 5)
    assert config.primary == "js" and config.features == {}


def test_schema_names_map_onto_policy_config() -> None:
    config = MonitorConfig.from_mapping(
        {
            **MINIMAL,
            "thresholds": {"psi": 0.25, "js": 0.15, "alpha": 0.05, "correction": "bonferroni", "null_rate": 0.1},
            "policy": {"persistence": {"m": 3, "n": 5}, "hysteresis": 0.7, "resolve_after": 4, "cooldown_seconds": 60,
                       "incident_gap_seconds": 120},
            "severities": [{"kinds": ["data_drift"], "min_ratio": 2, "severity": "P1"}],
            "tests": {"primary": "psi"},
            "segments": [{"tag": "channel"}],
        }
    )  # fmt: skip
    policy = config.policy
    assert (policy.alpha, policy.correction, dict(policy.thresholds)) == (0.05, "bonferroni", {"psi": 0.25, "js": 0.15})
    assert (policy.persistence_m, policy.persistence_n, policy.resolve_ratio, policy.resolve_after) == (3, 5, 0.7, 4)
    assert (policy.cooldown_seconds, policy.incident_window_seconds) == (60, 120)
    assert policy.severity_rules[0].severity == "P1" and policy.severity_rules[0].kinds == {"data_drift"}
    assert config.quality_threshold("null_rate") == 0.1 and config.primary == "psi"
    assert config.segments == (("channel", 20),)


def test_schema_examples_load() -> None:
    for example in schemas.load("monitor")["examples"]:
        assert MonitorConfig.from_mapping(example).model_id == example["model_id"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"windows": {"base_seconds": -1}},
         "fraud.yaml: windows.base_seconds: -1 is less than the minimum of 1; use a positive number of seconds"),
        ({"windws": {}}, "fraud.yaml: top level: unknown key 'windws'; did you mean 'windows'?"),
        ({"thresholds": {"correction": "holm"}},
         "fraud.yaml: thresholds.correction: 'holm' is not one of ['bonferroni', 'bh']; use one of bonferroni, bh"),
        ({"features": {"age": {"range": [5, 1]}}}, "fraud.yaml: features.age.range: low 5 is above high 1; write [low, high]"),
        ({"features": {"age": {"range": [0]}}}, "fraud.yaml: features.age.range: [0] is too short; write a list such as [low, high]"),
        ({"policy": {"persistence": {"m": 4, "n": 3}}}, "fraud.yaml: policy.persistence: m=4 is more than n=3; use m <= n"),
        ({"model_id": "churn model"}, "fraud.yaml: model_id: 'churn model' has characters that are not allowed; use letters"),
        ({"thresholds": {"alpha": 2}}, "fraud.yaml: thresholds.alpha: 2 is greater than or equal to the maximum of 1; use a value between 0 and 1"),
        ({"prediction": {"bounds": [1, 0]}}, "fraud.yaml: prediction.bounds: low 1 is not below high 0; write [low, high], e.g. [0, 1]"),
        ({"prediction": {"bounds": [0]}}, "fraud.yaml: prediction.bounds: [0] is too short; write the score's valid range as [low, high]"),
        ({"prediction": {"bound": [0, 1]}}, "fraud.yaml: prediction: unknown key 'bound'; did you mean 'bounds'?"),
        ({"prediction": {"confident_above": "high"}}, "fraud.yaml: prediction.confident_above: 'high' is not of type 'number'"),
        ({"thresholds": {"reject_rate": 0}}, "fraud.yaml: thresholds.reject_rate: 0 is less than or equal to the minimum of 0"),
    ],
)  # fmt: skip
def test_errors_name_the_file_the_key_and_the_fix(change, message) -> None:
    with pytest.raises(MonitorConfigError) as error:
        MonitorConfig.from_mapping({**MINIMAL, **change}, source="fraud.yaml")
    assert str(error.value).startswith(message)


def test_prediction_section_and_rate_thresholds_are_parsed() -> None:
    config = MonitorConfig.from_mapping(
        {**MINIMAL, "prediction": {"bounds": [0, 1], "confident_above": 0.8}, "thresholds": {"reject_rate": 0.05}}
    )
    assert (config.score_bounds, config.confident_above) == ((0.0, 1.0), 0.8)
    assert config.quality_threshold("reject_rate") == 0.05 and config.quality_threshold("confident_rate") == 0.1
    default = MonitorConfig.from_mapping(MINIMAL)
    assert (default.score_bounds, default.confident_above, default.quality_threshold("reject_rate")) == (None, None, 0.02)


def test_missing_required_key_is_named() -> None:
    with pytest.raises(MonitorConfigError, match=r"^m.yaml: reference: required key is missing; give the path"):
        MonitorConfig.from_mapping({"model_id": "churn"}, source="m.yaml")


def test_loading_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "churn.yaml"
    path.write_text("model_id: churn\nreference: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"^{path}: not valid YAML at line 3"):
        load_monitor_config(path)
    path.write_text("model_id: churn\nreference: p.profile\nwindows: {base_seconds: 0}\n")
    with pytest.raises(ConfigError, match=rf"^{path}: windows.base_seconds: 0 is less than the minimum of 1"):
        load_monitor_config(path)
    with pytest.raises(ConfigError, match="cannot read the monitor config"):
        load_monitor_config(tmp_path / "absent.yaml")


def test_reference_path_is_relative_to_the_config_and_must_be_the_models(tmp_path: Path) -> None:
    from tests.replay.test_replay_evaluator import REFERENCE  # a profile of model "m"

    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "m.profile").write_bytes(REFERENCE.to_bytes())
    path = tmp_path / "m.yaml"
    path.write_text("model_id: m\nreference: profiles/m.profile\n")
    config = load_monitor_config(path)
    assert reference_path(config) == tmp_path / "profiles" / "m.profile"
    assert load_reference(config).row_count == REFERENCE.row_count

    path.write_text("model_id: other\nreference: profiles/m.profile\n")
    with pytest.raises(ConfigError, match="profiles model 'm', not 'other'"):
        load_reference(load_monitor_config(path))
    path.write_text("model_id: m\nreference: profiles/missing.profile\n")
    with pytest.raises(ConfigError, match="build it with `driftline profile build`"):
        load_reference(load_monitor_config(path))
