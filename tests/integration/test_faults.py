"""Faults injected against the real control plane (issue 13): edits racing the operator's
status writes must not throw away what it measured."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aideploy.kube.resources import ConflictError, Resources
from aideploy.kube.rest import Rest
from tests.support import aid
from tests.support.cluster import ClusterHandle, wait_for
from tests.support.kubelet import SimulatedNode
from tests.support.modelserver import DEFAULT_MODEL, ModelServer
from tests.support.operator import OperatorProcess
from tests.unit.factories import full_checklist, make_spec

pytestmark = pytest.mark.integration

ROLES = ["system-owner", "deployment-manager"]
NAME = "scorer"


def inference_requests(server: ModelServer) -> float:
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "model_requests_total" and sample.labels.get("endpoint") == "infer"
    )


def test_a_conflict_on_the_status_write_keeps_the_probe_results(
    rest: Rest,
    namespace: str,
    routed_operator: OperatorProcess,
    simulated_node: SimulatedNode,
    preview_server: ModelServer,
) -> None:
    """Someone edits the object (an annotation) all through a 2 s probe: the status write
    that carries the result is refused with 409. The result is decided again on the fresh
    object, not measured again, so the healthy release goes live well inside its
    verification timeout instead of being rolled back for it."""
    preview_server.set_mode("slow", delay=2.0)
    golden: dict[str, Any] = {
        "name": "golden",
        "inference": {
            "model": DEFAULT_MODEL,
            "timeout": "5s",
            "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [1], "data": [3]}],
            "expect": [{"name": "output-0", "data": [6], "tolerance": 0.001}],
        },
    }
    body = make_spec("minimal", verification={"timeout": "20s", "probes": [golden]})
    aid.create(rest, namespace, aid.manifest(NAME, body, full_checklist()))
    done = threading.Event()

    def edit() -> None:
        count = 0
        while not done.wait(0.2):
            count += 1
            aid.annotate(rest, namespace, NAME, {"example.com/touched": str(count)})

    editor = threading.Thread(target=edit, daemon=True)
    aid.approve_all(rest, namespace, NAME, ROLES)
    editor.start()
    try:
        status = aid.wait_phase(rest, namespace, NAME, "Succeeded", timeout=40)
    finally:
        done.set()
        editor.join(timeout=5)
    assert status["decision"] == "GREEN"
    assert aid.condition(status, "Verified")["reason"] == "AllProbesGreen"
    # Measured once or twice (an edit can land before the first result is decided on),
    # not once per edit.
    assert inference_requests(preview_server) <= 2, inference_requests(preview_server)


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A server that accepts connections (the kernel completes the handshake) and never
    answers: what a hung model server looks like from the probe's side."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def hanging(url: str) -> dict[str, Any]:
    return {"name": "ready", "http": {"url": url, "path": "/v2/health/ready", "timeout": "10m"}}


def test_a_hanging_probe_is_cut_off_at_the_verification_deadline(
    rest: Rest, namespace: str, operator: OperatorProcess, node: SimulatedNode
) -> None:
    with silent_server() as url:
        body = make_spec("minimal", verification={"timeout": "15s", "probes": [hanging(url)]})
        aid.create(rest, namespace, aid.manifest(NAME, body, full_checklist()))
        aid.approve_all(rest, namespace, NAME, ROLES)
        aid.wait_phase(rest, namespace, NAME, "Verifying", timeout=30)
        # Well before the probe's own 10 minutes: the 15 s deadline ends the wait.
        status = aid.wait_phase(rest, namespace, NAME, "Failed", timeout=60)
    assert aid.condition(status, "Ready")["reason"] == "VerificationTimeout"
    assert "the probes did not finish" in status["rollback"]["reason"]


def test_a_persons_rollback_pre_empts_a_hanging_probe(
    rest: Rest, namespace: str, operator: OperatorProcess, node: SimulatedNode
) -> None:
    with silent_server() as url:
        body = make_spec("minimal", verification={"timeout": "10m", "probes": [hanging(url)]})
        aid.create(rest, namespace, aid.manifest(NAME, body, full_checklist()))
        aid.approve_all(rest, namespace, NAME, ROLES)
        aid.wait_phase(rest, namespace, NAME, "Verifying", timeout=30)
        aid.annotate(rest, namespace, NAME, {"aideploy.io/rollback": "it hangs"})
        # Neither the probe's 10 minutes nor the verification's: the person's request.
        status = aid.wait_phase(rest, namespace, NAME, "Failed", timeout=30)
    assert aid.condition(status, "Ready")["reason"] == "ManualRollback"
    assert "it hangs" in status["rollback"]["reason"]


def test_monitoring_keeps_its_cadence_while_someone_edits_the_object_all_the_time(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
) -> None:
    """Three writers patch annotations as fast as they can (about 80 edits a second here)
    all through a 10 s watch with a check every second. Each check's result used to be
    thrown away by the 409 the edits caused, and the watch never ended; an edit the
    decision does not read no longer costs a check, and checks keep a fixed rate."""
    signal = {
        "name": "ready",
        "http": {"url": model_server.url, "path": "/v2/health/ready", "timeout": "2s"},
    }
    body = make_spec(
        "minimal", monitoring={"duration": "10s", "interval": "1s", "signals": [signal]}
    )
    aid.create(rest, namespace, aid.manifest(NAME, body, full_checklist()))
    aid.approve_all(rest, namespace, NAME, ROLES)
    aid.wait_phase(rest, namespace, NAME, "Monitoring", timeout=30)
    done = threading.Event()

    edits = [0]

    def edit(writer: int) -> None:
        while not done.is_set():
            edits[0] += 1
            aid.annotate(rest, namespace, NAME, {f"example.com/touched-{writer}": str(edits[0])})

    editors = [threading.Thread(target=edit, args=(n,), daemon=True) for n in range(3)]
    for editor in editors:
        editor.start()
    try:
        status = aid.wait_phase(rest, namespace, NAME, "Succeeded", timeout=60)
    finally:
        done.set()
        for editor in editors:
            editor.join(timeout=5)
    # About 10 checks are due. A loaded 2-core machine delays some (the suite runs other
    # operators' namespace deletions meanwhile); before, the watch never ended at all.
    assert status["monitoring"]["checks"] >= 5, status["monitoring"]


def test_a_consumed_action_is_removed_only_if_it_still_holds_the_value_acted_upon(
    rest: Rest, namespace: str, crds: list[str]
) -> None:
    """The real apiserver's JSON patch `test`: a rollback asked for again (a new value)
    after the operator read the old one is never erased unseen; unrelated edits since the
    read do not stand in the way."""
    aid.create(rest, namespace, aid.manifest(NAME, make_spec("minimal"), {}))
    aid.annotate(rest, namespace, NAME, {"aideploy.io/rollback": "first"})
    read = aid.get(rest, namespace, NAME)
    resources = Resources(rest)
    aid.annotate(rest, namespace, NAME, {"aideploy.io/rollback": "second"})
    with pytest.raises(ConflictError):
        resources.remove_annotations(read, ("aideploy.io/rollback",))
    assert aid.get(rest, namespace, NAME)["metadata"]["annotations"]["aideploy.io/rollback"] == (
        "second"
    )
    read = aid.get(rest, namespace, NAME)
    aid.annotate(rest, namespace, NAME, {"example.com/touched": "1"})
    resources.remove_annotations(read, ("aideploy.io/rollback",))
    assert "aideploy.io/rollback" not in aid.get(rest, namespace, NAME)["metadata"]["annotations"]


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_the_operator_recovers_by_itself_when_the_control_plane_crashes_mid_rollout(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    kube_cluster: ClusterHandle,
    component: str,
) -> None:
    """The apiserver (or etcd) is killed and started again during the watch. The same
    operator process carries on: the next check lands, the watch ends, one Event per
    transition. The time from the apiserver answering again to the operator's next
    status write is printed (a figure, not a pass mark)."""
    if kube_cluster.local is None:
        pytest.skip("needs the local control plane, which the suite can crash and restart")
    signal = {
        "name": "ready",
        "http": {"url": model_server.url, "path": "/v2/health/ready", "timeout": "2s"},
    }
    body = make_spec(
        "minimal", monitoring={"duration": "40s", "interval": "1s", "signals": [signal]}
    )
    aid.create(rest, namespace, aid.manifest(NAME, body, full_checklist()))
    aid.approve_all(rest, namespace, NAME, ROLES)
    aid.wait_phase(rest, namespace, NAME, "Monitoring", timeout=30)
    wait_for(
        lambda: aid.status(rest, namespace, NAME)["monitoring"]["checks"] >= 2,
        message="two checks before the crash",
    )
    gone = kube_cluster.local.crash_and_restart(component)
    back = time.monotonic()
    before = aid.status(rest, namespace, NAME)["monitoring"]["checks"]
    wait_for(
        lambda: aid.status(rest, namespace, NAME)["monitoring"]["checks"] > before,
        timeout=60,
        message="a check after the restart",
    )
    print(
        f"\n{component} gone for {gone:.1f}s; the operator's next check "
        f"{time.monotonic() - back:.1f}s after it answered again"
    )
    status = aid.wait_phase(rest, namespace, NAME, "Succeeded", timeout=90)
    assert operator.starts == 1 and operator.running, "recovered without a restart of its own"
    assert status.get("decision") in (None, "GREEN")
    aid.settled(rest, operator, namespace, NAME)  # its Events follow the status write
    emitted = aid.emitted(rest, namespace, NAME)
    assert emitted["Monitoring"] == 1 and emitted["Succeeded"] == 1, emitted
