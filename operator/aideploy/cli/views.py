"""The commands that read: status, history, verify.

Text output is for a person at a terminal (aligned, colour only on a TTY); `-o json` is for
scripts and stays stable. Nothing here trusts the status for what can be recomputed: the
spec digest is computed from the stored spec, the record chain from the records.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from aideploy.api.digest import short_digest, spec_digest
from aideploy.api.spec import Result
from aideploy.cli.session import CliError, Session
from aideploy.cli.terminal import printable, printable_tree
from aideploy.records.verify import deployment_uid

READ_HINT = "reading needs RBAC permission to get and list aideployments.aideploy.io"
RECORDS_HINT = "auditing needs RBAC permission to list aideploymentrecords.aideploy.io"
_COLOURS = {Result.GREEN: "32", Result.AMBER: "33", Result.RED: "31", "True": "32", "False": "31"}


def _colour() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


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


def _fields(rows: Sequence[tuple[str, Any]], indent: str = "") -> list[str]:
    """`Label:  value` lines, values aligned; an empty label continues the row above."""
    width = max(len(label) for label, _ in rows) + 1
    return [
        f"{indent}{(label + ':') if label else '':<{width}}  {_paint(printable(_text(value)))}"
        for label, value in rows
    ]


def _probe_rows(probes: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    return [
        [_text(p.get(k)) for k in ("name", "kind", "result", "value", "at", "message")]
        for p in probes
    ]


def _gate_lines(gate: Mapping[str, Any]) -> list[str]:
    invalid = list(gate.get("invalidChecklist") or []) or [None]
    rows: list[tuple[str, Any]] = [
        ("Missing approvals", gate.get("missingApprovals")),
        ("Stale approvals", gate.get("staleApprovals")),
        ("Missing checklist", gate.get("missingChecklist")),
        *(("Invalid checklist" if i == 0 else "", p) for i, p in enumerate(invalid)),
        ("Missing compliance", gate.get("missingCompliance")),
        *(("Compliance problem", p) for p in gate.get("complianceProblems") or []),
        ("Promotion", gate.get("promotion")),
        ("Window", gate.get("window")),
        ("Blocked by", gate.get("blockedBy")),
    ]
    return _fields(rows, "  ")


def _release_line(release: Mapping[str, Any] | None) -> str:
    if not release:
        return "-"
    at = release.get("deployedAt")
    return f"{release.get('version')}  {release.get('digest')}" + (f"  deployed {at}" if at else "")


def render_status(summary: Mapping[str, Any]) -> list[str]:
    """The sections in the order an on-call reader asks: what is it, what does the gate wait
    for, who approved, what did probes say, which release serves, what went wrong."""
    summary = printable_tree(summary)
    lines = _header_lines(summary)
    lines += ["", "Gate:", *_gate_lines(summary["gate"])]
    lines += _approval_lines(summary["approvals"])
    lines += _probe_lines("Probes:", summary["probes"])
    lines += _probe_lines("Monitoring signals:", (summary.get("monitoring") or {}).get("signals"))
    lines += _release_lines(summary)
    lines += _condition_lines(summary["conditions"])
    latest = summary.get("latestRecord")
    if latest:
        lines += ["", f"Latest record: {latest.get('name')} (sequence {latest.get('sequence')})"]
    return lines


def _header_lines(summary: Mapping[str, Any]) -> list[str]:
    model = summary["model"]
    since = summary.get("phaseTransitionTime")
    phase = summary.get("phase") or "- (the operator has not processed this object yet)"
    lines = _fields(
        [
            ("Name", f"{summary['name']}  (namespace {summary['namespace']})"),
            (
                "Model",
                f"{model['name']} {model['version']}  ({summary['riskLevel']} risk, "
                f"{summary.get('environment') or 'production'}"
                + (f", {summary['changeType']} change" if summary.get("changeType") else "")
                + ")",
            ),
            ("Phase", f"{phase}" + (f"  since {since}" if since else "")),
            ("Decision", summary.get("decision")),
            ("Spec digest", summary["specDigest"]),
            ("Message", summary.get("message")),
        ]
    )
    if not summary["statusUpToDate"] and summary.get("phase"):
        lines.append(
            "  (status describes an older spec: the operator has not processed the current one yet)"
        )
    return lines


def _approval_lines(approvals: list[Mapping[str, Any]]) -> list[str]:
    if not approvals:
        return []
    rows = [
        [
            a.get("role", ""),
            a.get("by", ""),
            short_digest(str(a.get("digest", ""))),
            _validity(a),
            "yes" if a.get("authenticated") else "no",
            _text(a.get("comment")),
        ]
        for a in approvals
    ]
    headers = ["ROLE", "BY", "DIGEST", "VALID", "AUTHENTICATED", "COMMENT"]
    return ["", "Approvals:", *table(headers, rows, "  ")]


def _validity(approval: Mapping[str, Any]) -> str:
    """Why an approval does not count: for another spec (stale), or refused (its problem
    is in the gate's message)."""
    if approval.get("valid"):
        return "yes"
    return "no (refused)" if approval.get("problem") else "no (stale)"


def _probe_lines(title: str, outcomes: list[Mapping[str, Any]] | None) -> list[str]:
    if not outcomes:
        return []
    headers = ["NAME", "KIND", "RESULT", "VALUE", "AT", "MESSAGE"]
    return ["", title, *table(headers, _probe_rows(outcomes), "  ")]


def _traffic_line(traffic: Sequence[Mapping[str, Any]]) -> str:
    """What users are served, first: the current release may not be it (a candidate being
    verified beside it, or one rolled back)."""
    if not traffic:
        return "nothing"
    return ", ".join(
        f"{share.get('version')} ({share.get('release')}) {share.get('weight')}%"
        + ("" if share.get("weight") else ", preview only")
        for share in traffic
    )


def _release_lines(summary: Mapping[str, Any]) -> list[str]:
    lines = [
        "",
        "Releases:",
        *_fields(
            [
                ("Serving", _traffic_line(summary.get("traffic") or [])),
                ("Current", _release_line(summary.get("currentRelease"))),
                ("Last good", _release_line(summary.get("lastGoodRelease"))),
            ],
            "  ",
        ),
    ]
    rollback = summary.get("rollback")
    if rollback:
        lines += [
            "",
            "Rollback:",
            *_fields([(k, v) for k, v in rollback.items() if k != "verification"], "  "),
        ]
    return lines


def _condition_lines(conditions: list[Mapping[str, Any]]) -> list[str]:
    if not conditions:
        return []
    rows = [
        [_text(c.get(k)) for k in ("type", "status", "reason", "lastTransitionTime", "message")]
        for c in conditions
    ]
    return ["", "Conditions:", *table(["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"], rows, "  ")]


def status(session: Session, name: str, output: str) -> int:
    summary = status_summary(session.get_deployment(name, READ_HINT))
    if output == "json":
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        print("\n".join(render_status(summary)))
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
