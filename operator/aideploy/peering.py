"""Only the active replica reconciles.

kopf's peering pauses a standby replica's watches, but not this operator's own per-object
workers and timers: a replica that was active and then outranked (an older replica came
back) would keep reconciling beside the new active one. Before each reconcile the worker
asks the same question kopf asks, from the same peering object: is a live peer of at least
our priority there? Then it stands by.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aideploy.kube.rest import Rest

PEERING_GROUP = "/apis/kopf.dev/v1"
CACHE_SECONDS = 5.0


def outranked(
    peers: Mapping[str, Mapping[str, Any]], identity: str, priority: int, now: datetime
) -> bool:
    """Whether a live peer other than us has a priority at least ours (kopf pauses on
    both: a higher one wins, an equal one pauses everybody)."""
    for peer, info in peers.items():
        if peer == identity or not isinstance(info, Mapping):
            continue
        try:
            lastseen = datetime.fromisoformat(str(info["lastseen"]))
            lifetime = timedelta(seconds=int(info.get("lifetime", 60)))
            peer_priority = int(info.get("priority", 0))
        except (KeyError, ValueError, TypeError):
            continue
        if lastseen.tzinfo is None:
            lastseen = lastseen.replace(tzinfo=UTC)
        if lastseen + lifetime > now and peer_priority >= priority:
            return True
    return False


class PeeringGuard:
    def __init__(
        self, rest: Rest, name: str, identity: str, priority: int, clusterwide: bool
    ) -> None:
        self._rest = rest
        self._name = name
        self._identity = identity
        self._priority = priority
        self._clusterwide = clusterwide
        self._cache: dict[str, tuple[float, bool]] = {}

    def _path(self, namespace: str) -> str:
        if self._clusterwide:
            return f"{PEERING_GROUP}/clusterkopfpeerings/{self._name}"
        return f"{PEERING_GROUP}/namespaces/{namespace}/kopfpeerings/{self._name}"

    async def active(self, namespace: str) -> bool:
        """True when this replica should work on objects of `namespace` now."""
        key = "" if self._clusterwide else namespace
        cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        peering = await asyncio.to_thread(self._rest.request, "GET", self._path(namespace))
        # Without its peering object kopf keeps every replica paused: so do we.
        peers = (peering or {}).get("status") or {}
        verdict = peering is not None and not outranked(
            peers, self._identity, self._priority, datetime.now(UTC)
        )
        self._cache[key] = (time.monotonic(), verdict)
        return verdict
