"""`evidence export --s3`: the s3:// URL and the endpoint are read, and a wrong command line
refused, before connecting to the cluster or to S3; S3's error codes become one line each."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import botocore.exceptions
import pytest

from aideploy.cli import evidence
from aideploy.cli.evidence import S3Export, retain_until
from aideploy.cli.evidence_s3 import S3Target, _failure, check_endpoint, parse_s3_url
from aideploy.cli.main import main
from aideploy.cli.session import CliError, UsageError
from aideploy.records.bundle import ChainExport
from tests.unit.test_evidence_bundle import OPERATOR, records


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
    ("endpoint", "words"),
    [
        (None, None),
        ("http://127.0.0.1:9000", None),
        ("https://s3.example.com", None),
        ("127.0.0.1:9000", "is not an http(s):// URL"),
        ("ftp://s3.example.com", "is not an http(s):// URL"),
        ("http://", "is not an http(s):// URL"),
        ("http://host:99999", "has no valid port"),
        ("http://[::1", "is not a URL (an unbalanced '['"),
        ("http://KEYID:SECRETVALUE@host:9000", "has credentials in it"),
    ],
)
def test_the_endpoint_must_be_an_http_url(endpoint: str | None, words: str | None) -> None:
    if words is None:
        assert check_endpoint(endpoint) == endpoint
    else:
        with pytest.raises(UsageError) as refused:
            check_endpoint(endpoint)
        message = str(refused.value)
        assert message.startswith("--s3-endpoint ") and words in message, message


# Each URL's credentials, none of which may appear in the error (nor the URL itself).
CREDENTIAL_URLS = [
    (check_endpoint, "ftp://KEYID:SECRETVALUE@h", ["KEYID", "SECRETVALUE"]),
    (check_endpoint, "http://KEYID:SECRETVALUE@", ["KEYID", "SECRETVALUE"]),
    (check_endpoint, "https://SECRETVALUE@s3.example.com", ["SECRETVALUE"]),
    (check_endpoint, "http://KEYID:SECRETVALUE@[::1", ["KEYID", "SECRETVALUE"]),
    (parse_s3_url, "s3://KEYID:SECRETVALUE@b/x", ["KEYID", "SECRETVALUE"]),
    (parse_s3_url, "s3://user@audit/k", ["user"]),
    (parse_s3_url, "https://KEYID:SECRETVALUE@audit/k", ["KEYID", "SECRETVALUE"]),
    (parse_s3_url, "s3://KEYID:SECRETVALUE@[b/k", ["KEYID", "SECRETVALUE"]),
]


@pytest.mark.parametrize(("check", "url", "secrets"), CREDENTIAL_URLS)
def test_credentials_in_a_url_are_refused_without_echoing_them(
    check: Any, url: str, secrets: list[str]
) -> None:
    with pytest.raises(UsageError) as refused:
        check(url)
    message = str(refused.value)
    assert "\n" not in message and url not in message, message
    for secret in secrets:
        assert secret not in message, message
    flag = "--s3-endpoint" if check is check_endpoint else "--s3"
    assert message.startswith(f"{flag} "), message
    if "[" not in url:  # urlsplit cannot read the others: refused as no URL, also unechoed
        assert "AWS credential chain" in message, message


def test_credentials_in_a_url_are_not_echoed_by_main(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["--s3", "s3://KEYID:SECRETVALUE@b/x"],
        ["--s3", "s3://audit/k", "--s3-endpoint", "ftp://KEYID:SECRETVALUE@h"],
    ):
        code = main(["evidence", "export", "x", *argv, "--signing-key", "k"])
        out, err = capsys.readouterr()
        assert code == 2 and out == "" and len(err.splitlines()) == 1, err
        assert "KEYID" not in err and "SECRETVALUE" not in err, err


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
        (["x", "--s3", "s3://[b/k", "--signing-key", "k"], "--s3 is not a URL (an unbalanced"),
        (
            ["x", "--s3", "s3://audit/k", "--s3-endpoint", "http://[::1", "--signing-key", "k"],
            "--s3-endpoint is not a URL (an unbalanced",
        ),
    ],
)
def test_wrong_s3_command_lines_are_refused_before_connecting(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    code = main(["evidence", "export", *argv])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("error: ") and words in err and len(err.splitlines()) == 1, err
    assert "Traceback" not in err


def test_object_lock_retains_until_the_latest_retain_until_of_the_records() -> None:
    chain = records()
    dates = [datetime.fromisoformat(r["spec"]["retainUntil"]) for r in chain]
    assert retain_until([ChainExport(chain)]) == max(dates)
    with pytest.raises(CliError, match="no record has a readable retainUntil"):
        retain_until([ChainExport([{"spec": {}}])])


@pytest.mark.parametrize(
    "dates",
    [
        ["2036-12-06T00:00:00Z", "2037-01-01T00:00:00"],  # one without a zone among others
        ["2037-01-01T00:00:00Z", "2036-12-06T00:00:00"],  # the other way round
        ["2036-12-06T00:00:00Z", "next year"],
    ],
)
def test_a_retain_until_without_a_zone_or_unreadable_is_one_line(dates: list[str]) -> None:
    chain = [
        {"metadata": {"name": f"r{i}"}, "spec": {"retainUntil": d}} for i, d in enumerate(dates)
    ]
    with pytest.raises(CliError) as refused:
        retain_until([ChainExport(chain)])
    message = str(refused.value)
    assert "record r1 has retainUntil" in message and "with a zone" in message, message
    assert "\n" not in message


def test_retain_until_is_a_utc_time_whatever_the_offset_written() -> None:
    chain = [
        {"spec": {"retainUntil": "2036-12-06T01:00:00+02:00"}},
        {"spec": {"retainUntil": "2036-12-05T23:30:00Z"}},
        {"spec": {}},
    ]
    assert retain_until([ChainExport(chain)]) == datetime(2036, 12, 5, 23, 30, tzinfo=UTC)


def test_object_lock_without_a_retain_until_writes_no_file(tmp_path: Path) -> None:
    """The retention is known from the records: a command that cannot set it fails before
    writing -o FILE (or uploading), not after."""
    chain = records()
    for record in chain:
        del record["spec"]["retainUntil"]
    session = SimpleNamespace(namespace="ns", records=lambda name, hint: chain)
    output = tmp_path / "bundle.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evidence, "_chains", lambda session, name, records: [ChainExport(records)])
        with pytest.raises(CliError, match="no record has a readable retainUntil"):
            evidence.export(
                cast(Any, session),
                "x",
                str(output),
                OPERATOR,
                datetime.now(UTC),
                S3Export(S3Target("audit", "k.json"), None, object_lock=True),
            )
    assert not output.exists()


def test_the_cli_does_not_import_boto3_unless_asked_for_s3() -> None:
    """boto3 and botocore take ~70 ms to import: every kubectl-aideploy command would pay it."""
    code = (
        "import sys\n"
        "from aideploy.cli.main import main\n"
        "main(['evidence', 'export', 'x', '-o', '-'])\n"
        "print(sorted(m for m in ('boto3', 'botocore', 'aideploy.cli.evidence_s3') "
        "if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


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
