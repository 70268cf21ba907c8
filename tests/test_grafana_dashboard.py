"""The Grafana dashboard in the repository (grafana/osl-hooks-fleet.json): a well-formed dashboard whose
panels query only metrics the hub process registers. (tests/test_hub_fleet.py checks the same names against
a real hub's /hub/metrics after real spawns.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parent.parent / "grafana" / "osl-hooks-fleet.json"
METRIC = re.compile(r"\b((?:osl_hooks|jupyterhub)_[a-z0-9_]+)\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def queried_metrics() -> set[str]:
    """Every metric name a panel of the dashboard queries."""
    dashboard = json.loads(DASHBOARD.read_text())
    return {name for panel in dashboard["panels"] for t in panel["targets"] for name in METRIC.findall(t["expr"])}


def exposed_names(text: str) -> set[str]:
    """The series names a /hub/metrics text can hold, by each family's type (a family may have no samples yet)."""
    from prometheus_client.parser import text_string_to_metric_families

    names = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


def test_the_dashboard_queries_only_metrics_the_hub_registers():
    import jupyterhub.metrics  # noqa: F401 (JupyterHub's own metrics, as in the hub process)
    from prometheus_client import REGISTRY, generate_latest

    from osl_hooks.hub.metrics import register_fleet_metrics

    register_fleet_metrics()  # what install(c) does
    queried = queried_metrics()
    assert {"osl_hooks_env_servers", "osl_hooks_starts_total", "osl_hooks_start_phase_seconds_bucket"} <= queried
    assert queried <= exposed_names(generate_latest(REGISTRY).decode())


def test_the_dashboard_is_importable():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    datasource = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert datasource and datasource[0]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
