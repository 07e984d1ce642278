"""`kubectl aideploy undo` and `abort` against the real operator: undo asks for the last
good release again through the gate; abort stops a rollout that has not gone live, and the
serving release keeps serving. The commands run in-process, as the cluster's admin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from aideploy.kube.rest import Rest
from tests.integration.test_verification_rollback import (
    NAME,
    ROLES,
    deploy,
    probes,
    spec,
    template_of,
    wait_phase,
)
from tests.support import aid
from tests.support.backend import VersionedBackend
from tests.support.cluster import wait_for
from tests.support.kubelet import SimulatedNode
from tests.support.modelserver import ModelServer
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.integration

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def operator(routed_operator: OperatorProcess) -> OperatorProcess:
    return routed_operator


def without_release_id(template: dict[str, Any]) -> dict[str, Any]:
    labels = {k: v for k, v in template["metadata"]["labels"].items() if k != "aideploy.io/release"}
    return {**template, "metadata": {**template["metadata"], "labels": labels}}


def test_undo_after_a_red_rollout_brings_the_last_good_release_back_through_the_gate(
    rest: Rest,
    namespace: str,
    run: Run,
    operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
) -> None:
    first = spec(model_server, "1.0.0")
    deploy(rest, namespace, first)
    wait_phase(rest, namespace, "Succeeded")
    good_template = template_of(rest, namespace)
    code, _, err = run("undo", NAME)
    assert code == 1 and "already is version 1.0.0" in err  # nothing to undo yet

    backend.modes["2.0.0"] = "wrong"
    deploy(rest, namespace, spec(model_server, "2.0.0"))
    wait_phase(rest, namespace, "RolledBack")
    code, out, _ = run("undo", NAME)
    assert code == 0, out
    assert "asks for version 1.0.0 again" in out and "system-owner" in out
    undone: dict[str, Any] = aid.get(rest, namespace, NAME)["spec"]
    assert undone["model"]["version"] == "1.0.0"
    assert undone["template"] == first["template"]
    # A new spec: the approvals of 2.0.0 do not carry over.
    status = wait_for(
        lambda: (
            (s := aid.status(rest, namespace, NAME)).get("phase") == "AwaitingApproval"
            and s.get("gate", {}).get("missingApprovals") == ROLES
            and s
        ),
        message="the undone spec to wait at the gate",
    )
    assert "Next: kubectl aideploy approve" in status["message"]
    aid.approve_all(rest, namespace, NAME, ROLES)
    status = wait_phase(rest, namespace, "Succeeded")
    assert status["currentRelease"]["version"] == "1.0.0"
    # The same pods as 1.0.0's first time, in a release of their own (a new release id).
    assert without_release_id(template_of(rest, namespace)) == without_release_id(good_template)


def test_abort_while_held_keeps_the_serving_release(
    rest: Rest,
    namespace: str,
    run: Run,
    operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
) -> None:
    deploy(rest, namespace, spec(model_server, "1.0.0"))
    wait_phase(rest, namespace, "Succeeded")
    good_template = template_of(rest, namespace)
    code, _, err = run("abort", NAME, "--reason", "x")
    assert code == 1 and "already live" not in err and "no rollout to abort" not in err
    assert "completed its watch" in err

    backend.modes["2.0.0"] = "slow"
    body = spec(model_server, "2.0.0")
    body["verification"]["probes"] = probes(model_server, amber_latency="100ms")[:1]
    deploy(rest, namespace, body)
    wait_phase(rest, namespace, "Held")
    code, out, _ = run("abort", NAME, "--reason", "wrong day for it")
    assert code == 0 and "1.0.0 keeps serving" in out
    status = wait_phase(rest, namespace, "RolledBack")
    rolled_back = aid.condition(status, "RolledBack")
    assert "aborted: wrong day for it" in rolled_back["message"]
    assert template_of(rest, namespace) == good_template
    code, _, err = run("abort", NAME, "--reason", "again")
    assert code == 1 and "already rolled back" in err
