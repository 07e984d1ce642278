"""`kubectl aideploy evidence export --s3 s3://BUCKET/KEY`: the signed bundle, streamed to
an S3-compatible bucket for long-term retention.

The upload is boto3's managed transfer (multipart past 8 MiB, in 8 MiB parts) with S3's
SHA-256 checksum (`ChecksumAlgorithm=SHA256`), the bundle's SHA-256 also in the object's
metadata (`x-amz-meta-sha256`), and `Content-Type: application/json`. The object is then
read back with HEAD (`ChecksumMode=ENABLED`): only when its size is the bundle's and the
checksum the server computed is the bundle's (the SHA-256 of the whole object, or, for a
multipart upload, the SHA-256 of its parts' SHA-256s) is the upload reported as confirmed;
a server that returns no checksum gets the SHA-256 reported as the one sent, not as
confirmed. With `--s3-object-lock` the object is written under S3 Object Lock in
COMPLIANCE mode until the newest record's `retainUntil`: no one, root included, may delete
or overwrite that version before then (the bucket must have been created with Object Lock).

Credentials and region come from the standard AWS chain (AWS_* variables, ~/.aws, an
instance or pod role); they are never printed. Every failure is one CliError line that
names what went wrong and what to do next.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import SplitResult, urlsplit

import boto3
import boto3.exceptions
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from aideploy.cli.session import CliError, UsageError

CONTENT_TYPE: Final = "application/json"
SHA256_METADATA: Final = "sha256"  # sent as x-amz-meta-sha256
MULTIPART_THRESHOLD: Final = 8 * 1024 * 1024
PART_SIZE: Final = MULTIPART_THRESHOLD  # the checksum of a multipart object depends on it
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
    # True when the server's own SHA-256 checksum (HEAD, ChecksumMode=ENABLED) is the
    # bundle's; False when the server returned none, so `sha256` is only the one sent.
    sha256_confirmed: bool = False


def _split(flag: str, url: str, example: str) -> SplitResult:
    """urlsplit, refusing before any other check (so before any message quotes the URL) a
    URL with credentials in it, and turning urlsplit's ValueError into a UsageError."""
    try:
        parts = urlsplit(url)
    except ValueError:
        # e.g. "Invalid IPv6 URL" for an unclosed "[": not quoted, it may hold credentials.
        raise UsageError(
            f"{flag} is not a URL (an unbalanced '[' or ']' in its host part): {example}"
        ) from None
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise UsageError(
            f"{flag} has credentials in it (something before '@' in its host part), which "
            "would be printed with errors and kept in shell history; it is not repeated "
            f"here: {example}, and give the credentials through the AWS credential chain "
            "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
        )
    return parts


def parse_s3_url(url: str) -> S3Target:
    """`s3://bucket/key` -> S3Target; a UsageError naming what is wrong otherwise."""
    example = "give it as s3://BUCKET/KEY, e.g. s3://audit-evidence/credit/2026-12-06.bundle.json"
    parts = _split("--s3", url, example)
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
    example = (
        "give the S3-compatible server's address, e.g. https://s3.example.com or "
        "http://127.0.0.1:9000"
    )
    parts = _split("--s3-endpoint", endpoint, example)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise UsageError(f"--s3-endpoint {endpoint!r} is not an http(s):// URL: {example}")
    try:
        parts.port  # noqa: B018 - a port out of range raises here
    except ValueError:
        raise UsageError(f"--s3-endpoint {endpoint!r} has no valid port") from None
    return endpoint


def server_checksums(data: bytes) -> set[str]:
    """The ChecksumSHA256 values S3 may report for `data` uploaded as `upload` does: the
    base64 SHA-256 of the object, or past the multipart threshold the base64 SHA-256 of
    its PART_SIZE parts' SHA-256 digests (AWS appends "-PARTS", stripped before comparing)."""
    checksums = {base64.b64encode(hashlib.sha256(data).digest()).decode()}
    if len(data) >= MULTIPART_THRESHOLD:
        parts = b"".join(
            hashlib.sha256(data[i : i + PART_SIZE]).digest() for i in range(0, len(data), PART_SIZE)
        )
        checksums.add(base64.b64encode(hashlib.sha256(parts).digest()).decode())
    return checksums


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
    if retain_until is not None and (
        retain_until.tzinfo is None or retain_until.utcoffset() is None
    ):
        # Compared with the aware date HEAD returns, after the object is written and locked.
        raise ValueError(f"retain_until {retain_until.isoformat()} has no time zone")
    digest = hashlib.sha256(data).hexdigest()
    extra: dict[str, Any] = {
        "ContentType": CONTENT_TYPE,
        "Metadata": {SHA256_METADATA: digest},
        "ChecksumAlgorithm": "SHA256",
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
            Config=TransferConfig(
                multipart_threshold=MULTIPART_THRESHOLD,
                multipart_chunksize=PART_SIZE,
                use_threads=False,
            ),
        )
    except (
        botocore.exceptions.BotoCoreError,
        botocore.exceptions.ClientError,
        boto3.exceptions.Boto3Error,
    ) as error:
        raise _failure(error, target, endpoint, lock) from None
    try:
        head = s3.head_object(Bucket=target.bucket, Key=target.key, ChecksumMode="ENABLED")
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
    # The server's own checksum of what it holds; AWS suffixes a multipart one "-PARTS".
    checksum = str(head.get("ChecksumSHA256") or "").split("-")[0] or None
    confirmed = checksum is not None and checksum in server_checksums(data)
    if size != len(data) or stored != digest or (checksum is not None and not confirmed):
        raise CliError(
            f"{target} reads back as {size} bytes with sha256 {stored} (server checksum "
            f"{checksum}), not the {len(data)} bytes with sha256 {digest} sent: the object "
            "is not the bundle; export again, and check what else writes that key"
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
    return Uploaded(target, size, digest, head.get("VersionId"), until, confirmed)
