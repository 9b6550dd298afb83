"""Where driftline finds its broker, its Redis and its run folder.

Every setting has one environment variable; command-line flags override them. The
defaults start a local stack on 127.0.0.1 under ``<project>/.run``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(Exception):
    """A setting is wrong; the message names the setting and the fix."""


def env_int(name: str, default: int, low: int = 1, high: int = 65535) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not a whole number; set it to a value such as {default}") from None
    if not low <= value <= high:
        raise ConfigError(f"environment variable {name}={value} is out of range; use {low}-{high}")
    return value


@dataclass(frozen=True)
class StackSettings:
    """The local stack: ports, run folder, and the external services to use instead, if any.

    ``kafka_bootstrap``/``redis_url`` point at services driftline did not start
    (``DRIFTLINE_KAFKA``/``DRIFTLINE_REDIS``); when unset, the local stack's are used.
    """

    run_dir: Path = field(default_factory=lambda: Path(os.environ.get("DRIFTLINE_RUN_DIR") or PROJECT_ROOT / ".run"))
    jars_dir: Path = field(default_factory=lambda: Path(os.environ.get("DRIFTLINE_JARS_DIR") or PROJECT_ROOT / ".run" / "jars"))
    kafka_port: int = field(default_factory=lambda: env_int("DRIFTLINE_KAFKA_PORT", 9092))
    controller_port: int = field(default_factory=lambda: env_int("DRIFTLINE_CONTROLLER_PORT", 9093))
    redis_port: int = field(default_factory=lambda: env_int("DRIFTLINE_REDIS_PORT", 6379))
    kafka_heap: str = field(default_factory=lambda: os.environ.get("DRIFTLINE_KAFKA_HEAP", "512m"))
    external_kafka: str | None = field(default_factory=lambda: os.environ.get("DRIFTLINE_KAFKA") or None)
    external_redis: str | None = field(default_factory=lambda: os.environ.get("DRIFTLINE_REDIS") or None)

    def __post_init__(self) -> None:
        ports = {"kafka_port": self.kafka_port, "controller_port": self.controller_port, "redis_port": self.redis_port}
        if len(set(ports.values())) != len(ports):
            raise ConfigError(f"ports must differ, got {ports}; set DRIFTLINE_KAFKA_PORT, DRIFTLINE_CONTROLLER_PORT and DRIFTLINE_REDIS_PORT apart")

    @property
    def kafka_bootstrap(self) -> str:
        return self.external_kafka or f"127.0.0.1:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        return self.external_redis or f"redis://127.0.0.1:{self.redis_port}/0"

    def with_overrides(self, **overrides: object) -> "StackSettings":
        return replace(self, **{key: value for key, value in overrides.items() if value is not None})


@dataclass(frozen=True)
class TopicSettings:
    """Names, partition counts and retention of the driftline topics.

    Inference and labels share one partition count: the label join is co-partitioned
    on prediction_id (DESIGN.md section 5).
    """

    prefix: str = field(default_factory=lambda: os.environ.get("DRIFTLINE_TOPIC_PREFIX", "driftline"))
    event_partitions: int = field(default_factory=lambda: env_int("DRIFTLINE_EVENT_PARTITIONS", 4, high=1024))
    model_partitions: int = field(default_factory=lambda: env_int("DRIFTLINE_MODEL_PARTITIONS", 2, high=1024))
    replication_factor: int = 1

    def __post_init__(self) -> None:
        if not self.prefix or any(ch not in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-" for ch in self.prefix):
            raise ConfigError(f"topic prefix {self.prefix!r} must be non-empty and use only letters, digits, '.', '_' and '-' (DRIFTLINE_TOPIC_PREFIX or --prefix)")

    def name(self, role: str) -> str:
        return f"{self.prefix}.{role}"


@dataclass(frozen=True)
class MetricsSettings:
    """Where the workers serve Prometheus metrics, and the caps on per-feature series (stream/metrics.py).

    ``port`` 0 serves none. Under one supervisor, worker ``k`` (ingest slots, then evaluate slots)
    listens on ``port + k``. ``host`` 0.0.0.0 lets other containers scrape (docker-compose.yml).
    """

    port: int = field(default_factory=lambda: env_int("DRIFTLINE_METRICS_PORT", 9400, low=0))
    host: str = field(default_factory=lambda: os.environ.get("DRIFTLINE_METRICS_HOST") or "127.0.0.1")
    max_features: int = field(default_factory=lambda: env_int("DRIFTLINE_METRICS_MAX_FEATURES", 20, high=10_000))
    max_model_versions: int = field(default_factory=lambda: env_int("DRIFTLINE_METRICS_MAX_MODEL_VERSIONS", 50, high=100_000))
