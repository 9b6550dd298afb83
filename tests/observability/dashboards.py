"""The provisioned Grafana dashboards, read the way the tests need them: every panel's PromQL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stream.settings import PROJECT_ROOT

GRAFANA = PROJECT_ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
GRAFANA_INTERVALS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}
"""Grafana's built-in interval variables, as a short dashboard time range would set them."""


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # inside collapsed rows


def dashboard_expressions() -> Iterator[tuple[str, str, str]]:
    """(dashboard file, panel title, expression) of every query of every panel."""
    for path in DASHBOARDS:
        for panel in panels(load(path)):
            for target in panel.get("targets", []):
                yield path.name, panel["title"], target["expr"]


def substitute_variables(expression: str, **values: str) -> str:
    """The expression as Grafana would send it, with ``values`` for the dashboard variables
    (a variable given no value matches every value, like the "All" option)."""
    for name, value in GRAFANA_INTERVALS.items():
        expression = expression.replace(name, value)
    values = {"version": ".*", "statistic": "js", **values}

    def value_of(match: re.Match) -> str:
        return values.get(match.group(1) or match.group(2), ".*")

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value_of, expression)
