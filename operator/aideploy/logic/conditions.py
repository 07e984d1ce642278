"""Kubernetes-style conditions with a stable lastTransitionTime."""

from __future__ import annotations

from datetime import datetime

from aideploy.api.status import Condition, ConditionStatus
from aideploy.api.times import rfc3339


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[Condition]:
    """Return `conditions` with `type_` set. lastTransitionTime moves only when the status
    flips, so that "how long has this been blocked" stays answerable."""
    previous = next((c for c in conditions if c.type == type_), None)
    since = (
        previous.last_transition_time
        if previous is not None and previous.status == status
        else rfc3339(now)
    )
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if c.type == type_ else c for c in conditions]
