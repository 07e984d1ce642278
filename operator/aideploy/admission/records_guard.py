"""Records are evidence: once written, nobody changes them, and nobody deletes them before
their `retainUntil` (issue 11, attack 3). RBAC gives the operator only get, list and
create on records; this admission check covers everyone else who RBAC lets through (an
admin, a broad ClusterRole), which RBAC alone cannot stop."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aideploy.admission.config import ApproversConfig
from aideploy.admission.policy import Requester, Review
from aideploy.api.times import parse_time

#: Deleting a namespace deletes its records; that takes the right to delete the namespace,
#: and refusing it would leave the namespace stuck in Terminating.
NAMESPACE_CONTROLLER = "system:serviceaccount:kube-system:namespace-controller"


def _retain_until(record: Mapping[str, Any] | None) -> datetime | None:
    value = ((record or {}).get("spec") or {}).get("retainUntil")
    try:
        return parse_time(str(value)) if value else None
    except ValueError:
        return None


def review_record(
    operation: str,
    requester: Requester,
    old: Mapping[str, Any] | None,
    config: ApproversConfig,
    now: datetime,
) -> Review:
    """UPDATE is refused to everyone but the operator's own identity; DELETE too, except
    for holders of `recordRetention` once the record's retention has run out."""
    if config.operator.include(requester.username, requester.groups):
        return Review(allowed=True)
    if operation == "DELETE" and requester.username == NAMESPACE_CONTROLLER:
        return Review(allowed=True)
    name = str(((old or {}).get("metadata") or {}).get("name") or "this record")
    if operation == "DELETE":
        retention = config.record_retention
        until = _retain_until(old)
        if retention is not None and retention.include(requester.username, requester.groups):
            if until is not None and until <= now:
                return Review(allowed=True)
            return Review(
                allowed=False,
                message=f"{name} must be kept until {until.isoformat() if until else 'unknown'}"
                ": records are deleted only once their retention has run out.",
            )
        return Review(
            allowed=False,
            message=f"{requester.describe()} may not delete {name}: records are evidence; "
            "only holders of recordRetention (in the operator's approvers configuration) "
            "delete them, and only after their retainUntil.",
        )
    return Review(
        allowed=False,
        message=f"{requester.describe()} may not change {name}: records are written once "
        "by the operator and never edited (kubectl aideploy verify would report the edit).",
    )
