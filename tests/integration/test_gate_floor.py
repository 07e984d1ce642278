"""The procedure is the gate's floor (issue 11, attack 1): an AIDeployment cannot lower
its own gate; only the operator's configuration can, and the record then says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from aideploy.kube.records import list_records
from aideploy.kube.rest import Rest
from tests.support import aid
from tests.support.cluster import ClusterHandle, wait_for
from tests.support.operator import OperatorProcess
from tests.unit.factories import make_spec

pytestmark = pytest.mark.integration

LEFT_OUT = ["system-owner", "compliance-officer", "risk-manager", "governance-committee"]


def lowered_spec() -> dict[str, object]:
    """A high-risk spec whose author asks for one approval and one checklist item."""
    return make_spec("high", approvals={"required": ["qa-lead"]}, checklist={"required": ["1.1"]})


def create_with_one_approval(rest: Rest, namespace: str) -> None:
    aid.create(
        rest,
        namespace,
        aid.manifest("fraud", lowered_spec(), {"checklist.aideploy.io/1.1": "yes PR-1"}),
    )
    aid.approve_all(rest, namespace, "fraud", ["qa-lead"])


def test_a_spec_cannot_lower_its_own_gate(
    rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    create_with_one_approval(rest, namespace)
    obj = aid.settled(rest, operator, namespace, "fraud")
    status = obj["status"]
    assert status["phase"] == "AwaitingApproval"
    assert status["gate"]["missingApprovals"] == LEFT_OUT
    assert "1.2" in status["gate"]["missingChecklist"]
    assert status["gate"]["belowFloor"][: len(LEFT_OUT)] == LEFT_OUT
    assert status["gate"].get("floorLowered", False) is False
    assert "Only the operator's configuration" in aid.condition(status, "Approved")["message"]
    assert aid.child_deployment(rest, namespace, "fraud") is None


@pytest.fixture
def lowering_operator(
    kube_cluster: ClusterHandle, namespace: str, crds: list[str], tmp_path: Path
) -> Iterator[OperatorProcess]:
    config = tmp_path / "approvers.yaml"
    config.write_text(yaml.safe_dump({"lowerGate": {"riskLevels": ["high"]}}))
    process = OperatorProcess(kube_cluster.kubeconfig, namespace, tmp_path / "operator.log")
    process.start(args=["--approvers-config", str(config)])
    try:
        yield process
    finally:
        process.stop()
        print(f"---- operator log ----\n{process.log_text()[-20000:]}")


def test_the_operators_policy_lowers_the_gate_on_record(
    rest: Rest, namespace: str, lowering_operator: OperatorProcess
) -> None:
    create_with_one_approval(rest, namespace)
    aid.wait_phase(rest, namespace, "fraud", "Deploying")
    approval = wait_for(
        lambda: next(
            (r for r in list_records(rest, namespace, "fraud") if r["spec"]["type"] == "approval"),
            None,
        ),
        message="the approval record",
    )
    floor = approval["spec"]["content"]["gateFloor"]
    assert floor["loweredByOperatorPolicy"] is True and floor["riskLevel"] == "high"
    assert floor["omitted"][: len(LEFT_OUT)] == LEFT_OUT
    assert "checklist item 1.2" in floor["omitted"]
