"""What a carried-out plan means for the metrics: the reconciler reports each decision
here, and the mapping from phases, gates and rollbacks to gauges and counters stays out of
its orchestration."""

from __future__ import annotations

from aideploy.api.times import parse_time
from aideploy.logic.inventory import live_registration
from aideploy.logic.plan import Observation, Plan
from aideploy.metrics import Metrics

ROLLBACK_METRIC_REASONS = {
    "ProbesRed": "probe",
    "SignalRed": "signal",
    "ProgressDeadlineExceeded": "deadline",
    "VerificationTimeout": "deadline",
    "ManualRollback": "manual",
    "AmberRollback": "amber",
}


def observe_metrics(metrics: Metrics, obs: Observation, plan: Plan) -> None:
    """Gauges from the state just written; counters only for a phase that changed."""
    old, new = obs.status, plan.status
    key = (obs.owner.namespace, obs.owner.name)
    if new.phase is None:
        return
    spec = obs.raw_spec
    risk = str(spec.get("riskLevel") or "")
    metrics.set_inventory(
        key,
        {
            "system": str(spec.get("system") or ""),
            "environment": str(spec.get("environment") or "production"),
            "risk_level": risk,
            "version": new.stable_release.version if new.stable_release else "",
            "registration": live_registration(spec, obs.annotations),
            "phase": new.phase.value,
        },
    )
    metrics.set_object_state(
        key,
        new.phase.value,
        list(new.gate.blocked_by) if new.gate is not None else [],
        decision=new.decision,
        since=parse_time(new.phase_transition_time) if new.phase_transition_time else None,
    )
    rollback = new.rollback
    release = new.current_release
    metrics.record_transition(
        key,
        old.phase.value if old.phase else None,
        new.phase.value,
        at=obs.now,
        phase_entered_at=(
            parse_time(old.phase_transition_time) if old.phase_transition_time else None
        ),
        approved_at=parse_time(release.deployed_at) if release and release.deployed_at else None,
        red_at=parse_time(rollback.red_at) if rollback else None,
        rollback_reason=ROLLBACK_METRIC_REASONS.get(rollback.trigger) if rollback else None,
    )
