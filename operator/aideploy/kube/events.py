"""Aggregation of repeated Events, as client-go's EventCorrelator does it.

An object that flaps must not flood its namespace with one Event per occurrence: the same
Event (same involved object, type, reason, message and reporting component) seen again
within the window bumps the `count` and `lastTimestamp` of the Event already posted. Pure
bookkeeping: no I/O and no clock (the time is passed in); the kube layer does the writes and
tells the aggregator what happened to them.

The cache is per process and bounded (LRU), like client-go's: after a restart, or once a
key is evicted, the next occurrence starts a new Event. Calls may come from several threads
(the reconciler posts Events from worker threads), so every method takes the one lock.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_KEYS = 4096
WINDOW = timedelta(minutes=10)
# Event names are DNS subdomains: at most 253 characters, suffix included.
_MAX_NAME = 253


@dataclass(frozen=True)
class EventKey:
    """What makes two Events the same Event (client-go's getEventKey, less the source host)."""

    uid: str
    kind: str
    namespace: str
    name: str
    type: str
    reason: str
    message: str
    reporting_component: str


@dataclass(frozen=True)
class Create:
    """Post a new Event under this name, then call `record_created`."""

    name: str


@dataclass(frozen=True)
class Bump:
    """Patch the Event of this name to this count and the current lastTimestamp."""

    name: str
    count: int


Decision = Create | Bump


@dataclass
class _Posted:
    name: str
    count: int
    last_seen: datetime


class EventAggregator:
    def __init__(self, max_keys: int = MAX_KEYS, window: timedelta = WINDOW) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._max_keys = max_keys
        self._window = window
        self._posted: OrderedDict[EventKey, _Posted] = OrderedDict()
        self._serial = itertools.count()
        self._lock = threading.Lock()

    def decide(self, key: EventKey, now: datetime) -> Decision:
        """Bump the Event posted for `key` within the window (counting this occurrence),
        else Create one under a fresh name. A Create is not remembered until
        `record_created`, so an Event that failed to post is never bumped."""
        with self._lock:
            posted = self._posted.get(key)
            if posted is None or now - posted.last_seen > self._window:
                self._posted.pop(key, None)
                return Create(self._fresh_name(key, now))
            posted.count += 1
            posted.last_seen = max(posted.last_seen, now)
            self._posted.move_to_end(key)
            return Bump(posted.name, posted.count)

    def record_created(self, key: EventKey, name: str, now: datetime) -> None:
        """The Event `name` was posted for `key` with count 1."""
        with self._lock:
            self._posted[key] = _Posted(name, 1, now)
            self._posted.move_to_end(key)
            while len(self._posted) > self._max_keys:
                self._posted.popitem(last=False)

    def forget(self, key: EventKey) -> None:
        """The Event for `key` is gone (a bump answered 404: it expired in the apiserver);
        the next occurrence creates a new one."""
        with self._lock:
            self._posted.pop(key, None)

    def _fresh_name(self, key: EventKey, now: datetime) -> str:
        # client-go's `<name>.<unix nanoseconds in hex>`, plus a serial: several Events may
        # be posted at one (injected, or coarse) instant.
        nanos = max(0, int(now.timestamp() * 1_000_000) * 1000)
        suffix = f".{nanos:x}{next(self._serial):x}"
        return key.name[: _MAX_NAME - len(suffix)].rstrip(".-") + suffix


def transition_event_name(object_name: str, uid: str, transition: str) -> str:
    """The one name the Event of a phase transition can have: of the object's uid (an
    object created again under the same name enters its phases afresh) and the transition."""
    digest = hashlib.sha256(f"{uid}\0{transition}".encode()).hexdigest()[:20]
    suffix = f".t{digest}"
    return object_name[: _MAX_NAME - len(suffix)].rstrip(".-") + suffix
