"""The floors for `make bench`: a bare kopf operator that makes the same writes ours makes,
with the same HTTP client, and nothing else.

- by default, when the last approval arrives: the two records ours writes before any
  rollout (the plan, REC-AI-DEPLOY-001, and the approval, -002, chained), then the
  Deployment's apply (no gate, no status, no Events); with BARE_OPERATOR_RECORDS=1 only
  the approval record, as the scale issue's text lists the writes;
- with BARE_OPERATOR_MODE=cold-start, for every object it is told of: a status write (a
  PUT of the whole object, as ours makes it) and an Event, the two writes of our cold
  start, with as many requests in flight as ours.

Run by tests/bench/scale.py as `kopf run --standalone --namespace NS tests/bench/bare_operator.py`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import kopf

from aideploy.api.constants import FIELD_MANAGER, GROUP, PLURAL, VERSION
from aideploy.api.records import RecordType
from aideploy.kube.client import IO_THREADS, make_api_client
from aideploy.kube.records import write_record
from aideploy.kube.rest import Rest
from aideploy.records import DeploymentRef, build_record

#: The annotation the benchmark sets last: it opens the gate.
TRIGGER = "approval.aideploy.io/deployment-manager"

READY = "bare operator started"
#: The status message the cold-start floor writes: the benchmark waits for all to have it.
COLD_MARK = "bare kopf cold start"
COLD_START = os.environ.get("BARE_OPERATOR_MODE") == "cold-start"
RECORD_TYPES = (
    (RecordType.APPROVAL,)
    if os.environ.get("BARE_OPERATOR_RECORDS") == "1"
    else (RecordType.PLAN, RecordType.APPROVAL)
)

_rest: Rest | None = None
_done: set[tuple[str, str]] = set()


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    global _rest
    settings.posting.enabled = False
    _rest = Rest(make_api_client())
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(IO_THREADS))
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
    previous_hash = ""
    for sequence, record_type in enumerate(RECORD_TYPES, start=1):
        record = build_record(
            DeploymentRef(namespace, name, uid, generation, digest),
            record_type,
            sequence=sequence,
            previous_hash=previous_hash,
            content={"approvals": []},
            created_at=datetime.now(UTC),
        )
        previous_hash = write_record(_rest, record)["spec"]["hash"]
    _rest.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
        body=_deployment(namespace, name),
        query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        content_type="application/apply-patch+yaml",
    )


def cold_start_writes(rest: Rest, obj: dict[str, Any], message: str, component: str) -> None:
    """The two writes of a cold start for one object, as the operator makes them: its status
    (a PUT of the whole object) and its phase's Event. Both floors make them."""
    metadata = obj["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    status = {**(obj.get("status") or {}), "message": message}
    rest.request(
        "PUT",
        f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status",
        body={**obj, "status": status},
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    rest.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/events",
        body={
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{name}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
                "name": name,
                "namespace": namespace,
                "uid": metadata["uid"],
            },
            "reason": "AwaitingApproval",
            "message": message,
            "type": "Normal",
            "source": {"component": component},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        },
    )


@kopf.on.event(GROUP, VERSION, PLURAL)
async def changed(body: kopf.Body, **_: Any) -> None:
    metadata = body.metadata
    key = (str(metadata.namespace), str(metadata.name))
    if COLD_START:
        if key not in _done and body.status.get("message") != COLD_MARK:
            assert _rest is not None
            _done.add(key)
            await asyncio.to_thread(cold_start_writes, _rest, dict(body), COLD_MARK, "bare-kopf")
        return
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
