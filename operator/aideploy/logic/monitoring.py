"""Post-deployment monitoring (PROC-AI-DEPLOY-001 step 16): every interval the signals are
evaluated; RED rolls back, AMBER is reported without rolling back, and the release becomes
the last good one when the watch ends. The schedule lives in status, so a restarted
operator neither restarts the window nor skips a check; between checks nothing runs."""

from __future__ import annotations

from aideploy.api.constants import PROMOTE_ANNOTATION, ConditionType, Phase, Reason
from aideploy.api.durations import parse_duration
from aideploy.api.spec import AIDeploymentSpec, Result
from aideploy.api.status import MonitoringStatus, Release
from aideploy.api.times import parse_time, rfc3339
from aideploy.logic import canary, rollback, rollout, strategy
from aideploy.logic.plan import Draft, Plan
from aideploy.logic.verdict import describe, probe_request, worst
from aideploy.logic.write_failure import traffic_refused


def step(draft: Draft, spec: AIDeploymentSpec, release: Release) -> Plan:
    strategy.live(draft, spec, release)
    watch = draft.status.monitoring
    if watch is None or watch.digest != release.digest:
        # Monitoring without its schedule (hand-edited status): start the watch now.
        interval = parse_duration(spec.monitoring.interval if spec.monitoring else "30s")
        duration = parse_duration(spec.monitoring.duration if spec.monitoring else "0s")
        watch = MonitoringStatus(
            digest=release.digest,
            started_at=rfc3339(draft.now),
            ends_at=rfc3339(draft.now + duration),
            next_check_at=rfc3339(draft.now + interval),
        )
        draft.updates["monitoring"] = watch
    run = draft.obs.probe_run
    if run is not None and run.purpose == "monitoring" and run.digest == release.digest:
        interval = parse_duration(spec.monitoring.interval if spec.monitoring else "30s")
        # At a fixed rate from the schedule, not from when the check ran: a reconcile
        # delayed by load must not push every later check back by as much.
        scheduled = parse_time(watch.next_check_at) + interval
        watch = watch.replace(
            last_check_at=rfc3339(draft.now),
            next_check_at=rfc3339(scheduled if scheduled > draft.now else draft.now + interval),
            checks=watch.checks + 1,
            signals=list(run.outcomes),
        )
        draft.updates["monitoring"] = watch
        result = worst(run.outcomes)
        if result is Result.RED:
            return rollback.start(
                draft,
                spec,
                release,
                Reason.SIGNAL_RED,
                f"monitoring signal RED for version {release.version}: "
                + describe(run.outcomes, Result.RED),
            )
        _report_health(draft, release, result, describe(run.outcomes, Result.AMBER))
    canary_message = None
    if strategy.canary_pending(draft, spec, release):
        plan, canary_message = canary.steps(draft, spec, release)
        if plan is not None:
            return plan
        release = draft.updates.get("current_release") or release  # promoted: went live
    else:
        rollback.consume_stray(draft, PROMOTE_ANNOTATION, "no canary step waits to be promoted")
    ends_at = parse_time(watch.ends_at)
    # While users cannot be moved to it (a refused Service write), the watch is not over.
    if draft.now >= ends_at and canary_message is None and not traffic_refused(draft.status):
        message = (
            f"Version {release.version} completed its monitoring window "
            f"({watch.checks} checks); it is the last good release."
        )
        draft.condition(ConditionType.READY, True, Reason.MONITORING_COMPLETE, message)
        return rollout.succeed(draft, spec, release, message)
    next_check = parse_time(watch.next_check_at)
    request = probe_request(spec, release, "monitoring", draft.obs.owner.name)
    if request is not None and draft.now >= next_check and run is None and not draft.run_probes:
        draft.run_probes = request  # an analysis asked for goes first; the check follows
    if request is not None:
        draft.wake(next_check)
    if canary_message is not None:  # its condition says which step, and why it waits
        return draft.finish(Phase.MONITORING, canary_message)
    draft.wake(ends_at)
    kept = draft.status.message if draft.status.phase == Phase.MONITORING else None
    return draft.finish(Phase.MONITORING, kept or f"Monitoring version {release.version}.")


def _report_health(draft: Draft, release: Release, result: Result | None, amber: str) -> None:
    if result is Result.AMBER:
        message = f"Version {release.version} has AMBER signals: {amber}."
        previous = draft.status.condition(ConditionType.HEALTHY)
        if previous is None or previous.status != "False":
            draft.event("Warning", Reason.SIGNALS_AMBER, message)
        draft.condition(ConditionType.HEALTHY, False, Reason.SIGNALS_AMBER, message)
    else:
        draft.condition(
            ConditionType.HEALTHY,
            True,
            Reason.SIGNALS_GREEN,
            f"Version {release.version}: every monitoring signal is GREEN.",
        )
