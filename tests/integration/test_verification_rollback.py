"""Verification probes, the go-live decision, automatic rollback and monitoring, against
the real control plane, a real model server process and (for signals) a real Prometheus."""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aideploy.kube.rest import Rest
from tests.support import aid
from tests.support.backend import VersionedBackend
from tests.support.cluster import wait_for
from tests.support.kubelet import SimulatedNode
from tests.support.modelserver import DEFAULT_MODEL, ModelServer, free_port
from tests.support.operator import OperatorProcess
from tests.support.prometheus import PrometheusServer
from tests.unit.factories import full_checklist, make_spec

pytestmark = pytest.mark.integration

ROLES = ["system-owner", "deployment-manager"]
NAME = "scorer"


@pytest.fixture
def operator(routed_operator: OperatorProcess) -> OperatorProcess:
    """Probes name no URL here: verification reaches the preview Service's stand-in and a
    restore's the stable one's, as they would reach the Services in a cluster."""
    return routed_operator


def probes(
    server: ModelServer, timeout: str = "3s", amber_latency: str | None = None
) -> list[dict[str, Any]]:
    del server  # routed by the operator (see `operator`), not named in the spec
    http: dict[str, Any] = {"path": "/v2/health/ready", "timeout": timeout}
    if amber_latency:
        http["amberLatency"] = amber_latency
    return [
        {"name": "ready", "http": http},
        {
            "name": "golden",
            "inference": {
                "model": DEFAULT_MODEL,
                "timeout": timeout,
                "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [2], "data": [1, 2.5]}],
                "expect": [{"name": "output-0", "data": [2, 5.0], "tolerance": 0.001}],
            },
        },
    ]


def spec(server: ModelServer, version: str, **extra: Any) -> dict[str, Any]:
    verification = {"timeout": "60s", "probes": probes(server)}
    verification.update(extra.pop("verification", {}))
    return make_spec("minimal", version=version, verification=verification, **extra)


def phase_of(rest: Rest, namespace: str) -> str | None:
    found: str | None = aid.status(rest, namespace, NAME).get("phase")
    return found


def wait_phase(rest: Rest, namespace: str, phase: str, timeout: float = 45) -> dict[str, Any]:
    return aid.wait_phase(rest, namespace, NAME, phase, timeout)


def deploy(rest: Rest, namespace: str, body_spec: dict[str, Any]) -> None:
    if rest.request("GET", f"{aid.collection(namespace)}/{NAME}") is None:
        aid.create(rest, namespace, aid.manifest(NAME, body_spec, full_checklist()))
    else:
        aid.merge_patch(rest, namespace, NAME, {"spec": body_spec})
    aid.approve_all(rest, namespace, NAME, ROLES)


def template_of(rest: Rest, namespace: str) -> dict[str, Any]:
    deployment = aid.child_deployment(rest, namespace, NAME)
    assert deployment is not None
    template: dict[str, Any] = deployment["spec"]["template"]
    return template


def test_green_goes_through_monitoring_to_succeeded(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
) -> None:
    deploy(
        rest,
        namespace,
        spec(model_server, "1.0.0", monitoring={"duration": "4s", "interval": "1s"}),
    )
    status = wait_phase(rest, namespace, "Monitoring")
    assert status["decision"] == "GREEN"
    assert aid.condition(status, "Verified")["reason"] == "AllProbesGreen"
    assert [p["result"] for p in status["verification"]["probes"]] == ["GREEN", "GREEN"]
    assert "lastGoodRelease" not in status
    status = wait_phase(rest, namespace, "Succeeded", timeout=20)
    assert status["lastGoodRelease"]["version"] == "1.0.0"
    assert aid.condition(status, "Ready")["status"] == "True"


def _first_release(rest: Rest, namespace: str, server: ModelServer) -> dict[str, Any]:
    deploy(rest, namespace, spec(server, "1.0.0"))
    wait_phase(rest, namespace, "Succeeded")
    return template_of(rest, namespace)


def test_red_at_verification_restores_the_previous_template_exactly(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
) -> None:
    good_template = _first_release(rest, namespace, model_server)
    backend.modes["2.0.0"] = "wrong"
    deploy(rest, namespace, spec(model_server, "2.0.0"))
    status = wait_phase(rest, namespace, "RolledBack")
    assert template_of(rest, namespace) == good_template
    assert status["decision"] == "RED"
    rolled_back = aid.condition(status, "RolledBack")
    assert rolled_back["status"] == "True" and rolled_back["reason"] == "ProbesRed"
    assert "golden" in rolled_back["message"]
    assert status["rollback"]["toVersion"] == "1.0.0"
    assert status["rollback"]["restoredDecision"] == "GREEN"
    red_at, done_at = status["rollback"]["redAt"], status["rollback"]["completedAt"]
    print(f"RED at {red_at}, restored Deployment available at {done_at}")
    # It stays rolled back; 2.0.0 is not redeployed again and again.
    generation = aid.child_deployment(rest, namespace, NAME)["metadata"]["generation"]  # type: ignore[index]
    aid.settled(rest, operator, namespace, NAME)
    assert aid.child_deployment(rest, namespace, NAME)["metadata"]["generation"] == generation  # type: ignore[index]
    assert phase_of(rest, namespace) == "RolledBack"


def test_red_to_restored_deployment_latency(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
) -> None:
    """Measures (and prints) the time from the RED decision (status.rollback.redAt, written
    by the operator with millisecond precision) to the moment the restored template is
    seen on the Deployment; asserts only that the restore happened, not how fast. In place,
    where a restore is a new generation (blue-green's switch back needs none)."""
    in_place = {"inPlace": {}}
    deploy(rest, namespace, spec(model_server, "1.0.0", strategy=in_place))
    wait_phase(rest, namespace, "Succeeded")
    good_template = template_of(rest, namespace)
    backend.modes["2.0.0"] = "failing"
    deploy(rest, namespace, spec(model_server, "2.0.0", strategy=in_place))
    wait_for(
        lambda: template_of(rest, namespace) != good_template,
        interval=0.02,
        message="2.0.0 to be rolled out",
    )
    wait_for(
        lambda: template_of(rest, namespace) == good_template,
        interval=0.01,
        message="the restored template",
    )
    seen = datetime.now(UTC)
    status = wait_phase(rest, namespace, "RolledBack")
    red_at = datetime.fromisoformat(status["rollback"]["redAt"].replace("Z", "+00:00"))
    available = datetime.fromisoformat(status["rollback"]["completedAt"].replace("Z", "+00:00"))
    print(
        f"RED -> restored Deployment written: {(seen - red_at).total_seconds():.3f}s; "
        f"RED -> restored Deployment available: {(available - red_at).total_seconds():.3f}s "
        "(includes the simulated node's 0.5s)"
    )
    assert seen >= red_at


def test_amber_is_held_then_proceeds_by_annotation(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
) -> None:
    model_server.set_mode("slow", delay=0.4)
    backend.modes["1.0.0"] = "slow"
    body = spec(model_server, "1.0.0")
    body["verification"]["probes"] = probes(model_server, amber_latency="100ms")[:1]
    deploy(rest, namespace, body)
    status = wait_phase(rest, namespace, "Held")
    assert status["decision"] == "AMBER"
    assert aid.condition(status, "Ready")["reason"] == "AwaitingGoLiveDecision"
    aid.annotate(rest, namespace, NAME, {"aideploy.io/go-live": "proceed"})
    status = wait_phase(rest, namespace, "Succeeded")
    assert aid.condition(status, "Verified")["reason"] == "GoLiveProceed"
    wait_for(
        lambda: (
            "aideploy.io/go-live"
            not in (aid.get(rest, namespace, NAME)["metadata"].get("annotations") or {})
        ),
        message="the go-live annotation to be consumed",
    )


def test_amber_then_rollback_by_annotation(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
) -> None:
    good_template = _first_release(rest, namespace, model_server)
    backend.modes["2.0.0"] = "slow"
    model_server.set_mode("healthy", delay=0.4)
    body = spec(model_server, "2.0.0")
    body["verification"]["probes"] = probes(model_server, amber_latency="100ms")[:1]
    deploy(rest, namespace, body)
    wait_phase(rest, namespace, "Held")
    aid.annotate(rest, namespace, NAME, {"aideploy.io/go-live": "rollback"})
    status = wait_phase(rest, namespace, "RolledBack")
    assert aid.condition(status, "RolledBack")["reason"] == "AmberRollback"
    assert template_of(rest, namespace) == good_template


def test_manual_rollback_during_monitoring(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
) -> None:
    good_template = _first_release(rest, namespace, model_server)
    deploy(
        rest,
        namespace,
        spec(model_server, "2.0.0", monitoring={"duration": "10m", "interval": "30s"}),
    )
    wait_phase(rest, namespace, "Monitoring")
    aid.annotate(rest, namespace, NAME, {"aideploy.io/rollback": "latency complaints from support"})
    status = wait_phase(rest, namespace, "RolledBack")
    rolled_back = aid.condition(status, "RolledBack")
    assert rolled_back["reason"] == "ManualRollback"
    assert "latency complaints from support" in rolled_back["message"]
    assert template_of(rest, namespace) == good_template


def test_first_deployment_going_red_fails_with_zero_replicas(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
) -> None:
    backend.modes["1.0.0"] = "wrong"
    deploy(rest, namespace, spec(model_server, "1.0.0"))
    status = wait_phase(rest, namespace, "Failed")
    assert aid.condition(status, "RolledBack")["reason"] == "NoPreviousRelease"
    assert status.get("traffic") in (None, []) and "stableRelease" not in status
    # Blue-green: the candidate is scaled to zero, then deleted; users never reached it.
    wait_for(
        lambda: aid.deployments_of(rest, namespace, NAME) == [],
        message="the failed candidate to be removed",
    )
    assert aid.serving_deployment(rest, namespace, NAME) is None


@pytest.mark.parametrize("failure", ["hang", "refuse"])
def test_unresponsive_probe_endpoint_is_red_within_its_timeout(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    failure: str,
) -> None:
    if failure == "hang":
        model_server.set_mode("hang")
        url = model_server.url
    else:
        url = f"http://127.0.0.1:{free_port()}"
    body = make_spec(
        "minimal",
        verification={
            "timeout": "60s",
            "probes": [
                {"name": "ready", "http": {"url": url, "path": "/v2/health/ready", "timeout": "2s"}}
            ],
        },
    )
    started = time.monotonic()
    deploy(rest, namespace, body)
    status = wait_phase(rest, namespace, "Failed", timeout=20)
    elapsed = time.monotonic() - started
    probe = status["verification"]["probes"][0]
    assert probe["result"] == "RED"
    print(f"{failure}: approval -> Failed in {elapsed:.2f}s ({probe['message']})")


def test_operator_killed_during_verifying_continues(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    preview_server: ModelServer,
) -> None:
    preview_server.set_mode("slow", delay=3.0)  # where the candidate is verified
    deploy(rest, namespace, spec(model_server, "1.0.0"))
    wait_for(lambda: phase_of(rest, namespace) == "Verifying", message="Verifying")
    operator.kill()
    preview_server.set_mode("healthy")
    operator.start()
    status = wait_phase(rest, namespace, "Succeeded")
    assert status["decision"] == "GREEN"
    aid.settled(rest, operator, namespace, NAME)  # its Events follow the status write
    emitted = aid.emitted(rest, namespace, NAME)
    assert emitted["Verifying"] == 1 and emitted["Succeeded"] == 1, emitted


def test_operator_killed_during_monitoring_keeps_the_window(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
    tmp_path: Path,
) -> None:
    with PrometheusServer([model_server.address], tmp_path / "prometheus") as prometheus:
        signal = {
            "name": "errors",
            "prometheus": {
                "url": prometheus.url,
                "query": "sum(model_errors_total)",
                "green": "<= 0",
                "red": "> 0",
                "noData": "GREEN",
            },
        }
        deploy(
            rest,
            namespace,
            spec(
                model_server,
                "1.0.0",
                monitoring={"duration": "8s", "interval": "1s", "signals": [signal]},
            ),
        )
        first = wait_phase(rest, namespace, "Monitoring")["monitoring"]
        wait_for(
            lambda: aid.status(rest, namespace, NAME)["monitoring"]["checks"] >= 1,
            message="a monitoring check",
        )
        operator.kill()
        time.sleep(2)
        operator.start()
        wait_for(
            lambda: aid.status(rest, namespace, NAME).get("monitoring", {}).get("checks", 0) >= 3,
            message="checks to go on after the restart",
        )
        during = aid.status(rest, namespace, NAME)["monitoring"]
        assert during["startedAt"] == first["startedAt"]
        assert during["endsAt"] == first["endsAt"]
        status = wait_phase(rest, namespace, "Succeeded", timeout=20)
        assert status["lastGoodRelease"]["version"] == "1.0.0"


def test_red_prometheus_signal_during_monitoring_rolls_back(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
    tmp_path: Path,
) -> None:
    good_template = _first_release(rest, namespace, model_server)
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
            spec(
                model_server,
                "2.0.0",
                monitoring={"duration": "5m", "interval": "1s", "signals": [signal]},
            ),
        )
        wait_phase(rest, namespace, "Monitoring")
        backend.modes["2.0.0"] = "failing"
        stop = threading.Event()

        def traffic() -> None:
            while not stop.is_set():
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(f"{model_server.url}/v2/health/ready", timeout=1)
                time.sleep(0.1)

        sender = threading.Thread(target=traffic, daemon=True)
        sender.start()
        try:
            status = wait_phase(rest, namespace, "RolledBack", timeout=60)
        finally:
            stop.set()
            sender.join(timeout=5)
        rolled_back = aid.condition(status, "RolledBack")
        assert rolled_back["reason"] == "SignalRed"
        assert "error-rate" in rolled_back["message"]
        assert template_of(rest, namespace) == good_template
        assert status["rollback"]["toVersion"] == "1.0.0"
