"""The approval/checklist gate and the rollout, against the real control plane with the
operator running as its own process."""

from __future__ import annotations

import time
from typing import Any

import pytest

from aideploy.api.constants import CHECKLIST_ITEMS
from aideploy.kube.rest import Rest
from tests.support import aid
from tests.support.cluster import wait_for
from tests.support.kubelet import SimulatedNode
from tests.support.operator import OperatorProcess
from tests.unit.factories import COMPLIANCE, full_checklist, make_spec

pytestmark = pytest.mark.integration

ROLES = {
    "high": [
        "system-owner",
        "compliance-officer",
        "risk-manager",
        "qa-lead",
        "governance-committee",
    ],
    "limited": ["system-owner", "qa-lead", "deployment-manager"],
    "minimal": ["system-owner", "deployment-manager"],
}


wait_phase = aid.wait_phase


def test_no_approvals_waits_names_missing_roles_and_creates_no_workload(
    rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    aid.create(rest, namespace, aid.manifest("churn", make_spec("limited"), full_checklist()))
    status = wait_phase(rest, namespace, "churn", "AwaitingApproval")
    approved = aid.condition(status, "Approved")
    assert approved["status"] == "False"
    assert approved["reason"] == "ApprovalsMissing"
    for role in ROLES["limited"]:
        assert role in approved["message"]
    assert status["gate"]["missingApprovals"] == ROLES["limited"]
    assert aid.condition(status, "ChecklistComplete")["status"] == "True"
    assert aid.child_deployment(rest, namespace, "churn") is None
    wait_for(
        lambda: [
            e for e in aid.events(rest, namespace, "churn") if e["reason"] == "AwaitingApproval"
        ],
        message="an AwaitingApproval Event",
    )


@pytest.mark.parametrize("risk", ["high", "limited", "minimal"])
def test_each_risk_level_requires_its_roles(
    rest: Rest, namespace: str, operator: OperatorProcess, risk: str
) -> None:
    aid.create(rest, namespace, aid.manifest("model", make_spec(risk), full_checklist()))
    status = wait_phase(rest, namespace, "model", "AwaitingApproval")
    assert status["gate"]["missingApprovals"] == ROLES[risk]
    # All but the last role: still blocked, and only the last one is named.
    aid.approve_all(rest, namespace, "model", ROLES[risk][:-1])
    wait_for(
        lambda: (
            aid.status(rest, namespace, "model")["gate"]["missingApprovals"] == ROLES[risk][-1:]
        ),
        message="only the last role to be missing",
    )
    assert aid.child_deployment(rest, namespace, "model") is None


def test_complete_gate_deploys_the_template_and_reaches_ready(
    rest: Rest, namespace: str, operator: OperatorProcess, simulated_node: SimulatedNode
) -> None:
    simulated_node.pause()
    spec = make_spec("minimal")
    aid.create(rest, namespace, aid.manifest("scorer", spec, full_checklist()))
    wait_phase(rest, namespace, "scorer", "AwaitingApproval")
    approved_at = time.monotonic()
    aid.approve_all(rest, namespace, "scorer", ROLES["minimal"])
    deployment = wait_for(
        lambda: aid.child_deployment(rest, namespace, "scorer"), message="the child Deployment"
    )
    print(f"approval -> Deployment created: {time.monotonic() - approved_at:.2f}s")
    owner = aid.get(rest, namespace, "scorer")
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == owner["metadata"]["uid"]
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]
    assert pod["spec"]["containers"][0]["image"] == "mlserver:1"
    assert pod["metadata"]["labels"]["aideploy.io/model"] == "fraud-scorer"
    assert pod["metadata"]["labels"]["aideploy.io/model-version"] == "1.0.0"
    service = rest.request("GET", f"/api/v1/namespaces/{namespace}/services/scorer")
    assert service is not None and service["spec"]["ports"][0]["port"] == 8080
    status = wait_phase(rest, namespace, "scorer", "Deploying")
    assert aid.condition(status, "Deployed")["status"] == "False"
    simulated_node.resume()
    status = wait_phase(rest, namespace, "scorer", "Succeeded")
    assert aid.condition(status, "Deployed")["status"] == "True"
    assert aid.condition(status, "Ready")["status"] == "True"
    assert status["currentRelease"]["version"] == "1.0.0"
    assert status["lastGoodRelease"]["digest"] == status["specDigest"]
    aid.settled(rest, operator, namespace, "scorer")  # its Events follow the status write
    emitted = aid.emitted(rest, namespace, "scorer")
    for phase in ("AwaitingApproval", "Deploying", "Succeeded"):
        assert emitted[phase] == 1, emitted


def test_spec_change_makes_approvals_stale_while_old_version_keeps_serving(
    rest: Rest, namespace: str, operator: OperatorProcess, simulated_node: SimulatedNode
) -> None:
    aid.create(rest, namespace, aid.manifest("scorer", make_spec("minimal"), full_checklist()))
    aid.approve_all(rest, namespace, "scorer", ROLES["minimal"])
    wait_phase(rest, namespace, "scorer", "Succeeded")
    before = aid.child_deployment(rest, namespace, "scorer")
    assert before is not None
    aid.merge_patch(rest, namespace, "scorer", {"spec": {"model": {"version": "1.1.0"}}})
    status = wait_phase(rest, namespace, "scorer", "AwaitingApproval")
    assert status["gate"]["staleApprovals"] == ROLES["minimal"]
    assert "older spec" in aid.condition(status, "Approved")["message"]
    assert "Version 1.0.0 keeps serving" in status["message"]
    after = aid.child_deployment(rest, namespace, "scorer")
    assert after is not None
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"]["template"] == before["spec"]["template"]
    # Approving the new spec rolls out 1.1.0.
    aid.approve_all(rest, namespace, "scorer", ROLES["minimal"])
    wait_for(
        lambda: (
            (aid.child_deployment(rest, namespace, "scorer") or {})["spec"]["template"]["metadata"][
                "labels"
            ]["aideploy.io/model-version"]
            == "1.1.0"
        ),
        message="the Deployment to carry 1.1.0",
    )
    status = wait_phase(rest, namespace, "scorer", "Succeeded")
    assert status["currentRelease"]["version"] == "1.1.0"


@pytest.mark.parametrize(
    ("what", "checklist_change", "words"),
    [
        ("missing item", {"checklist.aideploy.io/2.5": None}, "2.5"),
        (
            "n/a where not allowed",
            {"checklist.aideploy.io/1.3": "n/a tests are slow"},
            "1.3 (Unit tests passed) cannot be n/a",
        ),
    ],
)
def test_incomplete_checklist_blocks(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    what: str,
    checklist_change: dict[str, str | None],
    words: str,
) -> None:
    annotations = {**full_checklist(), **checklist_change}
    clean = {k: v for k, v in annotations.items() if v is not None}
    aid.create(rest, namespace, aid.manifest("model", make_spec("minimal"), clean))
    aid.approve_all(rest, namespace, "model", ROLES["minimal"])

    def blocked_by_checklist() -> dict[str, Any] | None:
        status = aid.status(rest, namespace, "model")
        gate = status.get("gate") or {}
        return status if gate.get("blockedBy") == ["checklist"] else None

    status = wait_for(blocked_by_checklist, message=f"the checklist to block ({what})")
    checklist = aid.condition(status, "ChecklistComplete")
    assert checklist["status"] == "False"
    assert words in checklist["message"]
    assert status["phase"] == "AwaitingApproval"
    assert aid.child_deployment(rest, namespace, "model") is None


def test_high_risk_without_compliance_fields_blocks(
    rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    spec = make_spec("high")
    del spec["compliance"]
    spec["compliance"] = {"conformityAssessment": COMPLIANCE["conformityAssessment"]}
    aid.create(rest, namespace, aid.manifest("fraud", spec, full_checklist()))
    aid.approve_all(rest, namespace, "fraud", ROLES["high"])

    def compliance_blocks() -> dict[str, Any] | None:
        status = aid.status(rest, namespace, "fraud")
        return status if (status.get("gate") or {}).get("blockedBy") == ["compliance"] else None

    status = wait_for(compliance_blocks, message="compliance to be the only block")
    message = aid.condition(status, "ComplianceVerified")["message"]
    for field in (
        "declarationOfConformity",
        "euDatabaseRegistration",
        "instructionsForUse",
        "humanOversight",
    ):
        assert field in message
    assert "conformityAssessment" not in message
    assert aid.child_deployment(rest, namespace, "fraud") is None


def test_spec_that_cannot_work_gets_a_condition_and_a_warning_event(
    rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    spec = make_spec("minimal", template={"spec": {"containers": []}})
    aid.create(rest, namespace, aid.manifest("broken", spec, full_checklist()))
    aid.approve_all(rest, namespace, "broken", ROLES["minimal"])
    status = wait_phase(rest, namespace, "broken", "Failed")
    ready = aid.condition(status, "Ready")
    assert ready["reason"] == "InvalidSpec"
    assert "needs a container" in ready["message"]
    warnings = wait_for(
        lambda: [e for e in aid.events(rest, namespace, "broken") if e["type"] == "Warning"],
        message="a Warning Event",
    )
    assert "needs a container" in warnings[0]["message"]
    assert aid.child_deployment(rest, namespace, "broken") is None
    # The operator stays up and quiet: no crash loop, no repeated Events.
    aid.settled(rest, operator, namespace, "broken")
    warned = [e for e in aid.events(rest, namespace, "broken") if e["type"] == "Warning"]
    assert sum(e["count"] for e in warned) == 1, warned
    assert operator.log_text().count("Traceback") == 0


def test_reapplying_the_same_manifest_changes_nothing(
    rest: Rest, namespace: str, operator: OperatorProcess, simulated_node: SimulatedNode
) -> None:
    body = aid.manifest("scorer", make_spec("minimal"), full_checklist())
    aid.create(rest, namespace, body)
    aid.approve_all(rest, namespace, "scorer", ROLES["minimal"])
    wait_phase(rest, namespace, "scorer", "Succeeded")
    settled = aid.settled(rest, operator, namespace, "scorer")
    # kubectl apply of the unchanged manifest: same spec and annotations.
    patched = aid.merge_patch(
        rest,
        namespace,
        "scorer",
        {"spec": body["spec"], "metadata": {"annotations": full_checklist()}},
    )
    operator.wait_reconciled(namespace, "scorer", patched["metadata"]["resourceVersion"])
    again = aid.get(rest, namespace, "scorer")
    assert again["metadata"]["generation"] == settled["metadata"]["generation"]
    assert again["metadata"]["resourceVersion"] == settled["metadata"]["resourceVersion"]
    assert again["status"] == settled["status"]


def test_operator_restart_mid_rollout_neither_duplicates_nor_loses_work(
    rest: Rest, namespace: str, operator: OperatorProcess, simulated_node: SimulatedNode
) -> None:
    simulated_node.pause()
    aid.create(rest, namespace, aid.manifest("scorer", make_spec("minimal"), full_checklist()))
    aid.approve_all(rest, namespace, "scorer", ROLES["minimal"])
    wait_phase(rest, namespace, "scorer", "Deploying")
    # Settled first: the process has also decided on its own Deployment's first event, so
    # the status compared below is the one it would keep, not one a step behind.
    aid.settled(rest, operator, namespace, "scorer")
    deployment = aid.child_deployment(rest, namespace, "scorer")
    assert deployment is not None
    operator.kill()
    status_before = aid.status(rest, namespace, "scorer")
    operator.start()
    aid.settled(rest, operator, namespace, "scorer")  # the new process lists and reconciles
    after = aid.child_deployment(rest, namespace, "scorer")
    assert after is not None
    assert after["metadata"]["uid"] == deployment["metadata"]["uid"]
    assert after["metadata"]["generation"] == deployment["metadata"]["generation"]
    assert aid.status(rest, namespace, "scorer") == status_before
    simulated_node.resume()
    wait_phase(rest, namespace, "scorer", "Succeeded")
    aid.settled(rest, operator, namespace, "scorer")  # its Events follow the status write
    emitted = aid.emitted(rest, namespace, "scorer")
    assert emitted["Deploying"] == 1 and emitted["Succeeded"] == 1, emitted


def test_restart_while_awaiting_approval_then_approve(
    rest: Rest, namespace: str, operator: OperatorProcess, simulated_node: SimulatedNode
) -> None:
    aid.create(rest, namespace, aid.manifest("scorer", make_spec("minimal"), full_checklist()))
    wait_phase(rest, namespace, "scorer", "AwaitingApproval")
    operator.kill()
    aid.approve_all(rest, namespace, "scorer", ROLES["minimal"])  # while nobody watches
    operator.start()
    wait_phase(rest, namespace, "scorer", "Succeeded")


def test_every_checklist_item_is_required_by_default(
    rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    aid.create(rest, namespace, aid.manifest("model", make_spec("minimal")))
    status = wait_phase(rest, namespace, "model", "AwaitingApproval")
    assert status["gate"]["missingChecklist"] == list(CHECKLIST_ITEMS)


def test_an_unreadable_status_field_is_rewritten_not_fatal(
    rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    aid.create(rest, namespace, aid.manifest("odd", make_spec("minimal"), full_checklist()))
    wait_phase(rest, namespace, "odd", "AwaitingApproval")
    obj = aid.get(rest, namespace, "odd")
    obj["status"]["decision"] = "green-ish"  # as a hand edit or another version might
    rest.request("PUT", f"{aid.collection(namespace)}/odd/status", body=obj)
    wait_for(
        lambda: "decision" not in aid.status(rest, namespace, "odd"),
        message="the unreadable field to be dropped",
    )
    assert aid.status(rest, namespace, "odd")["phase"] == "AwaitingApproval"
    assert "could not be read" in operator.log_text()
