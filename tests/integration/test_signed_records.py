"""The record chain can no longer be rewritten (issue 11, attack 3): the operator signs
every record it writes, and `kubectl aideploy verify` finds a chain edited, re-hashed and
re-headed in status by someone who may write records and status, and names the key it
checked against.

The attacker here writes as the cluster admin, past the records guard (which is the
webhook's job, tested in test_provenance.py): the signature has to hold even then."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aideploy.kube.records import list_records, record_collection
from aideploy.kube.rest import Rest
from aideploy.records import record_hash
from aideploy.records.signature import RecordSigner
from tests.support import aid
from tests.support.cluster import wait_for
from tests.support.operator import OperatorProcess
from tests.unit.factories import full_checklist, make_spec

pytestmark = pytest.mark.integration

NAME = "scorer"
Run = Callable[..., tuple[int, str, str]]


def operator_public_key(provenance_key_file: Path, into: Path) -> str:
    """What an administrator does: ask the operator's own command for its public key."""
    printed = subprocess.run(
        [
            sys.executable,
            "-m",
            "aideploy",
            "--print-record-public-key",
            "--provenance-key-file",
            str(provenance_key_file),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    into.write_text(printed)
    return printed.splitlines()[0].removeprefix("# ")


def records_written(rest: Rest, namespace: str, count: int) -> list[dict[str, Any]]:
    return wait_for(
        lambda: r if len(r := list_records(rest, namespace, NAME)) >= count else None,
        message=f"{count} records of {NAME}",
    )


def rewrite_from(
    rest: Rest, namespace: str, records: list[dict[str, Any]], start: int, key: RecordSigner
) -> str:
    """Edit record `start`, then re-hash, re-link and re-sign it and every later one with
    the attacker's key, and point status.latestRecord at the new head."""
    records[start]["spec"]["content"]["forged"] = True
    for index in range(start, len(records)):
        spec = records[index]["spec"]
        spec.pop("signature", None)
        spec["previousHash"] = records[index - 1]["spec"]["hash"]
        spec["hash"] = record_hash(spec)
        spec["signature"] = key.sign(spec["hash"])
        rest.request(
            "PUT",
            f"{record_collection(namespace)}/{records[index]['metadata']['name']}",
            body=records[index],
        )
    head = records[-1]
    rest.request(
        "PATCH",
        f"{aid.collection(namespace)}/{NAME}/status",
        body={"status": {"latestRecord": {"hash": head["spec"]["hash"]}}},
        content_type="application/merge-patch+json",
    )
    return str(head["spec"]["hash"])


def test_operator_signed_records_verify_and_a_rewritten_chain_does_not(
    rest: Rest,
    namespace: str,
    keyed_operator: OperatorProcess,
    provenance_key_file: Path,
    tmp_path: Path,
    run: Run,
) -> None:
    aid.create(rest, namespace, aid.manifest(NAME, make_spec("minimal"), full_checklist()))
    aid.approve_all(rest, namespace, NAME, ["system-owner", "deployment-manager"])
    records = records_written(rest, namespace, 2)  # plan, approval
    key_file = tmp_path / "operator.pub"
    key_id = operator_public_key(provenance_key_file, key_file)
    assert {r["spec"]["signature"]["keyId"] for r in records} == {key_id}
    assert key_id in keyed_operator.log_text()  # announced at start

    code, out, err = run("verify", NAME, "--public-key", str(key_file))
    assert (code, err) == (0, "")
    assert "chain intact; signatures checked against " + key_id in out

    attacker = RecordSigner(Ed25519PrivateKey.generate())
    records = list_records(rest, namespace, NAME)
    approval = next(i for i, r in enumerate(records) if r["spec"]["type"] == "approval")
    head = rewrite_from(rest, namespace, records, approval, attacker)
    assert aid.status(rest, namespace, NAME)["latestRecord"]["hash"] == head

    # Without a trusted key the chain is consistent, and verify says whose key signed it.
    code, out, _ = run("verify", NAME)
    assert code == 0
    assert attacker.key_id in out and "not checked against a trusted key" in out
    # With the operator's key, every re-signed record is named.
    code, out, err = run("verify", NAME, "--public-key", str(key_file))
    assert code == 1
    forged = [r["metadata"]["name"] for r in records[approval:]]
    for name in forged:
        assert f"untrusted-key {name}: is signed by {attacker.key_id}" in out
    assert f"error: {len(forged)} break" in err


def test_a_rehashed_record_without_a_key_breaks_its_signature(
    rest: Rest, namespace: str, keyed_operator: OperatorProcess, run: Run
) -> None:
    """An editor without any key keeps the old signature (or drops it): both are found
    with no trusted key given at all."""
    aid.create(rest, namespace, aid.manifest(NAME, make_spec("minimal"), full_checklist()))
    aid.approve_all(rest, namespace, NAME, ["system-owner", "deployment-manager"])
    records = records_written(rest, namespace, 2)
    last = records[-1]
    last["spec"]["content"]["forged"] = True
    last["spec"]["hash"] = record_hash(last["spec"])
    rest.request("PUT", f"{record_collection(namespace)}/{last['metadata']['name']}", body=last)
    code, out, _ = run("verify", NAME)
    assert code == 1
    assert f"bad-signature {last['metadata']['name']}: does not match its signature" in out


def test_verify_refuses_an_unreadable_public_key(run: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pub"
    bad.write_text("not a key\n")
    code, out, err = run("verify", "--public-key", str(bad))
    assert code == 1 and out == ""
    assert err.startswith(f"error: --public-key {bad}: neither a PEM public key")
    assert "--print-record-public-key" in err and "Traceback" not in err
