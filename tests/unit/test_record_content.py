"""The content builders: one per record type, pure functions of what the operator holds."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from aideploy.api.constants import RiskLevel
from aideploy.api.digest import canonical_json, spec_digest
from aideploy.api.spec import AIDeploymentSpec
from aideploy.api.status import ProbeOutcome, Release, RollbackStatus, StatusModel
from aideploy.logic.gate import ApprovalPolicy, evaluate_gate
from aideploy.logic.record_content import (
    approval_content,
    closure_content,
    deployment_log_content,
    plan_content,
    rollback_content,
)
from tests.unit.factories import COMPLIANCE, NOW, approvals_for, full_checklist, make_spec


def parsed(raw: dict[str, object]) -> AIDeploymentSpec:
    return AIDeploymentSpec.model_validate(raw)


def assert_plain_json(content: dict[str, object]) -> None:
    """No nulls (the apiserver may drop them, breaking the hash) and JSON-serialisable."""
    text = canonical_json(content).decode()
    assert "null" not in text
    assert json.loads(text) == content


def test_plan_content() -> None:
    raw = make_spec(
        "limited",
        version="2.1.0",
        environment="staging",
        window={"schedule": "0 22 * * 1-5", "duration": "4h", "timeZone": "Europe/Berlin"},
        verification={
            "probes": [{"name": "ready", "http": {"path": "/v2/health/ready"}}],
            "amberPolicy": "rollback",
        },
        monitoring={"duration": "24h", "signals": []},
    )
    raw["model"]["uri"] = "s3://models/x/2.1.0"
    digest = spec_digest(raw)
    content = plan_content(parsed(raw), spec_digest=digest)
    assert content == {
        "specDigest": digest,
        "system": "fraud-scorer",
        "model": {"name": "fraud-scorer", "version": "2.1.0", "uri": "s3://models/x/2.1.0"},
        "riskLevel": "limited",
        "environment": "staging",
        "replicas": 2,
        "window": {
            "schedule": "0 22 * * 1-5",
            "duration": "4h",
            "timeZone": "Europe/Berlin",
            "freezes": [],
        },
        "verification": {
            "timeout": "10m",
            "amberPolicy": "rollback",
            "probes": [{"name": "ready", "kind": "http"}],
        },
        "monitoring": {"duration": "24h", "interval": "30s", "signals": []},
        "rollback": {"automatic": True},
    }
    assert "changeType" not in content  # not derived yet: left out, not null
    assert (
        plan_content(parsed(raw), spec_digest=digest, change_type="minor")["changeType"] == "minor"
    )
    assert_plain_json(content)


def test_plan_content_keeps_the_declared_change_type_and_freezes() -> None:
    raw = make_spec(
        changeType="patch",
        expedite={"reason": "CVE fix"},
        window={
            "schedule": "0 22 * * *",
            "duration": "2h",
            "freezes": [
                {"start": "2026-12-20T00:00:00Z", "end": "2027-01-05T00:00:00Z", "reason": "y"}
            ],
        },
    )
    content = plan_content(parsed(raw), spec_digest=spec_digest(raw))
    assert content["changeType"] == "patch"
    assert content["expedite"] == {"reason": "CVE fix"}
    assert content["window"]["freezes"][0]["start"] == "2026-12-20T00:00:00Z"
    assert_plain_json(content)


def test_approval_content_for_high_risk() -> None:
    raw = make_spec("high")
    digest = spec_digest(raw)
    annotations = {
        **approvals_for(raw),
        "approval.aideploy.io/deployment-manager": "sha256:000000000000; by=old; earlier spec",
        **full_checklist(exclude=("2.3", "4.1")),
        "checklist.aideploy.io/4.1": "n/a not relevant",
        "provenance.aideploy.io/qa-lead": "alice; qa; 2026-11-26T12:00:00Z",
        "unrelated/annotation": "x",
    }
    content = approval_content(parsed(raw), annotations, spec_digest=digest, observed_at=NOW)
    assert content["specDigest"] == digest
    assert content["observedAt"] == "2026-11-26T12:00:00Z"
    assert content["requiredRoles"] == [
        "system-owner",
        "compliance-officer",
        "risk-manager",
        "qa-lead",
        "governance-committee",
    ]
    by_role = {a["role"]: a for a in content["approvals"]}
    assert by_role["qa-lead"] == {
        "role": "qa-lead",
        "by": "qa-lead-person",
        "digest": digest,
        "comment": "ok",
        "valid": True,
        # No admission webhook vouched for it: recorded as unauthenticated.
        "authenticated": False,
        "groups": [],
    }
    assert by_role["deployment-manager"]["valid"] is False
    assert "missingRoles" not in content
    items = {c["item"]: c for c in content["checklist"]}
    assert len(items) == 25
    assert items["1.1"] == {
        "item": "1.1",
        "title": "All code changes complete",
        "required": True,
        "status": "yes",
        "accepted": True,
        "evidence": "https://evidence.example.com/1.1",
    }
    assert items["2.3"]["status"] == "missing" and items["2.3"]["accepted"] is False
    assert items["4.1"]["status"] == "n/a" and items["4.1"]["accepted"] is False
    assert "cannot be n/a" in items["4.1"]["problem"]
    assert content["compliance"] == {**COMPLIANCE}
    assert content["provenance"] == {"qa-lead": "alice; qa; 2026-11-26T12:00:00Z"}
    assert "missingCompliance" not in content
    assert_plain_json(content)


def test_approval_content_for_minimal_risk_has_no_compliance() -> None:
    raw = make_spec("minimal", checklist={"required": ["1.1", "5.5"]})
    annotations = {"checklist.aideploy.io/4.2": "n/a not high risk"}
    lowered = ApprovalPolicy(lower_gate_for=frozenset({RiskLevel.MINIMAL}))
    content = approval_content(
        parsed(raw),
        annotations,
        spec_digest=spec_digest(raw),
        observed_at="2026-11-26T12:00:00Z",
        gate=evaluate_gate(parsed(raw), annotations, spec_digest(raw), policy=lowered),
    )
    assert content["missingRoles"] == ["system-owner", "deployment-manager"]
    assert [(c["item"], c["required"]) for c in content["checklist"]] == [
        ("1.1", True),
        ("4.2", False),
        ("5.5", True),
    ]
    assert content["checklist"][1]["accepted"] is True
    assert "compliance" not in content and "provenance" not in content
    floor = content["gateFloor"]
    assert floor["riskLevel"] == "minimal" and floor["loweredByOperatorPolicy"] is True
    assert "checklist item 1.2" in floor["omitted"] and "checklist item 5.5" not in floor["omitted"]
    assert_plain_json(content)


def test_deployment_log_content() -> None:
    probes: list[Mapping[str, Any] | StatusModel] = [
        ProbeOutcome(name="ready", kind="http", result="GREEN", value="200", message="ok", at="t1"),
        {"name": "golden", "kind": "inference", "result": "AMBER", "message": "slow", "at": NOW},
    ]
    release = Release(version="1.4.0", digest="sha256:abc", template={"spec": {}}, generation=3)
    content = deployment_log_content(
        steps=[
            {"step": "rollout-started", "at": NOW, "detail": "Deployment applied"},
            {"step": "rollout-complete", "at": NOW + timedelta(seconds=30)},
        ],
        probes=probes,
        decision="AMBER",
        release=release,
    )
    assert content == {
        "release": {"version": "1.4.0", "digest": "sha256:abc", "generation": 3},
        "steps": [
            {
                "step": "rollout-started",
                "at": "2026-11-26T12:00:00Z",
                "detail": "Deployment applied",
            },
            {"step": "rollout-complete", "at": "2026-11-26T12:00:30Z"},
        ],
        "probes": [
            {
                "name": "ready",
                "kind": "http",
                "result": "GREEN",
                "value": "200",
                "message": "ok",
                "at": "t1",
            },
            {
                "name": "golden",
                "kind": "inference",
                "result": "AMBER",
                "message": "slow",
                "at": "2026-11-26T12:00:00Z",
            },
        ],
        "decision": "AMBER",
    }
    assert_plain_json(content)


def test_deployment_log_rejects_incomplete_steps() -> None:
    with pytest.raises(ValueError, match="'step' and 'at'"):
        deployment_log_content(steps=[{"step": "x"}], probes=[], decision=None)
    with pytest.raises(ValueError, match="name and result"):
        deployment_log_content(steps=[], probes=[{"name": "x"}], decision=None)


def test_rollback_content() -> None:
    content = rollback_content(
        trigger="probe",
        reason="golden: RED (output differs)",
        from_version="2.0.0",
        from_digest="sha256:new",
        to_version="1.9.0",
        to_digest="sha256:old",
        verification=[{"name": "ready", "kind": "http", "result": "GREEN", "message": "ok"}],
        restored_decision="GREEN",
        red_at=NOW,
        started_at=NOW,
        completed_at=NOW + timedelta(minutes=1),
    )
    assert content == {
        "trigger": "probe",
        "reason": "golden: RED (output differs)",
        "from": {"version": "2.0.0", "digest": "sha256:new"},
        "to": {"version": "1.9.0", "digest": "sha256:old"},
        "redAt": "2026-11-26T12:00:00Z",
        "startedAt": "2026-11-26T12:00:00Z",
        "completedAt": "2026-11-26T12:01:00Z",
        "verification": [{"name": "ready", "kind": "http", "result": "GREEN", "message": "ok"}],
        "restoredDecision": "GREEN",
    }
    first_release = rollback_content(
        trigger="manual",
        reason="r",
        from_version="1.0.0",
        from_digest="d",
        to_version=None,
        to_digest=None,
    )
    assert "to" not in first_release and first_release["verification"] == []
    assert_plain_json(content)


def test_closure_content() -> None:
    content = closure_content(
        final_phase="Succeeded",
        decision="GREEN",
        monitoring_started_at=NOW,
        monitoring_ended_at=NOW + timedelta(hours=24),
        summary="1.4.0 served GREEN through its 24h watch",
        release={"version": "1.4.0", "digest": "sha256:abc", "template": {}},
    )
    assert content == {
        "finalPhase": "Succeeded",
        "decision": "GREEN",
        "monitoring": {"startedAt": "2026-11-26T12:00:00Z", "endedAt": "2026-11-27T12:00:00Z"},
        "release": {"version": "1.4.0", "digest": "sha256:abc"},
        "summary": "1.4.0 served GREEN through its 24h watch",
    }
    assert_plain_json(content)


def test_rollback_content_from_the_status_model() -> None:
    """The phase machine keeps the rollback in status; its fields are the builder's."""
    rollback = RollbackStatus(
        trigger="signal",
        reason="error-rate RED",
        from_version="2.0.0",
        from_digest="sha256:new",
        to_version="1.9.0",
        to_digest="sha256:old",
        red_at="2026-11-26T12:00:00Z",
        started_at="2026-11-26T12:00:01Z",
        verification=[
            ProbeOutcome(name="ready", kind="http", result="GREEN", message="ok", at="t")
        ],
        restored_decision="GREEN",
    )
    content = rollback_content(**rollback.model_dump())
    assert content["from"] == {"version": "2.0.0", "digest": "sha256:new"}
    assert content["verification"] == [
        {"name": "ready", "kind": "http", "result": "GREEN", "message": "ok", "at": "t"}
    ]
    assert "completedAt" not in content
    assert_plain_json(content)
