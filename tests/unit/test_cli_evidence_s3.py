"""`evidence export --s3`: the s3:// URL and the endpoint are read, and a wrong command line
refused, before connecting to the cluster or to S3; S3's error codes become one line each."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import botocore.exceptions
import pytest

from aideploy.cli.evidence import retain_until
from aideploy.cli.evidence_s3 import S3Target, _failure, check_endpoint, parse_s3_url
from aideploy.cli.main import main
from aideploy.cli.session import CliError, UsageError
from aideploy.records.bundle import ChainExport
from tests.unit.test_evidence_bundle import records


@pytest.mark.parametrize(
    ("url", "bucket", "key"),
    [
        ("s3://audit-evidence/credit.bundle.json", "audit-evidence", "credit.bundle.json"),
        ("s3://audit/ns/credit/2026-12-06.json", "audit", "ns/credit/2026-12-06.json"),
        ("s3://a.b-c.0/k", "a.b-c.0", "k"),
        ("s3://abc/with space/é.json", "abc", "with space/é.json"),
        ("s3://abc//leading-slash", "abc", "/leading-slash"),
    ],
)
def test_s3_urls_that_name_a_bucket_and_key(url: str, bucket: str, key: str) -> None:
    assert parse_s3_url(url) == S3Target(bucket, key)
    assert str(parse_s3_url(url)) == url


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("audit/credit.json", "is not an s3:// URL"),
        ("https://audit.s3.amazonaws.com/k", "is not an s3:// URL"),
        ("S3://audit/k", "is not an s3:// URL"),
        ("s3:/audit/k", "names no bucket"),
        ("s3:///k", "names no bucket"),
        ("s3://audit", "names no object key"),
        ("s3://audit/", "names no object key"),
        ("s3://audit/folder/", "names no object key"),
        ("s3://Audit/k", "is not a bucket name"),
        ("s3://ab/k", "is not a bucket name"),
        ("s3://-audit/k", "is not a bucket name"),
        ("s3://audit_1/k", "is not a bucket name"),
        ("s3://a..b/k", "is not a bucket name"),
        (f"s3://{'a' * 64}/k", "is not a bucket name"),
        ("s3://user@audit/k", "is not a bucket name"),
        ("s3://audit:9000/k", "is not a bucket name"),
        ("s3://audit/k?versionId=1", "has a query or fragment"),
        ("s3://audit/k#x", "has a query or fragment"),
        (f"s3://audit/{'k' * 1025}", "longer than S3's 1024 bytes"),
    ],
)
def test_bad_s3_urls_are_usage_errors_naming_the_fault(url: str, words: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse_s3_url(url)
    assert words in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("endpoint", "good"),
    [
        (None, True),
        ("http://127.0.0.1:9000", True),
        ("https://s3.example.com", True),
        ("127.0.0.1:9000", False),
        ("ftp://s3.example.com", False),
        ("http://", False),
        ("http://host:99999", False),
        ("http://key:secret@host:9000", False),
    ],
)
def test_the_endpoint_must_be_an_http_url(endpoint: str | None, good: bool) -> None:
    if good:
        assert check_endpoint(endpoint) == endpoint
    else:
        with pytest.raises(UsageError, match="--s3-endpoint"):
            check_endpoint(endpoint)


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["x", "--signing-key", "k"], "give -o FILE (- for stdout), --s3 s3://BUCKET/KEY, or both"),
        (["x", "-o", "b", "--s3-endpoint", "http://h", "--signing-key", "k"], "go with --s3"),
        (["x", "-o", "b", "--s3-object-lock", "--signing-key", "k"], "go with --s3"),
        (["x", "--s3", "audit/k", "--signing-key", "k"], "is not an s3:// URL"),
        (["x", "--s3", "s3://audit/k", "--s3-endpoint", "localhost:9000"], "is not an http(s)://"),
        (["x", "--s3", "s3://audit/k"], "--signing-key is required"),
    ],
)
def test_wrong_s3_command_lines_are_refused_before_connecting(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    code = main(["evidence", "export", *argv])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("error: ") and words in err and len(err.splitlines()) == 1, err


def test_object_lock_retains_until_the_latest_retain_until_of_the_records() -> None:
    chain = records()
    dates = [datetime.fromisoformat(r["spec"]["retainUntil"]) for r in chain]
    assert retain_until([ChainExport(chain)]) == max(dates)
    with pytest.raises(CliError, match="no record has a readable retainUntil"):
        retain_until([ChainExport([{"spec": {}}])])


def client_error(code: str, status: int, message: str = "m") -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "PutObject",
    )


TARGET = S3Target("audit", "k.json")


@pytest.mark.parametrize(
    ("error", "lock", "start"),
    [
        (
            client_error("NoSuchBucket", 404),
            False,
            "bucket audit does not exist at http://s3: check",
        ),
        (
            client_error("AccessDenied", 403),
            False,
            "access denied writing s3://audit/k.json at http://s3",
        ),
        (client_error("403", 403), False, "access denied writing"),
        (
            client_error("InvalidAccessKeyId", 403),
            False,
            "S3 rejected the credentials (InvalidAccessKeyId)",
        ),
        (
            client_error("SignatureDoesNotMatch", 403),
            False,
            "S3 rejected the credentials (SignatureDoesNotMatch)",
        ),
        (
            client_error("InvalidRequest", 400, "Bucket is missing ObjectLockConfiguration"),
            True,
            "bucket audit cannot hold Object Lock",
        ),
        (
            client_error("InternalError", 500, "boom"),
            False,
            "S3 refused the upload to s3://audit/k.json at http://s3: InternalError: boom",
        ),
        (
            botocore.exceptions.NoCredentialsError(),
            False,
            "no AWS credentials to write s3://audit/k.json",
        ),
        (
            botocore.exceptions.EndpointConnectionError(endpoint_url="http://s3"),
            False,
            "cannot reach http://s3 to write",
        ),
        (botocore.exceptions.NoRegionError(), False, "no AWS region for s3://audit/k.json"),
    ],
)
def test_each_s3_failure_is_one_line_with_the_next_step(
    error: Exception, lock: bool, start: str
) -> None:
    message = str(_failure(error, TARGET, "http://s3", lock))
    assert message.startswith(start) and "\n" not in message, message
