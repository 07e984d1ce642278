"""The AI System Inventory (logic/inventory.py, cli/inventory.py): rows from live objects'
status and from deleted ones' records, and the table, JSON and CSV shapes."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest

from aideploy.api.digest import spec_digest
from aideploy.api.records import RecordType
from aideploy.cli.inventory import render
from aideploy.logic.inventory import (
    HEADERS,
    REMOVED,
    Approver,
    inventory_rows,
    registration_state,
)
from aideploy.records import DeploymentRef, build_record, next_link
from tests.unit.factories import NOW, make_spec

APPROVALS = [
    {"role": "release-manager", "by": "alice", "valid": True, "authenticated": True},
    {"role": "ai-governance", "by": "bob", "valid": True, "authenticated": False},
    {"role": "business-owner", "by": "mallory", "valid": False, "authenticated": True},
]


RELEASE = {"version": "1.2.0", "digest": "sha256:aa", "deployedAt": "2026-11-26T12:05:00Z"}


def chain(
    uid: str,
    name: str = "churn",
    final: str = "Succeeded",
    start: int = 0,
    more: tuple[tuple[RecordType, dict[str, Any]], ...] = (),
) -> list[Any]:
    ref = DeploymentRef("ml", name, uid, 1, spec_digest(make_spec(risk="high")))
    contents = [
        (
            RecordType.PLAN,
            {
                "system": "churn-predictor",
                "riskLevel": "high",
                "environment": "production",
            },
        ),
        (
            RecordType.APPROVAL,
            {"approvals": APPROVALS, "compliance": {"euDatabaseRegistration": "EU-DB-1"}},
        ),
        (
            RecordType.CLOSURE,
            {"finalPhase": final, "release": RELEASE, "retrospective": "outstanding"},
        ),
        *more,
    ]
    written: list[Any] = []
    for index, (kind, content) in enumerate(contents):
        link = next_link(written)
        written.append(
            build_record(
                ref,
                kind,
                sequence=link.sequence,
                previous_hash=link.previous_hash,
                content=content,
                created_at=NOW + timedelta(minutes=start + index),
            )
        )
    return written


def live(uid: str = "uid-live", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ml", "name": "churn", "uid": uid},
        "spec": {
            "system": "churn-predictor",
            "riskLevel": "high",
            "environment": "staging",
            "compliance": {"euDatabaseRegistration": "submitted"},
        },
        "status": {
            "phase": "Succeeded",
            "stableRelease": {"id": "abc", "version": "1.2.0"},
            "lastGoodRelease": {
                "version": "1.2.0",
                "deployedAt": "2026-11-26T12:04:00Z",
                "wentLiveAt": "2026-11-26T12:05:00Z",
            },
            **status,
        },
    }


def test_a_live_object_reads_its_status_and_its_last_approval_record() -> None:
    (row,) = inventory_rows([live()], chain("uid-live"))
    assert (row.system, row.environment, row.risk_level) == ("churn-predictor", "staging", "high")
    assert (row.serving, row.since) == ("1.2.0", "2026-11-26T12:05:00Z")
    assert row.approvers == (
        Approver("release-manager", "alice", True),
        Approver("ai-governance", "bob", False),
    )
    assert row.registration == "submitted"
    assert (row.phase, row.open_rollbacks, row.removed) == ("Succeeded", 0, False)
    assert row.last_record == "3 closure 2026-11-26T12:02:00Z"


@pytest.mark.parametrize(
    ("status", "open_rollbacks"),
    [
        ({"phase": "RollingBack"}, 1),
        ({"rollback": {"trigger": "probe", "startedAt": "x"}}, 1),
        ({"rollback": {"trigger": "probe", "completedAt": "y"}}, 0),
    ],
)
def test_open_rollbacks(status: dict[str, Any], open_rollbacks: int) -> None:
    (row,) = inventory_rows([live(**status)], [])
    assert row.open_rollbacks == open_rollbacks
    assert row.approvers == ()
    assert row.last_record == ""


def test_serving_since_is_unknown_when_the_last_good_release_is_another_version() -> None:
    obj = live(lastGoodRelease={"version": "1.1.0", "deployedAt": "2026-01-01T00:00:00Z"})
    (row,) = inventory_rows([obj], [])
    assert (row.serving, row.since) == ("1.2.0", "")


def test_a_deleted_object_is_listed_as_removed_from_its_records() -> None:
    (row,) = inventory_rows([], chain("uid-gone"))
    assert row.phase == REMOVED and row.removed
    assert (row.namespace, row.name, row.uid) == ("ml", "churn", "uid-gone")
    assert (row.system, row.environment, row.risk_level) == (
        "churn-predictor",
        "production",
        "high",
    )
    assert (row.serving, row.since) == ("1.2.0", "2026-11-26T12:05:00Z")
    assert row.registration == "registered EU-DB-1"
    assert [a.by for a in row.approvers] == ["alice", "bob"]


def test_the_retrospective_is_outstanding_until_recorded_for_the_last_closure() -> None:
    (row,) = inventory_rows([live()], chain("uid-live"))
    assert row.retrospective == "outstanding"
    retro = {"release": RELEASE, "retrospective": {"url": "https://wiki/r1"}}
    (row,) = inventory_rows([live()], chain("uid-live", more=((RecordType.RETROSPECTIVE, retro),)))
    assert row.retrospective == "https://wiki/r1"
    # A retrospective of an earlier release does not close the newest one.
    older = {"release": {**RELEASE, "digest": "sha256:00"}, "retrospective": {"url": "u"}}
    (row,) = inventory_rows([live()], chain("uid-live", more=((RecordType.RETROSPECTIVE, older),)))
    assert row.retrospective == "outstanding"
    (row,) = inventory_rows([live(phase="Deploying")], [])
    assert row.retrospective == ""


def test_a_registration_recorded_after_go_live_wins_over_the_spec() -> None:
    registered = {"registration": {"state": "registered", "id": "EU-DB-9"}}
    records = chain("uid-live", more=((RecordType.REGISTRATION, registered),))
    (row,) = inventory_rows([live()], records)
    assert row.registration == "registered EU-DB-9"
    (removed,) = inventory_rows([], records)
    assert removed.registration == "registered EU-DB-9"
    annotated = live()
    annotated["metadata"]["annotations"] = {"aideploy.io/eu-registration": "EU-DB-7; by=c"}
    (row,) = inventory_rows([annotated], [])
    assert row.registration == "registered EU-DB-7"


def test_a_deleted_object_that_ended_rolled_back_served_nothing() -> None:
    (row,) = inventory_rows([], chain("uid-gone", final="RolledBack"))
    assert (row.serving, row.since) == ("", "")


def test_a_live_namesake_hides_the_deleted_one_and_the_newest_deleted_one_wins() -> None:
    old, newer = chain("uid-old"), chain("uid-newer", start=60)
    assert [r.uid for r in inventory_rows([live()], old + newer)] == ["uid-live"]
    assert [r.uid for r in inventory_rows([], old + newer)] == ["uid-newer"]
    assert [r.uid for r in inventory_rows([], newer + old)] == ["uid-newer"]


@pytest.mark.parametrize(
    ("value", "risk", "state"),
    [
        (None, "high", "missing"),
        ("", "limited", "n/a"),
        ("prepared", "high", "prepared"),
        ("Submitted", "high", "submitted"),
        ("registered", "high", "registered"),
        ("EU-DB-000123", "high", "registered EU-DB-000123"),
    ],
)
def test_registration_state(value: str | None, risk: str, state: str) -> None:
    assert registration_state(value, risk) == state


def rows() -> list[Any]:
    other = live("uid-2")
    other["metadata"] = {"namespace": "a", "name": "fraud", "uid": "uid-2"}
    return inventory_rows([live(), other], chain("uid-live") + chain("uid-gone", name="old"))


def test_rows_are_sorted_by_namespace_and_name() -> None:
    assert [(r.namespace, r.name) for r in rows()] == [
        ("a", "fraud"),
        ("ml", "churn"),
        ("ml", "old"),
    ]


def test_json_is_a_list_of_objects_with_camel_case_keys() -> None:
    parsed = json.loads(render(rows(), "json"))
    assert [p["name"] for p in parsed] == ["fraud", "churn", "old"]
    assert set(parsed[1]) == {
        "namespace",
        "name",
        "uid",
        "system",
        "environment",
        "riskLevel",
        "serving",
        "servingSince",
        "approvers",
        "registration",
        "openRollbacks",
        "retrospective",
        "phase",
        "removed",
        "lastRecord",
    }
    assert parsed[1]["approvers"][1] == {
        "role": "ai-governance",
        "by": "bob",
        "authenticated": False,
    }
    assert parsed[0]["lastRecord"] is None
    assert parsed[2]["removed"] is True and parsed[2]["phase"] == "Removed"


def test_csv_has_a_header_and_one_line_per_row() -> None:
    parsed = list(csv.reader(io.StringIO(render(rows(), "csv"))))
    assert parsed[0] == list(HEADERS)
    assert len(parsed) == 4
    churn = dict(zip(HEADERS, parsed[2], strict=True))
    assert churn["APPROVED-BY"] == "release-manager=alice; ai-governance=bob (unauthenticated)"
    assert churn["SERVING"] == "1.2.0"
    assert dict(zip(HEADERS, parsed[1], strict=True))["APPROVED-BY"] == "-"


def test_the_table_aligns_its_columns() -> None:
    lines = render(rows(), "table").splitlines()
    assert lines[0].split()[:3] == ["NAMESPACE", "NAME", "SYSTEM"]
    assert len(lines) == 4
    assert lines[3].split()[1] == "old" and "Removed" in lines[3]
