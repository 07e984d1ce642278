"""Routing (logic/traffic.py) as tables: which Deployments run, which release each Service
selects, what is scaled down and deleted. Routings are fed back as the apiserver would
return them (`carry_out`), so that convergence and idempotence are tested too."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from aideploy.api.constants import (
    ANNOTATION_SPEC_DIGEST,
    LABEL_DEPLOYMENT,
    LABEL_MANAGED_BY,
    LABEL_MODEL,
    LABEL_RELEASE,
    MANAGED_BY_VALUE,
)
from aideploy.api.digest import release_id
from aideploy.api.status import Release, ReleaseRef, TrafficShare
from aideploy.logic.topology import (
    BLUE_GREEN,
    IN_PLACE,
    NO_RELEASE,
    Routing,
    Topology,
    WorkloadChanges,
    Workloads,
    deployment_name,
    preview_name,
)
from aideploy.logic.traffic import Router
from aideploy.logic.workload import (
    Owner,
    applied_digest,
    build_deployment,
    build_service,
    release_selector,
    rollout_progress,
)

from .factories import NOW

OWNER = Owner(name="fraud-scorer", namespace="ml", uid="uid-1")
MODEL = "fraud-scorer"
STABLE = "fraud-scorer"
PREVIEW = "fraud-scorer-preview"
IN_PLACE_SELECTOR = {LABEL_DEPLOYMENT: "fraud-scorer"}


def make_release(version: str, port: int = 8080, replicas: int | None = None) -> Release:
    digest = "sha256:" + hashlib.sha256(version.encode()).hexdigest()
    container = {
        "name": "server",
        "image": f"mlserver:{version}",
        "ports": [{"containerPort": port}],
    }
    return Release(
        version=version,
        digest=digest,
        generation=1,
        template={"spec": {"containers": [container]}},
        serving={"port": port},
        replicas=replicas,
    )


R0 = make_release("0.9.0")
R1 = make_release("1.0.0")
R2 = make_release("1.1.0")


def rid(release: Release) -> str:
    return release_id(release.digest)


def bg(release: Release) -> str:
    """The name of a release's blue-green Deployment."""
    return f"fraud-scorer-{rid(release)}"


def selects(release: Release | None) -> dict[str, str]:
    """The selector of a Service that sends to `release` (None: to no pod)."""
    return {LABEL_DEPLOYMENT: "fraud-scorer", LABEL_RELEASE: rid(release) if release else "none"}


def blue_green(stable: Release | None, **kw: Any) -> Topology:
    return Topology(mode=BLUE_GREEN, stable=stable, replicas=2, **kw)


def in_place(stable: Release | None, **kw: Any) -> Topology:
    return Topology(mode=IN_PLACE, stable=stable, replicas=2, **kw)


def route(workloads: Workloads, topology: Topology, now: datetime = NOW) -> Routing:
    return Router(OWNER, MODEL, workloads, now).route(topology)


# -- the apiserver -------------------------------------------------------------------------


def with_status(
    manifest: Mapping[str, Any],
    generation: int = 1,
    available: bool = True,
    running: int | None = None,
) -> dict[str, Any]:
    """A Deployment as read back: its generation observed, every pod asked for running
    (`running` pods if given) and available or not."""
    obj: dict[str, Any] = copy.deepcopy(dict(manifest))
    replicas = int(obj["spec"]["replicas"])
    obj["metadata"]["generation"] = generation
    obj["status"] = {
        "observedGeneration": generation,
        "replicas": replicas if running is None else running,
        "updatedReplicas": replicas,
        "availableReplicas": replicas if available else 0,
    }
    return obj


def carry_out(
    routing: Routing | WorkloadChanges,
    before: Workloads | None = None,
    available: bool | Collection[str] = True,
) -> Workloads:
    """The workloads after the I/O layer made the routing's changes over `before`: applied
    manifests replace the live objects (a new generation), scale-downs set replicas to
    0, deletes remove. Every pod asked for runs; those of the Deployments in `available`
    (all, if True) are available, the others not yet."""
    changes = routing.changes if isinstance(routing, Routing) else routing
    base = before or Workloads()
    deployments = {name: copy.deepcopy(dict(obj)) for name, obj in base.deployments.items()}
    services = {name: copy.deepcopy(dict(obj)) for name, obj in base.services.items()}

    def generation(name: str) -> int:
        return int((deployments.get(name, {}).get("metadata") or {}).get("generation", 0)) + 1

    for manifest in changes.deployments:
        name = manifest["metadata"]["name"]
        obj = copy.deepcopy(manifest)
        obj["metadata"]["generation"] = generation(name)
        deployments[name] = obj
    for manifest in changes.services:
        services[manifest["metadata"]["name"]] = copy.deepcopy(manifest)
    for name in changes.scale_downs:
        deployments[name]["spec"]["replicas"] = 0
        deployments[name]["metadata"]["generation"] = generation(name)
    for kind, name in changes.deletes:
        (deployments if kind == "Deployment" else services).pop(name)
    for name, obj in list(deployments.items()):
        ready = available if isinstance(available, bool) else name in available
        deployments[name] = with_status(obj, int(obj["metadata"]["generation"]), ready)
    return Workloads(deployments=deployments, services=services)


def converge(
    topology: Topology, before: Workloads | None = None, limit: int = 5
) -> tuple[Workloads, list[Routing]]:
    """Route and carry out, every pod becoming available, until nothing is left to do."""
    workloads = before or Workloads()
    routings: list[Routing] = []
    for _ in range(limit):
        routing = route(workloads, topology)
        routings.append(routing)
        if not routing.changes:
            return workloads, routings
        workloads = carry_out(routing, workloads)
    raise AssertionError(f"no convergence after {limit} routings: {routings[-1].changes}")


def serving(release: Release, *also: Release) -> Workloads:
    """The workloads once `release` serves (blue-green, preview selecting none), with the
    Deployments of `also` running beside it."""
    workloads, _ = converge(blue_green(release))
    deployments = dict(workloads.deployments)
    for other in also:
        manifest = build_deployment(OWNER, MODEL, other, 2, name=bg(other), selector=selects(other))
        deployments[bg(other)] = with_status(manifest)
    return Workloads(deployments=deployments, services=workloads.services)


def replace_deployment(workloads: Workloads, name: str, obj: Mapping[str, Any]) -> Workloads:
    return Workloads(deployments={**workloads.deployments, name: obj}, services=workloads.services)


def deployment_names(routing: Routing) -> list[str]:
    return [d["metadata"]["name"] for d in routing.changes.deployments]


def service_selectors(routing: Routing) -> dict[str, dict[str, str]]:
    """The Services the routing applies, by name, with their selectors."""
    return {s["metadata"]["name"]: s["spec"]["selector"] for s in routing.changes.services}


def applied(routing: Routing, name: str) -> dict[str, Any]:
    (found,) = [d for d in routing.changes.deployments if d["metadata"]["name"] == name]
    return found


def live_selector(workloads: Workloads, name: str) -> dict[str, str]:
    selector: dict[str, str] = dict(workloads.services[name]["spec"]["selector"])
    return selector


def pod_release(deployment: Mapping[str, Any]) -> str | None:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    value = labels.get(LABEL_RELEASE)
    return str(value) if value is not None else None


def share(release: Release, weight: int) -> TrafficShare:
    return TrafficShare(release=rid(release), version=release.version, weight=weight)


# -- names and the helper itself -------------------------------------------------------------


def test_names_and_release_ids() -> None:
    assert rid(R1) == R1.digest.removeprefix("sha256:")[:10]
    assert len({rid(R0), rid(R1), rid(R2)}) == 3
    assert deployment_name(OWNER, R1) == f"fraud-scorer-{rid(R1)}"
    assert preview_name(OWNER) == "fraud-scorer-preview"
    assert release_selector(OWNER, rid(R1)) == {
        "aideploy.io/deployment": "fraud-scorer",
        "aideploy.io/release": rid(R1),
    }
    assert NO_RELEASE == "none"


def test_carry_out_reports_what_rollout_progress_reads() -> None:
    routing = route(Workloads(), blue_green(None, candidate=R1))
    ready = carry_out(routing).deployments[bg(R1)]
    assert ready["metadata"]["generation"] == 1
    assert ready["status"] == {
        "observedGeneration": 1,
        "replicas": 2,
        "updatedReplicas": 2,
        "availableReplicas": 2,
    }
    assert rollout_progress(ready).complete
    assert not rollout_progress(carry_out(routing, available=False).deployments[bg(R1)]).complete


# -- 1. the first blue-green release ---------------------------------------------------------


def test_first_blue_green_release_runs_behind_the_preview_service_only() -> None:
    routing = route(Workloads(), blue_green(None, candidate=R1))

    assert deployment_names(routing) == [f"fraud-scorer-{rid(R1)}"]
    deployment = applied(routing, bg(R1))
    assert deployment["spec"]["selector"] == {
        "matchLabels": {"aideploy.io/deployment": "fraud-scorer", "aideploy.io/release": rid(R1)}
    }
    assert deployment["spec"]["template"]["metadata"]["labels"][LABEL_RELEASE] == rid(R1)
    assert deployment["spec"]["template"]["metadata"]["labels"][LABEL_DEPLOYMENT] == "fraud-scorer"
    assert deployment["spec"]["replicas"] == 2
    assert applied_digest(deployment) == R1.digest
    assert service_selectors(routing) == {
        "fraud-scorer": {"aideploy.io/deployment": "fraud-scorer", "aideploy.io/release": "none"},
        "fraud-scorer-preview": {
            "aideploy.io/deployment": "fraud-scorer",
            "aideploy.io/release": rid(R1),
        },
    }
    assert routing.changes.scale_downs == ()
    assert routing.changes.deletes == ()
    assert routing.stable is None
    assert routing.candidate == R1
    assert routing.traffic == ()
    assert routing.deferred is None
    assert routing.wake_at is None
    assert routing.refs() == (None, ReleaseRef(id=rid(R1), version="1.0.0"))


@pytest.mark.parametrize("available", [True, False], ids=["available", "not-available"])
def test_first_release_routed_again_changes_nothing(available: bool) -> None:
    topology = blue_green(None, candidate=R1)
    after = carry_out(route(Workloads(), topology), available=available)
    again = route(after, topology)
    assert again.changes == WorkloadChanges()
    assert not again.changes
    assert again.stable is None
    assert again.traffic == ()


def test_release_replicas_override_the_topology() -> None:
    one = make_release("1.2.0", replicas=5)
    routing = route(Workloads(), blue_green(None, candidate=one))
    assert applied(routing, bg(one))["spec"]["replicas"] == 5


# -- 2. the stable Service switch ------------------------------------------------------------


def test_stable_service_switches_once_and_only_when_every_pod_is_available() -> None:
    topology = blue_green(R2, standby=R1)
    before = serving(R1)
    assert live_selector(before, STABLE) == selects(R1)

    # R2's Deployment is applied; the stable Service stays on R1.
    first = route(before, topology)
    assert deployment_names(first) == [bg(R2)]
    assert STABLE not in service_selectors(first)
    assert first.changes.scale_downs == ()
    assert first.changes.deletes == ()

    # R2 runs but is not available: still nothing for the stable Service.
    pending = carry_out(first, before, available={bg(R1)})
    waiting = route(pending, topology)
    assert waiting.changes == WorkloadChanges()

    # Every pod of R2 available: the switch.
    ready = carry_out(waiting, pending, available=True)
    switch = route(ready, topology)
    assert deployment_names(switch) == []
    assert service_selectors(switch) == {STABLE: selects(R2)}
    assert switch.stable == R2
    assert switch.traffic == (share(R2, 100),)
    assert switch.changes.scale_downs == ()  # R1 is the standby

    # The switch made: routing again changes nothing.
    switched = carry_out(switch, ready)
    assert live_selector(switched, STABLE) == selects(R2)
    again = route(switched, topology)
    assert not again.changes
    assert again.changes == WorkloadChanges()
    assert again.stable == R2
    assert again.traffic == (share(R2, 100),)


def _absent(obj: dict[str, Any]) -> dict[str, Any] | None:
    return None


def _no_pod_available(obj: dict[str, Any]) -> dict[str, Any]:
    obj["status"]["availableReplicas"] = 0
    return obj


def _one_of_two_available(obj: dict[str, Any]) -> dict[str, Any]:
    obj["status"]["availableReplicas"] = 1
    return obj


def _generation_not_observed(obj: dict[str, Any]) -> dict[str, Any]:
    obj["metadata"]["generation"] = 2
    obj["status"]["observedGeneration"] = 1
    return obj


def _old_pods_terminating(obj: dict[str, Any]) -> dict[str, Any]:
    obj["status"]["replicas"] = 3
    return obj


def _deadline_exceeded(obj: dict[str, Any]) -> dict[str, Any]:
    obj["status"]["conditions"] = [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    ]
    return obj


def _image_set_by_hand(obj: dict[str, Any]) -> dict[str, Any]:
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = "mlserver:hotfix"
    return obj


def _other_replicas(obj: dict[str, Any]) -> dict[str, Any]:
    obj["spec"]["replicas"] = 1
    return with_status(obj)


NOT_ALL_AVAILABLE = [
    # (R2's Deployment as read, whether the router applies it again)
    pytest.param(_absent, True, id="not-created"),
    pytest.param(_no_pod_available, False, id="no-pod-available"),
    pytest.param(_one_of_two_available, False, id="one-of-two-available"),
    pytest.param(_generation_not_observed, False, id="generation-not-observed"),
    pytest.param(_old_pods_terminating, False, id="old-pods-terminating"),
    pytest.param(_deadline_exceeded, False, id="progress-deadline-exceeded"),
    pytest.param(_image_set_by_hand, True, id="image-set-by-hand"),
    pytest.param(_other_replicas, True, id="other-replica-count"),
]


@pytest.mark.parametrize(("r2", "reapplied"), NOT_ALL_AVAILABLE)
@pytest.mark.parametrize("standby", [R1, None], ids=["standby", "no-standby"])
def test_stable_service_stays_while_the_new_stable_is_not_all_available(
    r2: Callable[[dict[str, Any]], dict[str, Any] | None], reapplied: bool, standby: Release | None
) -> None:
    manifest = build_deployment(OWNER, MODEL, R2, 2, name=bg(R2), selector=selects(R2))
    before = serving(R1)
    changed = r2(with_status(manifest))
    if changed is not None:
        before = replace_deployment(before, bg(R2), changed)

    routing = route(before, blue_green(R2, standby=standby))

    assert STABLE not in service_selectors(routing)
    assert deployment_names(routing) == ([bg(R2)] if reapplied else [])
    assert bg(R1) not in routing.changes.scale_downs
    assert ("Deployment", bg(R1)) not in routing.changes.deletes


R9 = make_release("2.0.0", port=9090)

STILL_SELECTED = [
    # (the release the stable Service selects, the topology: its stable not running yet)
    pytest.param(R1, blue_green(R2, standby=R1), id="go-live-standby-still-selected"),
    pytest.param(R2, blue_green(R1, discard=R2), id="rollback-failed-still-selected"),
]


@pytest.mark.parametrize(("selected", "topology"), STILL_SELECTED)
def test_routing_reports_the_release_the_stable_service_still_selects(
    selected: Release, topology: Topology
) -> None:
    routing = route(serving(selected), topology)
    assert STABLE not in service_selectors(routing)
    assert routing.stable == selected
    assert routing.traffic == (share(selected, 100),)


PORT_CHANGE = [
    # (the release the stable Service selects, the topology, whose stable serves another port)
    pytest.param(R1, blue_green(R9, standby=R1), id="go-live-standby-still-selected"),
    pytest.param(R9, blue_green(R1, discard=R9), id="rollback-failed-still-selected"),
]


@pytest.mark.parametrize(("selected", "topology"), PORT_CHANGE)
def test_stable_service_keeps_its_port_until_the_switch(
    selected: Release, topology: Topology
) -> None:
    before = serving(selected)
    assert before.services[STABLE]["spec"]["ports"][0]["port"] == serving_port_of(selected)
    routing = route(before, topology)
    assert topology.stable is not None
    assert deployment_names(routing) == [bg(topology.stable)]
    written = [s for s in routing.changes.services if s["metadata"]["name"] == STABLE]
    # Fails: written with the selected release's selector and the other release's port.
    assert [(s["spec"]["selector"], s["spec"]["ports"][0]["port"]) for s in written] == []


def serving_port_of(release: Release) -> int:
    return int((release.serving or {})["port"])


def test_stable_service_takes_the_new_port_with_the_switch() -> None:
    before = carry_out(route(serving(R1), blue_green(R9, standby=R1)), serving(R1))
    routing = route(before, blue_green(R9, standby=R1))
    (service,) = [s for s in routing.changes.services if s["metadata"]["name"] == STABLE]
    assert service["spec"]["selector"] == selects(R9)
    assert service["spec"]["ports"] == [
        {"name": "serving", "port": 9090, "targetPort": 9090, "protocol": "TCP"}
    ]


NOTHING_TO_KEEP = [
    # (live stable Service selector, or None for no Service)
    pytest.param(None, id="no-service-yet"),
    pytest.param(selects(None), id="service-selects-none"),
    pytest.param(selects(R0), id="selected-release-no-longer-runs"),
]


@pytest.mark.parametrize("live", NOTHING_TO_KEEP)
def test_stable_service_moves_at_once_when_what_it_selects_does_not_run(
    live: dict[str, str] | None,
) -> None:
    """`_stable_selector`: it keeps selecting what it selects "if that still runs"; when
    nothing runs there is nothing to keep serving, so it goes to the stable release."""
    services = {}
    if live is not None:
        services[STABLE] = build_service(OWNER, STABLE, MODEL, 8080, live)
    routing = route(Workloads(services=services), blue_green(R1))
    assert deployment_names(routing) == [bg(R1)]
    assert service_selectors(routing)[STABLE] == selects(R1)
    assert routing.stable == R1


# -- 3. the selected Deployment is never retired ---------------------------------------------


def _selected_at_zero(workloads: Workloads) -> Workloads:
    obj = copy.deepcopy(dict(workloads.deployments[bg(R1)]))
    obj["spec"]["replicas"] = 0
    return replace_deployment(workloads, bg(R1), with_status(obj))


SELECTED_KEPT = [
    # (topology, how the workloads serving R1 differ, the Deployment the Service selects)
    pytest.param(blue_green(R2), lambda w: w, bg(R1), id="new-stable-not-created"),
    pytest.param(
        blue_green(R2, keep_others_until=NOW - timedelta(hours=1)),
        lambda w: w,
        bg(R1),
        id="delay-over",
    ),
    pytest.param(blue_green(R2, discard=R1), lambda w: w, bg(R1), id="selected-is-discarded"),
    pytest.param(blue_green(R2), _selected_at_zero, bg(R1), id="selected-at-zero-not-deleted"),
    pytest.param(blue_green(R0, discard=R1), lambda w: w, bg(R1), id="rollback-target-not-running"),
]


@pytest.mark.parametrize(("topology", "tweak", "selected"), SELECTED_KEPT)
def test_the_deployment_the_stable_service_selects_is_never_retired(
    topology: Topology, tweak: Callable[[Workloads], Workloads], selected: str
) -> None:
    routing = route(tweak(serving(R1)), topology)
    assert STABLE not in service_selectors(routing)
    assert selected not in routing.changes.scale_downs
    assert ("Deployment", selected) not in routing.changes.deletes
    assert selected not in deployment_names(routing)


def test_the_old_stable_is_retired_once_the_service_has_left_it() -> None:
    before = carry_out(route(serving(R1), blue_green(R2)), serving(R1))
    switch = route(before, blue_green(R2))
    assert service_selectors(switch) == {STABLE: selects(R2)}
    # In the same routing as the switch: R1 no longer selected after it.
    assert switch.changes.scale_downs == (bg(R1),)
    after, routings = converge(blue_green(R2), carry_out(switch, before))
    assert set(after.deployments) == {bg(R2)}
    assert [r.changes.deletes for r in routings] == [(("Deployment", bg(R1)),), ()]


# -- 4. retirement ---------------------------------------------------------------------------

HOUR = timedelta(hours=1)

RETIREMENT = [
    # (R1's spec.replicas, R1's status.replicas, keep_others_until, scale_downs, deletes, wake_at)
    pytest.param(2, 2, None, (bg(R1),), (), None, id="running-scaled-down"),
    pytest.param(0, 0, None, (), (("Deployment", bg(R1)),), None, id="pods-gone-deleted"),
    pytest.param(0, 1, None, (), (), None, id="pods-terminating-waits"),
    pytest.param(2, 2, NOW + HOUR, (), (), NOW + HOUR, id="delay-ahead-no-scale-down"),
    pytest.param(0, 0, NOW + HOUR, (), (), NOW + HOUR, id="delay-ahead-no-delete"),
    pytest.param(2, 2, NOW - HOUR, (bg(R1),), (), None, id="delay-over-scaled-down"),
    pytest.param(2, 2, NOW, (bg(R1),), (), None, id="delay-ending-now-scaled-down"),
    pytest.param(0, 0, NOW - HOUR, (), (("Deployment", bg(R1)),), None, id="delay-over-deleted"),
]


@pytest.mark.parametrize(
    ("replicas", "running", "until", "scale_downs", "deletes", "wake_at"), RETIREMENT
)
def test_deployments_not_kept_are_scaled_down_then_deleted(
    replicas: int,
    running: int,
    until: datetime | None,
    scale_downs: tuple[str, ...],
    deletes: tuple[tuple[str, str], ...],
    wake_at: datetime | None,
) -> None:
    manifest = build_deployment(OWNER, MODEL, R1, replicas, name=bg(R1), selector=selects(R1))
    before = replace_deployment(serving(R2), bg(R1), with_status(manifest, running=running))

    routing = route(before, blue_green(R2, keep_others_until=until))

    assert routing.changes.scale_downs == scale_downs
    assert routing.changes.deletes == deletes
    assert routing.wake_at == wake_at
    assert routing.changes.deployments == ()
    assert routing.changes.services == ()
    assert routing.stable == R2


def test_retirement_is_in_name_order_and_spares_the_kept() -> None:
    before = serving(R2, R0, R1)
    routing = route(before, blue_green(R2))
    assert routing.changes.scale_downs == tuple(sorted([bg(R0), bg(R1)]))
    assert bg(R2) not in routing.changes.scale_downs


# -- 5. the standby --------------------------------------------------------------------------


def _standby_at_zero(workloads: Workloads) -> Workloads:
    manifest = build_deployment(OWNER, MODEL, R1, 0, name=bg(R1), selector=selects(R1))
    return replace_deployment(workloads, bg(R1), with_status(manifest))


STANDBY = [
    # (workloads serving R2, the standby R1's Deployment running, at zero, or absent)
    pytest.param(lambda: serving(R2, R1), id="running"),
    pytest.param(lambda: _standby_at_zero(serving(R2)), id="at-zero"),
    pytest.param(lambda: serving(R2), id="absent"),
]


@pytest.mark.parametrize("workloads", STANDBY)
def test_standby_is_kept_while_it_runs_and_never_started(
    workloads: Callable[[], Workloads],
) -> None:
    before: Workloads = workloads()
    routing = route(before, blue_green(R2, standby=R1))
    assert routing.changes == WorkloadChanges()
    assert routing.stable == R2
    assert routing.traffic == (share(R2, 100),)
    assert set(carry_out(routing, before).deployments) == set(before.deployments)


def test_standby_is_retired_once_no_longer_named() -> None:
    routing = route(serving(R2, R1), blue_green(R2))
    assert routing.changes.scale_downs == (bg(R1),)


# -- 6. candidate equal to stable --------------------------------------------------------------


@pytest.mark.parametrize("before", [Workloads(), serving(R1)], ids=["nothing-runs", "r1-serves"])
def test_candidate_equal_to_the_stable_is_built_once(before: Workloads) -> None:
    topology = blue_green(R1, candidate=R1)
    routing = route(before, topology)
    assert deployment_names(routing) == ([bg(R1)] if not before.deployments else [])
    after, routings = converge(topology, before)
    assert set(after.deployments) == {bg(R1)}
    assert live_selector(after, STABLE) == selects(R1)
    assert live_selector(after, PREVIEW) == selects(R1)
    assert routings[-1].stable == R1
    assert routings[-1].candidate == R1
    assert routings[-1].traffic == (share(R1, 100),)


def test_candidate_beside_the_stable_gets_no_stable_traffic() -> None:
    topology = blue_green(R1, candidate=R2)
    routing = route(serving(R1), topology)
    assert deployment_names(routing) == [bg(R2)]
    assert service_selectors(routing) == {PREVIEW: selects(R2)}
    assert routing.stable == R1
    assert routing.candidate == R2
    assert routing.traffic == (share(R1, 100), share(R2, 0))
    after, routings = converge(topology, carry_out(routing, serving(R1)))
    assert live_selector(after, STABLE) == selects(R1)
    assert set(after.deployments) == {bg(R1), bg(R2)}
    assert len(routings) == 1


# -- 7. the preview Service --------------------------------------------------------------------

PREVIEW_TABLE = [
    # (preview wanted, a preview Service exists, candidate, preview selector applied or None, deletes it)
    pytest.param(False, True, R2, None, True, id="off-existing-deleted"),
    pytest.param(False, True, None, None, True, id="off-no-candidate-existing-deleted"),
    pytest.param(False, False, R2, None, False, id="off-absent-nothing"),
    pytest.param(True, False, None, selects(None), False, id="on-no-candidate-selects-none"),
    pytest.param(True, True, R2, selects(R2), False, id="on-candidate-selected"),
]


@pytest.mark.parametrize(("preview", "exists", "candidate", "selector", "deleted"), PREVIEW_TABLE)
def test_preview_service(
    preview: bool,
    exists: bool,
    candidate: Release | None,
    selector: dict[str, str] | None,
    deleted: bool,
) -> None:
    before = serving(R1)
    if not exists:
        services = {k: v for k, v in before.services.items() if k != PREVIEW}
        before = Workloads(deployments=before.deployments, services=services)
    routing = route(before, blue_green(R1, candidate=candidate, preview=preview))
    assert service_selectors(routing).get(PREVIEW) == selector
    assert (("Service", PREVIEW) in routing.changes.deletes) is deleted
    assert STABLE not in service_selectors(routing)
    after, _ = converge(blue_green(R1, candidate=candidate, preview=preview), before)
    assert (PREVIEW in after.services) is preview


# -- 8. adopting an in-place Deployment of an earlier operator version -----------------------


def legacy() -> Workloads:
    """An in-place Deployment `fraud-scorer` of R1 as an operator without strategies left
    it: pods without the release label, the Service selecting the AIDeployment's pods."""
    manifest = build_deployment(OWNER, MODEL, R1, 2)
    manifest["metadata"]["labels"].pop(LABEL_RELEASE)
    manifest["spec"]["template"]["metadata"]["labels"].pop(LABEL_RELEASE)
    assert manifest["metadata"]["name"] == "fraud-scorer"
    assert manifest["spec"]["selector"] == {"matchLabels": IN_PLACE_SELECTOR}
    assert manifest["metadata"]["annotations"] == {ANNOTATION_SPEC_DIGEST: R1.digest}
    service = build_service(OWNER, STABLE, MODEL, 8080, IN_PLACE_SELECTOR)
    return Workloads(
        deployments={"fraud-scorer": with_status(manifest)}, services={STABLE: service}
    )


def test_adopting_an_in_place_deployment_relabels_switches_then_starts_the_candidate() -> None:
    topology = blue_green(R1, candidate=R2)
    before = legacy()

    # Relabel in place; the candidate waits; the stable Service is not touched.
    relabel = route(before, topology)
    assert deployment_names(relabel) == ["fraud-scorer"]
    relabelled = applied(relabel, "fraud-scorer")
    assert relabelled["spec"]["selector"] == {"matchLabels": IN_PLACE_SELECTOR}
    assert pod_release(relabelled) == rid(R1)
    assert applied_digest(relabelled) == R1.digest
    assert isinstance(relabel.deferred, str)
    assert relabel.deferred
    assert "fraud-scorer" in relabel.deferred
    assert STABLE not in service_selectors(relabel)
    assert service_selectors(relabel) == {PREVIEW: selects(None)}
    assert relabel.changes.scale_downs == ()
    assert relabel.changes.deletes == ()
    assert relabel.stable == R1
    assert relabel.candidate == R2
    assert relabel.traffic == (share(R1, 100),)

    # Relabelled but not available yet: still waiting, the old selector kept.
    pending = carry_out(relabel, before, available=False)
    wait = route(pending, topology)
    assert wait.changes == WorkloadChanges()
    assert wait.deferred
    assert live_selector(pending, STABLE) == IN_PLACE_SELECTOR

    # Available: the stable Service selects R1's release, the Deployment keeps its name.
    ready = carry_out(wait, pending, available=True)
    switch = route(ready, topology)
    assert service_selectors(switch)[STABLE] == selects(R1)
    assert "fraud-scorer" not in deployment_names(switch)
    assert switch.deferred  # until that write has landed, the Service selects every pod
    assert bg(R2) not in deployment_names(switch)
    assert switch.stable == R1

    # Then the candidate runs beside it, behind the preview Service only.
    after, routings = converge(topology, carry_out(switch, ready))
    started = [name for r in (switch, *routings) for name in deployment_names(r)]
    assert started == [bg(R2)]
    assert set(after.deployments) == {"fraud-scorer", bg(R2)}
    assert after.deployments["fraud-scorer"]["spec"]["selector"] == {
        "matchLabels": IN_PLACE_SELECTOR
    }
    assert live_selector(after, STABLE) == selects(R1)
    assert live_selector(after, PREVIEW) == selects(R2)
    assert routings[-1].traffic == (share(R1, 100), share(R2, 0))
    # Why R2 must not run while the Service selects by aideploy.io/deployment alone:
    r2_pods = after.deployments[bg(R2)]["spec"]["template"]["metadata"]["labels"]
    assert IN_PLACE_SELECTOR.items() <= r2_pods.items()


def _in_place_of_this_operator() -> Workloads:
    """An in-place Deployment built by this operator (pods labelled), its Service selecting
    by `aideploy.io/deployment` alone: what the spec's inPlace strategy leaves."""
    workloads, _ = converge(in_place(R1))
    return workloads


STILL_SELECTING_ALL = [
    pytest.param(
        lambda: carry_out(route(legacy(), blue_green(R1, candidate=R2)), legacy()),
        id="legacy-relabelled",
    ),
    pytest.param(_in_place_of_this_operator, id="in-place-strategy"),
]


@pytest.mark.parametrize("workloads", STILL_SELECTING_ALL)
def test_no_candidate_pod_runs_while_the_live_service_selects_every_pod(
    workloads: Callable[[], Workloads],
) -> None:
    before: Workloads = workloads()
    assert live_selector(before, STABLE) == IN_PLACE_SELECTOR
    routing = route(before, blue_green(R1, candidate=R2))
    assert service_selectors(routing)[STABLE] == selects(R1)
    assert bg(R2) not in deployment_names(routing)


def test_adoption_retires_the_standby_and_the_candidate_while_the_service_selects_all() -> None:
    manifest = build_deployment(OWNER, MODEL, R2, 2, name=bg(R2), selector=selects(R2))
    standby = build_deployment(OWNER, MODEL, R0, 2, name=bg(R0), selector=selects(R0))
    before = legacy()
    before = replace_deployment(before, bg(R2), with_status(manifest))
    before = replace_deployment(before, bg(R0), with_status(standby))
    routing = route(before, blue_green(R1, candidate=R2, standby=R0))
    assert routing.deferred
    assert deployment_names(routing) == ["fraud-scorer"]
    assert routing.changes.scale_downs == tuple(sorted([bg(R0), bg(R2)]))
    assert "fraud-scorer" not in routing.changes.scale_downs


def test_settling_an_adopted_release_switches_and_converges() -> None:
    after, routings = converge(blue_green(R1), legacy())
    assert set(after.deployments) == {"fraud-scorer"}
    assert pod_release(after.deployments["fraud-scorer"]) == rid(R1)
    assert live_selector(after, STABLE) == selects(R1)
    assert [deployment_names(r) for r in routings] == [["fraud-scorer"], [], []]
    assert [STABLE in service_selectors(r) for r in routings] == [False, True, False]


# -- 9. inPlace --------------------------------------------------------------------------------


def test_in_place_runs_one_deployment_selected_by_the_deployment_label() -> None:
    routing = route(Workloads(), in_place(R1))
    assert deployment_names(routing) == ["fraud-scorer"]
    deployment = applied(routing, "fraud-scorer")
    assert deployment["spec"]["selector"] == {"matchLabels": IN_PLACE_SELECTOR}
    assert pod_release(deployment) == rid(R1)
    assert service_selectors(routing) == {STABLE: IN_PLACE_SELECTOR}
    assert routing.stable == R1
    assert routing.traffic == (share(R1, 100),)
    assert routing.deferred is None

    after, routings = converge(in_place(R1), carry_out(routing))
    assert set(after.deployments) == {"fraud-scorer"}
    assert set(after.services) == {STABLE}
    assert len(routings) == 1


def test_in_place_updates_its_deployment_with_the_candidate() -> None:
    before, _ = converge(in_place(R1))
    routing = route(before, in_place(R1, candidate=R2))
    assert deployment_names(routing) == ["fraud-scorer"]
    assert pod_release(applied(routing, "fraud-scorer")) == rid(R2)
    assert routing.changes.services == ()
    assert routing.stable == R2
    assert routing.traffic == (share(R2, 100),)


def test_in_place_deletes_the_preview_service() -> None:
    before = serving(R1)
    assert PREVIEW in before.services
    routing = route(before, in_place(R1))
    assert ("Service", PREVIEW) in routing.changes.deletes
    assert PREVIEW not in service_selectors(routing)
    assert STABLE not in service_selectors(routing)  # on R1 until the in-place one is up


def test_in_place_keeps_blue_green_deployments_until_it_is_available() -> None:
    before = serving(R1)
    topology = in_place(R1)

    start = route(before, topology)
    assert deployment_names(start) == ["fraud-scorer"]
    assert service_selectors(start) == {}  # still R1's release selector
    assert start.stable == R1
    assert start.changes.scale_downs == ()
    assert start.changes.deletes == (("Service", PREVIEW),)

    pending = carry_out(start, before, available={bg(R1)})
    wait = route(pending, topology)
    assert wait.changes == WorkloadChanges()

    # Available, and no other release runs: the Service selects by the Deployment's name,
    # the blue-green Deployment of the same release beside it is kept until then.
    ready = carry_out(wait, pending, available=True)
    switch = route(ready, topology)
    assert service_selectors(switch) == {STABLE: IN_PLACE_SELECTOR}
    assert switch.changes.scale_downs == ()

    retire = route(carry_out(switch, ready, available=True), topology)
    assert retire.changes.scale_downs == (bg(R1),)
    assert retire.changes.deployments == ()
    assert retire.changes.services == ()

    after, routings = converge(topology, carry_out(retire, carry_out(switch, ready)))
    assert set(after.deployments) == {"fraud-scorer"}
    assert set(after.services) == {STABLE}
    assert [r.changes.deletes for r in routings] == [(("Deployment", bg(R1)),), ()]


def test_in_place_does_not_send_users_to_another_releases_pods() -> None:
    before = serving(R1, R0)
    assert live_selector(before, STABLE) == selects(R1)
    routing = route(before, in_place(R1))
    selector = service_selectors(routing).get(STABLE, live_selector(before, STABLE))
    r0_pods = before.deployments[bg(R0)]["spec"]["template"]["metadata"]["labels"]
    selects_r0 = selector.items() <= r0_pods.items()
    assert not selects_r0 or bg(R0) in routing.changes.scale_downs


def test_in_place_discard_without_stable_keeps_the_template_at_zero() -> None:
    before, _ = converge(in_place(R1))
    topology = in_place(None, discard=R1)
    routing = route(before, topology)
    assert deployment_names(routing) == ["fraud-scorer"]
    deployment = applied(routing, "fraud-scorer")
    assert deployment["spec"]["replicas"] == 0
    assert pod_release(deployment) == rid(R1)
    assert applied_digest(deployment) == R1.digest
    assert routing.stable is None
    assert routing.traffic == ()
    assert routing.changes.services == ()
    after, routings = converge(topology, carry_out(routing, before))
    assert after.deployments["fraud-scorer"]["spec"]["replicas"] == 0
    assert len(routings) == 1


def test_in_place_nothing_to_run() -> None:
    routing = route(Workloads(), in_place(None))
    assert routing.changes.deployments == ()
    assert service_selectors(routing) == {STABLE: IN_PLACE_SELECTOR}
    assert routing.stable is None
    assert routing.traffic == ()


# -- 10. Services applied only where they differ -----------------------------------------------


def _service(**spec: Any) -> dict[str, Any]:
    service = build_service(OWNER, STABLE, MODEL, 8080, selects(R1))
    service["spec"].update(spec)
    return service


def _labelled(labels: dict[str, str]) -> dict[str, Any]:
    service = _service()
    service["metadata"]["labels"] = labels
    return service


WANTED_LABELS = {
    LABEL_DEPLOYMENT: "fraud-scorer",
    LABEL_MODEL: MODEL,
    LABEL_MANAGED_BY: MANAGED_BY_VALUE,
    LABEL_RELEASE: rid(R1),
}

SERVICE_TABLE = [
    # (live stable Service, applied again)
    pytest.param(_service(), False, id="same"),
    pytest.param(None, True, id="missing"),
    pytest.param(_service(selector=selects(R0)), True, id="other-selector"),
    pytest.param(_service(selector=IN_PLACE_SELECTOR), True, id="selector-without-release"),
    pytest.param(
        _service(ports=[{"name": "serving", "port": 80, "targetPort": 8080, "protocol": "TCP"}]),
        True,
        id="other-port",
    ),
    pytest.param(
        _service(ports=[{"name": "serving", "port": 8080, "targetPort": 9090, "protocol": "TCP"}]),
        True,
        id="other-target-port",
    ),
    pytest.param(
        _service(ports=[{"name": "http", "port": 8080, "targetPort": 8080}]),
        False,
        id="port-name-and-protocol-ignored",
    ),
    pytest.param(
        _service(clusterIP="10.0.0.1", type="ClusterIP"), False, id="apiserver-fields-ignored"
    ),
    pytest.param(_labelled({**WANTED_LABELS, "team": "risk"}), False, id="extra-label-kept"),
    pytest.param(_labelled({**WANTED_LABELS, LABEL_MODEL: "other"}), True, id="other-label-value"),
    pytest.param(
        _labelled({k: v for k, v in WANTED_LABELS.items() if k != LABEL_RELEASE}),
        True,
        id="label-missing",
    ),
]


@pytest.mark.parametrize(("live", "reapplied"), SERVICE_TABLE)
def test_services_are_applied_only_where_they_differ(
    live: dict[str, Any] | None, reapplied: bool
) -> None:
    assert _service()["metadata"]["labels"] == WANTED_LABELS
    before = serving(R1)
    services = {k: v for k, v in before.services.items() if k != STABLE}
    if live is not None:
        services[STABLE] = live
    routing = route(Workloads(deployments=before.deployments, services=services), blue_green(R1))
    assert (STABLE in service_selectors(routing)) is reapplied
    assert PREVIEW not in service_selectors(routing)
    if reapplied:
        assert service_selectors(routing)[STABLE] == selects(R1)


# -- whole rollouts ----------------------------------------------------------------------------

ROLLOUT = [
    # (step, what runs after it, what the stable Service selects)
    (blue_green(None, candidate=R1), {bg(R1)}, selects(None)),
    (blue_green(R1), {bg(R1)}, selects(R1)),
    (blue_green(R1, candidate=R2), {bg(R1), bg(R2)}, selects(R1)),
    (blue_green(R2, standby=R1), {bg(R1), bg(R2)}, selects(R2)),
    (blue_green(R2, keep_others_until=NOW + HOUR), {bg(R1), bg(R2)}, selects(R2)),
    (blue_green(R2, keep_others_until=NOW - HOUR), {bg(R2)}, selects(R2)),
]


def test_a_whole_blue_green_rollout_converges_step_by_step() -> None:
    workloads = Workloads()
    for topology, running, selector in ROLLOUT:
        workloads, _ = converge(topology, workloads)
        assert set(workloads.deployments) == running
        assert live_selector(workloads, STABLE) == selector
        assert not route(workloads, topology).changes
