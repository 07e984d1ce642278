"""The release strategies as tables over the simulator: what users are served at each step,
which writes move traffic, and what a RED, an AMBER, a person or a restart does to them."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from aideploy import failpoints
from aideploy.api.constants import GO_LIVE_ANNOTATION, ROLLBACK_ANNOTATION
from aideploy.api.digest import release_id, spec_digest
from aideploy.logic.machine import decide

from .simulator import NAME, Simulator
from .test_verification import SIGNAL, second_release, spec_with

MONITORING = {"duration": "1m", "interval": "30s", "signals": [SIGNAL]}
PREVIEW = f"{NAME}-preview"
IN_PLACE: dict[str, Any] = {"inPlace": {}}


def serving_v1(monitoring: dict[str, Any] | None = MONITORING, **kwargs: Any) -> Simulator:
    """1.0.0 live and settled (its watch over), under the default strategy."""
    sim = Simulator(spec_with(monitoring=monitoring, **kwargs))
    sim.settle()
    if monitoring is not None:
        sim.advance(61)
        sim.settle()
    assert sim.phase() == "Succeeded" and sim.serving_version() == "1.0.0"
    return sim


def stable_service_writes(sim: Simulator) -> int:
    return sim.cluster.writes.count(("apply", "Service", NAME))


def writes_to(sim: Simulator, name: str) -> list[str]:
    return [verb for verb, kind, written in sim.cluster.writes if written == name]


def steps(sim: Simulator, count: int = 8) -> Iterator[str]:
    """Reconcile step by step, yielding the phase after each, and check at every step that
    status says what users are really served."""
    for _ in range(count):
        sim.reconcile()
        stable = sim.status.stable_release
        assert (stable.version if stable else None) == sim.serving_version()
        yield sim.phase() or ""


# -- users never reach an unverified release ---------------------------------------------

VERIFICATION_OUTCOMES = [
    # (probe script, amberPolicy, phase at the end, version served at the end)
    ({}, "hold", "Monitoring", "2.0.0"),
    ({"golden": "AMBER"}, "hold", "Held", "1.0.0"),
    ({"golden": "AMBER"}, "proceed", "Monitoring", "2.0.0"),
    ({"golden": "AMBER"}, "rollback", "RolledBack", "1.0.0"),
    ({"golden": "RED"}, "hold", "RolledBack", "1.0.0"),
]


@pytest.mark.parametrize(("script", "amber", "phase", "served"), VERIFICATION_OUTCOMES)
def test_users_stay_on_the_serving_release_until_go_live(
    script: dict[str, str], amber: str, phase: str, served: str
) -> None:
    sim = serving_v1()
    second_release(sim, monitoring=MONITORING, amber=amber)
    sim.probe_script = script
    switches = stable_service_writes(sim)
    seen: list[tuple[str, str | None]] = []
    for current in steps(sim):
        seen.append((current, sim.serving_version()))
        if current == phase:
            break
    assert seen[-1] == (phase, served)
    before_go_live = [v for p, v in seen if p in ("Deploying", "Verifying", "Held", "RollingBack")]
    assert set(before_go_live) <= {"1.0.0"}, seen  # never 2.0.0 before the decision
    went_live = served == "2.0.0"
    assert stable_service_writes(sim) - switches == (1 if went_live else 0)
    if phase == "Held":  # the candidate keeps running, reachable through the preview
        candidate = sim.candidate
        assert candidate is not None
        assert candidate["spec"]["template"]["metadata"]["labels"]["aideploy.io/model-version"] == (
            "2.0.0"
        )
        assert [t.weight for t in sim.status.traffic] == [100, 0]
        assert sim.status.candidate_release is not None
        assert sim.status.candidate_release.version == "2.0.0"


def test_verification_probes_without_a_url_go_to_the_preview_service() -> None:
    spec = spec_with()
    spec["verification"]["probes"] = [{"name": "ready", "http": {"path": "/ready"}}]
    sim = Simulator(spec)
    sim.reconcile()  # Deploying; its pods are available at once
    plan = decide(sim.observe())
    assert plan.run_probes is not None and plan.run_probes.purpose == "verification"
    assert plan.run_probes.service == PREVIEW
    assert sim.candidate is not None  # the preview Service selects the candidate's pods


def test_in_place_probes_go_to_the_stable_service_and_no_preview_exists() -> None:
    spec = spec_with(strategy=IN_PLACE)
    spec["verification"]["probes"] = [{"name": "ready", "http": {"path": "/ready"}}]
    sim = Simulator(spec)
    sim.reconcile()
    plan = decide(sim.observe())
    assert plan.run_probes is not None and plan.run_probes.service == NAME
    assert PREVIEW not in sim.cluster.services
    assert list(sim.cluster.deployments) == [NAME]


def test_a_preview_service_turned_off_with_unaddressed_probes_is_refused() -> None:
    spec = spec_with(strategy={"blueGreen": {"previewService": False}})
    spec["verification"]["probes"] = [{"name": "ready", "http": {"path": "/ready"}}]
    sim = Simulator(spec)
    sim.reconcile()
    assert sim.phase() == "Failed"
    assert sim.condition("Ready") == ("False", "InvalidSpec")
    assert "previewService" in (sim.status.message or "")
    assert sim.cluster.deployments == {}


# -- go-live, the watch and the scale-down delay ------------------------------------------


def test_the_previous_release_runs_unchanged_through_the_watch_and_the_delay() -> None:
    sim = serving_v1(strategy={"blueGreen": {"scaleDownDelay": "2m"}})
    v1 = next(iter(sim.cluster.deployments))
    frozen = copy.deepcopy(sim.cluster.deployments[v1])
    second_release(sim, monitoring=MONITORING, strategy={"blueGreen": {"scaleDownDelay": "2m"}})
    sim.settle()
    assert sim.phase() == "Monitoring" and sim.serving_version() == "2.0.0"
    sim.advance(61)
    sim.settle()
    assert sim.phase() == "Succeeded"
    sim.advance(118)  # within monitoring end + 2m
    sim.settle()
    assert sim.cluster.deployments[v1]["spec"] == frozen["spec"]
    assert sim.cluster.deployments[v1]["metadata"]["generation"] == frozen["metadata"]["generation"]
    assert writes_to(sim, v1) == ["apply"]  # only its own rollout wrote to it
    plan = sim.reconcile()
    assert plan.requeue_after is not None  # it wakes up when the delay is over
    sim.advance(plan.requeue_after.total_seconds())
    sim.settle()
    assert v1 not in sim.cluster.deployments
    assert writes_to(sim, v1) == ["apply", "scale", "delete"]
    assert [t.version for t in sim.status.traffic] == ["2.0.0"]


def test_monitoring_red_switches_back_to_the_running_pods_without_touching_them() -> None:
    sim = serving_v1()
    v1 = next(iter(sim.cluster.deployments))
    frozen = copy.deepcopy(sim.cluster.deployments[v1])
    second_release(sim, monitoring=MONITORING)
    sim.settle()
    assert sim.phase() == "Monitoring" and sim.serving_version() == "2.0.0"
    sim.probe_script = {"errors": "RED"}
    sim.advance(31)
    sim.reconcile()
    # The RED and the switch back are one reconcile: no pod had to start.
    assert sim.phase() == "RollingBack" and sim.serving_version() == "1.0.0"
    sim.settle()
    assert sim.phase() == "RolledBack"
    assert sim.condition("RolledBack") == ("True", "SignalRed")
    live_v1 = sim.cluster.deployments[v1]
    assert live_v1["spec"] == frozen["spec"]
    assert live_v1["metadata"]["generation"] == frozen["metadata"]["generation"]
    assert writes_to(sim, v1) == ["apply"]
    assert list(sim.cluster.deployments) == [v1]  # 2.0.0 scaled to zero, then deleted
    assert sim.records.count("rollback") == 1


@pytest.mark.parametrize("strategy", [None, IN_PLACE])
def test_a_person_rolls_back_during_the_watch(strategy: dict[str, Any] | None) -> None:
    sim = serving_v1(strategy=strategy)
    second_release(sim, monitoring=MONITORING, strategy=strategy)
    sim.settle()
    assert sim.phase() == "Monitoring"
    applies = len(sim.applied)
    sim.annotations[ROLLBACK_ANNOTATION] = "customers complain"
    sim.settle()
    assert sim.phase() == "RolledBack" and sim.serving_version() == "1.0.0"
    assert sim.condition("RolledBack") == ("True", "ManualRollback")
    assert ROLLBACK_ANNOTATION not in sim.annotations
    if strategy is None:  # a selector switch: no Deployment written
        assert len(sim.applied) == applies
    else:  # in place: the 1.0.0 template applied again
        assert len(sim.applied) == applies + 1


def test_a_rollback_after_the_previous_deployment_is_gone_restores_its_exact_template() -> None:
    sim = serving_v1()
    v1 = next(iter(sim.cluster.deployments))
    template = copy.deepcopy(sim.cluster.deployments[v1]["spec"]["template"])
    second_release(sim, monitoring=MONITORING)
    sim.settle()
    del sim.cluster.deployments[v1]  # someone deleted it during the watch
    sim.node_ready = False
    sim.annotations[ROLLBACK_ANNOTATION] = "latency"
    for _ in range(3):
        sim.reconcile()
        assert sim.phase() == "RollingBack"
        assert sim.cluster.deployments[v1]["spec"]["template"] == template
        assert sim.serving_version() == "2.0.0"  # not switched to pods that are not available
    sim.node_ready = True
    sim.settle()
    assert sim.phase() == "RolledBack" and sim.serving_version() == "1.0.0"


# -- RED before go-live: the serving release is never touched -----------------------------


def _progress_deadline(sim: Simulator) -> None:
    release = sim.status.current_release
    assert release is not None
    rolling = sim.deployment_of(release.digest)
    assert rolling is not None
    rolling["status"]["conditions"] = [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    ]


RED_BEFORE_GO_LIVE = [
    # (how, amberPolicy, condition reason)
    ("probes RED", "hold", "ProbesRed"),
    ("progress deadline", "hold", "ProgressDeadlineExceeded"),
    ("AMBER with amberPolicy rollback", "rollback", "AmberRollback"),
    ("go-live rollback after AMBER", "hold", "AmberRollback"),
    ("rollback annotation while held", "hold", "ManualRollback"),
]


@pytest.mark.parametrize(("how", "amber", "reason"), RED_BEFORE_GO_LIVE)
def test_a_candidate_taken_out_before_go_live_leaves_the_serving_release_alone(
    how: str, amber: str, reason: str
) -> None:
    sim = serving_v1()
    v1 = next(iter(sim.cluster.deployments))
    switches = stable_service_writes(sim)
    second_release(sim, monitoring=MONITORING, amber=amber)
    if how == "probes RED":
        sim.probe_script = {"golden": "RED"}
    elif how == "progress deadline":
        sim.node_ready = False
        sim.reconcile()
        _progress_deadline(sim)
    else:
        sim.probe_script = {"golden": "AMBER"}
    sim.settle()
    if how == "go-live rollback after AMBER":
        assert sim.phase() == "Held"
        sim.annotations[GO_LIVE_ANNOTATION] = "rollback"
    elif how == "rollback annotation while held":
        assert sim.phase() == "Held"
        sim.annotations[ROLLBACK_ANNOTATION] = "not today"
    sim.node_ready = True
    sim.probe_script = {}
    sim.settle()
    assert sim.phase() == "RolledBack", sim.status.message
    rolled_back = sim.status.condition("RolledBack")
    assert rolled_back is not None and rolled_back.reason == reason, rolled_back
    assert sim.serving_version() == "1.0.0"
    assert stable_service_writes(sim) == switches  # the stable Service never moved
    assert writes_to(sim, v1) == ["apply"]
    assert list(sim.cluster.deployments) == [v1]  # the candidate is gone
    assert sim.status.candidate_release is None
    preview = sim.cluster.services[PREVIEW]
    assert preview["spec"]["selector"]["aideploy.io/release"] == "none"


def test_held_then_proceed_is_one_switch() -> None:
    sim = serving_v1()
    second_release(sim, monitoring=MONITORING)
    sim.probe_script = {"golden": "AMBER"}
    sim.settle()
    assert sim.phase() == "Held" and sim.serving_version() == "1.0.0"
    switches = stable_service_writes(sim)
    sim.annotations[GO_LIVE_ANNOTATION] = "proceed"
    sim.settle()
    assert sim.phase() == "Monitoring" and sim.serving_version() == "2.0.0"
    assert stable_service_writes(sim) == switches + 1


# -- restarts ------------------------------------------------------------------------------


class CrashError(Exception):
    pass


CRASH_POINTS = [
    "after-record:plan",
    "after-record:approval",
    "after-record:deployment-log",
    "before-traffic-switch",
    "after-record:closure",
]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_an_operator_killed_at_any_step_converges_with_one_switch_and_every_record_once(
    point: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = serving_v1()
    second_release(reference, monitoring=MONITORING)
    reference.settle()
    reference.advance(61)
    reference.settle()

    sim = serving_v1()
    second_release(sim, monitoring=MONITORING)
    switches = stable_service_writes(sim)
    crashed: list[str] = []

    def hit(name: str) -> None:
        if name == point and not crashed:
            crashed.append(name)
            raise CrashError(name)

    monkeypatch.setattr(failpoints, "hit", hit)
    for _ in range(12):  # each crash is a restart: the next reconcile starts afresh
        try:
            sim.reconcile()
        except CrashError:
            continue
        if sim.phase() == "Monitoring":
            sim.advance(61)
        if sim.phase() == "Succeeded":
            break
    sim.settle()
    assert crashed == [point]
    assert sim.phase() == "Succeeded" and sim.serving_version() == "2.0.0"
    assert sim.records == reference.records  # none lost, none twice
    assert stable_service_writes(sim) - switches == 1


def test_a_restart_between_status_and_switch_repeats_the_stored_decision() -> None:
    """Killed after the status said 'live' and before the Service moved: the restarted
    operator makes the switch the status reports, without running the probes again."""
    sim = serving_v1()
    second_release(sim, monitoring=MONITORING)
    sim.reconcile()  # Deploying
    sim.reconcile()  # probes GREEN -> Monitoring, switch made
    runs = list(sim.probe_runs)
    stable = sim.cluster.services[NAME]
    v1 = sim.deployment_of(spec_digest(spec_with(monitoring=MONITORING)))
    assert v1 is not None
    # Put the Service back where it was before the switch, as if the write never happened.
    stable["spec"]["selector"]["aideploy.io/release"] = v1["spec"]["template"]["metadata"][
        "labels"
    ]["aideploy.io/release"]
    assert sim.phase() == "Monitoring" and sim.serving_version() == "1.0.0"
    sim.reconcile()
    assert sim.serving_version() == "2.0.0"
    assert sim.probe_runs == runs  # no verification run anew


# -- in place, and migration from it -------------------------------------------------------


def test_in_place_updates_the_one_deployment() -> None:
    sim = serving_v1(strategy=IN_PLACE)
    assert list(sim.cluster.deployments) == [NAME]
    second_release(sim, monitoring=MONITORING, strategy=IN_PLACE)
    sim.reconcile()
    assert list(sim.cluster.deployments) == [NAME]
    assert sim.serving_version() == "2.0.0"  # users meet the candidate during verification
    selector = sim.cluster.services[NAME]["spec"]["selector"]
    assert selector == {"aideploy.io/deployment": NAME}


def _as_left_by_an_in_place_operator(sim: Simulator) -> None:
    """The cluster and status as the operator version before strategies left them: one
    Deployment named after the object, selected by its name alone, and releases that
    name no strategy."""
    (name,) = list(sim.cluster.deployments)
    legacy = sim.cluster.deployments.pop(name)
    legacy["metadata"]["name"] = NAME
    del legacy["metadata"]["labels"]["aideploy.io/release"]
    del legacy["spec"]["template"]["metadata"]["labels"]["aideploy.io/release"]
    legacy["spec"]["selector"]["matchLabels"] = {"aideploy.io/deployment": NAME}
    sim.cluster.deployments[NAME] = legacy
    sim.cluster.services[NAME]["spec"]["selector"] = {"aideploy.io/deployment": NAME}
    del sim.cluster.services[PREVIEW]
    for key in ("currentRelease", "lastGoodRelease"):
        sim.wire_status[key].pop("strategy", None)
    for key in ("stableRelease", "candidateRelease", "traffic"):
        sim.wire_status.pop(key, None)


def test_an_object_deployed_in_place_keeps_serving_through_the_upgrade() -> None:
    sim = serving_v1()
    _as_left_by_an_in_place_operator(sim)
    served = [sim.serving_version() for _ in steps(sim, 4)]
    assert served == ["1.0.0"] * 4  # no downtime
    legacy = sim.cluster.deployments[NAME]
    rid = legacy["spec"]["template"]["metadata"]["labels"].get("aideploy.io/release")
    assert rid == release_id(spec_digest(sim.spec))  # relabelled, same name, same selector
    assert legacy["spec"]["selector"]["matchLabels"] == {"aideploy.io/deployment": NAME}
    assert sim.cluster.services[NAME]["spec"]["selector"]["aideploy.io/release"] == rid
    assert sim.status.stable_release is not None
    assert sim.status.stable_release.version == "1.0.0"
    # The next release goes blue-green beside it.
    second_release(sim, monitoring=MONITORING)
    seen = [(phase, sim.serving_version()) for phase in steps(sim, 3)]
    assert ("Monitoring", "2.0.0") in seen
    assert all(v == "1.0.0" for p, v in seen if p in ("Deploying", "Verifying"))
    assert sorted(sim.cluster.deployments) == sorted(
        [NAME, f"{NAME}-{release_id(spec_digest(sim.spec))}"]
    )


def test_a_release_approved_during_the_migration_waits_and_says_why() -> None:
    sim = serving_v1()
    _as_left_by_an_in_place_operator(sim)
    second_release(sim, monitoring=MONITORING)
    sim.reconcile()
    assert sim.phase() == "Deploying" and sim.serving_version() == "1.0.0"
    assert "relabelled" in (sim.status.message or ""), sim.status.message
    assert sorted(sim.cluster.deployments) == [NAME]  # 2.0.0 not started beside it yet
    sim.settle()
    assert sim.phase() == "Monitoring" and sim.serving_version() == "2.0.0"
