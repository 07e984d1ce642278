"""The commands that act on an AIDeployment: approve, go-live, rollback, promote, digest
(`check` is in cli/checklist.py).

Each validates what it can before touching the cluster, with the same rules as the
operator (the gate's functions, the spec digest), so that a person learns at once that an
approval or a checklist entry would not count, instead of finding it in a condition later.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from aideploy.api.constants import (
    APPROVAL_PREFIX,
    GO_LIVE_ANNOTATION,
    PROMOTE_ANNOTATION,
    ROLLBACK_ANNOTATION,
    Phase,
    Reason,
    Role,
)
from aideploy.api.digest import DIGEST_PREFIX, MIN_DIGEST_PREFIX_LENGTH, digest_matches, spec_digest
from aideploy.api.spec import AIDeploymentSpec
from aideploy.api.status import AIDeploymentStatus
from aideploy.cli.manifests import manifest_digests
from aideploy.cli.session import CliError, ConflictError, Session, UsageError
from aideploy.cli.suggest import ROLES, did_you_mean, suggest_role
from aideploy.cli.terminal import printable
from aideploy.logic.change import approval_roles
from aideploy.logic.oneshot import go_live_refusal, rollback_refusal

APPROVE_HINT = "an approver needs RBAC permission to get and patch aideployments.aideploy.io"
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
        raise UsageError(
            f"unknown role {role!r}{did_you_mean(suggest_role(role))}: the roles are "
            + ", ".join(ROLES)
        ) from None


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


def status_of(obj: dict[str, Any]) -> AIDeploymentStatus:
    """The status as the operator last wrote it, read as the operator reads it."""
    return AIDeploymentStatus.salvage(obj.get("status") or {})[0]


def _warn_if_not_required(obj: dict[str, Any], role: Role, current: str) -> None:
    """With the gate's own rule: the risk level's roles, the spec's, and an expedited
    change's deployment manager. Whether the operator's policy lowered the gate is known
    only from a status written for this very spec; otherwise the floor applies, which
    never calls a counted role uncounted."""
    spec = _parsed_spec(obj)
    if spec is None:
        return
    status = status_of(obj)
    lowered = bool(status.spec_digest == current and status.gate and status.gate.floor_lowered)
    required = [r.value for r in approval_roles(spec, lowered)]
    if role.value not in required:
        warn(
            f"role {role.value} is not required for aideployment {obj['metadata']['name']} "
            f"(required: {', '.join(required)}); the approval is recorded but does not count"
        )


def _digest_mismatch(name: str, given: str, current: str, status: AIDeploymentStatus) -> CliError:
    """The digest given is not the current spec's. Say the spec changed only when that is
    known: the digest given is the one the operator last reported and the spec moved on."""
    review = (
        f"Review the current spec (kubectl get aid {name} -o yaml, or compare your manifest "
        f"with kubectl aideploy digest -f FILE) and approve with --digest {current}; "
        "nothing was written"
    )
    reported = status.spec_digest
    if reported and reported != current and digest_matches(given, reported):
        return ConflictError(
            f"the spec of aideployment {name} changed since you looked: you reviewed "
            f"{given}, the current spec is {current}. {review}"
        )
    return CliError(
        f"--digest {given} does not match the digest of the current spec of aideployment "
        f"{name}, {current}. {review}"
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
        raise _digest_mismatch(name, digest, current, status_of(obj))
    _warn_if_not_required(obj, role, current)
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


def _phase(obj: dict[str, Any]) -> str:
    return str((obj.get("status") or {}).get("phase") or "unknown")


Refusal = Callable[[AIDeploymentStatus, str], str | None]


def request_action(
    session: Session, name: str, annotation: dict[str, str], refusal: Refusal, what: str
) -> dict[str, Any]:
    """Write a one-shot request only when the operator's own rule says it will act on
    it, and only onto the object as it was checked (its resourceVersion): a status that
    moved in between is checked again. Returns the object as checked."""
    for _attempt in range(APPROVE_ATTEMPTS):
        obj = session.get_deployment(name, DECIDE_HINT)
        why = refusal(status_of(obj), spec_digest(obj.get("spec") or {}))
        if why is not None:
            raise CliError(
                f"cannot {what} aideployment {name}: {why}. See kubectl aideploy status "
                f"{name}; nothing was written"
            )
        patch = {
            "metadata": {
                "resourceVersion": obj["metadata"]["resourceVersion"],
                "annotations": annotation,
            }
        }
        try:
            session.patch_deployment(name, patch, DECIDE_HINT)
        except ConflictError:
            continue
        return obj
    raise ConflictError(
        f"aideployment {name} kept changing: look again (kubectl aideploy status {name}) and "
        "re-run the command; nothing was written"
    )


def go_live(session: Session, name: str, decision: str) -> int:
    """`aideploy.io/go-live`: the release manager's decision on a held verification;
    refused (exit 1) unless the object is Held on its current spec."""
    obj = request_action(
        session, name, {GO_LIVE_ANNOTATION: decision}, go_live_refusal, "decide the go-live of"
    )
    release = status_of(obj).current_release
    version = f" of version {release.version}" if release else ""
    print(printable(f"go-live decision for aideployment {name}{version}: {decision}"))
    return 0


def rollback(session: Session, name: str, reason: str) -> int:
    """`aideploy.io/rollback`: a manual rollback, with the reason the record will keep;
    refused (exit 1) when the operator would ignore it."""
    if not reason.strip():
        raise UsageError("--reason must say why (it goes into the rollback record)")
    obj = request_action(
        session, name, {ROLLBACK_ANNOTATION: reason.strip()}, rollback_refusal, "roll back"
    )
    status = status_of(obj)
    release = status.current_release
    target = status.last_good_release
    assert release is not None  # rollback_refusal said so
    if target is None:
        warn(
            f"aideployment {name} has no earlier good release to restore: version "
            f"{release.version} is scaled to zero replicas and it ends Failed, serving nothing"
        )
        goal = "to nothing"
    else:
        goal = f"to {target.version}"
    print(
        printable(
            f"rollback requested for aideployment {name} from {release.version} {goal}: "
            f"{reason.strip()}"
        )
    )
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
