"""The phase machine: one pure function from what was observed to what should be.

`decide` is a function of (spec, status, observations, now). It returns the status to
write, the workload to apply and the Events to emit; the I/O layer carries them out.
Everything that must survive an operator restart lives in the status it returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from aideploy.api.constants import ConditionType, Phase, Reason
from aideploy.api.digest import spec_digest
from aideploy.api.spec import AIDeploymentSpec
from aideploy.api.status import AIDeploymentStatus, Condition, Release
from aideploy.logic.conditions import rfc3339, set_condition
from aideploy.logic.gate import GateResult, evaluate_gate
from aideploy.logic.workload import (
    Owner,
    applied_digest,
    build_deployment,
    build_service,
    is_owned_by,
    rollout_progress,
    workload_problems,
)

EventType = Literal["Normal", "Warning"]
WARNING_PHASES = frozenset({Phase.FAILED, Phase.ROLLED_BACK, Phase.ROLLING_BACK, Phase.HELD})


@dataclass(frozen=True)
class Observation:
    owner: Owner
    generation: int
    annotations: Mapping[str, str]
    raw_spec: Mapping[str, Any]
    status: AIDeploymentStatus
    deployment: Mapping[str, Any] | None
    now: datetime


@dataclass(frozen=True)
class ApplyWorkload:
    deployment: dict[str, Any]
    service: dict[str, Any]


@dataclass(frozen=True)
class Event:
    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    status: AIDeploymentStatus
    apply: ApplyWorkload | None = None
    events: tuple[Event, ...] = ()
    requeue_after: timedelta | None = None


@dataclass
class _Draft:
    """The status being built for one decision."""

    obs: Observation
    digest: str
    conditions: list[Condition] = field(default_factory=list)
    updates: dict[str, Any] = field(default_factory=dict)

    def condition(
        self, type_: ConditionType, ok: bool | None, reason: Reason, message: str
    ) -> None:
        status: Literal["True", "False", "Unknown"] = (
            "Unknown" if ok is None else ("True" if ok else "False")
        )
        self.conditions = set_condition(
            self.conditions,
            type_.value,
            status,
            reason.value,
            message,
            self.obs.generation,
            self.obs.now,
        )

    def finish(self, phase: Phase, message: str, apply: ApplyWorkload | None = None) -> Plan:
        old = self.obs.status
        phase_changed = old.phase != phase
        new_status = old.model_copy(
            update={
                "observed_generation": self.obs.generation,
                "spec_digest": self.digest,
                "phase": phase,
                "message": message,
                "phase_transition_time": (
                    rfc3339(self.obs.now) if phase_changed else old.phase_transition_time
                ),
                "conditions": self.conditions,
                **self.updates,
            }
        )
        old_ready = old.condition(ConditionType.READY)
        new_ready = new_status.condition(ConditionType.READY)
        reason_changed = (old_ready.reason if old_ready else None) != (
            new_ready.reason if new_ready else None
        )
        events: tuple[Event, ...] = ()
        if phase_changed or (reason_changed and phase in WARNING_PHASES):
            event_type: EventType = "Warning" if phase in WARNING_PHASES else "Normal"
            events = (Event(event_type, phase.value, message),)
        return Plan(status=new_status, apply=apply, events=events)


def format_validation_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        location = ".".join(str(p) for p in ("spec", *item["loc"]))
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts)


def decide(obs: Observation) -> Plan:
    digest = spec_digest(obs.raw_spec)
    draft = _Draft(obs=obs, digest=digest, conditions=list(obs.status.conditions))
    try:
        spec = AIDeploymentSpec.model_validate(dict(obs.raw_spec))
    except ValidationError as error:
        return _failed(
            draft,
            Reason.INVALID_SPEC,
            "The spec cannot be deployed: " + format_validation_error(error) + ".",
        )
    problems = workload_problems(spec)
    if problems:
        return _failed(
            draft, Reason.INVALID_SPEC, "The spec cannot be deployed: " + "; ".join(problems) + "."
        )
    if obs.deployment is not None and not is_owned_by(obs.deployment, obs.owner):
        return _failed(
            draft,
            Reason.WORKLOAD_CONFLICT,
            f"A Deployment named {obs.owner.name} already exists in {obs.owner.namespace} and "
            "is not managed by this AIDeployment; rename one of them.",
        )
    current = obs.status.current_release
    if current is None or current.digest != digest:
        return _gate(draft, spec)
    return _follow_rollout(draft, spec, current)


def _failed(
    draft: _Draft, reason: Reason, message: str, apply: ApplyWorkload | None = None
) -> Plan:
    draft.condition(ConditionType.READY, False, reason, message)
    return draft.finish(Phase.FAILED, message, apply=apply)


def _gate_conditions(draft: _Draft, spec: AIDeploymentSpec, gate: GateResult) -> None:
    draft.condition(
        ConditionType.APPROVED,
        gate.approved,
        Reason.ALL_APPROVALS_PRESENT if gate.approved else Reason.APPROVALS_MISSING,
        gate.approvals_message(draft.digest),
    )
    draft.condition(
        ConditionType.CHECKLIST_COMPLETE,
        gate.checklist_complete,
        Reason.CHECKLIST_COMPLETE if gate.checklist_complete else Reason.CHECKLIST_INCOMPLETE,
        gate.checklist_message(),
    )
    if gate.compliant:
        reason = (
            Reason.COMPLIANCE_COMPLETE
            if spec.risk_level == "high"
            else Reason.COMPLIANCE_NOT_REQUIRED
        )
    else:
        reason = Reason.COMPLIANCE_MISSING
    draft.condition(
        ConditionType.COMPLIANCE_VERIFIED,
        gate.compliant,
        reason,
        gate.compliance_message(spec.risk_level),
    )


def _gate(draft: _Draft, spec: AIDeploymentSpec) -> Plan:
    obs = draft.obs
    gate = evaluate_gate(spec, obs.annotations, draft.digest)
    _gate_conditions(draft, spec, gate)
    draft.updates["approvals"] = gate.approvals
    serving = obs.status.current_release
    if not gate.passed:
        draft.updates["gate"] = gate.to_status()
        blocked = [
            message
            for ok, message in (
                (gate.approved, gate.approvals_message(draft.digest)),
                (gate.checklist_complete, gate.checklist_message()),
                (gate.compliant, gate.compliance_message(spec.risk_level)),
            )
            if not ok
        ]
        still_serving = f" Version {serving.version} keeps serving." if serving is not None else ""
        message = " ".join(blocked) + still_serving
        draft.condition(
            ConditionType.DEPLOYED,
            False,
            Reason.ROLLOUT_NOT_STARTED,
            f"Version {spec.model.version} is not deployed: the gate is closed.{still_serving}",
        )
        draft.condition(ConditionType.READY, False, Reason.GATE_BLOCKED, message)
        return draft.finish(Phase.AWAITING_APPROVAL, message)
    return _start_rollout(draft, spec)


def _start_rollout(draft: _Draft, spec: AIDeploymentSpec) -> Plan:
    obs = draft.obs
    previous = obs.status.current_release
    if previous is not None and obs.status.phase == Phase.MONITORING:
        # It was serving GREEN when this newer rollout began: it is now the rollback target.
        draft.updates["last_good_release"] = previous
    release = Release(
        version=spec.model.version,
        digest=draft.digest,
        generation=obs.generation,
        deployed_at=rfc3339(obs.now),
        template=spec.template,
        serving=spec.serving.model_dump(mode="json", by_alias=True),
        replicas=spec.replicas,
    )
    draft.updates["current_release"] = release
    draft.updates["gate"] = None
    message = f"Rolling out version {spec.model.version} ({spec.replicas} replicas)."
    draft.condition(ConditionType.DEPLOYED, False, Reason.ROLLOUT_IN_PROGRESS, message)
    draft.condition(ConditionType.READY, False, Reason.ROLLOUT_IN_PROGRESS, message)
    return draft.finish(Phase.DEPLOYING, message, apply=_workload(obs, spec, release))


def _workload(obs: Observation, spec: AIDeploymentSpec, release: Release) -> ApplyWorkload:
    template = release.template if release.template is not None else spec.template
    replicas = release.replicas if release.replicas is not None else spec.replicas
    port = int((release.serving or {}).get("port", spec.serving.port))
    return ApplyWorkload(
        deployment=build_deployment(obs.owner, spec, release.digest, template, replicas),
        service=build_service(obs.owner, spec, release.digest, port),
    )


def _follow_rollout(draft: _Draft, spec: AIDeploymentSpec, release: Release) -> Plan:
    obs = draft.obs
    phase = obs.status.phase or Phase.DEPLOYING
    apply = None
    if obs.deployment is None or applied_digest(obs.deployment) != release.digest:
        apply = _workload(obs, spec, release)
        complete, failed = False, False
        progress_message = "the Deployment is being (re)created"
    else:
        progress = rollout_progress(obs.deployment)
        complete, failed, progress_message = progress.complete, progress.failed, progress.message
    version = release.version
    if complete:
        message = f"Version {version} is serving: {progress_message}."
        draft.condition(ConditionType.DEPLOYED, True, Reason.ROLLOUT_COMPLETE, message)
        draft.condition(ConditionType.READY, True, Reason.RELEASE_SERVING, message)
        if phase in (Phase.DEPLOYING, Phase.PENDING):
            phase = Phase.SUCCEEDED
            draft.updates["last_good_release"] = release
        return draft.finish(phase, message, apply=apply)
    if failed:
        message = f"Version {version} failed to roll out: {progress_message}."
        draft.condition(ConditionType.DEPLOYED, False, Reason.PROGRESS_DEADLINE_EXCEEDED, message)
        return _failed(draft, Reason.PROGRESS_DEADLINE_EXCEEDED, message, apply)
    message = f"Version {version} is rolling out: {progress_message}."
    if phase == Phase.SUCCEEDED:
        # Went live earlier; now degraded (a replica lost, the Deployment deleted).
        draft.condition(ConditionType.READY, False, Reason.REPLICAS_UNAVAILABLE, message)
        return draft.finish(phase, message, apply=apply)
    draft.condition(ConditionType.DEPLOYED, False, Reason.ROLLOUT_IN_PROGRESS, message)
    draft.condition(ConditionType.READY, False, Reason.ROLLOUT_IN_PROGRESS, message)
    return draft.finish(Phase.DEPLOYING, message, apply=apply)
