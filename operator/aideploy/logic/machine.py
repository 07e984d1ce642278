"""The phase machine: one pure function from what was observed to what should be.

`decide` is a function of (spec, status, observations, now). It returns the status to
write, the workload to apply, the probes to run and the Events to emit; the I/O layer
carries them out. Everything that must survive an operator restart lives in the status.

    (new spec) --gate--> AwaitingApproval --pass--> Deploying --> Verifying
        Verifying --GREEN--> Monitoring --duration--> Succeeded
        Verifying --AMBER--> Held | Monitoring | RollingBack   (spec.verification.amberPolicy)
        Verifying --RED----> RollingBack --> RolledBack        (Failed when nothing to restore)
        Monitoring --RED signal--> RollingBack
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from pydantic import ValidationError

from aideploy.api.constants import (
    GO_LIVE_ANNOTATION,
    PROMOTE_ANNOTATION,
    ROLLBACK_ANNOTATION,
    ConditionType,
    Phase,
    Reason,
    RiskLevel,
)
from aideploy.api.digest import spec_digest
from aideploy.api.durations import parse_duration
from aideploy.api.spec import AIDeploymentSpec, ChangeType
from aideploy.api.status import Gate, Release
from aideploy.logic import monitoring, next_step, oneshot, rollback, rollout
from aideploy.logic.change import (
    change_type_problem,
    effective_change_type,
    expedite_extra_roles,
    expedite_problem,
    substantial_modification_problems,
)
from aideploy.logic.gate import GateResult, evaluate_gate
from aideploy.logic.plan import Draft, Observation, Plan
from aideploy.logic.podpolicy import pod_policy_problems
from aideploy.logic.promotion import promotion_problem
from aideploy.logic.releases import distrust
from aideploy.logic.start import start_rollout
from aideploy.logic.strategy import strategy_problems, uses_preview
from aideploy.logic.topology import preview_name
from aideploy.logic.window import WindowState, window_gate, window_problem
from aideploy.logic.workload import owner_problems, workload_problems

# Re-exported for callers that only need the data types.
__all__ = ["Observation", "Plan", "decide"]


def format_validation_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        location = ".".join(str(p) for p in ("spec", *item["loc"]))
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts)


def decide(obs: Observation) -> Plan:
    digest = spec_digest(obs.raw_spec)
    policy = obs.approval_policy
    status, distrusted = distrust(
        obs.status, policy.provenance_key, obs.owner.uid, policy.adopt_unsigned_releases
    )
    obs = dataclasses.replace(obs, status=status)
    draft = Draft(obs=obs, digest=digest, conditions=list(obs.status.conditions))
    if distrusted or _still_untrusted(draft):
        return _set_aside(draft, distrusted)
    try:
        spec = AIDeploymentSpec.model_validate(dict(obs.raw_spec))
    except ValidationError as error:
        return _failed(
            draft, "The spec cannot be deployed: " + format_validation_error(error) + "."
        )
    problems = (
        owner_problems(obs.owner, uses_preview(spec))
        + workload_problems(spec)
        + strategy_problems(spec)
        + _timing_problems(spec)
        + pod_policy_problems(spec, obs.pod_policy)
    )
    if spec.window is not None and (window_error := window_problem(spec.window)):
        problems.append(window_error)
    if problems:
        return _failed(draft, "The spec cannot be deployed: " + "; ".join(problems) + ".")
    foreign = [
        f"{kind} {name}"
        for kind, name in obs.workloads.foreign
        if (kind, name) != ("Service", preview_name(obs.owner)) or uses_preview(spec)
    ]
    if foreign:
        found = " and ".join(foreign)
        draft.condition(
            ConditionType.READY,
            False,
            Reason.WORKLOAD_CONFLICT,
            message := (
                f"{found} already exists in {obs.owner.namespace} and is not managed by "
                "this AIDeployment; rename one of them."
            ),
        )
        return draft.finish(Phase.FAILED, message)
    draft.spec = spec
    current = obs.status.current_release
    phase = obs.status.phase
    in_rollout = (
        current is not None
        and current.digest == digest
        and (phase in ROLLOUT_PHASES or (phase == Phase.FAILED and obs.status.rollback))
    )
    if current is None or not in_rollout:
        # A new spec, or a spec reverted to the current release's while a newer one
        # waited at the gate: either way a new rollout, through the gate again.
        return _gate(draft, spec)
    return _lifecycle(draft, spec, current)


def _still_untrusted(draft: Draft) -> bool:
    """A release was set aside at this generation: stay stopped until the spec changes."""
    condition = draft.status.condition(ConditionType.RELEASES_TRUSTED)
    return (
        condition is not None
        and condition.status == "False"
        and condition.observed_generation == draft.obs.generation
    )


def _set_aside(draft: Draft, distrusted: list[str]) -> Plan:
    """A release in status was not the operator's: it is neither deployed nor restored,
    and nothing else is rolled out either (re-gating could re-deploy a version that was
    rolled back) until a person changes the spec, which then goes through the gate."""
    if not distrusted:
        kept = draft.status.condition(ConditionType.RELEASES_TRUSTED)
        return draft.finish(Phase.FAILED, kept.message if kept else "")
    found = "; ".join(distrusted)
    message = (
        f"{found[:1].upper()}{found[1:]}: it is neither deployed nor restored, and nothing "
        "is rolled out until the spec changes (a new generation goes through the gate "
        "again). Find who wrote the status in the apiserver's audit log."
    )
    draft.condition(ConditionType.RELEASES_TRUSTED, False, Reason.RELEASE_UNTRUSTED, message)
    draft.condition(ConditionType.READY, False, Reason.RELEASE_UNTRUSTED, message)
    draft.event("Warning", Reason.RELEASE_UNTRUSTED, message)
    return draft.finish(Phase.FAILED, message)


MIN_MONITORING_INTERVAL = timedelta(seconds=1)


def _timing_problems(spec: AIDeploymentSpec) -> list[str]:
    """Durations the schema accepts but that cannot work (or would spin)."""
    problems = []
    if (
        spec.monitoring is not None
        and parse_duration(spec.monitoring.interval) < MIN_MONITORING_INTERVAL
    ):
        problems.append(
            f"spec.monitoring.interval {spec.monitoring.interval} is shorter than 1s; "
            "signals are queried once per interval"
        )
    if parse_duration(spec.verification.timeout) <= timedelta(0):
        problems.append("spec.verification.timeout must be longer than zero")
    return problems


def _failed(draft: Draft, message: str) -> Plan:
    draft.condition(ConditionType.READY, False, Reason.INVALID_SPEC, message)
    return draft.finish(Phase.FAILED, message)


ROLLOUT_PHASES = frozenset(
    {
        Phase.DEPLOYING,
        Phase.VERIFYING,
        Phase.HELD,
        Phase.MONITORING,
        Phase.SUCCEEDED,
        Phase.ROLLING_BACK,
        Phase.ROLLED_BACK,
    }
)


def _lifecycle(draft: Draft, spec: AIDeploymentSpec, release: Release) -> Plan:
    phase = draft.status.phase
    # The same rules `kubectl aideploy` asks before it writes these requests (logic/oneshot).
    if oneshot.go_live_refusal(draft.status, draft.digest) is not None:
        rollback.consume_stray(draft, GO_LIVE_ANNOTATION, "no go-live decision is pending")
    if phase != Phase.MONITORING:
        rollback.consume_stray(draft, PROMOTE_ANNOTATION, "no canary step is under way")
    if phase == Phase.ROLLING_BACK:
        return rollback.follow(draft, spec, release)
    if phase == Phase.ROLLED_BACK or (phase == Phase.FAILED and draft.status.rollback):
        return rollback.settled(draft, spec, release)
    requested = rollback.requested_reason(draft)
    if requested is not None:
        if oneshot.rollback_refusal(draft.status, draft.digest) is None:
            return rollback.start(
                draft, spec, release, Reason.MANUAL_ROLLBACK, f"manual rollback: {requested}"
            )
        rollback.refuse(draft, release)
    if phase == Phase.HELD:
        return rollout.held(draft, spec, release)
    if phase == Phase.MONITORING:
        return monitoring.step(draft, spec, release)
    if phase == Phase.SUCCEEDED:
        return rollout.serving(draft, spec, release)
    return rollout.follow(draft, spec, release)


def _gate_conditions(
    draft: Draft, spec: AIDeploymentSpec, gate: GateResult, messages: next_step.GateMessages
) -> None:
    draft.condition(
        ConditionType.APPROVED,
        gate.approved,
        Reason.ALL_APPROVALS_PRESENT if gate.approved else Reason.APPROVALS_MISSING,
        messages.approvals,
    )
    draft.condition(
        ConditionType.CHECKLIST_COMPLETE,
        gate.checklist_complete,
        Reason.CHECKLIST_COMPLETE if gate.checklist_complete else Reason.CHECKLIST_INCOMPLETE,
        messages.checklist,
    )
    if gate.compliant:
        reason = (
            Reason.COMPLIANCE_COMPLETE
            if spec.risk_level is RiskLevel.HIGH
            else Reason.COMPLIANCE_NOT_REQUIRED
        )
    else:
        reason = Reason.COMPLIANCE_MISSING
    draft.condition(ConditionType.COMPLIANCE_VERIFIED, gate.compliant, reason, messages.compliance)


def _gate(draft: Draft, spec: AIDeploymentSpec) -> Plan:
    """A new spec: the change rules, the approval gate, promotion, then the window."""
    # One-shot actions cannot act before a rollout: consume them, so they cannot fire on
    # the rollout that follows.
    for key in (GO_LIVE_ANNOTATION, ROLLBACK_ANNOTATION, PROMOTE_ANNOTATION):
        rollback.consume_stray(draft, key, f"version {spec.model.version} is not rolled out yet")
    change_type = _change_type(draft, spec)
    if not isinstance(change_type, ChangeType):  # a StrEnum: test for it, not for str
        return _failed(draft, change_type)
    gate = _evaluate_gate(draft, spec, change_type)
    # Said once, in the gate's conditions and, while it is closed, in the status message.
    messages = next_step.gate_messages(draft.obs.owner, spec, gate, draft.digest)
    _gate_conditions(draft, spec, gate, messages)
    window = _window_condition(draft, spec)
    # The release serving now (if any) keeps serving, untouched, while the gate is closed.
    serving = rollout.serving_release(draft.status)
    still_serving = f" Version {serving.version} keeps serving." if serving is not None else ""
    if not gate.passed:
        return _gate_closed(draft, spec, gate, messages, window, still_serving)
    if window is not None and not window.open:
        frozen = window.freeze is not None
        expedite = not frozen and spec.expedite is None and change_type is ChangeType.PATCH
        message = f"{window.message}{still_serving} {next_step.window(expedite)}"
        gate_status = gate.to_status().replace(
            window=_wire(window), blocked_by=["freeze" if frozen else "window"]
        )
        reason = Reason.FROZEN if frozen else Reason.OUTSIDE_WINDOW
        return _blocked(
            draft, spec, Phase.AWAITING_WINDOW, reason, message, still_serving, gate_status
        )
    return start_rollout(draft, spec, gate)


def _change_type(draft: Draft, spec: AIDeploymentSpec) -> ChangeType | str:
    """The change type this spec is rolled out as, or why it cannot be (a message)."""
    last_good = draft.status.last_good_release
    last_version = last_good.version if last_good else None
    contradiction = change_type_problem(spec.change_type, spec.model.version, last_version)
    if contradiction:
        return contradiction
    change_type = effective_change_type(spec.change_type, spec.model.version, last_version)
    expedite_error = expedite_problem(spec, change_type)
    if expedite_error:
        return expedite_error
    draft.updates["change_type"] = change_type.value
    return change_type


def _evaluate_gate(draft: Draft, spec: AIDeploymentSpec, change_type: ChangeType) -> GateResult:
    obs = draft.obs
    last_good = draft.status.last_good_release
    promotion = (
        promotion_problem(
            spec, obs.staging, spec.promotion.from_staging, obs.approval_policy.provenance_key
        )
        if spec.promotion is not None
        else None
    )
    gate = evaluate_gate(
        spec,
        obs.annotations,
        draft.digest,
        extra_roles=expedite_extra_roles(
            spec, spec.risk_level in obs.approval_policy.lower_gate_for
        ),
        compliance_problems=substantial_modification_problems(
            spec,
            change_type,
            last_good.version if last_good else None,
            last_good.conformity_assessment if last_good else None,
        ),
        promotion=promotion,
        policy=obs.approval_policy,
    )
    draft.updates["approvals"] = gate.approvals
    return gate


def _gate_closed(
    draft: Draft,
    spec: AIDeploymentSpec,
    gate: GateResult,
    messages: next_step.GateMessages,
    window: WindowState | None,
    still_serving: str,
) -> Plan:
    blocked = [
        message
        for ok, message in (
            (gate.approved, messages.approvals),
            (gate.checklist_complete, messages.checklist),
            (gate.compliant, messages.compliance),
            (gate.promoted, messages.promotion),
        )
        if not ok
    ]
    message = " ".join(blocked) + still_serving
    # Only the staging object holds it back: people have done their part, so the phase says
    # what it waits for instead of "approval".
    promotion_only = gate.blocked_by == ["promotion"]
    return _blocked(
        draft,
        spec,
        Phase.AWAITING_PROMOTION if promotion_only else Phase.AWAITING_APPROVAL,
        Reason.PROMOTION_PENDING if promotion_only else Reason.GATE_BLOCKED,
        message,
        still_serving,
        gate.to_status().replace(window=_wire(window)),
    )


def _wire(window: WindowState | None) -> dict[str, object] | None:
    return window.to_wire() if window is not None else None


def _window_condition(draft: Draft, spec: AIDeploymentSpec) -> WindowState | None:
    if spec.window is None:
        return None
    window = window_gate(spec.window, draft.now, expedited=spec.expedite is not None)
    draft.condition(
        ConditionType.IN_WINDOW, window.open, Reason(window.reason.value), window.message
    )
    if window.next_change is not None:
        draft.wake(window.next_change)  # the rollout starts by itself when it opens
    return window


def _blocked(
    draft: Draft,
    spec: AIDeploymentSpec,
    phase: Phase,
    reason: Reason,
    message: str,
    still_serving: str,
    gate_status: Gate,
) -> Plan:
    draft.updates["gate"] = gate_status
    draft.condition(
        ConditionType.DEPLOYED,
        False,
        Reason.ROLLOUT_NOT_STARTED,
        f"Version {spec.model.version} is not deployed: the gate is closed.{still_serving}",
    )
    draft.condition(ConditionType.READY, False, reason, message)
    return draft.finish(phase, message)
