"""`kubectl aideploy evidence export --s3 s3://BUCKET/KEY`: the signed bundle, streamed to
an S3-compatible bucket for long-term retention.

The upload is boto3's managed transfer (multipart past 8 MiB), with the bundle's SHA-256 in
the object's metadata (`x-amz-meta-sha256`) and `Content-Type: application/json`; the object
is then read back with HEAD, and only when its size and SHA-256 are the bundle's is the
upload reported. With `--s3-object-lock` the object is written under S3 Object Lock in
COMPLIANCE mode until the newest record's `retainUntil`: no one, root included, may delete
or overwrite that version before then (the bucket must have been created with Object Lock).

Credentials and region come from the standard AWS chain (AWS_* variables, ~/.aws, an
instance or pod role); they are never printed. Every failure is one CliError line that
names what went wrong and what to do next.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import boto3
import boto3.exceptions
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from aideploy.cli.session import CliError, UsageError

CONTENT_TYPE: Final = "application/json"
SHA256_METADATA: Final = "sha256"  # sent as x-amz-meta-sha256
MULTIPART_THRESHOLD: Final = 8 * 1024 * 1024
# A bucket name as S3 accepts it for new buckets (virtual-host style, no upper case).
_BUCKET: Final = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_KEY_LIMIT: Final = 1024  # bytes of UTF-8
CREDENTIALS_HINT: Final = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or run where an "
    "instance or pod role gives credentials"
)
PERMISSIONS_HINT: Final = (
    "the credentials need s3:PutObject and s3:GetObject on it (and s3:PutObjectRetention "
    "for --s3-object-lock)"
)


@dataclass(frozen=True)
class S3Target:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class Uploaded:
    """What HEAD said of the object once written."""

    target: S3Target
    size: int
    sha256: str
    version_id: str | None = None
    retained_until: datetime | None = None


def parse_s3_url(url: str) -> S3Target:
    """`s3://bucket/key` -> S3Target; a UsageError naming what is wrong otherwise."""
    example = "give it as s3://BUCKET/KEY, e.g. s3://audit-evidence/credit/2026-12-06.bundle.json"
    parts = urlsplit(url)
    if parts.scheme != "s3" or not url.startswith("s3:"):  # urlsplit lower-cases "S3:"
        raise UsageError(f"--s3 {url!r} is not an s3:// URL: {example}")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise UsageError(f"--s3 {url!r} has a query or fragment, which S3 keys do not: {example}")
    bucket = parts.netloc
    if not bucket:
        raise UsageError(f"--s3 {url!r} names no bucket: {example}")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise UsageError(
            f"--s3 {url!r}: {bucket!r} is not a bucket name (3 to 63 lower-case letters, "
            f"digits, dots and hyphens, beginning and ending with a letter or digit)"
        )
    key = parts.path.removeprefix("/")
    if not key or key.endswith("/"):
        raise UsageError(
            f"--s3 {url!r} names no object key (the file name in the bucket): {example}"
        )
    if len(key.encode("utf-8")) > _KEY_LIMIT:
        raise UsageError(f"--s3 {url!r}: the key is longer than S3's {_KEY_LIMIT} bytes")
    return S3Target(bucket, key)


def check_endpoint(endpoint: str | None) -> str | None:
    """The --s3-endpoint URL, refused before connecting when it is not http(s)://HOST[:PORT]."""
    if endpoint is None:
        return None
    parts = urlsplit(endpoint)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise UsageError(
            f"--s3-endpoint {endpoint!r} is not an http(s):// URL: give the S3-compatible "
            "server's address, e.g. https://s3.example.com or http://127.0.0.1:9000"
        )
    if parts.username is not None or parts.password is not None:
        raise UsageError(
            "--s3-endpoint has credentials in it, which would be printed with any error: "
            "give them through the AWS chain (AWS_ACCESS_KEY_ID, AWS_PROFILE) instead"
        )
    try:
        parts.port  # noqa: B018 - a port out of range raises here
    except ValueError:
        raise UsageError(f"--s3-endpoint {endpoint!r} has no valid port") from None
    return endpoint


# Few, short retries, so that an unreachable endpoint is reported in seconds, not minutes.
CLIENT_CONFIG: Final = Config(
    connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}
)


def _where(target: S3Target, endpoint: str | None) -> str:
    return f"{target}" + (f" at {endpoint}" if endpoint else "")


def _client_error(
    error: botocore.exceptions.ClientError, target: S3Target, endpoint: str | None, lock: bool
) -> CliError:
    details: Any = error.response.get("Error") or {}
    code = str(details.get("Code") or "")
    message = str(details.get("Message") or "")
    metadata: Any = error.response.get("ResponseMetadata") or {}
    status = metadata.get("HTTPStatusCode")
    where = _where(target, endpoint)
    if code == "NoSuchBucket":
        return CliError(
            f"bucket {target.bucket} does not exist{' at ' + endpoint if endpoint else ''}: "
            "check the name in --s3 (and --s3-endpoint), or create the bucket"
            + (" with Object Lock enabled" if lock else "")
        )
    if code in {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}:
        return CliError(
            f"S3 rejected the credentials ({code}) for {where}: {CREDENTIALS_HINT}, with keys "
            "valid for this endpoint"
        )
    if code in {"AccessDenied", "AllAccessDisabled", "403"} or status == 403:
        return CliError(f"access denied writing {where}: {PERMISSIONS_HINT}")
    if lock and ("objectlock" in message.lower().replace(" ", "") or code == "InvalidBucketState"):
        return CliError(
            f"bucket {target.bucket} cannot hold Object Lock retention ({code}: {message}): "
            "create the bucket with Object Lock enabled, or export without --s3-object-lock"
        )
    return CliError(f"S3 refused the upload to {where}: {code or status}: {message}")


def _failure(error: Exception, target: S3Target, endpoint: str | None, lock: bool) -> CliError:
    where = _where(target, endpoint)
    if isinstance(error, boto3.exceptions.S3UploadFailedError) and isinstance(
        error.__context__, Exception
    ):
        return _failure(error.__context__, target, endpoint, lock)
    if isinstance(error, botocore.exceptions.ClientError):
        return _client_error(error, target, endpoint, lock)
    if isinstance(
        error, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError
    ):
        return CliError(f"no AWS credentials to write {where}: {CREDENTIALS_HINT}")
    if isinstance(
        error,
        botocore.exceptions.EndpointConnectionError
        | botocore.exceptions.ConnectTimeoutError
        | botocore.exceptions.ReadTimeoutError
        | botocore.exceptions.ConnectionClosedError,
    ):
        endpoint_named = endpoint or "the AWS S3 endpoint"
        return CliError(
            f"cannot reach {endpoint_named} to write {target}: check --s3-endpoint, the "
            "network and any proxy, then export again"
        )
    if isinstance(error, botocore.exceptions.NoRegionError):
        return CliError(f"no AWS region for {where}: set AWS_REGION or AWS_DEFAULT_REGION")
    return CliError(f"the upload to {where} failed: {error}")


def upload(
    data: bytes,
    target: S3Target,
    endpoint: str | None,
    retain_until: datetime | None = None,
) -> Uploaded:
    """Write `data` to the target and read it back; an Uploaded only when HEAD confirms its
    size and SHA-256 (and, with `retain_until`, its COMPLIANCE retention)."""
    digest = hashlib.sha256(data).hexdigest()
    extra: dict[str, Any] = {
        "ContentType": CONTENT_TYPE,
        "Metadata": {SHA256_METADATA: digest},
    }
    if retain_until is not None:
        extra["ObjectLockMode"] = "COMPLIANCE"
        extra["ObjectLockRetainUntilDate"] = retain_until
    lock = retain_until is not None
    try:
        # Credentials and region: the standard AWS chain (boto3's default session).
        s3 = boto3.session.Session().client("s3", endpoint_url=endpoint, config=CLIENT_CONFIG)
        s3.upload_fileobj(
            io.BytesIO(data),
            target.bucket,
            target.key,
            ExtraArgs=extra,
            Config=TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, use_threads=False),
        )
    except (
        botocore.exceptions.BotoCoreError,
        botocore.exceptions.ClientError,
        boto3.exceptions.Boto3Error,
    ) as error:
        raise _failure(error, target, endpoint, lock) from None
    try:
        head = s3.head_object(Bucket=target.bucket, Key=target.key)
    except botocore.exceptions.ClientError as error:
        if str((error.response.get("Error") or {}).get("Code")) in {"404", "NoSuchKey"}:
            raise CliError(
                f"{target} was written but reads back as missing: the upload is not "
                "confirmed; check the bucket's lifecycle rules and what else writes there, "
                "then export again"
            ) from None
        raise _failure(error, target, endpoint, lock) from None
    except botocore.exceptions.BotoCoreError as error:
        raise _failure(error, target, endpoint, lock) from None
    size = int(head.get("ContentLength", -1))
    stored = (head.get("Metadata") or {}).get(SHA256_METADATA)
    if size != len(data) or stored != digest:
        raise CliError(
            f"{target} reads back as {size} bytes with sha256 {stored}, not the "
            f"{len(data)} bytes with sha256 {digest} sent: the object is not the bundle; "
            "export again, and check what else writes that key"
        )
    retained = head.get("ObjectLockRetainUntilDate")
    if lock and (
        head.get("ObjectLockMode") != "COMPLIANCE"
        or retained is None
        or retain_until is None
        or retained < retain_until
    ):
        raise CliError(
            f"{target} was written but is not retained in COMPLIANCE mode until "
            f"{retain_until} (mode {head.get('ObjectLockMode')}, until {retained}): the server "
            "ignored Object Lock; check that the bucket has Object Lock enabled"
        )
    until = retained.astimezone(UTC) if lock and retained is not None else None
    return Uploaded(target, size, digest, head.get("VersionId"), until)
