"""The "Next:" sentence of a blocked object: the exact command that unblocks it.

Why: a condition that says "Waiting for approval by system-owner" still leaves a newcomer
to find out how one approves. Each blocked condition, and the status message, ends with the
`kubectl aideploy` line to run (or the field to set, where no command can do it), with the
object's own name and namespace, so that it can be copied as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from aideploy.api.spec import AIDeploymentSpec
from aideploy.logic.gate import GateResult
from aideploy.logic.workload import Owner

PLUGIN: Final = "kubectl aideploy"
#: Up to this many checklist items are named on the command line; more go in a file.
INLINE_ITEMS: Final = 3


def command(owner: Owner, verb: str, *args: str) -> str:
    """`kubectl aideploy VERB NAME [-n NS] ARGS...`; the namespace only when not default."""
    where = "" if owner.namespace == "default" else f" -n {owner.namespace}"
    rest = "".join(f" {a}" for a in args)
    return f"{PLUGIN} {verb} {owner.name}{where}{rest}"


def approvals(owner: Owner, missing_roles: Sequence[str]) -> str:
    if not missing_roles:
        return ""
    lines = [command(owner, "approve", "--role", role) for role in missing_roles]
    return "Next: " + "; ".join(lines) + "."


def checklist(owner: Owner, missing: Sequence[str], invalid: Sequence[str]) -> str:
    """`invalid` are the gate's sentences about unacceptable items, each starting with the
    item's number."""
    items = [*missing, *(problem.split(" ", 1)[0] for problem in invalid)]
    if not items:
        return ""
    if len(items) <= INLINE_ITEMS:
        return f"Next: {command(owner, 'check', *items, '--evidence', '<evidence>')}."
    return (
        f"Next: {command(owner, 'check', '-f', 'checklist.yaml')}, a file with the "
        f"{len(items)} items, each 'ITEM: yes <evidence>' (or 'n/a <reason>' where allowed)."
    )


def compliance(missing_fields: Sequence[str]) -> str:
    if not missing_fields:
        return ""
    fields = ", ".join(f"spec.compliance.{name}" for name in missing_fields)
    return f"Next: state {fields} in the manifest and apply it; approvals are then given again."


def promotion(owner: Owner, staging: str) -> str:
    staged = Owner(staging, owner.namespace, "")
    return f"Next: {command(staged, 'status')} says what the staging object waits for."


def go_live(owner: Owner) -> str:
    return f"Next: {command(owner, 'go-live', 'proceed')} (or rollback)."


def window(expedite_possible: bool) -> str:
    """A closed window needs no one: it says so, and what would skip it."""
    skip = " A patch that cannot wait may set spec.expedite." if expedite_possible else ""
    return f"Next: nothing to run; the rollout starts by itself when the window opens.{skip}"


@dataclass(frozen=True)
class GateMessages:
    approvals: str
    checklist: str
    compliance: str
    promotion: str


def gate_messages(
    owner: Owner, spec: AIDeploymentSpec, gate: GateResult, digest: str
) -> GateMessages:
    """Each part of the gate in a sentence, ending with its "Next:" line while it blocks."""
    staging = spec.promotion.from_staging if spec.promotion else None
    return GateMessages(
        approvals=_with_next(gate.approvals_message(digest), approvals(owner, gate.missing_roles)),
        checklist=_with_next(
            gate.checklist_message(), checklist(owner, gate.missing_items, gate.invalid_items)
        ),
        compliance=_with_next(
            gate.compliance_message(spec.risk_level), compliance(gate.missing_compliance)
        ),
        promotion=_with_next(
            gate.promotion or "", promotion(owner, staging) if gate.promotion and staging else ""
        ),
    )


def _with_next(message: str, next_line: str) -> str:
    return f"{message} {next_line}" if message and next_line else message
