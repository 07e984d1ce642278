"""The approval / checklist / compliance gate of PROC-AI-DEPLOY-001 (phases 3 and 4).

Everything here answers one question for one exact spec digest: may this spec be rolled
out? Each "no" names what is missing in words a release manager understands.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aideploy.admission.config import SeparationOfDuties
from aideploy.admission.provenance import Provenance, approval_provenance, spec_author
from aideploy.api.approvals import parse_approval
from aideploy.api.constants import (
    APPROVAL_PREFIX,
    CHECKLIST_ITEMS,
    CHECKLIST_PREFIX,
    HIGH_RISK_COMPLIANCE_FIELDS,
    NA_ALLOWED_SECTION,
    RiskLevel,
    Role,
)
from aideploy.api.digest import digest_matches, digest_problem, short_digest
from aideploy.api.spec import AIDeploymentSpec
from aideploy.api.status import ApprovalRecord, Gate
from aideploy.logic.floor import Floor, floor_of, required_items, required_roles


@dataclass(frozen=True)
class ApprovalPolicy:
    """What the operator itself enforces about approvals: whether only webhook-vouched
    (authenticated) approvals count, and separation of duties, which it can check when the
    webhook recorded who changed the spec."""

    require_authenticated: bool = False
    separation: SeparationOfDuties | None = None
    # The key that signs the webhook's provenance; without it no provenance is trusted.
    provenance_key: bytes | None = None
    # Risk levels whose AIDeployments may lower the gate below the procedure's floor (the
    # approvers config's lowerGate): the operator's decision, never the object's.
    lower_gate_for: frozenset[RiskLevel] = frozenset()
    # Upgrading from a version that did not sign releases: trust unsigned ones once.
    adopt_unsigned_releases: bool = False


def _na_allowed(item: str, risk: RiskLevel) -> bool:
    return item.split(".")[0] == NA_ALLOWED_SECTION and risk is not RiskLevel.HIGH


def checklist_problem(item: str, value: str, risk: RiskLevel) -> str | None:
    """None when the item's annotation completes it, else why it does not."""
    verb, _, rest = value.strip().partition(" ")
    verb = verb.lower()
    rest = rest.strip()
    title = CHECKLIST_ITEMS[item]
    if verb == "yes":
        return None if rest else f"{item} ({title}) says yes but gives no evidence"
    if verb == "n/a":
        if not _na_allowed(item, risk):
            where = (
                "high-risk deployments"
                if item.startswith(NA_ALLOWED_SECTION + ".")
                else f"section {item.split('.')[0]}"
            )
            return f"{item} ({title}) cannot be n/a for {where}"
        return None if rest else f"{item} ({title}) is n/a without a reason"
    if verb == "no":
        return f"{item} ({title}) is marked no"
    return f"{item} ({title}) must start with 'yes <evidence>' or 'n/a <reason>'"


@dataclass(frozen=True)
class GateResult:
    approvals: list[ApprovalRecord]
    missing_roles: list[str] = field(default_factory=list)
    stale_roles: list[str] = field(default_factory=list)
    missing_items: list[str] = field(default_factory=list)
    invalid_items: list[str] = field(default_factory=list)
    missing_compliance: list[str] = field(default_factory=list)
    compliance_problems: list[str] = field(default_factory=list)
    rejected_approvals: list[str] = field(default_factory=list)
    promotion: str | None = None
    required_roles: list[str] = field(default_factory=list)
    required_items: list[str] = field(default_factory=list)
    floor: Floor | None = None

    @property
    def approved(self) -> bool:
        return not self.missing_roles

    @property
    def checklist_complete(self) -> bool:
        return not self.missing_items and not self.invalid_items

    @property
    def compliant(self) -> bool:
        return not self.missing_compliance and not self.compliance_problems

    @property
    def promoted(self) -> bool:
        return self.promotion is None

    @property
    def passed(self) -> bool:
        return self.approved and self.checklist_complete and self.compliant and self.promoted

    @property
    def blocked_by(self) -> list[str]:
        reasons = []
        if not self.approved:
            reasons.append("approvals")
        if not self.checklist_complete:
            reasons.append("checklist")
        if not self.compliant:
            reasons.append("compliance")
        if not self.promoted:
            reasons.append("promotion")
        return reasons

    def to_status(self) -> Gate:
        return Gate(
            missing_approvals=self.missing_roles,
            stale_approvals=self.stale_roles,
            rejected_approvals=self.rejected_approvals,
            missing_checklist=self.missing_items,
            invalid_checklist=self.invalid_items,
            missing_compliance=self.missing_compliance,
            compliance_problems=self.compliance_problems,
            promotion=self.promotion,
            blocked_by=self.blocked_by,
            below_floor=self.floor.omitted if self.floor else [],
            floor_lowered=bool(self.floor and self.floor.omitted and self.floor.lowered),
        )

    def _floor_note(self) -> str:
        note = self.floor.message() if self.floor else ""
        return f" {note}" if note else ""

    def approvals_message(self, digest: str) -> str:
        if self.approved:
            roles = ", ".join(a.role for a in self.approvals if a.valid)
            approved = f"Approved for spec {short_digest(digest)} by {roles or 'no role required'}."
            return approved + self._floor_note()
        message = (
            f"Waiting for approval by {', '.join(self.missing_roles)} "
            f"for spec {short_digest(digest)}."
        )
        if self.stale_roles:
            message += (
                f" Approvals by {', '.join(self.stale_roles)} were given for an older spec "
                "and no longer count."
            )
        if self.rejected_approvals:
            message += " " + " ".join(self.rejected_approvals)
        return message + self._floor_note()

    def checklist_message(self) -> str:
        if self.checklist_complete:
            return "Every required CHK-AI-DEPLOY-001 item is complete."
        parts = []
        if self.missing_items:
            parts.append(f"Checklist items missing: {', '.join(self.missing_items)}.")
        if self.invalid_items:
            parts.append(f"Checklist items not acceptable: {'; '.join(self.invalid_items)}.")
        return " ".join(parts)

    def compliance_message(self, risk: RiskLevel) -> str:
        if self.compliant:
            if risk is not RiskLevel.HIGH:
                return f"Compliance fields are not required for {risk.value} risk."
            return "All high-risk compliance fields are stated."
        parts = []
        if self.missing_compliance:
            parts.append(
                "High-risk deployment is missing spec.compliance fields: "
                + ", ".join(self.missing_compliance)
                + "."
            )
        parts.extend(self.compliance_problems)
        return " ".join(parts)


def _malformed_approval(role: str, problem: str) -> str:
    return (
        f"The {role} approval names no spec: {problem}. Write it as "
        "'<spec digest>; by=<name>; <comment>' with the digest `kubectl aideploy status` shows."
    )


def _approval_problem(
    spec: AIDeploymentSpec,
    annotations: Mapping[str, str],
    digest: str,
    role: str,
    vouched: Provenance | None,
    policy: ApprovalPolicy,
) -> str | None:
    if vouched is None:
        if policy.require_authenticated:
            return (
                f"The {role} approval is not authenticated (no admission webhook vouched "
                "for it) and this operator requires authenticated approvals."
            )
        return None
    author = spec_author(annotations, digest, policy.provenance_key)
    if (
        policy.separation is not None
        and author is not None
        and vouched.user in author.changed_by
        and policy.separation.applies(role, spec.risk_level.value)
    ):
        return (
            f"The {role} approval is by {vouched.user}, who changed this spec since it was "
            "last approved; separation "
            f"of duties for {spec.risk_level.value} risk needs another holder of the role."
        )
    return None


def _approvals(
    spec: AIDeploymentSpec,
    annotations: Mapping[str, str],
    digest: str,
    extra_roles: tuple[Role, ...],
    policy: ApprovalPolicy,
    roles: tuple[Role, ...],
) -> tuple[list[ApprovalRecord], list[str], list[str]]:
    records: list[ApprovalRecord] = []
    known_roles = {r.value for r in Role}
    for key in sorted(annotations):
        if not key.startswith(APPROVAL_PREFIX):
            continue
        role = key.removeprefix(APPROVAL_PREFIX)
        if role not in known_roles:
            continue
        value = annotations[key]
        parsed = parse_approval(value)
        vouched = approval_provenance(annotations, role, value, policy.provenance_key)
        malformed = digest_problem(parsed.digest)
        current = malformed is None and digest_matches(parsed.digest, digest)
        problem = (
            _malformed_approval(role, malformed)
            if malformed
            else _approval_problem(spec, annotations, digest, role, vouched, policy)
            if current
            else None
        )
        records.append(
            ApprovalRecord(
                role=role,
                by=vouched.user if vouched else parsed.by,
                digest=parsed.digest,
                comment=parsed.comment,
                valid=current and problem is None,
                authenticated=vouched is not None,
                groups=list(vouched.groups) if vouched else [],
                approved_at=vouched.at if vouched else None,
                problem=problem,
            )
        )
    valid_roles = {r.role for r in records if r.valid}
    stale_roles = {r.role for r in records if not r.valid and r.problem is None}
    required = (*roles, *extra_roles)
    missing = [r.value for r in required if r.value not in valid_roles]
    stale: list[str] = [
        r.value for r in required if r.value in stale_roles and r.value not in valid_roles
    ]
    return records, missing, stale


def _checklist(
    spec: AIDeploymentSpec, annotations: Mapping[str, str], items: tuple[str, ...]
) -> tuple[list[str], list[str]]:
    missing: list[str] = []
    invalid: list[str] = []
    for item in items:
        value = annotations.get(CHECKLIST_PREFIX + item)
        if value is None or not value.strip():
            missing.append(item)
            continue
        problem = checklist_problem(item, value, spec.risk_level)
        if problem is not None:
            invalid.append(problem)
    return missing, invalid


def _compliance(spec: AIDeploymentSpec) -> list[str]:
    if spec.risk_level is not RiskLevel.HIGH:
        return []
    stated = spec.compliance.model_dump(by_alias=True) if spec.compliance else {}
    return [
        f"{field_name} ({label})"
        for field_name, label in HIGH_RISK_COMPLIANCE_FIELDS.items()
        if not str(stated.get(field_name) or "").strip()
    ]


def evaluate_gate(
    spec: AIDeploymentSpec,
    annotations: Mapping[str, str],
    digest: str,
    extra_roles: tuple[Role, ...] = (),
    compliance_problems: list[str] | None = None,
    promotion: str | None = None,
    policy: ApprovalPolicy | None = None,
) -> GateResult:
    """`extra_roles` (an expedited change's deployment manager), `compliance_problems`
    (substantial modification) and `promotion` (why staging is not ready) come from the
    change, window and promotion rules, which need more than the spec to decide."""
    policy = policy or ApprovalPolicy()
    floor = floor_of(spec, policy.lower_gate_for)
    roles = required_roles(spec, floor.lowered)
    items = required_items(spec, floor.lowered)
    records, missing_roles, stale_roles = _approvals(
        spec, annotations, digest, extra_roles, policy, roles
    )
    required = {r.value for r in (*roles, *extra_roles)}
    missing_items, invalid_items = _checklist(spec, annotations, items)
    return GateResult(
        approvals=records,
        missing_roles=missing_roles,
        stale_roles=stale_roles,
        missing_items=missing_items,
        invalid_items=invalid_items,
        missing_compliance=_compliance(spec),
        compliance_problems=list(compliance_problems or []),
        promotion=promotion,
        rejected_approvals=[r.problem for r in records if r.problem and r.role in required],
        required_roles=[r.value for r in (*roles, *extra_roles)],
        required_items=list(items),
        floor=floor,
    )
