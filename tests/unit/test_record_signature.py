"""The operator's signature over records: a chain edited and re-hashed by someone without
the key, re-signed with another key, or stripped of its signatures is reported; a chain the
operator wrote passes, with or without its public key."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aideploy.__main__ import main as operator_main
from aideploy.admission.provenance import load_key
from aideploy.api.digest import spec_digest
from aideploy.api.records import RecordSpec, RecordType
from aideploy.records import BreakKind, DeploymentRef, build_record, next_link, record_hash
from aideploy.records.signature import (
    PublicKeyError,
    RecordSigner,
    check_signature,
    key_id,
    load_public_key,
)
from aideploy.records.verify import signing_keys, verify_chain
from tests.unit.factories import NOW, make_spec

OPERATOR = RecordSigner.from_secret(b"the operator's provenance secret")
ATTACKER = RecordSigner(Ed25519PrivateKey.generate())
REF = DeploymentRef("ns", "churn", "uid-1", 1, spec_digest(make_spec()))


def chain(length: int = 4, signer: RecordSigner | None = OPERATOR) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for index in range(length):
        link = next_link(records)
        records.append(
            build_record(
                REF,
                RecordType.PLAN,
                sequence=link.sequence,
                previous_hash=link.previous_hash,
                content={"step": index},
                created_at=NOW + timedelta(minutes=index),
                signer=signer,
            )
        )
    return records


def rehash_from(records: list[dict[str, Any]], start: int, signer: RecordSigner | None) -> None:
    """What an attacker without the operator's key does after editing record `start`:
    recompute every hash and link from there on, and sign with what they have."""
    for index in range(start, len(records)):
        spec = records[index]["spec"]
        spec.pop("signature", None)
        if index:
            spec["previousHash"] = records[index - 1]["spec"]["hash"]
        spec["hash"] = record_hash(spec)
        if signer is not None:
            spec["signature"] = signer.sign(spec["hash"])


def test_the_key_is_derived_from_the_secret_and_stable() -> None:
    again = RecordSigner.from_secret(b"the operator's provenance secret")
    other = RecordSigner.from_secret(b"another secret")
    assert again.key_id == OPERATOR.key_id != other.key_id
    assert OPERATOR.key_id.startswith("ed25519:") and len(OPERATOR.key_id) == 24


def test_a_signed_record_is_valid_against_the_crd_model() -> None:
    spec = chain(1)[0]["spec"]
    assert RecordSpec.model_validate(spec).signature is not None
    assert spec["signature"]["keyId"] == OPERATOR.key_id
    # The hash does not cover the signature (which signs the hash), so adding one keeps it.
    assert record_hash(spec) == spec["hash"] == chain(1, signer=None)[0]["spec"]["hash"]


def test_the_operators_chain_passes_with_and_without_its_key() -> None:
    records = chain()
    assert verify_chain(records) == []
    assert verify_chain(records, trusted_keys=[OPERATOR.public_key]) == []
    assert signing_keys(records) == {OPERATOR.key_id: 4}


Tamper = Callable[[list[dict[str, Any]]], None]


def _edit_and_rehash(signer: RecordSigner | None) -> Tamper:
    def tamper(records: list[dict[str, Any]]) -> None:
        records[1]["spec"]["content"] = {"step": 99}
        rehash_from(records, 1, signer)

    return tamper


def _edit_and_rehash_keeping_signatures(records: list[dict[str, Any]]) -> None:
    kept = [r["spec"].get("signature") for r in records]
    _edit_and_rehash(None)(records)
    for record, signature in zip(records, kept, strict=True):
        record["spec"]["signature"] = signature


def _strip_all(records: list[dict[str, Any]]) -> None:
    for record in records:
        del record["spec"]["signature"]


def _swap_public_key(records: list[dict[str, Any]]) -> None:
    records[2]["spec"]["signature"]["publicKey"] = ATTACKER.public_key_base64()


# (what was done, tamper, breaks without a trusted key, breaks with the operator's key)
CASES: list[tuple[str, Tamper, set[tuple[BreakKind, int]], set[tuple[BreakKind, int]]]] = [
    (
        "edited and re-hashed, old signatures kept",
        _edit_and_rehash_keeping_signatures,
        {(BreakKind.BAD_SIGNATURE, n) for n in range(2, 5)},
        {(BreakKind.BAD_SIGNATURE, n) for n in range(2, 5)},
    ),
    (
        "edited and re-hashed, signatures dropped",
        _edit_and_rehash(None),
        {(BreakKind.UNSIGNED, n) for n in range(2, 5)},
        {(BreakKind.UNSIGNED, n) for n in range(2, 5)},
    ),
    (
        "edited and re-hashed, re-signed with the attacker's key",
        _edit_and_rehash(ATTACKER),
        set(),  # consistent, but the note names the attacker's key (see below)
        {(BreakKind.UNTRUSTED_KEY, 2), (BreakKind.UNTRUSTED_KEY, 3), (BreakKind.UNTRUSTED_KEY, 4)},
    ),
    (
        "signatures stripped from the whole chain",
        _strip_all,
        set(),
        {(BreakKind.UNSIGNED, n) for n in range(1, 5)},
    ),
    (
        "public key replaced in one signature",
        _swap_public_key,
        {(BreakKind.BAD_SIGNATURE, 3)},
        {(BreakKind.BAD_SIGNATURE, 3)},
    ),
]


@pytest.mark.parametrize(
    ("tamper", "untrusted", "trusted"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_tampering_is_reported(
    tamper: Tamper, untrusted: set[tuple[BreakKind, int]], trusted: set[tuple[BreakKind, int]]
) -> None:
    records = chain()
    tamper(records)
    # The hash chain itself is consistent again: only the signatures tell.
    assert {b.kind for b in verify_chain(records)} <= {
        BreakKind.UNSIGNED,
        BreakKind.BAD_SIGNATURE,
    }
    assert {(b.kind, b.sequence) for b in verify_chain(records)} == untrusted
    breaks = verify_chain(records, trusted_keys=[OPERATOR.public_key])
    assert {(b.kind, b.sequence) for b in breaks} == trusted


def test_a_chain_resigned_by_someone_else_names_their_key() -> None:
    records = chain()
    _edit_and_rehash(ATTACKER)(records)
    assert signing_keys(records) == {OPERATOR.key_id: 1, ATTACKER.key_id: 3}


def test_an_edited_signed_record_breaks_its_signature_even_if_the_hash_is_kept() -> None:
    """Edit one record and put a matching hash in it, without touching the others: the
    link from its successor breaks, and its signature no longer matches its hash."""
    records = chain()
    spec = records[1]["spec"]
    spec["content"] = {"step": 99}
    spec["hash"] = record_hash(spec)
    kinds = {(b.kind, b.sequence) for b in verify_chain(records)}
    assert (BreakKind.BAD_SIGNATURE, 2) in kinds
    assert (BreakKind.BROKEN_LINK, 3) in kinds


def test_records_from_before_the_operator_had_a_key() -> None:
    """Unsigned records at the start of a chain (written before signing was set up) are
    not a break without a trusted key; an unsigned record after a signed one is."""
    records = chain(2, signer=None)
    for index in range(2):
        link = next_link(records)
        records.append(
            build_record(
                REF,
                RecordType.APPROVAL,
                sequence=link.sequence,
                previous_hash=link.previous_hash,
                content={"later": index},
                created_at=NOW,
                signer=OPERATOR,
            )
        )
    assert verify_chain(records) == []
    late = next_link(records)
    records.append(
        build_record(
            REF,
            RecordType.CLOSURE,
            sequence=late.sequence,
            previous_hash=late.previous_hash,
            content={},
            created_at=NOW,
        )
    )
    assert [(b.kind, b.sequence) for b in verify_chain(records)] == [(BreakKind.UNSIGNED, 5)]


@pytest.mark.parametrize(
    ("signature", "problem"),
    [
        ("not an object", "bad"),
        ({"keyId": "ed25519:0000000000000000", "publicKey": "!!", "value": "x"}, "bad"),
        ({"keyId": "ed25519:0000000000000000", "publicKey": "", "value": ""}, "bad"),
    ],
)
def test_unreadable_signatures(signature: Any, problem: str) -> None:
    spec = copy.deepcopy(chain(1)[0]["spec"])
    spec["signature"] = signature
    assert check_signature(spec, []).problem == problem


@pytest.mark.parametrize(
    "text",
    [
        OPERATOR.public_key_pem(),
        f"# {OPERATOR.key_id}\n{OPERATOR.public_key_pem()}",
        OPERATOR.public_key_base64(),
        f"  {OPERATOR.public_key_base64()}\n",
    ],
    ids=["pem", "pem-with-comment", "base64", "base64-with-spaces"],
)
def test_public_keys_are_read_as_printed_or_logged(text: str) -> None:
    assert key_id(load_public_key(text)) == OPERATOR.key_id


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "is empty"),
        ("# only a comment\n", "is empty"),
        ("not base64 at all!", "neither a PEM"),
        (base64.b64encode(b"short").decode(), "32 bytes"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not a PEM"),
    ],
)
def test_unreadable_public_keys_say_why(text: str, says: str) -> None:
    with pytest.raises(PublicKeyError, match=says):
        load_public_key(text)


def test_the_operator_prints_the_public_key_it_signs_with(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "provenance.key"
    secret.write_bytes(b"the operator's provenance secret")
    assert operator_main(["--print-record-public-key", "--provenance-key-file", str(secret)]) == 0
    printed = capsys.readouterr().out
    # The key the running operator signs with: derived from the same file (handlers.py).
    running = RecordSigner.from_secret(load_key(str(secret), None) or b"")
    assert printed.startswith(f"# {running.key_id}\n-----BEGIN PUBLIC KEY-----")
    assert key_id(load_public_key(printed)) == running.key_id


def test_printing_the_public_key_without_a_key_says_what_to_give(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert operator_main(["--print-record-public-key"]) == 2
    err = capsys.readouterr().err
    assert "no key to derive the record signing key from" in err and "--provenance-key-file" in err
    assert (
        operator_main(["--print-record-public-key", "--provenance-key-file", "/nonexistent"]) == 2
    )
    assert "cannot read the key" in capsys.readouterr().err
