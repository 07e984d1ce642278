"""The "Next:" sentences: the exact command that unblocks an object, as a table."""

from __future__ import annotations

import pytest

from aideploy.api.constants import Phase
from aideploy.logic import next_step
from aideploy.logic.machine import decide
from aideploy.logic.workload import Owner
from tests.unit.factories import make_spec
from tests.unit.simulator import Simulator

HERE = Owner("fraud", "default", "u1")
ML = Owner("fraud", "ml", "u1")


@pytest.mark.parametrize(
    ("owner", "roles", "expected"),
    [
        (HERE, [], ""),
        (HERE, ["qa-lead"], "Next: kubectl aideploy approve fraud --role qa-lead."),
        (
            ML,
            ["system-owner", "deployment-manager"],
            "Next: kubectl aideploy approve fraud -n ml --role system-owner; "
            "kubectl aideploy approve fraud -n ml --role deployment-manager.",
        ),
    ],
)
def test_approvals(owner: Owner, roles: list[str], expected: str) -> None:
    assert next_step.approvals(owner, roles) == expected


@pytest.mark.parametrize(
    ("missing", "invalid", "expected"),
    [
        ([], [], ""),
        (["2.3"], [], "Next: kubectl aideploy check fraud -n ml 2.3 --evidence <evidence>."),
        (
            ["1.1"],
            ["4.2 (EU Declaration ready) cannot be n/a for high-risk deployments"],
            "Next: kubectl aideploy check fraud -n ml 1.1 4.2 --evidence <evidence>.",
        ),
        (
            ["1.1", "1.2", "1.3", "1.4"],
            [],
            "Next: kubectl aideploy check fraud -n ml -f checklist.yaml, a file with the 4 "
            "items, each 'ITEM: yes <evidence>' (or 'n/a <reason>' where allowed).",
        ),
    ],
)
def test_checklist(missing: list[str], invalid: list[str], expected: str) -> None:
    assert next_step.checklist(ML, missing, invalid) == expected


def test_compliance_promotion_go_live_and_window() -> None:
    assert next_step.compliance([]) == ""
    assert next_step.compliance(["conformityAssessment"]) == (
        "Next: state spec.compliance.conformityAssessment in the manifest and apply it; "
        "approvals are then given again."
    )
    assert next_step.promotion(ML, "fraud-staging") == (
        "Next: kubectl aideploy status fraud-staging -n ml says what the staging object waits for."
    )
    assert next_step.go_live(HERE) == "Next: kubectl aideploy go-live fraud proceed (or rollback)."
    assert "spec.expedite" in next_step.window(True)
    assert "spec.expedite" not in next_step.window(False)


def test_every_blocked_gate_condition_and_the_status_say_what_to_run() -> None:
    """A new object with nothing given: each blocking condition, and the message, end with
    the command for its own part."""
    plan = decide(Simulator(make_spec("minimal"), annotations={}).observe())
    status = plan.status
    assert status.phase == Phase.AWAITING_APPROVAL
    conditions = {c.type: c for c in status.conditions}
    assert "Next: kubectl aideploy approve" in conditions["Approved"].message
    assert "--role system-owner" in conditions["Approved"].message
    assert "Next: kubectl aideploy check" in conditions["ChecklistComplete"].message
    assert "-f checklist.yaml" in conditions["ChecklistComplete"].message
    assert "Next:" not in conditions["ComplianceVerified"].message  # not blocking
    assert (status.message or "").count("Next:") == 2
