"""The model server's Deployment and Service, built from the spec; and what a Deployment's
status says about its rollout. Pure functions: the I/O layer applies what these return."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aideploy.api.constants import (
    ANNOTATION_SPEC_DIGEST,
    API_VERSION,
    KIND,
    LABEL_DEPLOYMENT,
    LABEL_MANAGED_BY,
    LABEL_MODEL,
    LABEL_MODEL_VERSION,
    LABEL_RELEASE,
    MANAGED_BY_VALUE,
)
from aideploy.api.digest import release_id
from aideploy.api.spec import AIDeploymentSpec
from aideploy.api.status import Release


@dataclass(frozen=True)
class Owner:
    name: str
    namespace: str
    uid: str


def workload_problems(spec: AIDeploymentSpec) -> list[str]:
    """What makes a schema-valid spec unable to run; empty when it can."""
    template = spec.template
    pod_spec = template.get("spec")
    containers = pod_spec.get("containers") if isinstance(pod_spec, Mapping) else None
    if not isinstance(containers, list) or not containers:
        return ["spec.template.spec.containers is empty: the model server needs a container"]
    problems: list[str] = []
    names: list[str] = []
    port_owner: dict[tuple[int, str], str] = {}
    declared_ports: set[int] = set()
    for index, container in enumerate(containers):
        if not isinstance(container, Mapping):
            problems.append(f"spec.template.spec.containers[{index}] is not an object")
            continue
        name = str(container.get("name") or "")
        if not name:
            problems.append(f"spec.template.spec.containers[{index}] has no name")
        elif name in names:
            problems.append(f"container name {name!r} is used twice")
        names.append(name)
        if not container.get("image"):
            problems.append(f"container {name or index!r} has no image")
        problems.extend(_quantity_problems(name or str(index), container.get("resources")))
        for port in container.get("ports") or []:
            if not isinstance(port, Mapping) or not isinstance(port.get("containerPort"), int):
                problems.append(f"container {name or index!r} has a port without containerPort")
                continue
            key = (port["containerPort"], str(port.get("protocol", "TCP")))
            declared_ports.add(key[0])
            if key in port_owner:
                problems.append(
                    f"port {key[0]}/{key[1]} is declared by both container "
                    f"{port_owner[key]!r} and container {name!r}"
                )
            else:
                port_owner[key] = name
    if declared_ports and spec.serving.port not in declared_ports:
        problems.append(
            f"spec.serving.port {spec.serving.port} is not a containerPort of any container "
            f"(declared: {', '.join(str(p) for p in sorted(declared_ports))})"
        )
    labels = (template.get("metadata") or {}).get("labels") or {}
    for reserved in (LABEL_DEPLOYMENT, LABEL_RELEASE):
        if reserved in labels:
            problems.append(f"spec.template.metadata.labels must not set {reserved}")
    size = len(json.dumps(template, separators=(",", ":")))
    if size > MAX_TEMPLATE_BYTES:
        problems.append(
            f"spec.template is {size // 1024} KiB; the operator keeps it in status for the "
            "current and the last good release, and etcd holds at most 1.5 MiB per object, "
            f"so it must stay under {MAX_TEMPLATE_BYTES // 1024} KiB (large values belong "
            "in a ConfigMap)"
        )
    return problems


#: A template copied into the spec and twice into status must leave etcd room (1.5 MiB).
MAX_TEMPLATE_BYTES = 256 * 1024
#: Kubernetes' resource.Quantity, as the apiserver parses it.
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")


def _quantity_problems(container: str, resources: object) -> list[str]:
    """Quantities the apiserver cannot parse: it would refuse the Deployment every time."""
    if not isinstance(resources, Mapping):
        return []
    problems = []
    for part in ("limits", "requests"):
        for resource, quantity in (resources.get(part) or {}).items():
            text = str(quantity)
            if isinstance(quantity, bool) or not _QUANTITY.match(text):
                problems.append(
                    f"container {container!r} resources.{part}.{resource} {text!r} is not a "
                    "Kubernetes quantity (for example 500m, 2, 1Gi)"
                )
    return problems


#: A label value, and a Service name, hold at most 63 characters.
MAX_LABEL = 63
PREVIEW_SUFFIX = "-preview"


def owner_problems(owner: Owner, preview: bool) -> list[str]:
    """Names the children cannot carry: the apiserver would refuse them on every attempt.
    The longest is the preview Service `<name>-preview`, where one is used."""
    longest = owner.name + PREVIEW_SUFFIX if preview else owner.name
    if len(longest) <= MAX_LABEL:
        return []
    limit = MAX_LABEL - (len(PREVIEW_SUFFIX) if preview else 0)
    return [
        f"the name {owner.name} has {len(owner.name)} characters; the Services and labels "
        f"named after it ({longest}) allow at most {limit}: recreate it under a shorter name"
    ]


def selector_labels(owner: Owner) -> dict[str, str]:
    """What every pod of the AIDeployment carries, whatever its release."""
    return {LABEL_DEPLOYMENT: owner.name}


def release_selector(owner: Owner, rid: str) -> dict[str, str]:
    """The pods of one release: what the stable and preview Services select."""
    return {LABEL_DEPLOYMENT: owner.name, LABEL_RELEASE: rid}


def child_labels(owner: Owner, model_name: str, version: str) -> dict[str, str]:
    return {
        **selector_labels(owner),
        LABEL_MODEL: model_name,
        LABEL_MODEL_VERSION: _label_value(version),
        LABEL_MANAGED_BY: MANAGED_BY_VALUE,
    }


def _label_value(text: str) -> str:
    """Semver build metadata (`+build.5`) is not allowed in a label value."""
    return text.replace("+", "_")[:63]


def _owner_reference(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(
    owner: Owner, name: str, labels: Mapping[str, str], digest: str | None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": owner.namespace,
        "labels": dict(labels),
        "ownerReferences": [_owner_reference(owner)],
    }
    if digest is not None:
        metadata["annotations"] = {ANNOTATION_SPEC_DIGEST: digest}
    return metadata


def build_deployment(
    owner: Owner,
    model_name: str,
    release: Release,
    replicas: int,
    name: str | None = None,
    selector: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Deployment of one release: a rollback restores an older release's exact
    template by building from it, not from the current spec. `name` and `selector`
    default to the in-place Deployment's (named after the AIDeployment); a Deployment's
    selector cannot change, so an adopted one keeps the selector it was created with."""
    rid = release_id(release.digest)
    labels = {**child_labels(owner, model_name, release.version), LABEL_RELEASE: rid}
    template = release.template or {}
    pod_template = copy.deepcopy(dict(template))
    pod_metadata = dict(pod_template.get("metadata") or {})
    pod_metadata["labels"] = {**(pod_metadata.get("labels") or {}), **labels}
    pod_template["metadata"] = pod_metadata
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(owner, name or owner.name, labels, release.digest),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(selector or selector_labels(owner))},
            "template": pod_template,
        },
    }


def serving_port(release: Release, default: int = 8080) -> int:
    return int((release.serving or {}).get("port", default))


def build_service(
    owner: Owner,
    name: str,
    model_name: str,
    port: int,
    selector: Mapping[str, str],
) -> dict[str, Any]:
    labels = {**selector_labels(owner), LABEL_MODEL: model_name, LABEL_MANAGED_BY: MANAGED_BY_VALUE}
    if LABEL_RELEASE in selector:
        labels[LABEL_RELEASE] = selector[LABEL_RELEASE]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner, name, labels, None),
        "spec": {
            "selector": dict(selector),
            "ports": [{"name": "serving", "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }


def is_owned_by(obj: Mapping[str, Any], owner: Owner) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == owner.uid for ref in refs)


def _images(template: Mapping[str, Any]) -> dict[str, str]:
    containers = (template.get("spec") or {}).get("containers") or []
    return {str(c.get("name")): str(c.get("image")) for c in containers if isinstance(c, Mapping)}


def _same_image(live: str | None, wanted: str) -> bool:
    """Admission policies often pin a tag to its digest (`image:tag@sha256:...`): that is
    still the image we asked for."""
    return live is not None and (live == wanted or live.startswith(wanted + "@sha256:"))


def drifted(child: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether a container of the release runs another image on the live Deployment than
    the release says (an image set by hand): the operator re-applies the release, so that
    what status says is serving is what serves. Containers that something else added
    (sidecars injected by admission) are not ours to judge."""
    live = _images((child.get("spec") or {}).get("template") or {})
    wanted = _images((desired.get("spec") or {}).get("template") or {})
    return any(not _same_image(live.get(name), image) for name, image in wanted.items())


def applied_replicas(obj: Mapping[str, Any] | None) -> int | None:
    if obj is None:
        return None
    return int((obj.get("spec") or {}).get("replicas", 1))


def applied_digest(obj: Mapping[str, Any] | None) -> str | None:
    if obj is None:
        return None
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(ANNOTATION_SPEC_DIGEST)
    return str(value) if value is not None else None


@dataclass(frozen=True)
class RolloutProgress:
    complete: bool
    failed: bool
    message: str


def rollout_progress(deployment: Mapping[str, Any]) -> RolloutProgress:
    """Read a Deployment's status the way `kubectl rollout status` does."""
    metadata = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    wanted = int(spec.get("replicas", 1))
    generation = int(metadata.get("generation", 0))
    observed = int(status.get("observedGeneration", 0))
    updated = int(status.get("updatedReplicas", 0))
    available = int(status.get("availableReplicas", 0))
    total = int(status.get("replicas", 0))
    if observed < generation:
        # Any condition still shown belongs to an older generation.
        return RolloutProgress(False, False, "waiting for the Deployment controller to observe it")
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "Progressing"
            and condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            detail = condition.get("message", "")
            return RolloutProgress(
                complete=False,
                failed=True,
                message=f"the rollout exceeded its progress deadline: {detail}",
            )
    if updated < wanted:
        return RolloutProgress(False, False, f"{updated} of {wanted} replicas updated")
    if total > updated:
        return RolloutProgress(False, False, f"{total - updated} old replicas still terminating")
    if available < wanted:
        return RolloutProgress(False, False, f"{available} of {wanted} updated replicas available")
    return RolloutProgress(True, False, f"{available} of {wanted} replicas available")
