"""`kubectl aideploy evidence verify` and `public-key` need no cluster: they are run here
for real, with no kubeconfig at all, on bundles made by records/bundle.py; and the
commands that need a cluster refuse a wrong command line before connecting."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from aideploy.admission.provenance import load_key
from aideploy.api.digest import canonical_json
from aideploy.cli.main import main
from aideploy.records.bundle import ChainExport, envelope_bytes, sign_envelope, statement
from aideploy.records.signature import RecordSigner
from tests.unit.factories import NOW
from tests.unit.test_evidence_bundle import ATTACKER, records

SECRET = b"the operator's provenance secret"


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


@pytest.fixture
def signing_key(tmp_path: Path) -> Path:
    path = tmp_path / "provenance.key"
    path.write_bytes(SECRET)
    return path


@pytest.fixture
def public_key(capsys: pytest.CaptureFixture[str], signing_key: Path, tmp_path: Path) -> Path:
    code, out, _ = run(capsys, "evidence", "public-key", "--signing-key", str(signing_key))
    assert code == 0
    path = tmp_path / "operator.pub"
    path.write_text(out)
    return path


def operator_signer(signing_key: Path) -> RecordSigner:
    """The signer the operator derives from its provenance key file."""
    secret = load_key(str(signing_key), None)
    assert secret is not None
    return RecordSigner.from_secret(secret)


def write_bundle(path: Path, signer: RecordSigner) -> Path:
    """Records and envelope signed by `signer`, as the operator and the export do."""
    envelope = sign_envelope(statement("ns", [ChainExport(records(signer=signer))], NOW), signer)
    path.write_bytes(envelope_bytes(envelope))
    return path


def test_public_key_is_the_operators_record_key(
    capsys: pytest.CaptureFixture[str], signing_key: Path
) -> None:
    operator = operator_signer(signing_key)
    code, out, _ = run(capsys, "evidence", "public-key", "--signing-key", str(signing_key))
    assert code == 0
    assert out == f"# {operator.key_id}\n{operator.public_key_pem()}"


def test_an_intact_bundle_verifies_offline(
    capsys: pytest.CaptureFixture[str], public_key: Path, signing_key: Path, tmp_path: Path
) -> None:
    bundle = write_bundle(tmp_path / "b.json", operator_signer(signing_key))
    code, out, err = run(capsys, "evidence", "verify", str(bundle), "--key", str(public_key))
    assert (code, err) == (0, "")
    assert "churn: 4 records" in out
    assert "every record, link and signature verifies" in out


def test_a_tampered_bundle_fails_in_one_line_naming_the_record(
    capsys: pytest.CaptureFixture[str], public_key: Path, signing_key: Path, tmp_path: Path
) -> None:
    bundle = write_bundle(tmp_path / "b.json", operator_signer(signing_key))
    envelope = json.loads(bundle.read_text())
    payload = json.loads(base64.b64decode(envelope["payload"]))
    second = payload["predicate"]["chains"][0]["records"][1]
    second["spec"]["content"]["step"] = 7
    envelope["payload"] = base64.b64encode(canonical_json(payload)).decode()
    bundle.write_text(json.dumps(envelope))
    code, _, err = run(capsys, "evidence", "verify", str(bundle), "--key", str(public_key))
    assert code == 1
    (line,) = err.splitlines()
    assert line.startswith(f"error: {bundle} does not verify: record {second['metadata']['name']}")


def test_a_bundle_signed_by_another_key_fails(
    capsys: pytest.CaptureFixture[str], public_key: Path, tmp_path: Path
) -> None:
    bundle = write_bundle(tmp_path / "b.json", ATTACKER)
    code, _, err = run(capsys, "evidence", "verify", str(bundle), "--key", str(public_key))
    assert code == 1 and "does not verify" in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["evidence", "verify", "b.json"], "--key is required"),
        (["evidence", "export", "-o", "b.json", "--signing-key", "k"], "NAME or --all"),
        (["evidence", "export", "x", "--all", "-o", "b", "--signing-key", "k"], "NAME or --all"),
        (["evidence", "export", "x", "-o", "b.json"], "--signing-key is required"),
        (["evidence", "public-key"], "--signing-key is required"),
        (["register", "x", "--id", "a;b"], "is not a registration id"),
        (["register", "x", "--id", " "], "is not a registration id"),
    ],
)
def test_wrong_command_lines_are_refused_before_connecting(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and words in err, err


def test_unreadable_files_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "evidence", "public-key", "--signing-key", str(tmp_path / "missing"))
    assert code == 1 and err.startswith("error: cannot read --signing-key")
    code, _, err = run(capsys, "evidence", "verify", str(tmp_path / "none.json"), "--key", "x")
    assert code == 1 and len(err.splitlines()) == 1
