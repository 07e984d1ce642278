"""When the operator acts on a one-shot action annotation (`aideploy.io/rollback`,
`aideploy.io/go-live`), and why not otherwise.

The phase machine decides with these functions, and `kubectl aideploy` asks them before it
writes the annotation: a request the operator would ignore is refused at the command line,
with the same reason, instead of being written, acknowledged and silently consumed.
"""

from __future__ import annotations

from aideploy.api.constants import Phase
from aideploy.api.status import AIDeploymentStatus
from aideploy.logic.rollback import ROLLBACK_PHASES

_LIVE_PHASES = ", ".join(p.value for p in sorted(ROLLBACK_PHASES, key=list(Phase).index))


def _not_rolled_out(status: AIDeploymentStatus, digest: str) -> str | None:
    """Why no release of this exact spec is under way: the machine then sends the spec
    through the gate (which consumes every action annotation), never to the lifecycle."""
    current = status.current_release
    if current is None:
        phase = status.phase.value if status.phase else "not reconciled yet"
        return f"nothing has been rolled out yet ({phase})"
    if current.digest != digest:
        return (
            f"its spec changed since version {current.version} was rolled out; the new spec "
            "goes through the gate first, so nothing of it is rolled out yet"
        )
    return None


def rollback_refusal(status: AIDeploymentStatus, digest: str) -> str | None:
    """None when a manual rollback of the object whose spec has `digest` starts now; else
    why the operator would ignore it. `status` is what the operator last wrote."""
    not_rolled_out = _not_rolled_out(status, digest)
    if not_rolled_out is not None:
        return not_rolled_out + ": there is nothing to roll back"
    current = status.current_release
    assert current is not None  # _not_rolled_out said so
    phase = status.phase
    if phase in ROLLBACK_PHASES:
        return None
    if phase == Phase.ROLLING_BACK:
        return f"it is already rolling back from version {current.version}"
    if phase == Phase.ROLLED_BACK:
        return f"version {current.version} is already rolled back"
    if phase == Phase.FAILED and status.rollback is not None:
        return f"version {current.version} was already taken out of service (Failed)"
    if phase == Phase.SUCCEEDED:
        return (
            f"version {current.version} completed its watch and is the last good release, "
            "so there is nothing earlier to roll back to; deploy an earlier version through "
            "the gate instead"
        )
    shown = phase.value if phase else "not reconciled yet"
    return f"it is {shown}; a rollback applies only in phases {_LIVE_PHASES}"


def go_live_refusal(status: AIDeploymentStatus, digest: str) -> str | None:
    """None when a go-live decision on the object whose spec has `digest` is taken now;
    else why the operator would ignore it."""
    not_rolled_out = _not_rolled_out(status, digest)
    if not_rolled_out is not None:
        return not_rolled_out + ": no go-live decision is pending"
    if status.phase == Phase.HELD:
        return None
    shown = status.phase.value if status.phase else "not reconciled yet"
    return (
        f"it is {shown}, not Held: a go-live decision is taken only while a verification "
        "is held on AMBER (or RED without automatic rollback)"
    )
