"""The gate as a table: each row is a situation and what the gate must say about it."""

from __future__ import annotations

from typing import Any

import pytest

from aideploy.api.approvals import parse_approval
from aideploy.api.constants import RiskLevel
from aideploy.api.digest import spec_digest
from aideploy.api.spec import AIDeploymentSpec
from aideploy.logic.gate import ApprovalPolicy, GateResult, evaluate_gate

from .factories import approvals_for, full_checklist, make_spec

HIGH = ["system-owner", "compliance-officer", "risk-manager", "qa-lead", "governance-committee"]
LIMITED = ["system-owner", "qa-lead", "deployment-manager"]
MINIMAL = ["system-owner", "deployment-manager"]


def _gate(spec: dict[str, Any], annotations: dict[str, str]):  # type: ignore[no-untyped-def]
    return evaluate_gate(AIDeploymentSpec.model_validate(spec), annotations, spec_digest(spec))


@pytest.mark.parametrize(
    ("risk", "expected_missing"),
    [("high", HIGH), ("limited", LIMITED), ("minimal", MINIMAL)],
)
def test_required_roles_by_risk_level(risk: str, expected_missing: list[str]) -> None:
    spec = make_spec(risk)
    result = _gate(spec, full_checklist())
    assert result.missing_roles == expected_missing
    assert not result.passed
    assert result.blocked_by == ["approvals"]


@pytest.mark.parametrize("risk", ["high", "limited", "minimal"])
def test_all_required_roles_pass(risk: str) -> None:
    spec = make_spec(risk)
    result = _gate(spec, {**approvals_for(spec), **full_checklist()})
    assert result.passed, result


def test_one_role_missing_is_named() -> None:
    spec = make_spec("limited")
    annotations = {
        **approvals_for(spec, ["system-owner", "deployment-manager"]),
        **full_checklist(),
    }
    result = _gate(spec, annotations)
    assert result.missing_roles == ["qa-lead"]
    assert "qa-lead" in result.approvals_message(spec_digest(spec))


def test_approvals_for_an_older_spec_are_stale() -> None:
    old = make_spec("minimal", version="1.0.0")
    new = make_spec("minimal", version="1.1.0")
    result = _gate(new, {**approvals_for(old), **full_checklist()})
    assert result.missing_roles == MINIMAL
    assert result.stale_roles == MINIMAL
    assert all(not a.valid for a in result.approvals)
    assert "older spec" in result.approvals_message(spec_digest(new))


def _lowered(spec: dict[str, Any], annotations: dict[str, str], *risks: RiskLevel) -> GateResult:
    policy = ApprovalPolicy(lower_gate_for=frozenset(risks))
    return evaluate_gate(
        AIDeploymentSpec.model_validate(spec), annotations, spec_digest(spec), policy=policy
    )


def test_approvals_required_adds_to_the_floor_and_never_removes_from_it() -> None:
    # Issue 11, attack 1: a high-risk spec naming only qa-lead opened the gate.
    spec = make_spec("high", approvals={"required": ["qa-lead", "release-manager"]})
    annotations = {**approvals_for(spec, ["qa-lead", "release-manager"]), **full_checklist()}
    result = _gate(spec, annotations)
    assert not result.passed
    assert result.missing_roles == [r for r in HIGH if r != "qa-lead"]
    assert result.required_roles == [*HIGH, "release-manager"]
    message = result.approvals_message(spec_digest(spec))
    assert "leave out system-owner, compliance-officer, risk-manager, governance-committee" in (
        message
    )
    assert "Only the operator's configuration (lowerGate" in message
    gate = result.to_status()
    assert gate.below_floor == [
        "system-owner",
        "compliance-officer",
        "risk-manager",
        "governance-committee",
    ]
    assert gate.floor_lowered is False
    everyone = _gate(spec, {**approvals_for(spec, [*HIGH, "release-manager"]), **full_checklist()})
    assert everyone.passed


@pytest.mark.parametrize(
    ("risks", "passes"),
    [((RiskLevel.HIGH,), True), ((RiskLevel.MINIMAL,), False), ((), False)],
)
def test_only_the_operators_policy_lowers_the_gate(
    risks: tuple[RiskLevel, ...], passes: bool
) -> None:
    spec = make_spec("high", approvals={"required": ["release-manager"]})
    result = _lowered(
        spec, {**approvals_for(spec, ["release-manager"]), **full_checklist()}, *risks
    )
    assert result.passed is passes
    assert result.to_status().floor_lowered is passes
    if passes:
        assert "lowerGate policy lowers the gate for high risk" in result.approvals_message(
            spec_digest(spec)
        )


def test_unknown_role_annotation_is_ignored() -> None:
    spec = make_spec("minimal")
    annotations = {
        **approvals_for(spec),
        "approval.aideploy.io/the-intern": f"{spec_digest(spec)}; by=x",
        **full_checklist(),
    }
    result = _gate(spec, annotations)
    assert result.passed
    assert {a.role for a in result.approvals} == set(MINIMAL)


CHECKLIST_ROWS = [
    # (risk, item, value, acceptable, words the problem must contain)
    ("minimal", "2.3", "yes https://jira/UAT-1", True, ""),
    ("minimal", "2.3", "YES signed by QA", True, ""),
    ("minimal", "2.3", "yes", False, "no evidence"),
    ("minimal", "2.3", "no", False, "marked no"),
    ("minimal", "2.3", "done", False, "must start with"),
    ("minimal", "2.3", "n/a not needed", False, "cannot be n/a for section 2"),
    ("minimal", "4.1", "n/a not a high-risk system", True, ""),
    ("limited", "4.4", "n/a no instructions needed", True, ""),
    ("minimal", "4.1", "n/a", False, "without a reason"),
    ("high", "4.1", "n/a we think it is fine", False, "high-risk"),
    ("high", "4.1", "yes CA-2026-014", True, ""),
]


@pytest.mark.parametrize(("risk", "item", "value", "ok", "words"), CHECKLIST_ROWS)
def test_checklist_item_values(risk: str, item: str, value: str, ok: bool, words: str) -> None:
    spec = make_spec(risk)
    annotations = {
        **approvals_for(spec),
        **full_checklist(),
        f"checklist.aideploy.io/{item}": value,
    }
    result = _gate(spec, annotations)
    assert result.checklist_complete is ok
    if not ok:
        assert len(result.invalid_items) == 1
        assert words in result.invalid_items[0]
        assert result.invalid_items[0].startswith(item)


def test_missing_checklist_items_are_listed_in_order() -> None:
    spec = make_spec("minimal")
    result = _gate(spec, {**approvals_for(spec), **full_checklist(exclude=("5.6", "1.2"))})
    assert result.missing_items == ["1.2", "5.6"]
    assert "1.2, 5.6" in result.checklist_message()
    assert result.blocked_by == ["checklist"]


def test_checklist_override_limits_required_items_only_under_the_operators_policy() -> None:
    spec = make_spec("minimal", checklist={"required": ["1.1", "5.5"]})
    annotations = {
        **approvals_for(spec),
        "checklist.aideploy.io/1.1": "yes PR-1",
        "checklist.aideploy.io/5.5": "yes drill-7",
    }
    held = _gate(spec, annotations)
    assert not held.passed and "1.2" in held.missing_items and "5.5" not in held.missing_items
    assert "checklist item 1.2" in held.approvals_message(spec_digest(spec))
    assert _lowered(spec, annotations, RiskLevel.MINIMAL).passed


@pytest.mark.parametrize(
    ("compliance", "missing"),
    [
        (None, 5),
        ({}, 5),
        ({"conformityAssessment": "CA-1"}, 4),
        ({"conformityAssessment": "CA-1", "declarationOfConformity": "  "}, 4),
    ],
)
def test_high_risk_compliance_fields(compliance: dict[str, str] | None, missing: int) -> None:
    spec = make_spec("high")
    if compliance is None:
        del spec["compliance"]
    else:
        spec["compliance"] = compliance
    result = _gate(spec, {**approvals_for(spec), **full_checklist()})
    assert len(result.missing_compliance) == missing
    assert not result.compliant
    assert "humanOversight" in result.compliance_message(
        AIDeploymentSpec.model_validate(spec).risk_level
    )


def test_compliance_not_required_below_high_risk() -> None:
    spec = make_spec("limited")
    assert _gate(spec, {**approvals_for(spec), **full_checklist()}).compliant


@pytest.mark.parametrize(
    ("value", "digest", "by", "comment"),
    [
        ("sha256:abc; by=alice; looks good", "sha256:abc", "alice", "looks good"),
        ("abc", "abc", "unknown", ""),
        ("abc;by=bob", "abc", "bob", ""),
        ("abc; fine; by=carol; really", "abc", "carol", "fine; really"),
    ],
)
def test_parse_approval(value: str, digest: str, by: str, comment: str) -> None:
    parsed = parse_approval(value)
    assert (parsed.digest, parsed.by, parsed.comment) == (digest, by, comment)


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("not-a-digest", "'not-a-digest' is not a digest"),
        ("", "'' is not a digest"),
        ("sha256:zz" + "0" * 20, "is not a digest"),
        ("sha256:abc123", "too short a digest: give at least 12 hex characters"),
    ],
)
def test_a_malformed_digest_is_named_as_such_not_as_an_older_spec(given: str, words: str) -> None:
    spec = make_spec("minimal")
    annotations = {
        **approvals_for(spec, ["deployment-manager"]),
        "approval.aideploy.io/system-owner": f"{given}; by=carol; ok",
        **full_checklist(),
    }
    result = _gate(spec, annotations)
    assert result.missing_roles == ["system-owner"]
    assert result.stale_roles == []
    message = result.approvals_message(spec_digest(spec))
    assert words in message and "older spec" not in message
    (owner,) = [a for a in result.approvals if a.role == "system-owner"]
    assert not owner.valid and owner.problem is not None and words in owner.problem
