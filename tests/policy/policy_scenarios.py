"""Helpers to drive the alert policy with scripted sequences of evaluation windows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from detectors.policy import AlertPolicy, PolicyConfig, TestResult, WindowKey

T0 = 1_764_000_000.0  # 2025-11-24T16:00:00Z
STEP = 300.0  # evaluation windows of 5 minutes
KEY = WindowKey("fraud", "3", {"region": "eu"})


def drift(value: float, feature: str = "age", p_value: float | None = 1e-6, **fields: Any) -> TestResult:
    """A PSI data-drift result (default threshold 0.2) for ``feature``."""
    fields.setdefault("sample_size", 5000)
    fields.setdefault("reference_size", 100_000)
    fields.setdefault("reference_id", "profiles/fraud/3.json")
    fields.setdefault("reference_description", "training data 2025-10")
    return TestResult("data_drift", feature, "psi", value, p_value=p_value, **fields)


class Feed:
    """Feeds consecutive evaluation windows of one key to a policy."""

    def __init__(self, policy: AlertPolicy | PolicyConfig | None = None, key: WindowKey = KEY, start: float = T0) -> None:
        self.policy = policy if isinstance(policy, AlertPolicy) else AlertPolicy(policy)
        self.key = key
        self.start = start

    def __call__(self, *results: TestResult) -> list[dict[str, Any]]:
        events = self.policy.evaluate(self.key, self.start, self.start + STEP, list(results))
        self.start += STEP
        return events

    def run(self, windows: Iterable[Sequence[TestResult]]) -> list[list[dict[str, Any]]]:
        return [self(*results) for results in windows]


