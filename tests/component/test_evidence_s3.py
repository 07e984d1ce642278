"""`evidence export --s3`'s upload against a real S3 HTTP endpoint on loopback: moto's
ThreadedMotoServer (tests/support/s3server.py says why it is the most faithful server the
project's registries offer). No Kubernetes is needed: the bundle is made as the export
makes it (records/bundle.py), uploaded, downloaded with boto3 and checked with the offline
`kubectl aideploy evidence verify`."""

from __future__ import annotations

import hashlib
import itertools
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import boto3
import botocore.exceptions
import pytest

from aideploy.cli import evidence
from aideploy.cli.evidence import S3Export
from aideploy.cli.evidence_s3 import S3Target, upload
from aideploy.cli.main import main
from aideploy.cli.session import CliError
from aideploy.records.bundle import ChainExport
from tests.support.modelserver import free_port
from tests.support.s3server import aws_test_env, s3_server
from tests.unit.test_cli_evidence import operator_signer, write_bundle
from tests.unit.test_evidence_bundle import records

pytestmark = pytest.mark.component

SECRET = b"the operator's provenance secret"
_buckets = itertools.count()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with s3_server() as url:
        yield url


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    aws_test_env(monkeypatch, tmp_path)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))


def new_bucket(endpoint: str, *, object_lock: bool = False) -> str:
    name = f"evidence-{next(_buckets)}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(
        Bucket=name, ObjectLockEnabledForBucket=object_lock
    )
    return name


@pytest.fixture
def signing_key(tmp_path: Path) -> Path:
    path = tmp_path / "provenance.key"
    path.write_bytes(SECRET)
    return path


@pytest.fixture
def bundle(tmp_path: Path, signing_key: Path) -> bytes:
    return write_bundle(tmp_path / "made.json", operator_signer(signing_key)).read_bytes()


def one_line_error(call: object) -> str:
    assert callable(call)
    with pytest.raises(CliError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_an_uploaded_bundle_downloads_and_verifies_offline(
    endpoint: str,
    bundle: bytes,
    signing_key: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bucket = new_bucket(endpoint)
    done = upload(bundle, S3Target(bucket, "ns/credit.bundle.json"), endpoint)
    assert (done.size, done.sha256) == (len(bundle), hashlib.sha256(bundle).hexdigest())
    assert done.sha256_confirmed  # by the checksum moto computed, not by our metadata

    client = boto3.client("s3", endpoint_url=endpoint)
    head = client.head_object(Bucket=bucket, Key="ns/credit.bundle.json")
    assert head["ContentType"] == "application/json"
    downloaded = tmp_path / "downloaded.json"
    client.download_file(bucket, "ns/credit.bundle.json", str(downloaded))
    assert downloaded.read_bytes() == bundle
    assert head["Metadata"]["sha256"] == hashlib.sha256(downloaded.read_bytes()).hexdigest()

    assert main(["evidence", "public-key", "--signing-key", str(signing_key)]) == 0
    key = tmp_path / "operator.pub"
    key.write_text(capsys.readouterr().out)
    code = main(["evidence", "verify", str(downloaded), "--key", str(key)])
    out, err = capsys.readouterr()
    assert (code, err) == (0, ""), err
    assert "every record, link and signature verifies" in out


def test_a_bundle_past_the_multipart_threshold_goes_up_in_parts(endpoint: str) -> None:
    bucket = new_bucket(endpoint)
    data = b"x" * (9 * 1024 * 1024)
    done = upload(data, S3Target(bucket, "big.json"), endpoint)
    head = boto3.client("s3", endpoint_url=endpoint).head_object(Bucket=bucket, Key="big.json")
    assert done.size == head["ContentLength"] == len(data)
    assert done.sha256_confirmed  # the SHA-256 of the parts' SHA-256s
    assert head["ETag"].strip('"').endswith("-2")  # two parts: a multipart upload
    assert head["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_missing_bucket_is_one_line_naming_it(endpoint: str, bundle: bytes) -> None:
    message = one_line_error(lambda: upload(bundle, S3Target("no-such-bucket", "b.json"), endpoint))
    assert message.startswith("bucket no-such-bucket does not exist at http://127.0.0.1:")
    assert "create the bucket" in message


def test_object_lock_keeps_the_bundle_in_compliance_mode(endpoint: str, bundle: bytes) -> None:
    bucket = new_bucket(endpoint, object_lock=True)
    until = (datetime.now(UTC) + timedelta(days=3653)).replace(microsecond=0)
    done = upload(bundle, S3Target(bucket, "locked.json"), endpoint, until)
    assert done.retained_until == until and done.version_id
    client = boto3.client("s3", endpoint_url=endpoint)
    head = client.head_object(Bucket=bucket, Key="locked.json")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        client.delete_object(Bucket=bucket, Key="locked.json", VersionId=done.version_id)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_object_lock_on_a_bucket_without_it_is_refused(endpoint: str, bundle: bytes) -> None:
    bucket = new_bucket(endpoint)
    until = datetime.now(UTC) + timedelta(days=3653)
    message = one_line_error(lambda: upload(bundle, S3Target(bucket, "b.json"), endpoint, until))
    assert f"bucket {bucket} cannot hold Object Lock retention" in message
    assert "without --s3-object-lock" in message


def test_an_unreachable_endpoint_is_one_line(bundle: bytes) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    message = one_line_error(lambda: upload(bundle, S3Target("b-1", "k"), closed))
    assert message.startswith(f"cannot reach {closed} to write s3://b-1/k: check --s3-endpoint")


def test_no_credentials_is_one_line_and_names_the_chain(
    endpoint: str, bundle: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Half the credentials: the key id that is left must not be printed either.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAHALFOFAPAIR00000")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    message = one_line_error(lambda: upload(bundle, S3Target("b-1", "k"), endpoint))
    assert message.startswith("no AWS credentials to write s3://b-1/k")
    assert "AWS_ACCESS_KEY_ID" in message and "AKIAHALFOFAPAIR00000" not in message


def reset_auth(endpoint: str, count: bytes) -> None:
    """moto's switch: check the credentials and IAM policies of every request after the
    first `count` ones ("inf": never)."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=count,
        headers={"Content-Type": "text/plain"},  # a form body would not reach moto as data
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


@pytest.fixture
def enforced_auth(endpoint: str) -> Iterator[dict[str, str]]:
    """A user with no permission at all, and the server checking every request from now on
    (moto's /moto-api/reset-auth); the keys of that user."""
    iam = boto3.client("iam", endpoint_url=endpoint)
    iam.create_user(UserName="nobody")
    key = iam.create_access_key(UserName="nobody")["AccessKey"]
    reset_auth(endpoint, b"0")
    try:
        yield {
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        }
    finally:
        reset_auth(endpoint, b"inf")


def test_access_denied_and_unknown_keys_are_one_line(
    endpoint: str, bundle: bytes, enforced_auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = S3Target("evidence-denied", "b.json")
    unknown = {
        "AWS_ACCESS_KEY_ID": "AKIAUNKNOWNKEY000000",
        "AWS_SECRET_ACCESS_KEY": "unknownSecret0",
    }
    for name, value in unknown.items():
        monkeypatch.setenv(name, value)
    message = one_line_error(lambda: upload(bundle, target, endpoint))
    assert message.startswith("S3 rejected the credentials (InvalidAccessKeyId)")
    assert not [v for v in unknown.values() if v in message], message
    for name, value in enforced_auth.items():
        monkeypatch.setenv(name, value)
    message = one_line_error(lambda: upload(bundle, target, endpoint))
    assert message.startswith(f"access denied writing {target} at {endpoint}")
    assert "s3:PutObject" in message
    assert not [v for v in enforced_auth.values() if v in message], message


def test_the_export_reports_the_sha256_as_confirmed_by_the_server(
    endpoint: str, signing_key: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = new_bucket(endpoint)
    chain = records()
    session = SimpleNamespace(namespace="ns", records=lambda name, hint: chain)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evidence, "_chains", lambda session, name, records: [ChainExport(records)])
        code = evidence.export(
            cast(Any, session),
            "x",
            None,
            operator_signer(signing_key),
            datetime.now(UTC),
            S3Export(S3Target(bucket, "k.json"), endpoint),
        )
    out = capsys.readouterr().out
    data = boto3.client("s3", endpoint_url=endpoint).get_object(Bucket=bucket, Key="k.json")
    digest = hashlib.sha256(data["Body"].read()).hexdigest()
    assert code == 0
    assert f"sha256 {digest} (confirmed by the server's checksum)" in out, out


def test_a_server_without_checksums_gets_the_sha256_reported_as_sent(
    endpoint: str, bundle: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An S3-compatible server that ignores ChecksumMode: HEAD has no ChecksumSHA256."""
    bucket = new_bucket(endpoint)

    def without_checksum(params: dict[str, Any], **_: Any) -> None:
        params.pop("ChecksumMode", None)

    original = boto3.session.Session.client

    def client(self: boto3.session.Session, *args: Any, **kwargs: Any) -> Any:
        made = original(self, *args, **kwargs)
        made.meta.events.register("provide-client-params.s3.HeadObject", without_checksum)
        return made

    monkeypatch.setattr(boto3.session.Session, "client", client)
    done = upload(bundle, S3Target(bucket, "k.json"), endpoint)
    assert done.sha256 == hashlib.sha256(bundle).hexdigest() and not done.sha256_confirmed
