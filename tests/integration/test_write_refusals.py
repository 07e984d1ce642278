"""Writes the real apiserver refuses (issue 13): a ResourceQuota that allows no Services,
a template the apiserver finds invalid. Each is named on the object (the WritesAccepted
condition, the message, a Warning Event, a metric), the gate's fields stay true, and the
rollout goes on by itself once the write is accepted."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from aideploy.kube.rest import Rest
from tests.integration.test_metrics_scrape import scrape, value
from tests.support import aid
from tests.support.cluster import wait_for
from tests.support.kubelet import SimulatedNode
from tests.support.modelserver import free_port
from tests.support.operator import OperatorProcess
from tests.unit.factories import full_checklist, make_spec

pytestmark = pytest.mark.integration

ROLES = ["system-owner", "deployment-manager"]
NAME = "scorer"
QUOTA = "no-services"


def refusal(rest: Rest, namespace: str, reason: str, says: str) -> dict[str, Any]:
    """Wait until the object reports a refused write with `reason`, whose message says `says`."""

    def check() -> dict[str, Any] | None:
        status = aid.status(rest, namespace, NAME)
        condition = next(
            (c for c in status.get("conditions") or [] if c["type"] == "WritesAccepted"), None
        )
        if condition and condition["status"] == "False" and condition["reason"] == reason:
            return status if says in condition["message"] else None
        return None

    return wait_for(check, timeout=30, message=f"WritesAccepted=False ({reason}, {says!r})")


def accepted(rest: Rest, namespace: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        status = aid.status(rest, namespace, NAME)
        found = [c for c in status.get("conditions") or [] if c["type"] == "WritesAccepted"]
        return status if found and found[0]["status"] == "True" else None

    return wait_for(check, timeout=30, message="WritesAccepted=True")


def test_a_quota_that_refuses_the_service_is_named_and_the_rollout_resumes(
    rest: Rest, namespace: str, operator: OperatorProcess, node: SimulatedNode
) -> None:
    port = free_port()
    operator.stop()
    operator.start(args=["--metrics-port", str(port)])
    rest.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/resourcequotas",
        body={
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": QUOTA},
            "spec": {"hard": {"services": "0"}},
        },
    )
    # Quota admission needs the quota's status (written by the controller-manager) first.
    wait_for(
        lambda: (
            (rest.request("GET", f"/api/v1/namespaces/{namespace}/resourcequotas/{QUOTA}") or {})
            .get("status", {})
            .get("hard")
        ),
        timeout=30,
        message="the ResourceQuota to be in force",
    )
    spec = make_spec("minimal")
    spec["template"]["spec"]["containers"][0]["image"] = "mlserver:quota"
    checklist = {k: v for k, v in full_checklist().items() if not k.endswith("/1.1")}
    aid.create(rest, namespace, aid.manifest(NAME, spec, checklist))
    aid.approve_all(rest, namespace, NAME, ROLES)
    aid.wait_phase(rest, namespace, NAME, "AwaitingApproval")
    aid.annotate(rest, namespace, NAME, full_checklist())  # the last item opens the gate

    status = refusal(rest, namespace, "WorkloadApplyFailed", f"ResourceQuota {QUOTA}")
    assert "missing" not in (status.get("message") or "").lower(), status["message"]
    assert not (status.get("gate") or {}).get("missingChecklist")
    assert aid.service(rest, namespace, NAME) is None
    wait_for(
        lambda: aid.emitted(rest, namespace, NAME)["WorkloadApplyFailed"] >= 1,
        timeout=15,
        message="a WorkloadApplyFailed Event",
    )
    warning = next(
        e for e in aid.events(rest, namespace, NAME) if e["reason"] == "WorkloadApplyFailed"
    )
    assert warning["type"] == "Warning"
    assert QUOTA in warning["message"]
    samples = scrape(port)
    assert value(samples, "aideploy_write_failures_total", kind="Service", reason="quota") >= 1

    rest.request("DELETE", f"/api/v1/namespaces/{namespace}/resourcequotas/{QUOTA}")
    status = accepted(rest, namespace)
    aid.wait_phase(rest, namespace, NAME, "Succeeded")
    service = aid.service(rest, namespace, NAME)
    assert service is not None
    assert "refused" not in (aid.status(rest, namespace, NAME).get("message") or "")


def test_a_template_the_apiserver_rejects_fails_in_words_until_the_spec_is_fixed(
    rest: Rest, namespace: str, operator: OperatorProcess, node: SimulatedNode
) -> None:
    spec = make_spec("minimal")
    good = copy.deepcopy(spec)
    # A container name must be a DNS label: only the apiserver checks that.
    spec["template"]["spec"]["containers"][0]["name"] = "Model_Server"
    aid.create(rest, namespace, aid.manifest(NAME, spec, full_checklist()))
    aid.approve_all(rest, namespace, NAME, ROLES)

    status = refusal(rest, namespace, "WorkloadApplyFailed", "Fix spec.template")
    assert "Model_Server" in status["message"]
    assert aid.deployments_of(rest, namespace, NAME) == []
    ready = aid.condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "WorkloadApplyFailed")

    fixed = aid.get(rest, namespace, NAME)
    fixed["spec"] = good
    rest.request("PUT", f"{aid.collection(namespace)}/{NAME}", body=fixed)
    aid.approve_all(rest, namespace, NAME, ROLES)  # a new spec: approved again
    aid.wait_phase(rest, namespace, NAME, "Succeeded")
    accepted(rest, namespace)
