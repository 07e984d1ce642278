"""Small builders for the unit tables: a valid spec and its approval annotations."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from aideploy.api.constants import CHECKLIST_ITEMS, REQUIRED_ROLES, RiskLevel
from aideploy.api.digest import spec_digest

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)

COMPLIANCE = {
    "conformityAssessment": "CA-2026-014",
    "declarationOfConformity": "DoC-2026-014",
    "euDatabaseRegistration": "EU-DB-000123",
    "instructionsForUse": "https://docs.example.com/ifu",
    "humanOversight": "Analysts review high scores.",
}


def make_spec(risk: str = "minimal", version: str = "1.0.0", **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "system": "fraud-scorer",
        "riskLevel": risk,
        "model": {"name": "fraud-scorer", "version": version},
        "replicas": 2,
        "serving": {"port": 8080},
        "template": {
            "spec": {
                "containers": [
                    {"name": "server", "image": "mlserver:1", "ports": [{"containerPort": 8080}]}
                ]
            }
        },
    }
    if risk == "high":
        spec["compliance"] = dict(COMPLIANCE)
    spec.update(copy.deepcopy(overrides))
    return spec


def approvals_for(spec: dict[str, Any], roles: list[str] | None = None) -> dict[str, str]:
    digest = spec_digest(spec)
    wanted = (
        roles
        if roles is not None
        else [r.value for r in REQUIRED_ROLES[RiskLevel(spec["riskLevel"])]]
    )
    return {f"approval.aideploy.io/{role}": f"{digest}; by={role}-person; ok" for role in wanted}


def full_checklist(exclude: tuple[str, ...] = ()) -> dict[str, str]:
    return {
        f"checklist.aideploy.io/{item}": f"yes https://evidence.example.com/{item}"
        for item in CHECKLIST_ITEMS
        if item not in exclude
    }


def gate_annotations(spec: dict[str, Any]) -> dict[str, str]:
    return {**approvals_for(spec), **full_checklist()}
