"""Malformed input of a model raises a schema alert on its reject rate (issue 4, bench_quality's
``malformed`` scenario), and the rejects' windows do not depend on how the input is batched."""

import math
from datetime import datetime

import pytest

from detectors.evaluator import ModelEvaluator
from detectors.monitor import MonitorConfig
from detectors.profile import WindowProfile
from stream.aggregate import WindowAggregator
from stream.decode import Decoder, EventKind, Limits
from stream.models import MonitoredModel
from stream.partials import WindowPartial, decode_record
from stream.replay import Replay
from stream.settings import TopicSettings
from stream.workload import Malformed, Workload

EVENTS, START = 40_000, 16_000


@pytest.fixture(scope="module")
def workload_and_values():
    workload = Workload(seed=21, model_id="bad-inputs", events_per_second=100.0)
    values = [value for batch_values, _, _ in workload.batches(EVENTS, 5_000, [Malformed(rate=0.05, start=START)]) for value in batch_values]
    return workload, values, workload.reference_profile(20_000)


def replay(workload, values, reference, batch):
    engine = Replay(MonitorConfig.from_mapping({"model_id": workload.model_id, "reference": "r"}), reference, keep_evaluations=True)
    alerts = []
    for start in range(0, len(values), batch):
        alerts += engine.feed(values[start : start + batch])[0]
    return engine, alerts + engine.finish()


def test_malformed_input_alerts_on_the_reject_rate_after_it_starts(workload_and_values) -> None:
    workload, values, reference = workload_and_values
    engine, alerts = replay(workload, values, reference, 1_000)
    firing = [a for a in alerts if a["status"] == "firing"]
    assert {(a["kind"], a["feature"], a["statistic"]["name"]) for a in firing} == {("schema", None, "reject_rate")}
    [alert] = firing
    assert datetime.fromisoformat(alert["window"]["end"]).timestamp() > workload.time_of(START)
    assert alert["statistic"]["value"] > alert["statistic"]["threshold"] == 0.02
    # No rejects before the change (those without a readable timestamp count at the watermark, up to
    # the 30 s allowed lateness earlier); after it, about 4% of the input (5%, less those without a
    # readable model id).
    rates = [(e.end, e.statistics["(model)"]["reject_rate"]) for e in engine.evaluations]
    assert all(rate == 0 for end, rate in rates if end <= workload.time_of(START) - 30)
    assert 0.03 < rates[-1][1] < 0.05


def test_reject_counts_per_window_do_not_depend_on_batching(workload_and_values) -> None:
    workload, values, reference = workload_and_values
    by_batch = {}
    for batch in (777, 5_000):
        engine, alerts = replay(workload, values, reference, batch)
        rates = [(e.start, e.event_count, e.statistics["(model)"]["reject_rate"]) for e in engine.evaluations]
        by_batch[batch] = (rates, [a["alert_id"] for a in alerts])
    assert by_batch[777] == by_batch[5_000]


def test_ingest_aggregation_puts_rejects_in_the_windows_replay_does(workload_and_values) -> None:
    """One partition's ingest handler (fed decoded batches as ``IngestWorker`` feeds it) and a replay
    of that partition's records close the same base windows with the same event and reject counts."""
    workload, values, reference = workload_and_values
    config = MonitorConfig.from_mapping({"model_id": workload.model_id, "reference": "r"})
    topics = TopicSettings(prefix="unit", event_partitions=1)
    inference = topics.name("inference")
    model = MonitoredModel(config, reference, ModelEvaluator(config, reference).layout)
    aggregator = WindowAggregator({workload.model_id: model}, topics, idle_seconds=1e9, clock=lambda: 0.0)
    aggregator.assign(inference, 0, None)
    decoder = Decoder(EventKind.INFERENCE, Limits(max_past_seconds=math.inf, max_future_seconds=math.inf))
    streamed, unattributed = [], 0
    for start in range(0, len(values), 3_000):
        chunk = values[start : start + 3_000]
        decoded = decoder.decode(chunk, inference, 0, range(start, start + len(chunk)))
        placed = [(reject.offset - start - rank, reject) for rank, reject in enumerate(decoded.rejects)]
        unattributed += sum(reject.model_id is None for reject in decoded.rejects)
        for output in aggregator.handle(inference, 0, decoded.events, placed):
            record = decode_record(output.value)
            if isinstance(record, WindowPartial) and not record.key.segment:
                profile = WindowProfile.from_bytes(record.profile)
                streamed.append((record.start, profile.event_count, profile.reject_count))

    engine = Replay(config, reference)
    replayed = []
    close_window = engine.evaluator.close_window

    def recording(key, start, end, profile):
        replayed.append((start, profile.event_count, profile.reject_count))
        return close_window(key, start, end, profile)

    engine.evaluator.close_window = recording
    for start in range(0, len(values), 1_000):
        engine.feed(values[start : start + 1_000])
    assert streamed == replayed and sum(rejects for _, _, rejects in streamed) > 0
    assert aggregator.unattributed_rejects[0] == unattributed > 0
