"""Canary steps against the real control plane, through a Gateway API HTTPRoute (its CRD
installed by the test): the weights the operator writes, promotion by the plugin, and RED
at an analysis step putting the weight back to 0."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aideploy.cli.main import main as plugin
from aideploy.kube.crds import apply_crds
from aideploy.kube.rest import Rest
from aideploy.logic.httproute import current_weights
from tests.support import aid
from tests.support.backend import VersionedBackend
from tests.support.cluster import ClusterHandle, wait_for
from tests.support.kubelet import SimulatedNode
from tests.support.operator import OperatorProcess
from tests.unit.factories import full_checklist, make_spec

pytestmark = pytest.mark.integration

ROLES = ["system-owner", "deployment-manager"]
NAME = "scorer"
ROUTE = "scorer-route"
GATEWAY_API_CRDS = Path(__file__).parent.parent / "support" / "gateway-api"


@pytest.fixture(scope="session")
def httproute_crd(rest: Rest) -> list[str]:
    return apply_crds(rest, GATEWAY_API_CRDS)


def routes(namespace: str) -> str:
    return f"/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/httproutes"


def create_route(rest: Rest, namespace: str) -> None:
    rest.request(
        "POST",
        routes(namespace),
        body={
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": ROUTE},
            "spec": {
                "parentRefs": [{"name": "public"}],
                "rules": [
                    {
                        "backendRefs": [
                            {"name": NAME, "port": 8080, "weight": 100},
                            {"name": f"{NAME}-preview", "port": 8080, "weight": 0},
                        ]
                    }
                ],
            },
        },
    )


def weights(rest: Rest, namespace: str) -> tuple[int, int]:
    route = rest.request("GET", f"{routes(namespace)}/{ROUTE}")
    assert route is not None
    found = current_weights(route, NAME, f"{NAME}-preview")
    assert found is not None
    return found.stable, found.canary


def spec(version: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    golden = {
        "name": "golden",
        "inference": {
            "model": "test-model",
            "timeout": "3s",
            "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [1], "data": [3]}],
            "expect": [{"name": "output-0", "data": [6], "tolerance": 0.001}],
        },
    }
    body = make_spec(
        "minimal", version=version, verification={"timeout": "60s", "probes": [golden]}
    )
    body["strategy"] = {
        "canary": {"steps": steps, "trafficRouting": {"gatewayAPI": {"httpRoute": ROUTE}}}
    }
    return body


def deploy(rest: Rest, namespace: str, body: dict[str, Any]) -> None:
    if rest.request("GET", f"{aid.collection(namespace)}/{NAME}") is None:
        aid.create(rest, namespace, aid.manifest(NAME, body, full_checklist()))
    else:
        aid.merge_patch(rest, namespace, NAME, {"spec": body})
    aid.approve_all(rest, namespace, NAME, ROLES)


def test_canary_weights_follow_the_steps_and_go_back_to_zero_on_red(
    rest: Rest,
    namespace: str,
    httproute_crd: list[str],
    routed_operator: OperatorProcess,
    node: SimulatedNode,
    backend: VersionedBackend,
    kube_cluster: ClusterHandle,
) -> None:
    create_route(rest, namespace)
    deploy(rest, namespace, spec("1.0.0", [{"setWeight": 30}, {"pause": {}}]))
    aid.wait_phase(rest, namespace, NAME, "Succeeded")  # a first release: everyone at once
    assert weights(rest, namespace) == (100, 0)

    # 2.0.0: 30%, then a pause until promoted with the plugin.
    deploy(rest, namespace, spec("2.0.0", [{"setWeight": 30}, {"pause": {}}]))
    wait_for(lambda: weights(rest, namespace) == (70, 30), message="the route at 70/30")
    status = wait_for(
        lambda: (
            (s := aid.status(rest, namespace, NAME))
            and aid.condition(s, "Ready")["reason"] == "CanaryPaused"
            and s
        ),
        message="the canary to pause",
    )
    assert [(t["version"], t["weight"]) for t in status["traffic"]] == [
        ("1.0.0", 70),
        ("2.0.0", 30),
    ]
    assert backend.deployed_version == "1.0.0"  # the stable Service: still 1.0.0
    assert backend.reaches.get(f"{NAME}-preview") == "2.0.0"  # the canary's backendRef
    cli = ["--kubeconfig", str(kube_cluster.kubeconfig), "-n", namespace, "promote", NAME]
    assert plugin(cli) == 0
    aid.wait_phase(rest, namespace, NAME, "Succeeded")
    wait_for(lambda: weights(rest, namespace) == (100, 0), message="the route back to 100/0")
    wait_for(lambda: backend.deployed_version == "2.0.0", message="the stable Service on 2.0.0")
    assert plugin(cli) == 1  # nothing waits to be promoted now: refused, not claimed

    # 3.0.0 answers wrongly once it has users: RED at its analysis step.
    steps = [{"setWeight": 40}, {"pause": {"duration": "3s"}}, {"analysis": {}}]
    deploy(rest, namespace, spec("3.0.0", steps))
    wait_for(lambda: weights(rest, namespace) == (60, 40), message="the route at 60/40")
    backend.modes["3.0.0"] = "wrong"
    status = aid.wait_phase(rest, namespace, NAME, "RolledBack")
    assert aid.condition(status, "RolledBack")["reason"] == "AnalysisRed"
    assert weights(rest, namespace) == (100, 0)
    assert backend.deployed_version == "2.0.0"
    wait_for(
        lambda: len(aid.deployments_of(rest, namespace, NAME)) == 1,
        message="the canary to be removed",
    )
    assert status["canary"]["weight"] == 40  # the weight it had reached, on record
