"""The rollout's branches of the status tree: releases with their Deployments and traffic,
probes, monitoring signals, the canary's step and the last rollback.

What an on-call reader asks first is "what are users served, and is it healthy?": the
stable release with its share of traffic and ready pods comes before the candidate, and
every probe shows its value and how long it took, so a slow probe is visible before it
times out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from aideploy.api.constants import LABEL_RELEASE
from aideploy.cli.ages import age, relative, seconds
from aideploy.cli.nodes import BAD, INFO, OK, Node, columns, node
from aideploy.cli.terminal import Text, styled

RESULT_KIND = {"GREEN": "ok", "AMBER": "warn", "RED": "bad"}
_RESULT_ICON = {"GREEN": OK, "AMBER": "▲", "RED": BAD}


def result(value: Any) -> Text:
    """GREEN / AMBER / RED in their colours; '-' when there is no result yet."""
    text = str(value) if value else "-"
    return styled(text, RESULT_KIND.get(text, ""))


def _release_of(deployment: Mapping[str, Any]) -> str:
    metadata = deployment.get("metadata") or {}
    labels = metadata.get("labels") or {}
    template = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
    return str(labels.get(LABEL_RELEASE) or (template.get("labels") or {}).get(LABEL_RELEASE, ""))


def _deployment_row(deployment: Mapping[str, Any], now: datetime) -> tuple[Text, list[Text | str]]:
    metadata = deployment.get("metadata") or {}
    desired = int((deployment.get("spec") or {}).get("replicas") or 0)
    ready = int((deployment.get("status") or {}).get("readyReplicas") or 0)
    kind = "dim" if desired == 0 else "ok" if ready >= desired else "warn"
    label = styled("⧉", kind) + f" Deployment {metadata.get('name', '-')}"
    return label, [
        styled(f"{ready}/{desired} ready", kind),
        age(metadata.get("creationTimestamp"), now),
    ]


def releases_node(
    status: Mapping[str, Any], deployments: Sequence[Mapping[str, Any]] | None, now: datetime
) -> Node:
    """Stable, then candidate, each with its Deployments; then Deployments of no current
    release (an old one scaling down); then the rollback target."""
    weights = {str(t.get("release")): t.get("weight") for t in status.get("traffic") or []}
    by_release: dict[str, list[Mapping[str, Any]]] = {}
    for deployment in deployments or []:
        by_release.setdefault(_release_of(deployment), []).append(deployment)
    children: list[Node] = []
    for role, ref in (
        ("stable", status.get("stableRelease")),
        ("candidate", status.get("candidateRelease")),
    ):
        if not ref:
            continue
        rid = str(ref.get("id"))
        weight = weights.get(rid)
        share = f"{weight}% of traffic" if weight is not None else "no traffic"
        if role == "candidate" and not weight:
            share += " (preview)"
        icon = styled(OK, "ok") if role == "stable" else styled(INFO, "info")
        children.append(
            node(
                icon + f" {role} {ref.get('version')}",
                f"release {rid}  {share}",
                _deployment_nodes(by_release.pop(rid, []), now),
            )
        )
    leftovers = [d for group in by_release.values() for d in group]
    children += _deployment_nodes(leftovers, now)
    if deployments is None:
        children.append(node(styled("?", "warn") + " Deployments", "could not be read"))
    last_good = status.get("lastGoodRelease") or {}
    if last_good.get("version"):
        children.append(node("↺ rollback target", str(last_good["version"])))
    serving = [f"{t.get('version')} {t.get('weight')}%" for t in status.get("traffic") or []]
    summary = "serving " + ", ".join(serving) if serving else styled("nothing serving", "warn")
    return node("Releases", summary, children)


def _deployment_nodes(deployments: Sequence[Mapping[str, Any]], now: datetime) -> list[Node]:
    rows = [_deployment_row(d, now) for d in deployments]
    details = columns([cells for _, cells in rows])
    return [Node(label, detail) for (label, _), detail in zip(rows, details, strict=True)]


def outcome_nodes(outcomes: Sequence[Mapping[str, Any]], now: datetime) -> list[Node]:
    """One probe or signal a line: result, value, how long it took, when, what it said."""
    rows = []
    for outcome in outcomes:
        value = str(outcome.get("result") or "")
        label = (
            styled(_RESULT_ICON.get(value, "?"), RESULT_KIND.get(value, ""))
            + " "
            + str(outcome.get("name", "-"))
        )
        cells: list[Text | str] = [
            str(outcome.get("kind") or "-"),
            result(value),
            str(outcome.get("value") if outcome.get("value") is not None else "-"),
            seconds(outcome.get("durationSeconds")),
            relative(outcome.get("at"), now),
            str(outcome.get("message") or ""),
        ]
        rows.append((label, cells))
    details = columns([cells for _, cells in rows])
    return [Node(label, detail) for (label, _), detail in zip(rows, details, strict=True)]


def verification_node(status: Mapping[str, Any], now: datetime) -> Node | None:
    verification = status.get("verification")
    if not verification:
        return None
    started, completed = verification.get("startedAt"), verification.get("completedAt")
    when = (
        f"completed {relative(completed, now)}"
        if completed
        else f"running since {relative(started, now)}"
    )
    decision = verification.get("decision")
    summary = (result(decision) + "  " if decision else Text()) + when
    return node("Verification", summary, outcome_nodes(verification.get("probes") or [], now))


def monitoring_node(status: Mapping[str, Any], now: datetime) -> Node | None:
    monitoring = status.get("monitoring")
    if not monitoring:
        return None
    checks = int(monitoring.get("checks") or 0)
    ends = monitoring.get("endsAt")
    watching = status.get("phase") == "Monitoring"
    summary = f"{checks} check{'s' if checks != 1 else ''}, " + (
        f"ends {relative(ends, now)}, next check {relative(monitoring.get('nextCheckAt'), now)}"
        if watching
        else f"ended {relative(ends, now)}"
    )
    return node("Monitoring", summary, outcome_nodes(monitoring.get("signals") or [], now))


def canary_node(status: Mapping[str, Any], now: datetime) -> Node | None:
    canary = status.get("canary")
    if not canary:
        return None
    summary = (
        f"step {canary.get('step', 0)}, weight {canary.get('weight', 0)}%, "
        f"step started {relative(canary.get('stepStartedAt'), now)}"
    )
    children = (
        [node(styled("▲", "warn") + " held", str(canary["held"]))] if canary.get("held") else []
    )
    return node("Canary", summary, children)


def rollback_node(status: Mapping[str, Any], now: datetime) -> Node | None:
    rollback = status.get("rollback")
    if not rollback:
        return None
    target = rollback.get("toVersion") or "nothing (no earlier release)"
    done = rollback.get("completedAt")
    summary = f"{rollback.get('trigger')}: {rollback.get('fromVersion')} → {target}, " + (
        f"done {relative(done, now)}"
        if done
        else f"started {relative(rollback.get('startedAt'), now)}"
    )
    restored = rollback.get("restoredDecision")
    label = styled(BAD, "bad") + " Rollback"
    children = [node("reason", str(rollback.get("reason") or "-"))]
    if restored:
        children.append(
            node(
                "restored release",
                result(restored),
                outcome_nodes(rollback.get("verification") or [], now),
            )
        )
    return node(label, summary, children)
