"""Record manifests and their hash chain (pure: no I/O).

Each record carries the hash of the previous record of the same AIDeployment (by uid) and
its own hash over every other field of its spec. Anyone holding the records can recompute
the chain: an edited record no longer matches its hash, a removed one leaves a gap in the
sequence, a re-hashed or reordered one no longer matches the link its successor holds.
The hash uses the same canonical JSON as the spec digest, so that it survives the
apiserver's round trip (key order, `1.0` stored as `1`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from aideploy.api.constants import (
    API_VERSION,
    LABEL_DEPLOYMENT,
    LABEL_MANAGED_BY,
    MANAGED_BY_VALUE,
    RECORD_KIND,
)
from aideploy.api.digest import sha256_digest
from aideploy.api.records import DEFAULT_RETENTION, LABEL_RECORD_TYPE, RECORD_IDS, RecordType
from aideploy.api.times import rfc3339
from aideploy.records.signature import RecordSigner

MAX_NAME_LENGTH: Final = 253
MAX_LABEL_LENGTH: Final = 63
_NAME_HASH_LENGTH: Final = 10
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


_UNHASHED: Final = frozenset({"hash", "signature"})


def record_hash(spec: Mapping[str, Any]) -> str:
    """`sha256:<hex>` over the canonical JSON of every field of the spec but `hash` and
    `signature` (which signs the hash)."""
    return sha256_digest({k: v for k, v in spec.items() if k not in _UNHASHED})


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_NAME_HASH_LENGTH]


def record_name(
    deployment_name: str,
    generation: int,
    sequence: int,
    record_type: RecordType,
    uid: str = "",
) -> str:
    """`<deployment>-<uid8>-g<generation>-<sequence:04d>-<type>`, a valid DNS-1123 subdomain.

    The name is the idempotency key: writing the same event twice hits the same name. The
    uid fragment keeps a deleted and re-created AIDeployment of the same name from running
    into the records of its predecessor, which outlive it. A deployment name too long to
    fit is cut and suffixed with a hash of the full name, so that two long names sharing a
    prefix still get distinct records.
    """
    uid_part = f"-{uid.replace('-', '')[:8]}" if uid else ""
    suffix = f"{uid_part}-g{generation}-{sequence:04d}-{record_type.value}"
    if len(deployment_name) + len(suffix) <= MAX_NAME_LENGTH:
        return deployment_name + suffix
    room = MAX_NAME_LENGTH - len(suffix) - _NAME_HASH_LENGTH - 1
    prefix = deployment_name[:room].rstrip("-.")
    return f"{prefix}-{_short_hash(deployment_name)}{suffix}"


def label_value(deployment_name: str) -> str:
    """The `aideploy.io/deployment` label value: the name when it fits in a label (63
    characters), else a cut name plus a hash of the full name. Labels are only an index;
    the authoritative name is `spec.deployment.name`, which the hash covers."""
    if len(deployment_name) <= MAX_LABEL_LENGTH and _LABEL_VALUE.match(deployment_name):
        return deployment_name
    room = MAX_LABEL_LENGTH - _NAME_HASH_LENGTH - 1
    prefix = deployment_name[:room].rstrip("-._")
    return f"{prefix}-{_short_hash(deployment_name)}"


@dataclass(frozen=True)
class DeploymentRef:
    """The AIDeployment a record documents, as the record names it."""

    namespace: str
    name: str
    uid: str
    generation: int
    spec_digest: str

    @classmethod
    def of(cls, obj: Mapping[str, Any], spec_digest: str) -> DeploymentRef:
        """From an AIDeployment as read from the apiserver (or a kopf body)."""
        metadata = obj["metadata"]
        return cls(
            namespace=str(metadata["namespace"]),
            name=str(metadata["name"]),
            uid=str(metadata["uid"]),
            generation=int(metadata["generation"]),
            spec_digest=spec_digest,
        )


def build_record(
    deployment: DeploymentRef,
    record_type: RecordType,
    *,
    sequence: int,
    previous_hash: str,
    content: Mapping[str, Any],
    created_at: datetime,
    retention: timedelta = DEFAULT_RETENTION,
    signer: RecordSigner | None = None,
) -> dict[str, Any]:
    """The full AIDeploymentRecord manifest, hash included, and signed when the operator
    holds a key (see signature.py).

    No ownerReference on purpose: a record must outlive the AIDeployment it documents.
    `sequence` and `previous_hash` come from `next_link` over the records already written.
    """
    if sequence < 1:
        raise ValueError(f"record sequence numbers start at 1, got {sequence}")
    if retention < timedelta(days=1):
        raise ValueError(f"retention must be at least one day, got {retention}")
    if sequence == 1 and previous_hash:
        raise ValueError("the first record of a deployment has no previous hash")
    if sequence > 1 and not previous_hash:
        raise ValueError(f"record {sequence} needs the hash of record {sequence - 1}")
    created = rfc3339(created_at)
    retain_until = rfc3339(created_at + retention)
    spec: dict[str, Any] = {
        "recordId": RECORD_IDS[record_type],
        "type": record_type.value,
        "deployment": {
            "name": deployment.name,
            "uid": deployment.uid,
            "generation": deployment.generation,
            "specDigest": deployment.spec_digest,
        },
        "sequence": sequence,
        "createdAt": created,
        "retainUntil": retain_until,
        "content": dict(content),
        "previousHash": previous_hash,
    }
    spec["hash"] = record_hash(spec)
    if signer is not None:
        spec["signature"] = signer.sign(spec["hash"])
    return {
        "apiVersion": API_VERSION,
        "kind": RECORD_KIND,
        "metadata": {
            "name": record_name(
                deployment.name, deployment.generation, sequence, record_type, deployment.uid
            ),
            "namespace": deployment.namespace,
            "labels": {
                LABEL_DEPLOYMENT: label_value(deployment.name),
                LABEL_RECORD_TYPE: record_type.value,
                LABEL_MANAGED_BY: MANAGED_BY_VALUE,
            },
        },
        "spec": spec,
    }


@dataclass(frozen=True)
class ChainLink:
    """Where the next record of a deployment goes: its sequence and the hash it links to."""

    sequence: int
    previous_hash: str


def next_link(records: Sequence[Mapping[str, Any]]) -> ChainLink:
    """The link for a new record after `records` (one deployment's, as `list_records` gives
    them). Links to the stored hash of the highest sequence, so that a chain with a break
    is extended rather than forked; `verify_chain` still reports the break."""
    if not records:
        return ChainLink(sequence=1, previous_hash="")
    last = max(records, key=lambda r: int(r["spec"]["sequence"]))
    return ChainLink(
        sequence=int(last["spec"]["sequence"]) + 1, previous_hash=str(last["spec"]["hash"])
    )


def find_record(
    records: Sequence[Mapping[str, Any]],
    record_type: RecordType,
    generation: int,
    content_matches: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The record already written for an event, if any: same type, same generation, and
    (when given) the same values for the keys of `content_matches`.

    This is how a restarted operator avoids writing an event twice under a new sequence
    number: look first, write only when this finds nothing.
    """
    for record in records:
        spec = record.get("spec") or {}
        if spec.get("type") != record_type.value:
            continue
        if (spec.get("deployment") or {}).get("generation") != generation:
            continue
        content = spec.get("content") or {}
        if all(content.get(k) == v for k, v in (content_matches or {}).items()):
            return dict(record)
    return None
