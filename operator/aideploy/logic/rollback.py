"""The rollback procedure (PROC-AI-DEPLOY-001 section 5): restore the last good release
exactly, verify it with the same probes, and stay rolled back until a new spec arrives.
Rollbacks are never held by the approval gate, windows or freezes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aideploy.api.constants import (
    GO_LIVE_ANNOTATION,
    ROLLBACK_ANNOTATION,
    ConditionType,
    Phase,
    Reason,
)
from aideploy.api.durations import parse_duration
from aideploy.api.records import RecordType
from aideploy.api.spec import AIDeploymentSpec, Result
from aideploy.api.status import Release, RollbackStatus
from aideploy.api.times import parse_time, rfc3339
from aideploy.logic import postdeploy, strategy
from aideploy.logic.plan import Draft, Plan, release_summary
from aideploy.logic.record_content import closure_content, rollback_content
from aideploy.logic.verdict import probe_request, worst
from aideploy.logic.write_failure import traffic_refused

if TYPE_CHECKING:
    from aideploy.api.status import ProbeOutcome

# Phases in which a rollback may be asked for: after execution began, before the watch ended.
ROLLBACK_PHASES = frozenset({Phase.DEPLOYING, Phase.VERIFYING, Phase.HELD, Phase.MONITORING})


def requested_reason(draft: Draft) -> str | None:
    value = draft.obs.annotations.get(ROLLBACK_ANNOTATION)
    if value is None:
        return None
    return value.strip() or "no reason given"


def _consume_annotations(draft: Draft) -> None:
    for key in (ROLLBACK_ANNOTATION, GO_LIVE_ANNOTATION):
        if key in draft.obs.annotations and key not in draft.remove_annotations:
            draft.remove_annotations.append(key)


def consume_stray(draft: Draft, key: str, why: str) -> None:
    """Remove a one-shot action annotation that cannot act now, saying so in an Event."""
    value = draft.obs.annotations.get(key)
    if value is None or key in draft.remove_annotations:
        return
    draft.remove_annotations.append(key)
    draft.event("Warning", Reason.ACTION_IGNORED, f"Ignored {key}={value!r}: {why}.")


def refuse(draft: Draft, release: Release) -> None:
    """A rollback asked for once the watch is over: the release is the last good one."""
    _consume_annotations(draft)
    draft.event(
        "Warning",
        Reason.ROLLBACK_NOT_POSSIBLE,
        f"Ignored {ROLLBACK_ANNOTATION}: version {release.version} completed its watch and is "
        "the last good release. Deploy an earlier version through the gate instead.",
    )


def start(
    draft: Draft, spec: AIDeploymentSpec, release: Release, trigger: Reason, reason: str
) -> Plan:
    _consume_annotations(draft)
    target = draft.status.last_good_release
    now = rfc3339(draft.now, milliseconds=True)
    record = RollbackStatus(
        trigger=trigger.value,
        reason=reason,
        from_version=release.version,
        from_digest=release.digest,
        to_version=target.version if target else None,
        to_digest=target.digest if target else None,
        red_at=now,
        started_at=now,
    )
    draft.updates["rollback"] = record
    draft.updates["monitoring"] = None
    if trigger in (
        Reason.PROBES_RED,
        Reason.SIGNAL_RED,
        Reason.PROGRESS_DEADLINE_EXCEEDED,
        Reason.VERIFICATION_TIMEOUT,
    ):
        draft.updates["decision"] = Result.RED
    if target is None:
        # A first deployment has nothing to return to: take the failed version out of
        # service rather than leave it serving.
        strategy.rolled_back(draft, spec, release, None, settled=False)
        message = (
            f"Rollback: {reason}. There is no earlier good release to restore, so "
            f"version {release.version} was scaled to zero replicas."
        )
        _record(draft, release, record, Phase.FAILED, message)  # before it is reported
        draft.condition(ConditionType.ROLLED_BACK, False, Reason.NO_PREVIOUS_RELEASE, message)
        draft.condition(ConditionType.READY, False, trigger, message)
        return draft.finish(Phase.FAILED, message)
    strategy.rolled_back(draft, spec, release, target, settled=False)
    message = f"Rolling back from {release.version} to {target.version}: {reason}."
    draft.condition(ConditionType.ROLLED_BACK, False, Reason.ROLLING_BACK, message)
    draft.condition(ConditionType.READY, False, trigger, message)
    return draft.finish(Phase.ROLLING_BACK, message)


def follow(draft: Draft, spec: AIDeploymentSpec, release: Release) -> Plan:
    """RollingBack: wait for the restored Deployment, then verify it."""
    _consume_annotations(draft)
    postdeploy.retrospective(draft, spec, release, (draft.status.phase or Phase.ROLLED_BACK).value)
    record = draft.status.rollback
    target = draft.status.last_good_release
    if record is None or target is None:  # a status edited by hand; start over safely
        return start(draft, spec, release, Reason.MANUAL_ROLLBACK, "rollback state was lost")
    strategy.rolled_back(draft, spec, release, target, settled=False)
    progress = draft.progress(target)
    if progress is None or not progress.complete:
        detail = progress.message if progress is not None else "the Deployment is being restored"
        deadline = parse_time(record.started_at) + parse_duration(spec.verification.timeout)
        # Only the deadline decides: a progress-deadline condition seen now may still be
        # the failed release's, not the restore's.
        if draft.now >= deadline:
            return _restore_failed(draft, release, record, target, detail)
        message = f"Rolling back from {record.from_version} to {target.version}: {detail}."
        draft.wake(deadline)
        return draft.finish(Phase.ROLLING_BACK, message)
    if traffic_refused(draft.status):
        # The pods are back, but users cannot be moved to them: not rolled back yet.
        message = f"Version {target.version} is restored; users are not moved back to it yet."
        return draft.finish(Phase.ROLLING_BACK, message)
    if record.completed_at is None:
        record = record.replace(completed_at=rfc3339(draft.now, milliseconds=True))
        draft.updates["rollback"] = record
    request = probe_request(spec, target, "restore", draft.obs.owner.name)
    run = draft.obs.probe_run
    outcomes: list[ProbeOutcome] = []
    if request is not None:
        if run is None or run.purpose != "restore" or run.digest != target.digest:
            draft.run_probes = request
            message = f"Version {target.version} is restored; verifying it."
            return draft.finish(Phase.ROLLING_BACK, message)
        outcomes = list(run.outcomes)
    result = worst(outcomes)
    record = record.replace(verification=outcomes, restored_decision=result)
    draft.updates["rollback"] = record
    return _rolled_back(draft, record, target)


def _trigger_reason(trigger: str) -> Reason:
    """The trigger is free text read from status (another operator version, an edit): an
    unknown one is shown in the message under the generic reason, never raised on."""
    try:
        return Reason(trigger)
    except ValueError:
        return Reason.ROLLED_BACK


def _rolled_back(draft: Draft, record: RollbackStatus, target: Release) -> Plan:
    restored = record.restored_decision
    verdict = "its verification is " + restored if restored else "no probes are configured"
    message = (
        f"Rolled back from {record.from_version} to {target.version} "
        f"({record.trigger}: {record.reason}); {verdict}."
    )
    draft.condition(ConditionType.ROLLED_BACK, True, _trigger_reason(record.trigger), message)
    ok = restored in (None, Result.GREEN)
    draft.condition(
        ConditionType.HEALTHY,
        ok,
        Reason.RESTORED_VERSION_GREEN if ok else Reason.RESTORED_VERSION_NOT_GREEN,
        message,
    )
    draft.condition(ConditionType.READY, False, Reason.ROLLED_BACK, message)
    current = draft.status.current_release
    if current is not None:
        _record(draft, current, record, Phase.ROLLED_BACK, message)
    return draft.finish(Phase.ROLLED_BACK, message)


def _record(
    draft: Draft, release: Release, record: RollbackStatus, phase: Phase, message: str
) -> None:
    """REC-AI-DEPLOY-004 and the closure, written before the status says it is done."""
    if (
        draft.status.current_release is not None
        and release.digest == draft.status.current_release.digest
    ):
        draft.updates["current_release"] = release.replace(
            closed_at=rfc3339(draft.now, milliseconds=True)
        )
    draft.record(RecordType.ROLLBACK, release, rollback_content(**record.model_dump()))
    draft.record(
        RecordType.CLOSURE,
        release,
        closure_content(
            final_phase=phase.value,
            decision=draft.updates.get("decision", draft.status.decision),
            monitoring_started_at=None,
            monitoring_ended_at=None,
            summary=message,
            release=release_summary(release),
            traffic_steps=strategy.traffic_steps(draft, release),
        )
        | (postdeploy.closure_fields(draft.spec, draft.obs.annotations) if draft.spec else {}),
    )


def _restore_failed(
    draft: Draft, release: Release, record: RollbackStatus, target: Release, detail: str
) -> Plan:
    """The restored release did not become available in time: say so loudly rather than
    wait in RollingBack for ever. Nothing more is tried automatically."""
    message = (
        f"Rollback from {record.from_version} to {target.version} did not complete "
        f"within the verification timeout: {detail}. The service needs a person."
    )
    draft.condition(ConditionType.ROLLED_BACK, False, Reason.RESTORE_FAILED, message)
    draft.condition(ConditionType.READY, False, Reason.RESTORE_FAILED, message)
    _record(draft, release, record, Phase.FAILED, message)
    return draft.finish(Phase.FAILED, message)


def settled(draft: Draft, spec: AIDeploymentSpec, release: Release) -> Plan:
    """RolledBack (or Failed with nothing to restore) stays so until a new spec: the failed
    version is never redeployed again and again. The phase is worked out from the rollback
    record, not kept from status, so that an interlude (an invalid spec reverted, say) does
    not leave a stale Failed behind; the restored release keeps being maintained."""
    _consume_annotations(draft)
    postdeploy.retrospective(draft, spec, release, (draft.status.phase or Phase.ROLLED_BACK).value)
    record = draft.status.rollback
    target = draft.status.last_good_release
    restorable = (
        record is not None
        and record.to_digest is not None
        and target is not None
        and target.digest == record.to_digest
    )
    if record is not None and target is not None and restorable:
        strategy.rolled_back(draft, spec, release, target, settled=True)
        if record.completed_at is not None:
            if draft.status.phase == Phase.ROLLED_BACK and draft.status.message:
                return draft.finish(Phase.ROLLED_BACK, draft.status.message)
            return _rolled_back(draft, record, target)
    elif record is not None and record.to_digest is None:
        strategy.rolled_back(draft, spec, release, None, settled=True)
    return draft.finish(Phase.FAILED, draft.status.message or "")
