"""`kubectl aideploy list [-A]`: one line per AIDeployment, with what blocks it.

`kubectl get aid` shows the phase; the question on a board of many objects is *why* one
is waiting (approvals? the window? promotion?), so BLOCKED-BY is the gate's own
`blockedBy`, and SERVING is the version users get, which may not be the spec's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aideploy.api.constants import GROUP, PLURAL, VERSION
from aideploy.cli.ages import age
from aideploy.cli.session import Session
from aideploy.cli.views import table

LIST_HINT = "listing needs RBAC permission to list aideployments.aideploy.io"


def _blocked_by(status: Mapping[str, Any]) -> str:
    """Only while the gate holds the object: once the rollout started, the gate's lists are
    cleared and whatever they said is history."""
    blocked = (status.get("gate") or {}).get("blockedBy") or []
    waiting = status.get("phase") in ("AwaitingApproval", "AwaitingPromotion", "AwaitingWindow")
    return ",".join(str(b) for b in blocked) if blocked and waiting else "-"


def list_rows(
    items: list[Mapping[str, Any]], all_namespaces: bool, now: datetime
) -> tuple[list[str], list[list[str]]]:
    headers = ["NAME", "VERSION", "SERVING", "PHASE", "DECISION", "BLOCKED-BY", "AGE"]
    if all_namespaces:
        headers = ["NAMESPACE", *headers]
    rows = []
    for item in sorted(
        items, key=lambda i: (i["metadata"].get("namespace", ""), i["metadata"].get("name", ""))
    ):
        metadata, spec = item.get("metadata") or {}, item.get("spec") or {}
        status = item.get("status") or {}
        row = [
            str(metadata.get("name")),
            str((spec.get("model") or {}).get("version") or "-"),
            str((status.get("stableRelease") or {}).get("version") or "-"),
            str(status.get("phase") or "-"),
            str(status.get("decision") or "-"),
            _blocked_by(status),
            age(metadata.get("creationTimestamp"), now),
        ]
        rows.append([str(metadata.get("namespace")), *row] if all_namespaces else row)
    return headers, rows


def list_deployments(session: Session, all_namespaces: bool) -> int:
    path = f"/apis/{GROUP}/{VERSION}/{PLURAL}" if all_namespaces else session.collection()
    listed = session.call(
        "list", PLURAL, None, LIST_HINT, lambda: session.rest.request("GET", path)
    )
    items = list((listed or {}).get("items") or [])
    if not items:
        where = "any namespace" if all_namespaces else f"namespace {session.namespace}"
        print(f"No aideployments found in {where}.")
        return 0
    headers, rows = list_rows(items, all_namespaces, datetime.now(UTC))
    print("\n".join(table(headers, rows)))
    return 0
