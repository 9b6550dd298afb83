"""Alert policy: turns per-window test results into deduplicated, severity-ranked alert events.

The evaluate stage runs many tests per closed evaluation window of a model (one per feature and
statistic). Raw test verdicts are too noisy to page anyone: large samples make negligible shifts
significant, small samples make large shifts meaningless, many features make chance findings certain,
and a value sitting on its threshold flaps. The policy therefore fires an alert for a *condition*
(model, version, segment, kind, feature, statistic) only when

1. the effect size is large enough (``value >= threshold``) **and** the p-value is significant after
   correcting for the number of tests in the evaluation (Benjamini–Hochberg or Bonferroni) — results
   without a p-value, such as null rates, are judged by effect size alone;
2. that happened in ``persistence_m`` of the last ``persistence_n`` evaluations of the condition, the
   current one included;
3. the condition is not cooling down from a recent resolution (``cooldown_seconds`` of event time).

A firing condition resolves only once its value stays below ``threshold * resolve_ratio`` for
``resolve_after`` consecutive evaluations (hysteresis), so a value hovering around the threshold
does not flap. Alerts of one model that start firing close in time share an incident.

Everything is a function of the inputs: time comes in as window bounds (event time), and alert and
incident ids are hashes of what identifies them, so replaying the same evaluations — in streaming, in
``driftline replay``, or after restoring a checkpoint with :meth:`AlertPolicy.from_bytes` — yields
the same events.

Conventions
-----------
- ``value`` is oriented so that larger is worse: the evaluate stage reports a drop in accuracy as a
  positive degradation, not as the accuracy itself.
- Time is event time in epoch seconds. The *now* of an evaluation is its ``window_end``; cooldowns
  and incident windows are measured on it.
- An evaluation whose ``window_end`` is not after the last one seen for its :class:`WindowKey` is a
  duplicate or stale delivery and is ignored.
- A condition is only updated by evaluations that contain a result for it; a missing result is no
  evidence either way.

Severity
--------
Rules only escalate: a firing alert is P2 unless a rule matches, and the most severe matching rule
wins. Severity is decided when an alert starts firing and kept until it resolves.
:data:`DEFAULT_SEVERITY_RULES`:

========  ===============================================  ==========================
severity  kinds                                            value / threshold
========  ===============================================  ==========================
P0        performance, error_rate                          >= 2
P1        performance, error_rate, concept_drift, schema   >= 1
P1        any                                              >= 2
P2        any other violation
========  ===============================================  ==========================

Suggested action
----------------
See :func:`suggested_action`: data_quality, schema and label_lag → ``fix_pipeline``; data_drift and
prediction_drift → ``investigate``; concept_drift → ``retrain``; performance → ``retrain``
(``rollback`` at P0); error_rate and latency → ``investigate`` (``rollback`` at P0).

References
----------
Benjamini, Y. and Hochberg, Y. (1995). Controlling the false discovery rate: a practical and powerful
approach to multiple testing. Journal of the Royal Statistical Society, Series B, 57(1), 289–300.

"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson

from detectors.multiple_testing import CORRECTIONS

__all__ = [
    "DEFAULT_SEVERITY_RULES",
    "DEFAULT_THRESHOLDS",
    "KINDS",
    "MAX_RELATED_ALERTS",
    "SCHEMA_VERSION",
    "AlertPolicy",
    "PolicyConfig",
    "SeverityRule",
    "TestResult",
    "WindowKey",
    "suggested_action",
]

SCHEMA_VERSION = "1.0"
"""Version of the alert event schema the events are shaped for."""

KINDS = frozenset(
    {
        "data_quality",
        "data_drift",
        "prediction_drift",
        "concept_drift",
        "performance",
        "latency",
        "error_rate",
        "label_lag",
        "schema",
    }
)
"""Alert kinds of the alert event schema."""

SEVERITIES = ("P0", "P1", "P2")
"""Severities, most severe first."""

DEFAULT_THRESHOLDS: Mapping[str, float] = MappingProxyType(
    {"psi": 0.2, "js": 0.1, "ks": 0.1, "wasserstein": 0.1, "hellinger": 0.1}
)
"""Effect-size thresholds by statistic (Wasserstein on the reference-normalized scale)."""

MAX_RELATED_ALERTS = 100
"""Most ids an event lists in ``related_alert_ids`` (the alert schema's limit); the first ones kept."""

_STATE_FORMAT = 1


def _check_keys(cls: type, mapping: Mapping[str, Any]) -> None:
    unknown = sorted(set(mapping) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {', '.join(map(repr, unknown))}")


@dataclasses.dataclass(frozen=True)
class TestResult:
    """One test of one evaluation window, as produced by the evaluate stage.

    Parameters
    ----------
    kind
        Alert kind, one of :data:`KINDS`.
    feature
        Feature (or output) tested; ``None`` for model-level checks such as latency.
    statistic
        Name of the statistic, e.g. ``"psi"``; selects the default threshold.
    value
        Effect size, oriented so that larger is worse.
    threshold
        Effect-size threshold for this test (e.g. from the model's monitor config); ``None`` uses
        the policy's threshold for ``statistic``.
    p_value
        Raw p-value of the test; ``None`` for checks judged by effect size alone (rates, counts).
    sample_size
        Number of observations in the evaluation window.
    reference_size
        Number of observations in the reference, if any.
    reference_id, reference_description
        What the window was compared with: a reference profile, the previous window, or — the
        default, for checks against a fixed limit — the thresholds of the monitor config.

    """

    __test__ = False  # not a pytest test class despite its name

    kind: str
    feature: str | None
    statistic: str
    value: float
    threshold: float | None = None
    p_value: float | None = None
    sample_size: int = 0
    reference_size: int | None = None
    reference_id: str = "monitor-config"
    reference_description: str = "fixed thresholds of the monitor config"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown alert kind {self.kind!r}")
        if not math.isfinite(self.value):
            raise ValueError(f"{self._name()}: value must be finite, got {self.value}")
        if self.threshold is not None and not (math.isfinite(self.threshold) and self.threshold > 0):
            raise ValueError(f"{self._name()}: threshold must be positive, got {self.threshold}")
        if self.p_value is not None and not 0.0 <= self.p_value <= 1.0:
            raise ValueError(f"{self._name()}: p-value must lie in [0, 1], got {self.p_value}")
        if self.sample_size < 0 or (self.reference_size is not None and self.reference_size < 0):
            raise ValueError(f"{self._name()}: sample sizes must be non-negative")
        if not self.reference_id:
            raise ValueError(f"{self._name()}: reference_id must not be empty")

    def _name(self) -> str:
        return f"{self.kind}/{self.feature}/{self.statistic}"


@dataclasses.dataclass(frozen=True)
class WindowKey:
    """What an evaluation window belongs to: a model version, optionally a segment of its traffic.

    ``segment`` may be given as a mapping of tags; it is stored as sorted ``(tag, value)`` pairs so
    that equal segments compare, hash and hash into alert ids equally.

    >>> WindowKey("fraud", "3", {"region": "eu", "channel": "web"}).segment
    (('channel', 'web'), ('region', 'eu'))

    """

    model_id: str
    model_version: str
    segment: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "segment", tuple(sorted(dict(self.segment).items())))


@dataclasses.dataclass(frozen=True)
class SeverityRule:
    """Raises a firing alert to ``severity`` when the alert matches every criterion given.

    Parameters
    ----------
    severity
        ``"P0"``, ``"P1"`` or ``"P2"``.
    kinds
        Kinds the rule applies to; empty means any kind.
    features
        Features the rule applies to; empty means any feature.
    statistics
        Statistics the rule applies to; empty means any statistic.
    min_ratio
        Least ``value / threshold`` for the rule to apply.

    >>> rule = SeverityRule("P1", min_ratio=2.0)
    >>> rule.matches(TestResult("data_drift", "age", "psi", 0.45), threshold=0.2)
    True

    """

    severity: str
    kinds: frozenset[str] = frozenset()
    features: frozenset[str] = frozenset()
    statistics: frozenset[str] = frozenset()
    min_ratio: float = 1.0

    def __post_init__(self) -> None:
        for name in ("kinds", "features", "statistics"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")
        if not self.kinds <= KINDS:
            raise ValueError(f"unknown alert kinds in severity rule: {sorted(self.kinds - KINDS)}")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> SeverityRule:
        """Builds a rule from a configuration mapping, naming any unknown key."""
        _check_keys(cls, mapping)
        return cls(**mapping)

    def matches(self, result: TestResult, threshold: float) -> bool:
        """Whether the rule applies to ``result`` judged against ``threshold``."""
        return (
            (not self.kinds or result.kind in self.kinds)
            and (not self.features or result.feature in self.features)
            and (not self.statistics or result.statistic in self.statistics)
            and result.value >= self.min_ratio * threshold
        )


DEFAULT_SEVERITY_RULES: tuple[SeverityRule, ...] = (
    SeverityRule("P0", kinds=frozenset({"performance", "error_rate"}), min_ratio=2.0),
    SeverityRule("P1", kinds=frozenset({"performance", "error_rate", "concept_drift", "schema"})),
    SeverityRule("P1", min_ratio=2.0),
)
"""Default escalation rules; a firing alert that matches none is P2."""

_ACTIONS = {
    "data_quality": "fix_pipeline",
    "schema": "fix_pipeline",
    "label_lag": "fix_pipeline",
    "data_drift": "investigate",
    "prediction_drift": "investigate",
    "concept_drift": "retrain",
    "performance": "retrain",
    "error_rate": "investigate",
    "latency": "investigate",
}
# A P0 on what the serving model itself does is fastest contained by going back to the last good
# version; the rest of the table applies at every severity.
_P0_ACTIONS = {"performance": "rollback", "error_rate": "rollback", "latency": "rollback"}


def suggested_action(kind: str, severity: str) -> str:
    """The action an alert suggests to whoever receives it.

    >>> suggested_action("performance", "P1"), suggested_action("performance", "P0")
    ('retrain', 'rollback')

    """
    if severity == "P0" and kind in _P0_ACTIONS:
        return _P0_ACTIONS[kind]
    return _ACTIONS[kind]


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    """Settings of the alert policy.

    Parameters
    ----------
    alpha
        Significance level after correcting for the tests of one evaluation.
    correction
        ``"bh"`` (Benjamini–Hochberg, false discovery rate) or ``"bonferroni"`` (family-wise error).
    thresholds
        Effect-size thresholds by statistic, on top of :data:`DEFAULT_THRESHOLDS`. A threshold
        carried by a :class:`TestResult` takes precedence.
    persistence_m, persistence_n
        A condition fires once it is violated in ``persistence_m`` of its last ``persistence_n``
        evaluations.
    resolve_ratio
        A firing condition counts an evaluation as clean when ``value < threshold * resolve_ratio``.
    resolve_after
        Consecutive clean evaluations needed to resolve.
    cooldown_seconds
        Event time after a resolution during which the condition cannot fire again.
    incident_window_seconds
        An alert joins its model's incident if it starts firing while one of the incident's alerts
        is firing or within this long after the incident's latest alert started firing.
    severity_rules
        Escalation rules; the most severe matching rule wins, no match means P2.

    >>> PolicyConfig.from_mapping({"alpha": 0.05, "thresholds": {"psi": 0.25}}).threshold_for(
    ...     TestResult("data_drift", "age", "psi", 0.3))
    0.25
    >>> PolicyConfig.from_mapping({"aplha": 0.05})
    Traceback (most recent call last):
    ...
    ValueError: unknown PolicyConfig keys: 'aplha'

    """

    alpha: float = 0.01
    correction: str = "bh"
    thresholds: Mapping[str, float] = dataclasses.field(default_factory=dict)
    persistence_m: int = 2
    persistence_n: int = 3
    resolve_ratio: float = 0.8
    resolve_after: int = 2
    cooldown_seconds: float = 600.0
    incident_window_seconds: float = 900.0
    severity_rules: tuple[SeverityRule, ...] = DEFAULT_SEVERITY_RULES

    def __post_init__(self) -> None:
        object.__setattr__(self, "thresholds", MappingProxyType(dict(self.thresholds)))
        object.__setattr__(self, "severity_rules", tuple(self.severity_rules))
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha}")
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {sorted(CORRECTIONS)}, got {self.correction!r}")
        bad = {s: t for s, t in self.thresholds.items() if not (math.isfinite(t) and t > 0)}
        if bad:
            raise ValueError(f"thresholds must be positive: {bad}")
        if not 1 <= self.persistence_m <= self.persistence_n:
            raise ValueError("persistence needs 1 <= persistence_m <= persistence_n")
        if not 0.0 < self.resolve_ratio <= 1.0:
            raise ValueError(f"resolve_ratio must lie in (0, 1], got {self.resolve_ratio}")
        if self.resolve_after < 1:
            raise ValueError(f"resolve_after must be at least 1, got {self.resolve_after}")
        if self.cooldown_seconds < 0 or self.incident_window_seconds < 0:
            raise ValueError("cooldown_seconds and incident_window_seconds must be non-negative")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> PolicyConfig:
        """Builds a configuration from a mapping (e.g. parsed YAML), naming any unknown key.

        ``severity_rules`` is given as a list of mappings with the fields of :class:`SeverityRule`.
        """
        _check_keys(cls, mapping)
        settings = dict(mapping)
        if "severity_rules" in settings:
            settings["severity_rules"] = tuple(map(SeverityRule.from_mapping, settings["severity_rules"]))
        return cls(**settings)

    def threshold_for(self, result: TestResult) -> float:
        """The effect-size threshold ``result`` is judged against."""
        if result.threshold is not None:
            return result.threshold
        threshold = self.thresholds.get(result.statistic, DEFAULT_THRESHOLDS.get(result.statistic))
        if threshold is None:
            raise ValueError(f"no threshold for statistic {result.statistic!r}: set it in the config or the result")
        return threshold

    def severity_for(self, result: TestResult, threshold: float) -> str:
        """Severity of an alert firing on ``result``: the most severe matching rule, else P2."""
        matched = [rule.severity for rule in self.severity_rules if rule.matches(result, threshold)]
        return min(matched, key=SEVERITIES.index, default="P2")


ConditionKey = tuple[WindowKey, str, str | None, str]
"""(window key, kind, feature, statistic): what an alert is about."""


@dataclasses.dataclass
class _Condition:
    """Lifecycle state of one condition."""

    history: deque[bool]  # violation verdicts of the latest evaluations, newest last
    clean_streak: int = 0  # consecutive clean evaluations while firing
    quiet_until: float | None = None  # end of the cooldown, in event time
    alert: dict[str, Any] | None = None  # the firing event while the condition fires

    def is_idle(self, now: float) -> bool:
        # An idle condition behaves exactly like one never seen, so it need not be kept.
        return (
            self.alert is None
            and not any(self.history)
            and (self.quiet_until is None or self.quiet_until <= now)
        )


@dataclasses.dataclass
class _Incident:
    """The latest incident of a model."""

    incident_id: str
    alert_ids: list[str]  # members in the order they joined
    firing: list[str]  # members still firing
    last_start: float  # when the latest member started firing

    def accepts(self, now: float, window_seconds: float) -> bool:
        return bool(self.firing) or now - self.last_start <= window_seconds


def _digest(*parts: Any) -> str:
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _number(x: float) -> str:
    if x == 0 or 0.01 <= abs(x) < 1000:
        return f"{x:.2f}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.2g}"


def _p(p: float) -> str:
    if p == 0:
        return "p≈0"
    if p >= 0.001:
        return f"p={p:.2g}"
    mantissa, exponent = f"{p:.0e}".split("e")
    return f"p={mantissa}e{int(exponent)}"


_STATISTIC_LABELS = {
    "psi": "PSI",
    "js": "JS",
    "ks": "KS",
    "wasserstein": "Wasserstein",
    "hellinger": "Hellinger",
    "chi2": "chi-square",
}

# Headline of an alert by kind: (with a feature, without one).
_HEADLINES = {
    "data_quality": ("Feature '{}' failed a data quality check", "Input data failed a data quality check"),
    "data_drift": ("Feature '{}' drifted from reference", "Input data drifted from reference"),
    "prediction_drift": ("Prediction '{}' drifted from reference", "Predictions drifted from reference"),
    "concept_drift": ("Concept drift on '{}'", "Concept drift detected"),
    "performance": ("Performance on '{}' degraded", "Model performance degraded"),
    "latency": ("Latency of '{}' rose", "Latency rose"),
    "error_rate": ("Error rate of '{}' rose", "Error rate rose"),
    "label_lag": ("Labels for '{}' are late", "Labels are arriving late"),
    "schema": ("Feature '{}' broke the schema contract", "Events broke the schema contract"),
}


def _label(result: TestResult) -> str:
    return _STATISTIC_LABELS.get(result.statistic, result.statistic)


def _headline(result: TestResult) -> str:
    with_feature, without = _HEADLINES[result.kind]
    return without if result.feature is None else with_feature.format(result.feature)


@dataclasses.dataclass(frozen=True)
class _Observation:
    """One test result of an evaluation, with what the policy made of it."""

    key: WindowKey
    result: TestResult
    threshold: float
    p_value: float | None  # corrected for the tests of the evaluation
    violated: bool
    window_start: float
    window_end: float
    created_at: float

    def statistic(self) -> dict[str, Any]:
        return {
            "name": self.result.statistic,
            "value": self.result.value,
            "threshold": self.threshold,
            "p_value": self.p_value,
            "sample_size": self.result.sample_size,
            "reference_size": self.result.reference_size,
        }

    def window(self) -> dict[str, str]:
        return {"start": _rfc3339(self.window_start), "end": _rfc3339(self.window_end)}

    def reference(self) -> dict[str, str]:
        return {"id": self.result.reference_id, "description": self.result.reference_description}

    def firing_summary(self, violations: int, evaluations: int) -> str:
        result = self.result
        evidence = [f"n={result.sample_size:,}"]
        if self.p_value is not None:
            evidence.insert(0, _p(self.p_value))
        when = "in the last window" if evaluations == 1 else f"in {violations} of the last {evaluations} windows"
        return (
            f"{_headline(result)}: {_label(result)} {_number(result.value)} ≥ {_number(self.threshold)} "
            f"({', '.join(evidence)}) {when}"
        )

    def resolved_summary(self, ratio: float, clean: int) -> str:
        result = self.result
        return (
            f"Resolved: {_headline(result)}; {_label(result)} {_number(result.value)} "
            f"< {_number(self.threshold * ratio)} ({ratio:g} × threshold {_number(self.threshold)}) "
            f"in each of the last {clean} windows"
        )


class AlertPolicy:
    """Turns the test results of successive evaluation windows into alert lifecycle events.

    Call :meth:`evaluate` once per closed evaluation window of a :class:`WindowKey`; it returns the
    events to publish — alerts that started firing and alerts that resolved — as plain dicts shaped
    for the alert event schema (``schema_version`` :data:`SCHEMA_VERSION`).

    Identifiers are recomputable from the events themselves: ``alert_id`` is the first 32 hex
    digits of the SHA-256 of the compact JSON array ``[model_id, model_version, segment, kind,
    feature, statistic, window_start]`` — segment an object with sorted keys, ``window_start`` the
    RFC 3339 start of the window where the alert started firing — so the firing event and the
    resolved event of one alert share it; ``incident_id`` is the same digest of ``["incident",
    alert_id]`` for the incident's first alert. ``statistic.p_value`` is the p-value corrected for
    the tests of the evaluation, the one compared with ``alpha``.

    Parameters
    ----------
    config
        Policy settings; defaults to :class:`PolicyConfig` ``()``.

    Examples
    --------
    >>> policy = AlertPolicy()
    >>> key = WindowKey("fraud", "3")
    >>> drift = [TestResult("data_drift", "age", "psi", 0.31, p_value=1e-6, sample_size=5000)]
    >>> policy.evaluate(key, 0.0, 300.0, drift)  # a single window is not enough
    []
    >>> [alert] = policy.evaluate(key, 300.0, 600.0, drift)
    >>> alert["status"], alert["severity"], alert["suggested_action"]
    ('firing', 'P2', 'investigate')
    >>> alert["summary"]
    "Feature 'age' drifted from reference: PSI 0.31 ≥ 0.20 (p=1e-6, n=5,000) in 2 of the last 2 windows"
    >>> [a["alert_id"] for a in policy.open_alerts] == [alert["alert_id"]]
    True

    """

    def __init__(self, config: PolicyConfig | None = None) -> None:
        self.config = config if config is not None else PolicyConfig()
        self._last_end: dict[WindowKey, float] = {}
        self._conditions: dict[ConditionKey, _Condition] = {}
        self._incidents: dict[str, _Incident] = {}  # by model_id

    @property
    def open_alerts(self) -> list[dict[str, Any]]:
        """The firing event of every alert still firing, oldest first."""
        alerts = [c.alert for c in self._conditions.values() if c.alert is not None]
        alerts.sort(key=lambda a: (a["window"]["start"], a["alert_id"]))
        return copy.deepcopy(alerts)

    def evaluate(
        self,
        key: WindowKey,
        window_start: float,
        window_end: float,
        results: Iterable[TestResult],
        created_at: float | None = None,
    ) -> list[dict[str, Any]]:
        """Takes the test results of one closed evaluation window; returns the events to publish.

        Results are processed in (kind, feature, statistic) order, so the events do not depend on
        the order of ``results``. An evaluation not after the last one of ``key`` returns nothing.

        ``created_at`` is the processing time stamped on the events: the streaming worker passes its
        clock; it defaults to ``window_end`` so that replays and backtests are reproducible.
        """
        if not window_end > window_start:
            raise ValueError(f"window_end ({window_end}) must be after window_start ({window_start})")
        last_end = self._last_end.get(key)
        if last_end is not None and window_end <= last_end:
            return []
        ordered = sorted(results, key=lambda r: (r.kind, r.feature is not None, r.feature or "", r.statistic))
        condition_keys = [(key, r.kind, r.feature, r.statistic) for r in ordered]
        if len(set(condition_keys)) != len(condition_keys):
            raise ValueError(f"duplicate test results for one condition in the evaluation of {key}")
        self._last_end[key] = window_end

        events = []
        for condition_key, result, p_value in zip(condition_keys, ordered, self._corrected_p_values(ordered)):
            threshold = self.config.threshold_for(result)
            significant = p_value is None or p_value <= self.config.alpha
            observation = _Observation(
                key,
                result,
                threshold,
                p_value,
                significant and result.value >= threshold,
                window_start,
                window_end,
                window_end if created_at is None else created_at,
            )
            condition = self._conditions.get(condition_key) or _Condition(deque(maxlen=self.config.persistence_n))
            event = self._step(condition, observation)
            if event is not None:
                events.append(event)
            if condition.is_idle(window_end):
                self._conditions.pop(condition_key, None)
            else:
                self._conditions[condition_key] = condition

        incident = self._incidents.get(key.model_id)
        if incident is not None and not incident.accepts(window_end, self.config.incident_window_seconds):
            del self._incidents[key.model_id]
        return events

    def _corrected_p_values(self, results: Sequence[TestResult]) -> list[float | None]:
        # The family is every test of the evaluation that has a p-value, whether or not its effect
        # size is large: each of them was a chance to find something by luck.
        tested = [r.p_value for r in results if r.p_value is not None]
        corrected = iter(CORRECTIONS[self.config.correction](tested).tolist())
        return [None if r.p_value is None else next(corrected) for r in results]

    def _step(self, condition: _Condition, observation: _Observation) -> dict[str, Any] | None:
        cfg = self.config
        condition.history.append(observation.violated)
        if condition.alert is not None:
            clean = observation.result.value < observation.threshold * cfg.resolve_ratio
            condition.clean_streak = condition.clean_streak + 1 if clean else 0
            if condition.clean_streak >= cfg.resolve_after:
                return self._resolve(condition, observation)
            return None
        cooling = condition.quiet_until is not None and observation.window_end < condition.quiet_until
        if observation.violated and sum(condition.history) >= cfg.persistence_m and not cooling:
            return self._fire(condition, observation)
        return None

    def _fire(self, condition: _Condition, observation: _Observation) -> dict[str, Any]:
        key, result, window = observation.key, observation.result, observation.window()
        alert_id = _digest(
            key.model_id, key.model_version, dict(key.segment), result.kind, result.feature, result.statistic,
            window["start"],
        )  # fmt: skip
        incident = self._incidents.get(key.model_id)
        if incident is None or not incident.accepts(observation.window_end, self.config.incident_window_seconds):
            incident = _Incident(_digest("incident", alert_id), [], [], observation.window_end)
            self._incidents[key.model_id] = incident
        related = incident.alert_ids[:MAX_RELATED_ALERTS]
        incident.alert_ids.append(alert_id)
        incident.firing.append(alert_id)
        incident.last_start = max(incident.last_start, observation.window_end)

        severity = self.config.severity_for(result, observation.threshold)
        condition.alert = {
            "schema_version": SCHEMA_VERSION,
            "alert_id": alert_id,
            "incident_id": incident.incident_id,
            "model_id": key.model_id,
            "model_version": key.model_version,
            "segment": dict(key.segment),
            "kind": result.kind,
            "feature": result.feature,
            "severity": severity,
            "status": "firing",
            "statistic": observation.statistic(),
            "window": window,
            "reference": observation.reference(),
            "summary": observation.firing_summary(sum(condition.history), len(condition.history)),
            "suggested_action": suggested_action(result.kind, severity),
            "related_alert_ids": related,
            "created_at": _rfc3339(observation.created_at),
        }
        return copy.deepcopy(condition.alert)

    def _resolve(self, condition: _Condition, observation: _Observation) -> dict[str, Any]:
        assert condition.alert is not None
        alert_id = condition.alert["alert_id"]
        # A firing alert keeps its incident open, so the incident is still the model's latest.
        incident = self._incidents[observation.key.model_id]
        incident.firing.remove(alert_id)
        event = copy.deepcopy(condition.alert)
        event.update(
            status="resolved",
            statistic=observation.statistic(),
            window=observation.window(),
            reference=observation.reference(),
            summary=observation.resolved_summary(self.config.resolve_ratio, condition.clean_streak),
            related_alert_ids=[a for a in incident.alert_ids if a != alert_id][:MAX_RELATED_ALERTS],
            created_at=_rfc3339(observation.created_at),
        )
        condition.alert = None
        condition.clean_streak = 0
        condition.quiet_until = observation.window_end + self.config.cooldown_seconds
        return event

    def to_bytes(self) -> bytes:
        """Serializes the policy state (not its configuration) for a checkpoint."""
        return orjson.dumps(
            {
                "format": _STATE_FORMAT,
                "windows": [[k.model_id, k.model_version, k.segment, end] for k, end in self._last_end.items()],
                "conditions": [
                    {
                        "key": [k.model_id, k.model_version, k.segment, kind, feature, statistic],
                        "history": list(c.history),
                        "clean_streak": c.clean_streak,
                        "quiet_until": c.quiet_until,
                        "alert": c.alert,
                    }
                    for (k, kind, feature, statistic), c in self._conditions.items()
                ],
                "incidents": {model_id: dataclasses.asdict(i) for model_id, i in self._incidents.items()},
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes, config: PolicyConfig | None = None) -> AlertPolicy:
        """Restores a policy from :meth:`to_bytes` output, under ``config`` (the current settings)."""
        state = orjson.loads(data)
        if state.get("format") != _STATE_FORMAT:
            raise ValueError(f"unsupported alert policy state format {state.get('format')!r}")
        policy = cls(config)
        n = policy.config.persistence_n
        for model_id, version, segment, end in state["windows"]:
            policy._last_end[WindowKey(model_id, version, segment)] = end
        for c in state["conditions"]:
            model_id, version, segment, kind, feature, statistic = c["key"]
            policy._conditions[(WindowKey(model_id, version, segment), kind, feature, statistic)] = _Condition(
                deque(c["history"], maxlen=n), c["clean_streak"], c["quiet_until"], c["alert"]
            )
        for model_id, incident in state["incidents"].items():
            policy._incidents[model_id] = _Incident(**incident)
        return policy
