"""A simulated node: writes Deployment status as a kubelet + deployment controller would.

The local control plane has no scheduler or kubelet and its controller-manager runs without
the deployment and replicaset controllers, so nothing else writes a Deployment's status.

- ``mark_deployment_available`` / ``mark_deployment_failed``: one-shot status writes.
- ``SimulatedNode``: a background thread that marks every new generation of every
  Deployment in some namespaces available (optionally after a delay), can be paused, and
  can make chosen Deployments fail to progress.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)


class _OutageError(Exception):
    """The apiserver is away (restarting): try again shortly."""


#: What an apiserver that went away makes the client raise.
_OUTAGE = (_OutageError, urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)

Key = tuple[str, str]  # (namespace, name)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(
    old: Iterable[Mapping[str, Any]], type_: str, status: str, reason: str, message: str
) -> dict[str, Any]:
    """A Deployment condition; keeps lastTransitionTime if the status did not change."""
    now = _now()
    previous = next((c for c in old if c.get("type") == type_), None)
    transition = now
    if previous is not None and previous.get("status") == status:
        transition = str(previous.get("lastTransitionTime") or now)
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": now,
        "lastTransitionTime": transition,
    }


def _write_status(
    apps_api: client.AppsV1Api,
    namespace: str,
    name: str,
    build: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    attempts: int = 10,
) -> dict[str, Any]:
    """Read the Deployment, let ``build(deployment_dict)`` make its new status, replace it.

    Retries on 409 (someone else wrote in between), like a controller would.
    """
    serialize = apps_api.api_client.sanitize_for_serialization
    for attempt in range(attempts):
        current = serialize(apps_api.read_namespaced_deployment(name, namespace))
        current["status"] = build(current)
        try:
            result = apps_api.replace_namespaced_deployment_status(name, namespace, current)
        except ApiException as exc:
            if exc.status == 409 and attempt < attempts - 1:
                continue
            raise
        written: dict[str, Any] = serialize(result)
        return written
    raise AssertionError("unreachable")


def _replicas(deployment: Mapping[str, Any]) -> int:
    spec = deployment.get("spec") or {}
    value = spec.get("replicas")
    return 1 if value is None else int(value)


def _rs_name(deployment: Mapping[str, Any]) -> str:
    meta = deployment["metadata"]
    return f"{meta['name']}-{int(meta.get('generation') or 1):x}"


def mark_deployment_available(
    apps_api: client.AppsV1Api, namespace: str, name: str
) -> dict[str, Any]:
    """Write the status of a Deployment whose current generation is fully rolled out.

    observedGeneration = metadata.generation; replicas = updatedReplicas = readyReplicas =
    availableReplicas = spec.replicas; Available=True (MinimumReplicasAvailable) and
    Progressing=True (NewReplicaSetAvailable). Returns the Deployment as written (a dict).
    """

    def build(dep: dict[str, Any]) -> dict[str, Any]:
        replicas = _replicas(dep)
        old = (dep.get("status") or {}).get("conditions") or []
        return {
            "observedGeneration": dep["metadata"].get("generation"),
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                _condition(
                    old,
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                ),
                _condition(
                    old,
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    f'ReplicaSet "{_rs_name(dep)}" has successfully progressed.',
                ),
            ],
        }

    return _write_status(apps_api, namespace, name, build)


def mark_deployment_failed(
    apps_api: client.AppsV1Api, namespace: str, name: str, message: str | None = None
) -> dict[str, Any]:
    """Write the status of a Deployment whose current generation failed to progress.

    No replica of the new generation became ready: Progressing=False with reason
    ProgressDeadlineExceeded, Available=False (MinimumReplicasUnavailable).
    """

    def build(dep: dict[str, Any]) -> dict[str, Any]:
        replicas = _replicas(dep)
        old = (dep.get("status") or {}).get("conditions") or []
        return {
            "observedGeneration": dep["metadata"].get("generation"),
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": 0,
            "availableReplicas": 0,
            "unavailableReplicas": replicas,
            "conditions": [
                _condition(
                    old,
                    "Available",
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                ),
                _condition(
                    old,
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    message or f'ReplicaSet "{_rs_name(dep)}" has timed out progressing.',
                ),
            ],
        }

    return _write_status(apps_api, namespace, name, build)


def is_available(deployment: Mapping[str, Any]) -> bool:
    """True if a Deployment dict's status says its current generation is available."""
    status = deployment.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    return (
        status.get("observedGeneration") == deployment["metadata"].get("generation")
        and (status.get("availableReplicas") or 0) >= _replicas(deployment)
        and (conditions.get("Available") or {}).get("status") == "True"
    )


@dataclass
class _Pending:
    generation: int
    due: float


class SimulatedNode:
    """Marks Deployments in ``namespaces`` available, generation after generation.

    ::

        with SimulatedNode(apps_api, namespace, delay=0.5) as node:
            ...                       # new generations become available after 0.5 s
            node.pause()              # new generations now stay unavailable...
            node.resume()             # ...until resumed
            node.fail(namespace, "m") # "m" fails to progress (now and for new generations)
            node.recover(namespace, "m")

    Errors in the background threads are kept in ``errors`` and re-raised on exit.
    """

    def __init__(
        self,
        apps_api: client.AppsV1Api,
        namespaces: str | Iterable[str],
        *,
        delay: float = 0.0,
        watch_timeout: int = 2,
    ) -> None:
        self.apps_api = apps_api
        self.namespaces = [namespaces] if isinstance(namespaces, str) else list(namespaces)
        self.delay = delay
        self.watch_timeout = watch_timeout
        self.errors: list[BaseException] = []
        self.marked: dict[Key, int] = {}  # last generation marked available
        self._failed: dict[Key, str | None] = {}
        self._pending: dict[Key, _Pending] = {}
        self._lock = threading.Lock()  # guards the dicts
        self._write_lock = threading.Lock()  # serialises status writes
        self._wakeup = threading.Event()
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._threads: list[threading.Thread] = []

    # ---- control ---------------------------------------------------------------------

    def start(self) -> Self:
        if self._threads:
            return self
        for namespace in self.namespaces:
            self._threads.append(
                threading.Thread(
                    target=self._guard,
                    args=(self._watch_namespace, namespace),
                    name=f"simulated-node-watch-{namespace}",
                    daemon=True,
                )
            )
        self._threads.append(
            threading.Thread(
                target=self._guard, args=(self._work,), name="simulated-node", daemon=True
            )
        )
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wakeup.set()
        for thread in self._threads:
            thread.join(timeout=self.watch_timeout + 5)
        self._threads.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if exc is None and self.errors:
            raise self.errors[0]

    def pause(self) -> None:
        """Stop marking; new generations are remembered and marked after ``resume()``.

        Returns after any status write in flight has finished.
        """
        with self._write_lock:
            self._running.clear()

    def resume(self) -> None:
        self._running.set()
        self._wakeup.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def fail(self, namespace: str, name: str, message: str | None = None) -> None:
        """Make ``name`` fail to progress now, and every new generation, until ``recover``."""
        with self._write_lock:
            with self._lock:
                self._failed[(namespace, name)] = message
                self._pending.pop((namespace, name), None)
            mark_deployment_failed(self.apps_api, namespace, name, message)

    def recover(self, namespace: str, name: str) -> None:
        """Undo ``fail``: the current generation becomes available (after the delay)."""
        with self._lock:
            self._failed.pop((namespace, name), None)
            self._pending[(namespace, name)] = _Pending(-1, time.monotonic() + self.delay)
        self._wakeup.set()

    def _retry_later(self, key: Key) -> None:
        with self._lock:
            self._pending.setdefault(key, _Pending(-1, time.monotonic() + 0.5))

    # ---- threads ----------------------------------------------------------------------

    def _guard(self, target: Any, *args: Any) -> None:
        try:
            target(*args)
        except BaseException as exc:
            if not self._stop.is_set():
                log.exception("simulated node thread failed")
                self.errors.append(exc)

    def _observe(self, event_type: str, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        with self._lock:
            if event_type == "DELETED":
                self._pending.pop(key, None)
                self.marked.pop(key, None)
                return
            generation = int(meta.get("generation") or 0)
            if key in self._failed:
                status = obj.get("status") or {}
                if status.get("observedGeneration") != generation:
                    self._pending[key] = _Pending(generation, time.monotonic())
                return
            if is_available(obj):
                return  # nothing to do (possibly our own status write coming back)
            pending = self._pending.get(key)
            if pending is None or pending.generation != generation:
                self._pending[key] = _Pending(generation, time.monotonic() + self.delay)
        self._wakeup.set()

    def _watch_namespace(self, namespace: str) -> None:
        """Like a real kubelet, it outlives an apiserver that goes away: it lists again
        once the apiserver answers (fault tests crash and restart it)."""
        while not self._stop.is_set():
            try:
                self._watch_once(namespace)
                return
            except _OUTAGE:
                time.sleep(0.5)

    def _watch_once(self, namespace: str) -> None:
        resource_version: str | None = None
        while not self._stop.is_set():
            if resource_version is None:
                body: dict[str, Any] = self.apps_api.api_client.sanitize_for_serialization(
                    self.apps_api.list_namespaced_deployment(namespace)
                )
                resource_version = str(body["metadata"]["resourceVersion"])
                for item in body.get("items") or []:
                    item.setdefault("metadata", {}).setdefault("namespace", namespace)
                    self._observe("ADDED", item)
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    self.apps_api.list_namespaced_deployment,
                    namespace,
                    resource_version=resource_version,
                    timeout_seconds=self.watch_timeout,
                    allow_watch_bookmarks=True,
                    _request_timeout=self.watch_timeout + 10,
                ):
                    obj = event["raw_object"]
                    resource_version = str(obj["metadata"]["resourceVersion"])
                    if event["type"] != "BOOKMARK":
                        self._observe(event["type"], obj)
                    if self._stop.is_set():
                        stream.stop()
            except ApiException as exc:
                if exc.status == 410:
                    resource_version = None  # too old: list again
                    continue
                if exc.status == 404 or self._stop.is_set():
                    return  # namespace gone
                if exc.status == 0 or exc.status >= 500:
                    raise _OutageError(str(exc)) from exc
                raise

    def _work(self) -> None:
        while not self._stop.is_set():
            self._wakeup.wait(timeout=0.2)
            self._wakeup.clear()
            now = time.monotonic()
            with self._lock:
                due = [key for key, p in self._pending.items() if p.due <= now]
            for key in due:
                self._process(key)

    def _process(self, key: Key) -> None:
        # Under the write lock, so that pause() and fail() take effect before any later write.
        with self._write_lock:
            if not self._running.is_set() or self._stop.is_set():
                return
            with self._lock:
                if self._pending.pop(key, None) is None:
                    return
                failed = key in self._failed
                message = self._failed.get(key)
            namespace, name = key
            try:
                if failed:
                    mark_deployment_failed(self.apps_api, namespace, name, message)
                    return
                written = mark_deployment_available(self.apps_api, namespace, name)
            except ApiException as exc:
                if exc.status == 404:
                    return  # deleted meanwhile
                if exc.status == 0 or exc.status >= 500:
                    self._retry_later(key)
                    return
                raise
            except _OUTAGE:
                self._retry_later(key)
                return
            with self._lock:
                self.marked[key] = int(written["metadata"].get("generation") or 0)
