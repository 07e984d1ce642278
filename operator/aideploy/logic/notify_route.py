"""Which AIDeployments a sink hears about, what it has yet to hear, and the cursor that
says how far it got.

A cursor is kept per sink and AIDeployment (uid) in the notifier's status: the position
of the next record event to deliver, and for the approval requests of the digest now
waited on, how many were delivered. Delivering an event and then moving the cursor makes
delivery at-least-once; the event's stable id lets a receiver drop the repeat.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from aideploy.api.constants import Phase
from aideploy.api.notifier import EventKind, LabelSelector, Sink
from aideploy.api.times import parse_time, rfc3339
from aideploy.logic.next_step import command
from aideploy.logic.notify_events import (
    Notification,
    Position,
    Subject,
    Waiting,
    approval_notifications,
)
from aideploy.logic.workload import Owner


@dataclass(frozen=True)
class Cursor:
    sequence: int = 0
    index: int = 0
    #: The digest whose approval requests `approvals` counts.
    approval: str = ""
    approvals: int = 0
    #: The latest wait for approvals seen: kept, so that a request not yet delivered
    #: when the gate opened (the sink was down) is still delivered, in its place.
    waiting: Waiting | None = None

    def to_wire(self) -> dict[str, Any]:
        """Compact (one is kept per sink and AIDeployment): defaults are left out."""
        wire: dict[str, Any] = {"sequence": self.sequence}
        if self.index:
            wire["index"] = self.index
        if self.approval:
            wire["approval"] = self.approval
        if self.approvals:
            wire["approvals"] = self.approvals
        if self.waiting is not None:
            wire["waiting"] = _waiting_wire(self.waiting)
        return wire

    def to_merge_patch(self) -> dict[str, Any]:
        """The wire form as a JSON merge patch over the stored one: what is left out of the
        compact form (a wait forgotten, a count back to none) is removed, not kept."""
        return {**dict.fromkeys(_WIRE_KEYS), **self.to_wire()}

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any] | None) -> Cursor | None:
        if not isinstance(raw, Mapping):
            return None
        try:
            return cls(
                sequence=int(raw.get("sequence", 0)),
                index=int(raw.get("index", 0)),
                approval=str(raw.get("approval", "")),
                approvals=int(raw.get("approvals", 0)),
                waiting=_waiting_from(raw.get("waiting")),
            )
        except (TypeError, ValueError, KeyError):
            return None

    @property
    def position(self) -> Position:
        return Position(self.sequence, self.index)

    def after(self, notification: Notification) -> Cursor:
        """The cursor once `notification` is delivered (or skipped: not for this sink)."""
        digest = notification.subject.digest
        if notification.position is not None:
            position = notification.position
            moved = replace(self, sequence=position.sequence, index=position.index + 1)
            if notification.kind is EventKind.APPROVAL_REQUESTED:  # made from the record
                count = max(self.approvals, 1) if digest == self.approval else 1
                return replace(moved, approval=digest, approvals=count)
            return moved
        count = self.approvals + 1 if digest == self.approval else 1
        if notification.approvals > 0:  # its place in the wait's list: reminders collapse
            count = notification.approvals
            if digest == self.approval:
                count = max(count, self.approvals)
        return replace(self, approval=digest, approvals=count)


_WIRE_KEYS = ("sequence", "index", "approval", "approvals", "waiting")


def _waiting_wire(w: Waiting) -> dict[str, Any]:
    s = w.subject
    return {
        "subject": [s.cluster, s.namespace, s.name, s.uid, s.version, s.digest],
        "since": rfc3339(w.since),
        "missingRoles": list(w.missing_roles),
        "approve": list(w.approve_commands),
        "record": [w.record_hash, w.record_sequence],
    }


def _waiting_from(raw: Any) -> Waiting | None:
    if not isinstance(raw, Mapping):
        return None
    record_hash, record_sequence = raw["record"]
    return Waiting(
        subject=Subject(*(str(part) for part in raw["subject"])),
        since=parse_time(str(raw["since"])),
        missing_roles=tuple(str(r) for r in raw["missingRoles"]),
        approve_commands=tuple(str(c) for c in raw["approve"]),
        record_hash=str(record_hash),
        record_sequence=int(record_sequence),
    )


def with_waiting(cursor: Cursor, live: Waiting | None) -> Cursor:
    """The cursor remembering the wait now seen (a new digest replaces the old one)."""
    kept = cursor.waiting
    if live is None or (kept is not None and kept.subject.digest == live.subject.digest):
        return cursor
    return replace(cursor, waiting=live)


def wait_forgotten(cursor: Cursor, live: Waiting | None) -> Cursor:
    """The cursor once a pass delivered every due event of its AIDeployment: a wait that is
    over has nothing left to say (its request went out, or this sink takes none), so it is
    no longer kept. The digest and count stay: they pass over the request the approval
    record makes again."""
    if live is not None or cursor.waiting is None:
        return cursor
    return replace(cursor, waiting=None)


def approvals_due(
    live: Waiting | None, cursor: Cursor, now: datetime, **choices: Any
) -> list[Notification]:
    """The approval events of the wait: while it lasts, the request and the reminders and
    escalation due by `now`; once it is over, only the request, if it never got out.
    `choices` are approval_notifications' keyword arguments."""
    wait = live or cursor.waiting
    if wait is None:
        return []
    told = cursor.approvals if cursor.approval == wait.subject.digest else 0
    if live is not None:
        return approval_notifications(live, now, **choices, delivered=told)
    over = {**choices, "remind_every": None, "escalate_after": None, "escalations": False}
    return approval_notifications(wait, wait.since, **over, delivered=told)


def already_told(cursor: Cursor, n: Notification) -> bool:
    """A request made from an approval record, when the sink got the wait's own request
    (the same id) already: passed over, not sent twice."""
    return (
        n.kind is EventKind.APPROVAL_REQUESTED
        and n.position is not None
        and cursor.approval == n.subject.digest
        and cursor.approvals > 0
    )


def start_cursor(records: Sequence[Mapping[str, Any]], since: datetime) -> Cursor:
    """Where a sink that has no cursor yet for an AIDeployment starts: at its first record
    written since the notifier exists (`since`), so that a new notifier does not replay
    years of history, and a restart (the cursor then exists) neither."""
    for record in records:
        spec = record.get("spec") or {}
        created = spec.get("createdAt")
        if isinstance(created, str) and parse_time(created) >= since:
            return Cursor(sequence=int(spec.get("sequence", 0)))
    last = max((int((r.get("spec") or {}).get("sequence", 0)) for r in records), default=0)
    return Cursor(sequence=last + 1)


def reads_records(cursor: Cursor | None, latest: int | None) -> bool:
    """Whether a pass lists the AIDeployment's records: only when its status's
    `latestRecord` (`latest`) may be at or past the cursor, or to place a new cursor. An
    AIDeployment at rest (its cursor settled past its latest record) costs no LIST."""
    if cursor is None:
        return True
    return latest is not None and latest >= cursor.sequence


def settled(cursor: Cursor, read_up_to: int | None) -> Cursor:
    """The cursor once every event of the records up to sequence `read_up_to` was
    delivered or passed over: at the start of the next record, so that reads_records is
    False until another record is written. None (no record read): unchanged."""
    if read_up_to is None or cursor.position >= Position(read_up_to + 1, 0):
        return cursor
    return replace(cursor, sequence=read_up_to + 1, index=0)


def pending(
    record_events: Sequence[Notification],
    approval_events: Sequence[Notification],
    cursor: Cursor,
) -> list[Notification]:
    """The events not delivered yet, in order: those of the records past the cursor, and
    the approval requests (and reminders) of the digest waited on, placed after the record
    that was the latest when the wait began."""
    out = [n for n in record_events if n.position is not None and n.position >= cursor.position]
    if approval_events:
        digest = approval_events[0].subject.digest
        done = cursor.approvals if digest == cursor.approval else 0
        out.extend(n for n in approval_events if n.approvals > done)
    return sorted(out, key=_order)


def _order(n: Notification) -> tuple[int, int, int]:
    if n.position is not None:
        return (n.position.sequence, 0, n.position.index)
    return (n.record_sequence, 1, 0)  # sorted() is stable: reminders keep their order


def selects(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.match_labels.items())


def sink_takes(sink: Sink, kind: EventKind, risk_level: str) -> bool:
    """Whether `sink` is sent this kind of event of an AIDeployment of that risk level."""
    if sink.events and kind not in sink.events:
        return False
    return not sink.risk_levels or risk_level in {r.value for r in sink.risk_levels}


def waiting_of(obj: Mapping[str, Any], cluster: str) -> Waiting | None:
    """The AIDeployment's wait for approvals, from its status; None when not waiting."""
    status = obj.get("status") or {}
    if status.get("phase") != Phase.AWAITING_APPROVAL.value:
        return None
    since_text = status.get("phaseTransitionTime")
    digest = status.get("specDigest")
    if not since_text or not digest:
        return None
    metadata = obj.get("metadata") or {}
    owner = Owner(
        name=str(metadata.get("name", "")),
        namespace=str(metadata.get("namespace", "")),
        uid=str(metadata.get("uid", "")),
    )
    missing = tuple(str(r) for r in (status.get("gate") or {}).get("missingApprovals") or [])
    latest = status.get("latestRecord") or {}
    model = (obj.get("spec") or {}).get("model") or {}
    return Waiting(
        subject=Subject(
            cluster, owner.namespace, owner.name, owner.uid, str(model.get("version", "")), digest
        ),
        since=parse_time(since_text),
        missing_roles=missing,
        approve_commands=tuple(command(owner, "approve", "--role", role) for role in missing),
        record_hash=str(latest.get("hash", "")),
        record_sequence=int(latest.get("sequence", 0) or 0),
    )


def risk_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("spec") or {}).get("riskLevel", ""))


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})
