"""What the exporter really serves: every series name a scrape of each role's registry can show."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream.incidents.lifecycle import State
from stream.metrics import EvaluateMetrics, IngestMetrics, incident_registry
from stream.settings import MetricsSettings

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


def served_names() -> set[str]:
    """Series names of the ingest, evaluate and incident registries, from their scrape text (families
    without samples yet included, with the suffixes their type gives them)."""
    registries = [IngestMetrics().registry, EvaluateMetrics({}, MetricsSettings()).registry, incident_registry({}, [s.value for s in State])]
    names: set[str] = set()
    for registry in registries:
        for family in text_string_to_metric_families(generate_latest(registry).decode()):
            names.add(family.name)
            names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
    return names
