"""What the phase machine sees (Observation) and what it asks for (Plan), and the draft
status it builds in between. Data only; the decisions live in machine.py and its siblings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from aideploy.admission.config import PodPolicy
from aideploy.api.constants import ConditionType, Phase, Reason
from aideploy.api.records import RecordType
from aideploy.api.spec import AIDeploymentSpec, Probe
from aideploy.api.status import (
    AIDeploymentStatus,
    Condition,
    ProbeOutcome,
    Release,
    StatusUpdate,
)
from aideploy.api.times import rfc3339
from aideploy.logic.canary_routing import CanaryRouter
from aideploy.logic.conditions import set_condition
from aideploy.logic.gate import ApprovalPolicy
from aideploy.logic.releases import sign_releases
from aideploy.logic.topology import Routing, Topology, WorkloadChanges, Workloads
from aideploy.logic.workload import Owner, RolloutProgress

EventType = Literal["Normal", "Warning"]
ProbePurpose = Literal["verification", "restore", "monitoring", "analysis"]
WARNING_PHASES = frozenset({Phase.FAILED, Phase.ROLLED_BACK, Phase.ROLLING_BACK, Phase.HELD})


_READY_BY_PHASE: dict[Phase, tuple[bool, Reason]] = {
    Phase.DEPLOYING: (False, Reason.ROLLOUT_IN_PROGRESS),
    Phase.VERIFYING: (False, Reason.VERIFICATION_IN_PROGRESS),
    Phase.HELD: (False, Reason.AWAITING_GO_LIVE),
    Phase.MONITORING: (True, Reason.MONITORING_IN_PROGRESS),
    Phase.SUCCEEDED: (True, Reason.RELEASE_SERVING),
    Phase.ROLLING_BACK: (False, Reason.ROLLING_BACK),
    Phase.ROLLED_BACK: (False, Reason.ROLLED_BACK),
}


@dataclass(frozen=True)
class ProbeRun:
    """Results of probes the reconciler ran because the previous plan asked for them."""

    purpose: ProbePurpose
    digest: str
    outcomes: tuple[ProbeOutcome, ...]


@dataclass(frozen=True)
class Observation:
    owner: Owner
    generation: int
    annotations: Mapping[str, str]
    raw_spec: Mapping[str, Any]
    status: AIDeploymentStatus
    workloads: Workloads
    now: datetime
    probe_run: ProbeRun | None = None
    # The staging AIDeployment named by spec.promotion.fromStaging, as read (None: absent).
    staging: Mapping[str, Any] | None = None
    approval_policy: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    # The operator's pod policy (approvers config podPolicy); None: none configured.
    pod_policy: PodPolicy | None = None


@dataclass(frozen=True)
class ProbeRequest:
    """Probes to run; those that name no URL go to `service` (the preview Service for a
    blue-green candidate, else the stable one)."""

    purpose: ProbePurpose
    digest: str
    probes: tuple[Probe, ...]
    port: int
    service: str = ""
    #: No verdict after this: the reconciler stops waiting for probes that still run (a
    #: probe's own timeout may be longer), and decide() then times the rollout out.
    deadline: datetime | None = None


@dataclass(frozen=True)
class Event:
    type: EventType
    reason: str
    message: str
    #: For a phase transition: what it announces (see `transition_key`). It is posted under
    #: a name made of it, so that posting it again after a crash finds it instead of
    #: announcing the transition twice.
    transition: str = ""


def transition_key(phase: str, since: str | None) -> str:
    """The identity of one entry into a phase, as the stored status knows it."""
    return f"{phase}@{since or ''}"


@dataclass(frozen=True)
class RecordIntent:
    """A procedure record to write before the status that reports its step: `match` are
    content keys that tell this event from others of the same type and generation."""

    type: RecordType
    generation: int
    digest: str
    content: dict[str, Any]
    match: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    status: AIDeploymentStatus
    apply: WorkloadChanges | None = None
    events: tuple[Event, ...] = ()
    requeue_after: timedelta | None = None
    run_probes: ProbeRequest | None = None
    remove_annotations: tuple[str, ...] = ()
    records: tuple[RecordIntent, ...] = ()


def release_summary(release: Release) -> dict[str, object]:
    """How records name a release."""
    return {
        "version": release.version,
        "digest": release.digest,
        "generation": release.generation,
        "deployedAt": release.deployed_at,
    }


@dataclass
class Draft:
    """The status being built for one decision, plus the side requests that go with it."""

    obs: Observation
    digest: str
    conditions: list[Condition] = field(default_factory=list)
    updates: StatusUpdate = field(default_factory=lambda: StatusUpdate())
    events: list[Event] = field(default_factory=list)
    spec: AIDeploymentSpec | None = None
    topology: Topology | None = None
    _routing: Routing | None = field(default=None, repr=False)
    run_probes: ProbeRequest | None = None
    remove_annotations: list[str] = field(default_factory=list)
    wake_at: list[datetime] = field(default_factory=list)
    records: list[RecordIntent] = field(default_factory=list)

    @property
    def now(self) -> datetime:
        return self.obs.now

    @property
    def status(self) -> AIDeploymentStatus:
        return self.obs.status

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

    def event(self, type_: EventType, reason: Reason, message: str) -> None:
        self.events.append(Event(type_, reason.value, message))

    def record(
        self, type_: RecordType, release: Release, content: dict[str, Any], event: str = ""
    ) -> None:
        """Ask for a record of `release`; `event` tells apart records of one type that a
        release can have more than one of (the verification decision, a go-live)."""
        match = {"event": event} if event else {}
        self.records.append(
            RecordIntent(
                type=type_,
                generation=release.generation or self.obs.generation,
                digest=release.digest,
                content={**content, **match},
                match=match,
            )
        )

    def wake(self, at: datetime) -> None:
        """Ask to be reconciled again at `at` (a deadline, a check, a window opening)."""
        self.wake_at.append(at)

    def router(self) -> CanaryRouter:
        spec = self.spec
        return CanaryRouter(
            self.obs.owner,
            spec.model.name if spec else self.obs.owner.name,
            self.obs.workloads,
            self.obs.now,
            default_port=spec.serving.port if spec else 8080,
        )

    def route(self, topology: Topology) -> None:
        """Ask for the workloads to be as `topology` says (the last call wins)."""
        self.topology = topology
        self._routing = None

    def routing(self) -> Routing | None:
        """The changes the routed topology needs, built once per topology."""
        if self.topology is None:
            return None
        if self._routing is None:
            self._routing = self.router().route(self.topology)
        return self._routing

    def waiting_reason(self) -> str | None:
        """Why the release's Deployment is not applied yet, when the routing holds it back."""
        routing = self.routing()
        return routing.deferred if routing is not None else None

    def progress(self, release: Release) -> RolloutProgress | None:
        """How the Deployment of `release` rolls out, under the routed topology's strategy;
        None until it runs exactly that release."""
        assert self.topology is not None, "route() before progress()"
        return self.router().progress(release, self.topology.replicas, self.topology.mode)

    def finish(self, phase: Phase, message: str) -> Plan:
        old = self.obs.status
        if all(c.type != ConditionType.READY for c in self.conditions) and phase in _READY_BY_PHASE:
            # Said afresh where a phase keeps its Ready and the one it had was dropped (it
            # only reported a refused write that has gone through since).
            ok, reason = _READY_BY_PHASE[phase]
            self.condition(ConditionType.READY, ok, reason, message)
        phase_changed = old.phase != phase
        new_status = old.replace(
            observed_generation=self.obs.generation,
            spec_digest=self.digest,
            phase=phase,
            message=message,
            phase_transition_time=(
                rfc3339(self.now) if phase_changed else old.phase_transition_time
            ),
            conditions=self.conditions,
            **self.updates,
        )
        changes = None
        routing = self.routing()
        if routing is not None:
            stable, candidate = routing.refs()
            new_status = new_status.replace(
                stable_release=stable, candidate_release=candidate, traffic=list(routing.traffic)
            )
            changes = routing.changes or None
            if routing.wake_at is not None:
                self.wake(routing.wake_at)
        new_status = sign_releases(
            new_status, self.obs.approval_policy.provenance_key, self.obs.owner.uid
        )
        old_ready = old.condition(ConditionType.READY)
        new_ready = new_status.condition(ConditionType.READY)
        # A Ready that was dropped (it only reported a refused write) is no change to say.
        reason_changed = old_ready is not None and old_ready.reason != (
            new_ready.reason if new_ready else None
        )
        events = list(self.events)
        if phase_changed or (reason_changed and phase in WARNING_PHASES):
            event_type: EventType = "Warning" if phase in WARNING_PHASES else "Normal"
            transition = (
                transition_key(phase.value, new_status.phase_transition_time)
                if phase_changed
                else ""  # a new reason within the phase is not the entry into it
            )
            events.insert(0, Event(event_type, phase.value, message, transition))
        future = [at for at in self.wake_at if at > self.now]
        requeue = min(future) - self.now if future else None
        return Plan(
            status=new_status,
            apply=changes,
            events=tuple(events),
            requeue_after=requeue,
            run_probes=self.run_probes,
            remove_annotations=tuple(self.remove_annotations),
            records=tuple(self.records),
        )
