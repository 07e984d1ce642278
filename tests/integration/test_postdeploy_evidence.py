"""Issue 16 end to end against the real apiserver and the real operator: a high-risk
lifecycle, then the inventory (CLI and metrics), register, close, the signed evidence
export and its offline verification (from a file, and from an S3 bucket: moto's server on
loopback, tests/support/s3server.py); then the AIDeployment is deleted and the inventory
still lists the system, as removed, from its records, whose bundle still exports."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from aideploy.api.constants import REGISTRATION_ANNOTATION
from aideploy.kube.records import list_records
from aideploy.kube.rest import Rest
from tests.support import aid
from tests.support.cluster import ClusterHandle, wait_for
from tests.support.kubelet import SimulatedNode
from tests.support.modelserver import free_port
from tests.support.operator import OperatorProcess
from tests.support.s3server import aws_test_env, s3_server
from tests.unit.factories import COMPLIANCE, full_checklist, make_spec

pytestmark = pytest.mark.integration

NAME = "credit"
HIGH_ROLES = [
    "system-owner",
    "compliance-officer",
    "risk-manager",
    "qa-lead",
    "governance-committee",
]
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def metrics_port() -> int:
    return free_port()


@pytest.fixture
def signing_operator(
    kube_cluster: ClusterHandle,
    namespace: str,
    crds: list[str],
    tmp_path: Path,
    provenance_key_file: Path,
    metrics_port: int,
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(kube_cluster.kubeconfig, namespace, tmp_path / "operator.log")
    process.start(
        args=[
            "--provenance-key-file",
            str(provenance_key_file),
            "--metrics-port",
            str(metrics_port),
        ]
    )
    try:
        yield process
    finally:
        process.stop()
        print(f"---- operator log ----\n{process.log_text()[-20000:]}")


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """moto's S3 server on loopback, with buckets `evidence` and `evidence-locked` (Object
    Lock enabled), and the AWS environment pointed at nothing else."""
    aws_test_env(monkeypatch, tmp_path)
    with s3_server() as endpoint:
        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket="evidence")
        client.create_bucket(Bucket="evidence-locked", ObjectLockEnabledForBucket=True)
        yield endpoint


def scrape_inventory(port: int) -> list[dict[str, str]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    series = []
    for line in text.splitlines():
        if line.startswith("aideploy_ai_system_info{"):
            labels = line[line.index("{") + 1 : line.rindex("}")]
            series.append(
                {k: v.strip('"') for k, v in (p.split("=", 1) for p in labels.split('",'))}
            )
    return series


def types(rest: Rest, namespace: str) -> list[str]:
    return [r["spec"]["type"] for r in list_records(rest, namespace, NAME)]


def wait_records(rest: Rest, namespace: str, wanted: str) -> list[str]:
    return wait_for(
        lambda: t if wanted in (t := types(rest, namespace)) else None,
        message=f"a {wanted} record of {NAME}",
    )


def inventory_json(run: Run) -> list[dict[str, Any]]:
    code, out, err = run("inventory", "-o", "json")
    assert (code, err) == (0, ""), err
    rows: list[dict[str, Any]] = json.loads(out)
    return [r for r in rows if r["name"] == NAME]


def test_inventory_register_close_export_and_verify_survive_deletion(
    rest: Rest,
    namespace: str,
    signing_operator: OperatorProcess,
    simulated_node: SimulatedNode,
    provenance_key_file: Path,
    metrics_port: int,
    tmp_path: Path,
    run: Run,
    s3_endpoint: str,
) -> None:
    compliance = {**COMPLIANCE, "euDatabaseRegistration": "submitted"}
    spec = make_spec("high", compliance=compliance)
    aid.create(rest, namespace, aid.manifest(NAME, spec, full_checklist()))
    aid.approve_all(rest, namespace, NAME, HIGH_ROLES)
    status = aid.wait_phase(rest, namespace, NAME, "Succeeded")
    registered = aid.condition(status, "Registered")
    assert (registered["status"], registered["reason"]) == ("False", "RegistrationPending")
    assert f"kubectl aideploy register {NAME} --id ID" in registered["message"]

    # The inventory, before registration: the CLI (JSON and CSV) and the operator's metrics.
    (row,) = inventory_json(run)
    assert row["namespace"] == namespace and row["system"] == "fraud-scorer"
    assert (row["environment"], row["riskLevel"], row["phase"]) == (
        "production",
        "high",
        "Succeeded",
    )
    assert row["serving"] == "1.0.0" and row["servingSince"]
    assert {a["role"] for a in row["approvers"]} == set(HIGH_ROLES)
    assert not any(a["authenticated"] for a in row["approvers"])  # no webhook here
    assert (row["registration"], row["retrospective"], row["openRollbacks"]) == (
        "submitted",
        "outstanding",
        0,
    )
    code, out, _ = run("inventory", "-o", "csv")
    assert code == 0
    parsed = list(csv.DictReader(io.StringIO(out)))
    assert [r["REGISTRATION"] for r in parsed if r["NAME"] == NAME] == ["submitted"]
    wait_for(
        lambda: [
            s
            for s in scrape_inventory(metrics_port)
            if s["name"] == NAME and s["registration"] == "submitted" and s["version"] == "1.0.0"
        ],
        message="the inventory series of the AIDeployment",
    )

    # Register (step 18) and close (step 20): each a record appended to the chain.
    code, out, err = run("register", NAME, "--id", "EU-DB-2026-77", "--by", "carol")
    assert (code, err) == (0, ""), err
    assert "EU-DB-2026-77" in out
    assert aid.get(rest, namespace, NAME)["metadata"]["annotations"][REGISTRATION_ANNOTATION] == (
        "EU-DB-2026-77; by=carol"
    )
    wait_records(rest, namespace, "registration")
    wait_for(
        lambda: aid.condition(aid.status(rest, namespace, NAME), "Registered")["status"] == "True",
        message="Registered=True",
    )
    code, _, err = run(
        "close", NAME, "--retrospective", "https://wiki.example.com/retro/credit", "--lessons",
        "stage the canary", "--by", "dan",
    )  # fmt: skip
    assert (code, err) == (0, ""), err
    assert wait_records(rest, namespace, "retrospective")[-1] == "retrospective"
    code, _, err = run("close", NAME, "--retrospective", "again")
    assert code == 1 and "already on record" in err
    (row,) = inventory_json(run)
    assert row["registration"] == "registered EU-DB-2026-77"
    assert row["retrospective"] == "https://wiki.example.com/retro/credit"

    # The evidence bundle, signed with the operator's key; verified with no cluster.
    code, public_key, _ = run("evidence", "public-key", "--signing-key", str(provenance_key_file))
    assert code == 0
    key_file = tmp_path / "operator.pub"
    key_file.write_text(public_key)
    bundle = tmp_path / "credit.bundle.json"
    code, out, err = run(
        "evidence", "export", NAME, "-o", str(bundle), "--signing-key", str(provenance_key_file)
    )
    assert (code, err) == (0, ""), err
    count = len(types(rest, namespace))
    assert f"exported {count} records in 1 chain" in out
    envelope = json.loads(bundle.read_text())
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    code, out, err = run("evidence", "verify", str(bundle), "--key", str(key_file))
    assert (code, err) == (0, ""), err
    assert f"{NAME}: {count} records" in out

    # The same export, to a file and an S3 bucket at once; downloaded, it verifies offline.
    key = f"{namespace}/{NAME}.bundle.json"
    both = tmp_path / "both.json"
    code, out, err = run(
        "evidence", "export", NAME, "-o", str(both), "--s3", f"s3://evidence/{key}",
        "--s3-endpoint", s3_endpoint, "--signing-key", str(provenance_key_file),
    )  # fmt: skip
    assert (code, err) == (0, ""), err
    digest = hashlib.sha256(both.read_bytes()).hexdigest()
    exported, uploaded = out.splitlines()
    assert exported.startswith(f"exported {count} records in 1 chain to {both} and s3://evidence/")
    assert uploaded == (
        f"uploaded to bucket evidence key {key}: {both.stat().st_size} bytes, sha256 {digest} "
        "(confirmed by the server's checksum)"
    )
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    head = s3.head_object(Bucket="evidence", Key=key)
    assert (head["ContentType"], head["Metadata"]["sha256"]) == ("application/json", digest)
    downloaded = tmp_path / "downloaded.json"
    s3.download_file("evidence", key, str(downloaded))
    assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == digest
    code, out, err = run("evidence", "verify", str(downloaded), "--key", str(key_file))
    assert (code, err) == (0, ""), err
    assert f"{NAME}: {count} records" in out
    # Under Object Lock, kept (COMPLIANCE) until the newest record's retainUntil.
    newest = max(
        datetime.fromisoformat(r["spec"]["retainUntil"])
        for r in list_records(rest, namespace, NAME)
    )
    code, out, err = run(
        "evidence", "export", NAME, "--s3", f"s3://evidence-locked/{key}", "--s3-object-lock",
        "--s3-endpoint", s3_endpoint, "--signing-key", str(provenance_key_file),
    )  # fmt: skip
    assert (code, err) == (0, ""), err
    assert out.rstrip().endswith(f"retained (COMPLIANCE) until {newest.isoformat()}")
    head = s3.head_object(Bucket="evidence-locked", Key=key)
    assert (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]) == ("COMPLIANCE", newest)
    # A bucket that does not exist: one line, naming it, and nothing reported as uploaded.
    code, out, err = run(
        "evidence", "export", NAME, "--s3", "s3://no-such-bucket/x.json", "--s3-endpoint",
        s3_endpoint, "--signing-key", str(provenance_key_file),
    )  # fmt: skip
    assert (code, out) == (1, "")
    (line,) = err.splitlines()
    assert line.startswith(f"error: bucket no-such-bucket does not exist at {s3_endpoint}")

    # Deleted: the records stay, the inventory lists the system as removed, and the chain
    # still exports (now without the object) and verifies.
    rest.request("DELETE", f"{aid.collection(namespace)}/{NAME}")
    wait_for(
        lambda: rest.request("GET", f"{aid.collection(namespace)}/{NAME}") is None,
        message="the AIDeployment to be gone",
    )
    (row,) = inventory_json(run)
    assert (row["phase"], row["removed"]) == ("Removed", True)
    assert (row["system"], row["riskLevel"], row["serving"]) == ("fraud-scorer", "high", "1.0.0")
    assert row["registration"] == "registered EU-DB-2026-77"
    assert row["lastRecord"].split()[1] == "retrospective"
    code, out, _ = run("inventory")
    assert code == 0 and "Removed" in out
    wait_for(
        lambda: not [s for s in scrape_inventory(metrics_port) if s["name"] == NAME],
        message="the deleted object's series gone from the metrics",
    )
    after = tmp_path / "after-delete.json"
    code, _, err = run(
        "evidence", "export", "--all", "-o", str(after), "--signing-key", str(provenance_key_file)
    )
    assert (code, err) == (0, ""), err
    code, _, err = run("evidence", "verify", str(after), "--key", str(key_file))
    assert (code, err) == (0, ""), err
    payload = json.loads(base64.b64decode(json.loads(after.read_text())["payload"]))
    chain = payload["predicate"]["chains"][0]
    assert "object" not in chain and len(chain["records"]) == count


def test_export_of_nothing_and_close_before_the_end_are_refused(
    rest: Rest, namespace: str, signing_operator: OperatorProcess, provenance_key_file: Path,
    tmp_path: Path, run: Run,
) -> None:  # fmt: skip
    code, _, err = run(
        "evidence", "export", "ghost", "-o", str(tmp_path / "x"), "--signing-key",
        str(provenance_key_file),
    )  # fmt: skip
    assert code == 1 and "no records of aideployment ghost" in err
    aid.create(rest, namespace, aid.manifest(NAME, make_spec("minimal")))
    aid.wait_phase(rest, namespace, NAME, "AwaitingApproval")
    code, _, err = run("close", NAME, "--retrospective", "https://wiki/r")
    assert code == 1 and "has not ended (phase AwaitingApproval)" in err
    code, _, err = run("register", NAME, "--id", "EU-DB-1")
    assert code == 1 and "high-risk systems in production" in err
    assert "nothing was written" in err
