"""The operator SIGKILLed at the phases the other restart tests do not reach (Held, Verifying
with a probe that hangs, RollingBack, between the status that reports a switch and its
Events), each ending with nothing lost and nothing duplicated: the records are a gap-free
chain that verifies, each record once, one Event per transition, and the Deployment's pod
template exactly the release's."""

from __future__ import annotations

from typing import Any

import pytest

from aideploy.failpoints import ENV as FAILPOINT_ENV
from aideploy.failpoints import EXIT_CODE
from aideploy.kube.records import list_records
from aideploy.kube.rest import Rest
from aideploy.records import verify_chain
from tests.integration.test_verification_rollback import NAME, deploy, probes, spec
from tests.support import aid
from tests.support.backend import VersionedBackend
from tests.support.cluster import wait_for
from tests.support.kubelet import SimulatedNode
from tests.support.modelserver import ModelServer
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def operator(routed_operator: OperatorProcess) -> OperatorProcess:
    return routed_operator


def amber_spec(server: ModelServer, version: str) -> dict[str, Any]:
    body = spec(server, version)
    body["verification"]["probes"] = probes(server, amber_latency="100ms")[:1]
    return body


def test_killed_while_held_takes_the_go_live_given_meanwhile(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    node: SimulatedNode,
    preview_server: ModelServer,
    backend: VersionedBackend,
) -> None:
    preview_server.set_mode("slow", delay=0.4)
    backend.modes["1.0.0"] = "slow"
    body = amber_spec(preview_server, "1.0.0")
    deploy(rest, namespace, body)
    aid.wait_phase(rest, namespace, NAME, "Held")
    operator.kill()
    aid.annotate(rest, namespace, NAME, {"aideploy.io/go-live": "proceed"})  # nobody watches
    operator.start()
    aid.wait_phase(rest, namespace, NAME, "Succeeded")
    phases = aid.assert_nothing_lost(rest, operator, namespace, NAME, body)
    assert {"Held", "Succeeded"} <= set(phases) and max(phases.values()) == 1, phases


def test_killed_while_a_probe_hangs_keeps_the_verification_deadline(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
) -> None:
    backend.modes["1.0.0"] = "hang"  # what the candidate's preview Service reaches
    body = spec(model_server, "1.0.0", verification={"timeout": "8s"})
    body["verification"]["probes"] = probes(model_server, timeout="10m")[:1]
    deploy(rest, namespace, body)
    verifying = aid.wait_phase(rest, namespace, NAME, "Verifying")
    operator.kill()
    operator.start()
    status = aid.wait_phase(rest, namespace, NAME, "Failed", timeout=40)
    # Timed from the verification's start as stored, not from the restart.
    assert status["verification"]["startedAt"] == verifying["verification"]["startedAt"]
    assert aid.condition(status, "Verified")["reason"] == "VerificationTimeout", (
        status["message"],
        status["conditions"],
    )
    phases = aid.assert_nothing_lost(rest, operator, namespace, NAME, body)
    assert {"Verifying", "Failed"} <= set(phases) and max(phases.values()) == 1, phases


def test_killed_while_rolling_back_finishes_the_rollback(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
) -> None:
    first = spec(model_server, "1.0.0")
    deploy(rest, namespace, first)
    aid.wait_phase(rest, namespace, NAME, "Succeeded")
    backend.modes["2.0.0"] = "failing"
    backend.modes["1.0.0"] = "hang"  # the restore's verification waits on it
    deploy(rest, namespace, spec(model_server, "2.0.0"))
    aid.wait_phase(rest, namespace, NAME, "RollingBack")
    operator.kill()
    backend.modes["1.0.0"] = "healthy"
    operator.start()
    status = aid.wait_phase(rest, namespace, NAME, "RolledBack")
    assert status["rollback"]["restoredDecision"] == "GREEN"
    phases = aid.assert_nothing_lost(rest, operator, namespace, NAME, first)
    once = {p: phases[p] for p in ("Succeeded", "RollingBack", "RolledBack")}
    assert once == {"Succeeded": 1, "RollingBack": 1, "RolledBack": 1}, phases


def test_killed_between_the_switch_status_and_its_events_posts_each_event_once(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
) -> None:
    deploy(rest, namespace, spec(model_server, "1.0.0"))
    aid.wait_phase(rest, namespace, NAME, "Succeeded")
    operator.stop()
    operator.start(env_extra={FAILPOINT_ENV: "before-traffic-switch"})
    second = spec(model_server, "2.0.0")
    deploy(rest, namespace, second)
    # Dies after the status that says 2.0.0 is live, before the switch and its Events.
    assert operator.wait_exit(timeout=60) == EXIT_CODE
    assert aid.status(rest, namespace, NAME)["phase"] == "Succeeded"
    operator.start()
    aid.wait_phase(rest, namespace, NAME, "Succeeded")
    aid.settled(rest, operator, namespace, NAME)
    # The backend polls the Service: wait for it to see the switch the restart made.
    wait_for(lambda: backend.deployed_version == "2.0.0", message="the switch to 2.0.0")
    events = [
        e
        for e in aid.events(rest, namespace, NAME)
        if e["reason"] == "Succeeded" and "2.0.0" in e["message"]
    ]
    assert sum(int(e.get("count") or 1) for e in events) == 1, events
    records = list_records(rest, namespace, NAME)
    assert verify_chain(records, aid.status(rest, namespace, NAME).get("latestRecord")) == []
