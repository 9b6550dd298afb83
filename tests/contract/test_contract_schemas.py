"""The schema files themselves: well-formed, versioned, consistent with the code and the docs."""

import base64
import hashlib
import math
import re
from pathlib import Path

import jsonschema
import orjson
import pytest
import yaml

import schemas
from stream import decode
from stream.decode import Decoder, EventKind, Limits
from stream.reasons import Reason, markdown_table
from tests.contract.contract_helpers import VALIDATORS

DOC = Path(__file__).resolve().parents[2] / "docs" / "contract.md"


@pytest.mark.parametrize("name", schemas.NAMES)
def test_schema_is_valid_versioned_and_its_examples_validate(name: str) -> None:
    schema = schemas.load(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/1.0/{name}.schema.json")
    assert schema["properties"]["schema_version"]["const"] == decode.SCHEMA_VERSION
    assert schema["examples"]
    for example in schema["examples"]:
        VALIDATORS[name].validate(example)


def test_load_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown schema"):
        schemas.load("inferences")


def test_deadletter_reasons_are_exactly_the_reason_codes() -> None:
    assert schemas.load("deadletter")["properties"]["reason"]["enum"] == [str(reason) for reason in Reason]


def test_decoder_caps_are_the_schema_caps() -> None:
    inference = schemas.load("inference")
    properties = inference["properties"]
    prediction_object = properties["prediction"]["anyOf"][2]["properties"]
    assert Limits().max_features == decode.SCHEMA_MAX_FEATURES == properties["features"]["maxProperties"]
    assert Limits().max_name_length == decode.SCHEMA_MAX_NAME_LENGTH == inference["$defs"]["field_name"]["maxLength"]
    assert decode.MAX_ID_LENGTH == properties["prediction_id"]["maxLength"] == inference["$defs"]["safe_id"]["maxLength"]
    assert decode.MAX_FEATURE_STRING_LENGTH == properties["features"]["additionalProperties"]["anyOf"][1]["maxLength"]
    assert decode.MAX_PREDICTION_STRING_LENGTH == properties["prediction"]["anyOf"][1]["maxLength"]
    assert decode.MAX_PROBABILITIES == prediction_object["probabilities"]["maxProperties"]
    assert decode.MAX_ERROR_LENGTH == properties["error"]["maxLength"]
    assert decode.MAX_SEGMENT_TAGS == properties["segment"]["maxProperties"]
    assert decode.MAX_TAG_NAME_LENGTH == inference["$defs"]["tag_name"]["maxLength"]
    assert decode.MAX_TAG_VALUE_LENGTH == inference["$defs"]["tag_value"]["maxLength"]
    assert decode.MAX_METADATA_FIELDS == properties["metadata"]["maxProperties"]
    assert decode.MAX_MESSAGE_LENGTH == schemas.load("deadletter")["properties"]["message"]["maxLength"]
    assert decode.EPOCH_LIMIT == inference["$defs"]["timestamp"]["anyOf"][1]["exclusiveMaximum"]
    assert decode.INFERENCE_FIELDS == set(properties)
    assert decode.LABEL_FIELDS == set(schemas.load("label")["properties"])
    assert decode.PREDICTION_OBJECT_FIELDS == set(prediction_object)


def test_limits_cannot_loosen_the_schema() -> None:
    with pytest.raises(ValueError):
        Limits(max_features=501)
    with pytest.raises(ValueError):
        Limits(max_name_length=129)
    with pytest.raises(ValueError):
        Limits(known_models=frozenset({"not a safe id"}))
    with pytest.raises(ValueError):
        Limits(unknown_model_policy="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Limits(max_depth=10_000)


def test_deadletter_example_is_what_the_decoder_produces() -> None:
    [example] = schemas.load("deadletter")["examples"]
    original = base64.b64decode(example["original"])
    source = example["source"]
    decoder = Decoder(EventKind(example["kind"]), Limits(max_past_seconds=math.inf, max_future_seconds=math.inf))
    [reject] = decoder.decode([original], source["topic"], source["partition"], [source["offset"]]).rejects
    record = reject.deadletter_record()
    del record["rejected_at"], example["rejected_at"]
    assert record == example


def test_alert_example_ids_follow_the_documented_recipe() -> None:
    """alert_id = sha256 of the condition and the window where it began firing; incident_id of its first alert."""
    [alert] = schemas.load("alert")["examples"]
    assert alert["status"] == "firing"
    key = [
        alert["model_id"],
        alert["model_version"],
        alert["segment"],
        alert["kind"],
        alert["feature"],
        alert["statistic"]["name"],
        alert["window"]["start"],
    ]
    alert_id = hashlib.sha256(orjson.dumps(key, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
    assert alert["alert_id"] == alert_id
    assert alert["incident_id"] == hashlib.sha256(orjson.dumps(["incident", alert_id])).hexdigest()[:32]


MINIMAL_MONITOR = """
model_id: churn-model
reference: profiles/churn.json
"""
FULL_MONITOR = """
model_id: fraud-detector
reference: profiles/fraud.json
task: classification
features:
  amount: {type: numeric, range: [0, 50000], sentinels: [-1], bins: 20}
  country: {type: categorical, sentinels: [unknown]}
windows: {base_seconds: 60, evaluate_windows: 30, allowed_lateness_seconds: 10, min_count: 200}
tests: {numeric: [psi, ks, wasserstein], categorical: [js, chi2]}
thresholds: {psi: 0.25, alpha: 0.05, correction: bonferroni}
policy: {persistence: {m: 2, n: 3}, cooldown_seconds: 600, hysteresis: 0.7}
severities:
  - {kinds: [performance], severity: P0}
owners: [risk-ml]
routing:
  receivers: {team: {type: webhook, url: "https://example.com/hook"}}
  routes: [{severities: [P0, P1], receivers: [team]}]
segments: [{tag: channel}]
"""


@pytest.mark.parametrize("text", [MINIMAL_MONITOR, FULL_MONITOR], ids=["minimal", "full"])
def test_yaml_monitor_configs_validate(text: str) -> None:
    VALIDATORS["monitor"].validate(yaml.safe_load(text))


@pytest.mark.parametrize(
    "change",
    [
        {"treshold": {"psi": 0.2}},
        {"thresholds": {"psi": 0.2, "corection": "bh"}},
        {"thresholds": {"correction": "holm"}},
        {"features": {"amount": {"type": "numerical"}}},
        {"features": {"amount": {"range": [0]}}},
        {"windows": {"base_seconds": 0}},
        {"policy": {"persistence": {"m": 2}}},
        {"severities": [{"severity": "P3"}]},
        {"model_id": "churn model"},
        {"reference": ""},
    ],
)
def test_monitor_config_mistakes_are_caught(change: dict) -> None:
    config = {**yaml.safe_load(MINIMAL_MONITOR), **change}
    assert not VALIDATORS["monitor"].is_valid(config)


def test_monitor_config_needs_model_id_and_reference() -> None:
    assert not VALIDATORS["monitor"].is_valid({"model_id": "churn-model"})
    assert not VALIDATORS["monitor"].is_valid({"reference": "profiles/churn.json"})


def test_doc_reason_table_is_generated_from_reasons_py() -> None:
    text = DOC.read_text(encoding="utf-8")
    table = re.search(r"<!-- reasons:start -->\n(.*?)<!-- reasons:end -->", text, re.DOTALL)
    assert table is not None, "docs/contract.md lost its reason-code markers"
    assert table.group(1) == markdown_table(), "regenerate with: python -m stream.reasons"
    for reason in Reason:
        assert f"`{reason}`" in text


@pytest.mark.parametrize("name", schemas.NAMES)
def test_doc_describes_every_top_level_field(name: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [field for field in schemas.load(name)["properties"] if f"`{field}`" not in text]
    assert missing == []
