"""The Grafana dashboards, their provisioning and the Prometheus config: valid, and wired to what exists.

No Grafana runs here: the JSON is checked for what Grafana needs (ids, layout, data source,
variables), every metric a panel names must be served by the exporter, and every metric must be
on some dashboard. Prometheus' own ``promtool`` checks the compose scrape config. That the
expressions evaluate is checked against a real Prometheus in test_prometheus_drift.py.
"""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from stream.metrics import METRICS
from stream.settings import PROJECT_ROOT
from stream.stack import ensure_debian_package
from tests.observability.dashboards import DASHBOARDS, GRAFANA, GRAFANA_INTERVALS, dashboard_expressions, load, panels
from tests.observability.exporter import served_names

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]
PROMETHEUS_CONFIG = PROJECT_ROOT / "deploy" / "prometheus" / "prometheus.yml"
DATASOURCES = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"]
PROVIDERS = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "driftline.yml").read_text())["providers"]


def _variables(dashboard: dict) -> dict[str, dict]:
    return {variable["name"]: variable for variable in dashboard["templating"]["list"]}


def _metric_names(expression: str) -> set[str]:
    """Metric names in a PromQL expression (label matchers and ``by (...)`` label lists taken out first)."""
    without_matchers = re.sub(r"\{[^}]*\}", "{}", expression)
    without_groupings = re.sub(r"\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", without_matchers)
    words = re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_groupings)
    return {word for word in words if word.startswith(("driftline_", "process_")) or word == "up"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_dashboard_is_valid_grafana_json(path):
    dashboard = load(path)
    assert dashboard["uid"].startswith("driftline-") and len(dashboard["uid"]) <= 40 and dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["panels"]
    [datasource] = DATASOURCES
    every = list(panels(dashboard))
    assert len({panel["id"] for panel in every}) == len(every), "panel ids must be unique"
    occupied: set[tuple[int, int]] = set()
    for panel in every:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, f"{panel['title']}: outside the 24 columns"
        cells = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        assert panel["targets"], f"{panel['title']} has no query"
        assert panel["datasource"] == {"type": "prometheus", "uid": datasource["uid"]}
        assert len({target["refId"] for target in panel["targets"]}) == len(panel["targets"])
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource["uid"] and target["expr"].strip()


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_dashboard_variables_are_defined_before_use(path):
    dashboard = load(path)
    variables = _variables(dashboard)
    builtin = {name.removeprefix("$") for name in GRAFANA_INTERVALS}
    order = list(variables)
    for name, variable in variables.items():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == DATASOURCES[0]["uid"]
            used = set(re.findall(r"\$(\w+)", variable["query"]["query"]))
            assert all(order.index(other) < order.index(name) for other in used), f"${name} uses a variable defined after it"
    for panel in panels(dashboard):
        texts = [panel["title"], *(target["expr"] for target in panel["targets"])]
        for text in texts:
            for name in re.findall(r"\$\{?(\w+)", text):
                assert name in variables or name in builtin, f"{path.name}/{panel['title']}: ${name} is not a variable"


def test_every_panel_metric_exists_in_the_exporter():
    served = served_names() | {"up"}
    for dashboard, title, expression in dashboard_expressions():
        names = _metric_names(expression)
        assert names, f"{dashboard}/{title}: no metric in {expression}"
        assert names <= served, f"{dashboard}/{title}: {sorted(names - served)} not served by any driftline role"


def test_every_metric_is_on_a_dashboard():
    used = set()
    for _, _, expression in dashboard_expressions():
        used |= _metric_names(expression)
    for path in DASHBOARDS:
        for variable in _variables(load(path)).values():
            if variable["type"] == "query":
                used |= _metric_names(variable["query"]["query"])
    used = {re.sub(r"_(bucket|sum|count)$", "", name) for name in used}
    missing = [spec.name for spec in METRICS if spec.name not in used]
    assert not missing, f"metrics on no dashboard: {missing}"


def test_provisioning_and_compose_wiring():
    [datasource] = DATASOURCES
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    [provider] = PROVIDERS
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in COMPOSE["grafana"]["volumes"])
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert COMPOSE["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in COMPOSE["prometheus"]["volumes"]
    assert COMPOSE["prometheus"]["image"].removeprefix("prom/prometheus:v") == "2.42.0", "the Prometheus version the tests run"

    scrape = {job["job_name"]: job for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]}
    for role in ("ingest", "evaluate"):
        environment = COMPOSE[role]["environment"]
        assert environment["DRIFTLINE_METRICS_HOST"] == "0.0.0.0", f"{role} must listen beyond its container"
        [targets] = scrape[role]["static_configs"]
        assert targets["targets"] == [f"{role}:{environment['DRIFTLINE_METRICS_PORT']}"]
    [incidents] = scrape["incidents"]["static_configs"]
    assert incidents["targets"] == ["incidents:6066"] and "6066:6066" in COMPOSE["incidents"]["ports"], "the incident service's web port"
    assert COMPOSE["incidents"]["environment"]["DRIFTLINE_INCIDENTS_HOST"] == "0.0.0.0"


def test_promtool_accepts_the_compose_scrape_config():
    ensure_debian_package("promtool", "prometheus")
    result = subprocess.run(["promtool", "check", "config", str(PROMETHEUS_CONFIG)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
