"""The floor for `make bench`: a bare kopf operator that makes the same two writes ours
makes when the last approval arrives (the approval record, then the Deployment's apply),
with the same HTTP client, and nothing else: no gate, no status, no Events.

Run by tests/bench/scale.py as `kopf run --standalone --namespace NS tests/bench/bare_operator.py`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from aideploy.api.constants import FIELD_MANAGER, GROUP, PLURAL, VERSION
from aideploy.api.records import RecordType
from aideploy.kube.client import make_api_client
from aideploy.kube.records import write_record
from aideploy.kube.rest import Rest
from aideploy.records import DeploymentRef, build_record

#: The annotation the benchmark sets last: it opens the gate.
TRIGGER = "approval.aideploy.io/deployment-manager"

READY = "bare operator started"

_rest: Rest | None = None
_done: set[tuple[str, str]] = set()


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    global _rest
    settings.posting.enabled = False
    _rest = Rest(make_api_client())
    # WARNING: kopf without --verbose shows nothing less, and the benchmark waits for it.
    logging.getLogger("bare_operator").warning(READY)


def _deployment(namespace: str, name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "server", "image": "mlserver:1"}]},
            },
        },
    }


def _writes(namespace: str, name: str, uid: str, generation: int, digest: str) -> None:
    assert _rest is not None
    record = build_record(
        DeploymentRef(namespace, name, uid, generation, digest),
        RecordType.APPROVAL,
        sequence=1,
        previous_hash="",
        content={"approvals": []},
        created_at=datetime.now(UTC),
    )
    write_record(_rest, record)
    _rest.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
        body=_deployment(namespace, name),
        query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        content_type="application/apply-patch+yaml",
    )


@kopf.on.event(GROUP, VERSION, PLURAL)
async def changed(body: kopf.Body, **_: Any) -> None:
    metadata = body.metadata
    key = (str(metadata.namespace), str(metadata.name))
    if TRIGGER not in (metadata.annotations or {}) or key in _done:
        return
    _done.add(key)
    await asyncio.to_thread(
        _writes,
        key[0],
        key[1],
        str(metadata.uid),
        int(metadata.get("generation", 1)),
        "sha256:" + "0" * 64,
    )
