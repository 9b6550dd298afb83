"""The reason-code table: at least one concrete raw input per reason code.

Used by tests/contract (each input must get exactly its code) and by the ingest integration test
(the same inputs through the real broker).
"""

from dataclasses import dataclass, field
from functools import partial

from stream.decode import EventKind, Limits
from stream.reasons import Reason
from tests.contract.contract_helpers import dumps
from tests.contract.contract_helpers import inference as event_inference
from tests.contract.contract_helpers import label as event_label

INFERENCE = EventKind.INFERENCE
LABEL = EventKind.LABEL


@dataclass(frozen=True)
class Case:
    """A raw value that a decoder of ``kind`` with ``limits`` must reject with ``reason``."""

    reason: Reason
    raw: bytes | None
    kind: EventKind = INFERENCE
    limits: Limits = field(default_factory=Limits)
    before: tuple[bytes, ...] = ()  # decoded (and accepted) first, in an earlier batch


def _deep_metadata(depth: int) -> dict:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return {"nested": value}


def reason_cases(now: float) -> list[Case]:
    """The table, with event times relative to ``now`` (the decoder's clock)."""
    old = now - 400 * 86_400
    inference = partial(event_inference, now)
    label = partial(event_label, now)
    return [
        Case(Reason.EMPTY_PAYLOAD, b""),
        Case(Reason.EMPTY_PAYLOAD, None),
        Case(Reason.EMPTY_PAYLOAD, b" \n\t "),
        Case(Reason.PAYLOAD_TOO_LARGE, dumps(inference(metadata={"blob": "x" * 70_000}))),
        Case(Reason.PAYLOAD_TOO_LARGE, dumps(inference()), limits=Limits(max_payload_bytes=64)),
        Case(Reason.NOT_UTF8, b'{"prediction_id": "p-\xff\xfe"}'),
        Case(Reason.NOT_UTF8, "{\"model_id\": \"caf\u00e9\"}".encode("latin-1")),
        Case(Reason.INVALID_UNICODE_ESCAPE, b'{"prediction_id": "\\ud800"}'),
        Case(Reason.INVALID_UNICODE_ESCAPE, b'{"prediction_id": "\\udc00x"}'),
        Case(Reason.JSON_TRUNCATED, dumps(inference())[:-7]),
        Case(Reason.JSON_TRUNCATED, b'{"prediction_id": "p-1", "features": {"a": 1'),
        Case(Reason.JSON_MALFORMED, b'{"prediction_id": "p-1",}'),
        Case(Reason.JSON_MALFORMED, b"{'prediction_id': 'p-1'}"),
        Case(Reason.JSON_MALFORMED, dumps(inference()) + b"}"),
        Case(Reason.JSON_MALFORMED, b'{"features": {"a": info}}'),
        Case(Reason.NAN_LITERAL, dumps(inference()).replace(b"12.5", b"NaN")),
        Case(Reason.NAN_LITERAL, dumps(inference()).replace(b"12.5", b"Infinity")),
        Case(Reason.NAN_LITERAL, dumps(inference()).replace(b"12.5", b"-Infinity")),
        Case(Reason.NAN_LITERAL, b'{"caf\xc3\xa9": nan}'),
        Case(Reason.NON_FINITE_NUMBER, dumps(inference()).replace(b"12.5", b"1e400")),
        Case(Reason.NESTING_TOO_DEEP, b'{"metadata": ' + b"[" * 2000 + b"]" * 2000 + b"}"),
        Case(Reason.NESTING_TOO_DEEP, dumps(inference(metadata=_deep_metadata(5)))),
        Case(Reason.NESTING_TOO_DEEP, dumps(inference(metadata=_deep_metadata(1))).replace(b"[1]", b"[" * 1020 + b"]" * 1020)),
        Case(Reason.NOT_OBJECT, b"[1, 2, 3]"),
        Case(Reason.NOT_OBJECT, b'"just a string"'),
        Case(Reason.NOT_OBJECT, b"null"),
        Case(Reason.UNKNOWN_FIELD, dumps(inference(featurs={}))),
        Case(Reason.UNSUPPORTED_SCHEMA_VERSION, dumps(inference(schema_version="2.0"))),
        Case(Reason.UNSUPPORTED_SCHEMA_VERSION, dumps(inference(schema_version=1.0))),
        Case(Reason.MISSING_PREDICTION_ID, dumps(inference(prediction_id=...))),
        Case(Reason.WRONG_TYPE_PREDICTION_ID, dumps(inference(prediction_id=17))),
        Case(Reason.EMPTY_PREDICTION_ID, dumps(inference(prediction_id=""))),
        Case(Reason.PREDICTION_ID_TOO_LONG, dumps(inference(prediction_id="p" * 129))),
        Case(Reason.MISSING_MODEL_ID, dumps(inference(model_id=...))),
        Case(Reason.WRONG_TYPE_MODEL_ID, dumps(inference(model_id=None))),
        Case(Reason.EMPTY_MODEL_ID, dumps(inference(model_id=""))),
        Case(Reason.INVALID_MODEL_ID, dumps(inference(model_id="fraud detector"))),
        Case(Reason.INVALID_MODEL_ID, dumps(inference(model_id="fraud\n"))),
        Case(Reason.INVALID_MODEL_ID, dumps(inference(model_id="m" * 129))),
        Case(Reason.MISSING_MODEL_VERSION, dumps(inference(model_version=...))),
        Case(Reason.WRONG_TYPE_MODEL_VERSION, dumps(inference(model_version=3))),
        Case(Reason.EMPTY_MODEL_VERSION, dumps(inference(model_version=""))),
        Case(Reason.INVALID_MODEL_VERSION, dumps(inference(model_version="-v3"))),
        Case(Reason.MISSING_TIMESTAMP, dumps(inference(timestamp=...))),
        Case(Reason.WRONG_TYPE_TIMESTAMP, dumps(inference(timestamp=True))),
        Case(Reason.WRONG_TYPE_TIMESTAMP, dumps(inference(timestamp=[now]))),
        Case(Reason.TIMESTAMP_UNPARSEABLE, dumps(inference(timestamp="yesterday"))),
        Case(Reason.TIMESTAMP_UNPARSEABLE, dumps(inference(timestamp="2026-11-18T10:00:00"))),
        Case(Reason.TIMESTAMP_UNPARSEABLE, dumps(inference(timestamp="2026-02-30T10:00:00Z"))),
        Case(Reason.TIMESTAMP_UNPARSEABLE, dumps(inference(timestamp="0000-01-01T00:00:00Z"))),
        Case(Reason.TIMESTAMP_OUT_OF_RANGE, dumps(inference(timestamp=-1))),
        Case(Reason.TIMESTAMP_OUT_OF_RANGE, dumps(inference(timestamp=now * 1e6))),
        Case(Reason.TIMESTAMP_IN_FUTURE, dumps(inference(timestamp=now + 2 * 86_400))),
        Case(Reason.TIMESTAMP_IN_FUTURE, dumps(inference(timestamp="2030-01-01T00:00:00+02:00"))),
        Case(Reason.TIMESTAMP_TOO_OLD, dumps(inference(timestamp=old))),
        Case(Reason.TIMESTAMP_TOO_OLD, dumps(inference(timestamp=int(old * 1000)))),
        Case(Reason.MISSING_FEATURES, dumps(inference(features=...))),
        Case(Reason.WRONG_TYPE_FEATURES, dumps(inference(features=[1.0, 2.0]))),
        Case(Reason.TOO_MANY_FEATURES, dumps(inference(features={f"f{i}": i for i in range(501)}))),
        Case(Reason.TOO_MANY_FEATURES, dumps(inference()), limits=Limits(max_features=3)),
        Case(Reason.EMPTY_FEATURE_NAME, dumps(inference(features={"": 1.0}))),
        Case(Reason.FEATURE_NAME_TOO_LONG, dumps(inference(features={"f" * 129: 1.0}))),
        Case(Reason.INVALID_FEATURE_NAME, dumps(inference(features={"amount\t": 1.0}))),
        Case(Reason.WRONG_TYPE_FEATURE_VALUE, dumps(inference(features={"amount": [1.0]}))),
        Case(Reason.WRONG_TYPE_FEATURE_VALUE, dumps(inference(features={"amount": {"value": 1.0}}))),
        Case(Reason.FEATURE_VALUE_TOO_LONG, dumps(inference(features={"comment": "x" * 1025}))),
        Case(Reason.MISSING_PREDICTION, dumps(inference(prediction=...))),
        Case(Reason.WRONG_TYPE_PREDICTION, dumps(inference(prediction=[0.1, 0.9]))),
        Case(Reason.WRONG_TYPE_PREDICTION, dumps(inference(prediction=None))),
        Case(Reason.INVALID_PREDICTION, dumps(inference(prediction={}))),
        Case(Reason.INVALID_PREDICTION, dumps(inference(prediction={"score": "high"}))),
        Case(Reason.INVALID_PREDICTION, dumps(inference(prediction={"label": "fraud"}))),
        Case(Reason.INVALID_PREDICTION, dumps(inference(prediction={"class": 1.5}))),
        Case(Reason.INVALID_PREDICTION, dumps(inference(prediction={"probabilities": [0.2, 0.8]}))),
        Case(Reason.INVALID_PREDICTION, dumps(inference(prediction="c" * 257))),
        Case(Reason.PROBABILITY_OUT_OF_RANGE, dumps(inference(prediction={"probabilities": {"a": 1.2, "b": -0.2}}))),
        Case(Reason.WRONG_TYPE_LATENCY_MS, dumps(inference(latency_ms="3ms"))),
        Case(Reason.NEGATIVE_LATENCY_MS, dumps(inference(latency_ms=-0.5))),
        Case(Reason.INVALID_STATUS, dumps(inference(status="failed"))),
        Case(Reason.INVALID_ERROR, dumps(inference(status="error", error={"code": 500}))),
        Case(Reason.WRONG_TYPE_SEGMENT, dumps(inference(segment="web"))),
        Case(Reason.TOO_MANY_SEGMENT_TAGS, dumps(inference(segment={f"t{i}": "x" for i in range(9)}))),
        Case(Reason.INVALID_SEGMENT_TAG, dumps(inference(segment={"sales channel": "web"}))),
        Case(Reason.INVALID_SEGMENT_TAG, dumps(inference(segment={"channel": 3}))),
        Case(Reason.INVALID_SEGMENT_TAG, dumps(inference(segment={"channel": ["web"]}))),
        Case(Reason.WRONG_TYPE_METADATA, dumps(inference(metadata=["r1"]))),
        Case(Reason.TOO_MANY_METADATA_FIELDS, dumps(inference(metadata={f"m{i}": i for i in range(33)}))),
        Case(Reason.INVALID_METADATA_NAME, dumps(inference(metadata={"": 1}))),
        Case(Reason.MISSING_LABEL, dumps(label(label=...)), kind=LABEL),
        Case(Reason.WRONG_TYPE_LABEL, dumps(label(label=None)), kind=LABEL),
        Case(Reason.WRONG_TYPE_LABEL, dumps(label(label={"class": 1})), kind=LABEL),
        Case(Reason.LABEL_TOO_LONG, dumps(label(label="y" * 257)), kind=LABEL),
        Case(Reason.UNKNOWN_FIELD, dumps(label(features={})), kind=LABEL),
        Case(Reason.INVALID_MODEL_ID, dumps(label(model_id="a/b")), kind=LABEL),
        Case(Reason.TIMESTAMP_TOO_OLD, dumps(label(timestamp=old)), kind=LABEL),
        Case(
            Reason.UNKNOWN_MODEL,
            dumps(inference(model_id="churn")),
            limits=Limits(known_models=frozenset({"fraud-detector"}), unknown_model_policy="deadletter"),
        ),
        Case(
            Reason.UNKNOWN_MODEL,
            dumps(label(model_id="churn")),
            kind=LABEL,
            limits=Limits(known_models=frozenset({"fraud-detector"}), unknown_model_policy="deadletter"),
        ),
        Case(
            Reason.MODEL_LIMIT_REACHED,
            dumps(inference(prediction_id="p-2", model_id="churn")),
            limits=Limits(max_models=1),
            before=(dumps(inference()),),
        ),
        Case(Reason.DUPLICATE_PREDICTION_ID, dumps(inference()), before=(dumps(inference()),)),
        Case(Reason.DUPLICATE_PREDICTION_ID, dumps(label()), kind=LABEL, before=(dumps(label()),)),
    ]
