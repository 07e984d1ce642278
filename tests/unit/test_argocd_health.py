"""The Argo CD health check, run as Argo CD runs it: health.lua in Lua 5.1 (Argo CD's
gopher-lua is 5.1) with the object as the global `obj`, every case of health_test.yaml,
and the argocd-cm snippet in examples/ kept identical to the script."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa.lua51 as lua51  # type: ignore[import-untyped]
import pytest
import yaml

from aideploy.api.constants import Phase
from tests.support.paths import ARGOCD_HEALTH_DIR, CHART_DIR, EXAMPLES_DIR, REPO_ROOT

CHECK_DIR = ARGOCD_HEALTH_DIR
HEALTH_LUA = CHECK_DIR / "health.lua"
ARGOCD_CM = EXAMPLES_DIR / "argocd" / "argocd-cm.yaml"
APPLICATION = EXAMPLES_DIR / "argocd" / "application.yaml"
CM_KEY = "resource.customizations.health.aideploy.io_AIDeployment"
HEALTH_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def cases() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = yaml.safe_load((CHECK_DIR / "health_test.yaml").read_text())[
        "tests"
    ]
    return tests


def to_lua(runtime: Any, value: Any) -> Any:
    """Nested dicts and lists as Lua tables (lists 1-based), as Argo CD hands them over."""
    if isinstance(value, dict):
        return runtime.table_from({k: to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([to_lua(runtime, v) for v in value])
    return value


def run_health(obj: dict[str, Any], script: str | None = None) -> dict[str, Any]:
    # Only the libraries Argo CD opens for health scripts matter; the script uses none.
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True, register_eval=False)
    runtime.globals().obj = to_lua(runtime, obj)
    result = runtime.execute(script if script is not None else HEALTH_LUA.read_text())
    assert result is not None, "health.lua returned nothing"
    return dict(result)


@pytest.mark.parametrize("case", cases(), ids=lambda c: Path(c["inputPath"]).stem)
def test_health_case(case: dict[str, Any]) -> None:
    obj = yaml.safe_load((CHECK_DIR / case["inputPath"]).read_text())
    got = run_health(obj)
    assert got == case["healthStatus"]


def test_cases_cover_every_phase_and_the_generation_rule() -> None:
    seen: dict[str, set[str]] = {}
    for case in cases():
        obj = yaml.safe_load((CHECK_DIR / case["inputPath"]).read_text())
        status = obj.get("status") or {}
        current = status.get("observedGeneration") == obj["metadata"].get("generation")
        seen.setdefault(status.get("phase", "(none)"), set()).add(
            f"{case['healthStatus']['status']}:{'current' if current else 'stale'}"
        )
    expected = {
        "AwaitingApproval": "Suspended",
        "AwaitingPromotion": "Suspended",
        "AwaitingWindow": "Suspended",
        "Held": "Suspended",
        "Deploying": "Progressing",
        "Verifying": "Progressing",
        "RollingBack": "Progressing",
        "Monitoring": "Healthy",
        "Succeeded": "Healthy",
        "RolledBack": "Degraded",
        "Failed": "Degraded",
    }
    assert set(expected) == {p.value for p in Phase}
    for phase, health in expected.items():
        assert f"{health}:current" in seen.get(phase, set()), f"no case for {phase} -> {health}"
    assert "Progressing:stale" in seen["Monitoring"]
    assert "Progressing:stale" in seen["Succeeded"]


def test_every_testdata_file_is_used_and_statuses_are_argo_cds() -> None:
    used = {c["inputPath"] for c in cases()}
    on_disk = {str(p.relative_to(CHECK_DIR)) for p in (CHECK_DIR / "testdata").glob("*.yaml")}
    assert used == on_disk
    assert {c["healthStatus"]["status"] for c in cases()} <= HEALTH_STATUSES


def test_message_is_the_operators_status_message() -> None:
    obj = {
        "metadata": {"generation": 5},
        "status": {"observedGeneration": 5, "phase": "Held", "message": "AMBER: latency 700ms"},
    }
    assert run_health(obj) == {"status": "Suspended", "message": "AMBER: latency 700ms"}


def test_argocd_cm_snippet_is_the_script_unchanged() -> None:
    cm = yaml.safe_load(ARGOCD_CM.read_text())
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "argocd-cm"
    assert cm["data"][CM_KEY] == HEALTH_LUA.read_text()


def test_application_example_points_at_this_chart() -> None:
    apps = [d for d in yaml.safe_load_all(APPLICATION.read_text()) if d]
    assert all(a["kind"] == "Application" for a in apps)
    chart_app = next(
        a for a in apps if a["spec"]["source"].get("path", "").endswith("charts/aideploy-operator")
    )
    assert (REPO_ROOT / chart_app["spec"]["source"]["path"]) == CHART_DIR
    values = chart_app["spec"]["source"]["helm"]["valuesObject"]
    import helm_python

    with helm_python.Chart.load(str(CHART_DIR)) as chart:
        chart.validate_schema(values)
