"""Pydantic models of `AIDeployment.status`, as the operator writes it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from aideploy.api.constants import Phase

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


class ApprovalRecord(StatusModel):
    """An approval as read from its annotation, and whether it counts."""

    role: str
    by: str
    digest: str
    comment: str = ""
    valid: bool


class Gate(StatusModel):
    """What the gate still waits for; empty lists mean that part is satisfied."""

    missing_approvals: list[str] = []
    stale_approvals: list[str] = []
    missing_checklist: list[str] = []
    invalid_checklist: list[str] = []
    missing_compliance: list[str] = []
    blocked_by: list[str] = []


class AIDeploymentStatus(StatusModel):
    observed_generation: int | None = None
    spec_digest: str | None = None
    phase: Phase | None = None
    decision: Literal["GREEN", "AMBER", "RED"] | None = None
    message: str | None = None
    phase_transition_time: str | None = None
    current_release: Release | None = None
    last_good_release: Release | None = None
    gate: Gate | None = None
    approvals: list[ApprovalRecord] = []
    verification: dict[str, Any] | None = None
    conditions: list[Condition] = []

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)
