"""`kubectl aideploy evidence`: export the record chains as one signed file, print the key
that checks it, and check such a file with no cluster at all.

The bundle (records/bundle.py) is signed with the operator's record key, which only the
operator holds: `export` signs with `--signing-key FILE`, the operator's provenance key
file, so it runs where that file is, normally in the operator's pod:

    kubectl -n aideploy-system exec deploy/aideploy-operator -- kubectl-aideploy evidence \\
      export NAME -n NAMESPACE --signing-key /etc/aideploy/provenance/key -o - > NAME.bundle

`export --s3 s3://BUCKET/KEY` also (or instead) writes the bundle to an S3-compatible bucket
(cli/evidence_s3.py), optionally under Object Lock until the newest record's retainUntil.

`verify` needs only the public key (`evidence public-key`, or `aideploy-operator
--print-record-public-key`): it reads the file, never the cluster.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aideploy.admission.provenance import load_key
from aideploy.api.constants import KIND
from aideploy.api.times import parse_time
from aideploy.cli.session import CliError, Session, UsageError
from aideploy.cli.terminal import printable
from aideploy.cli.verify import load_trusted_keys
from aideploy.cli.views import RECORDS_HINT, by_uid
from aideploy.cli.watch import READ_HINT
from aideploy.records.bundle import (
    ChainExport,
    envelope_bytes,
    sign_envelope,
    statement,
    verify_bundle,
)
from aideploy.records.signature import RecordSigner

if TYPE_CHECKING:
    # Imported for --s3 only (export below): boto3 costs every other command ~70 ms.
    from aideploy.cli.evidence_s3 import S3Target

KEY_HINT = (
    "the bundle is signed with the operator's record key: run the export where the operator's "
    "provenance key is (kubectl exec into the operator's pod) and pass --signing-key with its "
    "path, /etc/aideploy/provenance/key in the Helm chart"
)


def load_signer(path: str | None) -> RecordSigner:
    """The operator's record signer, from its provenance key file (read before connecting)."""
    if not path:
        raise UsageError(f"--signing-key is required: {KEY_HINT}")
    try:
        secret = load_key(path, None)
    except OSError as error:
        raise CliError(f"cannot read --signing-key {path}: {error.strerror or error}") from None
    assert secret is not None  # load_key returns None only without a path
    return RecordSigner.from_secret(secret)


def public_key(signing_key: str | None) -> int:
    signer = load_signer(signing_key)
    print(f"# {signer.key_id}\n{signer.public_key_pem()}", end="")
    return 0


def _events(session: Session) -> list[dict[str, Any]] | None:
    """The namespace's Events about AIDeployments; None when this user may not read them
    (the bundle is still complete without them: they are context, not records)."""
    path = f"/api/v1/namespaces/{session.namespace}/events"
    query = [("fieldSelector", f"involvedObject.kind={KIND}")]
    try:
        listed = session.call(
            "list",
            "events",
            None,
            RECORDS_HINT,
            lambda: session.rest.request("GET", path, query=query),
        )
    except CliError:
        return None
    return list((listed or {}).get("items") or [])


def _chains(session: Session, name: str | None, records: list[dict[str, Any]]) -> list[ChainExport]:
    groups = by_uid(records)
    objects = {str(o["metadata"]["uid"]): o for o in session.list_deployments(READ_HINT)}
    events = _events(session) or []
    exports = []
    for uid, group in sorted(groups.items()):
        if not uid:
            continue  # no uid, no chain: `kubectl aideploy verify` reports such records
        about = [e for e in events if (e.get("involvedObject") or {}).get("uid") == uid]
        exports.append(ChainExport(group, objects.get(uid), about))
    if not exports:
        where = f"of aideployment {name} " if name else ""
        raise CliError(
            f"no records {where}in namespace {session.namespace}: check the name and the "
            "namespace (-n); records are written from the first accepted plan on"
        )
    return exports


@dataclass(frozen=True)
class S3Export:
    """Where --s3 sends the bundle, and whether under Object Lock."""

    target: S3Target
    endpoint: str | None = None
    object_lock: bool = False


def retain_until(chains: Sequence[ChainExport]) -> datetime:
    """The latest retainUntil of the records bundled: the bundle must be kept as long as
    the record kept longest (normally the newest). A record without retainUntil is passed
    over; one whose retainUntil is not an RFC 3339 time with a zone is refused, since
    retaining by the others could let the bundle go before that record may."""
    dates = []
    for chain in chains:
        for record in chain.records:
            value = (record.get("spec") or {}).get("retainUntil")
            if value is None:
                continue
            try:
                dates.append(parse_time(str(value)))
            except ValueError:
                name = (record.get("metadata") or {}).get("name") or "a record"
                raise CliError(
                    f"--s3-object-lock: record {name} has retainUntil {str(value)!r}, not an "
                    "RFC 3339 time with a zone (e.g. 2036-12-06T00:00:00Z), so the bundle's "
                    "retention cannot be set from it; nothing was written: export without "
                    "--s3-object-lock and set the bucket's default retention"
                ) from None
    if not dates:
        raise CliError(
            "--s3-object-lock: no record has a readable retainUntil to retain the bundle "
            "until; export without --s3-object-lock and set the bucket's default retention"
        )
    return max(dates)


def export(
    session: Session,
    name: str | None,
    output: str | None,
    signer: RecordSigner,
    now: datetime,
    s3: S3Export | None = None,
) -> int:
    """Write the bundle of one AIDeployment (every chain of that name: a deleted and
    re-created namesake has its own), or of the whole namespace when `name` is None, to
    `output` (a file, or - for stdout) and/or the S3 bucket."""
    records = session.records(name, RECORDS_HINT)
    chains = _chains(session, name, records)
    # Every refusal comes before any output: no file is left behind by a failed command.
    until = retain_until(chains) if s3 is not None and s3.object_lock else None
    data = envelope_bytes(sign_envelope(statement(session.namespace, chains, now), signer))
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    elif output is not None:
        try:
            Path(output).write_bytes(data)
        except OSError as error:
            raise CliError(f"cannot write {output}: {error.strerror or error}") from None
    uploaded = None
    if s3 is not None:
        from aideploy.cli.evidence_s3 import upload  # boto3: imported for --s3 only

        uploaded = upload(data, s3.target, s3.endpoint, until)
    count = sum(len(c.records) for c in chains)
    places = [("stdout" if output == "-" else output)] if output is not None else []
    places += [str(s3.target)] if s3 is not None else []
    report = sys.stderr if output == "-" else sys.stdout
    print(
        printable(
            f"exported {count} record{'s' if count != 1 else ''} in {len(chains)} "
            f"chain{'s' if len(chains) != 1 else ''} to {' and '.join(places)}, "
            f"signed by {signer.key_id}"
        ),
        file=report,
    )
    if uploaded is not None:
        retained = (
            f", retained (COMPLIANCE) until {uploaded.retained_until.isoformat()}"
            if uploaded.retained_until is not None
            else ""
        )
        version = f", version {uploaded.version_id}" if uploaded.version_id else ""
        checked = (
            "(confirmed by the server's checksum)"
            if uploaded.sha256_confirmed
            else "(as sent: the server returned no checksum to confirm it)"
        )
        print(
            printable(
                f"uploaded to bucket {uploaded.target.bucket} key {uploaded.target.key}: "
                f"{uploaded.size} bytes, sha256 {uploaded.sha256} {checked}{version}{retained}"
            ),
            file=report,
        )
    return 0


def _read_bundle(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"cannot read {path}: {error}") from None
    try:
        return json.loads(text)
    except ValueError:
        return text  # verify_bundle says it is not an envelope


def verify(path: str, keys: Sequence[str], minimum_days: int, now: datetime) -> int:
    """Offline: exit 0 when the bundle is intact and signed by the key given, 1 naming the
    first broken record otherwise."""
    if not keys:
        raise UsageError(
            "--key is required: the operator's public key (kubectl aideploy evidence "
            "public-key, or aideploy-operator --print-record-public-key)"
        )
    (trusted,) = load_trusted_keys(keys[:1])
    report = verify_bundle(_read_bundle(path), trusted, now, timedelta(days=minimum_days))
    for chain, count in report.chains:
        print(printable(f"{chain}: {count} record{'s' if count != 1 else ''}"))
    if report.expired:
        print(f"{report.expired} record(s) past their retention date: they may now be deleted")
    if report.problems:
        for problem in report.problems[1:]:
            print(printable(f"  {problem.record or 'bundle'}: {problem.message}"))
        first = report.problems[0]
        subject = f"record {first.record}" if first.record else "the bundle"
        raise CliError(
            f"{path} does not verify: {subject} {first.message}"
            + (
                f" ({len(report.problems) - 1} more problems above)"
                if len(report.problems) > 1
                else ""
            )
        )
    print(printable(f"{path}: every record, link and signature verifies"))
    return 0


def utc_now() -> datetime:
    return datetime.now(UTC)
