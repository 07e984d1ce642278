"""Reads and writes of the AIDeployment and its children (blocking; run in threads)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from aideploy.api.constants import FIELD_MANAGER, GROUP, KIND, PLURAL, VERSION
from aideploy.api.times import rfc3339
from aideploy.kube.records import list_records, write_record
from aideploy.kube.rest import ApiError, Rest

logger = logging.getLogger(__name__)

_COLLECTIONS = {
    "Deployment": "/apis/apps/v1/namespaces/{namespace}/deployments",
    "Service": "/api/v1/namespaces/{namespace}/services",
    KIND: f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{PLURAL}",
}


class ConflictError(Exception):
    """The object changed since it was read; reconcile again from a fresh read."""


def object_path(kind: str, namespace: str, name: str) -> str:
    return _COLLECTIONS[kind].format(namespace=namespace) + "/" + name


class Resources:
    def __init__(self, rest: Rest) -> None:
        self._rest = rest

    def list_records(self, namespace: str, name: str, uid: str) -> list[dict[str, Any]]:
        return list_records(self._rest, namespace, name, uid)

    def write_record(self, manifest: dict[str, Any]) -> dict[str, Any]:
        return write_record(self._rest, manifest)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self._rest.request("GET", object_path(kind, namespace, name))

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
        """PUT the status with the resourceVersion that was read: optimistic locking."""
        metadata = obj["metadata"]
        body = {**obj, "status": status}
        path = object_path(KIND, metadata["namespace"], metadata["name"]) + "/status"
        try:
            updated = self._rest.request("PUT", path, body=body)
        except ApiError as error:
            if error.status == 409:
                raise ConflictError(metadata["name"]) from error
            raise
        return updated or obj

    def remove_annotations(self, obj: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
        """Consume one-shot action annotations (go-live, rollback) once acted upon. Guarded
        by the resourceVersion just written, so a newer request is never erased unseen."""
        metadata = obj["metadata"]
        patch = {
            "metadata": {
                "resourceVersion": metadata["resourceVersion"],
                "annotations": dict.fromkeys(keys),
            }
        }
        try:
            updated = self._rest.request(
                "PATCH",
                object_path(KIND, metadata["namespace"], metadata["name"]),
                body=patch,
                content_type="application/merge-patch+json",
            )
        except ApiError as error:
            if error.status == 409:
                raise ConflictError(metadata["name"]) from error
            raise
        return updated or obj

    def emit_event(
        self, obj: dict[str, Any], type_: str, reason: str, message: str, now: datetime
    ) -> None:
        """Best effort: a lost Event must never block a reconcile."""
        metadata = obj["metadata"]
        timestamp = rfc3339(now)
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{metadata['name']}.",
                "namespace": metadata["namespace"],
            },
            "involvedObject": {
                "apiVersion": obj["apiVersion"],
                "kind": KIND,
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata["uid"],
                "resourceVersion": metadata.get("resourceVersion"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "firstTimestamp": timestamp,
            "lastTimestamp": timestamp,
            "count": 1,
        }
        try:
            self._rest.request("POST", f"/api/v1/namespaces/{metadata['namespace']}/events", event)
        except ApiError as error:
            logger.warning("could not post event %s: %s", reason, error)
