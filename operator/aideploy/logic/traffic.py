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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aideploy.api.constants import LABEL_RELEASE
from aideploy.api.digest import release_id
from aideploy.api.status import Release, TrafficShare
from aideploy.logic.topology import (
    BLUE_GREEN,
    IN_PLACE,
    NO_RELEASE,
    Mode,
    Routing,
    Topology,
    WorkloadChanges,
    Workloads,
    carries,
    deployment_name,
    find_deployment,
    pod_labels,
    preview_name,
    replicas_of,
    same_service,
    selector_of,
    share,
)
from aideploy.logic.workload import (
    Owner,
    RolloutProgress,
    applied_replicas,
    build_deployment,
    build_service,
    release_selector,
    rollout_progress,
    selector_labels,
    serving_port,
)


@dataclass(frozen=True)
class _Wanted:
    release: Release
    name: str
    manifest: dict[str, Any]
    live: Mapping[str, Any] | None

    @property
    def current(self) -> bool:
        return self.live is not None and carries(self.live, self.manifest)

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
        selector = selector_of(live) or (
            selector_labels(self.owner) if mode == IN_PLACE else release_selector(self.owner, rid)
        )
        manifest = build_deployment(
            self.owner, self.model_name, release, replicas, name=name, selector=selector
        )
        return _Wanted(release, name, manifest, live)

    def progress(
        self, release: Release, default_replicas: int, mode: Mode
    ) -> RolloutProgress | None:
        """How the release's own Deployment is doing; None while it does not (yet) run
        exactly that release."""
        return self.wanted(release, replicas_of(release, default_replicas), mode).progress()

    def route(self, topology: Topology) -> Routing:
        if topology.mode == IN_PLACE:
            return self._in_place(topology)
        return self._blue_green(topology)

    # -- inPlace ---------------------------------------------------------------------------

    def _in_place(self, topology: Topology) -> Routing:
        running = topology.candidate or topology.stable
        replicas = replicas_of(running, topology.replicas) if running else 0
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
        live = selector_of(self.workloads.services.get(self.owner.name)) or {}
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
        traffic = (share(serving, 100),) if serving is not None else ()
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
            self.wanted(topology.stable, replicas_of(topology.stable, replicas), BLUE_GREEN)
            if topology.stable
            else None
        )
        candidate = None
        if topology.candidate is not None and (
            topology.stable is None or topology.candidate.digest != topology.stable.digest
        ):
            candidate = self.wanted(
                topology.candidate, replicas_of(topology.candidate, replicas), BLUE_GREEN
            )
        selector, selected = self._stableselector_of(stable)
        live_selector = selector_of(self.workloads.services.get(self.owner.name))
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
            traffic = (share(serving, 100),)
            if preview_release is not None and preview_release.digest != serving.digest:
                traffic += (share(preview_release, 0),)
        return Routing(
            WorkloadChanges(tuple(deployments), services, scale_downs, deletes + service_deletes),
            stable=serving,
            candidate=topology.candidate,
            traffic=traffic,
            wake_at=wake_at,
            deferred=deferred,
        )

    def _stableselector_of(self, stable: _Wanted | None) -> tuple[dict[str, str], str | None]:
        """The stable Service's selector after this plan, and the Deployment it selects.

        It moves to the stable release only once all its pods are available; until then
        it keeps selecting what it selects, if that still runs."""
        if stable is None:
            return release_selector(self.owner, NO_RELEASE), None
        live = selector_of(self.workloads.services.get(self.owner.name))
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
            if not same_service(self.workloads.services.get(service["metadata"]["name"]), service)
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
