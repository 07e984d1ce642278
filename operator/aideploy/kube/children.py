"""The reads a reconcile makes besides the object: its children and its staging object
(blocking reads, run in threads, all at once)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from aideploy.api.constants import KIND, LABEL_DEPLOYMENT
from aideploy.kube.child_cache import ChildCache
from aideploy.kube.child_lists import ChildLists, Listed
from aideploy.kube.observe import owner_of, workloads
from aideploy.kube.record_lists import RecordLists
from aideploy.kube.records import records_of
from aideploy.kube.resources import Resources
from aideploy.logic.topology import Workloads, preview_name
from aideploy.logic.workload import Owner


def route_name(obj: dict[str, Any]) -> str | None:
    """The HTTPRoute a canary's weights go to, as the raw spec names it, else the one a
    canary wrote weights to before (status.canary.route), which is put back to (100, 0)."""
    strategy = (obj.get("spec") or {}).get("strategy") or {}
    routing = ((strategy.get("canary") or {}).get("trafficRouting") or {}).get("gatewayAPI") or {}
    earlier = ((obj.get("status") or {}).get("canary") or {}).get("route")
    name = routing.get("httpRoute") or earlier
    return name if isinstance(name, str) and name else None


async def read_children(
    resources: Resources,
    obj: dict[str, Any],
    lists: ChildLists | None = None,
    cache: ChildCache | None = None,
) -> Workloads:
    """The Deployments labelled as this object's, the one named after it (which may be
    someone else's), and the stable and preview Services. From the informers' cache while
    they list and watch without a gap (aideploy.kube.child_cache); else from a list shared
    with other objects of the namespace when `lists` has one (aideploy.kube.child_lists),
    else read at once, not one after the other."""
    owner = owner_of(obj)
    get = resources.get
    route = route_name(obj)
    services = (owner.name, preview_name(owner))
    cached = None if cache is None else cache.children(owner.namespace, owner.name, services)

    async def read_route() -> dict[str, Any] | None:
        if route is None:
            return None
        return await asyncio.to_thread(get, "HTTPRoute", owner.namespace, route)

    async def read_own() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if cached is not None:
            return cached
        listed = None if lists is None else await lists.read(owner.namespace)
        if listed is not None:
            return from_lists(owner, listed)
        labelled, named, stable, preview = await asyncio.gather(
            asyncio.to_thread(resources.list_children, "Deployment", owner.namespace, owner.name),
            asyncio.to_thread(get, "Deployment", owner.namespace, owner.name),
            asyncio.to_thread(get, "Service", owner.namespace, owner.name),
            asyncio.to_thread(get, "Service", owner.namespace, preview_name(owner)),
        )
        if named is not None and all(d["metadata"]["name"] != owner.name for d in labelled):
            labelled.append(named)
        return labelled, [s for s in (stable, preview) if s is not None]

    (deployments, services), found_route = await asyncio.gather(read_own(), read_route())
    return replace(workloads(owner, deployments, services), route=found_route)


def from_lists(owner: Owner, listed: Listed) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What the four GETs would have answered, picked from the namespace's lists: the
    Deployments labelled as the owner's, then the one named after it if not labelled so;
    the stable, then the preview Service."""
    labelled = [
        d
        for d in listed.deployments
        if ((d["metadata"].get("labels") or {}).get(LABEL_DEPLOYMENT)) == owner.name
    ]
    labelled += [
        d
        for d in listed.deployments
        if d["metadata"]["name"] == owner.name and all(d is not mine for mine in labelled)
    ]
    by_name = {s["metadata"]["name"]: s for s in listed.services}
    wanted = (owner.name, preview_name(owner))
    return labelled, [by_name[name] for name in wanted if name in by_name]


async def read_staging(resources: Resources, obj: dict[str, Any]) -> dict[str, Any] | None:
    """The staging object a production spec promotes from, read fresh each time."""
    promotion = (obj.get("spec") or {}).get("promotion") or {}
    staging_name = promotion.get("fromStaging")
    if not isinstance(staging_name, str) or not staging_name:
        return None
    return await asyncio.to_thread(resources.get, KIND, obj["metadata"]["namespace"], staging_name)


async def read_records(
    resources: Resources, obj: dict[str, Any], wanted: bool, lists: RecordLists | None = None
) -> list[dict[str, Any]] | None:
    """The object's records when `wanted` (read beside its children when a plan is likely
    to write records), else None (read later, if the plan writes any). From a list shared
    with other objects of the namespace when `lists` has one (aideploy.kube.record_lists),
    else from the apiserver's watch cache: the writer checks them against the chain's
    head before it extends the chain (aideploy.carry_out)."""
    if not wanted:
        return None
    owner = owner_of(obj)
    listed = None if lists is None else await lists.read(owner.namespace)
    if listed is not None:
        return records_of(listed, owner.name, owner.uid)
    return await asyncio.to_thread(
        resources.list_records, owner.namespace, owner.name, owner.uid, True
    )
