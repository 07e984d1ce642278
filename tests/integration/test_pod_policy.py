"""The operator's pod policy against the real control plane (issue 11, attack 6)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from aideploy.kube.rest import Rest
from tests.support import aid
from tests.support.cluster import ClusterHandle
from tests.support.operator import OperatorProcess
from tests.unit.factories import gate_annotations, make_spec

pytestmark = pytest.mark.integration


@pytest.fixture
def strict_operator(
    kube_cluster: ClusterHandle, namespace: str, crds: list[str], tmp_path: Path
) -> Iterator[OperatorProcess]:
    config = tmp_path / "approvers.yaml"
    policy = {"forbidHostNamespaces": True, "forbidHostPath": True}
    config.write_text(yaml.safe_dump({"podPolicy": policy}))
    process = OperatorProcess(kube_cluster.kubeconfig, namespace, tmp_path / "operator.log")
    process.start(args=["--approvers-config", str(config)])
    try:
        yield process
    finally:
        process.stop()
        print(f"---- operator log ----\n{process.log_text()[-20000:]}")


def test_an_approved_spec_that_breaks_the_pod_policy_is_not_run(
    rest: Rest, namespace: str, strict_operator: OperatorProcess
) -> None:
    spec = make_spec("minimal")
    spec["template"]["spec"].update(
        hostPID=True, volumes=[{"name": "root", "hostPath": {"path": "/"}}]
    )
    aid.create(rest, namespace, aid.manifest("miner", spec, gate_annotations(spec)))
    status = aid.wait_phase(rest, namespace, "miner", "Failed")
    ready = aid.condition(status, "Ready")
    assert ready["reason"] == "InvalidSpec"
    assert "hostPID is true" in ready["message"] and "'root' is a hostPath" in ready["message"]
    assert aid.child_deployment(rest, namespace, "miner") is None
