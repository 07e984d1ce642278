"""The evidence bundle (records/bundle.py): a DSSE envelope over an in-toto statement of
record chains. An intact bundle verifies with the operator's public key alone; a flipped
byte, a removed record, reordered records and a wrong key each fail, and the first
problem names the first broken record."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aideploy.api.digest import canonical_json, spec_digest
from aideploy.api.records import RecordType
from aideploy.records import DeploymentRef, build_record, next_link
from aideploy.records.bundle import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    ChainExport,
    envelope_bytes,
    sign_envelope,
    statement,
    verify_bundle,
)
from aideploy.records.signature import RecordSigner
from tests.unit.factories import NOW, make_spec

OPERATOR = RecordSigner.from_secret(b"the operator's provenance secret")
ATTACKER = RecordSigner(Ed25519PrivateKey.generate())
REF = DeploymentRef("ns", "churn", "uid-1", 1, spec_digest(make_spec()))
OTHER = DeploymentRef("ns", "fraud", "uid-2", 3, spec_digest(make_spec(version="2.0.0")))
LATER = NOW + timedelta(days=30)


def records(
    ref: DeploymentRef = REF,
    length: int = 4,
    signer: RecordSigner | None = OPERATOR,
    retention: timedelta = timedelta(days=3653),
) -> list[dict[str, Any]]:
    written: list[dict[str, Any]] = []
    types = [RecordType.PLAN, RecordType.APPROVAL, RecordType.DEPLOYMENT_LOG, RecordType.CLOSURE]
    for index in range(length):
        link = next_link(written)
        written.append(
            build_record(
                ref,
                types[index % len(types)],
                sequence=link.sequence,
                previous_hash=link.previous_hash,
                content={"step": index, "ratio": 1.0},
                created_at=NOW + timedelta(minutes=index),
                retention=retention,
                signer=signer,
            )
        )
    return written


def bundle(signer: RecordSigner = OPERATOR, **chain: Any) -> dict[str, Any]:
    exports = [ChainExport(records(**chain)), ChainExport(records(OTHER, 2))]
    return sign_envelope(statement("ns", exports, NOW), signer)


def payload_of(envelope: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))
    return decoded


def with_payload(envelope: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """The envelope with another payload and the old signature: what someone without the
    key can make."""
    changed = copy.deepcopy(envelope)
    changed["payload"] = base64.b64encode(canonical_json(payload)).decode("ascii")
    return changed


def churn_records(payload: dict[str, Any]) -> list[dict[str, Any]]:
    chains = payload["predicate"]["chains"]
    found: list[dict[str, Any]] = next(
        c["records"] for c in chains if c["deployment"]["name"] == "churn"
    )
    return found


def name(sequence: int) -> str:
    return str(records()[sequence - 1]["metadata"]["name"])


# Shape and canonicalisation


def test_an_intact_bundle_verifies_with_the_operator_key() -> None:
    report = verify_bundle(bundle(), OPERATOR.public_key, LATER)
    assert report.problems == []
    assert report.chains == [("churn", 4), ("fraud", 2)]
    assert report.expired == 0


def test_the_envelope_is_dsse_over_an_in_toto_statement() -> None:
    envelope = bundle()
    assert envelope["payloadType"] == PAYLOAD_TYPE
    assert envelope["signatures"][0]["keyid"] == OPERATOR.key_id
    payload = payload_of(envelope)
    assert payload["_type"] == STATEMENT_TYPE
    assert payload["predicateType"] == PREDICATE_TYPE
    first = records()[0]
    assert payload["subject"][0] == {
        "name": f"ns/{first['metadata']['name']}",
        "digest": {"sha256": first["spec"]["hash"].removeprefix("sha256:")},
    }
    assert len(payload["subject"]) == 6
    head = payload["predicate"]["chains"][0]["head"]
    assert head == {"sequence": 4, "name": name(4), "hash": records()[3]["spec"]["hash"]}


def test_the_payload_is_the_canonical_json_of_the_statement() -> None:
    envelope = bundle()
    body = base64.b64decode(envelope["payload"])
    assert body == canonical_json(json.loads(body))
    assert b" " not in body.split(b'"exportedAt"')[0][:20]


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda rs: list(reversed(rs)), id="records in any order"),
        pytest.param(
            lambda rs: [{**r, "metadata": {**r["metadata"], "resourceVersion": "7"}} for r in rs],
            id="apiserver bookkeeping left out",
        ),
        pytest.param(
            lambda rs: [json.loads(json.dumps(r, sort_keys=True)) for r in rs],
            id="key order does not matter",
        ),
    ],
)
def test_the_same_chain_gives_the_same_bytes(
    variant: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
) -> None:
    plain = statement("ns", [ChainExport(records())], NOW)
    varied = statement("ns", [ChainExport(variant(records()))], NOW)
    assert canonical_json(plain) == canonical_json(varied)
    signed = envelope_bytes(sign_envelope(plain, OPERATOR))
    assert signed == envelope_bytes(sign_envelope(varied, OPERATOR))


def test_chains_are_in_name_order_whatever_order_they_are_given_in() -> None:
    one = statement("ns", [ChainExport(records(OTHER, 2)), ChainExport(records())], NOW)
    names = [c["deployment"]["name"] for c in one["predicate"]["chains"]]
    assert names == ["churn", "fraud"]


def test_the_object_and_events_are_bundled_as_context_without_managed_fields() -> None:
    obj = {"metadata": {"name": "churn", "managedFields": [{"x": 1}]}, "spec": {}}
    event = {"metadata": {"name": "churn.1"}, "reason": "RecordWritten"}
    built = statement("ns", [ChainExport(records(), obj, [event])], NOW)
    chain = built["predicate"]["chains"][0]
    assert chain["object"] == {"metadata": {"name": "churn"}, "spec": {}}
    assert chain["events"] == [event]
    assert verify_bundle(sign_envelope(built, OPERATOR), OPERATOR.public_key, LATER).problems == []


def test_a_chain_without_records_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one record"):
        statement("ns", [ChainExport([])], NOW)


# Tampering: each must fail, and the first problem names the first broken record


def _flip_content(payload: dict[str, Any]) -> None:
    churn_records(payload)[1]["spec"]["content"]["step"] = 9


def _flip_hash_byte(payload: dict[str, Any]) -> None:
    spec = churn_records(payload)[2]["spec"]
    spec["createdAt"] = spec["createdAt"].replace("12:02", "12:03")


def _remove_middle(payload: dict[str, Any]) -> None:
    del churn_records(payload)[1]


def _remove_last(payload: dict[str, Any]) -> None:
    del churn_records(payload)[-1]


def _remove_last_and_head(payload: dict[str, Any]) -> None:
    chain = next(c for c in payload["predicate"]["chains"] if c["deployment"]["name"] == "churn")
    removed = chain["records"].pop()
    before = chain["records"][-1]
    chain["head"] = {
        "sequence": before["spec"]["sequence"],
        "name": before["metadata"]["name"],
        "hash": before["spec"]["hash"],
    }
    payload["subject"] = [
        s for s in payload["subject"] if removed["metadata"]["name"] not in s["name"]
    ]


def _reorder(payload: dict[str, Any]) -> None:
    chain = churn_records(payload)
    chain[1], chain[2] = chain[2], chain[1]


@pytest.mark.parametrize(
    ("tamper", "first_broken"),
    [
        pytest.param(_flip_content, 2, id="a changed value in record 2"),
        pytest.param(_flip_hash_byte, 3, id="a flipped byte in record 3's time"),
        pytest.param(_remove_middle, 3, id="record 2 removed"),
        pytest.param(_remove_last, 4, id="the newest record removed"),
        pytest.param(_remove_last_and_head, 0, id="the newest record and the head removed"),
        pytest.param(_reorder, 3, id="records 2 and 3 swapped: record 3 is out of place"),
    ],
)
def test_a_tampered_bundle_fails_naming_the_first_broken_record(
    tamper: Callable[[dict[str, Any]], None], first_broken: int
) -> None:
    envelope = bundle()
    payload = payload_of(envelope)
    tamper(payload)
    report = verify_bundle(with_payload(envelope, payload), OPERATOR.public_key, LATER)
    assert report.problems, "a tampered bundle must not verify"
    expected = name(first_broken) if first_broken else ""
    assert report.problems[0].record == expected, report.problems
    assert "signature" in report.problems[-1].message  # the envelope no longer matches either


@pytest.mark.parametrize("position", [10, 200, 900, -30])
def test_a_flipped_byte_anywhere_in_the_file_fails(position: int) -> None:
    text = bytearray(envelope_bytes(bundle()))
    # a byte inside the base64 payload or the signature: turn one letter into another
    payload = text.index(b'"payload": "') + len(b'"payload": "')
    index = payload + position if position > 0 else text.index(b'"sig": "') + 10
    text[index] = ord("A") if text[index] != ord("A") else ord("B")
    report = verify_bundle(json.loads(text), OPERATOR.public_key, LATER)
    assert report.problems


def test_a_wrong_key_fails_every_record_and_the_envelope() -> None:
    report = verify_bundle(bundle(), ATTACKER.public_key, LATER)
    assert report.problems[0].record == name(1)
    assert "not a trusted key" in report.problems[0].message
    assert "does not verify with" in report.problems[-1].message


def test_a_chain_forged_and_signed_with_another_key_fails() -> None:
    envelope = sign_envelope(
        statement("ns", [ChainExport(records(signer=ATTACKER))], NOW), ATTACKER
    )
    report = verify_bundle(envelope, OPERATOR.public_key, LATER)
    assert report.problems[0].record == name(1)
    assert any("does not verify" in p.message for p in report.problems)


def test_unsigned_records_fail_even_in_a_signed_envelope() -> None:
    envelope = sign_envelope(statement("ns", [ChainExport(records(signer=None))], NOW), OPERATOR)
    report = verify_bundle(envelope, OPERATOR.public_key, LATER)
    assert report.problems[0].record == name(1)
    assert "not signed" in report.problems[0].message


@pytest.mark.parametrize(
    "envelope",
    [
        pytest.param([], id="not an object"),
        pytest.param({"payloadType": "text/plain", "payload": ""}, id="another payload type"),
        pytest.param({"payloadType": PAYLOAD_TYPE, "payload": "%%%"}, id="not base64"),
        pytest.param(
            {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(b"{}").decode()},
            id="not our statement",
        ),
    ],
)
def test_a_file_that_is_no_bundle_fails_with_one_problem(envelope: Any) -> None:
    report = verify_bundle(envelope, OPERATOR.public_key, LATER)
    assert len(report.problems) == 1
    assert report.problems[0].record == ""


# Retention


def test_records_kept_less_than_the_minimum_fail() -> None:
    short = bundle(retention=timedelta(days=30))
    report = verify_bundle(short, OPERATOR.public_key, LATER)
    assert report.problems[0].record == name(1)
    assert "less than the 3653 days" in report.problems[0].message
    lowered = verify_bundle(short, OPERATOR.public_key, LATER, timedelta(days=30))
    assert lowered.problems == []


def test_records_past_their_retention_are_counted_not_failed() -> None:
    envelope = bundle(retention=timedelta(days=2))
    report = verify_bundle(envelope, OPERATOR.public_key, LATER, timedelta(days=1))
    assert report.problems == []
    assert report.expired == 4
