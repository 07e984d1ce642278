"""The vocabulary of release strategies, and what can be read off the workloads: the
Deployments and Services observed, the topology a decision wants, the changes to make, and
which Deployment runs which release. Pure; traffic.py builds the changes from these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from aideploy.api.constants import LABEL_RELEASE
from aideploy.api.digest import release_id
from aideploy.api.status import Release, ReleaseRef, TrafficShare
from aideploy.logic.workload import Owner, applied_digest, applied_replicas, drifted

Mode = Literal["blueGreen", "inPlace", "canary"]
BLUE_GREEN: Mode = "blueGreen"
IN_PLACE: Mode = "inPlace"
CANARY: Mode = "canary"
NO_RELEASE = "none"  # selects no pod: release ids are hex


def preview_name(owner: Owner) -> str:
    return f"{owner.name}-preview"


def deployment_name(owner: Owner, release: Release) -> str:
    return f"{owner.name}-{release_id(release.digest)}"


@dataclass(frozen=True)
class Workloads:
    """The AIDeployment's Deployments and Services as read, by name."""

    deployments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    services: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: The HTTPRoute a canary's weights are written to, as read (None: absent or unused).
    route: Mapping[str, Any] | None = None
    #: Objects with our children's names that this AIDeployment does not own: (kind, name).
    foreign: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Topology:
    """What a decision wants to be true of the workloads.

    `stable` is the release users should be served by (None: nothing), `candidate` the one
    being verified beside it; `standby` is kept while it still runs but never started
    (the previous release during monitoring); `discard` is a release taken out (used by
    inPlace to keep its template at zero replicas). Every other Deployment is scaled to
    zero, then deleted, unless `keep_others_until` is still ahead.

    Canary: `weight` is the candidate's share of users (percent) beside `stable`; `route`
    names the HTTPRoute that carries it (None: by replica ratio)."""

    mode: Mode
    stable: Release | None
    replicas: int
    candidate: Release | None = None
    standby: Release | None = None
    discard: Release | None = None
    keep_others_until: datetime | None = None
    preview: bool = True
    weight: int = 0
    route: str | None = None


@dataclass(frozen=True)
class WorkloadChanges:
    """The writes, in the order they are made: Deployments (pods, no traffic yet), then,
    after the status that reports the decision, Services (traffic), then scale-downs and
    deletes."""

    deployments: tuple[dict[str, Any], ...] = ()
    services: tuple[dict[str, Any], ...] = ()
    scale_downs: tuple[str, ...] = ()
    deletes: tuple[tuple[str, str], ...] = ()
    #: A merge patch of the HTTPRoute's rules, and whether it goes before the Services
    #: (weight taken off the canary, before the preview Service stops selecting it) or
    #: after them (weight given once the Services select what it is given to).
    route_patch: dict[str, Any] | None = None
    route_name: str | None = None
    route_first: bool = False

    def __bool__(self) -> bool:
        return bool(
            self.deployments
            or self.services
            or self.scale_downs
            or self.deletes
            or self.route_patch
        )


@dataclass(frozen=True)
class Routing:
    changes: WorkloadChanges
    stable: Release | None
    candidate: Release | None
    traffic: tuple[TrafficShare, ...]
    wake_at: datetime | None = None
    #: Why the candidate's Deployment is not applied yet (None: it is, or there is none).
    deferred: str | None = None
    #: Why the canary's weight cannot be written (the HTTPRoute is missing or does not
    #: reference the Services), in words with the next step; None when it can.
    blocked: str | None = None

    def refs(self) -> tuple[ReleaseRef | None, ReleaseRef | None]:
        return release_ref(self.stable), release_ref(self.candidate)


def release_ref(release: Release | None) -> ReleaseRef | None:
    if release is None:
        return None
    return ReleaseRef(id=release_id(release.digest), version=release.version)


def pod_labels(deployment: Mapping[str, Any]) -> Mapping[str, Any]:
    template = (deployment.get("spec") or {}).get("template") or {}
    labels: Mapping[str, Any] = (template.get("metadata") or {}).get("labels") or {}
    return labels


def release_of(deployment: Mapping[str, Any]) -> str | None:
    """The release a Deployment runs: its pods' label, or (an in-place Deployment of an
    earlier operator version) the digest it was applied with."""
    labelled = pod_labels(deployment).get(LABEL_RELEASE)
    if labelled:
        return str(labelled)
    digest = applied_digest(deployment)
    return release_id(digest) if digest else None


def find_deployment(workloads: Workloads, release: Release) -> tuple[str, Mapping[str, Any]] | None:
    """The Deployment that runs `release`, preferring one whose pods carry its label."""
    rid = release_id(release.digest)
    found = [(name, obj) for name, obj in workloads.deployments.items() if release_of(obj) == rid]
    found.sort(key=lambda item: pod_labels(item[1]).get(LABEL_RELEASE) != rid)
    return found[0] if found else None


def selector_of(obj: Mapping[str, Any] | None) -> dict[str, str] | None:
    if obj is None:
        return None
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    if isinstance(selector, Mapping) and "matchLabels" in selector:  # a Deployment
        selector = selector.get("matchLabels")
    return {str(k): str(v) for k, v in (selector or {}).items()}


def carries(obj: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether the live Deployment already is what `desired` asks for (so that it is not
    applied again, and no new generation starts)."""
    return (
        applied_digest(obj) == applied_digest(desired)
        and applied_replicas(obj) == applied_replicas(desired)
        and not drifted(obj, desired)
        and pod_labels(obj).get(LABEL_RELEASE) == pod_labels(desired).get(LABEL_RELEASE)
    )


def share(release: Release, weight: int) -> TrafficShare:
    return TrafficShare(release=release_id(release.digest), version=release.version, weight=weight)


def _ports(service: Mapping[str, Any] | None) -> list[tuple[Any, Any]]:
    ports = ((service or {}).get("spec") or {}).get("ports") or []
    return [(p.get("port"), p.get("targetPort")) for p in ports if isinstance(p, Mapping)]


def same_service(live: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    return (
        live is not None
        and selector_of(live) == selector_of(wanted)
        and _ports(live) == _ports(wanted)
        and all(
            ((live.get("metadata") or {}).get("labels") or {}).get(key) == value
            for key, value in wanted["metadata"]["labels"].items()
        )
    )


def replicas_of(release: Release, default: int) -> int:
    return release.replicas if release.replicas is not None else default
