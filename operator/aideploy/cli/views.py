"""The commands that read: status, history, verify.

Text output is for a person at a terminal (aligned, colour only on a TTY); `-o json` is for
scripts and stays stable. Nothing here trusts the status for what can be recomputed: the
spec digest is computed from the stored spec, the record chain from the records.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aideploy.api.digest import short_digest, spec_digest
from aideploy.api.spec import Result
from aideploy.cli.session import CliError, Session
from aideploy.cli.terminal import colour_wanted, printable
from aideploy.cli.tree import render_tree
from aideploy.cli.watch import READ_HINT, observe_once, watch
from aideploy.records.verify import deployment_uid

RECORDS_HINT = "auditing needs RBAC permission to list aideploymentrecords.aideploy.io"
_COLOURS = {Result.GREEN: "32", Result.AMBER: "33", Result.RED: "31", "True": "32", "False": "31"}


def _colour() -> bool:
    return colour_wanted(sys.stdout)


def _paint(text: str) -> str:
    code = _COLOURS.get(text)
    return f"\033[{code}m{text}\033[0m" if code and _colour() else text


def _text(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "") -> list[str]:
    """Columns aligned on the widest cell; the last column is never padded. Cells are made
    printable first, and colour applied after alignment so that escape codes do not skew
    the widths."""
    safe_rows = [[printable(str(cell)) for cell in row] for row in rows]
    widths = [max(len(str(r[i])) for r in [headers, *safe_rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, *safe_rows]:
        cells = [str(c).ljust(widths[i]) if i < len(row) - 1 else str(c) for i, c in enumerate(row)]
        if row is not headers:
            cells = [_paint(c.rstrip()) + c[len(c.rstrip()) :] for c in cells]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def _release(release: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not release:
        return None
    return {k: v for k, v in release.items() if k not in ("template", "serving")}


def status_summary(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What `status -o json` prints: the status as a person needs it, plus the digest
    recomputed from the stored spec (what approvals must name)."""
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    model = spec.get("model") or {}
    current = spec_digest(spec)
    verification = status.get("verification") or {}
    return {
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "model": {"name": model.get("name"), "version": model.get("version")},
        "riskLevel": spec.get("riskLevel"),
        "environment": spec.get("environment"),
        "changeType": status.get("changeType") or spec.get("changeType"),
        "generation": metadata.get("generation"),
        "observedGeneration": status.get("observedGeneration"),
        "specDigest": current,
        "statusUpToDate": status.get("specDigest") == current
        and status.get("observedGeneration") == metadata.get("generation"),
        "phase": status.get("phase"),
        "phaseTransitionTime": status.get("phaseTransitionTime"),
        "decision": status.get("decision"),
        "message": status.get("message"),
        "gate": status.get("gate") or {},
        "approvals": status.get("approvals") or [],
        "verification": {k: v for k, v in verification.items() if k != "probes"},
        "probes": verification.get("probes") or [],
        "monitoring": status.get("monitoring"),
        "rollback": status.get("rollback"),
        "currentRelease": _release(status.get("currentRelease")),
        "lastGoodRelease": _release(status.get("lastGoodRelease")),
        "stableRelease": status.get("stableRelease"),
        "candidateRelease": status.get("candidateRelease"),
        "traffic": status.get("traffic") or [],
        "conditions": status.get("conditions") or [],
        "latestRecord": status.get("latestRecord"),
    }


def status(session: Session, name: str, output: str, follow: bool, until: str | None) -> int:
    """`-o json` is the summary, once; text is the tree, once or followed (`--watch`)."""
    if output == "json":
        summary = status_summary(session.get_deployment(name, READ_HINT))
        print(json.dumps(summary, indent=2, sort_keys=True))
        return 0
    if follow or until:
        return watch(session, name, until)
    lines = render_tree(observe_once(session, name), datetime.now(UTC), colour_wanted(sys.stdout))
    print("\n".join(lines))
    return 0


def _hash_prefix(value: Any) -> str:
    text = str(value or "")
    return short_digest(text) if text else "-"


def by_uid(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        groups.setdefault(deployment_uid(record), []).append(record)
    return groups


def history(session: Session, name: str, output: str) -> int:
    records = session.records(name, RECORDS_HINT)
    if not records:
        if session.find_deployment(name, READ_HINT) is None:
            raise CliError(
                f"aideployment {name} not found in namespace {session.namespace}, and no "
                "records of it: check the name and the namespace (-n)"
            )
        print(f"aideployment {name} has no records yet")
        return 0
    if output == "json":
        print(json.dumps([r.get("spec") for r in records], indent=2, sort_keys=True))
        return 0
    headers = ["SEQ", "RECORD", "TYPE", "GEN", "CREATED", "HASH", "PREVIOUS", "NAME"]
    groups = by_uid(records)
    for index, (uid, group) in enumerate(groups.items()):
        if len(groups) > 1:
            print(("" if index == 0 else "\n") + printable(f"aideployment {name}, uid {uid}:"))
        rows = []
        for record in group:
            spec = record.get("spec") or {}
            rows.append(
                [
                    _text(spec.get("sequence")),
                    _text(spec.get("recordId")),
                    _text(spec.get("type")),
                    _text((spec.get("deployment") or {}).get("generation")),
                    _text(spec.get("createdAt")),
                    _hash_prefix(spec.get("hash")),
                    _hash_prefix(spec.get("previousHash")),
                    str(record["metadata"]["name"]),
                ]
            )
        print("\n".join(table(headers, rows)))
    return 0
