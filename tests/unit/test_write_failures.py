"""Refused writes (logic/write_failure.py, carry_out.py): each is named in words on the
object, nothing is lost or doubled once the write goes through, and retries back off."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aideploy.api.constants import ConditionType, Phase, Reason
from aideploy.kube.rest import ApiError
from aideploy.logic.write_failure import WriteFailure, describe, retry_after
from aideploy.records import verify_chain

from .factories import full_checklist, gate_annotations, make_spec
from .simulator import Simulator

QUOTA = (
    'services "fraud-scorer-preview" is forbidden: exceeded quota: no-services, '
    "requested: services=1, used: services=0, limited: services=0"
)
WEBHOOK = (
    'admission webhook "validate.kyverno.svc-fail" denied the request: policy '
    "disallow-latest: images must be pinned"
)
POLICY = (
    "deployments.apps \"x\" is forbidden: ValidatingAdmissionPolicy 'no-host' with binding "
    "'no-host-binding' denied request: hostNetwork is not allowed"
)
RANGE = "Internal error occurred: failed to allocate a serviceIP: range is full"


@pytest.mark.parametrize(
    ("kind", "code", "detail", "reason", "cause", "says"),
    [
        ("Service", 403, QUOTA, Reason.WORKLOAD_APPLY_FAILED, "quota", "ResourceQuota no-services in namespace ml"),
        ("Deployment", 400, WEBHOOK, Reason.WORKLOAD_APPLY_FAILED, "admission", "validate.kyverno.svc-fail: policy disallow-latest"),
        ("Deployment", 422, POLICY, Reason.WORKLOAD_APPLY_FAILED, "admission", "ValidatingAdmissionPolicy no-host: hostNetwork"),
        ("Service", 500, RANGE, Reason.WORKLOAD_APPLY_FAILED, "ip-range", "--service-cluster-ip-range"),
        ("Deployment", 422, 'Deployment.apps "x" is invalid: spec.template.spec.containers[0].resources.limits: Invalid value: "lots"', Reason.WORKLOAD_APPLY_FAILED, "invalid", "Fix spec.template"),
        ("status", 413, "Request entity too large: limit is 3145728", Reason.STATUS_WRITE_FAILED, "too-large", "ConfigMap"),
        ("AIDeploymentRecord", 403, 'aideploymentrecords.aideploy.io is forbidden: User "system:serviceaccount:x:op" cannot create resource', Reason.RECORD_WRITE_FAILED, "forbidden", "chart's RBAC"),
        ("HTTPRoute", 404, 'httproutes.gateway.networking.k8s.io "web" not found', Reason.WORKLOAD_APPLY_FAILED, "not-found", "the CRD of the kind"),
        ("Deployment", 409, "the object has been modified", Reason.WORKLOAD_APPLY_FAILED, "conflict", "other writer"),
        ("AIDeploymentRecord", 409, "record r-1 already exists for another object or event", Reason.RECORD_WRITE_FAILED, "conflict", "never overwritten"),
        ("Deployment", 503, "the server is currently unable to handle the request", Reason.WORKLOAD_APPLY_FAILED, "unavailable", "apiserver's health"),
        ("Deployment", 429, "too many requests", Reason.WORKLOAD_APPLY_FAILED, "unavailable", "retried with backoff"),
        ("Service", None, "Read timed out. (read timeout=30)", Reason.WORKLOAD_APPLY_FAILED, "unreachable", "did not answer"),
    ],
)  # fmt: skip
def test_each_refusal_names_what_refused_it_and_what_to_do(
    kind: str, code: int | None, detail: str, reason: Reason, cause: str, says: str
) -> None:
    api_reason = "AlreadyExists" if "already exists" in detail else "Reason"
    failure = WriteFailure(kind, "x", "apply", code, api_reason, detail)
    described = describe(failure, "ml")
    assert (described.reason, described.cause) == (reason, cause)
    assert says in described.message
    assert described.message.startswith(f"The apply of {failure.target} was refused")


@pytest.mark.parametrize(
    ("attempts", "seconds"), [(1, 1), (2, 2), (3, 4), (9, 256), (10, 300), (10_000, 300)]
)
def test_retries_back_off_to_five_minutes(attempts: int, seconds: int) -> None:
    assert retry_after(attempts) == timedelta(seconds=seconds)


def _gate_nearly_open() -> Simulator:
    spec = make_spec()
    annotations = {k: v for k, v in gate_annotations(spec).items() if not k.endswith("/1.1")}
    sim = Simulator(spec, annotations)
    sim.settle()
    assert sim.phase() == Phase.AWAITING_APPROVAL
    assert "1.1" in (sim.status.message or "")
    return sim


def test_a_refused_deployment_leaves_no_stale_gate_claim_and_clears_when_accepted() -> None:
    sim = _gate_nearly_open()
    sim.cluster.refuse[("apply", "Deployment")] = ApiError(422, "Invalid", WEBHOOK)
    sim.annotations.update(full_checklist())  # the last item: the gate opens
    sim.reconcile()

    assert [f.kind for f in sim.refusals] == ["Deployment"]
    status = sim.status
    # The rollout did not start, so the phase stays; nothing claims the item is missing.
    assert status.phase == Phase.AWAITING_APPROVAL
    assert "1.1" not in (status.message or "")
    assert status.gate is None
    assert sim.condition(ConditionType.CHECKLIST_COMPLETE) == ("True", Reason.CHECKLIST_COMPLETE)
    for type_ in (ConditionType.READY, ConditionType.DEPLOYED, ConditionType.WRITES_ACCEPTED):
        assert sim.condition(type_) == ("False", Reason.WORKLOAD_APPLY_FAILED)
    assert "validate.kyverno.svc-fail" in (status.message or "")
    assert ("WorkloadApplyFailed", "Warning") in sim.events
    assert not sim.cluster.deployments

    # The same refusal again writes nothing new (no status churn that would wake a loop).
    writes = sim.status_writes
    sim.reconcile()
    assert sim.status_writes == writes

    del sim.cluster.refuse[("apply", "Deployment")]
    sim.settle()
    assert sim.phase() not in (None, Phase.AWAITING_APPROVAL)
    assert sim.condition(ConditionType.WRITES_ACCEPTED) == ("True", Reason.WRITES_ACCEPTED)
    assert "kyverno" not in (sim.status.message or "")
    # The approval record was written once, though the transition was taken twice.
    assert sim.records.count("approval") == 1
    assert sim.records.count("plan") == 1


def test_a_refused_record_deploys_nothing_and_is_written_once_later() -> None:
    sim = _gate_nearly_open()
    sim.cluster.refuse[("create", "AIDeploymentRecord")] = ApiError(
        403, "Forbidden", 'User "op" cannot create resource "aideploymentrecords"'
    )
    sim.annotations.update(full_checklist())
    sim.reconcile()

    assert sim.condition(ConditionType.WRITES_ACCEPTED) == ("False", Reason.RECORD_WRITE_FAILED)
    assert not sim.cluster.deployments, "nothing is rolled out before it is on record"
    assert ("RecordWriteFailed", "Warning") in sim.events

    del sim.cluster.refuse[("create", "AIDeploymentRecord")]
    sim.settle()
    assert sim.cluster.deployments
    assert verify_chain(sim.cluster.record_objects) == []
    assert [r for r in sim.records if r in ("plan", "approval")] == ["plan", "approval"]


def test_a_service_refused_after_the_status_write_is_reported_and_retried() -> None:
    sim = _gate_nearly_open()
    sim.cluster.refuse[("apply", "Service")] = ApiError(403, "Forbidden", QUOTA)
    sim.annotations.update(full_checklist())
    sim.settle()

    status = sim.status
    assert sim.serving_version() is None, "no Service, so nobody is served"
    assert sim.condition(ConditionType.WRITES_ACCEPTED) == ("False", Reason.WORKLOAD_APPLY_FAILED)
    assert "ResourceQuota no-services in namespace ml" in (status.message or "")
    assert any("no-services" in m for m in sim.event_messages)
    # Users are not on 1.0.0, whatever the rollout got to: not Ready.
    assert sim.condition(ConditionType.READY) == ("False", Reason.WORKLOAD_APPLY_FAILED)
    assert sim.events.count(("Deploying", "Normal")) == 1, "the phase Event went out once"
    writes = sim.status_writes
    sim.reconcile()
    assert sim.status_writes == writes, "a refusal that persists rewrites nothing"

    del sim.cluster.refuse[("apply", "Service")]
    sim.settle()
    assert sim.phase() in (Phase.MONITORING, Phase.SUCCEEDED)
    assert sim.condition(ConditionType.WRITES_ACCEPTED) == ("True", Reason.WRITES_ACCEPTED)
    assert sim.serving_version() == "1.0.0"
    assert "refused" not in (sim.status.message or "")
    assert sim.condition(ConditionType.READY)[0] == "True"


def test_monitoring_does_not_end_while_users_cannot_be_moved_to_the_release() -> None:
    signal = {"name": "ready", "http": {"url": "http://m/ready"}}
    spec = make_spec(monitoring={"duration": "1m", "interval": "30s", "signals": [signal]})
    sim = Simulator(spec)
    sim.settle()
    assert sim.phase() == Phase.MONITORING
    assert sim.serving_version() == "1.0.0"
    sim.cluster.refuse[("apply", "Service")] = ApiError(403, "Forbidden", QUOTA)
    # Someone else points the stable Service elsewhere; the operator's fix is refused.
    sim.cluster.services["fraud-scorer"]["spec"]["selector"] = {"app": "elsewhere"}
    sim.advance(30)  # a check: the operator finds the Service wrong, and cannot fix it
    sim.settle()
    assert sim.condition(ConditionType.WRITES_ACCEPTED)[0] == "False"
    sim.advance(120)  # past the end of the watch
    sim.settle()
    assert sim.phase() == Phase.MONITORING, "not Succeeded while users are not on it"
    assert sim.condition(ConditionType.READY) == ("False", Reason.WORKLOAD_APPLY_FAILED)
    del sim.cluster.refuse[("apply", "Service")]
    sim.settle()
    assert sim.phase() == Phase.SUCCEEDED
    assert sim.condition(ConditionType.READY)[0] == "True"


def test_a_refused_status_write_still_says_so_in_an_event() -> None:
    sim = _gate_nearly_open()
    sim.cluster.refuse[("status", "AIDeployment")] = ApiError(
        413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728"
    )
    sim.annotations.update(full_checklist())
    sim.reconcile()
    assert [f.kind for f in sim.refusals] == ["status"]
    assert ("StatusWriteFailed", "Warning") in sim.events


def test_retries_of_a_refused_switch_back_post_no_phase_event_again() -> None:
    """A RED signal during the watch: the switch back to 1.0.0 is refused by a quota.
    Each retry (and the backoff makes several) must not say `RollingBack` again."""
    signal = {"name": "ready", "http": {"url": "http://m/ready"}}
    monitoring = {"duration": "1h", "interval": "30s", "signals": [signal]}
    sim = Simulator(make_spec(monitoring=monitoring))
    sim.settle()
    sim.advance(3600)
    sim.settle()
    assert sim.phase() == Phase.SUCCEEDED  # 1.0.0, the last good release
    sim.set_spec(make_spec(version="2.0.0", monitoring=monitoring))
    sim.annotations.update(gate_annotations(sim.spec))
    sim.settle()
    assert sim.phase() == Phase.MONITORING
    sim.cluster.refuse[("apply", "Service")] = ApiError(403, "Forbidden", QUOTA)
    sim.probe_script["ready"] = "RED"
    sim.advance(30)
    for _ in range(4):
        sim.reconcile()
        sim.advance(5)
    assert sim.condition(ConditionType.WRITES_ACCEPTED)[0] == "False"
    assert sim.condition(ConditionType.READY) == ("False", Reason.WORKLOAD_APPLY_FAILED)
    assert sim.phase() == Phase.ROLLING_BACK, "not rolled back while users are not moved"
    for phase in ("RollingBack", "RolledBack"):
        assert sim.events.count((phase, "Warning")) <= 1, sim.events
    del sim.cluster.refuse[("apply", "Service")]
    sim.settle()
    assert sim.serving_version() == "1.0.0"
    assert sim.phase() == Phase.ROLLED_BACK
    assert sim.events.count(("RollingBack", "Warning")) == 1, sim.events
    assert sim.events.count(("RolledBack", "Warning")) == 1, sim.events
