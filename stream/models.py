"""The monitored models of a deployment: monitor configs and their reference profiles, loaded once.

Ingest and evaluate both build each model's ``ProfileLayout`` from the same config and reference, so
the partials one side writes are the profiles the other side merges.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path

from detectors.evaluator import ModelEvaluator
from detectors.monitor import MonitorConfig
from detectors.performance import PerformanceMonitor
from detectors.profile import ProfileLayout, ReferenceProfile
from stream.config import load_monitor_config, load_reference
from stream.settings import ConfigError

CONFIG_ENV = "DRIFTLINE_CONFIG"


@dataclasses.dataclass(frozen=True)
class MonitoredModel:
    config: MonitorConfig
    reference: ReferenceProfile
    layout: ProfileLayout

    @property
    def model_id(self) -> str:
        return self.config.model_id

    def new_evaluator(self) -> ModelEvaluator:
        return ModelEvaluator(self.config, self.reference)

    def restore_evaluator(self, data: bytes) -> ModelEvaluator:
        return ModelEvaluator.from_bytes(data, self.config, self.reference)

    def new_performance(self) -> PerformanceMonitor | None:
        """The model's performance monitor; ``None`` when its config sets no ``task``."""
        performance = self.config.performance
        return None if performance is None else PerformanceMonitor(self.model_id, performance, self.config.policy)

    def restore_performance(self, data: bytes) -> PerformanceMonitor | None:
        performance = self.config.performance
        return None if performance is None else PerformanceMonitor.from_bytes(data, self.model_id, performance, self.config.policy)


def load_models(paths: Iterable[Path]) -> dict[str, MonitoredModel]:
    """Load every monitor config and its reference; one config per model."""
    models: dict[str, MonitoredModel] = {}
    for path in paths:
        config = load_monitor_config(path)
        if config.model_id in models:
            raise ConfigError(
                f"{path}: model {config.model_id!r} is already configured by {models[config.model_id].config.source}; "
                "give each model one monitor config"
            )
        reference = load_reference(config)
        models[config.model_id] = MonitoredModel(config, reference, ModelEvaluator(config, reference).layout)
    return models


def config_paths(options: list[Path]) -> list[Path]:
    """The ``--config`` paths, else the comma-separated paths of ``DRIFTLINE_CONFIG``."""
    if options:
        return options
    paths = [Path(part.strip()) for part in os.environ.get(CONFIG_ENV, "").split(",") if part.strip()]
    if not paths:
        raise ConfigError(
            "no monitor config: pass --config monitor.yaml (repeatable) or set DRIFTLINE_CONFIG to comma-separated config paths"
        )
    return paths
