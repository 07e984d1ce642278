"""Reads and writes of the AIDeployment and its children (blocking; run in threads)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import urllib3

from aideploy.api.constants import (
    FIELD_MANAGER,
    GROUP,
    KIND,
    LABEL_DEPLOYMENT,
    PLURAL,
    RECORD_KIND,
    RECORD_PLURAL,
    VERSION,
)
from aideploy.api.times import rfc3339
from aideploy.kube.events import (
    Bump,
    Create,
    EventAggregator,
    EventKey,
    transition_event_name,
)
from aideploy.kube.records import list_records, write_record
from aideploy.kube.rest import ApiError, Rest

logger = logging.getLogger(__name__)

_MAX_MESSAGE = 1024
# What a write to an unreachable or unhappy apiserver raises (ValueError: an undecodable
# answer). Anything else is a bug, and is not hidden.
_POST_FAILURES = (ApiError, urllib3.exceptions.HTTPError, OSError, ValueError)

_COLLECTIONS = {
    "Deployment": "/apis/apps/v1/namespaces/{namespace}/deployments",
    "Service": "/api/v1/namespaces/{namespace}/services",
    KIND: f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{PLURAL}",
    RECORD_KIND: f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{RECORD_PLURAL}",
    "HTTPRoute": "/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/httproutes",
}


#: What the apiserver answers (422) when a JSON patch `test` operation fails.
_PATCH_TEST_FAILED = "the server rejected our request due to an error in our request"
#: Puts of the same status on a fresher object, when only unrelated metadata moved.
STATUS_RETRIES = 20
#: Annotations the decision reads: a change to one of them means deciding again.
DECISION_PREFIXES = (
    "aideploy.io/",
    "approval.aideploy.io/",
    "checklist.aideploy.io/",
    "provenance.aideploy.io/",
)


def unrelated_change(read: dict[str, Any], fresh: dict[str, Any]) -> bool:
    """Whether `fresh` differs from `read` only in what decide() does not read."""
    before, after = read["metadata"], fresh["metadata"]

    def decisive(metadata: dict[str, Any]) -> dict[str, Any]:
        annotations = metadata.get("annotations") or {}
        return {k: v for k, v in annotations.items() if k.startswith(DECISION_PREFIXES)}

    return (
        before.get("uid") == after.get("uid")
        and before.get("generation") == after.get("generation")
        and before.get("deletionTimestamp") == after.get("deletionTimestamp")
        and (read.get("status") or {}) == (fresh.get("status") or {})
        and decisive(before) == decisive(after)
    )


class ConflictError(Exception):
    """The object changed since it was read; reconcile again from a fresh read."""


def object_path(kind: str, namespace: str, name: str) -> str:
    return _COLLECTIONS[kind].format(namespace=namespace) + "/" + name


class Resources:
    def __init__(self, rest: Rest, events: EventAggregator | None = None) -> None:
        self._rest = rest
        self._events = EventAggregator() if events is None else events

    def list_records(
        self, namespace: str, name: str, uid: str, from_cache: bool = False
    ) -> list[dict[str, Any]]:
        return list_records(self._rest, namespace, name, uid, from_cache=from_cache)

    def write_record(self, manifest: dict[str, Any]) -> dict[str, Any]:
        return write_record(self._rest, manifest)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self._rest.request("GET", object_path(kind, namespace, name))

    def list_children(self, kind: str, namespace: str, owner_name: str) -> list[dict[str, Any]]:
        """The AIDeployment's children of `kind`, by their `aideploy.io/deployment` label."""
        answer = self._rest.request(
            "GET",
            _COLLECTIONS[kind].format(namespace=namespace),
            query=[("labelSelector", f"{LABEL_DEPLOYMENT}={owner_name}")],
        )
        return list((answer or {}).get("items") or [])

    def list_kind(self, kind: str, namespace: str, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """Up to `limit` objects of `kind` in the namespace (a quorum read, as fresh as a
        GET), and whether there were more (then the items are not all of them)."""
        answer = self._rest.request(
            "GET", _COLLECTIONS[kind].format(namespace=namespace), query=[("limit", str(limit))]
        )
        answer = answer or {}
        more = bool((answer.get("metadata") or {}).get("continue"))
        return list(answer.get("items") or []), more

    def scale_to_zero(self, namespace: str, name: str) -> None:
        """A merge patch, not an apply: an apply of `replicas` alone would drop the rest of
        what the operator applied to the Deployment."""
        self._rest.request(
            "PATCH",
            object_path("Deployment", namespace, name),
            body={"spec": {"replicas": 0}},
            query=[("fieldManager", FIELD_MANAGER)],
            content_type="application/merge-patch+json",
        )

    def patch_route(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """A merge patch of the HTTPRoute's rules, with the resourceVersion read: a route
        edited in between answers 409, and the next reconcile reads it again."""
        self._rest.request(
            "PATCH",
            object_path("HTTPRoute", namespace, name),
            body=patch,
            query=[("fieldManager", FIELD_MANAGER)],
            content_type="application/merge-patch+json",
        )

    def delete(self, kind: str, namespace: str, name: str) -> None:
        """Background propagation; an object already gone is not an error."""
        try:
            self._rest.request(
                "DELETE",
                object_path(kind, namespace, name),
                body={"propagationPolicy": "Background"},
            )
        except ApiError as error:
            if error.status != 404:
                raise

    def apply(self, manifest: dict[str, Any]) -> None:
        """Server-side apply, forcing our field manager's ownership of what we set."""
        metadata = manifest["metadata"]
        self._rest.request(
            "PATCH",
            object_path(manifest["kind"], metadata["namespace"], metadata["name"]),
            body=manifest,
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )

    def replace_status(self, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        """PUT the status with the resourceVersion that was read: optimistic locking.

        A 409 caused only by metadata the decision does not read (a label, an annotation
        outside aideploy's prefixes, managedFields) is not a reason to decide again: the
        same status is put on the fresh object. Without this, one unrelated edit per
        second discarded every probe result. A change of spec, status or of aideploy's
        own annotations raises ConflictError, and the caller decides again."""
        metadata = obj["metadata"]
        path = object_path(KIND, metadata["namespace"], metadata["name"]) + "/status"
        current = obj
        for _ in range(STATUS_RETRIES):
            try:
                updated = self._rest.request("PUT", path, body={**current, "status": status})
                return updated or current
            except ApiError as error:
                if error.status != 409:
                    raise
            fresh = self.get(KIND, metadata["namespace"], metadata["name"])
            if fresh is None or not unrelated_change(obj, fresh):
                raise ConflictError(metadata["name"])
            current = fresh
        raise ConflictError(metadata["name"])

    def remove_annotations(self, obj: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
        """Consume one-shot action annotations (go-live, rollback) once acted upon. Each is
        removed only if it still holds the value acted upon (a JSON patch `test`), so a
        newer request is never erased unseen, and unrelated edits do not get in the way."""
        metadata = obj["metadata"]
        seen = metadata.get("annotations") or {}
        operations: list[dict[str, Any]] = []
        for key in keys:
            if key not in seen:
                continue
            pointer = "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")
            operations.append({"op": "test", "path": pointer, "value": seen[key]})
            operations.append({"op": "remove", "path": pointer})
        if not operations:
            return obj
        try:
            updated = self._rest.request(
                "PATCH",
                object_path(KIND, metadata["namespace"], metadata["name"]),
                body=operations,
                content_type="application/json-patch+json",
            )
        except ApiError as error:
            # A failed test (the value changed, or is gone): decide again on what is there.
            # Any other refusal (a policy's 422, a 403) is reported as what it is.
            if error.status == 409 or (error.status == 422 and _PATCH_TEST_FAILED in error.message):
                raise ConflictError(metadata["name"]) from error
            raise
        return updated or obj

    def emit_event(
        self,
        obj: dict[str, Any],
        type_: str,
        reason: str,
        message: str,
        now: datetime,
        transition: str = "",
    ) -> bool:
        """Best effort: a lost Event must never block a reconcile, so a failure is one
        WARNING line and False. A repeat of an Event already posted (within the
        aggregation window) bumps its count and lastTimestamp instead of posting another.
        A `transition` Event is posted once under a name made of it: "already exists"
        means it is there (posted before a crash), and it is not counted again."""
        metadata = obj["metadata"]
        key = EventKey(
            uid=metadata["uid"],
            kind=str(obj.get("kind") or KIND),
            namespace=metadata["namespace"],
            name=metadata["name"],
            type=type_,
            reason=reason,
            message=message[:_MAX_MESSAGE],
            reporting_component=FIELD_MANAGER,
        )
        try:
            self._post_or_bump(obj, key, now, transition)
        except _POST_FAILURES as error:
            logger.warning(
                "could not post event %s on %s/%s: %s",
                reason,
                key.namespace,
                key.name,
                f"{type(error).__name__}: {error}",
            )
            return False
        return True

    def _post_or_bump(
        self, obj: dict[str, Any], key: EventKey, now: datetime, transition: str
    ) -> None:
        decision = self._events.decide(key, now)
        if isinstance(decision, Bump):
            if self._bump(key, decision, now):
                return
            decision = self._events.decide(key, now)
        if not isinstance(decision, Create):
            return
        # A transition's Event has one name, so that a post made again after a crash
        # finds the first; a repeat within the window above counted on it instead.
        name = transition_event_name(key.name, key.uid, transition) if transition else decision.name
        try:
            self._rest.request(
                "POST", _events_path(key.namespace), body=_new_event(obj, key, name, now)
            )
        except ApiError as error:
            if not (transition and error.status == 409):  # AlreadyExists: posted before
                raise
        self._events.record_created(key, name, now)

    def _bump(self, key: EventKey, decision: Bump, now: datetime) -> bool:
        """Patch the count; False when the Event expired in the apiserver (its TTL), so
        that the caller starts a new one."""
        patch = {"count": decision.count, "lastTimestamp": rfc3339(now)}
        try:
            self._rest.request(
                "PATCH",
                _events_path(key.namespace) + "/" + decision.name,
                body=patch,
                content_type="application/merge-patch+json",
            )
            return True
        except ApiError as error:
            if error.status != 404:
                raise
        self._events.forget(key)
        return False


def _events_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/events"


def _new_event(obj: dict[str, Any], key: EventKey, name: str, now: datetime) -> dict[str, Any]:
    timestamp = rfc3339(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": key.namespace},
        "involvedObject": {
            "apiVersion": obj["apiVersion"],
            "kind": key.kind,
            "name": key.name,
            "namespace": key.namespace,
            "uid": key.uid,
            "resourceVersion": obj["metadata"].get("resourceVersion"),
        },
        "reason": key.reason,
        "message": key.message,
        "type": key.type,
        "source": {"component": key.reporting_component},
        "reportingComponent": key.reporting_component,
        "firstTimestamp": timestamp,
        "lastTimestamp": timestamp,
        "count": 1,
    }
