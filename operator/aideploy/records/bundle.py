"""The evidence bundle: an AIDeployment's record chains in one file an auditor can check
without the cluster (pure: no I/O, no clock).

The file is a DSSE envelope (https://github.com/secure-systems-lab/dsse, the format
Sigstore and in-toto use) whose payload is an in-toto Statement v1:

- `subject`: one entry per record, named `<namespace>/<record name>`, with the record's
  own hash (`spec.hash`, the SHA-256 of its canonical spec) as its `sha256` digest;
- `predicateType`: `https://aideploy.io/evidence-bundle/v1`;
- `predicate`: the chains, each with its records in sequence order (metadata name,
  namespace and labels, and the spec exactly as stored), the chain's head (the newest
  record's sequence, name and hash), and, when still present, the AIDeployment and its
  Events, which are context: they are covered by the signature but are not records.

The payload is the canonical JSON of the statement (the records' own canonical form:
sorted keys, no whitespace, UTF-8), so the same chain always gives the same bytes. The
envelope is signed with the operator's record key (records/signature.py) over DSSE's PAE
encoding, which cannot be mistaken for the message a record signature covers
("aideploy record v1\\0" + hash): one public key checks both the records and the bundle.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from aideploy.api.digest import DIGEST_PREFIX, canonical_json
from aideploy.api.records import DEFAULT_RETENTION
from aideploy.api.times import rfc3339
from aideploy.records.chain import record_hash
from aideploy.records.signature import RecordSigner, key_id
from aideploy.records.verify import ChainBreak, verify_chain

PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE: Final = "https://aideploy.io/evidence-bundle/v1"
_KEPT_METADATA: Final = ("name", "namespace", "labels")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what the signature covers."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def _spec(record: Mapping[str, Any]) -> dict[str, Any]:
    spec = record.get("spec")
    return dict(spec) if isinstance(spec, Mapping) else {}


def _sequence(record: Mapping[str, Any]) -> int:
    value = _spec(record).get("sequence")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _bundled_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record as bundled: what identifies it and its spec, without the apiserver's
    bookkeeping (resourceVersion, managedFields), which no hash covers."""
    metadata = record.get("metadata") or {}
    kept = {k: metadata[k] for k in _KEPT_METADATA if metadata.get(k) is not None}
    return {"metadata": kept, "spec": _spec(record)}


def _context_object(obj: Mapping[str, Any]) -> dict[str, Any]:
    metadata = dict(obj.get("metadata") or {})
    metadata.pop("managedFields", None)
    return {**dict(obj), "metadata": metadata}


@dataclass(frozen=True)
class ChainExport:
    """One AIDeployment's records (any order), and what is still present of it."""

    records: Sequence[Mapping[str, Any]]
    deployment: Mapping[str, Any] | None = None
    events: Sequence[Mapping[str, Any]] = ()


def _chain(export: ChainExport) -> dict[str, Any]:
    records = sorted(export.records, key=lambda r: (_sequence(r), str(r["metadata"]["name"])))
    if not records:
        raise ValueError("a chain in an evidence bundle needs at least one record")
    newest = records[-1]
    deployment = _spec(newest).get("deployment") or {}
    chain: dict[str, Any] = {
        "deployment": {"name": deployment.get("name"), "uid": deployment.get("uid")},
        "head": {
            "sequence": _sequence(newest),
            "name": newest["metadata"]["name"],
            "hash": _spec(newest).get("hash"),
        },
        "records": [_bundled_record(r) for r in records],
    }
    if export.deployment is not None:
        chain["object"] = _context_object(export.deployment)
    if export.events:
        chain["events"] = [_context_object(e) for e in export.events]
    return chain


def statement(
    namespace: str, chains: Sequence[ChainExport], exported_at: datetime
) -> dict[str, Any]:
    """The in-toto statement of these chains (each with at least one record)."""
    built = [_chain(c) for c in chains]
    built.sort(key=lambda c: (str(c["deployment"]["name"]), str(c["deployment"]["uid"])))
    subjects = [
        {
            "name": f"{namespace}/{record['metadata']['name']}",
            "digest": {"sha256": str(record["spec"].get("hash", "")).removeprefix(DIGEST_PREFIX)},
        }
        for chain in built
        for record in chain["records"]
    ]
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "namespace": namespace,
            "exportedAt": rfc3339(exported_at),
            "chains": built,
        },
    }


def sign_envelope(payload: Mapping[str, Any], signer: RecordSigner) -> dict[str, Any]:
    """The DSSE envelope of `payload` (its canonical JSON), signed with the operator's key."""
    body = canonical_json(payload)
    signature = signer.private_key.sign(pae(PAYLOAD_TYPE, body))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(body).decode("ascii"),
        "signatures": [
            {"keyid": signer.key_id, "sig": base64.b64encode(signature).decode("ascii")}
        ],
    }


def envelope_bytes(envelope: Mapping[str, Any]) -> bytes:
    """The file's bytes: indented for a reader, and a trailing newline."""
    return json.dumps(envelope, indent=2, sort_keys=True).encode("utf-8") + b"\n"


# Verification


@dataclass(frozen=True)
class BundleProblem:
    """One thing wrong with a bundle; `record` names the record it concerns ("" when it
    concerns the file or the envelope as a whole)."""

    record: str
    message: str


@dataclass
class BundleReport:
    """What verification found: the chains it read (name, record count) and the problems,
    in the order found (chain by chain, record by record); `problems[0]` is the first."""

    chains: list[tuple[str, int]] = field(default_factory=list)
    problems: list[BundleProblem] = field(default_factory=list)
    expired: int = 0

    def add(self, record: str, message: str) -> None:
        self.problems.append(BundleProblem(record, message))


def _decode(envelope: Any, report: BundleReport) -> tuple[bytes, dict[str, Any]] | None:
    if not isinstance(envelope, Mapping):
        report.add("", "is not a DSSE envelope (a JSON object with payload and signatures)")
        return None
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        report.add("", f"has payloadType {envelope.get('payloadType')!r}, not {PAYLOAD_TYPE}")
        return None
    try:
        body = base64.b64decode(str(envelope.get("payload") or ""), validate=True)
        payload = json.loads(body)
    except (binascii.Error, ValueError):
        report.add("", "has a payload that is not base64 of JSON: the file was altered")
        return None
    if not isinstance(payload, dict) or payload.get("predicateType") != PREDICATE_TYPE:
        report.add("", f"does not hold an in-toto statement of type {PREDICATE_TYPE}")
        return None
    return body, payload


def _signature_ok(envelope: Mapping[str, Any], body: bytes, key: Ed25519PublicKey) -> bool:
    for entry in envelope.get("signatures") or []:
        if not isinstance(entry, Mapping):
            continue
        try:
            value = base64.b64decode(str(entry.get("sig") or ""), validate=True)
            key.verify(value, pae(PAYLOAD_TYPE, body))
        except (binascii.Error, ValueError, InvalidSignature):
            continue
        return True
    return False


def _retention(
    spec: Mapping[str, Any], minimum: timedelta, now: datetime
) -> tuple[str | None, bool]:
    """A problem with the record's retention dates, if any, and whether it has expired."""
    try:
        created = datetime.fromisoformat(str(spec.get("createdAt")))
        until = datetime.fromisoformat(str(spec.get("retainUntil")))
    except ValueError:
        return "has no readable createdAt and retainUntil", False
    if until - created < minimum:
        days = (until - created).days
        return (
            f"is kept {days} days (until {spec.get('retainUntil')}), less than the "
            f"{minimum.days} days required"
        ), False
    return None, until < now


def _check_order(records: Sequence[Mapping[str, Any]], report: BundleReport) -> None:
    for index, record in enumerate(records, start=1):
        if _sequence(record) != index:
            report.add(
                str((record.get("metadata") or {}).get("name") or f"record #{index}"),
                f"is at position {index} of its chain but has sequence {_sequence(record)}: "
                "records were removed, added or reordered",
            )
            return


def _check_subjects(
    payload: Mapping[str, Any], chains: Sequence[Mapping[str, Any]], report: BundleReport
) -> None:
    namespace = str((payload.get("predicate") or {}).get("namespace") or "")
    expected = {
        f"{namespace}/{r['metadata']['name']}": str(r["spec"].get("hash", "")).removeprefix(
            DIGEST_PREFIX
        )
        for c in chains
        for r in c.get("records") or []
    }
    given = {
        str(s.get("name")): str((s.get("digest") or {}).get("sha256"))
        for s in payload.get("subject") or []
        if isinstance(s, Mapping)
    }
    if given != expected:
        report.add("", "has subjects that do not match the records it holds")


def _check_chain(
    chain: Mapping[str, Any],
    key: Ed25519PublicKey,
    minimum: timedelta,
    now: datetime,
    report: BundleReport,
) -> None:
    records = [r for r in chain.get("records") or [] if isinstance(r, Mapping)]
    deployment = chain.get("deployment") or {}
    report.chains.append((str(deployment.get("name")), len(records)))
    before = len(report.problems)
    _check_order(records, report)
    for record in records:
        spec = _spec(record)
        if record_hash(spec) != spec.get("hash"):
            report.add(
                str(record["metadata"].get("name")),
                "content does not match its hash: the record was altered",
            )
    head = chain.get("head") or {}
    latest = {"sequence": head.get("sequence"), "name": head.get("name"), "hash": head.get("hash")}
    try:
        breaks: list[ChainBreak] = verify_chain(records, latest, [key])
    except ValueError as error:
        breaks = []
        report.add("", f"mixes the records of several AIDeployments in one chain: {error}")
    seen = {p.record for p in report.problems[before:]}
    for chain_break in breaks:
        if chain_break.record not in seen:
            report.add(chain_break.record, chain_break.message)
    for record in records:
        problem, expired = _retention(_spec(record), minimum, now)
        if problem is not None:
            report.add(str(record["metadata"].get("name")), problem)
        report.expired += expired


def verify_bundle(
    envelope: Any,
    key: Ed25519PublicKey,
    now: datetime,
    minimum_retention: timedelta = DEFAULT_RETENTION,
) -> BundleReport:
    """Every problem with a bundle, checked with the operator's public key alone: the
    envelope's signature, each record's hash, link and signature, each chain's order and
    head, and each record's retention (at least `minimum_retention` from its creation).

    Record problems come first, chain by chain in sequence order, so that the first problem
    names the first broken record; a bad envelope signature alone (every record intact)
    means the file was altered elsewhere, or was signed by another key.
    """
    report = BundleReport()
    decoded = _decode(envelope, report)
    if decoded is None:
        return report
    body, payload = decoded
    chains = [
        c for c in (payload.get("predicate") or {}).get("chains") or [] if isinstance(c, Mapping)
    ]
    if not chains:
        report.add("", "holds no record chain")
    for chain in chains:
        _check_chain(chain, key, minimum_retention, now, report)
    _check_subjects(payload, chains, report)
    if not _signature_ok(envelope, body, key):
        named = [
            str(e.get("keyid")) for e in envelope.get("signatures") or [] if isinstance(e, Mapping)
        ]
        report.add(
            "",
            f"the bundle's signature ({', '.join(named) or 'none'}) does not verify with "
            f"{key_id(key)}: the file was altered, or signed with another key",
        )
    return report
