"""How a canary's weight reaches users. Pure, like traffic.py, whose rules it keeps: at
weight 0 a canary is laid out as blue-green (the candidate behind the preview Service only),
and once promoted it is blue-green live (the previous release on standby). In between:

- with `trafficRouting.gatewayAPI.httpRoute`, the stable Service keeps selecting the
  previous release, the preview Service the candidate, and the HTTPRoute's backendRefs to
  the two carry (100 - weight, weight);
- by replica ratio, the stable Service selects the pods of both releases (and of no other:
  it waits until every other release's pods are gone); the candidate runs
  ceil(N * weight / (100 - weight)) pods beside the previous release's N, at most N, so
  the share is approximate and at most 50%. Status reports the share of pods, not the asked
  weight.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aideploy.api.constants import LABEL_RELEASE
from aideploy.api.digest import release_id
from aideploy.api.status import Release, TrafficShare
from aideploy.logic.httproute import RouteWeights, current_weights, route_problem, weights_patch
from aideploy.logic.topology import (
    BLUE_GREEN,
    CANARY,
    Routing,
    Topology,
    WorkloadChanges,
    pod_labels,
    preview_name,
    replicas_of,
    selector_of,
    share,
)
from aideploy.logic.traffic import Router
from aideploy.logic.workload import release_selector, selector_labels


def ratio_replicas(replicas: int, weight: int) -> int:
    """The candidate's pods for `weight` percent beside `replicas` of the previous release."""
    if weight <= 0:
        return 0
    if weight >= 100:
        return replicas
    return max(1, min(replicas, math.ceil(replicas * weight / (100 - weight))))


def _selects(service: Mapping[str, Any], deployment: Mapping[str, Any]) -> bool:
    selector = selector_of(service) or {}
    labels = pod_labels(deployment)
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _same(a: Release | None, b: Release | None) -> bool:
    return a is not None and b is not None and a.digest == b.digest


class CanaryRouter(Router):
    def route(self, topology: Topology) -> Routing:
        if topology.mode == CANARY and topology.route is None:
            return self._by_ratio(topology)
        if topology.mode == CANARY:
            weight = self._weight(topology)
            routing = super().route(self._laid_out(topology, weight))
        else:
            weight = 0
            routing = super().route(topology)
        if topology.route is None:
            return routing
        # Any strategy: a route a canary wrote weights to is put back to (100, 0).
        return self._with_route(routing, topology, topology.route, weight)

    def _weight(self, topology: Topology) -> int:
        both = topology.stable is not None and topology.candidate is not None
        return topology.weight if both else 0

    @staticmethod
    def _laid_out(topology: Topology, weight: int) -> Topology:
        """The blue-green shape at this weight: not yet promoted, or promoted (the
        preview Service keeps selecting the candidate until the route has left it)."""
        shape = replace(topology, mode=BLUE_GREEN, weight=0, route=None)
        if weight >= 100:
            return replace(shape, stable=topology.candidate, standby=topology.stable)
        return shape

    # -- HTTPRoute -------------------------------------------------------------------------

    def _with_route(
        self, routing: Routing, topology: Topology, route_name: str, weight: int
    ) -> Routing:
        stable_name, canary_name = self.owner.name, preview_name(self.owner)
        route = self.workloads.route
        problem = route_problem(route, route_name, stable_name, canary_name)
        if problem is not None or route is None:
            return replace(routing, blocked=problem if topology.mode == CANARY else None)
        current = current_weights(route, stable_name, canary_name)
        if weight >= 100:
            # Everyone goes to the candidate once the stable Service selects it; until then
            # the weights stay where the last step left them.
            promoted = _same(routing.stable, topology.candidate)
            wanted = RouteWeights(100, 0) if promoted or current is None else current
        else:
            wanted = RouteWeights(100 - weight, weight)
        changes = routing.changes
        if current is not None and current.canary > 0 and wanted.canary == 0:
            # Users still reach the preview Service through the route: it keeps selecting
            # what it selects, and those pods keep running, until the route (written
            # first) is read back with nothing on it.
            changes = self._keep_preview(changes)
        first = (
            current is not None
            and wanted.canary < current.canary
            and not any(s["metadata"]["name"] == stable_name for s in changes.services)
        )
        changes = replace(
            changes,
            route_patch=weights_patch(route, stable_name, canary_name, wanted),
            route_name=route_name,
            route_first=first,
        )
        return replace(
            routing, changes=changes, traffic=self._route_traffic(routing, topology, wanted)
        )

    def _keep_preview(self, changes: WorkloadChanges) -> WorkloadChanges:
        preview = preview_name(self.owner)
        live = self.workloads.services.get(preview)
        selected = {
            name
            for name, deployment in self.workloads.deployments.items()
            if live is not None and _selects(live, deployment)
        }
        return replace(
            changes,
            services=tuple(s for s in changes.services if s["metadata"]["name"] != preview),
            scale_downs=tuple(n for n in changes.scale_downs if n not in selected),
            deletes=tuple(
                d
                for d in changes.deletes
                if not (d[0] == "Deployment" and d[1] in selected) and d != ("Service", preview)
            ),
        )

    @staticmethod
    def _route_traffic(
        routing: Routing, topology: Topology, wanted: RouteWeights
    ) -> tuple[TrafficShare, ...]:
        shares: list[TrafficShare] = []
        if routing.stable is not None and wanted.stable:
            shares.append(share(routing.stable, wanted.stable))
        candidate = topology.candidate
        if candidate is not None and not _same(routing.stable, candidate):
            shares.append(share(candidate, wanted.canary))
        return tuple(shares)

    # -- replica ratio ---------------------------------------------------------------------

    def _by_ratio(self, topology: Topology) -> Routing:
        weight = self._weight(topology)
        previous, candidate = topology.stable, topology.candidate
        live = selector_of(self.workloads.services.get(self.owner.name)) or {}
        if previous is None or candidate is None or weight <= 0:
            return super().route(self._laid_out(topology, 0))
        if weight >= 100 and live.get(LABEL_RELEASE) == release_id(candidate.digest):
            return super().route(self._laid_out(topology, 100))
        replicas = topology.replicas
        prior_pods = replicas_of(previous, replicas)
        canary_pods = ratio_replicas(replicas, weight)
        prior = self.wanted(previous, prior_pods, BLUE_GREEN)
        canary = self.wanted(candidate, canary_pods, BLUE_GREEN)
        deployments = tuple(w.manifest for w in (prior, canary) if not w.current)
        keep = {prior.name, canary.name}
        scale_downs, deletes = self._retire(keep, None)
        others_gone = all(
            name in keep or ("Deployment", name) in deletes for name in self.workloads.deployments
        )
        candidate_only = release_selector(self.owner, release_id(candidate.digest))
        if weight >= 100 and canary.ready:
            selector = candidate_only
        elif prior.ready and canary.ready and others_gone:
            selector = selector_labels(self.owner)  # both releases' pods
        else:
            selector = live or release_selector(self.owner, release_id(previous.digest))
        services, service_deletes = self._services(selector, previous, candidate, with_preview=True)
        if selector == candidate_only:
            traffic: tuple[TrafficShare, ...] = (share(candidate, 100),)
        elif LABEL_RELEASE in selector:
            traffic = (share(previous, 100), share(candidate, 0))
        else:
            pods = round(100 * canary_pods / (prior_pods + canary_pods))
            traffic = (share(previous, 100 - pods), share(candidate, pods))
        return Routing(
            WorkloadChanges(deployments, services, scale_downs, deletes + service_deletes),
            stable=candidate if selector == candidate_only else previous,
            candidate=candidate,
            traffic=traffic,
        )
