"""How releases reach users (spec.strategy): which Deployments run, which release each
Service selects, and what is scaled down and deleted. Pure: from the topology a decision
wants and the workloads observed, to the changes the I/O layer makes, in order.

Safety rules, whatever the decision asked for:
- the stable Service never moves to a release whose pods are not all available;
- the Deployment the stable Service selects is never scaled down or deleted;
- while the stable Service still selects by `aideploy.io/deployment` alone (an in-place
  Deployment being adopted), no other release's pods run, since it would select them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from aideploy.api.constants import LABEL_RELEASE
from aideploy.api.digest import release_id
from aideploy.api.status import Release, ReleaseRef, TrafficShare
from aideploy.logic.workload import (
    Owner,
    RolloutProgress,
    applied_digest,
    applied_replicas,
    build_deployment,
    build_service,
    drifted,
    release_selector,
    rollout_progress,
    selector_labels,
    serving_port,
)

Mode = Literal["blueGreen", "inPlace"]
BLUE_GREEN: Mode = "blueGreen"
IN_PLACE: Mode = "inPlace"
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
    #: Objects with our children's names that this AIDeployment does not own ("Service x").
    foreign: tuple[str, ...] = ()


@dataclass(frozen=True)
class Topology:
    """What a decision wants to be true of the workloads.

    `stable` is the release users should be served by (None: nothing), `candidate` the one
    being verified beside it; `standby` is kept while it still runs but never started
    (the previous release during monitoring); `discard` is a release taken out (used by
    inPlace to keep its template at zero replicas). Every other Deployment is scaled to
    zero, then deleted, unless `keep_others_until` is still ahead."""

    mode: Mode
    stable: Release | None
    replicas: int
    candidate: Release | None = None
    standby: Release | None = None
    discard: Release | None = None
    keep_others_until: datetime | None = None
    preview: bool = True


@dataclass(frozen=True)
class WorkloadChanges:
    """The writes, in the order they are made: Deployments (pods, no traffic yet), then,
    after the status that reports the decision, Services (traffic), then scale-downs and
    deletes."""

    deployments: tuple[dict[str, Any], ...] = ()
    services: tuple[dict[str, Any], ...] = ()
    scale_downs: tuple[str, ...] = ()
    deletes: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.deployments or self.services or self.scale_downs or self.deletes)


@dataclass(frozen=True)
class Routing:
    changes: WorkloadChanges
    stable: Release | None
    candidate: Release | None
    traffic: tuple[TrafficShare, ...]
    wake_at: datetime | None = None
    #: Why the candidate's Deployment is not applied yet (None: it is, or there is none).
    deferred: str | None = None

    def refs(self) -> tuple[ReleaseRef | None, ReleaseRef | None]:
        return _ref(self.stable), _ref(self.candidate)


def _ref(release: Release | None) -> ReleaseRef | None:
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


def _selector(obj: Mapping[str, Any] | None) -> dict[str, str] | None:
    if obj is None:
        return None
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    if isinstance(selector, Mapping) and "matchLabels" in selector:  # a Deployment
        selector = selector.get("matchLabels")
    return {str(k): str(v) for k, v in (selector or {}).items()}


def _carries(obj: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether the live Deployment already is what `desired` asks for (so that it is not
    applied again, and no new generation starts)."""
    return (
        applied_digest(obj) == applied_digest(desired)
        and applied_replicas(obj) == applied_replicas(desired)
        and not drifted(obj, desired)
        and pod_labels(obj).get(LABEL_RELEASE) == pod_labels(desired).get(LABEL_RELEASE)
    )


@dataclass(frozen=True)
class _Wanted:
    release: Release
    name: str
    manifest: dict[str, Any]
    live: Mapping[str, Any] | None

    @property
    def current(self) -> bool:
        return self.live is not None and _carries(self.live, self.manifest)

    def progress(self) -> RolloutProgress | None:
        return rollout_progress(self.live) if self.live is not None and self.current else None

    @property
    def ready(self) -> bool:
        progress = self.progress()
        return progress is not None and progress.complete


class Router:
    """Builds the changes for one topology against one observation."""

    def __init__(
        self,
        owner: Owner,
        model_name: str,
        workloads: Workloads,
        now: datetime,
        default_port: int = 8080,
    ) -> None:
        self.owner = owner
        self.model_name = model_name
        self.workloads = workloads
        self.now = now
        self.default_port = default_port

    def wanted(self, release: Release, replicas: int, mode: Mode) -> _Wanted:
        """The Deployment `release` should run in, built, beside the live one."""
        if mode == IN_PLACE:
            name = self.owner.name
            live = self.workloads.deployments.get(name)
        else:
            existing = find_deployment(self.workloads, release)
            name, live = existing if existing else (deployment_name(self.owner, release), None)
        rid = release_id(release.digest)
        selector = _selector(live) or (
            selector_labels(self.owner) if mode == IN_PLACE else release_selector(self.owner, rid)
        )
        manifest = build_deployment(
            self.owner, self.model_name, release, replicas, name=name, selector=selector
        )
        return _Wanted(release, name, manifest, live)

    def progress(self, release: Release, replicas: int, mode: Mode) -> RolloutProgress | None:
        """How the release's own Deployment is doing; None while it does not (yet) run
        exactly that release."""
        return self.wanted(release, replicas, mode).progress()

    def route(self, topology: Topology) -> Routing:
        if topology.mode == IN_PLACE:
            return self._in_place(topology)
        return self._blue_green(topology)

    # -- inPlace ---------------------------------------------------------------------------

    def _in_place(self, topology: Topology) -> Routing:
        running = topology.candidate or topology.stable
        replicas = _replicas(running, topology.replicas) if running else 0
        if running is None and topology.discard is not None:
            running, replicas = topology.discard, 0
        deployments: list[dict[str, Any]] = []
        stable_ready = False
        if running is not None:
            wanted = self.wanted(running, replicas, IN_PLACE)
            if not wanted.current:
                deployments.append(wanted.manifest)
            stable_ready = wanted.ready
        # A Service still selecting one release (blue-green before) keeps doing so until the
        # in-place Deployment is available and no other release's pods run: the in-place
        # selector would select them all.
        live = _selector(self.workloads.services.get(self.owner.name)) or {}
        selected = (
            self._deployment_of_release(live[LABEL_RELEASE]) if LABEL_RELEASE in live else None
        )
        keep = {self.owner.name} | ({selected} if selected else set())
        scale_downs, deletes = self._retire(keep, None if stable_ready or selected else "hold")
        others_gone = all(
            name in keep or ("Deployment", name) in deletes for name in self.workloads.deployments
        )
        selector = (
            live
            if selected is not None and not (stable_ready and others_gone)
            else selector_labels(self.owner)
        )
        services, service_deletes = self._services(selector, running, None, with_preview=False)
        serving = running if running is not None and replicas > 0 else None
        if selector is live:  # still on the release the Service selected before
            serving = next(
                (
                    release
                    for release in (topology.stable, topology.candidate, topology.discard)
                    if release is not None and release_id(release.digest) == live[LABEL_RELEASE]
                ),
                serving,
            )
        traffic = (_share(serving, 100),) if serving is not None else ()
        return Routing(
            WorkloadChanges(tuple(deployments), services, scale_downs, deletes + service_deletes),
            stable=serving,
            candidate=topology.candidate,
            traffic=traffic,
        )

    # -- blueGreen -------------------------------------------------------------------------

    def _blue_green(self, topology: Topology) -> Routing:
        replicas = topology.replicas
        stable = (
            self.wanted(topology.stable, _replicas(topology.stable, replicas), BLUE_GREEN)
            if topology.stable
            else None
        )
        candidate = None
        if topology.candidate is not None and (
            topology.stable is None or topology.candidate.digest != topology.stable.digest
        ):
            candidate = self.wanted(
                topology.candidate, _replicas(topology.candidate, replicas), BLUE_GREEN
            )
        selector, selected = self._stable_selector(stable)
        live_selector = _selector(self.workloads.services.get(self.owner.name))
        # Until the stable Service's write that selects by release has landed, it selects
        # every pod of this AIDeployment: no other release may run yet.
        adopting = LABEL_RELEASE not in selector or (
            live_selector is not None and LABEL_RELEASE not in live_selector
        )
        deployments: list[dict[str, Any]] = []
        if stable is not None and not stable.current:
            deployments.append(stable.manifest)
        deferred = None
        if candidate is not None and adopting:
            deferred = (
                f"the Deployment {selected} is being relabelled so that the Service "
                f"{self.owner.name} can tell the releases apart"
            )
        elif candidate is not None and not candidate.current:
            deployments.append(candidate.manifest)
        keep = {w.name for w in (stable, candidate) if w is not None}
        if candidate is not None and adopting:
            keep.discard(candidate.name)
        if selected is not None:
            keep.add(selected)
        if topology.standby is not None and not adopting:
            standby = find_deployment(self.workloads, topology.standby)
            if standby is not None:
                keep.add(standby[0])
        hold = None
        wake_at = None
        if topology.keep_others_until is not None and self.now < topology.keep_others_until:
            hold, wake_at = "delay", topology.keep_others_until
        scale_downs, deletes = self._retire(keep, hold)
        preview_release = (
            topology.candidate if topology.candidate is not None and deferred is None else None
        )
        serving = self._selected_release(selected, stable, candidate, topology)
        services, service_deletes = self._services(
            selector, serving or topology.stable, preview_release, with_preview=topology.preview
        )
        traffic: tuple[TrafficShare, ...] = ()
        if serving is not None:
            traffic = (_share(serving, 100),)
            if preview_release is not None and preview_release.digest != serving.digest:
                traffic += (_share(preview_release, 0),)
        return Routing(
            WorkloadChanges(tuple(deployments), services, scale_downs, deletes + service_deletes),
            stable=serving,
            candidate=topology.candidate,
            traffic=traffic,
            wake_at=wake_at,
            deferred=deferred,
        )

    def _stable_selector(self, stable: _Wanted | None) -> tuple[dict[str, str], str | None]:
        """The stable Service's selector after this plan, and the Deployment it selects.

        It moves to the stable release only once all its pods are available; until then
        it keeps selecting what it selects, if that still runs."""
        if stable is None:
            return release_selector(self.owner, NO_RELEASE), None
        live = _selector(self.workloads.services.get(self.owner.name))
        adopted = LABEL_RELEASE in pod_labels(stable.live or {})
        if stable.ready and adopted:
            return release_selector(self.owner, release_id(stable.release.digest)), stable.name
        if live is not None and LABEL_RELEASE not in live and stable.live is not None:
            # An in-place Deployment being adopted: its pods are selected as before.
            return live, stable.name
        if live is not None and live.get(LABEL_RELEASE) not in (None, NO_RELEASE):
            running = self._deployment_of_release(live[LABEL_RELEASE])
            if running is not None:
                return live, running
        return release_selector(self.owner, release_id(stable.release.digest)), stable.name

    def _deployment_of_release(self, rid: str) -> str | None:
        for name, obj in self.workloads.deployments.items():
            if pod_labels(obj).get(LABEL_RELEASE) == rid:
                return name
        return None

    def _selected_release(
        self,
        selected: str | None,
        stable: _Wanted | None,
        candidate: _Wanted | None,
        topology: Topology,
    ) -> Release | None:
        """The release users are on after this plan: the one whose Deployment the stable
        Service selects, which may still be the standby or the discarded release while
        the stable one becomes available (so that status never claims nothing serves)."""
        if selected is None:
            return None
        for wanted in (stable, candidate):
            if wanted is not None and wanted.name == selected:
                return wanted.release
        for release in (topology.standby, topology.discard):
            found = find_deployment(self.workloads, release) if release is not None else None
            if found is not None and found[0] == selected:
                return release
        return None

    # -- shared ----------------------------------------------------------------------------

    def _services(
        self,
        stable_selector: Mapping[str, str],
        stable: Release | None,
        preview: Release | None,
        with_preview: bool,
    ) -> tuple[tuple[dict[str, Any], ...], tuple[tuple[str, str], ...]]:
        """The stable Service (and the preview one), each only where it differs from what
        runs: a switch already made is not made again."""
        port = serving_port(stable, self.default_port) if stable else self.default_port
        wanted = [
            build_service(self.owner, self.owner.name, self.model_name, port, stable_selector)
        ]
        deletes: list[tuple[str, str]] = []
        name = preview_name(self.owner)
        if with_preview:
            rid = release_id(preview.digest) if preview is not None else NO_RELEASE
            preview_port = serving_port(preview, port) if preview is not None else port
            wanted.append(
                build_service(
                    self.owner,
                    name,
                    self.model_name,
                    preview_port,
                    release_selector(self.owner, rid),
                )
            )
        elif name in self.workloads.services:
            deletes.append(("Service", name))
        applies = tuple(
            service
            for service in wanted
            if not _same_service(self.workloads.services.get(service["metadata"]["name"]), service)
        )
        return applies, tuple(deletes)

    def _retire(
        self, keep: set[str], hold: str | None
    ) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
        """Every other Deployment: scaled to zero, then deleted once its pods are gone.
        `hold` keeps them as they are (the scale-down delay, or an in-place Deployment not
        yet available)."""
        scale_downs: list[str] = []
        deletes: list[tuple[str, str]] = []
        if hold is not None:
            return (), ()
        for name, obj in sorted(self.workloads.deployments.items()):
            if name in keep:
                continue
            if (applied_replicas(obj) or 0) > 0:
                scale_downs.append(name)
            elif int((obj.get("status") or {}).get("replicas", 0) or 0) == 0:
                deletes.append(("Deployment", name))
        return tuple(scale_downs), tuple(deletes)


def _share(release: Release, weight: int) -> TrafficShare:
    return TrafficShare(release=release_id(release.digest), version=release.version, weight=weight)


def _ports(service: Mapping[str, Any] | None) -> list[tuple[Any, Any]]:
    ports = ((service or {}).get("spec") or {}).get("ports") or []
    return [(p.get("port"), p.get("targetPort")) for p in ports if isinstance(p, Mapping)]


def _same_service(live: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    return (
        live is not None
        and _selector(live) == _selector(wanted)
        and _ports(live) == _ports(wanted)
        and all(
            ((live.get("metadata") or {}).get("labels") or {}).get(key) == value
            for key, value in wanted["metadata"]["labels"].items()
        )
    )


def _replicas(release: Release, default: int) -> int:
    return release.replicas if release.replicas is not None else default
