"""Change types from semver, declared-type contradictions, expedite and substantial modification."""

from __future__ import annotations

from typing import Any

import pytest

from aideploy.api.constants import Role
from aideploy.api.spec import AIDeploymentSpec, ChangeType
from aideploy.logic.change import (
    approval_roles,
    change_type_problem,
    compare_versions,
    derive_change_type,
    effective_change_type,
    expedite_extra_roles,
    expedite_problem,
    parse_version,
    substantial_modification_problems,
)
from aideploy.logic.gate import ApprovalPolicy, evaluate_gate

from .factories import make_spec

INITIAL, MAJOR, MINOR, PATCH = (
    ChangeType.INITIAL,
    ChangeType.MAJOR,
    ChangeType.MINOR,
    ChangeType.PATCH,
)


def spec(risk: str = "minimal", version: str = "2.4.1", **overrides: Any) -> AIDeploymentSpec:
    return AIDeploymentSpec.model_validate(make_spec(risk, version=version, **overrides))


@pytest.mark.parametrize(
    ("new", "last_good", "expected"),
    [
        ("1.0.0", None, INITIAL),
        ("2.4.0", "2.3.1", MINOR),
        ("3.0.0", "2.4.0", MAJOR),
        ("2.3.2", "2.3.1", PATCH),
        ("2.3.1", "2.3.1", PATCH),  # a spec change that keeps the model
        ("2.4.0-rc.1", "2.3.1", MINOR),
        ("3.0.0-alpha", "2.9.9", MAJOR),
        ("2.4.0", "2.4.0-rc.1", PATCH),  # the release of a tested pre-release
        ("2.4.0-rc.2", "2.4.0-rc.1", PATCH),
        ("2.4.0+build.8", "2.4.0+build.7", PATCH),
        ("2.3.1", "2.4.0", MINOR),  # downgrade: the highest differing component
        ("2.9.0", "3.0.0", MAJOR),
        ("2.4.0-rc.1", "2.4.0", PATCH),
        ("0.4.0", "0.3.9", MINOR),
    ],
)
def test_derive_change_type(new: str, last_good: str | None, expected: ChangeType) -> None:
    assert derive_change_type(new, last_good) is expected


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        ("1.0.0", "2.0.0", -1),
        ("2.1.0", "2.0.9", 1),
        ("1.0.0-alpha", "1.0.0", -1),
        # semver 11.4's example chain.
        ("1.0.0-alpha", "1.0.0-alpha.1", -1),
        ("1.0.0-alpha.1", "1.0.0-alpha.beta", -1),
        ("1.0.0-alpha.beta", "1.0.0-beta", -1),
        ("1.0.0-beta", "1.0.0-beta.2", -1),
        ("1.0.0-beta.2", "1.0.0-beta.11", -1),
        ("1.0.0-beta.11", "1.0.0-rc.1", -1),
        ("1.0.0-rc.1", "1.0.0", -1),
        ("1.0.0+a", "1.0.0+b", 0),
        ("1.0.0", "1.0.0", 0),
    ],
)
def test_semver_precedence(a: str, b: str, order: int) -> None:
    assert compare_versions(a, b) == order
    assert compare_versions(b, a) == -order


def test_parse_version_rejects_non_semver() -> None:
    with pytest.raises(ValueError, match="not a semantic version"):
        parse_version("v2.4")
    assert parse_version("2.4.0-rc.1+b7").prerelease == ("rc", "1")


@pytest.mark.parametrize(
    ("declared", "new", "last_good", "problem"),
    [
        (None, "3.0.0", "2.4.0", None),
        (MAJOR, "3.0.0", "2.4.0", None),
        (PATCH, "3.0.0", "2.4.0", "changeType is patch but 2.4.0 → 3.0.0 is a major change."),
        (MINOR, "2.4.1", "2.4.0", None),  # declaring more than the versions say is allowed
        (MAJOR, "2.4.1", "2.4.0", None),
        (PATCH, "2.5.0", "2.4.0", "changeType is patch but 2.4.0 → 2.5.0 is a minor change."),
        (
            PATCH,
            "2.3.1",
            "2.4.0",
            "changeType is patch but 2.4.0 → 2.3.1 (a downgrade) is a minor change.",
        ),
        (INITIAL, "1.0.0", None, None),
        (
            MINOR,
            "1.0.0",
            None,
            "changeType is minor but there is no last good release to compare 1.0.0 with, "
            "so this is an initial deployment.",
        ),
        (
            INITIAL,
            "2.4.1",
            "2.4.0",
            "changeType is initial but 2.4.0 is already deployed; 2.4.0 → 2.4.1 is a patch change.",
        ),
        (
            PATCH,
            "2.4.0",
            "not-a-version",
            "The change type cannot be derived: 'not-a-version' is not a semantic version (like 2.4.0 or 2.4.0-rc.1).",
        ),
    ],
)
def test_change_type_problem(
    declared: ChangeType | None, new: str, last_good: str | None, problem: str | None
) -> None:
    assert change_type_problem(declared, new, last_good) == problem


@pytest.mark.parametrize(
    ("declared", "new", "last_good", "effective"),
    [
        (None, "2.5.0", "2.4.0", MINOR),
        (MAJOR, "2.5.0", "2.4.0", MAJOR),
        (PATCH, "2.5.0", "2.4.0", MINOR),  # a contradiction never lowers the scrutiny
        (PATCH, "1.0.0", None, INITIAL),
    ],
)
def test_effective_change_type(
    declared: ChangeType | None, new: str, last_good: str | None, effective: ChangeType
) -> None:
    assert effective_change_type(declared, new, last_good) is effective


# Expedite ---------------------------------------------------------------------------------

EXPEDITE = {"expedite": {"reason": "CVE-2026-1234 fix"}}


@pytest.mark.parametrize(
    ("overrides", "change_type", "problem"),
    [
        ({}, MAJOR, None),
        (EXPEDITE, PATCH, None),
        (
            EXPEDITE,
            MINOR,
            "spec.expedite is set (CVE-2026-1234 fix) but version 2.4.1 is a minor change; "
            "only patch changes may be expedited. Remove spec.expedite to go through the "
            "deployment window.",
        ),
        (EXPEDITE, INITIAL, "is an initial deployment; only patch changes"),
    ],
)
def test_expedite_problem(
    overrides: dict[str, Any], change_type: ChangeType, problem: str | None
) -> None:
    found = expedite_problem(spec(**overrides), change_type)
    if problem is None or found is None:
        assert found == problem
    else:
        assert problem in found


@pytest.mark.parametrize(
    ("risk", "overrides", "roles"),
    [
        ("high", EXPEDITE, (Role.DEPLOYMENT_MANAGER,)),
        ("limited", EXPEDITE, ()),  # the matrix already asks for the deployment manager
        ("minimal", EXPEDITE, ()),
        ("high", {}, ()),
        # The floor keeps the deployment manager that the override leaves out...
        ("limited", {**EXPEDITE, "approvals": {"required": ["system-owner"]}}, ()),
    ],
)
def test_expedite_extra_roles(
    risk: str, overrides: dict[str, Any], roles: tuple[Role, ...]
) -> None:
    assert expedite_extra_roles(spec(risk, **overrides)) == roles


def test_expedite_needs_the_deployment_manager_even_where_the_gate_is_lowered() -> None:
    # ...and where the operator lets the override lower the gate, the expedite adds it back.
    lowered = spec("limited", **EXPEDITE, approvals={"required": ["system-owner"]})
    assert expedite_extra_roles(lowered, lowered=True) == (Role.DEPLOYMENT_MANAGER,)


@pytest.mark.parametrize(
    ("risk", "overrides", "lowered"),
    [
        ("high", EXPEDITE, False),
        ("high", {}, False),
        ("minimal", EXPEDITE, False),
        ("limited", {**EXPEDITE, "approvals": {"required": ["system-owner"]}}, False),
        ("limited", {**EXPEDITE, "approvals": {"required": ["system-owner"]}}, True),
    ],
)
def test_approval_roles_are_the_roles_the_gate_requires(
    risk: str, overrides: dict[str, Any], lowered: bool
) -> None:
    """What the CLI tells an approver agrees with the gate, as the machine calls it."""
    parsed = spec(risk, **overrides)
    policy = ApprovalPolicy(lower_gate_for=frozenset({parsed.risk_level} if lowered else ()))
    gate = evaluate_gate(
        parsed,
        {},
        "sha256:" + "0" * 64,
        extra_roles=expedite_extra_roles(parsed, lowered),
        policy=policy,
    )
    assert [r.value for r in approval_roles(parsed, lowered)] == gate.required_roles
    if overrides:
        assert Role.DEPLOYMENT_MANAGER in approval_roles(parsed, lowered)


# Substantial modification (PROC-AI-DEPLOY-001 7.2) -----------------------------------------

STATE_IT = (
    "A major change of a high-risk system must state spec.compliance.substantialModification "
    "(true or false, from the substantial change assessment)."
)
SAME_CA = (
    "substantialModification is true, so a new conformity assessment is required; "
    "CA-2026-014 is the one recorded with version 2.3.1."
)


def high(substantial: bool | None, assessment: str | None = "CA-2026-014") -> AIDeploymentSpec:
    base = make_spec("high", version="3.0.0")
    base["compliance"]["substantialModification"] = substantial
    base["compliance"]["conformityAssessment"] = assessment
    return AIDeploymentSpec.model_validate(base)


@pytest.mark.parametrize(
    ("deployment", "change_type", "last_ca", "problems"),
    [
        (high(None), MAJOR, "CA-2026-014", [STATE_IT]),
        (high(False), MAJOR, "CA-2026-014", []),
        (high(True), MAJOR, "CA-2026-014", [SAME_CA]),
        (high(True, "CA-2026-031"), MAJOR, "CA-2026-014", []),
        (high(True, " CA-2026-014 "), MAJOR, "CA-2026-014", [SAME_CA]),
        (high(True), MAJOR, None, []),  # nothing recorded to compare with
        (
            high(True, None),
            MAJOR,
            "CA-2026-014",
            [
                "substantialModification is true, so a new conformity assessment is required; "
                "spec.compliance.conformityAssessment does not name one."
            ],
        ),
        (high(None), MINOR, "CA-2026-014", []),  # only major changes must state it
        (high(True), MINOR, "CA-2026-014", [SAME_CA]),  # but a stated yes always counts
        (spec("limited", version="3.0.0"), MAJOR, None, []),
    ],
)
def test_substantial_modification(
    deployment: AIDeploymentSpec,
    change_type: ChangeType,
    last_ca: str | None,
    problems: list[str],
) -> None:
    assert substantial_modification_problems(deployment, change_type, "2.3.1", last_ca) == problems
