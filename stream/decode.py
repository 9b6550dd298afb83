"""Decode and validate batches of raw inference and label events.

This is the hand-written runtime form of ``schemas/inference.schema.json`` and
``schemas/label.schema.json``: jsonschema takes about 1 ms per 25-feature event, some 200x this
decoder, so the same rules are written out here and tests/contract proves, on boundary values and
generated events, that both give the same verdict. On top of the schema the decoder checks what a schema cannot: payload size, nesting depth
of ``metadata``, calendar validity of timestamps, timestamps too far from the decoder's clock,
unknown models and recently seen ``prediction_id`` values.

Inference events first take a fast path that only answers "valid or not" (a few inline checks,
memos of names and ids seen before); only events it declines go through the detailed checks, the
single source of reason codes. tests/contract proves both accept exactly the same events.

Usage, one ``Decoder`` per input partition (its duplicate memory is per partition)::

    decoder = Decoder(EventKind.INFERENCE, Limits(max_features=200))
    batch = decoder.decode(values, topic, partition, offsets)   # offsets increasing
    batch.events          # accepted events, timestamp normalized to float epoch seconds
    batch.rejects         # Reject(reason, message, original, ...) -> .deadletter_record()
    batch.counts          # Counter[(Reason, model_id | None)]

Decoding never raises on data: every input value ends up either accepted or rejected.
"""

import base64
import gc
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

import orjson

from stream.reasons import Reason

SCHEMA_VERSION = "1.0"

# Caps fixed by the schemas. Limits may tighten the first two but never loosen them, so that the
# decoder never accepts an event the schema rejects.
SCHEMA_MAX_FEATURES = 500
SCHEMA_MAX_NAME_LENGTH = 128
MAX_ID_LENGTH = 128
MAX_FEATURE_STRING_LENGTH = 1024
MAX_PREDICTION_STRING_LENGTH = 256
MAX_PROBABILITIES = 1000
MAX_ERROR_LENGTH = 1024
MAX_SEGMENT_TAGS = 8
MAX_TAG_NAME_LENGTH = 64
MAX_TAG_VALUE_LENGTH = 128
MAX_METADATA_FIELDS = 32
MAX_LABEL_STRING_LENGTH = 256
MAX_MESSAGE_LENGTH = 1024  # of a dead-letter message
# Epoch numbers below this are seconds, from it up to EPOCH_LIMIT milliseconds: 1e11 s is the year
# 5138, 1e11 ms is 1973, so no plausible event time is ambiguous.
EPOCH_MILLISECONDS_FROM = 1e11
EPOCH_LIMIT = 1e14

INFERENCE_FIELDS = frozenset(
    {
        "schema_version",
        "prediction_id",
        "model_id",
        "model_version",
        "timestamp",
        "features",
        "prediction",
        "latency_ms",
        "status",
        "error",
        "segment",
        "metadata",
    }
)
# The inference fields most events carry: the fast path checks error and metadata only when sent.
COMMON_INFERENCE_FIELDS = INFERENCE_FIELDS - {"error", "metadata"}
LABEL_FIELDS = frozenset({"schema_version", "prediction_id", "label", "timestamp", "model_id"})
PREDICTION_OBJECT_FIELDS = frozenset({"score", "probabilities", "class", "value"})

# Metadata depth is checked recursively; this keeps the recursion well inside Python's limit.
MAX_DEPTH_LIMIT = 256
# Entries of each memo of already-validated names and ids: enough for all feature names (up to
# SCHEMA_MAX_FEATURES each) of the models of a partition.
VALID_CACHE_SIZE = 16 * 1024

_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
_RFC3339 = re.compile(
    r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)
_RAW_MODEL_ID = re.compile(rb'"model_id"\s*:\s*"([A-Za-z0-9][A-Za-z0-9._-]{0,127})"')
_NON_FINITE_LITERAL = re.compile(r"-?(nan|infinity|inf)(?![a-z0-9_])", re.IGNORECASE)
_JSON_WHITESPACE = b" \t\n\r"
_SCALAR_TYPES = frozenset({int, float, str, bool, type(None)})
_NUMBER_TYPES = frozenset({int, float})  # JSON Schema's number: not bool
_PLAIN_PREDICTION_TYPES = frozenset({int, float, bool})  # valid predictions of any status
_PLAIN_CLASS_TYPES = frozenset({int, bool})  # valid classes whatever their value
_MISSING: Any = object()

Problem = tuple[Reason, str]


class EventKind(StrEnum):
    """Which contract a decoder enforces."""

    INFERENCE = "inference"
    LABEL = "label"


@dataclass(frozen=True, slots=True)
class Limits:
    """Runtime limits of a decoder. Defaults suit a production ingest worker.

    ``known_models`` are always accepted. A model not in it is dead-lettered (``unknown_model``)
    under policy ``"deadletter"``; under ``"register"`` it is accepted and remembered, up to
    ``max_models`` models in total (then ``model_limit_reached``). Label events never register a
    model: their optional ``model_id`` is only checked against ``known_models`` under
    ``"deadletter"``.

    ``duplicate_window`` bounds duplicate detection: an event that passes the schema checks at
    offset ``o`` makes a later event with the same ``prediction_id`` at offsets
    ``o+1 .. o+duplicate_window`` a duplicate (0 disables it). Events rejected by the schema checks
    are not remembered, so a corrected resend is accepted. The memory holds at most one entry per
    record in the window and depends on those records only, so ``Decoder.replay_start`` tells a
    restarted worker what to re-decode to rebuild it exactly.

    For replay of historical files pass ``max_past_seconds=math.inf`` (or a clock of the replayed
    time): the time checks compare event time with the decoder's clock.
    """

    max_payload_bytes: int = 64 * 1024
    max_features: int = SCHEMA_MAX_FEATURES
    max_name_length: int = SCHEMA_MAX_NAME_LENGTH
    max_depth: int = 4
    max_future_seconds: float = 86_400.0
    max_past_seconds: float = 365 * 86_400.0
    known_models: frozenset[str] = frozenset()
    unknown_model_policy: Literal["deadletter", "register"] = "register"
    max_models: int = 10_000
    duplicate_window: int = 50_000

    def __post_init__(self) -> None:
        if not 0 < self.max_features <= SCHEMA_MAX_FEATURES:
            raise ValueError(f"max_features must be in 1..{SCHEMA_MAX_FEATURES} (the schema's cap)")
        if not 0 < self.max_name_length <= SCHEMA_MAX_NAME_LENGTH:
            raise ValueError(f"max_name_length must be in 1..{SCHEMA_MAX_NAME_LENGTH} (the schema's cap)")
        if not 0 <= self.max_depth <= MAX_DEPTH_LIMIT:
            raise ValueError(f"max_depth must be in 0..{MAX_DEPTH_LIMIT}")
        if self.max_payload_bytes <= 0 or self.max_models < 0 or self.duplicate_window < 0:
            raise ValueError("max_payload_bytes must be positive; max_models and duplicate_window >= 0")
        if self.max_future_seconds < 0 or self.max_past_seconds < 0:
            raise ValueError("max_future_seconds and max_past_seconds must be >= 0")
        if self.unknown_model_policy not in ("deadletter", "register"):
            raise ValueError("unknown_model_policy must be 'deadletter' or 'register'")
        invalid = sorted(m for m in self.known_models if not _is_safe_id(m))
        if invalid:
            raise ValueError(f"known_models must be safe ids: {invalid[:5]}")


@dataclass(frozen=True, slots=True)
class Reject:
    """One rejected input value and where it came from."""

    kind: EventKind
    reason: Reason
    message: str
    original: bytes
    topic: str
    partition: int
    offset: int
    model_id: str | None
    rejected_at: float

    def deadletter_record(self) -> dict[str, Any]:
        """The record for driftline.deadletter (valid against schemas/deadletter.schema.json)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": str(self.kind),
            "reason": str(self.reason),
            "message": self.message,
            "original": base64.b64encode(self.original).decode("ascii"),
            "source": {"topic": self.topic, "partition": self.partition, "offset": self.offset},
            "model_id": self.model_id,
            "rejected_at": datetime.fromtimestamp(self.rejected_at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }


@dataclass(slots=True)
class DecodedBatch:
    """Result of decoding one batch: accepted events in input order, and rejects."""

    events: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)

    @property
    def counts(self) -> Counter[tuple[Reason, str | None]]:
        """Rejects per (reason, model_id); model_id is None when it could not be read."""
        return Counter((reject.reason, reject.model_id) for reject in self.rejects)


class Decoder:
    """Decodes and validates raw values of one kind; keeps the model registry and recent ids."""

    def __init__(
        self,
        kind: EventKind = EventKind.INFERENCE,
        limits: Limits = Limits(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.kind = kind
        self.limits = limits
        self._clock = clock
        self._models: set[str] = set(limits.known_models)
        # prediction_id -> offset of its last occurrence in the duplicate window, and every
        # occurrence oldest first, to expire them: offsets and ids in two queues (no tuple per event).
        self._recent: dict[str, int] = {}
        self._occurrence_offsets: deque[int] = deque()
        self._occurrence_ids: deque[str] = deque()
        # Names and ids already found valid: a model sends the same feature names, model id and
        # version, and segment tags over and over, so a hit costs one hash instead of scans.
        self._valid_feature_names: set[str] = set()
        self._valid_ids: set[str] = set()
        self._valid_tag_names: set[str] = set()
        self._valid_tag_values: set[str] = set()
        # The schema checks give the event time in epoch seconds or a problem. Inference events
        # first take a fast path that gives None for any event it does not accept; label events,
        # a few fields, have the detailed checks only.
        if kind is EventKind.INFERENCE:
            self._schema_fast, self._schema_verdict = self._inference_seconds_fast, self._inference_schema_verdict
        else:
            self._schema_fast = self._schema_verdict = self._label_seconds

    def replay_start(self, committed: int) -> int:
        """First offset to re-decode, up to ``committed``, so that a fresh decoder's duplicate memory
        equals that of one which decoded the partition from the start (offsets must increase)."""
        return max(0, committed - self.limits.duplicate_window)

    @property
    def models(self) -> frozenset[str]:
        """Models accepted without a registry decision: the known ones plus those registered."""
        return frozenset(self._models)

    def decode(
        self, values: Sequence[bytes | None], topic: str, partition: int, offsets: Sequence[int]
    ) -> DecodedBatch:
        """Decode ``values`` read from ``topic``/``partition`` at ``offsets`` (same length).

        ``None`` (a Kafka tombstone) is rejected as ``empty_payload``. Accepted events are the
        parsed objects with ``timestamp`` replaced by float epoch seconds; other fields are kept
        as sent (absent optional fields stay absent).
        """
        if len(values) != len(offsets):
            raise ValueError(f"{len(values)} values but {len(offsets)} offsets")
        batch = DecodedBatch()
        now = self._clock()
        limits = self.limits
        max_payload, window = limits.max_payload_bytes, limits.duplicate_window
        latest, earliest = now + limits.max_future_seconds, now - limits.max_past_seconds
        recent, occurrence_offsets, occurrence_ids = self._recent, self._occurrence_offsets, self._occurrence_ids
        models, schema_fast, schema_verdict, loads = self._models, self._schema_fast, self._schema_verdict, orjson.loads
        accept = batch.events.append
        # The checks after the schema's run inline, as they run per event: the duplicate memory
        # first, so that it depends on the window's records alone, then the clock, then the model
        # registry.
        for raw, offset in zip(values, offsets):
            event: Any = None
            problem: Problem | None = None
            if not raw:
                problem = (Reason.EMPTY_PAYLOAD, "empty value or tombstone")
            elif (size := len(raw)) > max_payload:
                problem = (Reason.PAYLOAD_TOO_LARGE, f"{size} bytes > {max_payload}")
            else:
                try:
                    event = loads(raw)
                except orjson.JSONDecodeError as error:
                    problem = _classify_json_error(raw, error)
                else:
                    seconds = schema_fast(event, size)
                    if seconds is None:  # declined: the detailed checks name the problem
                        seconds = schema_verdict(event, size)
                    if type(seconds) is tuple:
                        problem = seconds
                    elif window:
                        # Occurrences older than the window are dropped once per batch (below), so
                        # one found here may be out of the window already: then it does not count.
                        prediction_id = event["prediction_id"]
                        previous = recent.get(prediction_id)
                        recent[prediction_id] = offset
                        occurrence_offsets.append(offset)
                        occurrence_ids.append(prediction_id)
                        if previous is not None and previous >= offset - window:
                            problem = (Reason.DUPLICATE_PREDICTION_ID, f"prediction_id {prediction_id!r} also at offset {previous}")
                    if problem is None:
                        if not earliest <= seconds <= latest:
                            problem = _out_of_time(seconds, now)
                        else:
                            model_id = event.get("model_id")
                            if model_id is not None and model_id not in models:
                                problem = self._admit_model(model_id)
            if problem is None:
                event["timestamp"] = seconds
                accept(event)
            else:
                batch.rejects.append(
                    Reject(
                        kind=self.kind,
                        reason=problem[0],
                        message=problem[1][:MAX_MESSAGE_LENGTH],
                        original=bytes(raw or b""),
                        topic=topic,
                        partition=partition,
                        offset=offset,
                        model_id=readable_model_id(event, raw),
                        rejected_at=now,
                    )
                )
        if window and offsets:
            self._forget_before(offsets[-1] - window)
        return batch

    def _admit_model(self, model_id: str) -> Problem | None:
        """Whether an event of a model not yet in the registry is accepted: under policy
        ``"register"`` an inference event registers it (up to ``max_models``), a label event
        is accepted without registering it."""
        if self.limits.unknown_model_policy == "deadletter":
            return Reason.UNKNOWN_MODEL, f"model_id {model_id!r} is not a known model"
        if self.kind is EventKind.LABEL:
            return None
        if len(self._models) >= self.limits.max_models:
            return Reason.MODEL_LIMIT_REACHED, f"{len(self._models)} models registered"
        self._models.add(model_id)
        return None

    def _forget_before(self, horizon: int) -> None:
        """Drop the occurrences at offsets below ``horizon`` from the duplicate memory."""
        recent, offsets, ids = self._recent, self._occurrence_offsets, self._occurrence_ids
        while offsets and offsets[0] < horizon:
            expired_offset, expired_id = offsets.popleft(), ids.popleft()
            if recent[expired_id] == expired_offset:
                del recent[expired_id]

    def _inference_seconds_fast(self, event: Any, size: int) -> float | None:
        """Fast path of the schema checks: the event time in epoch seconds if ``event`` passes them
        all, else None (``_inference_schema_verdict`` then names the problem).

        Each field passes a cheap inline check: the rule itself, or a condition that implies it
        with the detailed path's own helper as the fallback. So both paths accept exactly the same
        events (tests/contract checks it), while a common event costs a few type checks and memo
        hits."""
        if type(event) is not dict:
            return None
        # One test shows both that no field is unknown and that error and metadata are absent.
        if not COMMON_INFERENCE_FIELDS.issuperset(event) and not (
            INFERENCE_FIELDS.issuperset(event) and self._error_and_metadata_valid(event)
        ):
            return None
        try:
            prediction_id = event["prediction_id"]
            model_id = event["model_id"]
            model_version = event["model_version"]
            timestamp = event["timestamp"]
            features = event["features"]
        except KeyError:  # a required field is missing
            return None
        get = event.get
        if (
            get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION
            or type(prediction_id) is not str
            or not 0 < len(prediction_id) <= MAX_ID_LENGTH
            or type(model_id) is not str
            or type(model_version) is not str
        ):
            return None
        valid_ids = self._valid_ids
        if model_id not in valid_ids or model_version not in valid_ids:
            if not (_is_safe_id(model_id) and _is_safe_id(model_version)):
                return None
            _add_bounded(valid_ids, (model_id, model_version))
        if type(timestamp) is float and 0 <= timestamp < EPOCH_MILLISECONDS_FROM:
            seconds = timestamp  # epoch seconds as a float, the common form, need no conversion
        else:
            seconds = timestamp_seconds(timestamp)
            if type(seconds) is tuple:
                return None
        if not (
            type(features) is dict
            and len(features) <= self.limits.max_features
            and self._valid_feature_names.issuperset(features)
            # CPython's garbage collector tracks a dict once a list or dict is stored in it, so an
            # untracked dict holds scalars only; and a string over the cap needs a larger payload.
            and not gc.is_tracked(features)
            and size <= MAX_FEATURE_STRING_LENGTH
        ) and self._check_features(features, size) is not None:
            return None
        status = get("status", "ok")
        if status != "ok" and status != "error":
            return None
        prediction = get("prediction", _MISSING)
        # The common shapes: a bare number or bool, {"score": number}, or that with an int or bool class.
        if not (
            type(prediction) in _PLAIN_PREDICTION_TYPES
            or (
                type(prediction) is dict
                and type(prediction.get("score")) in _NUMBER_TYPES
                and (len(prediction) == 1 or (len(prediction) == 2 and type(prediction.get("class")) in _PLAIN_CLASS_TYPES))
            )
        ) and _check_prediction(prediction, status == "error") is not None:
            return None
        latency = get("latency_ms", 0)
        if type(latency) not in _NUMBER_TYPES or latency < 0:
            return None
        segment = get("segment", _MISSING)
        if (
            segment is not _MISSING
            and not (
                type(segment) is dict
                and len(segment) <= MAX_SEGMENT_TAGS
                and not gc.is_tracked(segment)  # scalars only: the values are hashable
                and self._valid_tag_names.issuperset(segment)
                and self._valid_tag_values.issuperset(segment.values())
            )
            and self._check_segment(segment) is not None
        ):
            return None
        return seconds

    def _error_and_metadata_valid(self, event: dict[str, Any]) -> bool:
        """The fast path's checks of the two fields most events omit."""
        error = event.get("error", "")
        metadata = event.get("metadata", _MISSING)
        return (
            type(error) is str
            and len(error) <= MAX_ERROR_LENGTH
            and (metadata is _MISSING or self._check_metadata(metadata) is None)
        )

    def _inference_schema_verdict(self, event: Any, size: int) -> float | Problem:
        """The detailed schema checks: the event time in epoch seconds, or the first problem.

        The single source of reason codes; runs on events the fast path did not accept."""
        if type(event) is not dict:
            return Reason.NOT_OBJECT, f"top level is {_json_type(event)}"
        if not event.keys() <= INFERENCE_FIELDS:
            return Reason.UNKNOWN_FIELD, f"unknown fields {_names(event.keys() - INFERENCE_FIELDS)}"
        problem = (
            _check_envelope(event)
            or _check_id(event.get("model_id", _MISSING), "model_id", _MODEL_ID_REASONS)
            or _check_id(event.get("model_version", _MISSING), "model_version", _MODEL_VERSION_REASONS)
        )
        if problem is not None:
            return problem
        seconds = timestamp_seconds(event.get("timestamp", _MISSING))
        if type(seconds) is tuple:
            return seconds
        problem = self._check_features(event.get("features", _MISSING), size)
        if problem is not None:
            return problem
        status = event.get("status", "ok")
        if status != "ok" and status != "error":
            return Reason.INVALID_STATUS, "status must be 'ok' or 'error'"
        problem = _check_prediction(event.get("prediction", _MISSING), status == "error") or self._check_optional_fields(event)
        if problem is not None:
            return problem
        return seconds

    def _label_seconds(self, event: Any, size: int) -> float | Problem:
        """The schema checks of a label event: its time in epoch seconds, or the first problem."""
        if type(event) is not dict:
            return Reason.NOT_OBJECT, f"top level is {_json_type(event)}"
        if not event.keys() <= LABEL_FIELDS:
            return Reason.UNKNOWN_FIELD, f"unknown fields {_names(event.keys() - LABEL_FIELDS)}"
        problem = _check_envelope(event)
        if problem is not None:
            return problem
        label = event.get("label", _MISSING)
        kind = type(label)
        if kind is str:
            if len(label) > MAX_LABEL_STRING_LENGTH:
                return Reason.LABEL_TOO_LONG, f"label has {len(label)} characters > {MAX_LABEL_STRING_LENGTH}"
        elif label is _MISSING:
            return Reason.MISSING_LABEL, "label is required"
        elif kind is not int and kind is not float and kind is not bool:
            return Reason.WRONG_TYPE_LABEL, f"label is {_json_type(label)}"
        seconds = timestamp_seconds(event.get("timestamp", _MISSING))
        if type(seconds) is tuple:
            return seconds
        model_id = event.get("model_id", _MISSING)
        if model_id is not _MISSING:
            problem = _check_id(model_id, "model_id", _MODEL_ID_REASONS)
            if problem is not None:
                return problem
        return seconds

    def _check_features(self, features: Any, size: int) -> Problem | None:
        if type(features) is not dict:
            if features is _MISSING:
                return Reason.MISSING_FEATURES, "features is required"
            return Reason.WRONG_TYPE_FEATURES, f"features is {_json_type(features)}"
        if len(features) > self.limits.max_features:
            return Reason.TOO_MANY_FEATURES, f"{len(features)} features > {self.limits.max_features}"
        if not self._valid_feature_names.issuperset(features):
            problem = _check_names(features, self.limits.max_name_length, _FEATURE_NAME_REASONS)
            if problem is not None:
                return problem
            _add_bounded(self._valid_feature_names, features)
        value_types = set(map(type, features.values()))
        if not value_types <= _SCALAR_TYPES:
            name = next(k for k, v in features.items() if type(v) not in _SCALAR_TYPES)
            return Reason.WRONG_TYPE_FEATURE_VALUE, f"feature {name[:64]!r} is {_json_type(features[name])}"
        # A string longer than the cap needs at least that many bytes, so small payloads skip the scan.
        if size > MAX_FEATURE_STRING_LENGTH and str in value_types:
            for name, value in features.items():
                if type(value) is str and len(value) > MAX_FEATURE_STRING_LENGTH:
                    return Reason.FEATURE_VALUE_TOO_LONG, f"feature {name[:64]!r} has {len(value)} characters"
        return None

    def _check_optional_fields(self, event: dict[str, Any]) -> Problem | None:
        latency = event.get("latency_ms", _MISSING)
        if latency is not _MISSING:
            if type(latency) is not float and type(latency) is not int:
                return Reason.WRONG_TYPE_LATENCY_MS, f"latency_ms is {_json_type(latency)}"
            if latency < 0:
                return Reason.NEGATIVE_LATENCY_MS, f"latency_ms is {latency}"
        error = event.get("error", _MISSING)
        if error is not _MISSING and (type(error) is not str or len(error) > MAX_ERROR_LENGTH):
            return Reason.INVALID_ERROR, f"error must be a string of at most {MAX_ERROR_LENGTH} characters"
        segment = event.get("segment", _MISSING)
        if segment is not _MISSING:
            problem = self._check_segment(segment)
            if problem is not None:
                return problem
        metadata = event.get("metadata", _MISSING)
        if metadata is not _MISSING:
            return self._check_metadata(metadata)
        return None

    def _check_segment(self, segment: Any) -> Problem | None:
        if type(segment) is not dict:
            return Reason.WRONG_TYPE_SEGMENT, f"segment is {_json_type(segment)}"
        if len(segment) > MAX_SEGMENT_TAGS:
            return Reason.TOO_MANY_SEGMENT_TAGS, f"{len(segment)} segment tags > {MAX_SEGMENT_TAGS}"
        for name, value in segment.items():
            if name not in self._valid_tag_names:
                if len(name) > MAX_TAG_NAME_LENGTH or not _is_safe_id(name):
                    return Reason.INVALID_SEGMENT_TAG, f"segment tag name {name[:64]!r} is not a safe id of <= {MAX_TAG_NAME_LENGTH}"
                _add_bounded(self._valid_tag_names, (name,))
            if type(value) is not str or len(value) > MAX_TAG_VALUE_LENGTH or _has_control_character(value):
                return Reason.INVALID_SEGMENT_TAG, f"segment tag {name!r} must be a string of <= {MAX_TAG_VALUE_LENGTH} characters without control characters"
        _add_bounded(self._valid_tag_values, segment.values())
        return None

    def _check_metadata(self, metadata: Any) -> Problem | None:
        if type(metadata) is not dict:
            return Reason.WRONG_TYPE_METADATA, f"metadata is {_json_type(metadata)}"
        if len(metadata) > MAX_METADATA_FIELDS:
            return Reason.TOO_MANY_METADATA_FIELDS, f"{len(metadata)} metadata fields > {MAX_METADATA_FIELDS}"
        if not metadata:
            return None
        problem = _check_names(metadata, self.limits.max_name_length, _METADATA_NAME_REASONS)
        if problem is not None:
            return problem
        for name, value in metadata.items():
            if _nests_deeper_than(value, self.limits.max_depth):
                return Reason.NESTING_TOO_DEEP, f"metadata {name[:64]!r} nests deeper than {self.limits.max_depth}"
        return None


def _out_of_time(seconds: float, now: float) -> Problem:
    """The problem of an event time outside the decoder's window around ``now``."""
    if seconds > now:
        return Reason.TIMESTAMP_IN_FUTURE, f"timestamp {seconds:.3f} is {seconds - now:.0f} s ahead of now"
    return Reason.TIMESTAMP_TOO_OLD, f"timestamp {seconds:.3f} is {now - seconds:.0f} s behind now"


_MODEL_ID_REASONS = (
    Reason.MISSING_MODEL_ID,
    Reason.WRONG_TYPE_MODEL_ID,
    Reason.EMPTY_MODEL_ID,
    Reason.INVALID_MODEL_ID,
)
_MODEL_VERSION_REASONS = (
    Reason.MISSING_MODEL_VERSION,
    Reason.WRONG_TYPE_MODEL_VERSION,
    Reason.EMPTY_MODEL_VERSION,
    Reason.INVALID_MODEL_VERSION,
)
_FEATURE_NAME_REASONS = (Reason.EMPTY_FEATURE_NAME, Reason.FEATURE_NAME_TOO_LONG, Reason.INVALID_FEATURE_NAME)
_METADATA_NAME_REASONS = (Reason.INVALID_METADATA_NAME,) * 3


def _check_envelope(event: dict[str, Any]) -> Problem | None:
    """Checks shared by inference and label events: schema_version and prediction_id."""
    version = event.get("schema_version", SCHEMA_VERSION)
    if type(version) is not str or version != SCHEMA_VERSION:
        return Reason.UNSUPPORTED_SCHEMA_VERSION, f"schema_version {str(version)[:32]!r} is not {SCHEMA_VERSION!r}"
    prediction_id = event.get("prediction_id", _MISSING)
    if type(prediction_id) is str and 0 < len(prediction_id) <= MAX_ID_LENGTH:
        return None
    if prediction_id is _MISSING:
        return Reason.MISSING_PREDICTION_ID, "prediction_id is required"
    if type(prediction_id) is not str:
        return Reason.WRONG_TYPE_PREDICTION_ID, f"prediction_id is {_json_type(prediction_id)}"
    if not prediction_id:
        return Reason.EMPTY_PREDICTION_ID, "prediction_id is empty"
    return Reason.PREDICTION_ID_TOO_LONG, f"prediction_id has {len(prediction_id)} characters > {MAX_ID_LENGTH}"


def _check_id(value: Any, name: str, reasons: tuple[Reason, Reason, Reason, Reason]) -> Problem | None:
    """Check a required safe id (model_id, model_version)."""
    if type(value) is str and _is_safe_id(value):
        return None
    missing, wrong_type, empty, invalid = reasons
    if value is _MISSING:
        return missing, f"{name} is required"
    if type(value) is not str:
        return wrong_type, f"{name} is {_json_type(value)}"
    if not value:
        return empty, f"{name} is empty"
    return invalid, f"{name} {value[:64]!r} is not a safe id ([A-Za-z0-9][A-Za-z0-9._-]*, <= {MAX_ID_LENGTH})"


def _is_safe_id(value: str) -> bool:
    return len(value) <= MAX_ID_LENGTH and _SAFE_ID.fullmatch(value) is not None


def timestamp_seconds(value: Any) -> float | Problem:
    """Epoch seconds of a timestamp field, or the problem with it."""
    kind = type(value)
    if kind is float or kind is int:
        if not 0 <= value < EPOCH_LIMIT:
            return Reason.TIMESTAMP_OUT_OF_RANGE, f"epoch timestamp {value} outside [0, {EPOCH_LIMIT:.0e})"
        return value / 1000.0 if value >= EPOCH_MILLISECONDS_FROM else float(value)
    if kind is str:
        if _RFC3339.fullmatch(value) is not None:
            try:
                return datetime.fromisoformat(value).timestamp()
            except ValueError:
                pass  # a date the pattern admits but the calendar does not, e.g. 2025-02-30
        return Reason.TIMESTAMP_UNPARSEABLE, f"timestamp {value[:64]!r} is not RFC 3339 with a time zone"
    if value is _MISSING:
        return Reason.MISSING_TIMESTAMP, "timestamp is required"
    return Reason.WRONG_TYPE_TIMESTAMP, f"timestamp is {_json_type(value)}"


def _check_names(fields: dict[str, Any], max_length: int, reasons: tuple[Reason, Reason, Reason]) -> Problem | None:
    """Check the keys of a non-empty object: non-empty, at most max_length, no control characters."""
    empty, too_long, invalid = reasons
    if "" in fields:
        return empty, "empty name"
    if max(map(len, fields)) > max_length:
        name = next(k for k in fields if len(k) > max_length)
        return too_long, f"name {name[:64]!r} has {len(name)} characters > {max_length}"
    if _has_control_character("".join(fields)):
        name = next(k for k in fields if _has_control_character(k))
        return invalid, f"name {name[:64]!r} contains a control character"
    return None


def _check_prediction(prediction: Any, is_error: bool) -> Problem | None:
    kind = type(prediction)
    if kind is float or kind is int or kind is bool:
        return None
    if kind is str:
        if len(prediction) > MAX_PREDICTION_STRING_LENGTH:
            return Reason.INVALID_PREDICTION, f"prediction string longer than {MAX_PREDICTION_STRING_LENGTH}"
        return None
    if kind is dict:
        return _check_prediction_object(prediction)
    if prediction is _MISSING:
        return None if is_error else (Reason.MISSING_PREDICTION, "prediction is required unless status is 'error'")
    if prediction is None and is_error:
        return None
    return Reason.WRONG_TYPE_PREDICTION, f"prediction is {_json_type(prediction)}"


def _check_prediction_object(prediction: dict[str, Any]) -> Problem | None:
    if not prediction:
        return Reason.INVALID_PREDICTION, "prediction object needs score, probabilities, class or value"
    if not prediction.keys() <= PREDICTION_OBJECT_FIELDS:
        return Reason.INVALID_PREDICTION, f"unknown prediction fields {_names(prediction.keys() - PREDICTION_OBJECT_FIELDS)}"
    score = prediction.get("score", 0.0)
    if type(score) is not float and type(score) is not int:
        return Reason.INVALID_PREDICTION, f"prediction.score is {_json_type(score)}"
    value = prediction.get("value", 0.0)
    if type(value) is not float and type(value) is not int:
        return Reason.INVALID_PREDICTION, f"prediction.value is {_json_type(value)}"
    predicted_class = prediction.get("class", _MISSING)
    if predicted_class is not _MISSING and not (
        type(predicted_class) is bool
        or _is_integer(predicted_class)
        or (type(predicted_class) is str and len(predicted_class) <= MAX_PREDICTION_STRING_LENGTH)
    ):
        return Reason.INVALID_PREDICTION, "prediction.class must be a string, integer or bool"
    probabilities = prediction.get("probabilities", _MISSING)
    if probabilities is _MISSING:
        return None
    if type(probabilities) is not dict or not 0 < len(probabilities) <= MAX_PROBABILITIES:
        return Reason.INVALID_PREDICTION, f"prediction.probabilities must be an object of 1..{MAX_PROBABILITIES} classes"
    if "" in probabilities or max(map(len, probabilities)) > MAX_PREDICTION_STRING_LENGTH:
        return Reason.INVALID_PREDICTION, "prediction.probabilities class names must have 1..256 characters"
    for name, probability in probabilities.items():
        if type(probability) is not float and type(probability) is not int:
            return Reason.INVALID_PREDICTION, f"probability of {name[:64]!r} is {_json_type(probability)}"
        if not 0 <= probability <= 1:
            return Reason.PROBABILITY_OUT_OF_RANGE, f"probability of {name[:64]!r} is {probability}"
    return None


def _has_control_character(text: str) -> bool:
    # isprintable() is a fast C scan that is True for almost all real text; only when it is False
    # (control characters, but also e.g. U+00A0) does the exact check run.
    return not text.isprintable() and _CONTROL_CHARACTER.search(text) is not None


def _add_bounded(cache: set[str], keys: Any) -> None:
    """Add to a memo set, first emptying it at VALID_CACHE_SIZE: adversarial variety costs
    re-checks, never memory."""
    if len(cache) + len(keys) > VALID_CACHE_SIZE:
        cache.clear()
    cache.update(keys)


def _is_integer(value: Any) -> bool:
    """JSON Schema's integer: an int, or a float with no fractional part (but never a bool)."""
    return type(value) is int or (type(value) is float and value.is_integer())


def _nests_deeper_than(value: Any, depth: int) -> bool:
    """Whether arrays/objects in ``value`` nest more than ``depth`` levels ([1] and {} are one).

    Recursion stops at ``depth``, so it stays far below Python's recursion limit even for the
    1024 levels orjson accepts."""
    if type(value) is dict:
        children: Any = value.values()
    elif type(value) is list:
        children = value
    else:
        return False
    return depth == 0 or any(_nests_deeper_than(child, depth - 1) for child in children)


def _classify_json_error(raw: bytes, error: orjson.JSONDecodeError) -> Problem:
    """Reason for a value orjson could not parse. Only runs on the (rare) failure path."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as utf8_error:
        return Reason.NOT_UTF8, f"invalid UTF-8 at byte {utf8_error.start}"
    if not raw.strip(_JSON_WHITESPACE):
        return Reason.EMPTY_PAYLOAD, "only whitespace"
    if _NON_FINITE_LITERAL.match(error.doc, error.pos) is not None:
        return Reason.NAN_LITERAL, f"NaN/Infinity literal at character {error.pos}"
    message = error.msg
    if "infinity when parsed" in message:
        return Reason.NON_FINITE_NUMBER, f"number too large for a double at character {error.pos}"
    if "surrogate" in message:
        return Reason.INVALID_UNICODE_ESCAPE, f"{message} at character {error.pos}"
    if "depth limit" in message:
        return Reason.NESTING_TOO_DEEP, f"{message} at character {error.pos}"
    if "unexpected end of data" in message:
        return Reason.JSON_TRUNCATED, f"document ends at character {error.pos}"
    return Reason.JSON_MALFORMED, f"{message} at character {error.pos}"


def readable_model_id(event: Any, raw: bytes | None) -> str | None:
    """The model_id of a rejected value, if it is a safe id (unsafe values must not become counter
    keys). When the JSON did not parse, the first ``"model_id": "<safe id>"`` in the raw bytes, so
    that e.g. NaN from one model's pipeline is still attributed to that model."""
    if type(event) is dict:
        model_id = event.get("model_id")
        return model_id if type(model_id) is str and _is_safe_id(model_id) else None
    if event is None and raw:
        match = _RAW_MODEL_ID.search(raw)
        return match.group(1).decode("ascii") if match is not None else None
    return None


def _json_type(value: Any) -> str:
    """JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


_JSON_TYPE_NAMES = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array", dict: "an object"}


def _names(names: Any) -> str:
    """A short, bounded rendering of attacker-controlled field names for messages."""
    shown = sorted(names)[:5]
    return ", ".join(repr(name[:64]) for name in shown)
