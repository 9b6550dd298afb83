"""Stable reason codes for rejected (dead-lettered) input.

The string values are a public contract: they appear in dead-letter records, counters, metrics and
dashboards. Add new codes freely; never rename or reuse one. ``python -m stream.reasons`` prints the
Markdown table embedded in docs/contract.md (a test keeps the two identical).
"""

from enum import StrEnum


class Reason(StrEnum):
    """Why an inference or label event was rejected. Each member carries a one-line ``description``."""

    description: str

    def __new__(cls, value: str, description: str) -> "Reason":
        member = str.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member

    # Payload and JSON syntax (checked on the raw bytes).
    EMPTY_PAYLOAD = "empty_payload", "No bytes, a tombstone (null value) or only whitespace."
    PAYLOAD_TOO_LARGE = "payload_too_large", "Raw value larger than `max_payload_bytes` (default 64 KiB)."
    NOT_UTF8 = "not_utf8", "Bytes are not valid UTF-8."
    INVALID_UNICODE_ESCAPE = "invalid_unicode_escape", "A `\\u` escape encodes a lone UTF-16 surrogate."
    JSON_TRUNCATED = "json_truncated", "JSON ends before the document is complete."
    JSON_MALFORMED = "json_malformed", "Any other JSON syntax error (including trailing data after the document)."
    NAN_LITERAL = "nan_literal", "`NaN`, `Infinity` or `-Infinity` literal: not JSON (Python's json.dumps emits them)."
    NON_FINITE_NUMBER = "non_finite_number", "A number too large for a double (e.g. `1e400`)."
    NESTING_TOO_DEEP = "nesting_too_deep", "Arrays/objects nested deeper than the parser allows, or `metadata` deeper than `max_depth`."
    NOT_OBJECT = "not_object", "The document is valid JSON but not an object."
    # Envelope.
    UNKNOWN_FIELD = "unknown_field", "A top-level field the schema does not define (typo or newer producer)."
    UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version", "`schema_version` present but not a supported version."
    # prediction_id.
    MISSING_PREDICTION_ID = "missing_prediction_id", "`prediction_id` absent."
    WRONG_TYPE_PREDICTION_ID = "wrong_type_prediction_id", "`prediction_id` is not a string."
    EMPTY_PREDICTION_ID = "empty_prediction_id", "`prediction_id` is the empty string."
    PREDICTION_ID_TOO_LONG = "prediction_id_too_long", "`prediction_id` longer than 128 characters."
    # model_id.
    MISSING_MODEL_ID = "missing_model_id", "`model_id` absent (inference events)."
    WRONG_TYPE_MODEL_ID = "wrong_type_model_id", "`model_id` is not a string."
    EMPTY_MODEL_ID = "empty_model_id", "`model_id` is the empty string."
    INVALID_MODEL_ID = "invalid_model_id", "`model_id` is not a safe id (characters or length)."
    # model_version.
    MISSING_MODEL_VERSION = "missing_model_version", "`model_version` absent."
    WRONG_TYPE_MODEL_VERSION = "wrong_type_model_version", "`model_version` is not a string."
    EMPTY_MODEL_VERSION = "empty_model_version", "`model_version` is the empty string."
    INVALID_MODEL_VERSION = "invalid_model_version", "`model_version` is not a safe id (characters or length)."
    # timestamp.
    MISSING_TIMESTAMP = "missing_timestamp", "`timestamp` absent."
    WRONG_TYPE_TIMESTAMP = "wrong_type_timestamp", "`timestamp` is neither a string nor a number."
    TIMESTAMP_UNPARSEABLE = "timestamp_unparseable", "`timestamp` string is not RFC 3339 with a time zone, or not a real date."
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range", "`timestamp` number negative or >= 1e14 (microseconds or nanoseconds?)."
    TIMESTAMP_IN_FUTURE = "timestamp_in_future", "`timestamp` more than `max_future_seconds` ahead of the decoder's clock."
    TIMESTAMP_TOO_OLD = "timestamp_too_old", "`timestamp` more than `max_past_seconds` behind the decoder's clock."
    # features.
    MISSING_FEATURES = "missing_features", "`features` absent."
    WRONG_TYPE_FEATURES = "wrong_type_features", "`features` is not an object."
    TOO_MANY_FEATURES = "too_many_features", "More than `max_features` features (default 500)."
    EMPTY_FEATURE_NAME = "empty_feature_name", "A feature name is the empty string."
    FEATURE_NAME_TOO_LONG = "feature_name_too_long", "A feature name longer than `max_name_length` (default 128)."
    INVALID_FEATURE_NAME = "invalid_feature_name", "A feature name contains a control character."
    WRONG_TYPE_FEATURE_VALUE = "wrong_type_feature_value", "A feature value is an array or object (must be number, string, bool or null)."
    FEATURE_VALUE_TOO_LONG = "feature_value_too_long", "A string feature value longer than 1024 characters."
    # prediction.
    MISSING_PREDICTION = "missing_prediction", "`prediction` absent while `status` is not `error`."
    WRONG_TYPE_PREDICTION = "wrong_type_prediction", "`prediction` is an array, or null while `status` is not `error`."
    INVALID_PREDICTION = "invalid_prediction", "`prediction` string too long, or prediction object of the wrong shape."
    PROBABILITY_OUT_OF_RANGE = "probability_out_of_range", "A value in `prediction.probabilities` outside [0, 1]."
    # Optional inference fields.
    WRONG_TYPE_LATENCY_MS = "wrong_type_latency_ms", "`latency_ms` is not a number."
    NEGATIVE_LATENCY_MS = "negative_latency_ms", "`latency_ms` below zero."
    INVALID_STATUS = "invalid_status", "`status` is not `ok` or `error`."
    INVALID_ERROR = "invalid_error", "`error` is not a string, or longer than 1024 characters."
    WRONG_TYPE_SEGMENT = "wrong_type_segment", "`segment` is not an object."
    TOO_MANY_SEGMENT_TAGS = "too_many_segment_tags", "More than 8 segment tags."
    INVALID_SEGMENT_TAG = "invalid_segment_tag", "A segment tag name is not a safe id of at most 64 characters, or its value is not a string of at most 128 characters without control characters."
    WRONG_TYPE_METADATA = "wrong_type_metadata", "`metadata` is not an object."
    TOO_MANY_METADATA_FIELDS = "too_many_metadata_fields", "More than 32 metadata fields."
    INVALID_METADATA_NAME = "invalid_metadata_name", "A metadata name is empty, longer than `max_name_length` or contains a control character."
    # label events.
    MISSING_LABEL = "missing_label", "`label` absent."
    WRONG_TYPE_LABEL = "wrong_type_label", "`label` is null, an array or an object."
    LABEL_TOO_LONG = "label_too_long", "A string `label` longer than 256 characters."
    # Checks against decoder state.
    UNKNOWN_MODEL = "unknown_model", "`model_id` not in `known_models` and the unknown-model policy is `deadletter`."
    MODEL_LIMIT_REACHED = "model_limit_reached", "Policy `register`, but `max_models` models are already registered."
    DUPLICATE_PREDICTION_ID = "duplicate_prediction_id", "The same `prediction_id` passed the schema checks within the last `duplicate_window` records of the partition."
    # Incident service (stream/incidents): records of the alerts and incident-command topics.
    INVALID_ALERT = "invalid_alert", "An alerts-topic record that is JSON but not valid against schemas/alert.schema.json."
    UNKNOWN_COMMAND = "unknown_command", "An incident-command record of a type the incident service does not know."
    HANDLER_FAILED = "handler_failed", "The incident service failed while handling a valid record (a bug: the record is kept for replay after the fix)."


INCIDENT_SERVICE_REASONS = frozenset({Reason.INVALID_ALERT, Reason.UNKNOWN_COMMAND, Reason.HANDLER_FAILED})
"""Codes only the incident service gives; the decoder gives every other one."""


def markdown_table() -> str:
    """The reason-code table of docs/contract.md, one row per code in declaration order."""
    rows = ["| code | meaning |", "| --- | --- |"]
    rows += [f"| `{reason}` | {reason.description} |" for reason in Reason]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
