"""Pydantic models of `AIDeployment.status`, as the operator writes it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from aideploy.api.constants import Phase
from aideploy.api.spec import Result

ConditionStatus = Literal["True", "False", "Unknown"]


class StatusModel(BaseModel):
    """camelCase on the wire; unknown fields (from a newer operator) are kept."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True
    )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Condition(StatusModel):
    type: str
    status: ConditionStatus
    reason: str
    message: str
    last_transition_time: str
    observed_generation: int


class Release(StatusModel):
    """A release the operator rolled out: what it was, and enough to restore it exactly."""

    version: str
    digest: str
    generation: int | None = None
    deployed_at: str | None = None
    template: dict[str, Any] | None = None
    serving: dict[str, Any] | None = None
    replicas: int | None = None
    change_type: str | None = None
    conformity_assessment: str | None = None
    # When it passed verification (GREEN, accepted AMBER or a go-live decision) and served.
    went_live_at: str | None = None
    # When its closure record was asked for (Succeeded, rolled back, failed or superseded).
    closed_at: str | None = None


class ApprovalRecord(StatusModel):
    """An approval as read from its annotation, and whether it counts."""

    role: str
    by: str
    digest: str
    comment: str = ""
    valid: bool
    # True when the admission webhook vouched for this annotation: `by` is then the
    # authenticated identity of the request, not the annotation's free text.
    authenticated: bool = False
    groups: list[str] = []
    approved_at: str | None = None
    problem: str | None = None


class Gate(StatusModel):
    """What the gate still waits for; empty lists mean that part is satisfied."""

    missing_approvals: list[str] = []
    stale_approvals: list[str] = []
    rejected_approvals: list[str] = []
    missing_checklist: list[str] = []
    invalid_checklist: list[str] = []
    missing_compliance: list[str] = []
    compliance_problems: list[str] = []
    promotion: str | None = None
    window: dict[str, Any] | None = None
    blocked_by: list[str] = []


class ProbeOutcome(StatusModel):
    """One probe's result, as shown in status and kept in records."""

    name: str
    kind: str
    result: Result
    value: str | None = None
    message: str
    at: str
    #: How long the probe took, in seconds rounded to milliseconds (absent in old statuses).
    duration_seconds: float | None = None


class VerificationStatus(StatusModel):
    """Verification of one release (by digest): when it began, what the probes said."""

    digest: str
    started_at: str
    completed_at: str | None = None
    decision: Result | None = None
    probes: list[ProbeOutcome] = []


class MonitoringStatus(StatusModel):
    """The post-deployment watch. Times live here, not in memory, so that a restarted
    operator neither restarts the window nor misses a check."""

    digest: str
    started_at: str
    ends_at: str
    next_check_at: str
    last_check_at: str | None = None
    checks: int = 0
    signals: list[ProbeOutcome] = []


class RollbackStatus(StatusModel):
    """The last rollback: what triggered it, from which release to which, and how the
    restored release verified."""

    trigger: str
    reason: str
    from_version: str
    from_digest: str
    to_version: str | None = None
    to_digest: str | None = None
    red_at: str
    started_at: str
    completed_at: str | None = None
    verification: list[ProbeOutcome] = []
    restored_decision: Result | None = None


class RecordRef(StatusModel):
    """The newest procedure record of this object: what `kubectl aideploy verify` needs to
    notice that the last record of a chain was deleted."""

    name: str
    sequence: int
    hash: str


class AIDeploymentStatus(StatusModel):
    observed_generation: int | None = None
    change_type: str | None = None
    spec_digest: str | None = None
    phase: Phase | None = None
    decision: Result | None = None
    message: str | None = None
    phase_transition_time: str | None = None
    current_release: Release | None = None
    last_good_release: Release | None = None
    gate: Gate | None = None
    approvals: list[ApprovalRecord] = []
    verification: VerificationStatus | None = None
    monitoring: MonitoringStatus | None = None
    rollback: RollbackStatus | None = None
    latest_record: RecordRef | None = None
    conditions: list[Condition] = []

    @classmethod
    def salvage(cls, raw: Mapping[str, Any]) -> tuple[AIDeploymentStatus, list[str]]:
        """Read a status that may have been edited by hand or written by another version:
        keep every field that parses, name the ones dropped. A reconcile then rewrites
        them, instead of failing on the same bad field for ever."""
        try:
            return cls.model_validate(dict(raw)), []
        except ValidationError:
            kept: dict[str, Any] = {}
            dropped: list[str] = []
            for key, value in raw.items():
                try:
                    cls.model_validate({key: value})
                except ValidationError:
                    dropped.append(key)
                else:
                    kept[key] = value
            return cls.model_validate(kept), dropped

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)
