"""kopf's peering object for tests that run replicas with `--peering`: kopf does not create
it, and without it every replica stays paused (as the chart's own peering object avoids)."""

from __future__ import annotations

from typing import Any

from aideploy.kube.crds import apply_crds
from aideploy.kube.rest import Rest
from aideploy.peering import PEERING_GROUP
from tests.support.paths import CHART_DIR

CHART_CRDS = CHART_DIR / "crds"


def collection(namespace: str) -> str:
    return f"{PEERING_GROUP}/namespaces/{namespace}/kopfpeerings"


def create_peering(
    rest: Rest, namespace: str, name: str, peers: dict[str, Any] | None = None
) -> None:
    """The namespaced KopfPeering `name` (operators run with --namespace use these), with
    kopf's CRDs as the chart ships them; `peers` pre-fills its status."""
    apply_crds(rest, CHART_CRDS)
    body: dict[str, Any] = {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfPeering",
        "metadata": {"name": name},
    }
    if peers is not None:
        body["status"] = peers
    rest.request("POST", collection(namespace), body)


def peers(rest: Rest, namespace: str, name: str) -> dict[str, dict[str, Any]]:
    """Each replica's keep-alive as kopf wrote it: identity -> priority, lifetime, lastseen."""
    found = rest.request("GET", f"{collection(namespace)}/{name}") or {}
    status: dict[str, dict[str, Any]] = found.get("status") or {}
    return status
