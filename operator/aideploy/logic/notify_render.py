"""What a notification looks like on the wire: a CDEvent in a CloudEvent, or the body of a
Slack or Microsoft Teams incoming webhook.

Every body names the cluster, namespace, name, version and digest (the subject) and the
record the event belongs to (its hash), so a reader can find the evidence. Pure.
"""

from __future__ import annotations

from typing import Any, Final

from aideploy.api.notifier import EventKind, Template
from aideploy.logic.notify_events import CDEVENTS_SPEC, Notification

#: The CDEvents subject type of each event.
_SUBJECT_TYPES: Final = {
    EventKind.APPROVAL_REQUESTED: "approval",
    EventKind.APPROVAL_GIVEN: "approval",
    EventKind.DEPLOYMENT_STARTED: "service",
    EventKind.VERIFICATION_FINISHED: "testSuiteRun",
    EventKind.LIVE: "service",
    EventKind.ROLLED_BACK: "service",
    EventKind.INCIDENT: "incident",
    EventKind.CLOSED: "deployment",
}

_TITLES: Final = {
    EventKind.APPROVAL_REQUESTED: "Approval requested",
    EventKind.APPROVAL_GIVEN: "Approved",
    EventKind.DEPLOYMENT_STARTED: "Deployment started",
    EventKind.VERIFICATION_FINISHED: "Verification finished",
    EventKind.LIVE: "Live",
    EventKind.ROLLED_BACK: "Rolled back",
    EventKind.INCIDENT: "Incident detected",
    EventKind.CLOSED: "Deployment closed",
}


def source(n: Notification) -> str:
    s = n.subject
    return f"/clusters/{s.cluster}/namespaces/{s.namespace}/aideployments/{s.name}"


def _subject_content(n: Notification) -> dict[str, Any]:
    """The CDEvents subject's content: the fields its schema names; the rest of what
    aideploy knows goes in customData."""
    s = n.subject
    environment = {"id": s.namespace, "source": f"/clusters/{s.cluster}"}
    artifact = f"pkg:generic/{s.name}@{s.version}" if s.version else f"pkg:generic/{s.name}"
    kind_type = _SUBJECT_TYPES[n.kind]
    if kind_type == "service":
        return {"environment": environment, "artifactId": artifact}
    if kind_type == "testSuiteRun":
        return {
            "environment": environment,
            "outcome": n.content.get("outcome", "fail"),
            "testSuite": {"id": "verification", "name": "aideploy verification probes"},
        }
    if kind_type == "incident":
        return {
            "description": str(n.content.get("description", "monitoring RED")),
            "environment": environment,
            "service": {"id": f"{s.namespace}/{s.name}", "source": source(n)},
            "artifactId": artifact,
        }
    return dict(n.content)


def cloudevent(n: Notification) -> tuple[dict[str, Any], dict[str, Any]]:
    """(attributes, data) of the CloudEvent: a CDEvent (context, subject, customData)."""
    s = n.subject
    context: dict[str, Any] = {
        "specversion": CDEVENTS_SPEC,
        "id": n.id,
        "source": source(n),
        "type": n.type,
        "timestamp": n.time,
    }
    if n.schema_uri:
        context["schemaUri"] = n.schema_uri
    custom = {
        "kind": n.kind.value,
        "cluster": s.cluster,
        "namespace": s.namespace,
        "name": s.name,
        "uid": s.uid,
        "version": s.version,
        "digest": s.digest,
        "record": {"hash": n.record_hash, "sequence": n.record_sequence},
        **n.content,
    }
    data = {
        "context": context,
        "subject": {
            "id": f"{s.namespace}/{s.name}",
            "source": source(n),
            "type": _SUBJECT_TYPES[n.kind],
            "content": _subject_content(n),
        },
        "customData": {"aideploy": custom},
        "customDataContentType": "application/json",
    }
    attributes = {
        "specversion": "1.0",
        "id": n.id,
        "source": source(n),
        "type": n.type,
        "subject": f"{s.namespace}/{s.name}",
        "time": n.time,
        "datacontenttype": "application/json",
    }
    return attributes, data


def headline(n: Notification) -> str:
    s = n.subject
    where = f"{s.cluster}/{s.namespace}/{s.name}"
    version = f" {s.version}" if s.version else ""
    return f"{_TITLES[n.kind]}: {where}{version}"


def details(n: Notification) -> list[str]:
    """The lines under the headline: what happened and what to do next."""
    c = n.content
    lines: list[str] = []
    if n.kind is EventKind.APPROVAL_REQUESTED:
        if c.get("escalated"):
            lines.append(f"Escalation: still waiting for approvals since {c.get('waitingSince')}.")
        elif c.get("reminder"):
            lines.append(f"Reminder {c['reminder']}: waiting since {c.get('waitingSince')}.")
        if c.get("missingRoles"):
            lines.append("Missing roles: " + ", ".join(c["missingRoles"]))
        lines.extend(f"Run: {line}" for line in c.get("approve") or [])
    elif n.kind is EventKind.APPROVAL_GIVEN:
        lines.extend(
            f"{a.get('role')}: {a.get('approver')}"
            + (" (authenticated)" if a.get("authenticated") else "")
            for a in c.get("approvals") or []
        )
    elif n.kind is EventKind.VERIFICATION_FINISHED:
        lines.append(f"Verdict: {c.get('verdict')}")
        lines.extend(
            f"{p.get('name')}: {p.get('result')} {p.get('value', '')}".rstrip()
            for p in c.get("probes") or []
        )
    elif n.kind in (EventKind.ROLLED_BACK, EventKind.INCIDENT):
        lines.append(f"Reason: {c.get('reason') or c.get('description')}")
    elif n.kind is EventKind.CLOSED:
        lines.append(f"{c.get('finalPhase')}: {c.get('summary', '')}")
    lines.append(f"Digest {n.subject.digest or '-'}; record {n.record_hash or '-'}")
    return lines


def slack(n: Notification) -> dict[str, Any]:
    """A Slack incoming webhook's body: `text` for notifications, a section for the message."""
    text = headline(n)
    body = "\n".join(details(n))
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*\n{body}"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"event id {n.id}"}]},
        ],
    }


def teams(n: Notification) -> dict[str, Any]:
    """A Microsoft Teams incoming webhook's body: a message with one Adaptive Card."""
    card = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": headline(n), "weight": "Bolder", "wrap": True},
            *({"type": "TextBlock", "text": line, "wrap": True} for line in details(n)),
            {"type": "TextBlock", "text": f"event id {n.id}", "isSubtle": True, "wrap": True},
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


def webhook_body(n: Notification, template: Template) -> dict[str, Any]:
    if template is Template.SLACK:
        return slack(n)
    if template is Template.TEAMS:
        return teams(n)
    attributes, data = cloudevent(n)
    return {**attributes, "data": data}
