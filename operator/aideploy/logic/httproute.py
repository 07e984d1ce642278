"""The weights of a Gateway API HTTPRoute (gateway.networking.k8s.io): what a canary under
`trafficRouting.gatewayAPI` writes. Pure: from the route as read to the merge patch of its
rules, or the sentence that says why it cannot be written.

Only the backendRefs to the stable Service `<name>` and the canary Service `<name>-preview`
are touched, in every rule that has both; other rules, matches, filters and backends stay as
they are. The patch carries the route's resourceVersion, so a route edited in between is not
overwritten (the apiserver answers 409 and the next reconcile reads it again)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GROUP = "gateway.networking.k8s.io"


@dataclass(frozen=True)
class RouteWeights:
    """What a rule's two backendRefs carry now: (stable, canary)."""

    stable: int
    canary: int


def _is_service_ref(ref: Mapping[str, Any], name: str) -> bool:
    return (
        ref.get("name") == name
        and ref.get("kind", "Service") == "Service"
        and ref.get("group", "") in ("", "core")
        and "namespace" not in ref
    )


def _weight(ref: Mapping[str, Any]) -> int:
    """A backendRef without a weight has weight 1 (Gateway API's default)."""
    value = ref.get("weight", 1)
    return int(value) if isinstance(value, int) else 1


def _split_rules(route: Mapping[str, Any], stable: str, canary: str) -> list[int]:
    """The indexes of the rules that reference both Services."""
    rules = (route.get("spec") or {}).get("rules") or []
    found = []
    for index, rule in enumerate(rules):
        refs = [r for r in (rule.get("backendRefs") or []) if isinstance(r, Mapping)]
        if any(_is_service_ref(r, stable) for r in refs) and any(
            _is_service_ref(r, canary) for r in refs
        ):
            found.append(index)
    return found


def route_problem(
    route: Mapping[str, Any] | None, name: str, stable: str, canary: str
) -> str | None:
    """Why the weights cannot be written to this route; None when they can."""
    if route is None:
        return (
            f"the HTTPRoute {name} named in spec.strategy.canary.trafficRouting does not exist: "
            f"create it with backendRefs to the Services {stable} and {canary} in one rule"
        )
    if not _split_rules(route, stable, canary):
        return (
            f"the HTTPRoute {name} has no rule with backendRefs to both Services {stable} "
            f"and {canary}: add them (same namespace, kind Service) to the rule users reach"
        )
    return None


def current_weights(route: Mapping[str, Any], stable: str, canary: str) -> RouteWeights | None:
    """The weights of the first rule that splits between the two Services."""
    indexes = _split_rules(route, stable, canary)
    if not indexes:
        return None
    rule = route["spec"]["rules"][indexes[0]]
    refs = rule["backendRefs"]
    return RouteWeights(
        stable=sum(_weight(r) for r in refs if _is_service_ref(r, stable)),
        canary=sum(_weight(r) for r in refs if _is_service_ref(r, canary)),
    )


def weights_patch(
    route: Mapping[str, Any], stable: str, canary: str, wanted: RouteWeights
) -> dict[str, Any] | None:
    """The merge patch that gives every splitting rule `wanted`; None when every such rule
    already has it (nothing to write) or no rule splits (see route_problem)."""
    indexes = _split_rules(route, stable, canary)
    rules = copy.deepcopy(list((route.get("spec") or {}).get("rules") or []))
    changed = False
    for index in indexes:
        for ref in rules[index]["backendRefs"]:
            for service, weight in ((stable, wanted.stable), (canary, wanted.canary)):
                if (
                    isinstance(ref, dict)
                    and _is_service_ref(ref, service)
                    and _weight(ref) != weight
                ):
                    ref["weight"] = weight
                    changed = True
    if not changed:
        return None
    metadata = route.get("metadata") or {}
    return {
        "metadata": {"resourceVersion": metadata.get("resourceVersion")},
        "spec": {"rules": rules},
    }
