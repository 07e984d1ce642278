"""The commands that act on an AIDeployment: approve, check, go-live, rollback, digest.

Each validates what it can before touching the cluster, with the same rules as the
operator (the gate's functions, the spec digest), so that a person learns at once that an
approval or a checklist entry would not count, instead of finding it in a condition later.
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic import ValidationError

from aideploy.api.constants import (
    APPROVAL_PREFIX,
    CHECKLIST_ITEMS,
    CHECKLIST_PREFIX,
    GO_LIVE_ANNOTATION,
    PROMOTE_ANNOTATION,
    ROLLBACK_ANNOTATION,
    Phase,
    Reason,
    RiskLevel,
    Role,
)
from aideploy.api.digest import DIGEST_PREFIX, MIN_DIGEST_PREFIX_LENGTH, digest_matches, spec_digest
from aideploy.api.spec import AIDeploymentSpec
from aideploy.cli.manifests import manifest_digests
from aideploy.cli.session import CliError, ConflictError, Session, UsageError
from aideploy.cli.terminal import printable
from aideploy.logic.floor import required_items, required_roles
from aideploy.logic.gate import checklist_problem

APPROVE_HINT = "an approver needs RBAC permission to get and patch aideployments.aideploy.io"
CHECK_HINT = "recording an item needs RBAC permission to get and patch aideployments.aideploy.io"
DECIDE_HINT = "this decision needs RBAC permission to get and patch aideployments.aideploy.io"
APPROVE_ATTEMPTS = 3


def warn(message: str) -> None:
    print(f"warning: {printable(message)}", file=sys.stderr)


def _parsed_spec(obj: dict[str, Any]) -> AIDeploymentSpec | None:
    try:
        return AIDeploymentSpec.model_validate(obj.get("spec") or {})
    except ValidationError:
        return None


def check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        valid = ", ".join(r.value for r in Role)
        raise UsageError(f"unknown role {role!r}: the roles are {valid}") from None


def check_digest_syntax(given: str) -> None:
    hex_part = given.strip().lower().removeprefix(DIGEST_PREFIX)
    if len(hex_part) < MIN_DIGEST_PREFIX_LENGTH or any(
        c not in "0123456789abcdef" for c in hex_part
    ):
        raise UsageError(
            f"--digest {given!r} is not a spec digest: give sha256:<hex> or at least "
            f"{MIN_DIGEST_PREFIX_LENGTH} hex characters, as `kubectl aideploy status` or "
            "`kubectl aideploy digest -f` print them"
        )


def _warn_if_not_required(obj: dict[str, Any], role: Role) -> None:
    spec = _parsed_spec(obj)
    if spec is None:
        return
    required = [r.value for r in required_roles(spec)]
    if role.value not in required:
        warn(
            f"role {role.value} is not required for aideployment {obj['metadata']['name']} "
            f"(required: {', '.join(required)}); the approval is recorded but does not count"
        )


def approve(
    session: Session, name: str, role_name: str, comment: str, digest: str | None, by: str | None
) -> int:
    """Write `approval.aideploy.io/<role>` for the spec as it is now in the cluster.

    The digest is computed here from the stored spec, never taken from status (which may
    lag). The patch carries the resourceVersion that was read, so a spec change between
    read and write cannot slip under the approval.
    """
    role = check_role(role_name)
    if digest is not None:
        check_digest_syntax(digest)
    who = (by or session.user or "").strip()
    if not who:
        raise UsageError("cannot tell who you are from the kubeconfig: pass --by NAME")
    if ";" in who:
        raise UsageError(f"--by {who!r} must not contain ';' (it separates the approval's parts)")
    obj = session.get_deployment(name, APPROVE_HINT)
    current = spec_digest(obj.get("spec") or {})
    if digest is not None and not digest_matches(digest, current):
        raise ConflictError(
            f"the spec of aideployment {name} changed since you looked: you reviewed "
            f"{digest}, the current spec is {current}. Review it again (kubectl aideploy "
            f"status {name}) and approve with --digest {current}; nothing was written"
        )
    _warn_if_not_required(obj, role)
    value = f"{current}; by={who}" + (f"; {comment.strip()}" if comment.strip() else "")
    for _attempt in range(APPROVE_ATTEMPTS):
        patch = {
            "metadata": {
                "resourceVersion": obj["metadata"]["resourceVersion"],
                "annotations": {APPROVAL_PREFIX + role.value: value},
            }
        }
        try:
            session.patch_deployment(name, patch, APPROVE_HINT)
        except ConflictError:
            # The object moved between read and write. The operator's status writes move
            # resourceVersion too, so retry, but only while the spec is the one approved.
            obj = session.get_deployment(name, APPROVE_HINT)
            now = spec_digest(obj.get("spec") or {})
            if now != current:
                raise ConflictError(
                    f"aideployment {name} changed while approving (its spec is now {now}, "
                    f"you were approving {current}): look again (kubectl aideploy status "
                    f"{name}) and re-run approve; nothing was written"
                ) from None
            continue
        print(
            printable(f"approved aideployment {name} as {role.value} for spec {current} (by {who})")
        )
        return 0
    raise ConflictError(
        f"aideployment {name} kept changing while approving: look again (kubectl aideploy "
        f"status {name}) and re-run approve; nothing was written"
    )


def check_item(item: str) -> str:
    if item in CHECKLIST_ITEMS:
        return item
    items = "; ".join(f"{i} {title}" for i, title in CHECKLIST_ITEMS.items())
    raise UsageError(f"{item!r} is not a CHK-AI-DEPLOY-001 item. The items are: {items}")


def check(
    session: Session, name: str, item_id: str, evidence: str | None, na_reason: str | None
) -> int:
    """Write `checklist.aideploy.io/<item>` after checking it with the operator's rule."""
    item = check_item(item_id)
    value = (
        f"yes {evidence.strip()}" if evidence is not None else f"n/a {(na_reason or '').strip()}"
    )
    obj = session.get_deployment(name, CHECK_HINT)
    spec = _parsed_spec(obj)
    try:
        risk = spec.risk_level if spec else RiskLevel(str(obj["spec"]["riskLevel"]))
    except (KeyError, ValueError):
        risk = RiskLevel.HIGH  # unknown: apply the strictest rule
    problem = checklist_problem(item, value, risk)
    if problem is not None:
        if evidence is not None:
            hint = "give the evidence after --evidence"
        elif checklist_problem(item, "n/a reason", risk) is not None:
            hint = f"record {item} with --evidence instead"
        else:
            hint = "give the reason after --na"
        raise UsageError(f"{problem}: {hint}; nothing was written")
    if spec is not None and item not in required_items(spec):
        warn(f"item {item} is not required for aideployment {name}; it is recorded anyway")
    session.annotate(name, {CHECKLIST_PREFIX + item: value}, CHECK_HINT)
    print(printable(f"recorded {item} ({CHECKLIST_ITEMS[item]}) on aideployment {name}: {value}"))
    return 0


def _phase(obj: dict[str, Any]) -> str:
    return str((obj.get("status") or {}).get("phase") or "unknown")


def go_live(session: Session, name: str, decision: str) -> int:
    """`aideploy.io/go-live`: the release manager's decision on an AMBER verification."""
    obj = session.get_deployment(name, DECIDE_HINT)
    if _phase(obj) != Phase.HELD.value:
        warn(
            f"aideployment {name} is {_phase(obj)}, not Held: the decision is recorded and "
            "applies when a verification is held on AMBER"
        )
    session.annotate(name, {GO_LIVE_ANNOTATION: decision}, DECIDE_HINT)
    print(f"go-live decision for aideployment {name}: {decision}")
    return 0


def rollback(session: Session, name: str, reason: str) -> int:
    """`aideploy.io/rollback`: a manual rollback, with the reason the record will keep."""
    if not reason.strip():
        raise UsageError("--reason must say why (it goes into the rollback record)")
    session.get_deployment(name, DECIDE_HINT)
    session.annotate(name, {ROLLBACK_ANNOTATION: reason.strip()}, DECIDE_HINT)
    print(printable(f"rollback requested for aideployment {name}: {reason.strip()}"))
    return 0


def promote(session: Session, name: str) -> int:
    """`aideploy.io/promote`: end the canary pause under way (or let an AMBER analysis
    through). Refused when no canary step waits for it, rather than left to be ignored."""
    obj = session.get_deployment(name, DECIDE_HINT)
    status = obj.get("status") or {}
    conditions = status.get("conditions") or []
    ready: dict[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
    current = status.get("observedGeneration") == (obj.get("metadata") or {}).get("generation")
    paused = _phase(obj) == Phase.MONITORING.value and ready.get("reason") == Reason.CANARY_PAUSED
    if not (paused and current):
        why = ready.get("reason") or "no Ready condition"
        if paused:
            why = "its spec changed since the operator last looked"
        raise CliError(
            f"aideployment {name} is {_phase(obj)} and no canary step waits to be promoted "
            f"({why}); nothing was changed"
        )
    session.annotate(name, {PROMOTE_ANNOTATION: "promote"}, DECIDE_HINT)
    print(printable(f"promote requested for aideployment {name}: {ready.get('message', '')}"))
    return 0


def digest(file_name: str) -> int:
    """One AIDeployment: the digest alone (for `--digest $(...)`); several: name and digest."""
    digests = manifest_digests(file_name)
    for found in digests:
        for path in found.dropped:
            warn(
                f"{found.name}: {path} is not in the AIDeployment schema; the apiserver drops "
                "it, so the digest leaves it out"
            )
    if len(digests) == 1:
        print(digests[0].digest)
        return 0
    width = max(len(d.name) for d in digests)
    for found in digests:
        print(f"{found.name:<{width}}  {found.digest}")
    return 0
