"""Which notifications an AIDeployment's history makes, each with a stable id.

The records are the durable log of what happened (one hash chain per AIDeployment), so
the events are derived from them, not from the reconcile that wrote them: a restarted
operator derives exactly the same events, with the same ids, and delivers those its
cursor has not passed. Only "approval requested" (and its reminders) has no record: it
is derived from the object's status while it waits, with an id made of the spec digest.

Pure: no I/O, no clock (the caller passes `now`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from aideploy.api.constants import Reason
from aideploy.api.notifier import EventKind
from aideploy.api.times import rfc3339
from aideploy.logic.next_step import command
from aideploy.logic.workload import Owner

CDEVENTS_SPEC: Final = "0.5.1"
_CD: Final = "dev.cdevents."
_CUSTOM: Final = "dev.cdeventsx.aideploy-"
SCHEMA_BASE: Final = "https://aideploy.io/schemas/cdeventsx/"

#: The CloudEvent type of each event (docs/api.md, Notifications).
SERVICE_DEPLOYED: Final = _CD + "service.deployed.0.2.0"
SERVICE_UPGRADED: Final = _CD + "service.upgraded.0.2.0"
SERVICE_PUBLISHED: Final = _CD + "service.published.0.2.0"
SERVICE_ROLLEDBACK: Final = _CD + "service.rolledback.0.2.0"
TESTSUITERUN_FINISHED: Final = _CD + "testsuiterun.finished.0.2.0"
INCIDENT_DETECTED: Final = _CD + "incident.detected.0.2.0"
APPROVAL_REQUESTED: Final = _CUSTOM + "approval.requested.0.1.0"
APPROVAL_GIVEN: Final = _CUSTOM + "approval.given.0.1.0"
DEPLOYMENT_CLOSED: Final = _CUSTOM + "deployment.closed.0.1.0"

#: Rollback triggers that are monitoring going RED after go-live: an incident first.
_INCIDENT_TRIGGERS: Final = frozenset({Reason.SIGNAL_RED.value, Reason.ANALYSIS_RED.value})
#: Verification decisions after which the release goes live by itself.
_LIVE_DECISIONS: Final = frozenset({"GREEN"})


@dataclass(frozen=True)
class Subject:
    cluster: str
    namespace: str
    name: str
    uid: str
    version: str = ""
    digest: str = ""


@dataclass(frozen=True, order=True)
class Position:
    """Where an event sits in its AIDeployment's history: the record's sequence and the
    event's index among that record's events. A cursor is the position of the next event
    to deliver."""

    sequence: int
    index: int


@dataclass(frozen=True)
class Notification:
    kind: EventKind
    type: str
    id: str
    subject: Subject
    time: str
    content: dict[str, Any]
    record_hash: str = ""
    record_sequence: int = 0
    #: For record events: its place in the chain; None for approval requests.
    position: Position | None = None
    schema_uri: str = ""
    #: For a wait's approval events: how many of the wait's events are told once this one
    #: is (its place in the wait's list, plus one): the cursor's count after it.
    approvals: int = 0


def event_id(*parts: str) -> str:
    """The same transition always gets the same id: a retry, or a restarted operator,
    never makes another event of it."""
    return hashlib.sha256("\0".join(("aideploy", *parts)).encode()).hexdigest()[:32]


@dataclass
class _Walk:
    """What the chain has said so far, for the events of the records after it."""

    cluster: str
    namespace: str
    name: str
    uid: str
    version: str = ""
    digest: str = ""
    amber_policy: str = ""
    plans: int = 0
    out: list[Notification] = field(default_factory=list)

    def subject(self, version: str = "", digest: str = "") -> Subject:
        return Subject(
            self.cluster,
            self.namespace,
            self.name,
            self.uid,
            version or self.version,
            digest or self.digest,
        )


def record_notifications(
    records: Sequence[Mapping[str, Any]], cluster: str, namespace: str
) -> list[Notification]:
    """Every notification the records of one AIDeployment make, in order; `records` are
    its chain, sorted by sequence (kube/records.list_records)."""
    walk: _Walk | None = None
    for record in records:
        spec = record.get("spec") or {}
        deployment = spec.get("deployment") or {}
        if walk is None:
            walk = _Walk(cluster, namespace, deployment.get("name", ""), deployment.get("uid", ""))
        _one_record(walk, spec)
    return walk.out if walk is not None else []


def _emit(
    walk: _Walk,
    spec: Mapping[str, Any],
    kind: EventKind,
    type_: str,
    content: dict[str, Any],
    subject: Subject | None = None,
    id_: str = "",
) -> None:
    record_hash = str(spec.get("hash", ""))
    sequence = int(spec.get("sequence", 0))
    index = sum(1 for n in walk.out if n.record_sequence == sequence)
    custom = type_.startswith(_CUSTOM)
    walk.out.append(
        Notification(
            kind=kind,
            type=type_,
            id=id_ or event_id(walk.uid, record_hash, str(index)),
            subject=subject or walk.subject(),
            time=str(spec.get("createdAt", "")),
            content=content,
            record_hash=record_hash,
            record_sequence=sequence,
            position=Position(sequence, index),
            schema_uri=_schema_uri(type_) if custom else "",
        )
    )


def _schema_uri(type_: str) -> str:
    return SCHEMA_BASE + type_.removeprefix(_CUSTOM) + ".json"


def _one_record(walk: _Walk, spec: Mapping[str, Any]) -> None:
    kind = spec.get("type")
    content: Mapping[str, Any] = spec.get("content") or {}
    if kind == "plan":
        walk.version = str((content.get("model") or {}).get("version", ""))
        walk.digest = str(content.get("specDigest", ""))
        walk.amber_policy = str((content.get("verification") or {}).get("amberPolicy", ""))
        walk.plans += 1
    elif kind == "approval":
        _approval(walk, spec, content)
    elif kind == "deployment-log":
        _deployment_log(walk, spec, content)
    elif kind == "rollback":
        _rollback(walk, spec, content)
    elif kind == "closure":
        release = content.get("release") or {}
        subject = walk.subject(str(release.get("version", "")), str(release.get("digest", "")))
        closed = {
            "finalPhase": content.get("finalPhase"),
            "decision": content.get("decision"),
            "summary": content.get("summary"),
        }
        _emit(walk, spec, EventKind.CLOSED, DEPLOYMENT_CLOSED, _clean(closed), subject)


def _approval(walk: _Walk, spec: Mapping[str, Any], content: Mapping[str, Any]) -> None:
    approvals = [
        _clean(
            {
                "role": a.get("role"),
                "approver": a.get("by"),
                "authenticated": bool(a.get("authenticated")),
                "approvedAt": a.get("approvedAt"),
            }
        )
        for a in content.get("approvals") or []
        if a.get("valid")
    ]
    digest = str(content.get("specDigest") or walk.digest)
    required = [str(r) for r in content.get("requiredRoles") or []]
    # The request this approval answered, made again from the record: if no sink saw the
    # wait (it was shorter than a pass, or the operator was down), it is not lost. Its id
    # is the one the wait's own request has, and a sink that got that one skips it.
    owner = Owner(name=walk.name, namespace=walk.namespace, uid=walk.uid)
    request = {
        "digest": digest,
        "missingRoles": required,
        "approve": [command(owner, "approve", "--role", role) for role in required],
        "fromRecord": True,
    }
    request_id = event_id(walk.uid, "approval", digest, "request")
    _emit(walk, spec, EventKind.APPROVAL_REQUESTED, APPROVAL_REQUESTED, request, id_=request_id)
    given = {"digest": digest, "requiredRoles": required, "approvals": approvals}
    _emit(walk, spec, EventKind.APPROVAL_GIVEN, APPROVAL_GIVEN, _clean(given))
    started = SERVICE_DEPLOYED if walk.plans <= 1 else SERVICE_UPGRADED
    _emit(walk, spec, EventKind.DEPLOYMENT_STARTED, started, {"version": walk.version})


def _deployment_log(walk: _Walk, spec: Mapping[str, Any], content: Mapping[str, Any]) -> None:
    release = content.get("release") or {}
    subject = walk.subject(str(release.get("version", "")), str(release.get("digest", "")))
    steps = [str(s.get("step", "")) for s in content.get("steps") or []]
    decision = content.get("decision")
    by_annotation = "go-live decision by annotation" in steps
    unverified = content.get("verification") == "none configured"
    if not by_annotation and not unverified and decision:
        finished = {
            "outcome": "pass" if decision == "GREEN" else "fail",
            "verdict": decision,
            "probes": [_clean(dict(p)) for p in content.get("probes") or []],
        }
        _emit(walk, spec, EventKind.VERIFICATION_FINISHED, TESTSUITERUN_FINISHED, finished, subject)
    amber_proceeds = decision == "AMBER" and walk.amber_policy == "proceed"
    if by_annotation or unverified or decision in _LIVE_DECISIONS or amber_proceeds:
        why = "by annotation" if by_annotation else ("unverified" if unverified else decision)
        _emit(walk, spec, EventKind.LIVE, SERVICE_PUBLISHED, {"wentLive": why}, subject)


def _rollback(walk: _Walk, spec: Mapping[str, Any], content: Mapping[str, Any]) -> None:
    source = content.get("from") or {}
    subject = walk.subject(str(source.get("version", "")), str(source.get("digest", "")))
    if content.get("trigger") in _INCIDENT_TRIGGERS:
        incident = {"description": content.get("reason"), "redAt": content.get("redAt")}
        _emit(walk, spec, EventKind.INCIDENT, INCIDENT_DETECTED, _clean(incident), subject)
    rolled = {
        "trigger": content.get("trigger"),
        "reason": content.get("reason"),
        "restored": content.get("to"),
        "restoredDecision": content.get("restoredDecision"),
    }
    _emit(walk, spec, EventKind.ROLLED_BACK, SERVICE_ROLLEDBACK, _clean(rolled), subject)


def _clean(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}


@dataclass(frozen=True)
class Waiting:
    """An AIDeployment waiting at its gate for approvals, as its status says."""

    subject: Subject
    since: datetime
    missing_roles: tuple[str, ...]
    approve_commands: tuple[str, ...]
    record_hash: str = ""
    record_sequence: int = 0


def approval_notifications(
    waiting: Waiting,
    now: datetime,
    *,
    remind_every: timedelta | None,
    escalate_after: timedelta | None,
    requests: bool,
    escalations: bool,
    delivered: int = 0,
) -> list[Notification]:
    """The approval events due by `now` that are not told yet, in the order they fell due.

    The wait's events are, in time order: the request, a reminder every `remind_every`,
    and (to the escalation sink) one escalation after `escalate_after`. That list only
    grows with `now`, so the count of those told (`delivered`) is a cursor; each event
    carries the count once it is told. Only what is past `delivered` is built, and the
    reminders overdue collapse into the latest one (its own number and id): a sink back
    after a long outage hears one reminder, not one per interval missed."""
    since = waiting.since
    every = remind_every if remind_every is not None and remind_every > timedelta(0) else None
    reminders = int((now - since) / every) if requests and every is not None else 0
    reminders = max(reminders, 0)
    escalation_at = since + escalate_after if escalations and escalate_after is not None else None
    if escalation_at is not None and now < escalation_at:
        escalation_at = None
    first = 1 if requests else 0  # the request's place, 0, is taken when it is sent
    due: list[tuple[datetime, int, int, str, dict[str, Any]]] = []
    if requests and delivered <= 0:
        due.append((since, 0, 0, "request", {}))
    if every is not None and reminders > 0:
        at = since + reminders * every
        escalated_before = escalation_at is not None and escalation_at < at
        place = first + reminders - 1 + (1 if escalated_before else 0)
        if place >= delivered:
            extra = {"reminder": reminders}
            due.append((at, 1, place, f"reminder-{reminders}", extra))
    if escalation_at is not None:
        before = int((escalation_at - since) / every) if requests and every is not None else 0
        place = first + before
        if place >= delivered:
            due.append((escalation_at, 2, place, "escalation", {"escalated": True}))
    due.sort(key=lambda item: (item[0], item[1]))
    return [_request(waiting, at, what, extra, place + 1) for at, _, place, what, extra in due]


def _request(
    waiting: Waiting, at: datetime, what: str, extra: dict[str, Any], approvals: int
) -> Notification:
    s = waiting.subject
    content = {
        "digest": s.digest,
        "missingRoles": list(waiting.missing_roles),
        "approve": list(waiting.approve_commands),
        "waitingSince": rfc3339(waiting.since),
        **extra,
    }
    return Notification(
        kind=EventKind.APPROVAL_REQUESTED,
        type=APPROVAL_REQUESTED,
        id=event_id(s.uid, "approval", s.digest, what),
        subject=s,
        time=rfc3339(at),
        content=content,
        record_hash=waiting.record_hash,
        record_sequence=waiting.record_sequence,
        schema_uri=_schema_uri(APPROVAL_REQUESTED),
        approvals=approvals,
    )
