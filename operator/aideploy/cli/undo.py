"""`kubectl aideploy undo` and `abort` (the rules are in logic/undo.py)."""

from __future__ import annotations

from typing import Any

from aideploy.api.constants import ROLLBACK_ANNOTATION
from aideploy.api.digest import short_digest, spec_digest
from aideploy.api.spec import AIDeploymentSpec
from aideploy.cli.actions import request_action, status_of, warn
from aideploy.cli.session import CliError, ConflictError, Session, UsageError
from aideploy.cli.terminal import printable
from aideploy.logic.change import approval_roles
from aideploy.logic.undo import abort_refusal, undo_spec

UNDO_HINT = "undo needs RBAC permission to get and update aideployments.aideploy.io"
UNDO_ATTEMPTS = 3
#: Marks of a GitOps agent owning the object: it would put the Git spec back.
_GITOPS_MARKS = ("argocd.argoproj.io/tracking-id", "kustomize.toolkit.fluxcd.io/name")


def undo(session: Session, name: str) -> int:
    """Put the last good release back into the spec, as a new spec for the gate."""
    for _attempt in range(UNDO_ATTEMPTS):
        obj = session.get_deployment(name, UNDO_HINT)
        spec = obj.get("spec") or {}
        planned = undo_spec(spec, status_of(obj), spec_digest(spec))
        if isinstance(planned, str):
            raise CliError(f"cannot undo aideployment {name}: {planned}; nothing was written")
        try:
            session.replace_deployment({**_without_status(obj), "spec": planned.spec}, UNDO_HINT)
        except ConflictError:
            continue
        _warn_gitops(obj, name)
        digest = spec_digest(planned.spec)
        roles = ", ".join(approval_roles(AIDeploymentSpec.model_validate(planned.spec)))
        dropped = f" (dropped: {', '.join(planned.dropped)})" if planned.dropped else ""
        print(
            printable(
                f"undo: aideployment {name} asks for version {planned.target.version} again, "
                f"its last good release{dropped}; the new spec {short_digest(digest)} goes "
                f"through the gate and needs approval by {roles}"
            )
        )
        print(printable(f"Next: kubectl aideploy status {name}"))
        return 0
    raise ConflictError(
        f"aideployment {name} kept changing: look again (kubectl aideploy status {name}) and "
        "re-run undo; nothing was written"
    )


def abort(session: Session, name: str, reason: str) -> int:
    """Stop the rollout under way: the candidate goes, the serving release stays."""
    if not reason.strip():
        raise UsageError("--reason must say why (it goes into the rollback record)")
    obj = request_action(
        session,
        name,
        {ROLLBACK_ANNOTATION: f"aborted: {reason.strip()}"},
        abort_refusal,
        "abort the rollout of",
    )
    status = status_of(obj)
    current = status.current_release
    assert current is not None  # abort_refusal said so
    serving = status.stable_release
    if status.last_good_release is None and serving is None:
        warn(
            f"aideployment {name} has no earlier release: version {current.version} is "
            "scaled to zero replicas and it ends Failed, serving nothing"
        )
    keeps = f"; {serving.version} keeps serving" if serving is not None else ""
    print(printable(f"abort requested for aideployment {name}: version {current.version}{keeps}"))
    return 0


def _without_status(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key != "status"}


def _warn_gitops(obj: dict[str, Any], name: str) -> None:
    metadata = obj.get("metadata") or {}
    marks = {**(metadata.get("annotations") or {}), **(metadata.get("labels") or {})}
    if any(mark in marks for mark in _GITOPS_MARKS):
        warn(
            f"aideployment {name} is managed by a GitOps agent, which will put the spec in "
            "Git back: revert it in Git as well"
        )
