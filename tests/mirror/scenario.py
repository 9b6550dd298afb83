"""Real evaluations for the mirror tests: a model whose feature ``x`` shifts, fires an alert, then recovers."""

from __future__ import annotations

import numpy as np

from detectors.columns import Columns
from detectors.evaluator import Evaluation, ModelEvaluator
from detectors.monitor import MonitorConfig
from detectors.policy import WindowKey
from detectors.profile import ReferenceBuilder, ReferenceProfile

WINDOW_SECONDS = 60.0
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def reference(model_id: str, version: str) -> ReferenceProfile:
    rng = np.random.default_rng(0)
    builder = ReferenceBuilder()
    builder.add([{"x": float(v), "city": ["Oslo", "Rome", "Pisa"][i % 3]} for i, v in enumerate(rng.normal(size=5000))])
    return builder.build(model_id, version, source="train.csv", created_at=START - 86_400)


def evaluations(key: WindowKey, shifts: list[float]) -> tuple[ModelEvaluator, list[Evaluation]]:
    """The evaluations of consecutive base windows of ``key``, window ``i`` with ``x`` shifted by ``shifts[i]``."""
    evaluator = ModelEvaluator(
        MonitorConfig.from_mapping({"model_id": key.model_id, "reference": "train.csv"}),
        reference(key.model_id, key.model_version),
    )
    rng = np.random.default_rng(1)
    produced = []
    for index, shift in enumerate(shifts):
        profile = evaluator.new_profile()
        events = [
            {"timestamp": START, "model_version": key.model_version, "features": {"x": float(v), "city": "Oslo"}}
            for v in rng.normal(shift, size=3000)
        ]
        profile.update(Columns.from_events(events, ["x"], ["city"]))
        evaluation = evaluator.close_window(key, START + WINDOW_SECONDS * index, START + WINDOW_SECONDS * (index + 1), profile)
        if evaluation is not None:
            produced.append(evaluation)
    return evaluator, produced
