"""A write the apiserver refused, said in words, and the status that reports it.

A quota, an admission policy, an invalid template, an overloaded or unreachable apiserver:
each refuses a Deployment, a Service, an HTTPRoute, a record or the status itself, and
the operator only learns of it while carrying out a plan. Nothing here does I/O: the
reconciler catches the error, names it as a `WriteFailure`, and writes what these
functions return, so that the phase, the gate and the message never keep a claim that
the refused write made false (a gate still "missing" the checklist item that opened it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from aideploy.api.constants import ConditionType, Phase, Reason
from aideploy.api.status import AIDeploymentStatus
from aideploy.logic.conditions import set_condition
from aideploy.logic.workload import PREVIEW_SUFFIX

#: The conditions that say what the gate found; they are true whatever became of the write.
GATE_CONDITIONS: Final = (
    ConditionType.APPROVED,
    ConditionType.CHECKLIST_COMPLETE,
    ConditionType.COMPLIANCE_VERIFIED,
    ConditionType.IN_WINDOW,
)
#: Phases whose Ready condition and gate describe why nothing was rolled out yet.
GATE_PHASES: Final = frozenset(
    {None, Phase.AWAITING_APPROVAL, Phase.AWAITING_PROMOTION, Phase.AWAITING_WINDOW}
)

FIRST_RETRY: Final = timedelta(seconds=1)
LAST_RETRY: Final = timedelta(minutes=5)

_QUOTA = re.compile(r"exceeded quota: ([^,]+), (.*)$")
_WEBHOOK = re.compile(r'admission webhook "([^"]+)" denied the request:?\s*(.*)$', re.S)
_POLICY = re.compile(r"ValidatingAdmissionPolicy '([^']+)'.*?denied request:?\s*(.*)$", re.S)


@dataclass(frozen=True)
class WriteFailure:
    """One refused write. `code` is the HTTP status, or None when no answer came."""

    kind: str
    name: str
    action: str  # what was being done: "create", "apply", "scale down", "delete", ...
    code: int | None
    api_reason: str
    detail: str

    @property
    def target(self) -> str:
        if self.kind == "status":
            return f"the status of {self.name}"
        return f"{self.kind} {self.name}" if self.name else self.kind


@dataclass(frozen=True)
class Described:
    reason: Reason
    #: A short label for the metric: quota, admission, invalid, forbidden, ...
    cause: str
    message: str


def reason_for(kind: str) -> Reason:
    if kind == "AIDeploymentRecord":
        return Reason.RECORD_WRITE_FAILED
    if kind in ("status", "AIDeployment"):  # its status, or the annotations it consumes
        return Reason.STATUS_WRITE_FAILED
    return Reason.WORKLOAD_APPLY_FAILED


def describe(failure: WriteFailure, namespace: str) -> Described:
    """What refused the write and what to do about it, in one or two sentences."""
    reason = reason_for(failure.kind)
    detail = failure.detail.strip().rstrip(".")
    what = f"The {failure.action} of {failure.target} was refused"
    code = failure.code
    if code is None:
        return Described(
            reason,
            "unreachable",
            f"{what}: the apiserver did not answer ({detail}). It is retried with backoff; "
            "check the apiserver and the network between it and the operator.",
        )
    if (quota := _QUOTA.search(detail)) is not None:
        return Described(
            reason,
            "quota",
            f"{what}: ResourceQuota {quota.group(1)} in namespace {namespace} does not allow "
            f"it ({quota.group(2)}). Raise the quota or free room in the namespace; the "
            "operator retries with backoff.",
        )
    if (webhook := _WEBHOOK.search(detail)) is not None:
        return Described(
            reason,
            "admission",
            f"{what} by admission webhook {webhook.group(1)}: {webhook.group(2) or 'denied'}. "
            "Change the spec to meet the policy, or ask its owner for an exception; the "
            "operator retries with backoff.",
        )
    if (policy := _POLICY.search(detail)) is not None:
        return Described(
            reason,
            "admission",
            f"{what} by ValidatingAdmissionPolicy {policy.group(1)}: {policy.group(2)}. "
            "Change the spec to meet the policy; the operator retries with backoff.",
        )
    if "serviceIP" in detail and "range is full" in detail:
        return Described(
            reason,
            "ip-range",
            f"{what}: the cluster's Service IP range is full ({detail}). Free Services, or "
            "widen the apiserver's --service-cluster-ip-range; the operator retries with "
            "backoff.",
        )
    if code in (400, 422) or (code == 500 and "convert" in detail):
        where = "spec.template" if failure.kind == "Deployment" else "the spec"
        return Described(
            reason,
            "invalid",
            f"{what} as invalid: {detail}. Fix {where}; a new generation is tried at once, "
            "this one again with backoff.",
        )
    if code == 413 or "too large" in detail.lower():
        return Described(
            reason,
            "too-large",
            f"{what} as too large: {detail}. Make the template smaller (large values "
            "belong in a ConfigMap).",
        )
    if code == 403:
        return Described(
            reason,
            "forbidden",
            f"{what}: {detail}. Grant the operator's ServiceAccount that permission (the "
            "chart's RBAC), or lift the restriction named; the operator retries with backoff.",
        )
    if code == 404:
        return Described(
            reason,
            "not-found",
            f"{what}: {detail}. Create what it names (a namespace, or the CRD of the kind), "
            "or correct the spec; the operator retries with backoff.",
        )
    if code == 409 and failure.api_reason == "AlreadyExists":
        return Described(
            reason,
            "conflict",
            f"{what}: {detail}. Evidence is never overwritten: find who created that record "
            "(the apiserver's audit log) and move it aside; the operator retries with backoff.",
        )
    if code == 409:
        return Described(
            reason,
            "conflict",
            f"{what}: it kept changing while it was written ({detail}). Find the other "
            "writer; the operator retries with backoff.",
        )
    return Described(
        reason,
        "unavailable" if code == 429 or code >= 500 else "rejected",
        f"{what} with {code} {failure.api_reason}: {detail}. It is retried with backoff; "
        "check the apiserver's health.",
    )


def retry_after(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s, ... up to 5 minutes: no busy loop on a write that keeps failing."""
    exponent = min(max(attempts - 1, 0), 16)
    delay: timedelta = FIRST_RETRY * (2**exponent)
    return min(delay, LAST_RETRY)


def refused_status(
    stored: AIDeploymentStatus,
    described: Described,
    *,
    planned: AIDeploymentStatus | None,
    generation: int,
    now: datetime,
) -> AIDeploymentStatus:
    """The status that reports a refused write.

    `planned` is the status the plan meant to write, when the refusal came before it was
    written: the phase machine then stays where it was (so the step, with its records, is
    taken again), but what the gate found is fresh and is written, so no condition keeps
    claiming a blocker that no longer holds. Without `planned` the plan's status is
    already written (`stored`), and only the failure is added to it.
    """
    conditions = list(stored.conditions)
    changes: dict[str, object] = {}
    if planned is not None:
        for type_ in GATE_CONDITIONS:
            fresh = planned.condition(type_)
            if fresh is None:
                continue
            if any(c.type == type_ for c in conditions):
                conditions = [fresh if c.type == type_ else c for c in conditions]
            else:
                conditions.append(fresh)
        if stored.phase in GATE_PHASES:
            # The gate let the release through: neither "gate closed" nor a missing item
            # may stand. The phase stays, because the rollout has not started.
            changes.update(gate=planned.gate, approvals=planned.approvals)
            for type_ in (ConditionType.READY, ConditionType.DEPLOYED):
                conditions = set_condition(
                    conditions,
                    type_,
                    "False",
                    described.reason,
                    described.message,
                    generation,
                    now,
                )
    elif traffic_write(described.message):
        # Users are not where the status says they are: not Ready until the switch is made.
        conditions = set_condition(
            conditions,
            ConditionType.READY,
            "False",
            described.reason,
            described.message,
            generation,
            now,
        )
    conditions = set_condition(
        conditions,
        ConditionType.WRITES_ACCEPTED,
        "False",
        described.reason,
        described.message,
        generation,
        now,
    )
    return stored.replace(conditions=conditions, message=described.message, **changes)


_TRAFFIC = ("The apply of Service ", "The weight patch of HTTPRoute ")
REFUSAL_REASONS: Final = frozenset(
    {Reason.WORKLOAD_APPLY_FAILED, Reason.RECORD_WRITE_FAILED, Reason.STATUS_WRITE_FAILED}
)


def traffic_write(message: str) -> bool:
    """Whether a refusal (as `describe` words it) is of a write that moves users: the
    stable Service or the route, not the preview Service (only probes go there)."""
    for prefix in _TRAFFIC:
        if message.startswith(prefix):
            name = message[len(prefix) :].split(" ", 1)[0]
            return not (prefix.endswith("Service ") and name.endswith(PREVIEW_SUFFIX))
    return False


def traffic_refused(status: AIDeploymentStatus) -> bool:
    """A Service or route write is refused: users are not on the release status names."""
    refusal = refusal_message(status)
    return refusal is not None and traffic_write(refusal)


def refusal_kept(status: AIDeploymentStatus) -> bool:
    return refusal_message(status) is not None


def accepted_status(
    status: AIDeploymentStatus, generation: int, now: datetime
) -> AIDeploymentStatus:
    """After a refusal, once every write went through again."""
    conditions = set_condition(
        list(status.conditions),
        ConditionType.WRITES_ACCEPTED,
        "True",
        Reason.WRITES_ACCEPTED,
        "Every write the operator made was accepted again.",
        generation,
        now,
    )
    return status.replace(conditions=conditions)


def without_refusal_message(status: AIDeploymentStatus) -> AIDeploymentStatus:
    """The status as decide() should see it: a message, or a Ready condition, that only
    reports a refusal is not one to keep (phases that keep theirs would keep it for ever
    once the write goes through; decide() says them afresh). The WritesAccepted
    condition still carries the refusal, and the reconciler writes it again if it holds."""
    refusal = refusal_message(status)
    if refusal is None:
        return status
    conditions = [
        c
        for c in status.conditions
        if not (
            c.type == ConditionType.READY and c.status == "False" and c.reason in REFUSAL_REASONS
        )
    ]
    message = None if status.message == refusal else status.message
    return status.replace(message=message, conditions=conditions)


def refusal_message(status: AIDeploymentStatus) -> str | None:
    condition = status.condition(ConditionType.WRITES_ACCEPTED)
    return condition.message if condition is not None and condition.status == "False" else None
