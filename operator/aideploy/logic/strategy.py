"""What each step of the rollout wants of the workloads (see traffic.py for how that is
carried out): the candidate runs beside the serving release until go-live; the previous
release stays ready through the watch and the scale-down delay; a rollback selects a
release that still runs before it starts one.

The strategy of a rollout is the one its release was started with, so that an upgrade of
the operator or an edited default never changes the strategy of a rollout under way; a
release started by a version without strategies was rolled out in place."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aideploy.api.durations import parse_duration
from aideploy.api.spec import AIDeploymentSpec
from aideploy.api.status import Release
from aideploy.api.times import parse_time
from aideploy.logic.plan import Draft
from aideploy.logic.topology import BLUE_GREEN, CANARY, IN_PLACE, Mode, Topology, preview_name


def spec_mode(spec: AIDeploymentSpec) -> Mode:
    if spec.strategy.canary is not None:
        return CANARY
    return IN_PLACE if spec.strategy.blue_green_or_default is None else BLUE_GREEN


def release_mode(release: Release) -> Mode:
    if release.strategy in (BLUE_GREEN, CANARY):
        return BLUE_GREEN if release.strategy == BLUE_GREEN else CANARY
    return IN_PLACE


def uses_preview(spec: AIDeploymentSpec) -> bool:
    if spec.strategy.canary is not None:
        return True  # the canary Service
    blue_green = spec.strategy.blue_green_or_default
    return blue_green is not None and blue_green.preview_service


def scale_down_delay(spec: AIDeploymentSpec) -> timedelta:
    if spec.strategy.canary is not None:
        return parse_duration(spec.strategy.canary.scale_down_delay)
    blue_green = spec.strategy.blue_green_or_default
    return parse_duration(blue_green.scale_down_delay) if blue_green else timedelta(0)


def route_name(spec: AIDeploymentSpec) -> str | None:
    """The HTTPRoute a canary's weights go to (None: replica ratio, or not a canary)."""
    canary = spec.strategy.canary
    routing = canary.traffic_routing if canary is not None else None
    return routing.gateway_api.http_route if routing and routing.gateway_api else None


def _route(draft: Draft, spec: AIDeploymentSpec) -> str | None:
    """The spec's HTTPRoute, else the one a canary wrote weights to before: it is put back
    to (100, 0) even when the spec no longer names it (a changed strategy or route)."""
    named = route_name(spec)
    if named is not None:
        return named
    state = draft.updates.get("canary", draft.status.canary)
    return state.route if state is not None else None


def _previous(draft: Draft, release: Release) -> Release | None:
    """The release serving before this rollout: the last good one, unless it is this one."""
    previous = draft.updates.get("last_good_release", draft.status.last_good_release)
    if previous is None or previous.digest == release.digest:
        return None
    return previous


def rolling_out(draft: Draft, spec: AIDeploymentSpec, release: Release) -> None:
    """Deploying, Verifying, Held: the candidate beside the release that serves."""
    draft.route(
        Topology(
            mode=release_mode(release),
            stable=_previous(draft, release),
            candidate=release,
            replicas=spec.replicas,
            preview=uses_preview(spec),
            route=_route(draft, spec),
        )
    )


def canary_weight(draft: Draft, spec: AIDeploymentSpec, release: Release) -> int:
    """The share of users the release has reached in its canary steps (0 before they
    start, 100 once they are all done, or when it is not a canary)."""
    state = draft.updates.get("canary", draft.status.canary)
    canary = spec.strategy.canary
    if canary is None:
        return 100
    if state is None or state.digest != release.digest:
        return 0  # its steps have not started
    return 100 if state.step >= len(canary.steps) else min(state.weight, 99)


def traffic_steps(draft: Draft, release: Release) -> list[dict[str, Any]] | None:
    """The canary steps the release took, for its closure record (None: not a canary)."""
    state = draft.updates.get("canary", draft.status.canary)
    if state is None or state.digest != release.digest or not state.history:
        return None
    return [step.to_wire() for step in state.history]


def canary_pending(draft: Draft, spec: AIDeploymentSpec, release: Release) -> bool:
    """Whether the release still has canary steps to take, or is still being promoted to
    everyone after them (a first release has nobody to share users with: it has none)."""
    if not (
        spec.strategy.canary is not None
        and release_mode(release) == CANARY
        and _previous(draft, release) is not None
    ):
        return False
    canary = spec.strategy.canary
    assert canary is not None
    state = draft.updates.get("canary", draft.status.canary)
    steps_left = state is None or state.digest != release.digest or state.step < len(canary.steps)
    return steps_left or not promoted(draft, release)


def promoted(draft: Draft, release: Release) -> bool:
    """Whether the routed workloads already serve everyone from `release`: nothing left
    to write, and the stable Service selects it."""
    routing = draft.routing()
    return (
        routing is not None
        and not routing.changes
        and routing.stable is not None
        and routing.stable.digest == release.digest
    )


def live(draft: Draft, spec: AIDeploymentSpec, release: Release) -> None:
    """Gone live and watched: users on the release, the previous one ready to return to.
    A canary with a previous release gets the weight its steps have reached; without one
    (a first release) there is nobody to share with, and it serves everyone."""
    previous = _previous(draft, release)
    mode = release_mode(release)
    if mode == CANARY and previous is not None:
        draft.route(
            Topology(
                mode=CANARY,
                stable=previous,
                candidate=release,
                weight=canary_weight(draft, spec, release),
                replicas=spec.replicas,
                preview=True,
                route=_route(draft, spec),
            )
        )
        return
    draft.route(
        Topology(
            mode=mode,
            stable=release,
            standby=previous,
            replicas=spec.replicas,
            preview=uses_preview(spec),
            route=_route(draft, spec),
        )
    )


def settled_live(draft: Draft, spec: AIDeploymentSpec, release: Release) -> None:
    """Succeeded: the previous release is kept for the scale-down delay after the watch,
    then removed. Under the spec's strategy, so that an in-place release of an earlier
    operator version is adopted here."""
    closed = parse_time(release.closed_at) if release.closed_at else draft.now
    draft.route(
        Topology(
            mode=spec_mode(spec),
            stable=release,
            replicas=spec.replicas,
            preview=uses_preview(spec),
            keep_others_until=closed + scale_down_delay(spec),
            route=_route(draft, spec),
        )
    )


def rolled_back(
    draft: Draft, spec: AIDeploymentSpec, failed: Release, target: Release | None, settled: bool
) -> None:
    """Users back on `target` (None: on nothing); the failed release taken out."""
    draft.route(
        Topology(
            mode=spec_mode(spec) if settled else release_mode(failed),
            stable=target,
            discard=failed,
            replicas=spec.replicas,
            preview=uses_preview(spec),
            route=_route(draft, spec),
        )
    )


def probe_service(draft: Draft, spec: AIDeploymentSpec, purpose: str) -> str:
    """The Service that probes without a URL go to: the preview Service while a blue-green
    candidate is verified, else the stable one."""
    topology = draft.topology
    if (
        purpose in ("verification", "analysis")
        and topology is not None
        and topology.mode in (BLUE_GREEN, CANARY)
        and topology.preview
        and topology.candidate is not None
    ):
        return preview_name(draft.obs.owner)
    return draft.obs.owner.name


def strategy_problems(spec: AIDeploymentSpec) -> list[str]:
    """Without a preview Service nothing reaches a blue-green candidate but a probe that
    names its own URL: a probe that names none would verify the serving release."""
    blue_green = spec.strategy.blue_green_or_default
    if blue_green is None or blue_green.preview_service:
        return []
    unaddressed = [
        probe.name
        for probe in spec.verification.probes
        if (probe.http is not None and not probe.http.url)
        or (probe.inference is not None and not probe.inference.url)
    ]
    if not unaddressed:
        return []
    return [
        f"spec.strategy.blueGreen.previewService is false, so verification probes "
        f"{', '.join(unaddressed)} (which name no url) would reach the serving release, "
        "not the candidate; give them a url or keep the preview Service"
    ]
