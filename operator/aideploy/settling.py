"""Which watch events need no reconcile: the ones that bring back the operator's own write.

Every status write comes back as a watch event. Reconciling it again cost the object's
read and its children's (five GETs, before the children came from the informers' cache)
only to find nothing to do: at a cold start that was half of the apiserver's work. After
a write the reconciler decides once more, in process, on the object the write returned
and the children it has just read; when that decision writes nothing, the object is
*settled* at that resourceVersion. An event that brings back exactly that resourceVersion
is then skipped. Anything else is reconciled in full: an event of another resourceVersion
(a person's change), a child's event, a dependent's wake-up, a timer (the deadline the
settled decision asked for), and any event that came with one of those. Bookkeeping only:
no I/O, no clock (times are passed in).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

ObjectKey = tuple[str, str]  # (namespace, name), as the controller uses it


@dataclass(frozen=True)
class Settled:
    """An object as this process wrote it, with nothing left to do until `due`."""

    resource_version: str
    due: datetime | None


@dataclass(frozen=True)
class Wake:
    """What a reconcile is for: `skip` it (returning `requeue`), or reconcile in full;
    `changed` when an event brought a resourceVersion other than the one settled (a
    person's change, typically an approval: its records are worth reading at once)."""

    skip: bool
    requeue: timedelta | None = None
    changed: bool = False
    resource_version: str | None = None
    #: The object as that event brought it (only with `changed`), read instead of a GET.
    body: dict[str, Any] | None = None


class Settling:
    def __init__(self) -> None:
        self._settled: dict[ObjectKey, Settled] = {}
        #: Why each object is due for a reconcile: the resourceVersion of the watch events
        #: that woke it, or None once anything else did (then it is reconciled in full).
        self._woken: dict[ObjectKey, str | None] = {}
        #: The latest event's object, as compact JSON, for a reconcile to start from
        #: instead of reading it again: kept for an object not yet reconciled by this
        #: process (at a start, the listed objects: a GET each saved) and for a settled
        #: object someone changed (an approval). Packed: at a start every object is
        #: pending at once, and its JSON is about a quarter of its decoded size.
        self._bodies: dict[ObjectKey, bytes] = {}
        #: Objects whose reconciles this process has started (their later events are
        #: read fresh unless they bring a person's change to a settled object).
        self._taken: set[ObjectKey] = set()

    def event(
        self, key: ObjectKey, resource_version: object, body: dict[str, Any] | None = None
    ) -> None:
        """A watch event of the object itself, at this resourceVersion."""
        if not isinstance(resource_version, str) or not resource_version:
            self.nudge(key)
            self._bodies.pop(key, None)
            return
        if key not in self._woken or self._woken[key] is not None:
            self._woken[key] = resource_version
        settled = self._settled.get(key)
        if body is not None and (
            key not in self._taken
            or (settled is not None and settled.resource_version != resource_version)
        ):
            self._bodies[key] = json.dumps(body, separators=(",", ":")).encode()
        else:
            self._bodies.pop(key, None)

    def nudge(self, key: ObjectKey) -> None:
        """Anything but the object's own event (a child, a dependent): reconcile in full."""
        self._woken[key] = None

    def take(self, key: ObjectKey, now: datetime) -> Wake:
        """At the start of a reconcile: what woke the object, consumed. A reconcile woken
        by its timer alone (no event since the last) is never skipped."""
        self._taken.add(key)
        woken = self._woken.pop(key, None)
        packed = self._bodies.pop(key, None)
        body = None if packed is None else json.loads(packed)
        settled = self._settled.get(key)
        if settled is None:
            return Wake(skip=False, body=body)
        if woken is None:
            return Wake(skip=False)
        if settled.resource_version != woken:
            return Wake(skip=False, changed=True, body=body)
        if settled.due is not None and settled.due <= now:
            return Wake(skip=False)
        requeue = None if settled.due is None else settled.due - now
        return Wake(skip=True, requeue=requeue, resource_version=woken)

    def settle(self, key: ObjectKey, resource_version: str, due: datetime | None) -> None:
        self._settled[key] = Settled(resource_version, due)

    def unsettle(self, key: ObjectKey) -> None:
        """The last reconcile left something to do, or it is unknown what it left."""
        self._settled.pop(key, None)

    def forget(self, key: ObjectKey) -> None:
        self._settled.pop(key, None)
        self._woken.pop(key, None)
        self._bodies.pop(key, None)
        self._taken.discard(key)
