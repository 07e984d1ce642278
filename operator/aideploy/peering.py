"""Only the active replica reconciles.

kopf's peering pauses a standby replica's watches, but not this operator's own per-object
workers and timers: a replica that was active and then outranked (an older replica came
back) would keep reconciling beside the new active one. Before each reconcile the worker
asks the same question kopf asks, from the same peering object: is a live peer of at least
our priority there? Then it stands by.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aideploy.kube.rest import Rest

PEERING_GROUP = "/apis/kopf.dev/v1"
CACHE_SECONDS = 5.0


def outranked_until(
    peers: Mapping[str, Mapping[str, Any]], identity: str, priority: int, now: datetime
) -> datetime | None:
    """Until when live peers other than us with a priority at least ours hold us back (kopf
    pauses on both: a higher one wins, an equal one pauses everybody): the expiry of the
    last of their keep-alives, unless renewed. None when no such peer is live."""
    until: datetime | None = None
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
        expiry = lastseen + lifetime
        if expiry > now and peer_priority >= priority:
            until = expiry if until is None else max(until, expiry)
    return until


def _utcnow() -> datetime:
    return datetime.now(UTC)


class PeeringGuard:
    def __init__(
        self,
        rest: Rest,
        name: str,
        identity: str,
        priority: int,
        clusterwide: bool,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._rest = rest
        self._name = name
        self._identity = identity
        self._priority = priority
        self._clusterwide = clusterwide
        self._clock = clock
        #: Per namespace ("" cluster-wide): the verdict, when it was read, until when it
        #: holds (a clock set back makes it stale too).
        self._cache: dict[str, tuple[bool, datetime, datetime]] = {}

    def _path(self, namespace: str) -> str:
        if self._clusterwide:
            return f"{PEERING_GROUP}/clusterkopfpeerings/{self._name}"
        return f"{PEERING_GROUP}/namespaces/{namespace}/kopfpeerings/{self._name}"

    async def active(self, namespace: str) -> bool:
        """True when this replica should work on objects of `namespace` now."""
        key = "" if self._clusterwide else namespace
        cached = self._cache.get(key)
        if cached is not None and cached[1] <= self._clock() < cached[2]:
            return cached[0]
        peering = await asyncio.to_thread(self._rest.request, "GET", self._path(namespace))
        now = self._clock()
        # Without its peering object kopf keeps every replica paused: so do we.
        peers = (peering or {}).get("status") or {}
        until = outranked_until(peers, self._identity, self._priority, now)
        verdict = peering is not None and until is None
        # Standing by ends when the outranking keep-alive expires, as kopf's pause does:
        # kept any longer, it would turn away the reconciles kopf's resume triggers then.
        expiry = now + timedelta(seconds=CACHE_SECONDS)
        self._cache[key] = (verdict, now, expiry if until is None else min(expiry, until))
        return verdict
