"""The Deployments and Services of the watched namespaces, kept by a list and a watch of
each kind (an informer), so that a reconcile finds its children without a request.

Before this, every reconcile read its children with four requests made at once (its
labelled Deployments, the Deployment named after it, its stable and preview Services):
on a 2-CPU node, a third of the time from an approval to its Deployment.

What the cache holds is what the watch has delivered: a few milliseconds behind the
apiserver, as in every controller that reads from an informer. A reconcile that finds a
child missing which was just written applies it again (server-side apply: no change);
a child changed meanwhile wakes its owner once the cache holds the change, never before.
Objects that are neither labelled as an AIDeployment's nor owned by one are kept as
their name and owners only: enough to see that a name is taken by someone else. Such an
object created in the last few milliseconds may not be in the cache yet; before, it
could as well be created between the GET and the apply, a window of the same size.

The cache answers only while each kind is listed and watched without a gap; after an
error (a dropped connection, a 403) it answers None until a fresh list, and the caller
makes its own reads. A list after a gap wakes the owners of every child it finds
changed or gone, which the watch could not tell.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aideploy.api.constants import KIND, LABEL_DEPLOYMENT, LABEL_MANAGED_BY, MANAGED_BY_VALUE
from aideploy.kube.rest import ApiError, Rest

logger = logging.getLogger(__name__)

#: Seconds a watch lasts before the apiserver ends it (and it is made again from where it
#: stopped).
WATCH_SECONDS: Final = 300
PAGE: Final = 500
#: Seconds before a list is tried again after an error; doubled up to the maximum (while
#: the cache does not answer, no change wakes an owner: kept short).
RETRY_SECONDS: Final = 1.0
MAX_RETRY_SECONDS: Final = 5.0
#: A watch that the apiserver ends sooner than this is made again only after a pause.
SHORT_WATCH_SECONDS: Final = 1.0

#: kind -> (apiVersion, path of the collection relative to the API group's root).
KINDS: Final = {
    "Deployment": ("apps/v1", "/apis/apps/v1", "deployments"),
    "Service": ("v1", "/api/v1", "services"),
}

Wake = Callable[[str, str], None]  # (namespace, owner name) of a changed child


class _ExpiredError(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


def _version(obj: dict[str, Any]) -> int | None:
    value = str((obj.get("metadata") or {}).get("resourceVersion"))
    return int(value) if value.isdigit() else None


def _owner(obj: dict[str, Any]) -> str | None:
    """The AIDeployment a child of ours belongs to, by its labels."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if labels.get(LABEL_MANAGED_BY) != MANAGED_BY_VALUE:
        return None
    owner = labels.get(LABEL_DEPLOYMENT)
    return owner if isinstance(owner, str) and owner else None


def compact(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """What a reconcile may read of a child: the whole object (without managedFields)
    when it is labelled as, or owned by, an AIDeployment; else its name and owners."""
    metadata = obj.get("metadata") or {}
    labels = metadata.get("labels") or {}
    owners = metadata.get("ownerReferences") or []
    api_version = KINDS[kind][0]
    if LABEL_DEPLOYMENT in labels or any(ref.get("kind") == KIND for ref in owners):
        kept = {k: v for k, v in metadata.items() if k != "managedFields"}
        return {**obj, "apiVersion": api_version, "kind": kind, "metadata": kept}
    stub = {
        k: metadata[k]
        for k in ("name", "namespace", "uid", "resourceVersion", "labels", "ownerReferences")
        if k in metadata
    }
    return {"apiVersion": api_version, "kind": kind, "metadata": stub}


@dataclass
class _Store:
    """One kind's objects in one scope (a namespace, or all of them)."""

    items: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    #: (namespace, owner label) -> names of the Deployments labelled as the owner's.
    labelled: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    synced: bool = False

    def put(self, key: tuple[str, str], obj: dict[str, Any]) -> None:
        self.remove(key)
        self.items[key] = obj
        owner = ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_DEPLOYMENT)
        if isinstance(owner, str):
            self.labelled.setdefault((key[0], owner), set()).add(key[1])

    def remove(self, key: tuple[str, str]) -> dict[str, Any] | None:
        old = self.items.pop(key, None)
        labels = ((old or {}).get("metadata") or {}).get("labels") or {}
        owner = labels.get(LABEL_DEPLOYMENT)
        if isinstance(owner, str) and (names := self.labelled.get((key[0], owner))):
            names.discard(key[1])
            if not names:
                del self.labelled[(key[0], owner)]
        return old


class _Informer:
    """A list, then a watch from its resourceVersion, of one kind in one scope; again
    from a fresh list after any gap. Runs in a thread of its own."""

    def __init__(
        self,
        rest: Rest,
        kind: str,
        namespace: str | None,
        store: _Store,
        lock: threading.Lock,
        wake: Wake | None,
        stopping: threading.Event,
    ) -> None:
        self._rest = rest
        self.kind = kind
        _api_version, root, plural = KINDS[kind]
        self._path = f"{root}/namespaces/{namespace}/{plural}" if namespace else f"{root}/{plural}"
        self.scope = namespace or "all namespaces"
        self._store = store
        self._lock = lock
        self._wake = wake
        self._stopping = stopping
        self._listed = False
        #: Set once reconciles run: from then on, a first list wakes what it holds too.
        self.serving = threading.Event()

    def run(self) -> None:
        delay = RETRY_SECONDS
        failing = False
        while not self._stopping.is_set():
            try:
                version = self._list()
                if failing:
                    logger.info("%ss of %s are watched again", self.kind, self.scope)
                failing, delay = False, RETRY_SECONDS
                while not self._stopping.is_set():
                    version = self._watch(version)
            except _ExpiredError:
                continue  # list again at once: nothing is wrong but the watch's age
            except ApiError as error:
                if error.status == 410:
                    continue  # the watch's resourceVersion is too old: as above
                failing, delay = self._failed(error, failing, delay)
            except Exception as error:  # any failure: read with requests until a fresh list
                failing, delay = self._failed(error, failing, delay)

    def _failed(self, error: Exception, failing: bool, delay: float) -> tuple[bool, float]:
        """Stop answering, say so once per streak of failures, and wait before a list."""
        with self._lock:
            self._store.synced = False
        if self._stopping.is_set():
            return failing, delay
        if not failing:
            logger.warning(
                "%ss of %s cannot be watched (%s: %s); reconciles read them with requests "
                "until the watch works again",
                self.kind,
                self.scope,
                type(error).__name__,
                error,
            )
        self._stopping.wait(delay)
        return True, min(delay * 2, MAX_RETRY_SECONDS)

    def _list(self) -> str:
        items, version = self._rest.list_all(self._path, page_size=PAGE)
        fresh = {
            (str(o["metadata"].get("namespace")), str(o["metadata"]["name"])): compact(self.kind, o)
            for o in items
        }
        with self._lock:
            store = self._store
            changed = [
                seen
                for key in store.items.keys() | fresh.keys()
                if _version(store.items.get(key) or {}) != _version(fresh.get(key) or {})
                or (key in store.items) != (key in fresh)
                for seen in (store.items.get(key), fresh.get(key))
                if seen is not None
            ]
            for key in list(store.items):
                store.remove(key)
            for key, obj in fresh.items():
                store.put(key, obj)
            store.synced = True
        # A first list made before reconciles ran is what each first reconcile reads.
        if self._listed or self.serving.is_set():
            self._woken(*changed)
        self._listed = True
        return version

    def _watch(self, version: str) -> str:
        query = [("resourceVersion", version), ("allowWatchBookmarks", "true")]
        began = time.monotonic()
        for event in self._rest.watch(self._path, query, WATCH_SECONDS):
            if self._stopping.is_set():
                break
            version = self._take(event) or version
        if time.monotonic() - began < SHORT_WATCH_SECONDS:
            self._stopping.wait(SHORT_WATCH_SECONDS)  # not a busy loop of empty watches
        return version

    def _take(self, event: dict[str, Any]) -> str | None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _ExpiredError
            raise ApiError(int(obj.get("code") or 500), str(obj.get("reason")), str(obj))
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind == "BOOKMARK":
            return str(version) if version else None
        metadata = obj.get("metadata") or {}
        key = (str(metadata.get("namespace")), str(metadata.get("name")))
        with self._lock:
            old = self._store.remove(key)
            if kind != "DELETED":
                self._store.put(key, compact(self.kind, obj))
        # After the store holds the change: the owner's reconcile reads it.
        self._woken(obj, *([old] if old is not None else []))
        return str(version) if version else None

    def _woken(self, *changed: dict[str, Any]) -> None:
        """Wake the owners of changed children of ours (a Service someone else edited
        too: the owner decides again on what it now holds)."""
        if self._wake is None:
            return
        owners = {
            (str(obj["metadata"].get("namespace")), owner)
            for obj in changed
            if (owner := _owner(obj)) is not None
        }
        for namespace, owner in sorted(owners):
            self._wake(namespace, owner)


class ChildCache:
    def __init__(
        self, rest: Rest, namespaces: Sequence[str] = (), wake: Wake | None = None
    ) -> None:
        """`namespaces`: those watched (none: all of them). `wake` is called, from the
        informers' threads, with the owner of each Deployment of ours that changed."""
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._scoped = bool(namespaces)
        scopes: list[str | None] = list(namespaces) or [None]
        self._stores: dict[tuple[str, str | None], _Store] = {
            (kind, scope): _Store() for kind in KINDS for scope in scopes
        }
        self._informers = [
            _Informer(rest, kind, scope, store, self._lock, wake, self._stopping)
            for (kind, scope), store in self._stores.items()
        ]
        self._threads: list[threading.Thread] = []

    @staticmethod
    def connections(namespaces: Sequence[str]) -> int:
        """The connections its client keeps: one per watch, and one for the lists."""
        return len(KINDS) * max(1, len(namespaces)) + 1

    def wait_listed(self, timeout: float) -> bool:
        """Whether every kind was listed in every scope within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if all(store.synced for store in self._stores.values()):
                    return True
            if time.monotonic() >= deadline or self._stopping.wait(0.02):
                return False

    def serve(self) -> None:
        """Reconciles run from now on: a first list that comes later wakes what it holds."""
        for informer in self._informers:
            informer.serving.set()

    def start(self) -> None:
        for informer in self._informers:
            thread = threading.Thread(
                target=informer.run, name=f"informer:{informer.kind}:{informer.scope}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 1.0) -> None:
        """Ask the informers to stop; a thread in a quiet watch ends with the process."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def synced(self, namespace: str) -> bool:
        with self._lock:
            return all(self._store(kind, namespace).synced for kind in KINDS)

    def _store(self, kind: str, namespace: str) -> _Store:
        return self._stores.get((kind, namespace if self._scoped else None)) or _Store()

    def children(
        self, namespace: str, owner: str, service_names: Sequence[str]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
        """What the four reads would answer: the Deployments labelled as `owner`'s, then
        the one named after it if not labelled so; the Services of `service_names` that
        exist, in that order. None while either kind is not listed and watched."""
        with self._lock:
            deployments, services = (
                self._store("Deployment", namespace),
                self._store("Service", namespace),
            )
            if not (deployments.synced and services.synced):
                return None
            names = sorted(deployments.labelled.get((namespace, owner), ()))
            labelled = [deployments.items[(namespace, name)] for name in names]
            named = deployments.items.get((namespace, owner))
            if named is not None and owner not in names:
                labelled.append(named)
            found = [services.items.get((namespace, name)) for name in service_names]
        return labelled, [s for s in found if s is not None]
