"""Checkpointing: restoring the policy state mid-sequence must not change what it publishes."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.policy import AlertPolicy, PolicyConfig, TestResult, WindowKey
from tests.policy.policy_scenarios import STEP, T0, drift

KEYS = [WindowKey("fraud", "3", {"region": "eu"}), WindowKey("fraud", "3", {"region": "us"}), WindowKey("churn", "1")]
CONFIG = PolicyConfig(cooldown_seconds=2 * STEP, incident_window_seconds=3 * STEP)

# Values around the PSI threshold (0.2) and its resolve threshold (0.16), p-values either side of alpha.
values = st.sampled_from([0.02, 0.15, 0.17, 0.25, 0.6])
p_values = st.sampled_from([None, 1e-9, 1e-3, 0.2])
window = st.tuples(values, p_values, values, st.booleans())
evaluation = st.tuples(st.integers(0, len(KEYS) - 1), window)


def results(w: tuple[float, float | None, float, bool]) -> list[TestResult]:
    age, p, rate, has_rate = w
    out = [drift(age, p_value=p), drift(age * 0.9, "income", p_value=p)]
    if has_rate:
        out.append(TestResult("data_quality", "income", "null_rate", rate / 4, threshold=0.05, sample_size=800))
    return out


def replay(policy: AlertPolicy, evaluations: list, starts: dict[WindowKey, float]) -> list[list[dict]]:
    published = []
    for key_index, w in evaluations:
        key = KEYS[key_index]
        start = starts.get(key, T0)
        published.append(policy.evaluate(key, start, start + STEP, results(w)))
        starts[key] = start + STEP
    return published


@settings(max_examples=150, deadline=None)
@given(st.lists(evaluation, min_size=1, max_size=40), st.data())
def test_restoring_a_checkpoint_gives_the_same_events_as_running_through(evaluations, data) -> None:
    cut = data.draw(st.integers(0, len(evaluations)))
    straight = AlertPolicy(CONFIG)
    expected = replay(straight, evaluations, {})

    first = AlertPolicy(CONFIG)
    starts: dict[WindowKey, float] = {}
    published = replay(first, evaluations[:cut], starts)
    restored = AlertPolicy.from_bytes(first.to_bytes(), CONFIG)
    assert restored.open_alerts == first.open_alerts
    published += replay(restored, evaluations[cut:], starts)

    assert published == expected
    assert restored.to_bytes() == straight.to_bytes()


def test_a_scripted_lifecycle_survives_a_checkpoint_while_firing() -> None:
    sequence = [(0, (0.6, 1e-9, 0.02, False))] * 3 + [(1, (0.6, 1e-9, 0.3, True))] * 2 + [(0, (0.02, 1e-9, 0.02, True))] * 4
    expected = replay(AlertPolicy(CONFIG), sequence, {})
    assert sum(map(len, expected)) >= 4  # firing and resolving on both sides of the cut

    policy, starts = AlertPolicy(CONFIG), {}
    published = replay(policy, sequence[:4], starts)
    assert policy.open_alerts
    published += replay(AlertPolicy.from_bytes(policy.to_bytes(), CONFIG), sequence[4:], starts)
    assert published == expected


def test_state_is_json() -> None:
    policy = AlertPolicy()
    policy.evaluate(KEYS[0], T0, T0 + STEP, [drift(0.6)])
    state = orjson.loads(policy.to_bytes())
    assert state["format"] == 1 and len(state["conditions"]) == 1


def test_idle_conditions_are_not_kept() -> None:
    policy = AlertPolicy()
    policy.evaluate(KEYS[0], T0, T0 + STEP, [drift(0.01, f"f{i}") for i in range(100)])
    assert orjson.loads(policy.to_bytes())["conditions"] == []


def test_an_unknown_state_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="format"):
        AlertPolicy.from_bytes(orjson.dumps({"format": 99}))
