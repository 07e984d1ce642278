"""The gate's branch of the status tree: each required role, the checklist by section, the
compliance fields, promotion and the window, in words.

`status.gate` lists what is missing; a release manager also needs what is done and by
whom (is that approval authenticated?), the checklist's item titles rather than bare
numbers, and the window as "opens Mon 22:00 CET, in 3d" rather than a dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from aideploy.api.constants import CHECKLIST_ITEMS, CHECKLIST_SECTIONS, Phase
from aideploy.api.digest import short_digest
from aideploy.api.spec import AIDeploymentSpec
from aideploy.cli.ages import moment, relative
from aideploy.cli.nodes import Node, columns, mark, node
from aideploy.cli.terminal import Text, styled
from aideploy.logic.change import approval_roles
from aideploy.logic.floor import required_items
from aideploy.logic.window import format_time

_GATE_PHASES = (Phase.AWAITING_APPROVAL.value, Phase.AWAITING_WINDOW.value)


def gate_node(obj: Mapping[str, Any], now: datetime) -> Node:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    gate = status.get("gate") or {}
    if not status.get("phase"):
        return node("Gate", styled("not evaluated yet", "dim"))
    parsed = _parsed(spec)
    lowered = bool(gate.get("floorLowered"))
    children = [_approvals_node(parsed, status, gate, now), _checklist_node(parsed, gate, lowered)]
    children += _compliance_nodes(gate)
    if gate.get("promotion"):
        children.append(node(mark(False, "Promotion", waiting=True), str(gate["promotion"])))
    window = _window_node(gate.get("window"), spec.get("window") or {}, now)
    if window is not None:
        children.append(window)
    if gate.get("belowFloor"):
        note = "lowered by the operator's policy" if lowered else "still required"
        children.append(
            node("Floor", f"the spec leaves out {', '.join(gate['belowFloor'])}: {note}")
        )
    return node("Gate", _summary(status, gate), children)


def _parsed(spec: Mapping[str, Any]) -> AIDeploymentSpec | None:
    try:
        return AIDeploymentSpec.model_validate(spec)
    except ValidationError:
        return None


def _summary(status: Mapping[str, Any], gate: Mapping[str, Any]) -> Text:
    """Passed once the rollout started (the operator clears the gate then); otherwise what
    it is blocked by, in red when people must act and in yellow when time will tell."""
    phase = status.get("phase")
    blocked = list(gate.get("blockedBy") or [])
    if phase is None:
        return styled("not evaluated yet", "dim")
    if phase not in _GATE_PHASES or not blocked:
        return mark(True, "passed")
    timed = set(blocked) <= {"window", "freeze", "promotion"}
    return mark(False, "blocked by " + ", ".join(blocked), waiting=timed)


def _approvals_node(
    spec: AIDeploymentSpec | None,
    status: Mapping[str, Any],
    gate: Mapping[str, Any],
    now: datetime,
) -> Node:
    """Every role the gate counts (the rule `approve` uses), then approvals given in roles
    it does not count, so that nobody believes such an approval helps."""
    given = {str(a.get("role")): a for a in status.get("approvals") or []}
    missing = list(gate.get("missingApprovals") or [])
    if spec is not None:
        required = [r.value for r in approval_roles(spec, bool(gate.get("floorLowered")))]
    else:
        required = sorted({*missing, *given})
    rows: list[tuple[Text, list[Text | str]]] = []
    for role in required:
        approval = given.get(role)
        ok = approval is not None and bool(approval.get("valid")) and role not in missing
        rows.append((mark(ok, role), _approval_detail(approval, now)))
    for role in sorted(set(given) - set(required)):
        rows.append((styled("·", "dim") + " " + role, ["not required: does not count"]))
    done = sum(1 for role in required if role in given and given[role].get("valid"))
    details = columns([cells for _, cells in rows])
    children = [Node(label, detail) for (label, _), detail in zip(rows, details, strict=True)]
    return node("Approvals", f"{done} of {len(required)}", children)


def _approval_detail(approval: Mapping[str, Any] | None, now: datetime) -> list[Text | str]:
    if approval is None:
        return [styled("missing", "bad")]
    who = str(approval.get("by") or "-")
    authenticated = (
        styled("authenticated", "ok")
        if approval.get("authenticated")
        else styled("not authenticated", "warn")
    )
    when = relative(approval.get("approvedAt"), now) if approval.get("approvedAt") else ""
    comment = f'"{approval["comment"]}"' if approval.get("comment") else ""
    cells: list[Text | str] = [who, authenticated, *([when] if when else [])]
    if not approval.get("valid"):
        problem = approval.get("problem")
        verdict = (
            f"refused: {problem}"
            if problem
            else f"stale: for spec {short_digest(str(approval.get('digest') or ''))}"
        )
        return [*cells, styled(verdict, "bad")]
    return [*cells, comment]


def _checklist_node(spec: AIDeploymentSpec | None, gate: Mapping[str, Any], lowered: bool) -> Node:
    """Complete sections on one line; incomplete ones opened, naming each item left and why."""
    required = list(required_items(spec, lowered)) if spec is not None else list(CHECKLIST_ITEMS)
    missing = set(gate.get("missingChecklist") or [])
    invalid = {str(p).split(" ", 1)[0]: str(p) for p in gate.get("invalidChecklist") or []}
    open_items = missing | set(invalid)
    done = len([item for item in required if item not in open_items])
    if not open_items:
        return node(mark(True, "Checklist"), f"complete ({done} of {len(required)})")
    sections = []
    for number, title in CHECKLIST_SECTIONS.items():
        items = [item for item in required if item.split(".")[0] == number]
        if not items:
            continue
        left = [item for item in items if item in open_items]
        label = mark(not left, f"{number} {title}")
        children = [
            node(
                mark(False, f"{item} {CHECKLIST_ITEMS.get(item, '')}".rstrip()),
                _item_problem(item, invalid),
            )
            for item in left
        ]
        sections.append(node(label, f"{len(items) - len(left)} of {len(items)}", children))
    return node(mark(False, "Checklist"), f"{done} of {len(required)} done", sections)


def _item_problem(item: str, invalid: Mapping[str, str]) -> Text:
    if item in invalid:
        # The gate's sentence starts "2.3 (title) ...": the title is already on the label.
        reason = invalid[item].split(") ", 1)[-1] if ") " in invalid[item] else invalid[item]
        return styled(reason, "bad")
    return styled("missing", "bad")


def _compliance_nodes(gate: Mapping[str, Any]) -> list[Node]:
    missing = list(gate.get("missingCompliance") or [])
    problems = list(gate.get("complianceProblems") or [])
    if not missing and not problems:
        return []
    detail = f"missing: {', '.join(missing)}" if missing else ""
    return [node(mark(False, "Compliance"), detail, [node(str(p)) for p in problems])]


def _window_node(
    window: Mapping[str, Any] | None, spec_window: Mapping[str, Any], now: datetime
) -> Node | None:
    """The window's state in words, with times in its own time zone and UTC."""
    if not window:
        return None
    zone = _zone(spec_window.get("timeZone"))
    freeze = window.get("freeze")
    if isinstance(freeze, Mapping):
        until = _when(freeze.get("end"), zone, now)
        words = f"frozen until {until}" + (f": {freeze['reason']}" if freeze.get("reason") else "")
        return node(mark(False, "Window", waiting=True), words)
    if window.get("open"):
        closes = window.get("closesAt")
        words = "open" + (f", closes {_when(closes, zone, now)}" if closes else "")
        if window.get("reason") == "Expedited":
            words = "expedited: may deploy outside the window"
        return node(mark(True, "Window"), words)
    opens = window.get("opensAt")
    duration = spec_window.get("duration")
    words = "closed" + (
        f"; next opening {_when(opens, zone, now)}" if opens else "; no opening ahead"
    )
    words += f", for {duration}" if opens and duration else ""
    return node(mark(False, "Window", waiting=True), words)


def _zone(name: Any) -> ZoneInfo:
    try:
        return ZoneInfo(str(name or "UTC"))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("UTC")


def _when(value: Any, zone: ZoneInfo, now: datetime) -> str:
    at = moment(value)
    if at is None:
        return "-"
    return f"{format_time(at, zone)}, {relative(value, now)}"
