"""An object's records as the writer sees them before it extends the chain.

A quorum list of one object's records makes the apiserver read and decode every record
of the namespace from etcd: 17 ms with 80 records in the namespace, and more with each
release, on the path from every approval to its Deployment. The apiserver's watch cache
answers the same list in under a millisecond, but it may lag the store by the last few
writes, and a record missed there would be written again under the same sequence: a
fork of the chain. So what the cache answers is completed and checked first:

- with the records this process wrote itself lately (those the cache may not hold yet);
- against the chain's head that the object's status names (the status is written after
  the records, with the resourceVersion read): when the head is not among them, the
  cache is behind the object, and a quorum list is made instead.

What no check can see is a record that another writer made after the status it last
wrote (or before the object's first status names any), and that the cache has not
delivered yet. Only one replica writes (peering), so that is a writer that died in the
last few milliseconds, or a cache that lags by seconds at that very moment: a quorum
list, made a few milliseconds before the write it prepares, does not close the first
window either. `kubectl aideploy verify` reports a fork if one is ever written.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from aideploy.api.status import RecordRef
from aideploy.kube.records import records_of
from aideploy.kube.resources import Resources
from aideploy.logic.workload import Owner

logger = logging.getLogger(__name__)

#: How long a record this process wrote is added to what the cache answers. The cache
#: lags by milliseconds; a lag beyond this is caught by the check of the head.
OWN_RECORDS_SECONDS: Final = 300.0


def holds(records: list[dict[str, Any]], head: RecordRef) -> bool:
    return any(
        r["metadata"]["name"] == head.name and (r.get("spec") or {}).get("hash") == head.hash
        for r in records
    )


class ChainView:
    def __init__(self, resources: Resources, clock: Callable[[], float] = time.monotonic) -> None:
        self._resources = resources
        self._clock = clock
        #: By object: the records this process wrote, and when.
        self._own: dict[tuple[str, str], list[tuple[float, dict[str, Any]]]] = {}

    def wrote(self, namespace: str, name: str, record: dict[str, Any]) -> None:
        self._own.setdefault((namespace, name), []).append((self._clock(), record))

    def forget(self, namespace: str, name: str) -> None:
        self._own.pop((namespace, name), None)

    async def records(
        self, owner: Owner, head: RecordRef | None, listed: list[dict[str, Any]] | None
    ) -> list[dict[str, Any]]:
        """The object's records, sorted by sequence, to extend its chain from. `listed`:
        as read already (from the cache, or a shared quorum list); `head`: the newest
        record the object's status names."""
        if listed is None:
            listed = await asyncio.to_thread(
                self._resources.list_records, owner.namespace, owner.name, owner.uid, True
            )
        records = self._with_own(owner, listed)
        if head is None or holds(records, head):
            return records
        logger.debug(
            "%s/%s: the watch cache does not hold %s yet; listing from the store",
            owner.namespace,
            owner.name,
            head.name,
        )
        fresh = await asyncio.to_thread(
            self._resources.list_records, owner.namespace, owner.name, owner.uid
        )
        return self._with_own(owner, fresh)

    def _with_own(self, owner: Owner, listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        key = (owner.namespace, owner.name)
        since = self._clock() - OWN_RECORDS_SECONDS
        own = [(at, record) for at, record in self._own.get(key, []) if at >= since]
        if own:
            self._own[key] = own
        else:
            self._own.pop(key, None)
        names = {r["metadata"]["name"] for r in listed}
        missing = [r for _, r in own if r["metadata"]["name"] not in names]
        if not missing:
            return records_of(list(listed), owner.name, owner.uid)
        return records_of([*listed, *missing], owner.name, owner.uid)
