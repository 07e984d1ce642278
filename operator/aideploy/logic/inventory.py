"""The AI System Inventory (PROC-AI-DEPLOY-001 step 17) as rows, from what the cluster
holds (pure: objects and records in, rows out).

One row per AIDeployment: a system in one environment. A live object's row reads its spec
and status; a deleted one's row is rebuilt from its records, which outlive it (the
newest plan, approval and closure records), with phase `Removed`. The approvers are the
last deployment's, as its approval record keeps them, not the current gate's: approvals
for a spec not yet deployed approve nothing that runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aideploy.api.constants import REGISTRATION_ANNOTATION, Phase, RiskLevel
from aideploy.api.records import RecordType

REMOVED: Final = "Removed"
#: The states spec.compliance.euDatabaseRegistration may name; any other value is the id
#: the EU database gave, and so means registered.
REGISTRATION_STATES: Final = ("prepared", "submitted", "registered")
HEADERS: Final = (
    "NAMESPACE",
    "NAME",
    "SYSTEM",
    "ENVIRONMENT",
    "RISK",
    "SERVING",
    "SINCE",
    "APPROVED-BY",
    "REGISTRATION",
    "OPEN-ROLLBACKS",
    "RETROSPECTIVE",
    "PHASE",
    "LAST-RECORD",
)


@dataclass(frozen=True)
class Approver:
    role: str
    by: str
    authenticated: bool

    def text(self) -> str:
        return f"{self.role}={self.by}" + ("" if self.authenticated else " (unauthenticated)")


@dataclass(frozen=True)
class InventoryRow:
    namespace: str
    name: str
    uid: str
    system: str
    environment: str
    risk_level: str
    serving: str  # the version served now ("" for none)
    since: str  # since when it is served (RFC 3339, "" when unknown)
    approvers: tuple[Approver, ...]
    registration: str
    open_rollbacks: int
    retrospective: str  # its URL, "outstanding" once closed without one, "" before closure
    phase: str
    last_record: str  # "<sequence> <type> <createdAt>" of the newest record, "" for none

    @property
    def removed(self) -> bool:
        return self.phase == REMOVED

    def cells(self) -> list[str]:
        """The table and CSV cells, in HEADERS order."""
        return [
            self.namespace,
            self.name,
            self.system,
            self.environment,
            self.risk_level,
            self.serving or "-",
            self.since or "-",
            "; ".join(a.text() for a in self.approvers) or "-",
            self.registration,
            str(self.open_rollbacks),
            self.retrospective or "-",
            self.phase,
            self.last_record or "-",
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "system": self.system,
            "environment": self.environment,
            "riskLevel": self.risk_level,
            "serving": self.serving or None,
            "servingSince": self.since or None,
            "approvers": [
                {"role": a.role, "by": a.by, "authenticated": a.authenticated}
                for a in self.approvers
            ],
            "registration": self.registration,
            "openRollbacks": self.open_rollbacks,
            "retrospective": self.retrospective or None,
            "phase": self.phase,
            "removed": self.removed,
            "lastRecord": self.last_record or None,
        }


def registration_state(value: Any, risk_level: str) -> str:
    """`prepared`, `submitted`, `registered` or `registered <id>` from the spec's
    euDatabaseRegistration; `missing` for a high-risk system without one, else `n/a`."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return "missing" if risk_level == RiskLevel.HIGH.value else "n/a"
    if text.lower() in REGISTRATION_STATES:
        return text.lower()
    return f"registered {text}"


def live_registration(spec: Mapping[str, Any], annotations: Mapping[str, str]) -> str:
    """A live object's registration: the id recorded after go-live (`kubectl aideploy
    register`), else what the spec states."""
    recorded = annotations.get(REGISTRATION_ANNOTATION, "").partition(";")[0].strip()
    if recorded:
        return f"registered {recorded}"
    risk = str(spec.get("riskLevel") or "")
    return registration_state((spec.get("compliance") or {}).get("euDatabaseRegistration"), risk)


def _recorded_registration(records: Sequence[Mapping[str, Any]]) -> str:
    recorded = _newest(records, RecordType.REGISTRATION).get("registration") or {}
    return f"registered {recorded['id']}" if recorded.get("id") else ""


def _retrospective(records: Sequence[Mapping[str, Any]]) -> str:
    """The newest closure's retrospective: its URL once recorded, else outstanding."""
    closure = _newest(records, RecordType.CLOSURE)
    if not closure:
        return ""
    retrospective = _newest(records, RecordType.RETROSPECTIVE)
    closed = (closure.get("release") or {}).get("digest")
    if retrospective and (retrospective.get("release") or {}).get("digest") == closed:
        return str((retrospective.get("retrospective") or {}).get("url") or "recorded")
    return "outstanding"


def _spec(record: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = record.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _newest(records: Sequence[Mapping[str, Any]], kind: RecordType) -> Mapping[str, Any]:
    """The content of the newest record of a type ({} when there is none)."""
    found = [r for r in records if _spec(r).get("type") == kind.value]
    if not found:
        return {}
    newest = max(found, key=lambda r: int(_spec(r).get("sequence") or 0))
    content = _spec(newest).get("content")
    return content if isinstance(content, Mapping) else {}


def _approvers(records: Sequence[Mapping[str, Any]]) -> tuple[Approver, ...]:
    approvals = _newest(records, RecordType.APPROVAL).get("approvals") or []
    return tuple(
        Approver(str(a.get("role")), str(a.get("by")), bool(a.get("authenticated")))
        for a in approvals
        if isinstance(a, Mapping) and a.get("valid", True)
    )


def _last_record(records: Sequence[Mapping[str, Any]]) -> str:
    if not records:
        return ""
    newest = _spec(max(records, key=lambda r: int(_spec(r).get("sequence") or 0)))
    return f"{newest.get('sequence')} {newest.get('type')} {newest.get('createdAt')}"


def _live_row(obj: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> InventoryRow:
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    risk = str(spec.get("riskLevel") or "")
    serving = str((status.get("stableRelease") or {}).get("version") or "")
    good = status.get("lastGoodRelease") or {}
    since = ""
    if serving and good.get("version") == serving:
        since = str(good.get("wentLiveAt") or good.get("deployedAt") or "")
    rollback = status.get("rollback") or {}
    open_rollbacks = int(bool(rollback) and not rollback.get("completedAt")) or int(
        status.get("phase") == Phase.ROLLING_BACK.value
    )
    return InventoryRow(
        namespace=str(metadata.get("namespace") or ""),
        name=str(metadata.get("name") or ""),
        uid=str(metadata.get("uid") or ""),
        system=str(spec.get("system") or ""),
        environment=str(spec.get("environment") or "production"),
        risk_level=risk,
        serving=serving,
        since=since,
        approvers=_approvers(records),
        registration=_recorded_registration(records)
        or live_registration(spec, metadata.get("annotations") or {}),
        open_rollbacks=open_rollbacks,
        retrospective=_retrospective(records),
        phase=str(status.get("phase") or "-"),
        last_record=_last_record(records),
    )


def _removed_row(namespace: str, records: Sequence[Mapping[str, Any]]) -> InventoryRow:
    """A deleted AIDeployment, from its records: what it was and what it last served."""
    plan = _newest(records, RecordType.PLAN)
    newest = _spec(max(records, key=lambda r: int(_spec(r).get("sequence") or 0)))
    deployment = newest.get("deployment") or {}
    closure = _newest(records, RecordType.CLOSURE)
    release = closure.get("release") or {}
    served = closure.get("finalPhase") == Phase.SUCCEEDED.value
    approval = _newest(records, RecordType.APPROVAL)
    risk = str(plan.get("riskLevel") or "")
    compliance = approval.get("compliance") or {}
    return InventoryRow(
        namespace=namespace,
        name=str(deployment.get("name") or ""),
        uid=str(deployment.get("uid") or ""),
        system=str(plan.get("system") or ""),
        environment=str(plan.get("environment") or ""),
        risk_level=risk,
        serving=str(release.get("version") or "") if served else "",
        since=str(release.get("deployedAt") or "") if served else "",
        approvers=_approvers(records),
        registration=_recorded_registration(records)
        or registration_state(compliance.get("euDatabaseRegistration"), risk),
        open_rollbacks=0,
        retrospective=_retrospective(records),
        phase=REMOVED,
        last_record=_last_record(records),
    )


def _written_at(row: InventoryRow) -> str:
    return row.last_record.rpartition(" ")[2]


def inventory_rows(
    objects: Iterable[Mapping[str, Any]], records: Iterable[Mapping[str, Any]]
) -> list[InventoryRow]:
    """A row per live AIDeployment, and per deleted one whose records remain and whose
    name no live object took over; sorted by namespace, name, removed last."""
    by_uid: dict[str, list[Mapping[str, Any]]] = {}
    namespaces: dict[str, str] = {}
    for record in records:
        uid = str((_spec(record).get("deployment") or {}).get("uid") or "")
        if uid:
            by_uid.setdefault(uid, []).append(record)
            namespaces[uid] = str((record.get("metadata") or {}).get("namespace") or "")
    rows = []
    live: set[tuple[str, str]] = set()
    for obj in objects:
        row = _live_row(obj, by_uid.pop(str((obj.get("metadata") or {}).get("uid") or ""), []))
        live.add((row.namespace, row.name))
        rows.append(row)
    for uid, group in by_uid.items():
        row = _removed_row(namespaces[uid], group)
        if (row.namespace, row.name) not in live:
            rows.append(row)
    # Of several deleted namesakes, the newest record speaks for the name.
    newest: dict[tuple[str, str], InventoryRow] = {}
    for row in rows:
        key = (row.namespace, row.name)
        kept = newest.get(key)
        newer = kept is not None and row.removed and _written_at(row) > _written_at(kept)
        if kept is None or (kept.removed and (not row.removed or newer)):
            newest[key] = row
    return sorted(newest.values(), key=lambda r: (r.namespace, r.name))
