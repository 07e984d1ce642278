"""The Grafana dashboard: valid JSON, every query on a metric the operator exports, and
shipped unchanged by the chart's ConfigMap."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tests.support.chart import DASHBOARD, exported_metric_names, metric_names_in, render


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows keep their panels inside


def test_dashboard_is_grafana_json_with_unique_panel_ids() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids))
    # Every panel queries the data source chosen in the variable, not a fixed one.
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]
    for panel in panels(dashboard):
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"


def test_every_query_uses_exported_metrics_and_every_api_metric_is_shown() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported = exported_metric_names() | {"up"}
    shown: set[str] = set()
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            used = metric_names_in(target["expr"])
            assert used, f"{panel['title']}: no metric in {target['expr']!r}"
            assert used <= exported, f"{panel['title']} uses unknown {sorted(used - exported)}"
            shown |= used
    # The metrics docs/api.md promises are all on the dashboard.
    for family in (
        "aideploy_deployments",
        "aideploy_gate_blocked",
        "aideploy_rollbacks_total",
        "aideploy_probe_results_total",
        "aideploy_approval_wait_seconds_bucket",
        "aideploy_approval_to_ready_seconds_bucket",
        "aideploy_red_to_rollback_seconds_bucket",
        "aideploy_last_reconcile_timestamp_seconds",
    ):
        assert family in shown, family


def test_chart_ships_the_dashboard_unchanged_when_enabled() -> None:
    def dashboards(values: dict[str, Any]) -> list[dict[str, Any]]:
        # The chart's other ConfigMap is the approvers configuration.
        return [
            m
            for m in render(values)
            if m["kind"] == "ConfigMap" and "grafana_dashboard" in m["metadata"]["labels"]
        ]

    assert not dashboards({})
    (config_map,) = dashboards({"grafanaDashboard": {"enabled": True}})
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["aideploy.json"]) == json.loads(DASHBOARD.read_text())
