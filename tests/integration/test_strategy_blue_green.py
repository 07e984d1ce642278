"""Blue-green against the real control plane: what the stable Service selects, followed by
stand-in model servers for the stable and preview Services (tests/support/backend.py)."""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from aideploy.api.digest import release_id, spec_digest
from aideploy.failpoints import ENV as FAILPOINT_ENV
from aideploy.failpoints import EXIT_CODE
from aideploy.kube.records import list_records
from aideploy.kube.rest import Rest
from tests.support import aid
from tests.support.backend import VersionedBackend
from tests.support.cluster import wait_for
from tests.support.kubelet import SimulatedNode
from tests.support.modelserver import ModelServer
from tests.support.operator import OperatorProcess
from tests.support.prometheus import PrometheusServer
from tests.unit.factories import full_checklist, make_spec

pytestmark = pytest.mark.integration

ROLES = ["system-owner", "deployment-manager"]
NAME = "scorer"


def spec(version: str, **extra: Any) -> dict[str, Any]:
    """Verification probes that name no URL: they reach the preview Service's stand-in."""
    golden = {
        "name": "golden",
        "inference": {
            "model": "test-model",
            "timeout": "3s",
            "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [1], "data": [3]}],
            "expect": [{"name": "output-0", "data": [6], "tolerance": 0.001}],
        },
    }
    return make_spec(
        "minimal", version=version, verification={"timeout": "60s", "probes": [golden]}, **extra
    )


def deploy(rest: Rest, namespace: str, body: dict[str, Any]) -> None:
    if rest.request("GET", f"{aid.collection(namespace)}/{NAME}") is None:
        aid.create(rest, namespace, aid.manifest(NAME, body, full_checklist()))
    else:
        aid.merge_patch(rest, namespace, NAME, {"spec": body})
    aid.approve_all(rest, namespace, NAME, ROLES)


def serving(rest: Rest, namespace: str) -> dict[str, Any]:
    found = aid.serving_deployment(rest, namespace, NAME)
    assert found is not None, "the stable Service selects no Deployment"
    return found


def versions_reached(backend: VersionedBackend) -> list[str | None]:
    return [version for _, version in backend.history]


def test_a_wrong_model_is_never_selected_by_the_stable_service(
    rest: Rest,
    namespace: str,
    routed_operator: OperatorProcess,
    node: SimulatedNode,
    backend: VersionedBackend,
) -> None:
    deploy(rest, namespace, spec("1.0.0"))
    status = aid.wait_phase(rest, namespace, NAME, "Succeeded")
    assert status["stableRelease"]["version"] == "1.0.0"
    assert status["traffic"] == [
        {"release": status["stableRelease"]["id"], "version": "1.0.0", "weight": 100}
    ]
    # The switch is written just after the status that reports it: wait for it.
    v1 = wait_for(lambda: serving(rest, namespace), message="the switch to 1.0.0")
    assert v1["metadata"]["name"] == f"{NAME}-{release_id(spec_digest(spec('1.0.0')))}"
    backend.modes["2.0.0"] = "wrong"
    deploy(rest, namespace, spec("2.0.0"))
    wait_for(
        lambda: backend.reaches.get(f"{NAME}-preview") == "2.0.0",
        message="the preview Service to reach the candidate",
    )
    status = aid.wait_phase(rest, namespace, NAME, "RolledBack")
    assert aid.condition(status, "RolledBack")["reason"] == "ProbesRed"
    assert "2.0.0" not in versions_reached(backend), backend.history
    assert serving(rest, namespace)["metadata"]["uid"] == v1["metadata"]["uid"]
    assert serving(rest, namespace)["metadata"]["generation"] == v1["metadata"]["generation"]
    wait_for(
        lambda: (
            [d["metadata"]["name"] for d in aid.deployments_of(rest, namespace, NAME)]
            == [v1["metadata"]["name"]]
        ),
        message="the candidate to be scaled to zero and deleted",
    )
    preview = aid.service(rest, namespace, f"{NAME}-preview")
    assert preview is not None and preview["spec"]["selector"]["aideploy.io/release"] == "none"


def test_a_monitoring_red_switches_back_to_the_running_pods(
    rest: Rest,
    namespace: str,
    routed_operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
    tmp_path: Path,
) -> None:
    deploy(rest, namespace, spec("1.0.0"))
    aid.wait_phase(rest, namespace, NAME, "Succeeded")
    # The switch is written just after the status that reports it: wait for it.
    v1 = wait_for(lambda: serving(rest, namespace), message="the switch to 1.0.0")
    with PrometheusServer([model_server.address], tmp_path / "prometheus") as prometheus:
        signal = {
            "name": "error-rate",
            "prometheus": {
                "url": prometheus.url,
                "query": "sum(rate(model_errors_total[5s]))",
                "green": "<= 0",
                "red": "> 0",
                "noData": "GREEN",
            },
        }
        deploy(
            rest,
            namespace,
            spec("2.0.0", monitoring={"duration": "5m", "interval": "1s", "signals": [signal]}),
        )
        status = aid.wait_phase(rest, namespace, NAME, "Monitoring")
        assert status["stableRelease"]["version"] == "2.0.0"
        wait_for(lambda: backend.deployed_version == "2.0.0", message="the switch to 2.0.0")
        backend.modes["2.0.0"] = "failing"
        stop = threading.Event()

        def users() -> None:
            while not stop.is_set():
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(f"{model_server.url}/v2/health/ready", timeout=1)
                time.sleep(0.1)

        sender = threading.Thread(target=users, daemon=True)
        sender.start()
        try:
            status = aid.wait_phase(rest, namespace, NAME, "RolledBack", timeout=60)
        finally:
            stop.set()
            sender.join(timeout=5)
    assert aid.condition(status, "RolledBack")["reason"] == "SignalRed"
    after = serving(rest, namespace)
    # Back on the very pods that served before: no template change, no new generation.
    assert after["metadata"]["uid"] == v1["metadata"]["uid"]
    assert after["metadata"]["generation"] == v1["metadata"]["generation"]
    assert after["spec"]["template"] == v1["spec"]["template"]
    assert versions_reached(backend)[-2:] == ["2.0.0", "1.0.0"]
    assert status["stableRelease"]["version"] == "1.0.0"


def _as_left_by_an_in_place_operator(rest: Rest, namespace: str) -> None:
    """The cluster and status as the operator version before strategies left them: one
    Deployment named after the object, selected by its name alone, releases naming no
    strategy, and no preview Service."""
    (current,) = aid.deployments_of(rest, namespace, NAME)
    legacy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": NAME,
            "labels": {
                k: v for k, v in current["metadata"]["labels"].items() if k != "aideploy.io/release"
            },
            "annotations": current["metadata"]["annotations"],
            "ownerReferences": current["metadata"]["ownerReferences"],
        },
        "spec": {
            "replicas": current["spec"]["replicas"],
            "selector": {"matchLabels": {"aideploy.io/deployment": NAME}},
            "template": current["spec"]["template"],
        },
    }
    del legacy["spec"]["template"]["metadata"]["labels"]["aideploy.io/release"]
    apps = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    rest.request("POST", apps, body=legacy)
    wait_for(
        lambda: (
            (rest.request("GET", f"{apps}/{NAME}") or {}).get("status", {}).get("availableReplicas")
            == legacy["spec"]["replicas"]
        ),
        message="the in-place Deployment to be available",
    )
    services = f"/api/v1/namespaces/{namespace}/services"
    rest.request(
        "PATCH",
        f"{services}/{NAME}",
        body=[
            {
                "op": "replace",
                "path": "/spec/selector",
                "value": {"aideploy.io/deployment": NAME},
            }
        ],
        content_type="application/json-patch+json",
    )
    rest.request("DELETE", f"{apps}/{current['metadata']['name']}")
    rest.request("DELETE", f"{services}/{NAME}-preview")
    obj = aid.get(rest, namespace, NAME)
    status = obj["status"]
    for key in ("currentRelease", "lastGoodRelease"):
        status[key].pop("strategy", None)
    for key in ("stableRelease", "candidateRelease", "traffic"):
        status.pop(key, None)
    rest.request("PUT", f"{aid.collection(namespace)}/{NAME}/status", body=obj)


def test_an_object_deployed_in_place_keeps_serving_through_the_upgrade(
    rest: Rest,
    namespace: str,
    routed_operator: OperatorProcess,
    node: SimulatedNode,
    backend: VersionedBackend,
) -> None:
    deploy(rest, namespace, spec("1.0.0"))
    aid.wait_phase(rest, namespace, NAME, "Succeeded")
    routed_operator.stop()
    _as_left_by_an_in_place_operator(rest, namespace)
    wait_for(lambda: backend.deployed_version == "1.0.0", message="the legacy Deployment serving")
    since = len(backend.history)
    routed_operator.start()  # the new operator version
    rid = release_id(spec_digest(spec("1.0.0")))
    wait_for(
        lambda: (
            (aid.service(rest, namespace, NAME) or {})["spec"]["selector"].get(
                "aideploy.io/release"
            )
            == rid
        ),
        message="the stable Service to select the adopted release",
    )
    adopted = serving(rest, namespace)
    assert adopted["metadata"]["name"] == NAME  # the same Deployment, relabelled
    assert adopted["spec"]["template"]["metadata"]["labels"]["aideploy.io/release"] == rid
    assert aid.status(rest, namespace, NAME)["stableRelease"]["version"] == "1.0.0"
    # Users were served throughout: the stable Service never reached nothing.
    assert None not in versions_reached(backend)[since:], backend.history
    # The next release goes blue-green beside it.
    deploy(rest, namespace, spec("2.0.0"))
    aid.wait_phase(rest, namespace, NAME, "Succeeded")
    # The switch follows the status write that decided it.
    wait_for(lambda: backend.deployed_version == "2.0.0", message="the switch to 2.0.0")
    assert None not in versions_reached(backend)[since:], backend.history


def test_an_operator_killed_before_the_switch_converges_with_one_switch_and_every_record(
    rest: Rest,
    namespace: str,
    routed_operator: OperatorProcess,
    node: SimulatedNode,
    backend: VersionedBackend,
) -> None:
    deploy(rest, namespace, spec("1.0.0"))
    aid.wait_phase(rest, namespace, NAME, "Succeeded")
    routed_operator.stop()
    routed_operator.start(env_extra={FAILPOINT_ENV: "before-traffic-switch"})
    deploy(rest, namespace, spec("2.0.0"))
    # Dies after the status that says 2.0.0 is live, before the stable Service moved.
    assert routed_operator.wait_exit(timeout=60) == EXIT_CODE
    status = aid.status(rest, namespace, NAME)
    assert status["phase"] == "Succeeded" and status["currentRelease"]["version"] == "2.0.0"
    assert backend.deployed_version == "1.0.0"
    routed_operator.start()
    wait_for(lambda: backend.deployed_version == "2.0.0", message="the switch after restart")
    aid.settled(rest, routed_operator, namespace, NAME)
    assert versions_reached(backend)[-2:] == ["1.0.0", "2.0.0"]  # one switch, not two
    records = [r["spec"]["type"] for r in list_records(rest, namespace, NAME)]
    assert records == [
        "plan",
        "approval",
        "deployment-log",
        "closure",
        "plan",
        "approval",
        "deployment-log",
        "closure",
    ]
