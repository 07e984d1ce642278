"""`kubectl aideploy status`: the object as a tree, the way `kubectl argo rollouts get
rollout` draws a rollout: a few header lines, then the gate, the releases with their
Deployments, probes and signals, conditions and the last Warning Events.

`render_tree` is pure: the object, its Deployments, its Events and `now` in, lines out.
The same input always gives the same text, so the view is tested against golden files,
and `--watch` only has to call it again when something changes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aideploy.api.constants import Phase
from aideploy.api.digest import DIGEST_PREFIX, short_digest, spec_digest
from aideploy.api.status import AIDeploymentStatus
from aideploy.cli.ages import moment, relative
from aideploy.cli.nodes import BAD, INFO, OK, WARN, Node, columns, layout, node
from aideploy.cli.terminal import Text, printable_tree, styled
from aideploy.cli.tree_gate import gate_node
from aideploy.cli.tree_rollout import (
    canary_node,
    monitoring_node,
    releases_node,
    result,
    rollback_node,
    verification_node,
)

#: How many of the object's latest Warning Events are shown.
WARNINGS_SHOWN = 5

_PHASE_STYLE = {
    Phase.SUCCEEDED: (OK, "ok"),
    Phase.FAILED: (BAD, "bad"),
    Phase.ROLLED_BACK: (BAD, "bad"),
    Phase.ROLLING_BACK: ("↺", "bad"),
    Phase.AWAITING_APPROVAL: (WARN, "warn"),
    Phase.AWAITING_PROMOTION: (WARN, "warn"),
    Phase.AWAITING_WINDOW: (WARN, "warn"),
    Phase.HELD: (WARN, "warn"),
    Phase.DEPLOYING: (INFO, "info"),
    Phase.VERIFYING: (INFO, "info"),
    Phase.MONITORING: (INFO, "info"),
}


@dataclass(frozen=True)
class Observed:
    """What the view is drawn from. None for Deployments or Events: they could not be read
    (no permission), which the view says rather than showing none."""

    obj: Mapping[str, Any]
    deployments: Sequence[Mapping[str, Any]] | None = ()
    events: Sequence[Mapping[str, Any]] | None = ()


def phase_text(phase: Any) -> Text:
    if not phase:
        return styled("- (not processed by the operator yet)", "dim")
    icon, kind = _PHASE_STYLE.get(phase, ("?", ""))
    return styled(f"{icon} {phase}", kind)


def _as_operator_reads(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object with its status read as the operator reads it: status has no schema in
    the CRD, so a hand-edited field of the wrong shape is dropped here rather than
    breaking the view."""
    raw = obj.get("status")
    status = AIDeploymentStatus.salvage(raw)[0].to_wire() if isinstance(raw, Mapping) else {}
    return {**obj, "status": status}


def render_tree(observed: Observed, now: datetime, colour: bool = False) -> list[str]:
    obj = printable_tree(_as_operator_reads(observed.obj))
    deployments = printable_tree(observed.deployments) if observed.deployments is not None else None
    events = printable_tree(observed.events) if observed.events is not None else None
    status = obj.get("status") or {}
    said = _Said()
    lines = _header(obj, now, said)
    root = node(
        f"AIDeployment {obj.get('metadata', {}).get('name', '-')}",
        phase_text(status.get("phase")),
        _branches(obj, deployments, events, now, said),
    )
    lines += [Text(), *layout(root)]
    return [line.render(colour).rstrip() for line in lines]


def _branches(
    obj: Mapping[str, Any],
    deployments: Sequence[Mapping[str, Any]] | None,
    events: Sequence[Mapping[str, Any]] | None,
    now: datetime,
    said: _Said,
) -> list[Node]:
    status = obj.get("status") or {}
    window = (status.get("gate") or {}).get("window") or {}
    said.add(window.get("message"))  # the gate's Window line says it in words
    branches = [gate_node(obj, now), releases_node(status, deployments, now)]
    for build in (canary_node, verification_node, monitoring_node, rollback_node):
        found = build(status, now)
        if found is not None:
            branches.append(found)
    branches.append(_conditions_node(status.get("conditions") or [], now, said))
    branches.append(_warnings_node(obj, events, now, said))
    return branches


def _header(obj: Mapping[str, Any], now: datetime, said: _Said) -> list[Text]:
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    model = spec.get("model") or {}
    change = status.get("changeType") or spec.get("changeType")
    since = status.get("phaseTransitionTime")
    digest = spec_digest(spec)
    rows: list[tuple[str, Text | str]] = [
        ("Name", f"{metadata.get('name')} (namespace {metadata.get('namespace')})"),
        (
            "Model",
            f"{model.get('name', '-')} {model.get('version', '-')} "
            f"({spec.get('riskLevel', '-')} risk, "
            f"{spec.get('environment') or 'production'}"
            + (f", {change} change" if change else "")
            + ")",
        ),
        (
            "Phase",
            phase_text(status.get("phase")) + (f" since {relative(since, now)}" if since else ""),
        ),
        ("Decision", result(status.get("decision"))),
        ("Spec digest", f"{DIGEST_PREFIX}{short_digest(digest)}"),
        ("Message", said.new(status.get("message")) or "-"),
    ]
    latest = status.get("latestRecord")
    if latest:
        rows.append(("Latest record", f"{latest.get('name')} (sequence {latest.get('sequence')})"))
    width = len("Latest record:") + 2  # fixed: a frame's header does not shift in --watch
    lines = [styled(f"{label}:".ljust(width), "bold") + value for label, value in rows]
    stale = status.get("specDigest") != digest or status.get("observedGeneration") != metadata.get(
        "generation"
    )
    if status.get("phase") and stale:
        lines.append(
            styled(
                "(status describes an older spec: the operator has not processed this one yet)",
                "warn",
            )
        )
    return lines


def _conditions_node(conditions: Sequence[Mapping[str, Any]], now: datetime, said: _Said) -> Node:
    rows = []
    for condition in conditions:
        state = condition.get("status")
        label = (
            (
                styled(OK, "ok")
                if state == "True"
                else styled(BAD if state == "False" else WARN, "warn")
            )
            + " "
            + str(condition.get("type", "-"))
        )
        cells: list[Text | str] = [
            str(condition.get("reason") or "-"),
            relative(condition.get("lastTransitionTime"), now),
            said.new(condition.get("message")),
        ]
        rows.append((label, cells))
    details = columns([cells for _, cells in rows])
    children = [Node(label, detail) for (label, _), detail in zip(rows, details, strict=True)]
    true = sum(1 for c in conditions if c.get("status") == "True")
    return node("Conditions", f"{true} of {len(conditions)} true", children)


def _event_time(event: Mapping[str, Any]) -> datetime | None:
    series = event.get("series") or {}
    for value in (
        event.get("lastTimestamp"),
        series.get("lastObservedTime"),
        event.get("eventTime"),
        (event.get("metadata") or {}).get("creationTimestamp"),
    ):
        found = moment(value)
        if found is not None:
            return found
    return None


def warnings(
    obj: Mapping[str, Any], events: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The object's Warning Events, oldest first, the latest `WARNINGS_SHOWN`: those of an
    earlier object of the same name (another uid) are not this one's."""
    uid = (obj.get("metadata") or {}).get("uid")
    own = [
        e
        for e in events
        if e.get("type") == "Warning"
        and (not uid or (e.get("involvedObject") or {}).get("uid") in (None, uid))
    ]
    earliest = datetime.min.replace(tzinfo=UTC)
    own.sort(key=lambda e: (_event_time(e) or earliest, str((e.get("metadata") or {}).get("name"))))
    return own[-WARNINGS_SHOWN:]


def _warnings_node(
    obj: Mapping[str, Any], events: Sequence[Mapping[str, Any]] | None, now: datetime, said: _Said
) -> Node:
    if events is None:
        return node("Warnings", styled("Events could not be read", "warn"))
    shown = warnings(obj, events)
    rows = []
    for event in shown:
        count = int(event.get("count") or (event.get("series") or {}).get("count") or 1)
        at = _event_time(event)
        cells: list[Text | str] = [
            relative(at.isoformat() if at else None, now),
            f"x{count}" if count > 1 else "",
            said.new(event.get("message")),
        ]
        rows.append((styled("▲", "warn") + " " + str(event.get("reason") or "-"), cells))
    details = columns([cells for _, cells in rows])
    children = [Node(label, detail) for (label, _), detail in zip(rows, details, strict=True)]
    return node("Warnings", "none" if not shown else f"last {len(shown)}", children)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")


class _Said:
    """The sentences already printed: the operator repeats its summary in status.message,
    the Ready condition and the condition of the part that blocks; each is printed once."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def add(self, message: Any) -> None:
        self.new(message)

    def new(self, message: Any) -> str:
        """The sentences of `message` not printed yet, and remember them."""
        if not message:
            return ""
        fresh = []
        for sentence in _SENTENCE_END.split(str(message).strip()):
            if sentence and sentence not in self._seen:
                self._seen.add(sentence)
                fresh.append(sentence)
        return " ".join(fresh)
