"""Every manifest in examples/ is accepted by the real apiserver and handled by the
operator; `kubectl get aid` shows the printer columns the API promises."""

from __future__ import annotations

from typing import Any

import pytest

from aideploy.kube.rest import Rest
from tests.support import aid
from tests.support.cluster import wait_for
from tests.support.kubelet import SimulatedNode
from tests.support.operator import OperatorProcess
from tests.unit.factories import full_checklist

pytestmark = pytest.mark.integration

EXPECTED = {
    "minimal-risk.yaml": ["system-owner", "deployment-manager"],
    "limited-risk.yaml": ["system-owner", "qa-lead", "deployment-manager"],
    "high-risk.yaml": [
        "system-owner",
        "compliance-officer",
        "risk-manager",
        "qa-lead",
        "governance-committee",
    ],
    "verified-rollout.yaml": ["system-owner", "qa-lead", "deployment-manager"],
    "production-window.yaml": ["system-owner", "qa-lead", "deployment-manager"],
    "staging.yaml": ["system-owner", "qa-lead", "deployment-manager"],
}
# Applied on top of high-risk.yaml once that is live (see test_expedited_patch_example).
UPDATES = ["expedited-patch.yaml"]


def test_examples_directory_is_covered() -> None:
    assert sorted(
        p.name
        for p in aid.EXAMPLES_DIR.glob("*.yaml")
        if aid.load_example(p.name).get("kind") == "AIDeployment"
    ) == sorted([*EXPECTED, *UPDATES])


@pytest.mark.parametrize("file_name", sorted(EXPECTED))
def test_example_is_applied_and_awaits_its_approvals(
    rest: Rest, namespace: str, operator: OperatorProcess, file_name: str
) -> None:
    body = aid.load_example(file_name)
    name = body["metadata"]["name"]
    aid.create(rest, namespace, body)

    def waiting() -> dict[str, object] | None:
        status = aid.status(rest, namespace, name)
        return status if status.get("phase") == "AwaitingApproval" else None

    status = wait_for(waiting, message=f"{name} to await approval")
    assert status["gate"]["missingApprovals"] == EXPECTED[file_name]  # type: ignore[index]
    assert aid.child_deployment(rest, namespace, name) is None


def test_printer_columns(rest: Rest, namespace: str, operator: OperatorProcess) -> None:
    body = aid.load_example("high-risk.yaml")
    aid.create(rest, namespace, body)
    wait_for(lambda: aid.status(rest, namespace, "fraud-scorer").get("phase"), message="a phase")
    # What `kubectl get aid` prints: the server-side Table built from the printer columns.
    table = rest.request(
        "GET", aid.collection(namespace), accept="application/json;as=Table;v=v1beta1;g=meta.k8s.io"
    )
    assert table is not None
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names == [
        "Name", "Model", "Version", "Risk", "Serving", "Phase", "Decision", "Age", "Message"
    ]  # fmt: skip
    # Message is for -o wide only (priority 1).
    assert [c["priority"] for c in table["columnDefinitions"]][-2:] == [0, 1]
    row = table["rows"][0]["cells"]
    assert row[:4] == ["fraud-scorer", "fraud-scorer", "2.4.0", "high"]
    assert row[4] in (None, "")  # nothing served yet
    assert row[5] == "AwaitingApproval"
    assert "Next: kubectl aideploy approve fraud-scorer" in row[8]


def test_expedited_patch_example(
    rest: Rest, namespace: str, operator: OperatorProcess, simulated_node: SimulatedNode
) -> None:
    base = aid.load_example("high-risk.yaml")
    base["metadata"]["annotations"] = full_checklist()
    aid.create(rest, namespace, base)
    aid.approve_all(rest, namespace, "fraud-scorer", EXPECTED["high-risk.yaml"])
    wait_for(
        lambda: aid.status(rest, namespace, "fraud-scorer").get("phase") == "Succeeded",
        message="2.4.0 to go live",
    )
    patch = aid.load_example("expedited-patch.yaml")
    aid.merge_patch(rest, namespace, "fraud-scorer", {"spec": patch["spec"]})
    aid.approve_all(rest, namespace, "fraud-scorer", EXPECTED["high-risk.yaml"])

    def waiting_for_the_deployment_manager() -> dict[str, Any] | None:
        status = aid.status(rest, namespace, "fraud-scorer")
        gate = status.get("gate") or {}
        return status if gate.get("missingApprovals") == ["deployment-manager"] else None

    status = wait_for(waiting_for_the_deployment_manager, message="the expedite's extra role")
    assert status["changeType"] == "patch"
    aid.approve_all(rest, namespace, "fraud-scorer", ["deployment-manager"])
    wait_for(
        lambda: (
            aid.status(rest, namespace, "fraud-scorer").get("currentRelease", {}).get("version")
            == "2.4.1"
        ),
        message="the patch to roll out outside the window",
    )
