"""docs/redis.md documents exactly the keys the mirror writes."""

from __future__ import annotations

import dataclasses
import re

import pytest

from detectors.performance import PerformanceConfig, PerformanceMonitor
from stream.mirror import KEYS, key_table_markdown
from stream.settings import PROJECT_ROOT
from tests.mirror.conftest import MODEL_ID, VERSION, drift_story
from tests.mirror.scenario import reference

DOC = PROJECT_ROOT / "docs" / "redis.md"
REGENERATE = "python -c \"from stream.mirror import key_table_markdown; print(key_table_markdown(), end='')\""


def test_the_documented_key_table_is_the_one_of_the_code():
    text = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `driftline:([^`]+)`", text, flags=re.MULTILINE))
    assert documented == {spec.pattern for spec in KEYS}, f"docs/redis.md and stream.mirror.KEYS differ; regenerate the table with {REGENERATE}"
    assert key_table_markdown() in text, f"the key table of docs/redis.md is stale; regenerate it with {REGENERATE}"


@pytest.mark.integration
def test_every_key_written_matches_a_documented_pattern_and_every_pattern_is_written(mirror, prefix):
    evaluator, story = drift_story()
    for evaluation in story:
        mirror.evaluation(evaluation, evaluator.config.policy)
        mirror.alerts(evaluation.alerts)
    mirror.evaluation(dataclasses.replace(story[-1], change_points=["x"]))
    mirror.reference(reference(MODEL_ID, VERSION))
    mirror.detector_states(MODEL_ID, VERSION, {"region": "eu"}, {"adwin:x": {"width": 3}})
    mirror.heartbeat("evaluate", "host-1.42", {"lag": {"driftline.partials[0]": 0}})
    outcome = {"model_id": MODEL_ID, "model_version": VERSION, "segment": {}, "prediction": 1, "label": 1, "prediction_time": 0.0, "label_time": 1.0}
    [performance] = PerformanceMonitor(MODEL_ID, PerformanceConfig(window_labels=2)).update([outcome, outcome])
    mirror.performance(performance)

    patterns = {spec.pattern: re.compile(re.escape(f"{prefix}:") + re.sub(r"\\\{\w+\\\}", "[^:]+", re.escape(spec.pattern)) + "$") for spec in KEYS}
    written = sorted(key.decode() for key in mirror.client.scan_iter(f"{prefix}:*"))
    matches = {key: [p for p, regex in patterns.items() if regex.match(key)] for key in written}
    assert all(len(found) == 1 for found in matches.values()), matches
    assert {found[0] for found in matches.values()} == set(patterns)
