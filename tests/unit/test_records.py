"""Record manifests and their hash chain: determinism, names, retention, and every kind of
break `verify_chain` must report (edited, removed, reordered, duplicated, truncated)."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aideploy.api.digest import spec_digest
from aideploy.api.records import RecordType
from aideploy.records import (
    BreakKind,
    DeploymentRef,
    build_record,
    find_record,
    label_value,
    next_link,
    record_hash,
    record_name,
    verify_chain,
    verify_chains,
)
from aideploy.records.chain import MAX_LABEL_LENGTH, MAX_NAME_LENGTH
from tests.unit.factories import NOW, make_spec

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DIGEST = spec_digest(make_spec())
REF = DeploymentRef("ns", "churn-predictor", "uid-1", 3, DIGEST)
TYPES = [
    RecordType.PLAN,
    RecordType.APPROVAL,
    RecordType.DEPLOYMENT_LOG,
    RecordType.ROLLBACK,
    RecordType.CLOSURE,
]


def chain(length: int = 5, ref: DeploymentRef = REF) -> list[dict[str, Any]]:
    """A valid chain as the operator writes it: each record links to the one before."""
    records: list[dict[str, Any]] = []
    for index in range(length):
        link = next_link(records)
        records.append(
            build_record(
                ref,
                TYPES[index % len(TYPES)],
                sequence=link.sequence,
                previous_hash=link.previous_hash,
                content={"step": index, "note": f"event {index}"},
                created_at=NOW + timedelta(minutes=index),
            )
        )
    return records


def kinds(records: list[dict[str, Any]]) -> list[tuple[BreakKind, str]]:
    return [(b.kind, b.record) for b in verify_chain(records)]


def rehash(record: dict[str, Any]) -> None:
    record["spec"]["hash"] = record_hash(record["spec"])


# Hash


def test_hash_is_deterministic_and_independent_of_key_order() -> None:
    spec = chain(1)[0]["spec"]
    reordered = dict(reversed(list(copy.deepcopy(spec).items())))
    assert record_hash(spec) == record_hash(reordered) == spec["hash"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", spec["hash"])


def test_hash_covers_every_field_but_itself() -> None:
    spec = chain(1)[0]["spec"]
    assert record_hash({**spec, "hash": "sha256:" + "0" * 64}) == spec["hash"]
    for key in spec:
        if key == "hash":
            continue
        changed = copy.deepcopy(spec)
        changed[key] = {"tampered": True}
        assert record_hash(changed) != spec["hash"], key


def test_hash_survives_the_apiservers_integral_floats() -> None:
    spec = chain(1)[0]["spec"]
    spec["content"] = {"value": 2.0}
    as_stored = {**spec, "content": {"value": 2}}
    assert record_hash(spec) == record_hash(as_stored)


# Manifest


def test_manifest_shape() -> None:
    record = chain(2)[1]
    assert record["apiVersion"] == "aideploy.io/v1alpha1"
    assert record["kind"] == "AIDeploymentRecord"
    assert (
        record["metadata"]["name"] == "churn-predictor-uid1-g3-0002-approval"
    )  # uid fragment: see record_name
    assert record["metadata"]["namespace"] == "ns"
    assert record["metadata"]["labels"]["aideploy.io/deployment"] == "churn-predictor"
    assert record["metadata"]["labels"]["aideploy.io/record-type"] == "approval"
    assert "ownerReferences" not in record["metadata"]
    spec = record["spec"]
    assert spec["recordId"] == "REC-AI-DEPLOY-002"
    assert spec["deployment"] == {
        "name": "churn-predictor",
        "uid": "uid-1",
        "generation": 3,
        "specDigest": DIGEST,
    }
    assert spec["sequence"] == 2
    assert spec["createdAt"] == "2026-11-26T12:01:00Z"


def test_record_ids() -> None:
    ids = {t: chain(5)[i]["spec"]["recordId"] for i, t in enumerate(TYPES)}
    assert ids == {
        RecordType.PLAN: "REC-AI-DEPLOY-001",
        RecordType.APPROVAL: "REC-AI-DEPLOY-002",
        RecordType.DEPLOYMENT_LOG: "REC-AI-DEPLOY-003",
        RecordType.ROLLBACK: "REC-AI-DEPLOY-004",
        RecordType.CLOSURE: "REC-AI-DEPLOY-CLOSE",
    }


def test_retention_is_ten_years_by_default_and_configurable() -> None:
    created = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)

    def retain(**kwargs: Any) -> str:
        record = build_record(
            REF,
            RecordType.PLAN,
            sequence=1,
            previous_hash="",
            content={},
            created_at=created,
            **kwargs,
        )
        return str(record["spec"]["retainUntil"])

    assert retain() == "2036-11-26T12:00:00Z"  # 3653 days: three leap days in the decade
    assert retain(retention=timedelta(days=365)) == "2027-11-26T12:00:00Z"
    with pytest.raises(ValueError, match="at least one day"):
        retain(retention=timedelta(hours=1))


def test_links_are_checked_when_building() -> None:
    with pytest.raises(ValueError, match="no previous hash"):
        build_record(
            REF, RecordType.PLAN, sequence=1, previous_hash=DIGEST, content={}, created_at=NOW
        )
    with pytest.raises(ValueError, match="needs the hash of record 1"):
        build_record(REF, RecordType.PLAN, sequence=2, previous_hash="", content={}, created_at=NOW)
    with pytest.raises(ValueError, match="start at 1"):
        build_record(REF, RecordType.PLAN, sequence=0, previous_hash="", content={}, created_at=NOW)


@pytest.mark.parametrize("length", [1, 63, 200, 240, 253])
@pytest.mark.parametrize("record_type", list(RecordType))
def test_names_stay_valid_dns_subdomains(length: int, record_type: RecordType) -> None:
    deployment = ("a" * (length - 3) + "b.c")[:length]
    name = record_name(deployment, 123456, 12345, record_type)
    assert len(name) <= MAX_NAME_LENGTH
    assert DNS_SUBDOMAIN.match(name), name
    assert name.endswith(f"-g123456-12345-{record_type.value}")


def test_long_names_sharing_a_prefix_get_distinct_records() -> None:
    first, second = "x" * 250 + "-one", "x" * 250 + "-two"
    assert record_name(first, 1, 1, RecordType.PLAN) != record_name(second, 1, 1, RecordType.PLAN)


def test_cut_name_does_not_end_in_a_separator() -> None:
    name = record_name("a" * 220 + "-" * 0 + "." + "b" * 40, 1, 1, RecordType.DEPLOYMENT_LOG)
    assert DNS_SUBDOMAIN.match(name), name


def test_label_value_fits_a_label() -> None:
    assert label_value("churn-predictor") == "churn-predictor"
    long = "model." + "a" * 100
    value = label_value(long)
    assert len(value) <= MAX_LABEL_LENGTH and LABEL.match(value)
    assert value != label_value(long + "b")


# Linking and idempotency helpers


def test_next_link() -> None:
    assert next_link([]).sequence == 1 and next_link([]).previous_hash == ""
    records = chain(3)
    link = next_link(list(reversed(records)))
    assert link.sequence == 4 and link.previous_hash == records[2]["spec"]["hash"]


def test_find_record_for_an_event_already_written() -> None:
    records = chain(4)
    found = find_record(records, RecordType.APPROVAL, generation=3)
    assert found is not None and found["spec"]["sequence"] == 2
    assert find_record(records, RecordType.APPROVAL, generation=4) is None
    assert find_record(records, RecordType.CLOSURE, generation=3) is None
    assert find_record(records, RecordType.PLAN, 3, content_matches={"step": 0}) is not None
    assert find_record(records, RecordType.PLAN, 3, content_matches={"step": 9}) is None


# Verification


def test_intact_chain_in_any_order() -> None:
    records = chain(5)
    assert verify_chain(records) == []
    assert verify_chain(list(reversed(records))) == []
    assert verify_chain([]) == []


def test_edited_content_is_reported_on_that_record() -> None:
    records = chain(5)
    records[2]["spec"]["content"]["note"] = "something else"
    assert kinds(records) == [(BreakKind.EDITED, records[2]["metadata"]["name"])]


def test_edited_and_rehashed_record_breaks_its_successors_link() -> None:
    records = chain(5)
    records[2]["spec"]["content"]["note"] = "something else"
    rehash(records[2])
    assert kinds(records) == [(BreakKind.BROKEN_LINK, records[3]["metadata"]["name"])]
    assert "replaced or re-hashed" in verify_chain(records)[0].message


def test_removed_middle_record_is_a_gap() -> None:
    records = chain(5)
    del records[2]
    breaks = verify_chain(records)
    assert [(b.kind, b.record, b.sequence) for b in breaks] == [
        (BreakKind.MISSING, records[2]["metadata"]["name"], 4)
    ]
    assert "record 3 of this deployment is missing" in breaks[0].message


def test_removed_first_records() -> None:
    records = chain(5)[2:]
    breaks = verify_chain(records)
    assert [(b.kind, b.sequence) for b in breaks] == [(BreakKind.MISSING, 3)]
    assert "records 1 to 2" in breaks[0].message


def test_removed_record_renumbered_to_hide_the_gap() -> None:
    records = chain(5)
    del records[2]
    for record in records[2:]:
        record["spec"]["sequence"] -= 1
        rehash(record)
    # Re-hashing moves every later hash too: each renumbered record's link breaks.
    assert kinds(records) == [
        (BreakKind.BROKEN_LINK, records[2]["metadata"]["name"]),
        (BreakKind.BROKEN_LINK, records[3]["metadata"]["name"]),
    ]


def test_reordered_records_without_rehash() -> None:
    records = chain(5)
    second, third = records[1]["spec"], records[2]["spec"]
    second["sequence"], third["sequence"] = 3, 2
    found = kinds(records)
    assert (BreakKind.EDITED, records[1]["metadata"]["name"]) in found
    assert (BreakKind.EDITED, records[2]["metadata"]["name"]) in found
    reordered = [b for b in verify_chain(records) if b.kind is BreakKind.BROKEN_LINK]
    assert reordered and "reordered" in reordered[0].message


def test_reordered_records_rehashed() -> None:
    records = chain(5)
    records[1]["spec"]["sequence"], records[2]["spec"]["sequence"] = 3, 2
    rehash(records[1])
    rehash(records[2])
    found = kinds(records)
    assert found and all(kind is BreakKind.BROKEN_LINK for kind, _ in found)
    assert {name for _, name in found} >= {records[2]["metadata"]["name"]}


def test_duplicate_sequence_numbers() -> None:
    records = chain(4)
    twin = build_record(
        REF,
        RecordType.ROLLBACK,
        sequence=2,
        previous_hash=records[0]["spec"]["hash"],
        content={"inserted": True},
        created_at=NOW,
    )
    twin["metadata"]["name"] = "zz-inserted"
    breaks = verify_chain([*records, twin])
    assert [(b.kind, b.record) for b in breaks] == [(BreakKind.DUPLICATE, "zz-inserted")]
    assert records[1]["metadata"]["name"] in breaks[0].message


def test_first_record_with_a_previous_hash() -> None:
    records = chain(2)
    records[0]["spec"]["previousHash"] = records[1]["spec"]["hash"]
    rehash(records[0])
    found = kinds(records)
    assert found[0] == (BreakKind.BROKEN_LINK, records[0]["metadata"]["name"])


def test_malformed_record() -> None:
    records = chain(2)
    del records[1]["spec"]["hash"]
    assert kinds(records) == [(BreakKind.MALFORMED, records[1]["metadata"]["name"])]


def test_truncated_tail_seen_from_the_latest_record_in_status() -> None:
    records = chain(5)
    latest = {
        "name": records[4]["metadata"]["name"],
        "sequence": 5,
        "hash": records[4]["spec"]["hash"],
    }
    assert verify_chain(records, latest) == []
    breaks = verify_chain(records[:3], latest)
    assert [(b.kind, b.record) for b in breaks] == [(BreakKind.TRUNCATED, latest["name"])]
    assert "records 4 to 5 were removed" in breaks[0].message
    # Status may lag one record behind the chain (written after the record): no break.
    assert (
        verify_chain(records, {**latest, "sequence": 4, "hash": records[3]["spec"]["hash"]}) == []
    )


def test_replaced_latest_record_seen_from_status() -> None:
    records = chain(3)
    latest = {"name": "x", "sequence": 3, "hash": records[2]["spec"]["hash"]}
    records[2]["spec"]["content"] = {"other": True}
    rehash(records[2])
    assert [b.kind for b in verify_chain(records, latest)] == [BreakKind.EDITED]


def test_chains_are_verified_per_deployment_uid() -> None:
    other = DeploymentRef("ns", "churn-predictor", "uid-2", 1, DIGEST)
    first, second = chain(3), chain(2, other)
    del first[1]
    result = verify_chains([*first, *second])
    assert set(result) == {"uid-1", "uid-2"}
    assert [b.kind for b in result["uid-1"]] == [BreakKind.MISSING]
    assert result["uid-2"] == []
    with pytest.raises(ValueError, match="one AIDeployment"):
        verify_chain([*first, *second])


def test_a_recreated_object_of_the_same_name_gets_other_record_names() -> None:
    from aideploy.api.records import RecordType as Type

    first = record_name("scorer", 1, 1, Type.PLAN, uid="0f1e2d3c-aaaa-bbbb")
    second = record_name("scorer", 1, 1, Type.PLAN, uid="9a8b7c6d-aaaa-bbbb")
    assert first != second and first.startswith("scorer-0f1e2d3c-g1-")
