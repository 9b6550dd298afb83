"""The ingest-side handler of the join (``LabelJoin``) and running it beside the window aggregation
(``HandlerChain``), without a broker: what a batch publishes, checkpoints and restores from."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import orjson
import pytest

from detectors.monitor import MonitorConfig
from stream.ingest import ForwardingHandler, HandlerChain
from stream.join import ENTRY_OVERHEAD_BYTES, LabelJoin
from stream.models import MonitoredModel
from stream.settings import TopicSettings
from stream.transaction import Output

TOPICS = TopicSettings(prefix="t", event_partitions=2, model_partitions=2)


def model(model_id: str, **config) -> MonitoredModel:
    """The part of a ``MonitoredModel`` the join reads: its monitor config."""
    return SimpleNamespace(config=MonitorConfig.from_mapping({"model_id": model_id, "reference": "unused", **config}))  # type: ignore[return-value]


MODELS = {"m": model("m", task="classification", labels={"ttl_seconds": 100})}


def prediction(prediction_id: str, time: float) -> dict:
    return {"prediction_id": prediction_id, "model_id": "m", "model_version": "v", "timestamp": time, "prediction": 0.4}


def label(prediction_id: str, time: float) -> dict:
    return {"prediction_id": prediction_id, "label": 1, "timestamp": time}


def apply(changelog: dict[bytes, bytes], outputs: list[Output]) -> None:
    for output in outputs:
        if output.topic == "t.join-changelog":
            assert output.partition == 1
            if output.value is None:
                changelog.pop(output.key, None)
            else:
                changelog[output.key] = output.value


def test_a_batch_publishes_outcomes_by_model_and_changelog_records_to_its_partition():
    changelog: dict[bytes, bytes] = {}
    join = LabelJoin(MODELS, TOPICS, lambda partition: changelog, max_bytes=1 << 20)
    join.assign("t.inference", 1, None)
    join.assign("t.labels", 1, None)
    outputs = join.handle("t.inference", 1, [prediction("a", 10.0), prediction("b", 11.0)])
    apply(changelog, outputs)
    assert sorted(changelog) == [b"a", b"b"]
    outputs = join.handle("t.labels", 1, [label("a", 20.0), label("x", 21.0)])
    apply(changelog, outputs)
    [outcome] = [o for o in outputs if o.topic == "t.outcomes"]
    assert outcome.key == b"m" and orjson.loads(outcome.value)["prediction_id"] == "a"
    checkpoints = join.checkpoints()
    assert list(checkpoints) == [("t.labels", 1)] and join.checkpoints() == {}

    # A worker taking the partition over gets the same store back from checkpoint + changelog.
    successor = LabelJoin(MODELS, TOPICS, lambda partition: changelog, max_bytes=1 << 20)
    successor.assign("t.labels", 1, checkpoints[("t.labels", 1)])
    successor.assign("t.inference", 1, None)
    assert successor.report()["join"] == join.report()["join"] == {"m": {"joined": 1}}
    apply(changelog, successor.handle("t.labels", 1, [label("b", 30.0), label("a", 31.0)]))
    assert successor.report()["join"] == {"m": {"joined": 2, "duplicate": 1}}
    assert successor.report()["join_bytes"] == sum(len(k) + len(v) for k, v in changelog.items()) + ENTRY_OVERHEAD_BYTES * len(changelog)


def test_the_budget_is_split_over_the_event_partitions():
    join = LabelJoin(MODELS, TOPICS, lambda partition: {}, max_bytes=1 << 20)
    assert join.partition_bytes == 1 << 19


def test_inference_without_its_labels_partition_is_an_error():
    join = LabelJoin(MODELS, TOPICS, lambda partition: {}, max_bytes=1 << 20)
    join.assign("t.inference", 0, None)
    with pytest.raises(RuntimeError, match=r"t.labels\[0\].*range assignor"):
        join.handle("t.inference", 0, [prediction("a", 1.0)])


def test_the_chain_hands_every_event_to_every_handler_and_keeps_checkpoints_apart():
    seen: Counter = Counter()

    def forward(topic, partition, events):
        seen[topic] += len(events)
        return [Output("t.out", None, b"x")]

    join = LabelJoin(MODELS, TOPICS, lambda partition: {}, max_bytes=1 << 20)
    chain = HandlerChain(ForwardingHandler(forward), join)
    assert chain.stateful
    chain.assign("t.labels", 0, None)
    outputs = chain.handle("t.inference", 0, [prediction("a", 1.0)])
    outputs += chain.handle("t.labels", 0, [label("a", 2.0)])
    assert seen == Counter({"t.inference": 1, "t.labels": 1})
    assert sum(o.topic == "t.out" for o in outputs) == 2 and sum(o.topic == "t.outcomes" for o in outputs) == 1
    assert list(chain.checkpoints()) == [("t.labels", 0)]
    chain.revoke("t.labels", 0)
    assert join.report()["join"] == {}


def test_the_chain_refuses_two_handlers_checkpointing_one_partition():
    first = LabelJoin(MODELS, TOPICS, lambda partition: {}, max_bytes=1 << 20)
    second = LabelJoin(MODELS, TOPICS, lambda partition: {}, max_bytes=1 << 20)
    chain = HandlerChain(first, second)
    chain.assign("t.labels", 0, None)
    chain.handle("t.labels", 0, [label("a", 2.0)])
    with pytest.raises(RuntimeError, match="same input partitions"):
        chain.checkpoints()


def test_models_without_a_task_are_not_joined():
    join = LabelJoin({"u": model("u")}, TOPICS, lambda partition: {}, max_bytes=1 << 20)
    join.assign("t.labels", 0, None)
    assert join.handle("t.inference", 0, [{**prediction("a", 1.0), "model_id": "u"}]) == []
    assert join.handle("t.labels", 0, [label("a", 2.0)]) == []
    assert join.checkpoints() == {}
