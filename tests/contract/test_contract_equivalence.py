"""The fast validator (stream/decode.py) gives the same verdict as jsonschema on the schemas.

Two complementary checks: a deterministic sweep sets one field of a valid event to each value of a
table of boundary values (both sides of every rule), and hypothesis generates valid events with
zero to two mutations each: wrong types, missing and extra fields, boundary lengths and counts,
bad timestamps, bad prediction shapes, arbitrary JSON.
Checks the schema cannot express are kept out of the comparison by the decoder's limits (no time
window, no payload or depth cap, every model registered, one fresh decoder per document); they are
tested in test_contract_reasons.py and test_contract_decode.py. Calendar-invalid dates (Feb 30) are
also runtime-only, so generated days stop at 28.
"""

import math
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.decode import Decoder, EventKind, Limits
from tests.contract.contract_helpers import VALIDATORS, dumps

EXAMPLES = 600
RUNTIME_CHECKS_OFF = Limits(
    max_payload_bytes=1 << 30,
    max_depth=256,
    max_future_seconds=math.inf,
    max_past_seconds=math.inf,
    unknown_model_policy="register",
    max_models=1 << 30,
)

# Text mixing id-safe ASCII with what the contract cares about: spaces, controls, newlines,
# non-ASCII letters and digits (\d in Python regexes matches those).
_CHARACTERS = st.one_of(
    st.sampled_from("abcXYZ019._-"),
    st.sampled_from(" \t\n\r\x00\x1f\x7f:/é٣"),
    st.characters(exclude_categories=("Cs",)),
)
text = st.text(_CHARACTERS, max_size=12)
finite = st.floats(allow_nan=False, allow_infinity=False)
integers = st.integers(-(2**63), 2**63 - 1)
json_scalars = st.none() | st.booleans() | integers | finite | text
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=6
)
safe_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,15}", fullmatch=True) | st.just("m" * 128)
bad_ids = st.sampled_from(["", "m" * 129, "-m", ".m", "m m", "m\n", "m/1", "é", "m:1", "٣"]) | text


def _two_digits(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{n:02d}")


@st.composite
def rfc3339(draw: st.DrawFn) -> str:
    """RFC 3339 strings; each component is sometimes out of range or malformed."""

    def part(valid: st.SearchStrategy[str], invalid: list[str]) -> str:
        return draw(st.one_of(valid, valid, valid, valid, st.sampled_from(invalid)))

    year = part(st.integers(1970, 2100).map(str), ["20x6", "226", "02026"])
    month = part(_two_digits(1, 12), ["00", "13", "1", "1a"])
    day = part(_two_digits(1, 28), ["00", "32", "7"])
    separator = part(st.sampled_from("T "), ["t", "_", ""])
    hour = part(_two_digits(0, 23), ["24", "7"])
    minute = part(_two_digits(0, 59), ["60", "5"])
    second = part(_two_digits(0, 59), ["60", "61"])
    fraction = part(st.sampled_from(["", ".5", ".123456", ".123456789"]), [".", ".1234567890", ",5"])
    zone = part(st.sampled_from(["Z", "+00:00", "-07:30", "+23:59"]), ["z", "", "+24:00", "+0100", "UTC", "Z\n"])
    return f"{year}-{month}-{day}{separator}{hour}:{minute}:{second}{fraction}{zone}"


timestamps = st.one_of(
    st.floats(0, 1e14, exclude_max=True),
    st.integers(0, 10**14 - 1),
    rfc3339(),
)
bad_timestamps = st.one_of(
    st.floats(max_value=-1e-9, allow_infinity=False),
    st.floats(min_value=1e14, allow_infinity=False),
    st.sampled_from([True, None, [], {}, "", "1795000000", "2026-11-18"]),
    text,
)
feature_names = st.text(_CHARACTERS, min_size=1, max_size=10) | st.just("n" * 128)
feature_values = st.none() | st.booleans() | integers | finite | text | st.just("v" * 1024)
features = st.dictionaries(feature_names, feature_values, max_size=8)
bad_features = st.one_of(
    st.just({f"f{i}": i for i in range(501)}),
    st.just({f"f{i}": i for i in range(500)}),
    st.dictionaries(st.sampled_from(["", "n" * 129, "a\x00", "b\n", "tab\t"]), feature_values, min_size=1, max_size=2),
    st.dictionaries(feature_names, st.sampled_from([[], {}, [1], "v" * 1025]), min_size=1, max_size=2),
    json_values,
)
probabilities = st.dictionaries(
    st.text(_CHARACTERS, min_size=1, max_size=5), st.floats(0, 1) | st.integers(0, 1), min_size=1, max_size=4
)
prediction_objects = st.fixed_dictionaries(
    {},
    optional={
        "score": finite | integers,
        "probabilities": probabilities,
        "class": text | integers | st.booleans() | st.integers(-5, 5).map(float),
        "value": finite,
    },
).filter(bool)
predictions = st.one_of(finite, integers, st.booleans(), text, prediction_objects)
bad_predictions = st.one_of(
    st.sampled_from([None, [], [0.5], {}, "c" * 257, {"score": None}, {"class": 0.5}, {"value": "1"}]),
    st.sampled_from([{"probabilities": {}}, {"probabilities": {"a": 1.5}}, {"probabilities": {"": 0.5}}]),
    st.sampled_from([{"probabilities": {"a": -0.1}}, {"probabilities": [0.5]}, {"score": 1, "label": "x"}]),
    st.dictionaries(st.sampled_from(["score", "class", "value", "probabilities"]), json_values, min_size=1),
    json_values,
)
tag_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,8}", fullmatch=True) | st.just("t" * 64)
segments = st.dictionaries(tag_names, text | st.just("v" * 128), max_size=3)
bad_segments = st.one_of(
    st.just({f"t{i}": "x" for i in range(9)}),
    st.dictionaries(st.sampled_from(["", "t" * 65, "a b", "-t", "t\n"]), text, min_size=1, max_size=1),
    st.dictionaries(tag_names, st.sampled_from(["v" * 129, "a\nb", "\x7f", None, 1]), min_size=1, max_size=1),
    json_values,
)
metadata = st.dictionaries(feature_names, json_values, max_size=4)
bad_metadata = st.one_of(
    st.just({f"m{i}": i for i in range(33)}),
    st.dictionaries(st.sampled_from(["", "m" * 129, "m\x01"]), json_values, min_size=1, max_size=1),
    json_values,
)

INFERENCE_FIELDS = {
    # name: (valid values, invalid or boundary values)
    "schema_version": (st.just("1.0"), st.sampled_from(["1.1", "", 1.0, 1, None, "1.0 "])),
    "prediction_id": (st.text(_CHARACTERS, min_size=1, max_size=20) | st.just("p" * 128), st.sampled_from(["", "p" * 129]) | json_values),
    "model_id": (safe_ids, bad_ids | json_values),
    "model_version": (safe_ids, bad_ids | json_values),
    "timestamp": (timestamps, bad_timestamps),
    "features": (features, bad_features),
    "prediction": (predictions, bad_predictions),
    "latency_ms": (st.floats(0, 1e6) | st.integers(0, 10**6), st.sampled_from([-0.001, -1, "1", None, True])),
    "status": (st.sampled_from(["ok", "error"]), st.sampled_from(["OK", "failed", "", None, 1])),
    "error": (text | st.just("e" * 1024), st.sampled_from(["e" * 1025, None, 5, ["x"]])),
    "segment": (segments, bad_segments),
    "metadata": (metadata, bad_metadata),
}
LABEL_FIELDS = {
    "schema_version": INFERENCE_FIELDS["schema_version"],
    "prediction_id": INFERENCE_FIELDS["prediction_id"],
    "label": (text | st.just("y" * 256) | finite | integers | st.booleans(), st.sampled_from(["y" * 257, None, [], {}]) | json_values),
    "timestamp": INFERENCE_FIELDS["timestamp"],
    "model_id": INFERENCE_FIELDS["model_id"],
}
# Generated in every document before mutations (prediction is required unless status is error).
INFERENCE_ALWAYS = ("prediction_id", "model_id", "model_version", "timestamp", "features", "prediction")
LABEL_ALWAYS = ("prediction_id", "label", "timestamp")
UNKNOWN_FIELDS = st.sampled_from(["featurs", "Model_id", "score", "label", "", "extra"])


def documents(kind: EventKind, fields: dict, always: tuple[str, ...]) -> st.SearchStrategy[dict]:
    """A valid document with zero to two mutations; invalid values also come from BOUNDARIES."""
    boundaries = _boundary_values(kind)

    @st.composite
    def build(draw: st.DrawFn) -> dict:
        document = {}
        for name, (valid, _) in fields.items():
            if name in always or draw(st.booleans()):
                document[name] = draw(valid)
        for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2]))):
            name = draw(st.sampled_from(sorted(fields)))
            mutation = draw(st.sampled_from(["delete", "invalid", "invalid", "any", "unknown"]))
            if mutation == "delete":
                document.pop(name, None)
            elif mutation == "invalid":
                document[name] = draw(fields[name][1] | st.sampled_from(boundaries[name]))
            elif mutation == "any":
                document[name] = draw(json_values)
            else:
                document[draw(UNKNOWN_FIELDS)] = draw(json_values)
        return document

    return build()


_TS = "2026-11-18T10:00:00"
BOUNDARIES: dict[str, dict[str, list]] = {
    "common": {
        "schema_version": ["1.0", "1.1", "", "1.0 ", 1.0, 1, None],
        "prediction_id": ["p", "p" * 128, "p" * 129, "", "p\n", "é ü", 5, None, ["p"]],
        "model_id": ["m", "9", "m" * 128, "m" * 129, "", "m m", "m\n", "m:1", "m/1", "-m", "_m", ".m", "é", "٣", "m.v_1-2", 1, None, ["m"]],
        "timestamp": [
            0, 0.0, 1e11 - 1, 1e11, 1e14 - 1, 1e14, -1, -1e-9, True, None, [], {}, "",
            _TS + "Z", "2026-11-18 10:00:00Z", "2026-11-18t10:00:00Z", _TS + "z", _TS, _TS + "+23:59", _TS + "-23:59",
            _TS + "+24:00", _TS + "+01:60", _TS + "+0100", "2026-11-18T10:00:60Z", "2026-11-18T24:00:00Z",
            "2026-11-18T23:59:59Z", "2026-13-18T10:00:00Z", "2026-00-18T10:00:00Z", "2026-11-00T10:00:00Z",
            "2026-12-31T10:00:00Z", "2026-11-32T10:00:00Z", _TS + ".123456789Z", _TS + ".1234567890Z", _TS + ".Z",
            _TS + ".5+05:30", _TS + "Z\n", "\n" + _TS + "Z", "٢٠٢٦-11-18T10:00:00Z", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "2026-1-18T10:00:00Z", "1795000000",
        ],
    },
    "inference": {
        "model_version": ["v", "v" * 128, "v" * 129, "", "v 1", "v\n", "v:1", "-v", "1.0.0", 1, None],
        "features": [
            {}, {f"f{i}": i for i in range(500)}, {f"f{i}": i for i in range(501)}, {"": 1}, {"n" * 128: 1},
            {"n" * 129: 1}, {"a\x00": 1}, {"a\x1f": 1}, {"a\x7f": 1}, {"a\n": 1}, {"é ü": 1}, {"a b": 1},
            {"a": None}, {"a": True}, {"a": 0}, {"a": -1.5}, {"a": "v" * 1024}, {"a": "v" * 1025},
            {"a": "v" * 1025, "b": 1}, {"a": []}, {"a": {}}, {"a": [1]}, [], None, "x", 1,
        ],
        "prediction": [
            0.5, 1, True, False, "c", "", "c" * 256, "c" * 257, None, [], [0.5], {}, {"score": 1}, {"score": -3.5},
            {"score": "x"}, {"score": None}, {"score": True}, {"value": 2.5}, {"value": True}, {"class": 2},
            {"class": 2.0}, {"class": 2.5}, {"class": "c" * 256}, {"class": "c" * 257}, {"class": True},
            {"class": None}, {"probabilities": {"a": 0}}, {"probabilities": {"a": 1}}, {"probabilities": {"a": -0.0}},
            {"probabilities": {"a": 1.0000001}}, {"probabilities": {"a": -1e-9}}, {"probabilities": {"a": "0.5"}},
            {"probabilities": {"a": True}}, {"probabilities": {"a": None}}, {"probabilities": {}},
            {"probabilities": {"": 0.5}}, {"probabilities": {"c" * 256: 0.5}}, {"probabilities": {"c" * 257: 0.5}},
            {"probabilities": {f"c{i}": 0.001 for i in range(1000)}}, {"probabilities": {f"c{i}": 0.001 for i in range(1001)}},
            {"probabilities": [0.5]}, {"score": 1, "extra": 1}, {"score": 0.9, "class": "a", "value": 1, "probabilities": {"a": 0.9}},
        ],
        "latency_ms": [0, 0.0, -0.0, 5, 1e9, -1e-9, -1, "1", True, None],
        "status": ["ok", "error", "OK", "Error", "", None, 1, ["ok"]],
        "error": ["", "e" * 1024, "e" * 1025, None, 1, ["e"]],
        "segment": [
            {}, {"t": "v"}, {f"t{i}": "v" for i in range(8)}, {f"t{i}": "v" for i in range(9)}, {"t" * 64: "v"},
            {"t" * 65: "v"}, {"": "v"}, {"a b": "v"}, {"t\n": "v"}, {"t:1": "v"}, {"t": ""}, {"t": "v" * 128},
            {"t": "v" * 129}, {"t": "a\nb"}, {"t": "\x7f"}, {"t": "é ü"}, {"t": "a\u00a0b"}, {"t": None}, {"t": 1}, {"t": ["v"]}, {"t": {"v": 1}}, [], "web",
        ],
        "metadata": [
            {}, {f"m{i}": i for i in range(32)}, {f"m{i}": i for i in range(33)}, {"": 1}, {"m" * 128: 1},
            {"m" * 129: 1}, {"m\x00": 1}, {"m": [[[[1]]]]}, {"m": {"a": None}}, [], "x",
        ],
    },
    "label": {
        "label": ["y", "", "y" * 256, "y" * 257, 0, 1.5, True, None, [], {}, {"class": 1}],
    },
}
STATUS_AND_PREDICTION = [
    {"status": "error", "prediction": ...},
    {"status": "error", "prediction": None},
    {"status": "error", "prediction": []},
    {"status": "error", "prediction": None, "error": "timeout"},
    {"status": "ok", "prediction": ...},
    {"status": ..., "prediction": None},
    {"status": "OK", "prediction": ...},
]
UNKNOWN_FIELD_NAMES = ["featurs", "Model_id", "score", "label", "features", "", "extra"]


SWEEP_BASES = {
    EventKind.INFERENCE: {
        "prediction_id": "p-1", "model_id": "m", "model_version": "v", "timestamp": 1_795_000_000,
        "features": {"a": 1.5, "b": "x"}, "prediction": 0.5,
    },
    EventKind.LABEL: {"prediction_id": "p-1", "label": 1, "timestamp": 1_795_000_000},
}


def _boundary_values(kind: EventKind) -> dict[str, list]:
    fields = {**BOUNDARIES["common"], **BOUNDARIES[str(kind)]}
    if kind is EventKind.LABEL:
        fields = {name: values for name, values in fields.items() if name in LABEL_FIELDS}
    return fields


def _sweep(kind: EventKind) -> list[dict]:
    """A valid event, then every boundary value of every field, every deletion, every extra field."""
    base = dict(SWEEP_BASES[kind])
    variants = [base]
    for name, values in _boundary_values(kind).items():
        variants.append({key: value for key, value in base.items() if key != name})
        variants += [{**base, name: value} for value in values]
    variants += [{**base, name: 1} for name in UNKNOWN_FIELD_NAMES]
    if kind is EventKind.INFERENCE:
        for changes in STATUS_AND_PREDICTION:
            variant = {**base, **changes}
            variants.append({key: value for key, value in variant.items() if value is not ...})
    return variants


def _verdict_mismatches(kind: EventKind, documents: list[dict]) -> list[str]:
    validator = VALIDATORS[str(kind)]
    mismatches = []
    for document in documents:
        batch = Decoder(kind, RUNTIME_CHECKS_OFF).decode([dumps(document)], "t", 0, [0])
        schema_errors = [error.message for error in validator.iter_errors(document)][:2]
        if (not batch.rejects) != (not schema_errors):
            reason = batch.rejects[0].reason if batch.rejects else None
            mismatches.append(f"{str(document)[:200]}: decoder {reason}, jsonschema {schema_errors}")
    return mismatches


@pytest.mark.parametrize("kind", list(EventKind))
def test_boundary_sweep_verdicts_match_jsonschema(kind: EventKind) -> None:
    documents = _sweep(kind)
    assert len(documents) > 50
    assert _verdict_mismatches(kind, documents) == []


def _assert_same_verdicts(kind: EventKind, strategy: st.SearchStrategy[dict]) -> None:
    validator = VALIDATORS[str(kind)]
    verdicts: Counter[bool] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(strategy)
    def check(document: dict) -> None:
        raw = dumps(document)
        batch = Decoder(kind, RUNTIME_CHECKS_OFF).decode([raw], "t", 0, [0])
        accepted = not batch.rejects
        reason = batch.rejects[0].reason if batch.rejects else None
        errors = [error.message for error in validator.iter_errors(document)][:3]
        assert accepted == (not errors), f"decoder: {reason}; jsonschema: {errors}"
        verdicts[accepted] += 1

    check()
    # The comparison is only meaningful if both verdicts are well represented.
    assert verdicts[True] >= EXAMPLES // 5 and verdicts[False] >= EXAMPLES // 5, verdicts


def test_inference_verdicts_match_jsonschema() -> None:
    _assert_same_verdicts(EventKind.INFERENCE, documents(EventKind.INFERENCE, INFERENCE_FIELDS, INFERENCE_ALWAYS))


def test_label_verdicts_match_jsonschema() -> None:
    _assert_same_verdicts(EventKind.LABEL, documents(EventKind.LABEL, LABEL_FIELDS, LABEL_ALWAYS))
