"""A model's monitor config (``schemas/monitor.schema.json``) as a validated dataclass.

``MonitorConfig.from_mapping`` validates a parsed YAML mapping against the schema and turns the
first problems into one message each naming the file, the key path and the fix::

    monitor.yaml: windows.base_seconds: -1 is less than the minimum of 1; use a positive number of seconds

The YAML keys of the policy section keep the schema's names and map onto ``PolicyConfig`` here:
``policy.persistence.{m,n}`` → ``persistence_m/n``, ``policy.hysteresis`` → ``resolve_ratio``,
``policy.incident_gap_seconds`` → ``incident_window_seconds``, ``thresholds.{alpha,correction}`` →
``alpha``/``correction``, the drift thresholds → ``PolicyConfig.thresholds``, ``severities`` →
``severity_rules``. Absent keys take ``PolicyConfig``'s defaults, which the schema documents.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import jsonschema

import schemas
from detectors.performance import PerformanceConfig
from detectors.policy import PolicyConfig, SeverityRule
from detectors.windows import WindowConfig

PRIMARY_STATISTICS = ("js", "psi", "hellinger")
DEFAULT_REPORTED = MappingProxyType(
    {"numeric": ("js", "psi", "hellinger", "ks", "wasserstein"), "categorical": ("js", "psi", "hellinger", "chi2")}
)
DEFAULT_QUALITY_THRESHOLDS = MappingProxyType(
    {
        "null_rate": 0.05,
        "out_of_range_rate": 0.01,
        "sentinel_rate": 0.05,
        "unseen_rate": 0.05,
        "type_error_rate": 0.01,
        "missing_rate": 0.05,
        "error_rate": 0.05,
        "latency_p99_ratio": 2.0,
        "confident_rate": 0.1,
        "reject_rate": 0.02,
    }
)
"""Data-quality thresholds: increases of a rate over the reference's rate (latency: a p99 multiple;
confident_rate: a change either way; reject_rate: the window's share itself, the reference has no rejects)."""

DEFAULT_LABEL_TTL_SECONDS = 7 * 86400  # the labels topic's retention: an older label cannot arrive anyway
_DRIFT_THRESHOLDS = ("psi", "js", "hellinger", "ks", "wasserstein")
_VALIDATOR = jsonschema.Draft202012Validator(schemas.load("monitor"))

# Fixes for keys whose generic hint would be vague.
_FIXES = {
    "windows.base_seconds": "use a positive number of seconds",
    "windows.evaluate_windows": "use the number of base windows to merge, e.g. 5",
    "windows.allowed_lateness_seconds": "use a number of seconds >= 0",
    "model_id": "use letters, digits, '.', '_' and '-', starting with a letter or digit",
    "reference": "give the path of a profile built with `driftline profile build`",
    "prediction.bounds": "write the score's valid range as [low, high], e.g. [0, 1]",
}


class MonitorConfigError(ValueError):
    """A monitor config is invalid; the message names the file, the key path and the fix."""


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """Overrides for one feature; ``None`` means "as in the reference profile"."""

    type: str | None = None
    range: tuple[float, float] | None = None
    sentinels: tuple[Any, ...] = ()
    bins: int | None = None
    monitor: bool = True


@dataclasses.dataclass(frozen=True)
class MonitorConfig:
    """How one model is monitored.

    Examples
    --------
    >>> config = MonitorConfig.from_mapping({"model_id": "churn", "reference": "churn.profile"})
    >>> config.windows.base_seconds, config.primary, config.policy.persistence_m, config.policy.alpha
    (60, 'js', 2, 0.01)
    >>> MonitorConfig.from_mapping({"model_id": "churn", "reference": "p", "windows": {"base_seconds": -1}})
    Traceback (most recent call last):
    ...
    detectors.monitor.MonitorConfigError: monitor.yaml: windows.base_seconds: -1 is less than the minimum of 1; use a positive number of seconds
    """

    model_id: str
    reference: str
    source: str = "monitor.yaml"
    task: str | None = None
    features: Mapping[str, FeatureConfig] = dataclasses.field(default_factory=dict)
    windows: WindowConfig = WindowConfig()
    primary: str = "js"
    reported: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=lambda: dict(DEFAULT_REPORTED))
    quality_thresholds: Mapping[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_QUALITY_THRESHOLDS))
    latency_p99_ms: float | None = None
    policy: PolicyConfig = PolicyConfig()
    owners: tuple[str, ...] = ()
    routing: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    segments: tuple[tuple[str, int], ...] = ()
    """(tag, max distinct values) per segment tag."""
    score_bounds: tuple[float, float] | None = None
    """``prediction.bounds``: the valid range of the score (``None``: not checked)."""
    confident_above: float | None = None
    """``prediction.confident_above`` (``None``: the evaluator's default, see ``ModelEvaluator``)."""
    label_ttl_seconds: int = DEFAULT_LABEL_TTL_SECONDS
    """How long the label join keeps a prediction waiting for its label (``labels.ttl_seconds``)."""
    performance: PerformanceConfig | None = None
    """Performance monitoring from labels (``task``, ``performance``); ``None`` without a task."""

    @classmethod
    def from_mapping(cls, mapping: Any, source: str = "monitor.yaml") -> MonitorConfig:
        problems = sorted(_VALIDATOR.iter_errors(mapping), key=lambda error: (list(map(str, error.absolute_path)), error.validator))
        if problems:
            raise MonitorConfigError("\n".join(_describe(source, error) for error in problems[:5]))
        features = {}
        for name, spec in mapping.get("features", {}).items():
            value_range = spec.get("range")
            if value_range is not None and not value_range[0] <= value_range[1]:
                raise MonitorConfigError(
                    f"{source}: features.{name}.range: low {value_range[0]} is above high {value_range[1]}; write [low, high]"
                )
            features[name] = FeatureConfig(
                type=spec.get("type"),
                range=None if value_range is None else (float(value_range[0]), float(value_range[1])),
                sentinels=tuple(spec.get("sentinels", ())),
                bins=spec.get("bins"),
                monitor=spec.get("monitor", True),
            )
        prediction = mapping.get("prediction", {})
        bounds = prediction.get("bounds")
        if bounds is not None and not bounds[0] < bounds[1]:
            raise MonitorConfigError(
                f"{source}: prediction.bounds: low {bounds[0]} is not below high {bounds[1]}; write [low, high], e.g. [0, 1]"
            )
        windows = mapping.get("windows", {})
        tests = mapping.get("tests", {})
        thresholds = mapping.get("thresholds", {})
        policy = mapping.get("policy", {})
        persistence = policy.get("persistence", {})
        defaults = PolicyConfig()
        if persistence and persistence["m"] > persistence["n"]:
            raise MonitorConfigError(
                f"{source}: policy.persistence: m={persistence['m']} is more than n={persistence['n']}; "
                "use m <= n (fire when m of the last n evaluations breach)"
            )
        if "performance" in mapping and mapping.get("task") is None:
            raise MonitorConfigError(
                f"{source}: performance: has no effect without a task; add task: classification (or regression), or remove it"
            )
        return cls(
            model_id=mapping["model_id"],
            reference=mapping["reference"],
            source=source,
            task=mapping.get("task"),
            features=features,
            windows=WindowConfig(**windows),
            primary=tests.get("primary", "js"),
            reported={kind: tuple(tests.get(kind, DEFAULT_REPORTED[kind])) for kind in DEFAULT_REPORTED},
            quality_thresholds={
                **DEFAULT_QUALITY_THRESHOLDS,
                **{k: v for k, v in thresholds.items() if k in DEFAULT_QUALITY_THRESHOLDS},
            },
            latency_p99_ms=thresholds.get("latency_p99_ms"),
            policy=PolicyConfig(
                alpha=thresholds.get("alpha", defaults.alpha),
                correction=thresholds.get("correction", defaults.correction),
                thresholds={k: thresholds[k] for k in _DRIFT_THRESHOLDS if k in thresholds},
                persistence_m=persistence.get("m", defaults.persistence_m),
                persistence_n=persistence.get("n", defaults.persistence_n),
                resolve_ratio=policy.get("hysteresis", defaults.resolve_ratio),
                resolve_after=policy.get("resolve_after", defaults.resolve_after),
                cooldown_seconds=policy.get("cooldown_seconds", defaults.cooldown_seconds),
                incident_window_seconds=policy.get("incident_gap_seconds", defaults.incident_window_seconds),
                severity_rules=(
                    tuple(SeverityRule.from_mapping(rule) for rule in mapping["severities"])
                    if "severities" in mapping
                    else defaults.severity_rules
                ),
            ),
            owners=tuple(mapping.get("owners", ())),
            routing=mapping.get("routing", {}),
            segments=tuple((segment["tag"], segment.get("max_values", 20)) for segment in mapping.get("segments", ())),
            score_bounds=None if bounds is None else (float(bounds[0]), float(bounds[1])),
            confident_above=prediction.get("confident_above"),
            label_ttl_seconds=mapping.get("labels", {}).get("ttl_seconds", DEFAULT_LABEL_TTL_SECONDS),
            performance=PerformanceConfig.from_mapping(mapping),
        )

    def feature(self, name: str) -> FeatureConfig:
        return self.features.get(name, FeatureConfig())

    def quality_threshold(self, statistic: str) -> float:
        return self.quality_thresholds[statistic]


def _key_path(path: Sequence[Any]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".") or "(top level)"


def _describe(source: str, error: jsonschema.ValidationError) -> str:
    path = _key_path(error.absolute_path)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    validator = error.validator
    if validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, Mapping) else []
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, allowed, n=1)
            hints.append(f"did you mean {close[0]!r}?" if close else "remove it")
        where = path if path != "(top level)" else "top level"
        if allowed:
            return f"{source}: {where}: unknown key {', '.join(map(repr, unknown))}; {' '.join(hints)} (allowed: {', '.join(allowed)})"
        return f"{source}: {where}: unknown key {', '.join(map(repr, unknown))}; {' '.join(hints)}"
    if validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        full = f"{path}.{missing}" if path != "(top level)" else missing
        fix = _FIXES.get(full, "add it")
        return f"{source}: {full}: required key is missing; {fix}"
    fix = _FIXES.get(_key_path([p for p in error.absolute_path if not isinstance(p, int)])) or _generic_fix(error, schema)
    message = f"{error.instance!r} has characters that are not allowed" if validator == "pattern" else error.message
    return f"{source}: {path}: {message}; {fix}"


def _generic_fix(error: jsonschema.ValidationError, schema: Mapping[str, Any]) -> str:
    validator, value = error.validator, error.validator_value
    if validator == "enum":
        return f"use one of {', '.join(map(str, value))}"
    if validator == "const":
        return f"use {value!r} or leave the key out"
    if validator == "type":
        return f"use a value of type {value if isinstance(value, str) else ' or '.join(value)}"
    if validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", -math.inf))
        high = schema.get("maximum", schema.get("exclusiveMaximum", math.inf))
        return f"use a value between {low} and {high}"
    if validator in ("minItems", "maxItems", "prefixItems"):
        return "write a list such as [low, high]" if "prefixItems" in schema else f"use {validator} {value}"
    if validator in ("pattern", "minLength", "maxLength"):
        return "use 1-128 letters, digits, '.', '_' and '-', starting with a letter or digit"
    if validator == "uniqueItems":
        return "remove the duplicates"
    return "see schemas/monitor.schema.json"
