"""Decoder behaviour beyond the schema: normalization, state, limits, robustness."""

import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.decode import Decoder, EventKind, Limits
from stream.reasons import Reason
from tests.contract.contract_helpers import NOW, VALIDATORS, clock, dumps, inference, label


def decode_one(decoder: Decoder, event: object) -> tuple[list, list]:
    batch = decoder.decode([dumps(event)], "in", 0, [0])
    return batch.events, batch.rejects


@pytest.mark.parametrize(
    ("timestamp", "seconds"),
    [
        (NOW - 10, NOW - 10),
        (int(NOW), NOW),
        (int((NOW - 10) * 1000), NOW - 10),
        (99_999_999_999, 99_999_999_999.0),  # just below 1e11: still seconds
        ("2026-11-18T11:06:40Z", NOW),
        ("2026-11-18 13:06:40.5+02:00", NOW + 0.5),
    ],
)
def test_accepted_events_have_float_epoch_seconds(timestamp: object, seconds: float) -> None:
    decoder = Decoder(limits=Limits(max_future_seconds=math.inf), clock=clock)
    [event], rejects = decode_one(decoder, inference(timestamp=timestamp))
    assert rejects == []
    assert type(event["timestamp"]) is float and event["timestamp"] == pytest.approx(seconds, abs=1e-6)
    assert event["features"] == inference()["features"]


def test_label_before_its_prediction_is_accepted() -> None:
    """The join waits for the prediction; arriving first is not bad input."""
    labels = Decoder(EventKind.LABEL, clock=clock)
    events, rejects = decode_one(labels, label(prediction_id="not-yet-predicted", model_id=...))
    assert rejects == [] and events[0]["prediction_id"] == "not-yet-predicted"


def test_duplicates_within_and_across_batches() -> None:
    decoder = Decoder(clock=clock)
    first = decoder.decode([dumps(inference(prediction_id="a")), dumps(inference(prediction_id="a"))], "in", 0, [0, 1])
    second = decoder.decode([dumps(inference(prediction_id="a"))], "in", 0, [2])
    assert len(first.events) == 1
    assert [reject.reason for reject in first.rejects + second.rejects] == [Reason.DUPLICATE_PREDICTION_ID] * 2


def test_duplicate_window_counts_records_by_offset() -> None:
    """With duplicate_window=3, an id at offset o makes the same id a duplicate up to o+3 only."""
    decoder = Decoder(limits=Limits(duplicate_window=3), clock=clock)

    def verdict(prediction_id: str, offset: int) -> Reason | None:
        batch = decoder.decode([dumps(inference(prediction_id=prediction_id))], "in", 0, [offset])
        return batch.rejects[0].reason if batch.rejects else None

    assert verdict("a", 10) is None
    assert verdict("a", 13) is Reason.DUPLICATE_PREDICTION_ID  # and a new occurrence at 13
    assert verdict("a", 16) is Reason.DUPLICATE_PREDICTION_ID
    assert verdict("a", 20) is None
    assert decoder.replay_start(100) == 97 and decoder.replay_start(2) == 0


@settings(max_examples=300, deadline=None, database=None)
@given(
    records=st.lists(
        st.tuples(st.sampled_from("ab"), st.sampled_from([1.0, 1.0, 1.0, -1.0]), st.integers(1, 3)), max_size=30
    ),
    window=st.integers(1, 5),
    cut=st.integers(0, 30),
)
def test_restart_rebuilds_the_duplicate_memory_exactly(records: list, window: int, cut: int) -> None:
    """Re-decoding from replay_start(cut) gives the same verdicts after the cut as never stopping.

    Records: (id, latency (negative: schema reject), offset gap)."""
    values, offsets, offset = [], [], 0
    for prediction_id, latency, gap in records:
        offset += gap
        values.append(dumps(inference(prediction_id=prediction_id, latency_ms=latency)))
        offsets.append(offset)
    cut %= len(values) + 1
    limits = Limits(duplicate_window=window)

    def verdicts(batch) -> list:
        rejected = {reject.offset: reject.reason for reject in batch.rejects}
        return [rejected.get(offset) for offset in offsets[cut:]]

    never_stopped = Decoder(limits=limits, clock=clock)
    never_stopped.decode(values[:cut], "in", 0, offsets[:cut])
    expected = verdicts(never_stopped.decode(values[cut:], "in", 0, offsets[cut:]))

    restarted = Decoder(limits=limits, clock=clock)
    committed = offsets[cut] if cut < len(offsets) else offset + 1
    start = restarted.replay_start(committed)
    replayed = [i for i in range(cut) if offsets[i] >= start]
    restarted.decode([values[i] for i in replayed], "in", 0, [offsets[i] for i in replayed])
    assert verdicts(restarted.decode(values[cut:], "in", 0, offsets[cut:])) == expected


def test_rejected_event_does_not_block_its_corrected_resend() -> None:
    decoder = Decoder(clock=clock)
    assert decode_one(decoder, inference(latency_ms=-1))[1][0].reason is Reason.NEGATIVE_LATENCY_MS
    assert decode_one(decoder, inference())[1] == []


def test_checks_after_the_schema_run_in_order_duplicate_time_model() -> None:
    """An event that passes the schema is remembered before the clock and the registry judge it, so
    its resend is a duplicate even when the first one was too old or of an unknown model."""
    limits = Limits(known_models=frozenset({"known"}), unknown_model_policy="deadletter")
    decoder = Decoder(limits=limits, clock=clock)
    events = [
        inference(prediction_id="old", model_id="new", timestamp=NOW - 400 * 86_400),
        inference(prediction_id="old", model_id="new", timestamp=NOW + 2 * 86_400),
        inference(prediction_id="late", model_id="new", timestamp=NOW + 2 * 86_400),
        inference(prediction_id="new-model", model_id="new"),
        inference(prediction_id="new-model", model_id="known"),
        inference(prediction_id="fine", model_id="known"),
    ]
    batch = decoder.decode([dumps(event) for event in events], "in", 0, list(range(len(events))))
    assert [(reject.offset, reject.reason) for reject in batch.rejects] == [
        (0, Reason.TIMESTAMP_TOO_OLD),
        (1, Reason.DUPLICATE_PREDICTION_ID),
        (2, Reason.TIMESTAMP_IN_FUTURE),
        (3, Reason.UNKNOWN_MODEL),
        (4, Reason.DUPLICATE_PREDICTION_ID),
    ]
    assert [event["prediction_id"] for event in batch.events] == ["fine"]


def test_register_policy_registers_models_up_to_the_cap() -> None:
    decoder = Decoder(limits=Limits(known_models=frozenset({"known"}), max_models=2), clock=clock)
    assert decode_one(decoder, inference(prediction_id="1", model_id="new"))[1] == []
    assert decoder.models == {"known", "new"}
    assert decode_one(decoder, inference(prediction_id="2", model_id="other"))[1][0].reason is Reason.MODEL_LIMIT_REACHED
    assert decode_one(decoder, inference(prediction_id="3", model_id="new"))[1] == []


def test_deadletter_policy_accepts_known_models_only() -> None:
    limits = Limits(known_models=frozenset({"known"}), unknown_model_policy="deadletter")
    decoder = Decoder(limits=limits, clock=clock)
    assert decode_one(decoder, inference(prediction_id="1", model_id="known"))[1] == []
    assert decode_one(decoder, inference(prediction_id="2", model_id="new"))[1][0].reason is Reason.UNKNOWN_MODEL
    assert decoder.models == {"known"}


def test_labels_never_register_models() -> None:
    decoder = Decoder(EventKind.LABEL, Limits(max_models=0), clock=clock)
    assert decode_one(decoder, label(model_id="anything"))[1] == []
    assert decoder.models == set()


def test_replay_of_old_events_with_unbounded_past() -> None:
    old = inference(timestamp="2019-03-01T00:00:00Z")
    assert decode_one(Decoder(clock=clock), old)[1][0].reason is Reason.TIMESTAMP_TOO_OLD
    assert decode_one(Decoder(limits=Limits(max_past_seconds=math.inf), clock=clock), old)[1] == []


def test_time_limits_are_inclusive_at_the_edge() -> None:
    limits = Limits(max_future_seconds=60, max_past_seconds=60)
    for timestamp in (NOW + 60, NOW - 60):
        assert decode_one(Decoder(limits=limits, clock=clock), inference(timestamp=timestamp))[1] == []
    for timestamp in (NOW + 60.5, NOW - 60.5):
        assert decode_one(Decoder(limits=limits, clock=clock), inference(timestamp=timestamp))[1] != []


def test_metadata_depth_limit_is_configurable() -> None:
    deep = inference(metadata={"m": [[[[[1]]]]]})
    assert decode_one(Decoder(clock=clock), deep)[1][0].reason is Reason.NESTING_TOO_DEEP
    assert decode_one(Decoder(limits=Limits(max_depth=5), clock=clock), deep)[1] == []


def test_error_events_may_omit_the_prediction() -> None:
    event = inference(status="error", error="feature store timeout", prediction=None)
    assert decode_one(Decoder(clock=clock), event)[1] == []


def test_reject_carries_position_time_and_readable_model_id() -> None:
    batch = Decoder(clock=clock).decode([dumps(inference()).replace(b"12.5", b"NaN")], "driftline.inference", 7, [99])
    [reject] = batch.rejects
    record = reject.deadletter_record()
    assert record["source"] == {"topic": "driftline.inference", "partition": 7, "offset": 99}
    assert record["model_id"] == "fraud-detector"
    assert record["rejected_at"] == "2026-11-18T11:06:40.000000Z"
    assert batch.counts == {(Reason.NAN_LITERAL, "fraud-detector"): 1}


def test_offsets_must_match_values() -> None:
    with pytest.raises(ValueError):
        Decoder().decode([b"{}"], "in", 0, [])


ROBUSTNESS = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def mutated(base: dict) -> st.SearchStrategy[bytes]:
    """``base`` with some fields replaced by arbitrary JSON, serialized."""
    changes = st.dictionaries(st.sampled_from(sorted({*base, "x"})), json_values, min_size=1, max_size=4)
    return changes.map(lambda change: dumps({**base, **change}))


@pytest.mark.parametrize("kind", list(EventKind))
@ROBUSTNESS
@given(values=st.lists(st.one_of(st.binary(max_size=64), json_values.map(dumps), mutated(inference()), mutated(label())), max_size=8))
def test_decoding_never_raises_and_accounts_for_every_value(kind: EventKind, values: list[bytes]) -> None:
    batch = Decoder(kind, clock=clock).decode(values, "in", 0, range(len(values)))
    assert len(batch.events) + len(batch.rejects) == len(values)
    for reject in batch.rejects:
        VALIDATORS["deadletter"].validate(reject.deadletter_record())


@settings(max_examples=300, deadline=None, database=None)
@given(
    ids=st.lists(st.sampled_from("abc"), min_size=1, max_size=40),
    gaps=st.lists(st.integers(1, 4), min_size=40, max_size=40),
    window=st.integers(1, 6),
    batch=st.integers(1, 40),
)
def test_duplicate_verdicts_do_not_depend_on_batch_boundaries(ids, gaps, window, batch) -> None:
    """The memory drops expired occurrences once per batch; a verdict must not see the difference."""
    offsets = list(itertools.accumulate(gaps[: len(ids)]))
    values = [dumps(inference(prediction_id=prediction_id)) for prediction_id in ids]

    def verdicts(size: int) -> list:
        decoder = Decoder(limits=Limits(duplicate_window=window), clock=clock)
        rejected = {}
        for start in range(0, len(values), size):
            decoded = decoder.decode(values[start : start + size], "in", 0, offsets[start : start + size])
            rejected.update({reject.offset: reject.message for reject in decoded.rejects})
        return [rejected.get(offset) for offset in offsets]

    one_by_one = verdicts(1)
    assert verdicts(batch) == one_by_one
    # by the definition: a duplicate iff the same id was accepted 1..window offsets before
    last_seen: dict[str, int] = {}
    for prediction_id, offset, verdict in zip(ids, offsets, one_by_one):
        previous = last_seen.get(prediction_id)
        assert (verdict is not None) == (previous is not None and offset - previous <= window)
        last_seen[prediction_id] = offset
