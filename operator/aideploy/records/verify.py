"""Recompute a deployment's record chain and say where it is broken (pure: no I/O).

Every break names the record it concerns, so that an auditor can go straight to it: the
record whose content no longer matches its hash, the record after a gap, the record whose
link does not point at its predecessor. One tampering can cause several breaks (an edited
and re-hashed record also breaks its successor's link); all are reported, none is hidden
behind another.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import groupby
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from aideploy.records.chain import record_hash
from aideploy.records.signature import SignatureProblem, check_signature


class BreakKind(StrEnum):
    MALFORMED = "malformed"  # not a record spec the chain can be checked on
    EDITED = "edited"  # the content no longer matches the record's own hash
    MISSING = "missing"  # a gap in the sequence numbers: a record was removed
    DUPLICATE = "duplicate"  # two records claim the same sequence number
    BROKEN_LINK = "broken-link"  # previousHash is not the hash of the record before
    TRUNCATED = "truncated"  # the newest records are gone (seen from the object's status)
    UNSIGNED = "unsigned"  # cannot be authenticated: no signature where one is due
    BAD_SIGNATURE = "bad-signature"  # changed after the operator signed it
    UNTRUSTED_KEY = "untrusted-key"  # signed, but not by a key the reader trusts


@dataclass(frozen=True)
class ChainBreak:
    kind: BreakKind
    record: str  # metadata.name of the record the break concerns
    sequence: int | None
    message: str


def _name(record: Mapping[str, Any]) -> str:
    return str((record.get("metadata") or {}).get("name") or "<unnamed record>")


def _spec(record: Mapping[str, Any]) -> dict[str, Any]:
    spec = record.get("spec")
    return dict(spec) if isinstance(spec, Mapping) else {}


def _sequence(record: Mapping[str, Any]) -> int:
    return int(_spec(record)["sequence"])


def deployment_uid(record: Mapping[str, Any]) -> str:
    deployment = _spec(record).get("deployment")
    return str(deployment.get("uid") or "") if isinstance(deployment, Mapping) else ""


def _malformed(record: Mapping[str, Any]) -> str | None:
    spec = _spec(record)
    sequence = spec.get("sequence")
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 1:
        return "has no valid spec.sequence"
    if not isinstance(spec.get("hash"), str) or not spec["hash"]:
        return "has no spec.hash"
    if not isinstance(spec.get("previousHash"), str):
        return "has no spec.previousHash"
    if not deployment_uid(record):
        return "does not name the uid of its AIDeployment"
    return None


def _range(first: int, last: int) -> str:
    return str(first) if first == last else f"{first} to {last}"


def _link_break(
    record: Mapping[str, Any],
    previous: Sequence[Mapping[str, Any]],
    by_hash: Mapping[str, Mapping[str, Any]],
) -> ChainBreak | None:
    spec = _spec(record)
    sequence = int(spec["sequence"])
    link = str(spec["previousHash"])
    if not previous:
        if not link:
            return None
        message = (
            f"is the first record of its deployment but links to a previous record "
            f"({link[:19]}...): the records before it were removed"
        )
        return ChainBreak(BreakKind.BROKEN_LINK, _name(record), sequence, message)
    if link in {str(_spec(p)["hash"]) for p in previous}:
        return None
    before = previous[0]
    linked = by_hash.get(link)
    if linked is not None and linked is not record:
        message = (
            f"links to {_name(linked)} (sequence {_sequence(linked)}) instead of the record "
            f"before it, {_name(before)} (sequence {_sequence(before)}): records were reordered"
        )
    elif not link:
        message = (
            f"has an empty previousHash but follows {_name(before)} "
            f"(sequence {_sequence(before)}): the chain was cut here"
        )
    else:
        message = (
            f"does not link to the record before it, {_name(before)} "
            f"(sequence {_sequence(before)}): that record was replaced or re-hashed after "
            "this one was written"
        )
    return ChainBreak(BreakKind.BROKEN_LINK, _name(record), sequence, message)


def _latest_breaks(
    records: Sequence[Mapping[str, Any]], latest: Mapping[str, Any]
) -> list[ChainBreak]:
    """The newest records cannot be checked by their successors; the AIDeployment's
    status (`latestRecord`) names the newest one, so a removed tail is still visible."""
    sequence = latest.get("sequence")
    if not isinstance(sequence, int):
        return []
    name = str(latest.get("name") or f"record {sequence}")
    last = max((_sequence(r) for r in records), default=0)
    if sequence > last:
        message = (
            f"is named by the AIDeployment's status as the latest record (sequence "
            f"{sequence}), but the chain ends at {last}: records "
            f"{_range(last + 1, sequence)} were removed"
        )
        return [ChainBreak(BreakKind.TRUNCATED, name, sequence, message)]
    expected = latest.get("hash")
    same = [r for r in records if _sequence(r) == sequence]
    if expected and same and all(_spec(r)["hash"] != expected for r in same):
        message = (
            f"has a hash that differs from the one the AIDeployment's status recorded for "
            f"sequence {sequence}: the record was replaced"
        )
        return [ChainBreak(BreakKind.EDITED, _name(same[0]), sequence, message)]
    return []


_SIGNATURE_BREAKS: dict[SignatureProblem, BreakKind] = {
    "unsigned": BreakKind.UNSIGNED,
    "bad": BreakKind.BAD_SIGNATURE,
    "untrusted": BreakKind.UNTRUSTED_KEY,
}


def _signature_breaks(
    chain: Sequence[Mapping[str, Any]], trusted: Sequence[Ed25519PublicKey]
) -> list[ChainBreak]:
    """Without trusted keys a signature is still checked against the key it names, and an
    unsigned record after a signed one is a break: the operator never stops signing, so
    someone wrote it (or stripped its signature)."""
    breaks: list[ChainBreak] = []
    signed_before: str | None = None
    for record in chain:
        check = check_signature(_spec(record), trusted)
        sequence = _sequence(record)
        if check.problem is not None:
            kind = _SIGNATURE_BREAKS[check.problem]
            breaks.append(ChainBreak(kind, _name(record), sequence, check.message))
        elif check.key_id is None and signed_before is not None:
            message = (
                f"is not signed although {signed_before} before it is: it was written or "
                "altered by someone other than the operator"
            )
            breaks.append(ChainBreak(BreakKind.UNSIGNED, _name(record), sequence, message))
        if check.key_id is not None and signed_before is None:
            signed_before = _name(record)
    return breaks


def signing_keys(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """How many records each key id claims to have signed ("" for unsigned records), so
    that `verify` can say which key it checked."""
    counts: dict[str, int] = {}
    for record in records:
        signature = _spec(record).get("signature")
        named = str(signature.get("keyId") or "") if isinstance(signature, Mapping) else ""
        counts[named] = counts.get(named, 0) + 1
    return counts


def verify_chain(
    records: Iterable[Mapping[str, Any]],
    latest: Mapping[str, Any] | None = None,
    trusted_keys: Sequence[Ed25519PublicKey] = (),
) -> list[ChainBreak]:
    """Every break in the chain of one AIDeployment's records (one uid), in sequence order.

    `records` may come in any order. `latest` is the AIDeployment's `status.latestRecord`
    ({name, sequence, hash}) when the object still exists; without it, a removed newest
    record cannot be told from one never written. With `trusted_keys`, every record must
    be signed by one of them.
    """
    breaks: list[ChainBreak] = []
    chain: list[Mapping[str, Any]] = []
    for record in records:
        problem = _malformed(record)
        if problem is None:
            chain.append(record)
        else:
            breaks.append(ChainBreak(BreakKind.MALFORMED, _name(record), None, problem))
    uids = {deployment_uid(r) for r in chain}
    if len(uids) > 1:
        raise ValueError(
            f"verify_chain checks one AIDeployment's records, got uids {sorted(uids)}: "
            "use verify_chains for several"
        )
    chain.sort(key=lambda r: (_sequence(r), _name(r)))
    by_hash = {str(_spec(r)["hash"]): r for r in chain}
    previous: list[Mapping[str, Any]] = []
    for sequence, grouped in groupby(chain, key=_sequence):
        group = list(grouped)
        for record in group:
            if record_hash(_spec(record)) != _spec(record)["hash"]:
                message = (
                    "content does not match its hash: the record was edited after it was written"
                )
                breaks.append(ChainBreak(BreakKind.EDITED, _name(record), sequence, message))
        for record in group[1:]:
            message = (
                f"has sequence {sequence} like {_name(group[0])}: a record was duplicated "
                "or inserted"
            )
            breaks.append(ChainBreak(BreakKind.DUPLICATE, _name(record), sequence, message))
        expected = _sequence(previous[0]) + 1 if previous else 1
        if sequence > expected:
            message = (
                f"follows a gap: record{'s' if sequence - expected > 1 else ''} "
                f"{_range(expected, sequence - 1)} of this deployment "
                f"{'are' if sequence - expected > 1 else 'is'} missing (removed)"
            )
            breaks.append(ChainBreak(BreakKind.MISSING, _name(group[0]), sequence, message))
        else:
            for record in group:
                link_break = _link_break(record, previous, by_hash)
                if link_break is not None:
                    breaks.append(link_break)
        previous = group
    breaks.extend(_signature_breaks(chain, trusted_keys))
    if latest is not None:
        breaks.extend(_latest_breaks(chain, latest))
    breaks.sort(key=lambda b: b.sequence if b.sequence is not None else 0)
    return breaks


def verify_chains(
    records: Iterable[Mapping[str, Any]],
    latest_by_uid: Mapping[str, Mapping[str, Any]] | None = None,
    trusted_keys: Sequence[Ed25519PublicKey] = (),
) -> dict[str, list[ChainBreak]]:
    """`verify_chain` for each AIDeployment (uid) among `records`; records that name no uid
    are reported under the empty uid."""
    by_uid: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        uid = deployment_uid(record) if _malformed(record) is None else ""
        by_uid.setdefault(uid, []).append(record)
    latest = latest_by_uid or {}
    return {
        uid: verify_chain(group, latest.get(uid), trusted_keys) for uid, group in by_uid.items()
    }
