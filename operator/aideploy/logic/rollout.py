"""From a started rollout to the go-live decision (PROC-AI-DEPLOY-001 steps 13-15):
wait for the Deployment, verify it with probes, decide GREEN / AMBER / RED."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta

from aideploy.api.constants import (
    GO_LIVE_ANNOTATION,
    GO_LIVE_PROCEED,
    GO_LIVE_ROLLBACK,
    ConditionType,
    Phase,
    Reason,
)
from aideploy.api.durations import parse_duration
from aideploy.api.records import RecordType
from aideploy.api.spec import AIDeploymentSpec, AmberPolicy, Result
from aideploy.api.status import (
    AIDeploymentStatus,
    MonitoringStatus,
    ProbeOutcome,
    Release,
    VerificationStatus,
)
from aideploy.api.times import parse_time, rfc3339
from aideploy.logic import canary, next_step, postdeploy, rollback, strategy
from aideploy.logic.plan import Draft, Plan, release_summary
from aideploy.logic.record_content import closure_content, deployment_log_content
from aideploy.logic.verdict import describe, probe_request, worst


def verification_timeout(spec: AIDeploymentSpec) -> timedelta:
    return parse_duration(spec.verification.timeout)


def serving_release(status: AIDeploymentStatus) -> Release | None:
    """The release whose pods serve now, whatever the spec says."""
    if status.rollback is not None:
        if status.rollback.to_digest is None:
            return None
        return status.last_good_release
    return status.current_release


def follow(draft: Draft, spec: AIDeploymentSpec, release: Release) -> Plan:
    """Deploying and Verifying: the same release until the go-live decision."""
    strategy.rolling_out(draft, spec, release)
    deadline = parse_time(release.deployed_at or rfc3339(draft.now)) + verification_timeout(spec)
    progress = draft.progress(release)
    version = release.version
    if progress is not None and progress.failed:
        return rollback.start(
            draft,
            spec,
            release,
            Reason.PROGRESS_DEADLINE_EXCEEDED,
            f"version {version} failed to roll out: {progress.message}",
        )
    timed_out = draft.now >= deadline
    if progress is None or not progress.complete:
        detail = (
            progress.message
            if progress is not None
            else draft.waiting_reason() or "the Deployment is being applied"
        )
        if timed_out:
            return _timed_out(draft, spec, release, detail)
        message = f"Version {version} is rolling out: {detail}."
        draft.condition(ConditionType.DEPLOYED, False, Reason.ROLLOUT_IN_PROGRESS, message)
        draft.condition(ConditionType.READY, False, Reason.ROLLOUT_IN_PROGRESS, message)
        draft.wake(deadline)
        return draft.finish(Phase.DEPLOYING, message)
    deployed = f"Version {version} is deployed: {progress.message}."
    draft.condition(ConditionType.DEPLOYED, True, Reason.ROLLOUT_COMPLETE, deployed)
    return _verify(draft, spec, release, deadline)


def _timed_out(draft: Draft, spec: AIDeploymentSpec, release: Release, detail: str) -> Plan:
    """Verified says so too: left at VerificationInProgress, it would claim probes still
    run on a release that is being taken out of service."""
    reason = (
        f"version {release.version} was not verified within {spec.verification.timeout}: {detail}"
    )
    draft.condition(
        ConditionType.VERIFIED,
        False,
        Reason.VERIFICATION_TIMEOUT,
        f"{reason[0].upper()}{reason[1:]}. Make the release answer its probes within the "
        "timeout (or raise spec.verification.timeout), then apply the spec again.",
    )
    return rollback.start(draft, spec, release, Reason.VERIFICATION_TIMEOUT, reason)


def _verify(draft: Draft, spec: AIDeploymentSpec, release: Release, deadline: datetime) -> Plan:
    timed_out = draft.now >= deadline
    request = probe_request(
        spec, release, "verification", strategy.probe_service(draft, spec, "verification")
    )
    if request is None:
        message = f"Version {release.version} is deployed; no verification probes are configured."
        draft.condition(ConditionType.VERIFIED, True, Reason.NO_PROBES_CONFIGURED, message)
        _log_unverified_deployment(draft, release)
        return go_live(draft, spec, release, message)
    verification = draft.status.verification
    if verification is None or verification.digest != release.digest:
        verification = VerificationStatus(digest=release.digest, started_at=rfc3339(draft.now))
        draft.updates["verification"] = verification
    run = draft.obs.probe_run
    if run is None or run.purpose != "verification" or run.digest != release.digest:
        if timed_out:
            return _timed_out(draft, spec, release, "the probes did not finish")
        message = f"Verifying version {release.version} with {len(request.probes)} probes."
        draft.condition(ConditionType.VERIFIED, None, Reason.VERIFICATION_IN_PROGRESS, message)
        draft.condition(ConditionType.READY, False, Reason.VERIFICATION_IN_PROGRESS, message)
        draft.run_probes = dataclasses.replace(request, deadline=deadline)
        return draft.finish(Phase.VERIFYING, message)
    result = worst(run.outcomes) or Result.GREEN
    draft.updates["decision"] = result
    done = verification.replace(
        completed_at=rfc3339(draft.now), decision=result, probes=list(run.outcomes)
    )
    draft.updates["verification"] = done
    _log_deployment(
        draft,
        release,
        "verification",
        [
            {"step": "rollout started", "at": release.deployed_at},
            {"step": "verification started", "at": done.started_at},
            {"step": "go-live decision", "at": done.completed_at, "detail": result.value},
        ],
        probes=run.outcomes,
        decision=result.value,
    )
    return _decision(draft, spec, release, result, list(run.outcomes))


def _log_unverified_deployment(draft: Draft, release: Release) -> None:
    """Every executed deployment has its execution log (procedure step 13), also when
    there were no probes to verify it with: the log then says so."""
    _log_deployment(
        draft,
        release,
        "verification",
        [
            {"step": "rollout started", "at": release.deployed_at},
            {"step": "went live", "at": rfc3339(draft.now), "detail": "no verification"},
        ],
        verification="none configured",
    )


def _log_deployment(
    draft: Draft,
    release: Release,
    event: str,
    steps: list[dict[str, str | None]],
    probes: Sequence[ProbeOutcome] = (),
    decision: str | None = None,
    verification: str | None = None,
) -> None:
    """Ask for a deployment-log record (REC-AI-DEPLOY-003) of `release`; `event` tells
    apart the logs one release can have (its verification, a go-live by annotation)."""
    draft.record(
        RecordType.DEPLOYMENT_LOG,
        release,
        deployment_log_content(
            steps=steps,
            probes=list(probes),
            decision=decision,
            verification=verification,
            release=release_summary(release),
        ),
        event=event,
    )


def _decision(
    draft: Draft,
    spec: AIDeploymentSpec,
    release: Release,
    result: Result,
    outcomes: list[ProbeOutcome],
) -> Plan:
    version = release.version
    if result is Result.GREEN:
        message = f"Version {version}: all {len(outcomes)} probes GREEN."
        draft.condition(ConditionType.VERIFIED, True, Reason.ALL_PROBES_GREEN, message)
        return go_live(draft, spec, release, message)
    if result is Result.AMBER:
        amber = describe(outcomes, Result.AMBER)
        policy = spec.verification.amber_policy
        if policy is AmberPolicy.PROCEED:
            message = f"Version {version} is AMBER and amberPolicy is proceed: {amber}."
            draft.condition(ConditionType.VERIFIED, True, Reason.AMBER_ACCEPTED, message)
            return go_live(draft, spec, release, message)
        if policy is AmberPolicy.ROLLBACK:
            return rollback.start(
                draft,
                spec,
                release,
                Reason.AMBER_ROLLBACK,
                f"version {version} is AMBER and amberPolicy is rollback: {amber}",
            )
        message = (
            f"Version {version} is AMBER: {amber}. Decide with the annotation "
            f"{GO_LIVE_ANNOTATION}: proceed or rollback. {next_step.go_live(draft.obs.owner)}"
        )
        draft.condition(ConditionType.VERIFIED, False, Reason.PROBES_AMBER, message)
        draft.condition(ConditionType.READY, False, Reason.AWAITING_GO_LIVE, message)
        return draft.finish(Phase.HELD, message)
    red = describe(outcomes, Result.RED)
    if spec.rollback.automatic:
        return rollback.start(
            draft, spec, release, Reason.PROBES_RED, f"version {version} is RED: {red}"
        )
    message = (
        f"Version {version} is RED: {red}. Automatic rollback is off; decide with the "
        f"annotation {GO_LIVE_ANNOTATION}: proceed or rollback. "
        + next_step.go_live(draft.obs.owner)
    )
    draft.condition(ConditionType.VERIFIED, False, Reason.PROBES_RED, message)
    draft.condition(ConditionType.READY, False, Reason.AWAITING_GO_LIVE, message)
    return draft.finish(Phase.HELD, message)


def go_live(draft: Draft, spec: AIDeploymentSpec, release: Release, why: str) -> Plan:
    """GREEN (or accepted AMBER): watch it when monitoring is configured, else done."""
    with_canary = strategy.canary_pending(draft, spec, release)
    if not with_canary:  # a canary goes live (a rollback target) once promoted
        release = release.replace(went_live_at=rfc3339(draft.now))
    draft.updates["current_release"] = release
    if spec.monitoring is not None or with_canary:
        start = draft.now
        duration = spec.monitoring.duration if spec.monitoring else "0s"
        interval = spec.monitoring.interval if spec.monitoring else "30s"
        watch = MonitoringStatus(
            digest=release.digest,
            started_at=rfc3339(start),
            ends_at=rfc3339(start + parse_duration(duration)),
            next_check_at=rfc3339(start + parse_duration(interval)),
        )
        draft.updates["monitoring"] = watch
        if with_canary:
            draft.updates["canary"] = canary.state_of(draft, spec, release)
            message = f"{why} Version {release.version} starts its canary steps at 0%."
            draft.wake(start)  # the first step at once
        else:
            message = f"{why} Version {release.version} is live; monitoring it for {duration}."
        strategy.live(draft, spec, release)
        draft.condition(ConditionType.READY, True, Reason.MONITORING_IN_PROGRESS, message)
        draft.wake(min(parse_time(watch.next_check_at), parse_time(watch.ends_at)))
        return draft.finish(Phase.MONITORING, message)
    message = f"{why} Version {release.version} is live."
    draft.condition(ConditionType.READY, True, Reason.RELEASE_SERVING, message)
    return succeed(draft, spec, release, message)


def succeed(draft: Draft, spec: AIDeploymentSpec, release: Release, message: str) -> Plan:
    """The release ends its rollout well: it becomes the last good one, and is closed."""
    release = release.replace(closed_at=rfc3339(draft.now))
    draft.updates["current_release"] = release
    draft.updates["last_good_release"] = release
    strategy.settled_live(draft, spec, release)
    watch = draft.updates.get("monitoring", draft.status.monitoring)
    draft.record(
        RecordType.CLOSURE,
        release,
        closure_content(
            final_phase=Phase.SUCCEEDED.value,
            decision=draft.updates.get("decision", draft.status.decision),
            monitoring_started_at=watch.started_at if watch else None,
            monitoring_ended_at=rfc3339(draft.now) if watch else None,
            summary=message,
            release=release_summary(release),
            traffic_steps=strategy.traffic_steps(draft, release),
        )
        | postdeploy.closure_fields(spec, draft.obs.annotations),
    )
    postdeploy.registered(draft, spec, release)
    return draft.finish(Phase.SUCCEEDED, message)


def held(draft: Draft, spec: AIDeploymentSpec, release: Release) -> Plan:
    """AMBER (or RED without automatic rollback) waits for a person's decision."""
    strategy.rolling_out(draft, spec, release)
    decision = draft.obs.annotations.get(GO_LIVE_ANNOTATION, "").strip().lower()
    if decision == GO_LIVE_PROCEED:
        draft.remove_annotations.append(GO_LIVE_ANNOTATION)
        message = f"Go-live of version {release.version} decided by annotation: proceed."
        _log_deployment(
            draft,
            release,
            "go-live",
            [
                {
                    "step": "go-live decision by annotation",
                    "at": rfc3339(draft.now),
                    "detail": "proceed",
                }
            ],
            decision=draft.status.decision,
        )
        draft.condition(ConditionType.VERIFIED, True, Reason.GO_LIVE_PROCEED, message)
        return go_live(draft, spec, release, message)
    if decision == GO_LIVE_ROLLBACK:
        trigger = (
            Reason.AMBER_ROLLBACK
            if draft.status.decision == Result.AMBER
            else Reason.MANUAL_ROLLBACK
        )
        return rollback.start(
            draft,
            spec,
            release,
            trigger,
            f"go-live decision by annotation: rollback of {release.version}",
        )
    if decision:
        draft.remove_annotations.append(GO_LIVE_ANNOTATION)
        draft.event(
            "Warning",
            Reason.AWAITING_GO_LIVE,
            f"Ignored {GO_LIVE_ANNOTATION}={decision!r}: write proceed or rollback.",
        )
    return draft.finish(Phase.HELD, _held_message(draft))


def _held_message(draft: Draft) -> str:
    """The message Held was entered with. A refusal reported meanwhile replaced the stored
    one (and was dropped once the write went through), so the Verified condition, which
    says the same thing and which a refusal never touches, is the one to say again."""
    if draft.status.message:
        return draft.status.message
    verified = draft.status.condition(ConditionType.VERIFIED)
    if verified is not None and verified.reason in (Reason.PROBES_AMBER, Reason.PROBES_RED):
        return verified.message
    return "Held for a go-live decision."


def serving(draft: Draft, spec: AIDeploymentSpec, release: Release) -> Plan:
    """Succeeded: keep the child as released; report (not act on) lost availability;
    record the registration id and the retrospective when given."""
    strategy.settled_live(draft, spec, release)
    postdeploy.registered(draft, spec, release)
    postdeploy.retrospective(draft, spec, release, Phase.SUCCEEDED.value)
    progress = draft.progress(release)
    ready = draft.status.condition(ConditionType.READY)
    if progress is not None and progress.complete:
        if ready is not None and ready.status == "True" and draft.status.message:
            return draft.finish(Phase.SUCCEEDED, draft.status.message)  # nothing new to say
        message = f"Version {release.version} is serving: {progress.message}."
        draft.condition(ConditionType.READY, True, Reason.RELEASE_SERVING, message)
    else:
        detail = progress.message if progress is not None else "the Deployment is being re-created"
        message = f"Version {release.version} is not fully available: {detail}."
        draft.condition(ConditionType.READY, False, Reason.REPLICAS_UNAVAILABLE, message)
    return draft.finish(Phase.SUCCEEDED, message)
