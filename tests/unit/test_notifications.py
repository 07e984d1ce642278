"""Notifications (issue 15): the event each transition makes, its stable id, the sinks'
selection and cursors, and the bodies sent (CDEvents, Slack, Teams)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from pydantic import ValidationError

from aideploy.api.notifier import EventKind, NotifierSpec, Sink, Template
from aideploy.logic import notify_events as ev
from aideploy.logic.notify_events import (
    Subject,
    Waiting,
    approval_notifications,
    record_notifications,
)
from aideploy.logic.notify_render import cloudevent, slack, teams, webhook_body
from aideploy.logic.notify_route import (
    Cursor,
    already_told,
    approvals_due,
    pending,
    reads_records,
    selects,
    settled,
    sink_takes,
    start_cursor,
    wait_forgotten,
    waiting_of,
    with_waiting,
)
from aideploy.notify.send import body_of
from aideploy.notify.worker import covered_by
from tests.support.paths import EXAMPLES_DIR

UID = "uid-1"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def rec(sequence: int, type_: str, content: dict[str, Any], minute: int = 0) -> dict[str, Any]:
    return {
        "metadata": {"name": f"scorer-{sequence}"},
        "spec": {
            "type": type_,
            "sequence": sequence,
            "hash": f"sha256:{sequence:064x}",
            "createdAt": f"2026-01-01T12:{minute:02d}:00Z",
            "deployment": {"name": "scorer", "uid": UID},
            "content": content,
        },
    }


def plan(seq: int, version: str, amber: str = "hold", minute: int = 0) -> dict[str, Any]:
    content = {
        "specDigest": f"sha256:{version}",
        "model": {"name": "m", "version": version},
        "verification": {"amberPolicy": amber},
    }
    return rec(seq, "plan", content, minute)


APPROVAL = {
    "specDigest": "sha256:1.0.0",
    "requiredRoles": ["system-owner"],
    "approvals": [
        {"role": "system-owner", "by": "alice", "authenticated": True, "valid": True},
        {"role": "system-owner", "by": "mallory", "valid": False},
    ],
}
RELEASE_1 = {"version": "1.0.0", "digest": "sha256:1.0.0"}
RELEASE_2 = {"version": "2.0.0", "digest": "sha256:2.0.0"}
GREEN_LOG = {
    "release": RELEASE_1,
    "steps": [{"step": "go-live decision", "at": "x"}],
    "probes": [{"name": "golden", "result": "GREEN", "value": "0.99"}],
    "decision": "GREEN",
}


def log(decision: str, release: dict[str, str] = RELEASE_1, **extra: Any) -> dict[str, Any]:
    return {**GREEN_LOG, "release": release, "decision": decision, **extra}


def types_of(records: list[dict[str, Any]]) -> list[str]:
    return [n.type for n in record_notifications(records, "prod", "ns")]


LIFECYCLE = [
    plan(1, "1.0.0"),
    rec(2, "approval", APPROVAL),
    rec(3, "deployment-log", GREEN_LOG),
    rec(4, "closure", {"finalPhase": "Succeeded", "release": RELEASE_1, "summary": "ok"}),
]


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        pytest.param(
            LIFECYCLE,
            [
                ev.APPROVAL_REQUESTED,
                ev.APPROVAL_GIVEN,
                ev.SERVICE_DEPLOYED,
                ev.TESTSUITERUN_FINISHED,
                ev.SERVICE_PUBLISHED,
                ev.DEPLOYMENT_CLOSED,
            ],
            id="first rollout: deployed, verified GREEN, live, closed",
        ),
        pytest.param(
            [*LIFECYCLE, plan(5, "2.0.0"), rec(6, "approval", APPROVAL)],
            [
                ev.APPROVAL_REQUESTED,
                ev.APPROVAL_GIVEN,
                ev.SERVICE_DEPLOYED,
                ev.TESTSUITERUN_FINISHED,
                ev.SERVICE_PUBLISHED,
                ev.DEPLOYMENT_CLOSED,
                ev.APPROVAL_REQUESTED,
                ev.APPROVAL_GIVEN,
                ev.SERVICE_UPGRADED,
            ],
            id="second rollout is an upgrade",
        ),
        pytest.param(
            [plan(1, "1.0.0"), rec(2, "deployment-log", log("AMBER"))],
            [ev.TESTSUITERUN_FINISHED],
            id="AMBER held: verified, not live",
        ),
        pytest.param(
            [plan(1, "1.0.0", amber="proceed"), rec(2, "deployment-log", log("AMBER"))],
            [ev.TESTSUITERUN_FINISHED, ev.SERVICE_PUBLISHED],
            id="AMBER with amberPolicy proceed goes live",
        ),
        pytest.param(
            [
                plan(1, "1.0.0"),
                rec(
                    2,
                    "deployment-log",
                    log("AMBER", steps=[{"step": "go-live decision by annotation", "at": "x"}]),
                ),
            ],
            [ev.SERVICE_PUBLISHED],
            id="go-live by annotation: live, no second verification",
        ),
        pytest.param(
            [
                plan(1, "1.0.0"),
                rec(
                    2,
                    "deployment-log",
                    {"release": RELEASE_1, "steps": [], "verification": "none configured"},
                ),
            ],
            [ev.SERVICE_PUBLISHED],
            id="no probes: live unverified",
        ),
        pytest.param(
            [
                plan(1, "2.0.0"),
                rec(2, "deployment-log", log("RED", RELEASE_2)),
                rec(
                    3,
                    "rollback",
                    {"trigger": "ProbesRed", "reason": "RED", "from": RELEASE_2, "to": RELEASE_1},
                ),
            ],
            [ev.TESTSUITERUN_FINISHED, ev.SERVICE_ROLLEDBACK],
            id="RED verification rolls back",
        ),
        pytest.param(
            [
                rec(
                    1,
                    "rollback",
                    {"trigger": "SignalRed", "reason": "latency RED", "from": RELEASE_2},
                ),
                rec(2, "closure", {"finalPhase": "RolledBack"}),
            ],
            [ev.INCIDENT_DETECTED, ev.SERVICE_ROLLEDBACK, ev.DEPLOYMENT_CLOSED],
            id="monitoring RED: incident, then rollback",
        ),
        pytest.param(
            [
                rec(
                    1,
                    "rollback",
                    {"trigger": "AnalysisRed", "reason": "canary RED", "from": RELEASE_2},
                )
            ],
            [ev.INCIDENT_DETECTED, ev.SERVICE_ROLLEDBACK],
            id="canary analysis RED is an incident too",
        ),
        pytest.param(
            [
                rec(
                    1,
                    "rollback",
                    {"trigger": "ManualRollback", "reason": "asked", "from": RELEASE_2},
                )
            ],
            [ev.SERVICE_ROLLEDBACK],
            id="a manual rollback is no incident",
        ),
        pytest.param(
            [rec(1, "registration", {}), rec(2, "retrospective", {})],
            [],
            id="registration and retrospective tell nobody",
        ),
    ],
)
def test_each_transition_maps_to_its_cdevents_type(
    records: list[dict[str, Any]], expected: list[str]
) -> None:
    assert types_of(records) == expected


def test_every_event_carries_subject_record_and_schema() -> None:
    events = record_notifications(LIFECYCLE, "prod", "ns")
    requested, given, started, finished, live, closed = events
    # The approval record makes again the request it answered, with the wait's own id.
    assert requested.id == ev.event_id(UID, "approval", "sha256:1.0.0", "request")
    assert requested.content["missingRoles"] == ["system-owner"]
    assert requested.content["approve"] == [
        "kubectl aideploy approve scorer -n ns --role system-owner"
    ]
    assert given.subject == Subject("prod", "ns", "scorer", UID, "1.0.0", "sha256:1.0.0")
    assert given.record_hash == LIFECYCLE[1]["spec"]["hash"] and given.record_sequence == 2
    assert given.schema_uri.endswith("approval.given.0.1.0.json")
    assert started.schema_uri == ""  # a CDEvents type has its published schema
    assert [a["approver"] for a in given.content["approvals"]] == ["alice"]
    assert given.content["approvals"][0]["authenticated"] is True
    assert (
        finished.content["verdict"] == "GREEN" and finished.content["probes"][0]["value"] == "0.99"
    )
    assert closed.record_hash == LIFECYCLE[3]["spec"]["hash"]
    assert live.time == "2026-01-01T12:00:00Z"


def test_ids_are_stable_and_distinct() -> None:
    first = [n.id for n in record_notifications(LIFECYCLE, "prod", "ns")]
    again = [n.id for n in record_notifications([dict(r) for r in LIFECYCLE], "prod", "ns")]
    assert first == again
    assert len(set(first)) == len(first)
    # More history does not change the ids of the events before it.
    longer = record_notifications([*LIFECYCLE, plan(5, "2.0.0")], "prod", "ns")
    assert [n.id for n in longer][: len(first)] == first


def waiting(**extra: Any) -> Waiting:
    subject = Subject("prod", "ns", "scorer", UID, "2.0.0", "sha256:2")
    return Waiting(
        subject,
        T0,
        ("system-owner",),
        ("kubectl aideploy approve scorer -n ns --role system-owner",),
        **extra,
    )


@pytest.mark.parametrize(
    ("minutes", "remind", "escalate", "requests", "escalations", "told", "expected"),
    [
        (0, None, None, True, False, 0, ["request"]),
        (90, None, None, True, False, 0, ["request"]),  # reminders are off by default
        (15, 10, None, True, False, 0, ["request", "reminder-1"]),
        # Overdue reminders collapse into the latest one: one event, its own number.
        (25, 10, None, True, False, 0, ["request", "reminder-2"]),
        (25, 10, None, True, False, 2, ["reminder-2"]),  # the request and reminder-1 told
        (25, 10, None, True, False, 3, []),
        (25, 10, 15, True, True, 0, ["request", "escalation", "reminder-2"]),
        # Told: request, reminder-1; the whole list is request, r-1, escalation, r-2.
        (25, 10, 15, True, True, 2, ["escalation", "reminder-2"]),
        (25, 10, 15, True, True, 3, ["reminder-2"]),
        (25, 10, 15, False, True, 0, ["escalation"]),  # the escalation sink hears only that
        (25, 10, 15, False, True, 1, []),
        (14, 10, 15, False, True, 0, []),
        # Days of a one-minute interval: one reminder, not thousands.
        (60 * 24 * 3, 1, None, True, False, 1, ["reminder-4320"]),
    ],
)
def test_approval_requests_reminders_and_escalation(
    minutes: int,
    remind: int | None,
    escalate: int | None,
    requests: bool,
    escalations: bool,
    told: int,
    expected: list[str],
) -> None:
    events = approval_notifications(
        waiting(),
        T0 + timedelta(minutes=minutes),
        remind_every=timedelta(minutes=remind) if remind else None,
        escalate_after=timedelta(minutes=escalate) if escalate else None,
        requests=requests,
        escalations=escalations,
        delivered=told,
    )
    names = {
        ev.event_id(UID, "approval", "sha256:2", n): n
        for n in ["request", "escalation", *[f"reminder-{i}" for i in [*range(1, 5), 4320]]]
    }
    assert [names[e.id] for e in events] == expected
    assert all(e.type == ev.APPROVAL_REQUESTED for e in events)
    # Each one, once told, is counted at its place in the whole list: the count only grows.
    counts = [e.approvals for e in events]
    assert counts == sorted(counts) and all(c > told for c in counts)


def test_reminders_told_move_the_cursor_past_those_collapsed() -> None:
    live = waiting()
    choices: dict[str, Any] = {
        "remind_every": timedelta(minutes=10),
        "escalate_after": None,
        "requests": True,
        "escalations": False,
    }
    cursor = Cursor()
    for event in pending(
        [], approvals_due(live, cursor, T0 + timedelta(minutes=35), **choices), cursor
    ):
        cursor = cursor.after(event)
    assert cursor.approvals == 4  # request, reminders 1-3 (3 sent as the only reminder)
    assert approvals_due(live, cursor, T0 + timedelta(minutes=39), **choices) == []
    later = approvals_due(live, cursor, T0 + timedelta(minutes=41), **choices)
    assert [e.content["reminder"] for e in later] == [4]


def test_reminders_and_escalation_are_at_least_a_minute() -> None:
    base = {
        "sinks": [{"name": "a", "webhook": {"url": {"secretKeyRef": {"name": "s", "key": "k"}}}}]
    }
    for bad in ["1ms", "59s", "60s", "0m", "0.5m"]:
        for field in ["interval", "escalateAfter"]:
            with pytest.raises(ValidationError):
                NotifierSpec.model_validate({**base, "reminders": {field: bad}})
    for good in ["1m", "1.5m", "90m", "1h30m", "2d"]:
        NotifierSpec.model_validate(
            {**base, "reminders": {"interval": good, "escalateAfter": good}}
        )


def test_an_approval_request_says_what_is_missing_and_the_command() -> None:
    (request,) = approval_notifications(
        waiting(), T0, remind_every=None, escalate_after=None, requests=True, escalations=False
    )
    assert request.content["missingRoles"] == ["system-owner"]
    assert request.content["approve"] == [
        "kubectl aideploy approve scorer -n ns --role system-owner"
    ]
    assert request.content["digest"] == "sha256:2"
    assert request.schema_uri.endswith("approval.requested.0.1.0.json")


def awaiting(phase: str = "AwaitingApproval") -> dict[str, Any]:
    return {
        "metadata": {"name": "scorer", "namespace": "ns", "uid": UID},
        "spec": {"model": {"version": "2.0.0"}, "riskLevel": "high"},
        "status": {
            "phase": phase,
            "phaseTransitionTime": "2026-01-01T12:00:00Z",
            "specDigest": "sha256:2",
            "gate": {"missingApprovals": ["system-owner", "deployment-manager"]},
            "latestRecord": {"name": "r", "sequence": 4, "hash": "sha256:abc"},
        },
    }


def test_waiting_is_read_from_the_status() -> None:
    found = waiting_of(awaiting(), "prod")
    assert found is not None
    assert found.since == T0 and found.record_hash == "sha256:abc" and found.record_sequence == 4
    assert (
        found.approve_commands[1]
        == "kubectl aideploy approve scorer -n ns --role deployment-manager"
    )
    assert waiting_of(awaiting("Deploying"), "prod") is None


def test_the_cursor_delivers_each_event_once_in_order() -> None:
    events = record_notifications(LIFECYCLE, "prod", "ns")
    requests = approval_notifications(
        waiting(record_sequence=4),  # it began after the closure of 1.0.0
        T0 + timedelta(minutes=25),
        remind_every=timedelta(minutes=10),
        escalate_after=None,
        requests=True,
        escalations=False,
    )
    cursor = Cursor()
    delivered = []
    for _ in range(3):  # each pass delivers one event only: the cursor carries the rest over
        todo = pending(events, requests, Cursor.from_wire(cursor.to_wire()) or Cursor())
        delivered.append(todo[0].id)
        cursor = cursor.after(todo[0])
    todo = pending(events, requests, cursor)
    for event in todo:
        delivered.append(event.id)
        cursor = cursor.after(event)
    assert delivered == [e.id for e in [*events, *requests]]
    assert pending(events, requests, cursor) == []
    # A new digest waited on starts its own count.
    other = approval_notifications(
        Waiting(Subject("prod", "ns", "scorer", UID, "3", "sha256:3"), T0, (), ()),
        T0,
        remind_every=None,
        escalate_after=None,
        requests=True,
        escalations=False,
    )
    assert pending(events, other, cursor) == other


def test_an_idle_aideployment_costs_no_records_list() -> None:
    events = record_notifications(LIFECYCLE, "prod", "ns")
    assert reads_records(None, None)  # a new cursor is placed from the records
    cursor = Cursor(sequence=1)
    assert reads_records(cursor, 4)
    for event in pending(events, [], cursor):
        cursor = cursor.after(event)
    assert cursor.position < ev.Position(5, 0)  # on the last record's last event
    cursor = settled(cursor, 4)  # the pass delivered everything up to record 4
    assert cursor.position == ev.Position(5, 0)
    assert pending(events, [], cursor) == []
    # At rest: latestRecord is still 4, so no pass lists the records again ...
    assert not reads_records(cursor, 4)
    assert not reads_records(Cursor(sequence=5), None)
    # ... until another record is written.
    assert reads_records(cursor, 5)
    # Settling never moves a cursor back, nor when nothing was read.
    assert settled(Cursor(sequence=7), 4) == Cursor(sequence=7)
    assert settled(Cursor(sequence=2, index=1), None) == Cursor(sequence=2, index=1)


def test_a_cursor_at_rest_is_small_and_keeps_no_wait() -> None:
    live = waiting(record_sequence=1)
    choices: dict[str, Any] = {
        "remind_every": None,
        "escalate_after": None,
        "requests": True,
        "escalations": False,
    }
    cursor = with_waiting(Cursor(sequence=1), live)
    # While it waits, the wait is kept: its request must go out even if the gate opens.
    for event in pending([], approvals_due(live, cursor, T0, **choices), cursor):
        cursor = cursor.after(event)
    assert wait_forgotten(cursor, live).waiting == live
    # The gate opened: the records of the rollout are delivered, then the cursor settles.
    events = record_notifications(LIFECYCLE, "prod", "ns")
    for event in pending(events, approvals_due(None, cursor, T0, **choices), cursor):
        cursor = cursor.after(event)
    cursor = wait_forgotten(settled(cursor, 4), None)
    wire = cursor.to_wire()
    assert "waiting" not in wire
    assert len(json.dumps(wire, separators=(",", ":"))) < 110  # it was ~740 bytes
    assert Cursor.from_wire(wire) == cursor
    # Written as a merge patch, the keys left out are removed from the stored cursor.
    assert cursor.to_merge_patch()["waiting"] is None
    assert Cursor().to_wire() == {"sequence": 0}
    assert Cursor.from_wire({"sequence": 3}) == Cursor(sequence=3)


def test_a_new_notifier_starts_at_the_records_written_since_it_exists() -> None:
    records = [
        plan(1, "1.0.0", minute=0),
        rec(2, "approval", APPROVAL, minute=5),
        rec(3, "closure", {}, minute=9),
    ]
    assert start_cursor(records, T0 + timedelta(minutes=5)) == Cursor(sequence=2)
    assert start_cursor(records, T0 + timedelta(minutes=30)) == Cursor(sequence=4)
    assert start_cursor([], T0) == Cursor(sequence=1)
    assert Cursor.from_wire({"sequence": "x"}) is None


def sink(**extra: Any) -> Sink:
    return Sink.model_validate(
        {"name": "s", "cloudEvents": {"url": {"secretKeyRef": {"name": "n", "key": "k"}}}, **extra}
    )


@pytest.mark.parametrize(
    ("extra", "kind", "risk", "taken"),
    [
        ({}, EventKind.LIVE, "high", True),
        ({"events": ["live"]}, EventKind.LIVE, "minimal", True),
        ({"events": ["live"]}, EventKind.CLOSED, "minimal", False),
        ({"riskLevels": ["high"]}, EventKind.CLOSED, "high", True),
        ({"riskLevels": ["high"]}, EventKind.CLOSED, "limited", False),
    ],
)
def test_sinks_select_by_event_and_risk(
    extra: dict[str, Any], kind: EventKind, risk: str, taken: bool
) -> None:
    assert sink_takes(sink(**extra), kind, risk) is taken


def test_notifiers_select_by_label() -> None:
    spec = NotifierSpec.model_validate(
        {"selector": {"matchLabels": {"team": "a"}}, "sinks": [sink().model_dump(by_alias=True)]}
    )
    assert selects(spec.selector, {"team": "a", "x": "y"})
    assert not selects(spec.selector, {"team": "b"})
    assert selects(NotifierSpec(sinks=[sink()]).selector, {})


@pytest.mark.parametrize(
    "raw",
    [
        {"sinks": []},
        {"sinks": [{"name": "s"}]},  # neither kind
        {
            "sinks": [
                {
                    "name": "s",
                    "cloudEvents": {"url": {"secretKeyRef": {"name": "n", "key": "k"}}},
                    "webhook": {"url": {"secretKeyRef": {"name": "n", "key": "k"}}},
                }
            ]
        },
        {"sinks": [{"name": "s", "cloudEvents": {"url": "https://in.clear/"}}]},  # never in clear
        {"sinks": [sink().model_dump(by_alias=True), sink().model_dump(by_alias=True)]},
        {"sinks": [sink().model_dump(by_alias=True)], "reminders": {"escalateTo": "nobody"}},
    ],
)
def test_invalid_notifiers_are_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        NotifierSpec.model_validate(raw)


def test_the_cloudevent_is_a_cdevent_with_the_subject_and_record() -> None:
    _, given, started, finished, *_ = record_notifications(LIFECYCLE, "prod", "ns")
    attributes, data = cloudevent(started)
    assert attributes["id"] == started.id == data["context"]["id"]
    assert attributes["type"] == "dev.cdevents.service.deployed.0.2.0"
    assert attributes["source"] == "/clusters/prod/namespaces/ns/aideployments/scorer"
    assert attributes["subject"] == "ns/scorer"
    assert data["context"]["specversion"] == "0.5.1"
    assert data["subject"]["type"] == "service"
    assert data["subject"]["content"]["artifactId"] == "pkg:generic/scorer@1.0.0"
    custom = data["customData"]["aideploy"]
    assert (
        custom["cluster"],
        custom["namespace"],
        custom["name"],
        custom["version"],
        custom["digest"],
    ) == ("prod", "ns", "scorer", "1.0.0", "sha256:1.0.0")
    assert custom["record"] == {"hash": LIFECYCLE[1]["spec"]["hash"], "sequence": 2}
    assert cloudevent(given)[1]["context"]["schemaUri"].startswith("https://")
    assert cloudevent(finished)[1]["subject"]["content"]["outcome"] == "pass"


def test_chat_templates_name_where_what_and_the_command() -> None:
    (request,) = approval_notifications(
        waiting(), T0, remind_every=None, escalate_after=None, requests=True, escalations=False
    )
    body = slack(request)
    assert body["text"] == "Approval requested: prod/ns/scorer 2.0.0"
    section = body["blocks"][0]["text"]["text"]
    assert "Missing roles: system-owner" in section
    assert "Run: kubectl aideploy approve scorer -n ns --role system-owner" in section
    assert "sha256:2" in section
    card = teams(request)["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    texts = [b["text"] for b in card["content"]["body"]]
    assert texts[0] == "Approval requested: prod/ns/scorer 2.0.0"
    assert any("kubectl aideploy approve" in t for t in texts)
    assert webhook_body(request, Template.CLOUDEVENT)["id"] == request.id


@pytest.mark.parametrize("kind_index", range(6))
def test_every_event_renders_in_every_template(kind_index: int) -> None:
    event = record_notifications(LIFECYCLE, "prod", "ns")[kind_index]
    for template in Template:
        body = webhook_body(event, template)
        assert event.subject.name in str(body)


CHOICES: dict[str, Any] = {
    "remind_every": None,
    "escalate_after": None,
    "requests": True,
    "escalations": False,
}


def test_a_request_missed_while_the_sink_was_down_is_still_sent_in_its_place() -> None:
    """The gate opened before the request got out: the kept wait still makes it, and it
    comes before the approval and deployment events of that digest."""
    wait = Waiting(
        Subject("prod", "ns", "scorer", UID, "1.0.0", "sha256:1.0.0"),
        T0,
        ("system-owner",),
        (),
        record_sequence=0,
    )
    cursor = Cursor.from_wire(with_waiting(Cursor(sequence=1), wait).to_wire())
    assert cursor is not None and cursor.waiting == wait
    events = record_notifications(LIFECYCLE, "prod", "ns")
    todo = pending(events, approvals_due(None, cursor, T0 + timedelta(hours=1), **CHOICES), cursor)
    assert [n.type for n in todo] == [ev.APPROVAL_REQUESTED, *[e.type for e in events]]
    sent = []
    for n in todo:  # as the sink's loop does
        if not already_told(cursor, n):
            sent.append(n)
        cursor = cursor.after(n)
    # The record's copy of the request (same id) is passed over: sent once.
    assert [n.type for n in sent] == [ev.APPROVAL_REQUESTED, *[e.type for e in events[1:]]]
    assert sent[0].id == events[0].id
    assert pending(events, approvals_due(None, cursor, T0, **CHOICES), cursor) == []


def test_a_wait_no_pass_saw_is_announced_from_its_approval_record() -> None:
    cursor = Cursor(sequence=1)
    events = record_notifications(LIFECYCLE, "prod", "ns")
    sent = [n for n in pending(events, [], cursor) if not already_told(cursor, n)]
    assert sent[0].type == ev.APPROVAL_REQUESTED and sent[0].content["fromRecord"] is True
    assert cursor.after(sent[0]).approval == "sha256:1.0.0"


def test_a_new_wait_replaces_the_kept_one() -> None:
    first = waiting()
    second = Waiting(Subject("prod", "ns", "scorer", UID, "3", "sha256:3"), T0, (), ())
    cursor = with_waiting(Cursor(), first)
    assert with_waiting(cursor, first) is cursor
    assert with_waiting(cursor, None) is cursor
    assert with_waiting(cursor, second).waiting == second


def test_the_slack_example_is_a_valid_notifier_with_its_urls_in_secrets() -> None:
    documents = list(
        yaml.safe_load_all((EXAMPLES_DIR / "notifications" / "slack.yaml").read_text())
    )
    (notifier,) = [d for d in documents if d["kind"] == "AIDeploymentNotifier"]
    spec = NotifierSpec.model_validate(notifier["spec"])
    secrets = {d["metadata"]["name"] for d in documents if d["kind"] == "Secret"}
    for s in spec.sinks:
        ref = (s.cloud_events or s.webhook).url.secret_key_ref  # type: ignore[union-attr]
        assert ref.name in secrets
    assert "hooks.slack.com" not in yaml.safe_dump(notifier)


def test_the_cloudevents_sdk_reads_back_what_is_sent_in_structured_mode() -> None:
    given = record_notifications(LIFECYCLE, "prod", "ns")[1]
    headers, body = body_of(given, sink())
    assert headers["content-type"].startswith("application/cloudevents+json")
    event = from_http_event(HTTPMessage(headers=headers, body=body))
    assert (event.get_id(), event.get_type()) == (given.id, ev.APPROVAL_GIVEN)
    assert event.get_data()["customData"]["aideploy"]["record"]["sequence"] == 2
    slack_sink = Sink.model_validate(
        {"name": "s", "webhook": {"url": {"secretKeyRef": {"name": "n", "key": "k"}}}}
    )
    headers, body = body_of(given, slack_sink)
    assert headers == {"content-type": "application/json"}
    assert json.loads(body)["text"] == "Approved: prod/ns/scorer 1.0.0"


def test_the_default_notifier_leaves_what_a_namespaced_one_selects() -> None:
    sinks = [sink().model_dump(by_alias=True)]
    team = {
        "metadata": {"namespace": "a"},
        "spec": {"selector": {"matchLabels": {"team": "x"}}, "sinks": sinks},
    }
    broken = {"metadata": {"namespace": "b"}, "spec": {"sinks": []}}
    covered = covered_by([team, broken])
    assert covered({"metadata": {"namespace": "a", "labels": {"team": "x"}}})
    assert not covered({"metadata": {"namespace": "a", "labels": {"team": "y"}}})
    assert not covered({"metadata": {"namespace": "b"}})  # its notifier is invalid
    assert not covered({"metadata": {"namespace": "c", "labels": {"team": "x"}}})
