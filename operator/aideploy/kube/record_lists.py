"""Records of many objects read with one list per namespace instead of one list each.

A list of one object's records by label still makes the apiserver read and decode every
record of the namespace from etcd, to send back a few: in a burst of a thousand
approvals in one namespace, those lists were nine tenths of the apiserver's time, and
grew with every record the burst wrote. Approvals reconciled at the same moment share
one quorum list of the namespace's records instead, each picking its own from it
(aideploy.kube.shared_lists: listed after every request it answers, so as fresh as
their own lists).

The shared list is bounded, so that the operator never holds a namespace's whole
history at once: a namespace with more records than the batch warrants answers None,
and its callers list their own by label.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aideploy.api.constants import RECORD_KIND
from aideploy.kube.resources import Resources
from aideploy.kube.shared_lists import SharedLists

#: Records a shared list may hold per request it answers (an object's chain is a few).
RECORDS_PER_REQUEST = 64
#: Never more than this many records decoded at once for one list.
MAX_RECORDS = 5000


class RecordLists(SharedLists[list[dict[str, Any]]]):
    def __init__(self, resources: Resources) -> None:
        super().__init__()
        self._resources = resources
        #: Records last found in each namespace, or a lower bound when a bounded list
        #: did not hold them all.
        self._sizes: dict[str, int] = {}

    async def _list(self, namespace: str, requests: int) -> list[dict[str, Any]] | None:
        budget = min(requests * RECORDS_PER_REQUEST, MAX_RECORDS)
        if self._sizes.get(namespace, 0) > budget:
            return None
        items, more = await asyncio.to_thread(
            self._resources.list_kind, RECORD_KIND, namespace, budget
        )
        if more:
            self._sizes[namespace] = budget + 1
            return None
        self._sizes[namespace] = len(items)
        return items
