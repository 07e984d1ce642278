"""Canary steps as tables over the simulator: the weights written (to an HTTPRoute, or as a
replica ratio), pauses, analysis, promotion, RED at each step, and restarts."""

from __future__ import annotations

from typing import Any

import pytest

from aideploy.api.constants import PROMOTE_ANNOTATION, ROLLBACK_ANNOTATION
from aideploy.logic.canary_routing import ratio_replicas
from aideploy.logic.httproute import RouteWeights, current_weights, route_problem, weights_patch

from .simulator import NAME, Simulator
from .test_verification import SIGNAL, second_release, spec_with

PREVIEW = f"{NAME}-preview"
ROUTE = "scorer-route"
STEPS: list[dict[str, Any]] = [
    {"setWeight": 20},
    {"analysis": {}},
    {"setWeight": 50},
    {"pause": {"duration": "1m"}},
    {"setWeight": 80},
    {"pause": {}},
]


def canary(routed: bool = True, steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    strategy: dict[str, Any] = {"steps": steps if steps is not None else STEPS}
    if routed:
        strategy["trafficRouting"] = {"gatewayAPI": {"httpRoute": ROUTE}}
    return {"canary": strategy}


def http_route(extra_rule: bool = False) -> dict[str, Any]:
    rules: list[dict[str, Any]] = [
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": [
                {"name": NAME, "port": 8080, "weight": 100},
                {"name": PREVIEW, "port": 8080, "weight": 0},
            ],
        }
    ]
    if extra_rule:
        rules.append({"backendRefs": [{"name": "other", "port": 80}]})
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": ROUTE, "namespace": "ml", "resourceVersion": "1"},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": rules},
    }


def route_weights(sim: Simulator) -> tuple[int, int]:
    found = current_weights(sim.cluster.routes[ROUTE], NAME, PREVIEW)
    assert found is not None
    return found.stable, found.canary


def live_on_v1(strategy: dict[str, Any], with_route: bool = True) -> Simulator:
    sim = Simulator(spec_with(strategy=strategy))
    if with_route:
        sim.cluster.routes[ROUTE] = http_route()
    sim.settle()
    assert sim.phase() == "Succeeded" and sim.serving_version() == "1.0.0"
    return sim


def weights_seen(sim: Simulator, rounds: int = 12) -> list[tuple[str | None, tuple[int, int]]]:
    seen = []
    for _ in range(rounds):
        sim.reconcile()
        seen.append((sim.phase(), route_weights(sim)))
    return seen


# -- builders -------------------------------------------------------------------------------

RATIO = [
    # (replicas, weight, candidate pods)
    (2, 0, 0),
    (2, 1, 1),
    (2, 20, 1),
    (4, 20, 1),
    (4, 50, 4),
    (4, 80, 4),  # at most as many as the previous release: at most 50%
    (3, 100, 3),
]


@pytest.mark.parametrize(("replicas", "weight", "pods"), RATIO)
def test_ratio_replicas(replicas: int, weight: int, pods: int) -> None:
    assert ratio_replicas(replicas, weight) == pods


def test_weights_patch_touches_only_the_two_backend_refs() -> None:
    route = http_route(extra_rule=True)
    patch = weights_patch(route, NAME, PREVIEW, RouteWeights(80, 20))
    assert patch is not None
    assert patch["metadata"] == {"resourceVersion": "1"}
    rules = patch["spec"]["rules"]
    assert [r["weight"] for r in rules[0]["backendRefs"]] == [80, 20]
    assert rules[0]["matches"] == route["spec"]["rules"][0]["matches"]
    assert rules[1] == route["spec"]["rules"][1]
    assert route["spec"]["rules"][0]["backendRefs"][0]["weight"] == 100  # not modified
    assert weights_patch(route, NAME, PREVIEW, RouteWeights(100, 0)) is None  # nothing to do


@pytest.mark.parametrize(
    ("route", "words"),
    [
        (None, "does not exist"),
        ({"metadata": {}, "spec": {"rules": [{"backendRefs": [{"name": NAME}]}]}}, "no rule"),
        (
            {
                "metadata": {},
                "spec": {
                    "rules": [
                        {"backendRefs": [{"name": NAME}, {"name": PREVIEW, "namespace": "x"}]}
                    ]
                },
            },
            "no rule",
        ),
    ],
)
def test_a_route_that_cannot_carry_the_weights_is_named(
    route: dict[str, Any] | None, words: str
) -> None:
    problem = route_problem(route, ROUTE, NAME, PREVIEW)
    assert problem is not None and words in problem and ROUTE in problem


def test_a_backend_ref_without_weight_counts_as_one() -> None:
    route = http_route()
    for ref in route["spec"]["rules"][0]["backendRefs"]:
        del ref["weight"]
    assert current_weights(route, NAME, PREVIEW) == RouteWeights(1, 1)


# -- the steps, through an HTTPRoute ---------------------------------------------------------


def test_canary_weights_follow_the_steps_through_the_http_route() -> None:
    sim = live_on_v1(canary())
    assert route_weights(sim) == (100, 0)
    second_release(sim, strategy=canary())
    seen = weights_seen(sim, 8)
    assert sim.phase() == "Monitoring"
    weights = [w for _, w in seen]
    assert (80, 20) in weights and (50, 50) in weights
    assert weights.index((80, 20)) < weights.index((50, 50))
    assert "2.0.0" not in [sim.serving_version()]  # the stable Service is still on 1.0.0
    assert sim.status.canary is not None and sim.status.canary.weight == 50
    assert [t.weight for t in sim.status.traffic] == [50, 50]
    assert "paused until" in (sim.status.message or "")
    sim.advance(61)  # the one-minute pause ends
    for _ in range(4):
        sim.reconcile()
    assert route_weights(sim) == (20, 80)
    assert sim.condition("Ready") == ("True", "CanaryPaused")
    assert "kubectl aideploy promote" in (sim.status.message or "")
    sim.annotations[PROMOTE_ANNOTATION] = "looks good"
    sim.settle()
    # Promoted: the stable Service selects 2.0.0, then the route sends everyone to it.
    assert sim.serving_version() == "2.0.0"
    assert route_weights(sim) == (100, 0)
    assert PROMOTE_ANNOTATION not in sim.annotations
    assert sim.phase() == "Succeeded"
    assert [t.version for t in sim.status.traffic] == ["2.0.0"]
    details = [h.detail for h in sim.status.canary.history]  # type: ignore[union-attr]
    assert details[0].startswith("weight 20%") and "pause ended by" in details[-1]
    # The closure record says when the weight moved and why.
    closure = [r for r in sim.cluster.record_objects if r["spec"]["type"] == "closure"][-1]
    assert [t["detail"] for t in closure["spec"]["content"]["trafficSteps"]] == details


def test_promotion_switches_the_service_before_the_route_moves_weight_to_it() -> None:
    sim = live_on_v1(canary(steps=[{"setWeight": 30}]))
    second_release(sim, strategy=canary(steps=[{"setWeight": 30}]))
    sim.settle()
    writes = [w for w in sim.cluster.writes if w[2] in (NAME, ROUTE)]
    switch = writes.index(("apply", "Service", NAME), 1)
    last_patch = len(writes) - 1 - writes[::-1].index(("patch", "HTTPRoute", ROUTE))
    assert switch < last_patch  # users never fall back on 1.0.0 while the route moves


@pytest.mark.parametrize("at_step", [0, 1, 2, 3])
def test_red_at_any_step_puts_the_weight_back_to_zero_and_removes_the_canary(
    at_step: int,
) -> None:
    sim = live_on_v1(canary())
    v1 = next(iter(sim.cluster.deployments))
    second_release(sim, strategy=canary())
    sim.reconcile()  # Deploying; verification (GREEN) follows in the next reconcile
    sim.reconcile()
    if at_step == 1:
        sim.probe_script = {"golden": "RED"}  # the analysis step, at 20%
    for _ in range(12):
        sim.reconcile()
        state = sim.status.canary
        if sim.phase() != "Monitoring" or (state is not None and state.step >= at_step):
            break
    if at_step != 1:
        sim.annotations[ROLLBACK_ANNOTATION] = "error budget"
    sim.probe_script = {}
    sim.settle()
    assert sim.phase() == "RolledBack"
    assert route_weights(sim) == (100, 0)
    assert sim.serving_version() == "1.0.0"
    assert list(sim.cluster.deployments) == [v1]
    reason = sim.status.condition("RolledBack")
    assert reason is not None and reason.reason == (
        "AnalysisRed" if at_step == 1 else "ManualRollback"
    )


def test_weight_leaves_the_canary_before_its_preview_service_stops_selecting_it() -> None:
    sim = live_on_v1(canary())
    second_release(sim, strategy=canary())
    for _ in range(4):
        sim.reconcile()
    assert route_weights(sim)[1] > 0
    mark = len(sim.cluster.writes)
    candidate = sim.candidate
    assert candidate is not None
    sim.annotations[ROLLBACK_ANNOTATION] = "no"
    sim.reconcile()
    # The route is written first; the preview Service keeps its pods for this reconcile.
    assert route_weights(sim) == (100, 0)
    assert sim.candidate is not None
    assert sim.candidate["metadata"]["name"] == candidate["metadata"]["name"]
    sim.settle()
    writes = sim.cluster.writes[mark:]
    assert writes.index(("patch", "HTTPRoute", ROUTE)) < writes.index(("apply", "Service", PREVIEW))
    assert sim.candidate is None and sim.phase() == "RolledBack"


def test_a_missing_route_holds_the_canary_at_zero_and_says_what_to_do() -> None:
    sim = live_on_v1(canary(), with_route=False)
    second_release(sim, strategy=canary())
    sim.settle()
    assert sim.phase() == "Monitoring" and sim.serving_version() == "1.0.0"
    assert sim.condition("Ready") == ("True", "TrafficRoutingUnavailable")
    assert ROUTE in (sim.status.message or "") and "create it" in (sim.status.message or "")
    assert sim.status.canary is not None and sim.status.canary.step == 0
    sim.cluster.routes[ROUTE] = http_route()  # a person creates it
    sim.advance(31)
    sim.reconcile()
    assert route_weights(sim) == (80, 20)  # the first step, now written


def test_a_restart_during_a_pause_neither_repeats_nor_skips_it() -> None:
    steps = [{"setWeight": 10}, {"pause": {"duration": "5m"}}, {"setWeight": 40}]
    sim = live_on_v1(canary(steps=steps))
    second_release(sim, strategy=canary(steps=steps))
    sim.settle()
    started = sim.status.canary
    assert started is not None and started.step == 1 and route_weights(sim) == (90, 10)
    sim.restart()
    restarted = sim
    restarted.advance(299)
    restarted.settle()
    assert restarted.status.canary is not None and restarted.status.canary.step == 1
    restarted.advance(2)
    restarted.settle()
    assert restarted.phase() == "Succeeded" and restarted.serving_version() == "2.0.0"


# -- by replica ratio -----------------------------------------------------------------------


def test_replica_ratio_runs_both_releases_behind_the_stable_service_and_says_it_is_approximate() -> (
    None
):
    steps = [{"setWeight": 25}, {"pause": {}}]
    sim = live_on_v1(canary(routed=False, steps=steps), with_route=False)
    second_release(sim, strategy=canary(routed=False, steps=steps))
    sim.settle()
    assert sim.condition("Ready") == ("True", "CanaryPaused")
    selector = sim.cluster.services[NAME]["spec"]["selector"]
    assert selector == {"aideploy.io/deployment": NAME}  # both releases' pods
    replicas = sorted(d["spec"]["replicas"] for d in sim.cluster.deployments.values())
    assert replicas == [1, 2]  # 2 of 1.0.0, 1 of 2.0.0
    assert [(t.version, t.weight) for t in sim.status.traffic] == [("1.0.0", 67), ("2.0.0", 33)]
    sim.annotations[PROMOTE_ANNOTATION] = "ok"
    sim.node_ready = False  # 2.0.0's second pod is slow to come up
    sim.reconcile()
    sim.reconcile()
    # Not Succeeded while users are still on both releases: promotion waits for the pods.
    assert sim.phase() == "Monitoring" and "promoting" in (sim.status.message or "")
    assert sim.cluster.services[NAME]["spec"]["selector"] == {"aideploy.io/deployment": NAME}
    sim.node_ready = True
    sim.settle()
    assert sim.phase() == "Succeeded" and sim.serving_version() == "2.0.0"
    assert sim.cluster.services[NAME]["spec"]["selector"]["aideploy.io/release"]


def test_replica_ratio_red_switches_back_to_the_previous_release_only() -> None:
    steps = [{"setWeight": 50}, {"analysis": {}}]
    sim = live_on_v1(canary(routed=False, steps=steps), with_route=False)
    v1 = next(iter(sim.cluster.deployments))
    second_release(sim, strategy=canary(routed=False, steps=steps))
    sim.reconcile()
    sim.reconcile()
    sim.probe_script = {"golden": "RED"}
    sim.settle()
    assert sim.phase() == "RolledBack"
    assert sim.cluster.services[NAME]["spec"]["selector"].get("aideploy.io/release")
    assert sim.serving_version() == "1.0.0" and list(sim.cluster.deployments) == [v1]


def test_a_first_canary_release_serves_everyone_at_once() -> None:
    sim = live_on_v1(canary())
    assert sim.status.canary is None
    assert route_weights(sim) == (100, 0)


def test_a_replica_ratio_weight_is_done_only_once_the_canary_pods_serve() -> None:
    steps = [{"setWeight": 25}, {"pause": {}}]
    sim = live_on_v1(canary(routed=False, steps=steps), with_route=False)
    second_release(sim, strategy=canary(routed=False, steps=steps))
    while sim.phase() != "Monitoring":
        sim.reconcile()
    sim.node_ready = False  # the canary's new pods do not come up
    for _ in range(3):
        sim.reconcile()
    assert sim.status.canary is not None and sim.status.canary.step == 0
    assert "moving to 25%" in (sim.status.message or "")
    assert sim.cluster.services[NAME]["spec"]["selector"].get("aideploy.io/release")
    sim.node_ready = True
    sim.settle()
    assert sim.condition("Ready") == ("True", "CanaryPaused")
    assert sim.status.canary is not None and sim.status.canary.step == 1


# -- found in review -------------------------------------------------------------------------


def _paused(sim: Simulator) -> None:
    for _ in range(12):
        sim.reconcile()
        if sim.status.condition("Ready") and sim.condition("Ready")[1] == "CanaryPaused":
            return
    raise AssertionError(sim.status.message)


def test_promotion_keeps_the_weights_until_the_stable_service_can_select_the_canary() -> None:
    steps = [{"setWeight": 40}, {"pause": {}}]
    sim = live_on_v1(canary(steps=steps))
    second_release(sim, strategy=canary(steps=steps))
    _paused(sim)
    assert route_weights(sim) == (60, 40)
    sim.node_ready = False  # a canary pod restarts just then
    for deployment in sim.cluster.deployments.values():
        deployment["status"]["availableReplicas"] = 0
    sim.annotations[PROMOTE_ANNOTATION] = "go"
    sim.reconcile()
    sim.reconcile()
    assert route_weights(sim) == (60, 40)  # not (0, 100) onto pods that are not there
    assert sim.candidate is not None and sim.phase() == "Monitoring"
    sim.node_ready = True
    sim.settle()
    assert sim.phase() == "Succeeded" and route_weights(sim) == (100, 0)
    assert sim.serving_version() == "2.0.0"


def test_set_weight_100_is_refused_promotion_gives_100() -> None:
    sim = Simulator(spec_with(strategy=canary(steps=[{"setWeight": 100}, {"pause": {}}])))
    sim.reconcile()
    assert sim.phase() == "Failed" and sim.condition("Ready") == ("False", "InvalidSpec")
    assert "setWeight" in (sim.status.message or "")


def test_each_analysis_step_runs_its_own_checks() -> None:
    steps: list[dict[str, Any]] = [
        {"setWeight": 10},
        {"analysis": {}},
        {"analysis": {"probes": False, "signals": True}},
    ]
    monitoring = {"duration": "1h", "interval": "30m", "signals": [SIGNAL]}
    sim = Simulator(spec_with(strategy=canary(steps=steps), monitoring=monitoring))
    sim.cluster.routes[ROUTE] = http_route()
    sim.settle()
    sim.advance(3601)
    sim.settle()
    second_release(sim, strategy=canary(steps=steps), monitoring=monitoring)
    sim.probe_script = {"errors": "RED"}  # only the signal, which the second analysis runs
    sim.settle()
    assert sim.phase() == "RolledBack"
    assert sim.condition("RolledBack") == ("True", "AnalysisRed")
    assert sim.probe_runs.count("analysis") == 2


def test_one_promote_ends_one_pause() -> None:
    steps: list[dict[str, Any]] = [{"setWeight": 10}, {"pause": {}}, {"pause": {}}]
    sim = live_on_v1(canary(steps=steps))
    second_release(sim, strategy=canary(steps=steps))
    _paused(sim)
    sim.annotations[PROMOTE_ANNOTATION] = "go"
    sim.settle()
    assert sim.status.canary is not None and sim.status.canary.step == 2
    assert sim.phase() == "Monitoring" and sim.condition("Ready")[1] == "CanaryPaused"


def test_an_amber_analysis_waits_for_a_person_and_is_not_run_again() -> None:
    steps: list[dict[str, Any]] = [{"setWeight": 10}, {"analysis": {}}, {"setWeight": 30}]
    sim = live_on_v1(canary(steps=steps))
    second_release(sim, strategy=canary(steps=steps))
    sim.reconcile()
    sim.reconcile()  # verified GREEN
    sim.probe_script = {"golden": "AMBER"}
    _paused(sim)
    runs = sim.probe_runs.count("analysis")
    sim.probe_script = {}
    for _ in range(3):
        sim.advance(60)
        sim.reconcile()
    assert sim.probe_runs.count("analysis") == runs  # held, not analysed again and again
    assert "AMBER" in (sim.status.message or "")
    sim.annotations[PROMOTE_ANNOTATION] = "accepted"
    sim.settle()
    assert sim.phase() == "Succeeded" and sim.serving_version() == "2.0.0"


def test_a_new_spec_mid_canary_returns_users_to_the_release_that_went_live() -> None:
    steps: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {}}]
    sim = live_on_v1(canary(steps=steps))
    second_release(sim, strategy=canary(steps=steps))
    _paused(sim)
    assert route_weights(sim) == (50, 50)
    second_release(sim, version="3.0.0", strategy=canary(steps=steps))
    sim.reconcile()
    assert sim.status.last_good_release is not None
    assert sim.status.last_good_release.version == "1.0.0"  # 2.0.0 never went live
    assert route_weights(sim) == (100, 0)
    assert sim.serving_version() == "1.0.0"


def test_a_route_is_put_back_when_the_spec_leaves_the_canary_strategy() -> None:
    steps: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {}}]
    sim = live_on_v1(canary(steps=steps))
    second_release(sim, strategy=canary(steps=steps))
    _paused(sim)
    second_release(sim, version="3.0.0")  # blue-green now, no route named
    sim.settle()
    assert route_weights(sim) == (100, 0)
    assert sim.serving_version() == "3.0.0"
