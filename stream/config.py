"""Loading monitor configs (YAML) and reference profiles from files; every error names the file and the fix."""

from __future__ import annotations

from pathlib import Path

import yaml

from detectors.monitor import MonitorConfig, MonitorConfigError
from detectors.profile import ReferenceProfile
from stream.settings import ConfigError


def load_monitor_config(path: Path) -> MonitorConfig:
    """Parse and validate a monitor config file (``schemas/monitor.schema.json``)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the monitor config ({exc.strerror}); check the --config path") from None
    try:
        mapping = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}; fix the syntax") from None
    try:
        return MonitorConfig.from_mapping(mapping, source=str(path))
    except MonitorConfigError as exc:
        raise ConfigError(str(exc)) from None


def reference_path(config: MonitorConfig) -> Path:
    """The reference profile's path: as written, relative to the config file's folder."""
    written = Path(config.reference)
    return written if written.is_absolute() else Path(config.source).parent / written


def load_reference(config: MonitorConfig) -> ReferenceProfile:
    """Read the reference profile the config names and check it belongs to the config's model."""
    path = reference_path(config)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{config.source}: reference: cannot read {path} ({exc.strerror}); "
            "build it with `driftline profile build` or fix the path (relative to the config file)"
        ) from None
    try:
        reference = ReferenceProfile.from_bytes(data)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{path}: not a driftline reference profile ({exc}); rebuild it with `driftline profile build`") from None
    if reference.model_id != config.model_id:
        raise ConfigError(
            f"{config.source}: reference: {path} profiles model {reference.model_id!r}, not {config.model_id!r}; "
            "point reference at this model's profile"
        )
    return reference
