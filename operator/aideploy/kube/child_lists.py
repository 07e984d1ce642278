"""Children of many objects read with one list per namespace instead of four GETs each.

At a cold start every object is reconciled once, dozens at a time, and each read its
children with four GETs (its labelled Deployments, the Deployment named after it, its
stable and preview Services): most of the apiserver's work. Requests in one namespace
that wait at the same time share one list of its Deployments and one of its Services.
A list is issued only after every request it answers was made, so it is as fresh as
their GETs would have been, and it holds every object of the kind, so a Deployment or
Service of the same name that the object does not own is found as a GET finds it.

A list is worth it only while the namespace is small next to the batch: each is
bounded (`limit`) by what the GETs it replaces cost. A namespace found larger answers
None (the callers make their GETs) and is not listed again until a batch is large
enough. A request alone also answers None: a single approval keeps its four GETs, made
at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aideploy.kube.resources import Resources
from aideploy.kube.shared_lists import SharedLists

#: Listed items that cost about what one object's four GETs cost (the apiserver's CPU
#: per listed item is a fraction of a GET's).
ITEMS_PER_OBJECT = 8


@dataclass(frozen=True)
class Listed:
    """Every Deployment and Service in a namespace, read after the request was made."""

    deployments: tuple[dict[str, Any], ...]
    services: tuple[dict[str, Any], ...]


class ChildLists(SharedLists[Listed]):
    def __init__(self, resources: Resources) -> None:
        super().__init__()
        self._resources = resources
        #: Items last found in each namespace (both kinds), or a lower bound when a
        #: bounded list did not hold them all.
        self._sizes: dict[str, int] = {}

    async def _list(self, namespace: str, requests: int) -> Listed | None:
        budget = requests * ITEMS_PER_OBJECT
        if self._sizes.get(namespace, 0) > budget:
            return None
        (deployments, more_deployments), (services, more_services) = await asyncio.gather(
            asyncio.to_thread(self._resources.list_kind, "Deployment", namespace, budget),
            asyncio.to_thread(self._resources.list_kind, "Service", namespace, budget),
        )
        if more_deployments or more_services:
            self._sizes[namespace] = budget + 1
            return None
        self._sizes[namespace] = len(deployments) + len(services)
        return Listed(tuple(deployments), tuple(services))
