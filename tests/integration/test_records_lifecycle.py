"""The operator writes the procedure's records at its record points, in order, as one hash
chain per AIDeployment, exactly once each even when it crashes right after a write."""

from __future__ import annotations

from typing import Any

import pytest

from aideploy.cli.main import main as plugin
from aideploy.failpoints import ENV as FAILPOINT_ENV
from aideploy.failpoints import EXIT_CODE
from aideploy.kube.records import list_records
from aideploy.kube.rest import Rest
from aideploy.records import verify_chain
from tests.support import aid
from tests.support.backend import VersionedBackend
from tests.support.cluster import ClusterHandle, wait_for
from tests.support.kubelet import SimulatedNode
from tests.support.modelserver import ModelServer
from tests.support.operator import OperatorProcess
from tests.unit.factories import full_checklist, make_spec

pytestmark = pytest.mark.integration

ROLES = ["system-owner", "deployment-manager"]
NAME = "scorer"


def spec(server: ModelServer, version: str, routed: bool = False, **extra: Any) -> dict[str, Any]:
    """`routed`: the probe names no URL, and reaches the preview Service's stand-in."""
    probe = aid.golden_probe(server)
    if routed:
        del probe["inference"]["url"]
    return make_spec("minimal", version=version, verification={"probes": [probe]}, **extra)


def wait_phase(rest: Rest, namespace: str, phase: str, timeout: float = 40) -> dict[str, Any]:
    return aid.wait_phase(rest, namespace, NAME, phase, timeout)


def records_of(rest: Rest, namespace: str) -> list[dict[str, Any]]:
    return list_records(rest, namespace, NAME)


def types(records: list[dict[str, Any]]) -> list[str]:
    return [r["spec"]["type"] for r in records]


def run_plugin(kube_cluster: ClusterHandle, namespace: str, *args: str) -> int:
    return plugin(["--kubeconfig", str(kube_cluster.kubeconfig), "-n", namespace, *args])


def test_full_lifecycle_writes_the_records_in_order_with_a_valid_chain(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    simulated_node: SimulatedNode,
    model_server: ModelServer,
    kube_cluster: ClusterHandle,
    capsys: pytest.CaptureFixture[str],
) -> None:
    aid.create(
        rest,
        namespace,
        aid.manifest(
            NAME,
            spec(model_server, "1.0.0", monitoring={"duration": "2s", "interval": "1s"}),
            full_checklist(),
        ),
    )
    aid.approve_all(rest, namespace, NAME, ROLES)
    status = wait_phase(rest, namespace, "Succeeded")
    records = records_of(rest, namespace)
    assert types(records) == ["plan", "approval", "deployment-log", "closure"]
    assert [r["spec"]["recordId"] for r in records] == [
        "REC-AI-DEPLOY-001",
        "REC-AI-DEPLOY-002",
        "REC-AI-DEPLOY-003",
        "REC-AI-DEPLOY-CLOSE",
    ]
    assert [r["spec"]["sequence"] for r in records] == [1, 2, 3, 4]
    assert verify_chain(records, status.get("latestRecord")) == []
    assert status["latestRecord"]["sequence"] == 4
    approval = records[1]["spec"]["content"]
    assert {a["role"] for a in approval["approvals"] if a["valid"]} >= set(ROLES)
    log = records[2]["spec"]["content"]
    assert log["decision"] == "GREEN" and log["probes"][0]["name"] == "golden"
    for record in records:
        assert "ownerReferences" not in record["metadata"]
        assert record["spec"]["retainUntil"] > record["spec"]["createdAt"]
    # Events are posted just after the status that reports the step: wait for them.
    wait_for(
        lambda: aid.emitted(rest, namespace, NAME)["RecordWritten"] == 4,
        message="an Event for each of the four records",
    )
    assert run_plugin(kube_cluster, namespace, "verify", NAME) == 0
    assert "intact" in capsys.readouterr().out.lower()


def test_rollback_writes_rec_004_and_the_chain_stays_valid(
    rest: Rest,
    namespace: str,
    routed_operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
) -> None:
    first = spec(model_server, "1.0.0", routed=True)
    aid.create(rest, namespace, aid.manifest(NAME, first, full_checklist()))
    aid.approve_all(rest, namespace, NAME, ROLES)
    wait_phase(rest, namespace, "Succeeded")
    backend.modes["2.0.0"] = "wrong"
    aid.merge_patch(rest, namespace, NAME, {"spec": spec(model_server, "2.0.0", routed=True)})
    aid.approve_all(rest, namespace, NAME, ROLES)
    status = wait_phase(rest, namespace, "RolledBack")
    records = records_of(rest, namespace)
    assert types(records) == [
        "plan",
        "approval",
        "deployment-log",
        "closure",
        "plan",
        "approval",
        "deployment-log",
        "rollback",
        "closure",
    ]
    rollback = records[7]["spec"]
    assert rollback["recordId"] == "REC-AI-DEPLOY-004"
    assert rollback["content"]["from"]["version"] == "2.0.0"
    assert rollback["content"]["to"]["version"] == "1.0.0"
    assert rollback["content"]["trigger"] == "ProbesRed"
    assert rollback["content"]["restoredDecision"] == "GREEN"
    assert verify_chain(records, status.get("latestRecord")) == []


def test_deleting_the_aideployment_keeps_its_records(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    simulated_node: SimulatedNode,
    model_server: ModelServer,
) -> None:
    aid.create(rest, namespace, aid.manifest(NAME, spec(model_server, "1.0.0"), full_checklist()))
    aid.approve_all(rest, namespace, NAME, ROLES)
    wait_phase(rest, namespace, "Succeeded")
    before = records_of(rest, namespace)
    rest.request("DELETE", f"{aid.collection(namespace)}/{NAME}")
    wait_for(
        lambda: rest.request("GET", f"{aid.collection(namespace)}/{NAME}") is None,
        message="the AIDeployment to be gone",
    )
    after = records_of(rest, namespace)
    assert [r["metadata"]["uid"] for r in after] == [r["metadata"]["uid"] for r in before]
    assert verify_chain(after) == []
    # Re-created under the same name: its own chain, the old one untouched.
    aid.create(rest, namespace, aid.manifest(NAME, spec(model_server, "1.0.0"), full_checklist()))
    aid.approve_all(rest, namespace, NAME, ROLES)
    status = wait_phase(rest, namespace, "Succeeded")
    new_uid = aid.get(rest, namespace, NAME)["metadata"]["uid"]
    mine = list_records(rest, namespace, NAME, new_uid)
    assert types(mine) == ["plan", "approval", "deployment-log", "closure"]
    assert verify_chain(mine, status.get("latestRecord")) == []
    old_uid = before[0]["spec"]["deployment"]["uid"]
    assert [r["metadata"]["uid"] for r in list_records(rest, namespace, NAME, old_uid)] == [
        r["metadata"]["uid"] for r in before
    ]


@pytest.mark.parametrize(
    "failpoint", ["after-record:approval", "after-record:deployment-log", "after-record:closure"]
)
def test_a_crash_right_after_a_record_neither_duplicates_nor_loses_it(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    simulated_node: SimulatedNode,
    model_server: ModelServer,
    failpoint: str,
) -> None:
    operator.stop()
    operator.start(env_extra={FAILPOINT_ENV: failpoint})
    aid.create(rest, namespace, aid.manifest(NAME, spec(model_server, "1.0.0"), full_checklist()))
    aid.approve_all(rest, namespace, NAME, ROLES)
    assert operator.wait_exit(timeout=60) == EXIT_CODE
    crashed_type = failpoint.split(":")[1]
    assert crashed_type in types(records_of(rest, namespace))
    operator.start()
    status = wait_phase(rest, namespace, "Succeeded")
    records = records_of(rest, namespace)
    assert types(records) == ["plan", "approval", "deployment-log", "closure"]
    assert verify_chain(records, status.get("latestRecord")) == []
