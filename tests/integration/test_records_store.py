"""AIDeploymentRecords against the real apiserver: the CRD, exactly-once writes, the hash
surviving the round trip, listing, and records outliving their AIDeployment."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from aideploy.api.constants import GROUP, RECORD_PLURAL, VERSION
from aideploy.api.digest import spec_digest
from aideploy.api.records import RecordType
from aideploy.kube.records import list_records, record_collection, write_record
from aideploy.kube.rest import ApiError, Rest
from aideploy.records import DeploymentRef, build_record, next_link, record_name, verify_chain
from tests.support import aid
from tests.support.cluster import wait_for
from tests.unit.factories import NOW, make_spec

pytestmark = pytest.mark.integration

CONTENT = {
    "float": 2.0,
    "fraction": 0.1,
    "big": 2**60,
    "text": "Prüfung — ok",
    "empty": {},
    "list": [],
    "nested": [{"a": 1, "b": [True, False]}],
}


def create_deployment(
    rest: Rest, namespace: str, name: str
) -> tuple[dict[str, Any], DeploymentRef]:
    created = aid.create(rest, namespace, aid.manifest(name, make_spec()))
    return created, DeploymentRef.of(created, spec_digest(created["spec"]))


def append(
    rest: Rest,
    ref: DeploymentRef,
    record_type: RecordType,
    content: dict[str, Any],
    minutes: int = 0,
) -> dict[str, Any]:
    """What the operator does at a record point: find the link, build, write."""
    existing = list_records(rest, ref.namespace, ref.name, ref.uid)
    link = next_link(existing)
    manifest = build_record(
        ref,
        record_type,
        sequence=link.sequence,
        previous_hash=link.previous_hash,
        content=content,
        created_at=NOW + timedelta(minutes=minutes),
    )
    return write_record(rest, manifest)


def test_record_crd_is_served_with_its_columns(rest: Rest, crds: list[str], namespace: str) -> None:
    assert "aideploymentrecords.aideploy.io" in crds
    _, ref = create_deployment(rest, namespace, "churn")
    append(rest, ref, RecordType.PLAN, {"x": 1})
    table = rest.request(
        "GET",
        record_collection(namespace),
        accept="application/json;as=Table;v=v1beta1;g=meta.k8s.io",
    )
    assert table is not None
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names == ["Name", "Deployment", "Type", "Record", "Sequence", "Created"]
    assert table["rows"][0]["cells"][:5] == [
        record_name("churn", 1, 1, RecordType.PLAN, ref.uid),
        "churn",
        "plan",
        "REC-AI-DEPLOY-001",
        1,
    ]


def test_write_record_is_idempotent(rest: Rest, crds: list[str], namespace: str) -> None:
    _, ref = create_deployment(rest, namespace, "churn")
    first = build_record(
        ref, RecordType.PLAN, sequence=1, previous_hash="", content={"a": 1}, created_at=NOW
    )
    # The same event written again after a restart: same name, later time, other hash.
    again = build_record(
        ref,
        RecordType.PLAN,
        sequence=1,
        previous_hash="",
        content={"a": 1},
        created_at=NOW + timedelta(minutes=5),
    )
    assert again["spec"]["hash"] != first["spec"]["hash"]
    written = write_record(rest, first)
    returned = write_record(rest, again)
    assert returned["spec"]["hash"] == written["spec"]["hash"] == first["spec"]["hash"]
    assert returned["metadata"]["uid"] == written["metadata"]["uid"]
    assert len(list_records(rest, namespace)) == 1


def test_chain_survives_the_round_trip(rest: Rest, crds: list[str], namespace: str) -> None:
    _, ref = create_deployment(rest, namespace, "churn")
    for index, record_type in enumerate(
        [RecordType.PLAN, RecordType.APPROVAL, RecordType.DEPLOYMENT_LOG]
    ):
        append(rest, ref, record_type, {**CONTENT, "index": index}, minutes=index)
    stored = list_records(rest, namespace, "churn")
    assert [r["spec"]["sequence"] for r in stored] == [1, 2, 3]
    assert [r["metadata"]["name"] for r in stored] == [
        record_name("churn", 1, 1, RecordType.PLAN, ref.uid),
        record_name("churn", 1, 2, RecordType.APPROVAL, ref.uid),
        record_name("churn", 1, 3, RecordType.DEPLOYMENT_LOG, ref.uid),
    ]
    assert stored[0]["spec"]["previousHash"] == ""
    assert stored[0]["spec"]["content"]["float"] == 2  # stored as an integer, hash unchanged
    assert verify_chain(stored) == []
    assert all("ownerReferences" not in r["metadata"] for r in stored)


def test_list_records_filters_by_name_and_uid(rest: Rest, crds: list[str], namespace: str) -> None:
    _, churn = create_deployment(rest, namespace, "churn")
    _, fraud = create_deployment(rest, namespace, "fraud")
    append(rest, churn, RecordType.PLAN, {})
    append(rest, churn, RecordType.APPROVAL, {})
    append(rest, fraud, RecordType.PLAN, {})
    assert len(list_records(rest, namespace)) == 3
    assert [r["spec"]["type"] for r in list_records(rest, namespace, "churn")] == [
        "plan",
        "approval",
    ]
    assert len(list_records(rest, namespace, uid=fraud.uid)) == 1
    assert list_records(rest, namespace, "churn", uid=fraud.uid) == []
    # A changed label hides a record from the label index, not from an audit.
    name = record_name("churn", 1, 2, RecordType.APPROVAL, churn.uid)
    rest.request(
        "PATCH",
        f"{record_collection(namespace)}/{name}",
        body={"metadata": {"labels": {"aideploy.io/deployment": "elsewhere"}}},
        content_type="application/merge-patch+json",
    )
    assert len(list_records(rest, namespace, "churn")) == 1
    assert len(list_records(rest, namespace, "churn", use_labels=False)) == 2


def test_records_survive_deletion_of_their_aideployment(
    rest: Rest, crds: list[str], namespace: str
) -> None:
    _, ref = create_deployment(rest, namespace, "churn")
    written = append(rest, ref, RecordType.PLAN, {"kept": True})
    rest.request("DELETE", f"{aid.collection(namespace)}/churn")
    wait_for(
        lambda: rest.request("GET", f"{aid.collection(namespace)}/churn") is None,
        message="the AIDeployment to be deleted",
    )
    # Give the garbage collector a chance to (wrongly) act on the record.
    with pytest.raises(TimeoutError):
        wait_for(
            lambda: not list_records(rest, namespace, "churn"),
            timeout=3.0,
            message="the record to disappear (it must not)",
        )
    kept = list_records(rest, namespace, "churn")
    assert [r["metadata"]["uid"] for r in kept] == [written["metadata"]["uid"]]
    assert verify_chain(kept) == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("recordId", "REC-AI-DEPLOY-999", "Unsupported value"),
        ("type", "memo", "Unsupported value"),
        ("hash", "md5:abc", "should match"),
        ("previousHash", "sha256:short", "should match"),
        ("createdAt", "yesterday", "date-time"),
        ("sequence", 0, "greater than or equal to 1"),
    ],
)
def test_schema_rejects_malformed_records(
    rest: Rest, crds: list[str], namespace: str, field: str, value: Any, message: str
) -> None:
    ref = DeploymentRef(namespace, "churn", "uid-1", 1, spec_digest(make_spec()))
    manifest = build_record(
        ref, RecordType.PLAN, sequence=1, previous_hash="", content={}, created_at=NOW
    )
    bad = copy.deepcopy(manifest)
    bad["spec"][field] = value
    with pytest.raises(ApiError) as raised:
        rest.request("POST", record_collection(namespace), body=bad)
    assert raised.value.status == 422 and message in raised.value.message
    missing = copy.deepcopy(manifest)
    del missing["spec"]["hash"]
    with pytest.raises(ApiError, match=r"spec\.hash: Required value"):
        rest.request("POST", record_collection(namespace), body=missing)


def test_record_collection_path() -> None:
    assert record_collection("ns") == f"/apis/{GROUP}/{VERSION}/namespaces/ns/{RECORD_PLURAL}"
