"""Two operator replicas peered for high availability (issue 13's last fault): the active
one is SIGKILLed mid-rollout, as when its node dies. It cannot say goodbye, so the standby
waits for its keep-alive to expire, takes over within the peering lifetime, and finishes
the rollout with nothing lost and nothing duplicated. While the active one lived, the
standby reconciled nothing."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aideploy.kube.rest import Rest
from tests.support import aid, peering
from tests.support.cluster import ClusterHandle, wait_for
from tests.support.kubelet import SimulatedNode
from tests.support.modelserver import ModelServer
from tests.support.operator import OperatorProcess, running
from tests.unit.factories import full_checklist, make_spec

pytestmark = pytest.mark.integration

NAME = "scorer"
ROLES = ["system-owner", "deployment-manager"]
PEERING = "aideploy"
#: Short, so that the test waits seconds rather than kopf's default minute.
LIFETIME = 10
#: For kopf to notice the expiry and resume its watches, and for the first reconcile,
#: on a loaded machine.
MARGIN = 10
ACTIVE_PRIORITY, STANDBY_PRIORITY = 200, 100
#: kopf's words (logged under --verbose) for a replica's watch of AIDeployments: every
#: replica starts paused until it has read the peering object, and resumes when no live
#: peer outranks it.
PAUSED = "Pausing the watch-stream for aideployments"
RESUMED = "Resuming the watch-stream for aideployments"


def replica(
    kube_cluster: ClusterHandle, namespace: str, log: Path, priority: int
) -> OperatorProcess:
    peered = ["--peering", PEERING, "--peering-lifetime", str(LIFETIME)]
    return OperatorProcess(
        kube_cluster.kubeconfig, namespace, log, base_args=[*peered, "--priority", str(priority)]
    )


@pytest.fixture
def replicas(
    kube_cluster: ClusterHandle, rest: Rest, namespace: str, crds: list[str], tmp_path: Path
) -> Iterator[tuple[OperatorProcess, OperatorProcess]]:
    """(active, standby): the higher priority works; it starts first, as a rollout's old
    pod would have, and the standby joins once it is working."""
    peering.create_peering(rest, namespace, PEERING)
    active = replica(kube_cluster, namespace, tmp_path / "active.log", ACTIVE_PRIORITY)
    standby = replica(kube_cluster, namespace, tmp_path / "standby.log", STANDBY_PRIORITY)
    with contextlib.ExitStack() as stack:
        stack.enter_context(running(active))
        active.wait_logged(RESUMED)
        stack.enter_context(running(standby))
        standby.wait_logged(PAUSED)
        wait_for(
            lambda: len(peering.peers(rest, namespace, PEERING)) == 2,
            message="both replicas' keep-alives in the peering object",
        )
        yield active, standby


def monitored_spec(server: ModelServer) -> dict[str, Any]:
    """A watch long enough for the takeover to land inside it: the kill comes a few checks
    in, the takeover at most LIFETIME + MARGIN later, and the standby still checks after."""
    signal = {"name": "ready", "http": {"url": server.url, "path": "/v2/health/ready"}}
    return make_spec(
        "minimal", monitoring={"duration": "30s", "interval": "1s", "signals": [signal]}
    )


def test_the_standby_takes_over_a_rollout_when_the_active_replica_is_killed(
    rest: Rest,
    namespace: str,
    replicas: tuple[OperatorProcess, OperatorProcess],
    node: SimulatedNode,
    model_server: ModelServer,
) -> None:
    active, standby = replicas
    keepalives = peering.peers(rest, namespace, PEERING)
    assert sorted(p["priority"] for p in keepalives.values()) == [STANDBY_PRIORITY, ACTIVE_PRIORITY]
    assert {p["lifetime"] for p in keepalives.values()} == {LIFETIME}, keepalives

    body = monitored_spec(model_server)
    aid.create(rest, namespace, aid.manifest(NAME, body, full_checklist()))
    aid.approve_all(rest, namespace, NAME, ROLES)
    aid.wait_phase(rest, namespace, NAME, "Monitoring", timeout=30)
    wait_for(
        lambda: aid.status(rest, namespace, NAME)["monitoring"]["checks"] >= 2,
        message="two monitoring checks by the active replica",
    )
    before = aid.get(rest, namespace, NAME)
    version = before["metadata"]["resourceVersion"]
    active.wait_reconciled(namespace, NAME, version)
    # The whole way from creation to monitoring, with the standby live: it did nothing.
    assert standby.reconciled_versions(namespace, NAME) == [], "both replicas reconciled"

    active.kill()
    killed = time.monotonic()
    standby.wait_logged(RESUMED, timeout=LIFETIME + MARGIN)
    resumed = time.monotonic() - killed
    standby.wait_reconciled(namespace, NAME, version, timeout=LIFETIME + MARGIN)
    took_over = time.monotonic() - killed
    print(
        f"\nactive replica killed; the standby resumed after {resumed:.1f}s and reconciled "
        f"after {took_over:.1f}s (peering lifetime {LIFETIME}s)"
    )
    assert took_over <= LIFETIME + MARGIN

    status = aid.wait_phase(rest, namespace, NAME, "Succeeded", timeout=90)
    monitoring = before["status"]["monitoring"]
    # The same watch carried on (not started again), and the standby checked in it too.
    assert status["monitoring"]["startedAt"] == monitoring["startedAt"], status["monitoring"]
    assert status["monitoring"]["checks"] > monitoring["checks"], status["monitoring"]
    phases = aid.assert_nothing_lost(rest, standby, namespace, NAME, body)
    assert {"Monitoring", "Succeeded"} <= set(phases) and max(phases.values()) == 1, phases
