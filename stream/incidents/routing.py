"""Who hears about an incident: the routing file.

One YAML file for the service (deploy/routing.example.yaml). Each model's ``routing``
section has exactly the format of the monitor config's ``routing`` (validated against
that part of schemas/monitor.schema.json), so it can be copied from there. Receivers
declared at the top level are shared by every model; a model's own receiver of the same
name wins. An alert goes to every receiver of every matching route; an alert that no
route matches (or of a model without routing) goes to ``default_receiver``, never nowhere.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, time as clock_time
from pathlib import Path
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

import jsonschema
import orjson
import yaml

from stream.incidents.lifecycle import AlertEntry, Timing
from stream.settings import PROJECT_ROOT, ConfigError

# Default owning team of each alert kind (shown in messages when the team is configured).
TEAM_OF_KIND = {
    "data_quality": "data_engineering", "schema": "data_engineering", "label_lag": "data_engineering",
    "data_drift": "ml", "prediction_drift": "ml", "performance": "ml", "concept_drift": "ml",
    "latency": "operations", "error_rate": "operations",
}
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _routing_file_schema() -> dict[str, Any]:
    monitor = orjson.loads((PROJECT_ROOT / "schemas" / "monitor.schema.json").read_bytes())
    routing = monitor["properties"]["routing"]
    receiver = routing["properties"]["receivers"]["additionalProperties"]
    seconds = {"type": "number", "exclusiveMinimum": 0}
    clock = {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "required": ["default_receiver", "receivers"],
        "properties": {
            "default_receiver": {"$ref": "#/$defs/safe_id"},
            "receivers": {"type": "object", "propertyNames": {"$ref": "#/$defs/safe_id"}, "additionalProperties": receiver},
            "team_owners": {
                "type": "object",
                "additionalProperties": False,
                "properties": {team: {"type": "string", "minLength": 1} for team in sorted(set(TEAM_OF_KIND.values()))},
            },
            "escalation_receivers": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/safe_id"}},
            "timing": {
                "type": "object",
                "additionalProperties": False,
                "properties": {f"{name}_seconds": seconds for name in Timing.__dataclass_fields__},
            },
            "models": {
                "type": "object",
                "propertyNames": {"$ref": "#/$defs/safe_id"},
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "owners": monitor["properties"]["owners"],
                        "routing": routing,
                        "quiet_hours": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["start", "end"],
                            "properties": {
                                "start": clock,
                                "end": clock,
                                "timezone": {"type": "string", "minLength": 1},
                                "severities": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"$ref": "#/$defs/severity"}},
                            },
                        },
                    },
                },
            },
        },
        "$defs": monitor["$defs"],
    }


@dataclass(frozen=True)
class Receiver:
    name: str
    type: str  # slack | pagerduty | alertmanager | webhook
    url: str


@dataclass(frozen=True)
class Route:
    receivers: tuple[str, ...]
    severities: frozenset[str] | None = None
    kinds: frozenset[str] | None = None

    def matches(self, severity: str, kind: str) -> bool:
        return (self.severities is None or severity in self.severities) and (self.kinds is None or kind in self.kinds)


@dataclass(frozen=True)
class QuietHours:
    """A daily span (local time) during which deliveries of the listed severities are held back (recorded, not sent)."""

    start: clock_time
    end: clock_time
    timezone: ZoneInfo
    severities: frozenset[str] = frozenset({"P1", "P2"})

    def covers(self, now: float, severity: str) -> bool:
        if severity not in self.severities:
            return False
        local = datetime.fromtimestamp(now, self.timezone).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # spans midnight


@dataclass(frozen=True)
class ModelRouting:
    owners: tuple[str, ...] = ()
    receivers: Mapping[str, Receiver] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    quiet_hours: QuietHours | None = None


@dataclass(frozen=True)
class RoutingConfig:
    default_receiver: Receiver
    shared_receivers: Mapping[str, Receiver]
    models: Mapping[str, ModelRouting]
    team_owners: Mapping[str, str]
    escalation_receivers: tuple[str, ...]
    timing: Timing

    @classmethod
    def load(cls, path: Path) -> "RoutingConfig":
        try:
            raw = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read routing file {path}: {exc}") from None
        return cls.from_mapping(raw, str(path))

    @classmethod
    def from_mapping(cls, raw: Any, source: str = "routing config") -> "RoutingConfig":
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(_routing_file_schema()).iter_errors(raw))
        if error is not None:
            where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
            raise ConfigError(f"{source}: {where}: {error.message}")
        shared = _receivers(raw["receivers"], source)
        models = {model_id: _model_routing(model, source) for model_id, model in raw.get("models", {}).items()}
        known = set(shared)
        for model_id, model in models.items():
            for route in model.routes:
                unknown = set(route.receivers) - known - set(model.receivers)
                if unknown:
                    raise ConfigError(f"{source}: models/{model_id}/routing names unknown receivers {sorted(unknown)}; declare them under receivers")
        escalation = tuple(raw.get("escalation_receivers", ()))
        for name in (raw["default_receiver"], *escalation):
            if name not in shared:
                raise ConfigError(f"{source}: receiver {name!r} must be declared under the top-level receivers")
        timing = Timing(**{name.removesuffix("_seconds"): float(value) for name, value in raw.get("timing", {}).items()})
        if timing.retention < timing.reopen_within:
            raise ConfigError(
                f"{source}: timing/retention_seconds ({timing.retention:g}) is shorter than timing/reopen_within_seconds "
                f"({timing.reopen_within:g}): a resolved incident must be kept while it can reopen; raise retention_seconds"
            )
        return cls(shared[raw["default_receiver"]], shared, models, dict(raw.get("team_owners", {})), escalation, timing)

    def receivers_for(self, model_id: str, alerts: Iterable[AlertEntry]) -> list[Receiver]:
        """Every receiver of every route matching one of the alerts; the default receiver when none matches."""
        model = self.models.get(model_id, ModelRouting())
        names: dict[str, None] = {}
        for alert in alerts:
            for route in model.routes:
                if route.matches(alert.severity, alert.kind):
                    names.update(dict.fromkeys(route.receivers))
        if not names:
            return [self.default_receiver]
        return [self._receiver(model, name) for name in names]

    def escalation_targets(self, model_id: str) -> list[Receiver]:
        model = self.models.get(model_id, ModelRouting())
        return [self._receiver(model, name) for name in self.escalation_receivers] or [self.default_receiver]

    def owners_for(self, model_id: str, kinds: Iterable[str]) -> list[str]:
        """The model's owners, then the owning teams of the alert kinds (when configured)."""
        owners = dict.fromkeys(self.models.get(model_id, ModelRouting()).owners)
        for kind in kinds:
            team = self.team_owners.get(TEAM_OF_KIND[kind])
            if team:
                owners[team] = None
        return list(owners)

    def in_quiet_hours(self, model_id: str, now: float, severity: str) -> bool:
        quiet = self.models.get(model_id, ModelRouting()).quiet_hours
        return quiet is not None and quiet.covers(now, severity)

    def _receiver(self, model: ModelRouting, name: str) -> Receiver:
        return model.receivers.get(name) or self.shared_receivers[name]


def _receivers(raw: Mapping[str, Mapping[str, str]], source: str) -> dict[str, Receiver]:
    return {name: Receiver(name, spec["type"], _expand_env(spec["url"], f"{source}: receiver {name}")) for name, spec in raw.items()}


def _expand_env(url: str, where: str) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"{where}: url refers to ${{{name}}} but that environment variable is not set")
        return os.environ[name]

    return _ENV_REFERENCE.sub(value, url)


def _model_routing(raw: Mapping[str, Any], source: str) -> ModelRouting:
    routing = raw.get("routing", {"receivers": {}, "routes": []})
    routes = tuple(
        Route(tuple(route["receivers"]), frozenset(route["severities"]) if "severities" in route else None, frozenset(route["kinds"]) if "kinds" in route else None)
        for route in routing["routes"]
    )
    quiet = raw.get("quiet_hours")
    quiet_hours = None
    if quiet is not None:
        try:
            zone = ZoneInfo(quiet.get("timezone", "UTC"))
        except (ValueError, KeyError) as exc:
            raise ConfigError(f"{source}: quiet_hours timezone {quiet.get('timezone')!r} is unknown ({exc})") from None
        quiet_hours = QuietHours(
            clock_time.fromisoformat(quiet["start"]), clock_time.fromisoformat(quiet["end"]), zone,
            frozenset(quiet.get("severities", ("P1", "P2"))),
        )
    return ModelRouting(tuple(raw.get("owners", ())), _receivers(routing["receivers"], source), routes, quiet_hours)
