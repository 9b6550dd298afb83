"""The decoder's fast path accepts exactly the inference events its detailed checks accept.

``Decoder._inference_seconds_fast`` accepts common events with a few inline checks and memo hits;
``Decoder._inference_schema_verdict`` is the detailed classifier, the single source of reason codes
(and itself equivalent to jsonschema, test_contract_equivalence.py). Both judge documents parsed by
orjson as in production: those test_contract_equivalence generates, and valid documents with one
field made invalid after a valid sibling (same names and ids) has filled the decoder's memos.
"""

from collections import Counter
from dataclasses import replace

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.decode import Decoder, EventKind
from stream.reasons import Reason
from tests.contract.contract_helpers import dumps
from tests.contract.test_contract_equivalence import (
    EXAMPLES,
    INFERENCE_ALWAYS,
    INFERENCE_FIELDS,
    RUNTIME_CHECKS_OFF,
    _boundary_values,
    documents,
)

BOUNDARIES = _boundary_values(EventKind.INFERENCE)
BAD_FEATURE_VALUES = st.sampled_from([[], {}, [1], {"a": 1}, "v" * 1025])


@st.composite
def warm_and_mutated(draw: st.DrawFn) -> tuple[dict, dict]:
    """A valid document, and a copy with one field invalid or at a boundary (often one feature value)."""
    valid = {}
    for name, (values, _) in INFERENCE_FIELDS.items():
        if name in INFERENCE_ALWAYS or draw(st.booleans()):
            valid[name] = draw(values)
    mutated = dict(valid)
    name = draw(st.sampled_from(sorted(INFERENCE_FIELDS)))
    if name == "features" and valid["features"] and draw(st.booleans()):
        feature = draw(st.sampled_from(sorted(valid["features"])))
        mutated["features"] = {**valid["features"], feature: draw(BAD_FEATURE_VALUES)}
    else:
        mutated[name] = draw(INFERENCE_FIELDS[name][1] | st.sampled_from(BOUNDARIES[name]))
    return valid, mutated


def _verdicts(decoder: Decoder, raw: bytes) -> tuple[float | None, object]:
    """(fast path, detailed checks) on their own parse of ``raw``; the detailed checks run second
    so that their memo updates cannot help the fast path."""
    fast = decoder._inference_seconds_fast(orjson.loads(raw), len(raw))
    return fast, decoder._inference_schema_verdict(orjson.loads(raw), len(raw))


def _assert_same(fast: float | None, detailed: object) -> None:
    if type(detailed) is tuple:
        assert fast is None, f"fast path accepts what the detailed checks reject: {detailed}"
    else:
        assert fast == detailed, f"fast path gives {fast}, the detailed checks {detailed}"


SETTINGS = settings(
    max_examples=2 * EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_fast_path_agrees_on_generated_documents() -> None:
    verdicts: Counter[bool] = Counter()

    @SETTINGS
    @given(documents(EventKind.INFERENCE, INFERENCE_FIELDS, INFERENCE_ALWAYS))
    def check(document: dict) -> None:
        decoder = Decoder(EventKind.INFERENCE, RUNTIME_CHECKS_OFF)
        # Twice: first with empty memos, then with what the first round put in them.
        for _ in range(2):
            fast, detailed = _verdicts(decoder, dumps(document))
            _assert_same(fast, detailed)
        verdicts[type(detailed) is not tuple] += 1

    check()
    # The comparison is only meaningful if both verdicts are well represented.
    assert verdicts[True] >= EXAMPLES // 5 and verdicts[False] >= EXAMPLES // 5, verdicts


def test_fast_path_agrees_after_a_valid_sibling_filled_the_memos() -> None:
    verdicts: Counter[bool] = Counter()

    @SETTINGS
    @given(warm_and_mutated())
    def check(documents: tuple[dict, dict]) -> None:
        valid, mutated = documents
        decoder = Decoder(EventKind.INFERENCE, RUNTIME_CHECKS_OFF)
        _assert_same(*_verdicts(decoder, dumps(valid)))
        fast, detailed = _verdicts(decoder, dumps(mutated))
        _assert_same(fast, detailed)
        verdicts[type(detailed) is not tuple] += 1

    check()
    # Mutations mostly break the document; the valid siblings are compared as well.
    assert verdicts[True] >= EXAMPLES // 20 and verdicts[False] >= EXAMPLES, verdicts


BASE = {"prediction_id": "p", "model_id": "m", "model_version": "v", "timestamp": 1.0, "prediction": 1}


def test_fast_path_counts_features_whose_names_are_all_known() -> None:
    decoder = Decoder(EventKind.INFERENCE, replace(RUNTIME_CHECKS_OFF, max_features=2))
    for features in ({"a": 1, "b": 2}, {"c": 3}):
        _assert_same(*_verdicts(decoder, dumps({**BASE, "features": features})))
    fast, detailed = _verdicts(decoder, dumps({**BASE, "features": {"a": 1, "b": 2, "c": 3}}))
    assert fast is None and detailed[0] is Reason.TOO_MANY_FEATURES


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ([], Reason.WRONG_TYPE_FEATURE_VALUE),
        ({}, Reason.WRONG_TYPE_FEATURE_VALUE),
        ([1.5], Reason.WRONG_TYPE_FEATURE_VALUE),
        ({"x": 1}, Reason.WRONG_TYPE_FEATURE_VALUE),
        ("v" * 1025, Reason.FEATURE_VALUE_TOO_LONG),
    ],
)
def test_fast_path_checks_values_of_known_feature_names(value: object, reason: Reason) -> None:
    decoder = Decoder(EventKind.INFERENCE, RUNTIME_CHECKS_OFF)
    _assert_same(*_verdicts(decoder, dumps({**BASE, "features": {"a": "v" * 1024, "b": 1}})))
    fast, detailed = _verdicts(decoder, dumps({**BASE, "features": {"a": value, "b": 1}}))
    assert fast is None and detailed[0] is reason


@pytest.mark.parametrize(
    ("segment", "reason"),
    [
        ({"channel": ["web"]}, Reason.INVALID_SEGMENT_TAG),
        ({"channel": {"web": 1}}, Reason.INVALID_SEGMENT_TAG),
        ({"channel": 1}, Reason.INVALID_SEGMENT_TAG),
        ({"channel": "w\u0001"}, Reason.INVALID_SEGMENT_TAG),
        ({"channel": "web", "bad tag": "web"}, Reason.INVALID_SEGMENT_TAG),
        ({f"t{i}": "web" for i in range(9)}, Reason.TOO_MANY_SEGMENT_TAGS),
        (["web"], Reason.WRONG_TYPE_SEGMENT),
    ],
)
def test_fast_path_checks_segments_of_known_tag_names_and_values(segment: object, reason: Reason) -> None:
    decoder = Decoder(EventKind.INFERENCE, RUNTIME_CHECKS_OFF)
    tags = {"channel": "web", **{f"t{i}": "web" for i in range(7)}}
    _assert_same(*_verdicts(decoder, dumps({**BASE, "features": {}, "segment": tags})))
    fast, detailed = _verdicts(decoder, dumps({**BASE, "features": {}, "segment": segment}))
    assert fast is None and detailed[0] is reason


@pytest.mark.parametrize(
    "prediction",
    [
        {"score": 0.5, "class": 1},
        {"score": 1, "class": True},
        {"score": True, "class": 1},
        {"score": 0.5, "class": 1.5},
        {"score": 0.5, "class": 2.0},
        {"score": 0.5, "class": "x" * 257},
        {"score": 0.5, "class": None},
        {"score": 0.5, "value": 1},
        {"score": "0.5", "class": 1},
    ],
)
def test_fast_path_agrees_on_score_and_class_predictions(prediction: dict) -> None:
    _assert_same(*_verdicts(Decoder(EventKind.INFERENCE, RUNTIME_CHECKS_OFF), dumps({**BASE, "prediction": prediction})))
