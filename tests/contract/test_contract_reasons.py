"""Every reason code has at least one concrete raw input that produces exactly that code."""

import base64

import pytest

from stream.decode import Decoder, EventKind
from stream.reasons import INCIDENT_SERVICE_REASONS, Reason
from tests.contract.contract_helpers import NOW, VALIDATORS, clock, dumps, inference, label
from tests.contract.reason_cases import Case, reason_cases

CASES = reason_cases(NOW)


def _case_id(case: Case) -> str:
    return f"{case.kind}-{case.reason}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_raw_input_gets_its_reason_code(case: Case) -> None:
    decoder = Decoder(case.kind, case.limits, clock=clock)
    if case.before:
        earlier = decoder.decode(list(case.before), "in", 0, range(len(case.before)))
        assert earlier.rejects == []
    batch = decoder.decode([case.raw], "driftline.in", 4, [1234])

    assert batch.events == []
    [reject] = batch.rejects
    assert reject.reason is case.reason, reject.message
    assert reject.message
    record = reject.deadletter_record()
    VALIDATORS["deadletter"].validate(record)
    assert base64.b64decode(record["original"]) == (case.raw or b"")
    assert record["source"] == {"topic": "driftline.in", "partition": 4, "offset": 1234}
    assert record["kind"] == str(case.kind)


def test_every_decoder_reason_code_has_a_case() -> None:
    assert {case.reason for case in CASES} == set(Reason) - INCIDENT_SERVICE_REASONS


def test_the_baseline_events_of_the_table_are_accepted() -> None:
    """Each case differs from an accepted event in one respect only."""
    for kind, event in ((EventKind.INFERENCE, inference()), (EventKind.LABEL, label())):
        batch = Decoder(kind, clock=clock).decode([dumps(event)], "in", 0, [0])
        assert batch.rejects == [] and len(batch.events) == 1
        VALIDATORS[str(kind)].validate(event)


def test_counts_are_per_reason_and_readable_model_id() -> None:
    values = [
        dumps(inference(prediction_id="a", latency_ms=-1)),
        dumps(inference(prediction_id="b", latency_ms=-2)),
        dumps(inference(prediction_id="c", model_id="churn", latency_ms=-3)),
        dumps(inference(prediction_id="d", model_id="not safe!", latency_ms=-4)),
        b"{",
        dumps(inference(prediction_id="e")),
    ]
    batch = Decoder(clock=clock).decode(values, "in", 0, range(len(values)))
    assert len(batch.events) == 1
    assert batch.counts == {
        (Reason.NEGATIVE_LATENCY_MS, "fraud-detector"): 2,
        (Reason.NEGATIVE_LATENCY_MS, "churn"): 1,
        (Reason.INVALID_MODEL_ID, None): 1,
        (Reason.JSON_TRUNCATED, None): 1,
    }
    assert [reject.offset for reject in batch.rejects] == [0, 1, 2, 3, 4]
