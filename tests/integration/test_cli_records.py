"""`kubectl aideploy history` and `verify` against records stored in the real apiserver:
an intact chain passes, an edited, removed or truncated one is reported with the record
it concerns and a non-zero exit status."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from aideploy.api.digest import short_digest, spec_digest
from aideploy.api.records import RecordType
from aideploy.kube.records import list_records, record_collection, write_record
from aideploy.kube.rest import Rest
from aideploy.records import DeploymentRef, build_record, next_link
from tests.support import aid
from tests.support.cluster import wait_for
from tests.unit.factories import NOW, make_spec

pytestmark = pytest.mark.integration

TYPES = [RecordType.PLAN, RecordType.APPROVAL, RecordType.DEPLOYMENT_LOG, RecordType.CLOSURE]
Run = Callable[..., tuple[int, str, str]]


def deployment_with_records(
    rest: Rest, namespace: str, name: str, count: int = 4
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    created = aid.create(rest, namespace, aid.manifest(name, make_spec()))
    ref = DeploymentRef.of(created, spec_digest(created["spec"]))
    written: list[dict[str, Any]] = []
    for index in range(count):
        link = next_link(written)
        manifest = build_record(
            ref,
            TYPES[index % len(TYPES)],
            sequence=link.sequence,
            previous_hash=link.previous_hash,
            content={"index": index},
            created_at=NOW + timedelta(minutes=index),
        )
        written.append(write_record(rest, manifest))
    return created, written


def record_path(namespace: str, record: dict[str, Any]) -> str:
    return f"{record_collection(namespace)}/{record['metadata']['name']}"


def test_history_lists_the_records_in_order(run: Run, rest: Rest, namespace: str) -> None:
    _, written = deployment_with_records(rest, namespace, "churn")
    code, out, _ = run("history", "churn")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "SEQ",
        "RECORD",
        "TYPE",
        "GEN",
        "CREATED",
        "HASH",
        "PREVIOUS",
        "NAME",
    ]
    assert [line.split()[:4] for line in lines[1:]] == [
        ["1", "REC-AI-DEPLOY-001", "plan", "1"],
        ["2", "REC-AI-DEPLOY-002", "approval", "1"],
        ["3", "REC-AI-DEPLOY-003", "deployment-log", "1"],
        ["4", "REC-AI-DEPLOY-CLOSE", "closure", "1"],
    ]
    second = lines[2].split()
    assert second[5] == short_digest(written[1]["spec"]["hash"])
    assert second[6] == short_digest(written[0]["spec"]["hash"])
    assert lines[1].split()[6] == "-"
    assert second[7] == written[1]["metadata"]["name"]
    assert second[7].endswith("-g1-0002-approval")


def test_history_of_unknown_and_of_recordless_deployments(
    run: Run, rest: Rest, namespace: str, crds: list[str]
) -> None:
    code, _, err = run("history", "ghost")
    assert code == 1 and "aideployment ghost not found" in err and "no records" in err
    aid.create(rest, namespace, aid.manifest("fresh", make_spec()))
    code, out, _ = run("history", "fresh")
    assert (code, out) == (0, "aideployment fresh has no records yet\n")


def test_verify_intact_chains(run: Run, rest: Rest, namespace: str) -> None:
    deployment_with_records(rest, namespace, "churn")
    deployment_with_records(rest, namespace, "fraud", count=2)
    code, out, err = run("verify")
    assert (code, err) == (0, "")
    assert sorted(line.split(" (")[0] for line in out.splitlines()) == ["churn", "fraud"]
    # These records were written with no key, and verify says it could not authenticate them.
    unsigned = "chain intact; records are not signed (the operator had no key)"
    assert all(unsigned in line for line in out.splitlines())
    code, out, _ = run("verify", "churn")
    assert code == 0 and out.startswith("churn (uid ") and "4 records, chain intact" in out


def test_verify_reports_an_edited_record(run: Run, rest: Rest, namespace: str) -> None:
    _, written = deployment_with_records(rest, namespace, "churn")
    rest.request(
        "PATCH",
        record_path(namespace, written[1]),
        body={"spec": {"content": {"index": 99}}},
        content_type="application/merge-patch+json",
    )
    code, out, err = run("verify", "churn")
    assert code == 1
    assert "1 break" in out
    name = written[1]["metadata"]["name"]
    assert f"  edited        {name}: content does not match its hash" in out
    assert "error: 1 break in the record chain" in err


def test_verify_reports_a_deleted_middle_record(run: Run, rest: Rest, namespace: str) -> None:
    _, written = deployment_with_records(rest, namespace, "churn")
    deployment_with_records(rest, namespace, "fraud", count=2)
    rest.request("DELETE", record_path(namespace, written[1]))
    code, out, _ = run("verify")
    assert code == 1
    name = written[2]["metadata"]["name"]
    assert f"missing       {name}: follows a gap: record 2" in out
    assert any(line.startswith("fraud (") and "chain intact" in line for line in out.splitlines())


def test_verify_reports_a_removed_newest_record_through_status(
    run: Run, rest: Rest, namespace: str
) -> None:
    """The newest record has no successor to check it; the status names it."""
    _, written = deployment_with_records(rest, namespace, "churn")
    last = written[-1]
    latest = {
        "name": last["metadata"]["name"],
        "sequence": last["spec"]["sequence"],
        "hash": last["spec"]["hash"],
    }
    rest.request(
        "PATCH",
        f"{aid.collection(namespace)}/churn/status",
        body={"status": {"latestRecord": latest}},
        content_type="application/merge-patch+json",
    )
    assert run("verify", "churn")[0] == 0
    rest.request("DELETE", record_path(namespace, last))
    code, out, _ = run("verify", "churn")
    assert code == 1
    assert f"truncated     {latest['name']}: is named by the AIDeployment's status" in out


def test_verify_after_the_aideployment_was_deleted(run: Run, rest: Rest, namespace: str) -> None:
    _, written = deployment_with_records(rest, namespace, "churn", count=3)
    rest.request("DELETE", f"{aid.collection(namespace)}/churn")
    wait_for(
        lambda: rest.request("GET", f"{aid.collection(namespace)}/churn") is None,
        message="the AIDeployment to be deleted",
    )
    assert len(list_records(rest, namespace, "churn")) == 3
    code, out, _ = run("verify", "churn")
    assert code == 0
    assert "AIDeployment deleted" in out and "3 records, chain intact" in out
    code, out, _ = run("history", "churn")
    assert code == 0 and len(out.splitlines()) == 4
    assert written[0]["metadata"]["name"] in out


def test_verify_of_nothing(run: Run, namespace: str) -> None:
    code, out, _ = run("verify")
    assert (code, out) == (0, f"no records in namespace {namespace}\n")
    code, _, err = run("verify", "ghost")
    assert code == 1 and "aideployment ghost not found" in err
