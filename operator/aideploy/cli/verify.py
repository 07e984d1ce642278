"""`kubectl aideploy verify`: recompute every record chain, check the operator's signatures,
and say which key the check relied on.

Without `--public-key`, signatures are checked against the key each record names, which
shows any record changed after it was signed, but not a chain re-signed by someone else:
the output says so, and names the key, so that the reader can compare it with the
operator's (`aideploy-operator --print-record-public-key`, or the operator's start log).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from aideploy.cli.session import CliError, Session
from aideploy.cli.terminal import printable
from aideploy.cli.views import RECORDS_HINT, by_uid
from aideploy.cli.watch import READ_HINT
from aideploy.records.signature import PublicKeyError, key_id, load_public_key
from aideploy.records.verify import ChainBreak, signing_keys, verify_chain, verify_chains


def load_trusted_keys(sources: Sequence[str]) -> list[Ed25519PublicKey]:
    """Each source is a file holding a public key, or the key itself (base64, one line, as
    the operator logs it). Read before connecting: a bad key is the user's to fix."""
    keys: list[Ed25519PublicKey] = []
    for source in sources:
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8") if path.is_file() else source
        except (OSError, UnicodeDecodeError) as error:
            raise CliError(f"cannot read public key file {source}: {error}") from None
        try:
            keys.append(load_public_key(text))
        except PublicKeyError as error:
            shown = source if path.is_file() else "given on the command line"
            raise CliError(
                f"--public-key {shown}: {error}; print the operator's key with "
                "`aideploy-operator --print-record-public-key`"
            ) from None
    return keys


def _signature_note(group: Sequence[Mapping[str, Any]], trusted: Sequence[Ed25519PublicKey]) -> str:
    if not group:
        return "no records to authenticate"
    counts = signing_keys(group)
    named = sorted(k for k in counts if k)
    unsigned = counts.get("", 0)
    if trusted:
        used = ", ".join(sorted(key_id(k) for k in trusted))
        return f"signatures checked against {used}"
    if not named:
        return "records are not signed (the operator had no key): integrity only, no authentication"
    note = (
        f"signed by {', '.join(named)}, not checked against a trusted key: give "
        "--public-key to authenticate"
    )
    return note + (f"; {unsigned} unsigned" if unsigned else "")


def _deployments(session: Session, name: str | None, records: list[dict[str, Any]]) -> list[Any]:
    if name is None:
        return session.list_deployments(READ_HINT)
    found = session.find_deployment(name, READ_HINT)
    if not records and found is None:
        raise CliError(
            f"aideployment {name} not found in namespace {session.namespace}, and no "
            "records of it: check the name and the namespace (-n)"
        )
    return [found] if found is not None else []


def _print_chain(label: str, count: int, breaks: Sequence[ChainBreak], note: str) -> None:
    records = f"{count} record{'s' if count != 1 else ''}"
    state = (
        "chain intact" if not breaks else f"{len(breaks)} break{'s' if len(breaks) != 1 else ''}"
    )
    print(printable(f"{label}: {records}, {state}; {note}"))
    for chain_break in breaks:
        print(
            printable(f"  {chain_break.kind.value:<13} {chain_break.record}: {chain_break.message}")
        )


def verify(session: Session, name: str | None, trusted: Sequence[Ed25519PublicKey] = ()) -> int:
    """Exit 0 when every chain is intact (and, with trusted keys, signed by one of them);
    1 on any break, each printed with its record."""
    records = session.records(name, RECORDS_HINT)
    deployments = _deployments(session, name, records)
    latest: dict[str, Mapping[str, Any]] = {}
    names: dict[str, str] = {}
    for obj in deployments:
        uid = str(obj["metadata"]["uid"])
        names[uid] = str(obj["metadata"]["name"])
        head = (obj.get("status") or {}).get("latestRecord")
        if isinstance(head, Mapping):
            latest[uid] = head
    chains = verify_chains(records, latest, trusted)
    for uid, head in latest.items():
        if uid not in chains:
            chains[uid] = verify_chain([], head, trusted)
    groups = by_uid(records)
    total = 0
    for uid, breaks in chains.items():
        group = groups.get(uid, [])
        shown = names.get(uid) or next(
            (str(((r.get("spec") or {}).get("deployment") or {}).get("name")) for r in group), "?"
        )
        gone = "" if uid in names else ", AIDeployment deleted"
        _print_chain(
            f"{shown} (uid {uid[:8] or '?'}{gone})",
            len(group),
            breaks,
            _signature_note(group, trusted),
        )
        total += len(breaks)
    if not chains:
        print(f"no records in namespace {session.namespace}")
    if total:
        print(
            f"error: {total} break{'s' if total != 1 else ''} in the record chain: these "
            "records cannot be relied on as evidence until the break is explained",
            file=sys.stderr,
        )
        return 1
    return 0
