"""`kubectl aideploy status NAME [--watch]`: read the object, its Deployments and its
Events, draw the tree; with --watch, follow all three with the Kubernetes watch API and
draw again on every change.

A watch, not polling: the apiserver sends each change as it is written, so the view is
as fresh as the cluster and costs nothing while nothing happens. Each collection is listed
then watched from the list's resourceVersion, in a thread of its own; the threads only
hand whole collections to the drawing loop, which owns the screen.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import urllib3

from aideploy.api.constants import KIND, LABEL_DEPLOYMENT, PLURAL
from aideploy.cli.session import CliError, Session
from aideploy.cli.terminal import colour_wanted
from aideploy.cli.tree import Observed, render_tree
from aideploy.kube.rest import ApiError

READ_HINT = "reading needs RBAC permission to get and list aideployments.aideploy.io"
CHILDREN_HINT = "the tree also reads deployments (apps) and events in the namespace"
#: How long one watch request lasts before it is renewed (the apiserver ends it then).
WATCH_SECONDS = 240
#: On a terminal, how often ages ("3m ago") are brought up to date without a change.
TICK_SECONDS = 1.0
_CLEAR = "\033[H\033[2J"


@dataclass(frozen=True)
class _Feed:
    """One collection the view follows: where it is, and how a failure reads."""

    key: str
    path: str
    query: tuple[tuple[str, str], ...]
    plural: str


def _feeds(session: Session, name: str) -> list[_Feed]:
    core = f"/api/v1/namespaces/{session.namespace}"
    return [
        _Feed(
            "object", session.collection(), (("fieldSelector", f"metadata.name={name}"),), PLURAL
        ),
        _Feed(
            "deployments",
            f"/apis/apps/v1/namespaces/{session.namespace}/deployments",
            (("labelSelector", f"{LABEL_DEPLOYMENT}={name}"),),
            "deployments",
        ),
        _Feed(
            "events",
            f"{core}/events",
            (("fieldSelector", f"involvedObject.kind={KIND},involvedObject.name={name}"),),
            "events",
        ),
    ]


def _list(session: Session, feed: _Feed) -> dict[str, Any]:
    listed = session.call(
        "list",
        feed.plural,
        None,
        READ_HINT if feed.key == "object" else CHILDREN_HINT,
        lambda: session.rest.request("GET", feed.path, query=list(feed.query)),
    )
    return listed or {}


def observe_once(session: Session, name: str) -> Observed:
    """The object, then its Deployments and Events; these two are shown as unreadable, not
    as a failure, when this user may not list them."""
    obj = session.get_deployment(name, READ_HINT)
    found: dict[str, list[dict[str, Any]] | None] = {}
    for feed in _feeds(session, name)[1:]:
        try:
            found[feed.key] = list(_list(session, feed).get("items") or [])
        except CliError:
            found[feed.key] = None
    return Observed(obj, found["deployments"], found["events"])


class _Follower(threading.Thread):
    """Lists one collection, then watches it from that list's resourceVersion, renewing
    the watch when the apiserver ends it and listing again when the version has expired
    (410 Gone) or the connection dropped. Every change is put on `updates` as the whole
    collection; a failure it cannot get past is put there as a CliError."""

    def __init__(self, session: Session, feed: _Feed, updates: queue.Queue[Any]) -> None:
        super().__init__(name=f"watch-{feed.key}", daemon=True)
        self._session, self._feed, self._updates = session, feed, updates
        self._items: dict[str, dict[str, Any]] = {}

    def run(self) -> None:
        try:
            retry = threading.Event()
            while True:
                version = self._relist()
                while version is not None:
                    version = self._watch_once(version)
                retry.wait(1.0)  # a dropped connection: list again, at most once a second
        except CliError as error:
            self._updates.put((self._feed.key, error))
        except Exception as error:  # a thread's failure must reach the reader
            self._updates.put(
                (self._feed.key, CliError(f"watching {self._feed.plural} failed: {error}"))
            )

    def _publish(self) -> None:
        self._updates.put((self._feed.key, list(self._items.values())))

    def _relist(self) -> str | None:
        listed = _list(self._session, self._feed)
        self._items = {str(i["metadata"].get("uid")): i for i in listed.get("items") or []}
        self._publish()
        return str((listed.get("metadata") or {}).get("resourceVersion") or "") or None

    def _watch_once(self, version: str) -> str | None:
        hint = READ_HINT if self._feed.key == "object" else CHILDREN_HINT
        return self._session.call(
            "watch", self._feed.plural, None, hint, lambda: self._watch(version)
        )

    def _watch(self, version: str) -> str | None:
        """One watch request; the version to go on from, or None to list again."""
        query = [*self._feed.query, ("resourceVersion", version), ("allowWatchBookmarks", "true")]
        try:
            for event in self._session.rest.watch(self._feed.path, query, WATCH_SECONDS):
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return None  # expired: the list is the way back
                    raise ApiError(
                        int(obj.get("code") or 500), str(obj.get("reason")), str(obj.get("message"))
                    )
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind == "BOOKMARK":
                    continue
                uid = str(obj["metadata"].get("uid"))
                if kind == "DELETED":
                    self._items.pop(uid, None)
                else:
                    self._items[uid] = obj
                self._publish()
        except (urllib3.exceptions.HTTPError, OSError):
            return None  # the connection dropped: list again
        return version


class _Screen:
    """Where frames go. On a terminal each frame replaces the last (cleared, drawn from
    the top); into a pipe or file each new frame is appended after a blank line, and only
    when it differs from the last, so a log of the watch reads as a history."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = _isatty(out)
        self.colour = colour_wanted(out)
        self._last: list[str] | None = None

    def draw(self, lines: Sequence[str]) -> None:
        if lines == self._last:
            return
        if self.tty:
            self.out.write(_CLEAR)
        elif self._last is not None:
            self.out.write("\n")
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()
        self._last = list(lines)


def _isatty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (ValueError, AttributeError):
        return False


def watch(
    session: Session,
    name: str,
    until: str | None,
    out: TextIO | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Draw, then draw again on every change until Ctrl-C (exit 0, the usual way to stop
    watching) or, with `until`, once the phase is reached. Exit 1 when the object is
    deleted before `until` was reached."""
    screen = _Screen(out or sys.stdout)
    first = observe_once(session, name)
    state: dict[str, Any] = {
        "object": [first.obj],
        "deployments": first.deployments,
        "events": first.events,
    }
    updates: queue.Queue[Any] = queue.Queue()
    for feed in _feeds(session, name):
        _Follower(session, feed, updates).start()
    try:
        return _loop(screen, state, updates, name, until, clock)
    except KeyboardInterrupt:
        return 0


def _loop(
    screen: _Screen,
    state: dict[str, Any],
    updates: queue.Queue[Any],
    name: str,
    until: str | None,
    clock: Callable[[], datetime],
) -> int:
    while True:
        objects = state["object"]
        if not objects:
            screen.out.write(f"aideployment {name} was deleted\n")
            screen.out.flush()
            return 1 if until else 0
        observed = Observed(objects[0], state["deployments"], state["events"])
        screen.draw(render_tree(observed, clock(), screen.colour))
        if _reached(state, until):
            return 0
        try:
            item = updates.get(timeout=TICK_SECONDS if screen.tty else None)
        except queue.Empty:
            continue  # a tick: ages move on
        _apply(state, item)
        # A burst of changes is drawn once, but never past the phase asked for: a phase
        # passed through within the burst would otherwise never be seen.
        while not updates.empty() and not _reached(state, until):
            _apply(state, updates.get_nowait())


def _reached(state: dict[str, Any], until: str | None) -> bool:
    objects = state["object"]
    return bool(until and objects and (objects[0].get("status") or {}).get("phase") == until)


def _apply(state: dict[str, Any], item: tuple[str, Any]) -> None:
    key, value = item
    if isinstance(value, CliError):
        if key == "object":
            raise value
        state[key] = None  # the view says it could not be read
        return
    state[key] = value
