"""The canary steps (spec.strategy.canary.steps), taken during Monitoring once the
candidate has verified GREEN at weight 0: setWeight moves users and waits until the
workloads carry it; pause waits (for its duration, or for `aideploy.io/promote`); analysis
runs the checks at the weight reached, and RED rolls back (weight 0, canary removed).
Where the steps are lives in status.canary, so a restart neither repeats nor skips one.
Pure; time comes from the observation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from aideploy.api.constants import PROMOTE_ANNOTATION, ConditionType, Reason
from aideploy.api.digest import release_id
from aideploy.api.durations import parse_duration
from aideploy.api.spec import AIDeploymentSpec, Canary, CanaryStep, Result
from aideploy.api.status import CanaryStatus, CanaryStepRecord, Release
from aideploy.api.times import parse_time, rfc3339
from aideploy.logic import rollback, strategy
from aideploy.logic.plan import Draft, Plan
from aideploy.logic.verdict import analysis_request, describe, worst

#: How soon to look again while a weight is being written (an HTTPRoute's change wakes
#: nobody; a Deployment's does).
SETTLE_CHECK = timedelta(seconds=2)
#: How soon to look again at an HTTPRoute that cannot carry the weight (a person fixes it).
BLOCKED_CHECK = timedelta(seconds=30)


def state_of(draft: Draft, spec: AIDeploymentSpec, release: Release) -> CanaryStatus:
    state = draft.updates.get("canary", draft.status.canary)
    if state is None or state.digest != release.digest:
        state = CanaryStatus(
            digest=release.digest,
            step_started_at=rfc3339(draft.now),
            route=strategy.route_name(spec),
        )
    return state


def _advance(
    draft: Draft, state: CanaryStatus, detail: str, weight: int | None = None
) -> CanaryStatus:
    record = CanaryStepRecord(
        step=state.step, at=rfc3339(draft.now, milliseconds=True), detail=detail
    )
    return state.replace(
        step=state.step + 1,
        held=None,
        step_started_at=rfc3339(draft.now),
        weight=state.weight if weight is None else weight,
        history=[*state.history, record],
    )


@dataclass(frozen=True)
class _Wait:
    """The step cannot be done yet: the state to keep, and why, in a sentence."""

    state: CanaryStatus
    message: str
    reason: Reason = Reason.CANARY_IN_PROGRESS


def steps(draft: Draft, spec: AIDeploymentSpec, release: Release) -> tuple[Plan | None, str | None]:
    """Take the steps that can be taken now. Returns a plan when the canary ends the
    rollout (a RED analysis: rolled back), else the sentence that says where it stands
    (None once every step is done: the watch goes on as for any live release)."""
    canary = spec.strategy.canary
    assert canary is not None
    state = state_of(draft, spec, release)
    message: str | None = None
    run_used = False  # one probe run answers one analysis step, not the next one too
    while state.step < len(canary.steps):
        step = canary.steps[state.step]
        outcome = _take(draft, spec, canary, release, state, step, run_used)
        if isinstance(outcome, Plan):
            return outcome, None
        if isinstance(outcome, _Wait):
            state, message = outcome.state, outcome.message
            draft.condition(ConditionType.READY, True, outcome.reason, message)
            break
        run_used = run_used or step.analysis is not None
        state = outcome
    draft.updates["canary"] = state
    strategy.live(draft, spec, release)
    # Left over: no step it could end waits now (a promote is for the pause under way).
    rollback.consume_stray(draft, PROMOTE_ANNOTATION, "no canary step waits to be promoted")
    if message is None and not strategy.promoted(draft, release):
        message = f"Canary {release.version}: every step is done; promoting it to all users."
        draft.condition(ConditionType.READY, True, Reason.CANARY_IN_PROGRESS, message)
        draft.wake(draft.now + SETTLE_CHECK)
    elif message is None and release.went_live_at is None:
        # Promoted: it serves everyone, and is now what a later rollout may return to.
        draft.updates["current_release"] = release.replace(went_live_at=rfc3339(draft.now))
    return None, message


def _take(
    draft: Draft,
    spec: AIDeploymentSpec,
    canary: Canary,
    release: Release,
    state: CanaryStatus,
    step: CanaryStep,
    run_used: bool,
) -> CanaryStatus | _Wait | Plan:
    """One step: the state after it when it is done, why it waits, or the rollback."""
    number = f"step {state.step + 1} of {len(canary.steps)}"
    where = f"Canary {release.version} at {state.weight}% ({number})"
    if step.set_weight is not None:
        return _set_weight(draft, spec, release, state, step.set_weight, where)
    if step.pause is not None:
        if _promoted(draft):
            return _advance(draft, state, f"pause ended by {PROMOTE_ANNOTATION}")
        if step.pause.duration:
            until = parse_time(state.step_started_at) + parse_duration(step.pause.duration)
            if draft.now >= until:
                return _advance(draft, state, f"paused {step.pause.duration}")
            draft.wake(until)
            return _Wait(state, f"{where}: paused until {rfc3339(until)}.")
        message = (
            f"{where}: paused until promoted; run kubectl aideploy promote "
            f"{draft.obs.owner.name}, or roll back."
        )
        return _Wait(state, message, Reason.CANARY_PAUSED)
    assert step.analysis is not None
    promote_hint = f"Run kubectl aideploy promote {draft.obs.owner.name} to go on, or roll back."
    if state.held is not None:  # AMBER: a person decides; the analysis is not run again
        if _promoted(draft):
            return _advance(draft, state, "analysis AMBER, let through by a person")
        return _Wait(
            state, f"{where}: analysis AMBER: {state.held}. {promote_hint}", Reason.CANARY_PAUSED
        )
    service = strategy.probe_service(draft, spec, "analysis")
    request = analysis_request(spec, release, step.analysis, service)
    if request is None:
        return _advance(draft, state, "analysis: nothing to check")
    run = None if run_used else draft.obs.probe_run
    if run is None or run.purpose != "analysis" or run.digest != release.digest:
        draft.run_probes = request
        return _Wait(state, f"{where}: analysing.")
    result = worst(run.outcomes)
    if result is Result.RED:
        return rollback.start(
            draft,
            spec,
            release,
            Reason.ANALYSIS_RED,
            f"canary analysis RED for version {release.version} at {state.weight}%: "
            + describe(run.outcomes, Result.RED),
        )
    if result is Result.AMBER:
        amber = describe(run.outcomes, Result.AMBER)
        return _Wait(
            state.replace(held=amber),
            f"{where}: analysis AMBER: {amber}. {promote_hint}",
            Reason.CANARY_PAUSED,
        )
    return _advance(draft, state, "analysis GREEN")


def _promoted(draft: Draft) -> bool:
    """A person's `aideploy.io/promote`, consumed by the one step it ends: a second step
    waiting in the same reconcile waits for another."""
    if draft.obs.annotations.get(PROMOTE_ANNOTATION) is None:
        return False
    if PROMOTE_ANNOTATION in draft.remove_annotations:
        return False
    draft.remove_annotations.append(PROMOTE_ANNOTATION)
    return True


def _set_weight(
    draft: Draft,
    spec: AIDeploymentSpec,
    release: Release,
    state: CanaryStatus,
    weight: int,
    where: str,
) -> CanaryStatus | _Wait:
    """Done once the workloads carry the weight: nothing is left to write for it, and the
    candidate has its share of users (a replica ratio needs its pods available first)."""
    state = state.replace(weight=weight)
    draft.updates["canary"] = state
    strategy.live(draft, spec, release)
    routing = draft.routing()
    assert routing is not None
    if routing.blocked is not None:
        message = f"{where}: cannot move to {weight}%: {routing.blocked}."
        draft.wake(draft.now + BLOCKED_CHECK)
        return _Wait(state, message, Reason.TRAFFIC_ROUTING_UNAVAILABLE)
    rid = release_id(release.digest)
    carried = weight == 0 or any(s.release == rid and s.weight > 0 for s in routing.traffic)
    if routing.changes or not carried:
        draft.wake(draft.now + SETTLE_CHECK)
        return _Wait(state, f"{where}: moving to {weight}%.")
    served = ", ".join(f"{s.version} {s.weight}%" for s in routing.traffic)
    return _advance(draft, state, f"weight {weight}%: {served}", weight)
