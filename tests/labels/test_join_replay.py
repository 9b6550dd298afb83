"""``driftline replay --labels``: the same join as streaming, with label delays from the timestamps."""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from detectors.monitor import MonitorConfig
from detectors.profile import ReferenceBuilder
from stream.cli import app
from stream.decode import Decoder, EventKind, Limits
from stream.replay import Replay
from tests.labels.test_join_store import Scenario

runner = CliRunner()
MODEL = "model-a"
TTL = {MODEL: 300.0}


def write_model(folder: Path, ttl_seconds: int) -> tuple[Path, MonitorConfig]:
    builder = ReferenceBuilder(numeric=["x"])
    builder.add([{"x": float(i % 100)} for i in range(1_000)])
    (folder / "model.profile").write_bytes(builder.build(MODEL, "v1", source="test_join_replay").to_bytes())
    mapping = {"model_id": MODEL, "reference": "model.profile", "labels": {"ttl_seconds": ttl_seconds}}
    (folder / "monitor.yaml").write_text(yaml.safe_dump(mapping))
    return folder / "monitor.yaml", MonitorConfig.from_mapping(mapping)


def event_line(prediction: dict) -> bytes:
    return orjson.dumps({**prediction, "features": {"x": 1.0}})


def replay(folder: Path, events: list[bytes], labels: list[bytes]) -> str:
    (folder / "events.jsonl").write_bytes(b"".join(line + b"\n" for line in events))
    (folder / "labels.jsonl").write_bytes(b"".join(line + b"\n" for line in labels))
    result = runner.invoke(
        app, ["replay", "--config", str(folder / "monitor.yaml"), "--events", str(folder / "events.jsonl"), "--labels", str(folder / "labels.jsonl")]
    )
    assert result.exit_code == 0, result.output
    return result.output


def row(output: str, label: str) -> int:
    """The count in the summary table's row ``label``."""
    match = re.search(rf"{re.escape(label)}[\s│]+([\d,]+)", output)
    assert match is not None, output
    return int(match.group(1).replace(",", ""))


def counter(output: str, name: str) -> int:
    return row(output, f"labels: {name} ")


def test_labels_meet_predictions_in_timestamp_order_not_file_order(tmp_path):
    write_model(tmp_path, ttl_seconds=100)
    prediction = {"model_id": MODEL, "model_version": "v1", "prediction": 0.7}
    events = [event_line({**prediction, "prediction_id": "p1", "timestamp": 1_700_000_000}),
              event_line({**prediction, "prediction_id": "p2", "timestamp": 1_700_000_500})]  # fmt: skip
    labels = [orjson.dumps({"prediction_id": "p1", "label": 1, "timestamp": 1_700_000_010}),
              orjson.dumps({"prediction_id": "z", "label": 0, "timestamp": 1_700_000_020})]  # fmt: skip
    # Events first, then labels, would orphan p1's label (the predictions' clock is at p2 by then);
    # merged by time, p1's label comes 10 s after p1 and joins.
    output = replay(tmp_path, events, labels)
    assert (counter(output, "joined"), counter(output, "orphan"), counter(output, "expired")) == (1, 1, 0)
    assert counter(output, "waiting_predictions") == 1
    assert "labels read" in output


def test_replay_of_a_shuffled_delayed_label_file_gives_the_join_rules_counts(tmp_path):
    scenario = Scenario.generate(6_000, seed=21, ttl=TTL, start=1_700_000_000.0)
    write_model(tmp_path, ttl_seconds=int(TTL[MODEL]))
    label_lines = [orjson.dumps(label) for label in scenario.labels]
    output = replay(tmp_path, [event_line(p) for p in scenario.predictions], label_lines)
    accepted = Decoder(EventKind.LABEL, Limits(max_past_seconds=math.inf)).decode(label_lines, "labels", 0, range(len(label_lines)))
    [want] = [counts for model, counts in scenario.expected_counts(labels=accepted.events).items() if model == MODEL]
    for name in ("joined", "expired", "duplicate"):
        assert counter(output, name) == want[name], name
    assert counter(output, "orphan") == sum(c["orphan"] for c in scenario.expected_counts(labels=accepted.events).values())
    assert row(output, "reject: duplicate_prediction_id") == len(accepted.rejects) > 0


def test_replay_without_labels_keeps_no_join():
    config = MonitorConfig.from_mapping({"model_id": MODEL, "reference": "unused"})
    builder = ReferenceBuilder(numeric=["x"])
    builder.add([{"x": 1.0}, {"x": 2.0}])
    engine = Replay(config, builder.build(MODEL, "v1", source="test"))
    assert engine.join is None
    with pytest.raises(ValueError, match="labels=True"):
        engine.feed_labels([b'{"prediction_id": "a", "label": 1, "timestamp": 1}'])


def test_outcomes_reach_the_performance_monitor_in_replay():
    scenario = Scenario.generate(3_000, seed=4, ttl=TTL, start=1_700_000_000.0, duplicated=0.0)
    config = MonitorConfig.from_mapping({"model_id": MODEL, "reference": "unused", "task": "classification", "labels": {"ttl_seconds": 300}})
    builder = ReferenceBuilder(numeric=["x"])
    builder.add([{"x": 1.0}, {"x": 2.0}])
    engine = Replay(config, builder.build(MODEL, "v1", source="test"), Limits(max_past_seconds=math.inf), labels=True)
    for _, side, index in scenario.arrival:
        if side == 0:
            engine.feed([event_line(scenario.predictions[index])])
        else:
            engine.feed_labels([orjson.dumps(scenario.labels[index])])
    joined = Counter(engine.join.totals())["joined"]
    assert joined == scenario.expected_counts()[MODEL]["joined"] > 0
    assert engine.summary.outcomes == joined
