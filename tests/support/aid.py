"""Small verbs on AIDeployments for the integration tests, through the real apiserver."""

from __future__ import annotations

import copy
import time
from collections import Counter
from typing import Any

import yaml

from aideploy.api.constants import (
    API_VERSION,
    GROUP,
    KIND,
    LABEL_MODEL_VERSION,
    PLURAL,
    VERSION,
    Phase,
)
from aideploy.api.digest import spec_digest
from aideploy.kube.records import list_records
from aideploy.kube.rest import Rest
from aideploy.records import verify_chain
from tests.support.backend import selects
from tests.support.cluster import wait_for
from tests.support.modelserver import DEFAULT_MODEL, ModelServer
from tests.support.operator import OperatorProcess
from tests.support.paths import CRDS_DIR, EXAMPLES_DIR

__all__ = ["CRDS_DIR", "EXAMPLES_DIR"]


def collection(namespace: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"


def manifest(
    name: str, spec: dict[str, Any], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "annotations": dict(annotations or {})},
        "spec": copy.deepcopy(spec),
    }


def load_example(file_name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((EXAMPLES_DIR / file_name).read_text())
    return loaded


def create(
    rest: Rest, namespace: str, body: dict[str, Any], dry_run: bool = False
) -> dict[str, Any]:
    query = [("dryRun", "All")] if dry_run else []
    created = rest.request("POST", collection(namespace), body=body, query=query)
    assert created is not None
    return created


def get(rest: Rest, namespace: str, name: str) -> dict[str, Any]:
    obj = rest.request("GET", f"{collection(namespace)}/{name}")
    assert obj is not None, f"AIDeployment {namespace}/{name} not found"
    return obj


def merge_patch(rest: Rest, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
    patched = rest.request(
        "PATCH",
        f"{collection(namespace)}/{name}",
        body=patch,
        content_type="application/merge-patch+json",
    )
    assert patched is not None
    return patched


def set_status(rest: Rest, namespace: str, name: str, status: dict[str, Any]) -> None:
    """Write status as the operator would (merge patch of the subresource): for CLI tests
    that need an object in a given phase without driving a rollout there."""
    rest.request(
        "PATCH",
        f"{collection(namespace)}/{name}/status",
        body={"status": status},
        content_type="application/merge-patch+json",
    )


def annotate(
    rest: Rest, namespace: str, name: str, annotations: dict[str, str | None]
) -> dict[str, Any]:
    return merge_patch(rest, namespace, name, {"metadata": {"annotations": annotations}})


def approve_all(rest: Rest, namespace: str, name: str, roles: list[str]) -> dict[str, Any]:
    """Approve the spec currently stored, in each role, as a person would with the plugin."""
    digest = spec_digest(get(rest, namespace, name)["spec"])
    return annotate(
        rest,
        namespace,
        name,
        {
            f"approval.aideploy.io/{role}": f"{digest}; by={role}@example.com; reviewed"
            for role in roles
        },
    )


def status(rest: Rest, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = get(rest, namespace, name).get("status") or {}
    return found


def condition(obj_status: dict[str, Any], type_: str) -> dict[str, Any]:
    for cond in obj_status.get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    raise AssertionError(f"no {type_} condition in {obj_status}")


def deployments_of(rest: Rest, namespace: str, name: str) -> list[dict[str, Any]]:
    """Every Deployment the AIDeployment runs (one per release under blue-green)."""
    listed = rest.request(
        "GET",
        f"/apis/apps/v1/namespaces/{namespace}/deployments",
        query=[("labelSelector", f"aideploy.io/deployment={name}")],
    )
    items: list[dict[str, Any]] = (listed or {}).get("items") or []
    return sorted(items, key=lambda d: str(d["metadata"].get("creationTimestamp")))


def service(rest: Rest, namespace: str, name: str) -> dict[str, Any] | None:
    return rest.request("GET", f"/api/v1/namespaces/{namespace}/services/{name}")


def serving_deployment(rest: Rest, namespace: str, name: str) -> dict[str, Any] | None:
    """The Deployment whose pods the stable Service (named after the object) selects."""
    stable = service(rest, namespace, name)
    return next((d for d in deployments_of(rest, namespace, name) if selects(stable, d)), None)


def child_deployment(rest: Rest, namespace: str, name: str) -> dict[str, Any] | None:
    """The Deployment users are served by, or, while none is, the newest one (a rollout
    not yet live); None when the object runs nothing."""
    serving = serving_deployment(rest, namespace, name)
    if serving is not None:
        return serving
    running = deployments_of(rest, namespace, name)
    return running[-1] if running else None


def events(rest: Rest, namespace: str, name: str) -> list[dict[str, Any]]:
    listed = rest.request("GET", f"/api/v1/namespaces/{namespace}/events") or {}
    return [
        e
        for e in listed.get("items", [])
        if e["involvedObject"].get("name") == name and e["involvedObject"].get("kind") == KIND
    ]


def emitted(rest: Rest, namespace: str, name: str) -> Counter[str]:
    """How many times each reason was emitted on the object: Events are aggregated (a repeat
    bumps the `count` of the Event already posted), so this sums counts, not objects."""
    counts: Counter[str] = Counter()
    for event in events(rest, namespace, name):
        counts[event["reason"]] += int(event.get("count") or 1)
    return counts


def wait_phase(
    rest: Rest, namespace: str, name: str, phase: str, timeout: float = 45
) -> dict[str, Any]:
    """Wait until the object's status reports `phase`; return that status."""

    def probe() -> dict[str, Any] | None:
        current = status(rest, namespace, name)
        return current if current.get("phase") == phase else None

    return wait_for(probe, timeout=timeout, message=f"{name} to reach phase {phase}")


def settled(
    rest: Rest, operator: OperatorProcess, namespace: str, name: str, timeout: float = 30
) -> dict[str, Any]:
    """Wait until the operator has reconciled the object as it now stands and that reconcile
    wrote nothing to it (its resourceVersion did not move); return the object.

    Before asserting that nothing happens, this (unlike a sleep) proves the operator looked.
    """
    deadline = time.monotonic() + timeout
    obj = get(rest, namespace, name)
    while True:
        version = obj["metadata"]["resourceVersion"]
        operator.wait_reconciled(
            namespace, name, version, timeout=max(deadline - time.monotonic(), 0.1)
        )
        obj = get(rest, namespace, name)
        if obj["metadata"]["resourceVersion"] == version:
            return obj
        if time.monotonic() > deadline:
            raise TimeoutError(f"{namespace}/{name} kept changing for {timeout:g}s")


PHASES = {phase.value for phase in Phase}


def assert_nothing_lost(
    rest: Rest, operator: OperatorProcess, namespace: str, name: str, body_spec: dict[str, Any]
) -> Counter[str]:
    """The invariants every fault must keep (issue 13): the records are a gap-free chain
    that verifies, each written once, and the serving Deployment runs exactly the spec's
    containers and version. Returns how many times each phase's Event was posted, for the
    caller to hold against the transitions its scenario makes. `operator` is the process
    working now: the Events are counted once it has settled (they follow the status write).
    """
    settled(rest, operator, namespace, name)
    records = list_records(rest, namespace, name)
    assert verify_chain(records, status(rest, namespace, name).get("latestRecord")) == []
    once = Counter(
        (r["spec"]["type"], r["spec"]["deployment"]["specDigest"], _step(r)) for r in records
    )
    assert [key for key, count in once.items() if count > 1] == [], once
    phases = Counter({r: n for r, n in emitted(rest, namespace, name).items() if r in PHASES})
    serving = serving_deployment(rest, namespace, name)
    if serving is not None:
        pods = serving["spec"]["template"]
        wanted = body_spec["template"]["spec"]["containers"]
        assert [(c["name"], c["image"]) for c in pods["spec"]["containers"]] == [
            (c["name"], c["image"]) for c in wanted
        ]
        assert pods["metadata"]["labels"][LABEL_MODEL_VERSION] == body_spec["model"]["version"]
    return phases


def _step(record: dict[str, Any]) -> str:
    """What tells apart records of one type that one release can have (a go-live, say)."""
    return str(record["spec"]["content"].get("event", ""))


def golden_probe(server: ModelServer, x: float = 3.0) -> dict[str, Any]:
    """An OIP v2 golden request the test model server answers right (it doubles inputs)."""
    return {
        "name": "golden",
        "inference": {
            "url": server.url,
            "model": DEFAULT_MODEL,
            "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [1], "data": [x]}],
            "expect": [{"name": "output-0", "data": [2 * x], "tolerance": 0.001}],
        },
    }
