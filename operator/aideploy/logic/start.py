"""The start of a rollout, once the gate and the window let it through (PROC-AI-DEPLOY-001
step 12): the release it deploys, the plan and approval records, and what becomes of the
release rolled out before it."""

from __future__ import annotations

from aideploy.api.constants import ConditionType, Phase, Reason
from aideploy.api.records import RecordType
from aideploy.api.spec import AIDeploymentSpec
from aideploy.api.status import Release
from aideploy.api.times import rfc3339
from aideploy.logic import rollout, strategy
from aideploy.logic.gate import GateResult
from aideploy.logic.plan import Draft, Plan, release_summary
from aideploy.logic.record_content import approval_content, closure_content, plan_content


def start_rollout(draft: Draft, spec: AIDeploymentSpec, gate: GateResult) -> Plan:
    _retire_previous(draft, spec)
    # The retrospective closed the release before this one: this one has none yet.
    draft.conditions = [c for c in draft.conditions if c.type != ConditionType.CLOSED]
    release = Release(
        version=spec.model.version,
        digest=draft.digest,
        generation=draft.obs.generation,
        deployed_at=rfc3339(draft.now),
        template=spec.template,
        serving=spec.serving.model_dump(mode="json", by_alias=True),
        replicas=spec.replicas,
        change_type=draft.updates.get("change_type"),
        conformity_assessment=spec.compliance.conformity_assessment if spec.compliance else None,
        strategy=strategy.spec_mode(spec),
    )
    draft.updates.update(
        {
            "current_release": release,
            "gate": None,
            "decision": None,
            "verification": None,
            "monitoring": None,
            "rollback": None,
        }
    )
    strategy.rolling_out(draft, spec, release)
    if draft.status.condition(ConditionType.RELEASES_TRUSTED) is not None:
        draft.condition(
            ConditionType.RELEASES_TRUSTED,
            True,
            Reason.RELEASES_SIGNED,
            f"Version {release.version} was started, and signed, by this operator.",
        )
    draft.record(
        RecordType.PLAN,
        release,
        plan_content(spec, spec_digest=draft.digest, change_type=release.change_type),
    )
    draft.record(
        RecordType.APPROVAL,
        release,
        approval_content(
            spec, draft.obs.annotations, spec_digest=draft.digest, observed_at=draft.now, gate=gate
        ),
    )
    message = f"Rolling out version {spec.model.version} ({spec.replicas} replicas)."
    if waiting := draft.waiting_reason():
        message = f"Version {spec.model.version} waits to roll out: {waiting}."
    draft.condition(ConditionType.DEPLOYED, False, Reason.ROLLOUT_IN_PROGRESS, message)
    draft.condition(ConditionType.READY, False, Reason.ROLLOUT_IN_PROGRESS, message)
    draft.wake(draft.now + rollout.verification_timeout(spec))
    return draft.finish(Phase.DEPLOYING, message)


def _retire_previous(draft: Draft, spec: AIDeploymentSpec) -> None:
    """What the release rolled out before this one becomes: the rollback target if it went
    live, and closed on record if its rollout never ended."""
    status = draft.status
    previous = status.current_release
    if previous is None or previous.digest == draft.digest:
        return  # nothing before it, or a re-rollout of itself: no target, nothing to close
    if previous.went_live_at and status.rollback is None:
        # It went live and was serving when this newer rollout began (perhaps still in its
        # watch, perhaps after the new spec waited at the gate): it is the rollback target.
        draft.updates["last_good_release"] = previous
    if previous.closed_at is None:
        # Its rollout never ended (superseded in Verifying, Held or Monitoring): close it on
        # record, so that every plan has its closure.
        draft.record(
            RecordType.CLOSURE,
            previous,
            closure_content(
                final_phase="Superseded",
                decision=status.decision,
                monitoring_started_at=status.monitoring.started_at if status.monitoring else None,
                monitoring_ended_at=None,
                summary=(
                    f"Version {previous.version} was superseded by {spec.model.version} "
                    "before its rollout ended."
                ),
                release=release_summary(previous),
            ),
        )
