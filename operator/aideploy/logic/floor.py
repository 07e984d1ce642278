"""The gate's floor: PROC-AI-DEPLOY-001 §4.4 (approvals by risk level) and Appendix A
(every CHK-AI-DEPLOY-001 item) are the least a rollout needs.

An AIDeployment is written by the people the gate judges, so its `approvals.required` and
`checklist.required` may add roles and items but never drop what the procedure demands.
Only the operator's own configuration (the approvers config's `lowerGate`) may lower the
gate, per risk level; the gate then says so, and the approval record keeps it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from aideploy.api.constants import CHECKLIST_ITEMS, REQUIRED_ROLES, RiskLevel, Role
from aideploy.api.spec import AIDeploymentSpec


@dataclass(frozen=True)
class Floor:
    """What the spec's overrides leave out of the floor, and whether that counts."""

    risk: RiskLevel
    omitted_roles: tuple[str, ...] = ()
    omitted_items: tuple[str, ...] = ()
    lowered: bool = False  # the operator's policy lets the omissions stand

    @property
    def omitted(self) -> list[str]:
        return [*self.omitted_roles, *(f"checklist item {i}" for i in self.omitted_items)]

    def message(self) -> str:
        """A sentence for the gate's message; empty when the spec keeps the floor."""
        if not self.omitted:
            return ""
        what = ", ".join(self.omitted)
        if self.lowered:
            return (
                f"The operator's lowerGate policy lowers the gate for {self.risk.value} risk: "
                f"{what} not required, as the spec asks; the approval record says so."
            )
        return (
            f"The spec's overrides leave out {what}, which {self.risk.value} risk requires "
            "(PROC-AI-DEPLOY-001 §4.4 and Appendix A): still required. Only the operator's "
            "configuration (lowerGate in the approvers config) can lower the gate."
        )

    def to_record(self) -> dict[str, object] | None:
        if not self.omitted:
            return None
        return {
            "riskLevel": self.risk.value,
            "omitted": self.omitted,
            "loweredByOperatorPolicy": self.lowered,
        }


def floor_of(spec: AIDeploymentSpec, lower_gate_for: Collection[RiskLevel] = ()) -> Floor:
    roles = spec.approvals.required if spec.approvals is not None else None
    items = spec.checklist.required if spec.checklist is not None else None
    return Floor(
        risk=spec.risk_level,
        omitted_roles=tuple(
            r.value for r in REQUIRED_ROLES[spec.risk_level] if roles is not None and r not in roles
        ),
        omitted_items=tuple(i for i in CHECKLIST_ITEMS if items is not None and i not in items),
        lowered=spec.risk_level in lower_gate_for,
    )


def required_roles(spec: AIDeploymentSpec, lowered: bool = False) -> tuple[Role, ...]:
    """The floor's roles, then any the spec adds; only the spec's when `lowered`."""
    floor = REQUIRED_ROLES[spec.risk_level]
    if spec.approvals is None:
        return floor
    listed = tuple(spec.approvals.required)
    if lowered:
        return listed
    return (*floor, *(r for r in listed if r not in floor))


def required_items(spec: AIDeploymentSpec, lowered: bool = False) -> tuple[str, ...]:
    """Every checklist item (Appendix A), unless `lowered` lets the spec's list stand."""
    if spec.checklist is None or not lowered:
        return tuple(CHECKLIST_ITEMS)
    return tuple(spec.checklist.required)
