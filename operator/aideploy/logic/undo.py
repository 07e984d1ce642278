"""`kubectl aideploy undo` and `abort`: what each asks of the operator, decided here.

undo puts the last good release back into the spec: its version, pod template, replicas
and serving settings, exactly as the operator recorded them when it rolled that release
out. The result is a new spec like any other: it goes through the gate, and needs the
approvals its risk level asks for. It is the `kubectl rollout undo` of a procedure that
keeps evidence, so nothing skips the gate.

abort stops a rollout that has not gone live: the candidate is taken away and the release
serving now keeps serving. It is the operator's manual rollback, refused where that would
be something else (a release already live is rolled back with `rollback`, by name).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aideploy.api.constants import Phase
from aideploy.api.status import AIDeploymentStatus, Release
from aideploy.logic.oneshot import rollback_refusal

#: Spec fields that belong to the version being replaced, not to the one restored: the
#: change type is derived again, and an expedite reason was given for another version.
DROPPED_ON_UNDO: tuple[str, ...] = ("changeType", "expedite")
_ABORTABLE = frozenset({Phase.DEPLOYING, Phase.VERIFYING, Phase.HELD})


@dataclass(frozen=True)
class Undo:
    spec: dict[str, Any]
    target: Release
    dropped: tuple[str, ...]


def undo_spec(spec: Mapping[str, Any], status: AIDeploymentStatus, digest: str) -> Undo | str:
    """The spec that asks for the last good release again, or why there is none to ask
    for. `digest` is the current spec's."""
    target = status.last_good_release
    if target is None:
        return "it has no earlier good release: nothing has completed its rollout yet"
    if target.digest == digest:
        return f"its spec already is version {target.version}, the last good release"
    if target.template is None:
        return (
            f"version {target.version} was recorded without its pod template (by an older "
            "operator): put it back in the manifest by hand"
        )
    restored = copy.deepcopy(dict(spec))
    restored["model"] = {**dict(spec.get("model") or {}), "version": target.version}
    restored["template"] = copy.deepcopy(target.template)
    if target.replicas is not None:
        restored["replicas"] = target.replicas
    if target.serving is not None:
        restored["serving"] = copy.deepcopy(target.serving)
    dropped = tuple(key for key in DROPPED_ON_UNDO if restored.pop(key, None) is not None)
    return Undo(restored, target, dropped)


def abort_refusal(status: AIDeploymentStatus, digest: str) -> str | None:
    """None when an abort stops a rollout under way now; else why it would not."""
    why = rollback_refusal(status, digest)
    if why is not None:
        return why.replace("nothing to roll back", "no rollout to abort")
    current = status.current_release
    assert current is not None  # rollback_refusal said so
    if status.phase in _ABORTABLE:
        return None
    if status.phase == Phase.MONITORING and current.went_live_at is None:
        return None  # a canary not yet promoted: not live for everyone
    return (
        f"version {current.version} is already live and under its watch; take it back with "
        "kubectl aideploy rollback"
    )
