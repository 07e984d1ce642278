"""What the notification worker reads and writes in the cluster (blocking; run in threads):
the notifiers, the AIDeployments (their records: kube/records.py), the Secrets that hold the sinks'
URLs, and each sink's cursor and condition in the notifier's status.

A Secret's value is returned to the caller and never logged, nor put in an error: an
ApiError about a Secret names the Secret and key, never its data.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from aideploy.api.constants import GROUP, PLURAL, VERSION
from aideploy.api.notifier import NOTIFIER_PLURAL, SecretKeyRef
from aideploy.kube.resources import Resources
from aideploy.kube.rest import ApiError, Rest

PAGE_SIZE = 500


class SecretMissingError(Exception):
    """The Secret or its key is absent or unreadable; the message names them only."""


def _collection(plural: str, namespace: str | None) -> str:
    where = f"/namespaces/{namespace}" if namespace else ""
    return f"/apis/{GROUP}/{VERSION}{where}/{plural}"


def _list(rest: Rest, path: str) -> list[dict[str, Any]]:
    return rest.list_all(path, page_size=PAGE_SIZE)[0]


def list_notifiers(rest: Rest, namespaces: Sequence[str]) -> list[dict[str, Any]]:
    """The notifiers in the watched namespaces (all namespaces when none is given)."""
    if not namespaces:
        return _list(rest, _collection(NOTIFIER_PLURAL, None))
    return [n for ns in namespaces for n in _list(rest, _collection(NOTIFIER_PLURAL, ns))]


def get_notifier(rest: Rest, namespace: str, name: str) -> dict[str, Any] | None:
    return rest.request("GET", f"{_collection(NOTIFIER_PLURAL, namespace)}/{name}")


def list_deployments(rest: Rest, namespaces: Sequence[str]) -> list[dict[str, Any]]:
    if not namespaces:
        return _list(rest, _collection(PLURAL, None))
    return [d for ns in namespaces for d in _list(rest, _collection(PLURAL, ns))]


def read_secret(rest: Rest, namespace: str, ref: SecretKeyRef) -> str:
    where = f"Secret {namespace}/{ref.name} key {ref.key}"
    try:
        secret = rest.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{ref.name}")
    except ApiError as error:
        if error.status == 403:
            raise SecretMissingError(
                f"{where}: the operator may not read it; with the Helm chart, name it in "
                "notifications.secretNames"
            ) from None
        raise SecretMissingError(f"{where}: cannot be read ({error.status})") from None
    if secret is None:
        raise SecretMissingError(f"{where}: no such Secret; create it")
    data = secret.get("data") or {}
    if ref.key not in data:
        raise SecretMissingError(f"{where}: no such key; add it")
    try:
        return base64.b64decode(data[ref.key], validate=True).decode().strip()
    except (binascii.Error, UnicodeDecodeError):
        raise SecretMissingError(f"{where}: not base64 text") from None


def patch_sink_status(
    rest: Rest, notifier: Mapping[str, Any], sink: str, patch: Mapping[str, Any]
) -> None:
    """Merge `patch` into status.sinks.<sink>: each sink writes only its own key, so that
    sinks delivering at the same time never overwrite each other's cursors."""
    metadata = notifier["metadata"]
    path = f"{_collection(NOTIFIER_PLURAL, metadata['namespace'])}/{metadata['name']}/status"
    rest.request(
        "PATCH",
        path,
        body={"status": {"sinks": {sink: dict(patch)}}},
        content_type="application/merge-patch+json",
    )


def post_event(
    rest: Rest, notifier: Mapping[str, Any], reason: str, message: str, now: datetime
) -> bool:
    """A Warning Event on the notifier (its message names the sink, never its URL), made as
    every other Event of the operator's: best effort, a failure logged and False."""
    return Resources(rest).emit_event(dict(notifier), "Warning", reason, message, now)
