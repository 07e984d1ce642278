"""Verification, the go-live decision, rollback and monitoring as tables over `decide`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from aideploy.api.digest import spec_digest
from aideploy.api.times import rfc3339
from aideploy.logic.machine import decide

from .factories import approvals_for, make_spec
from .simulator import Simulator

PROBES = [
    {"name": "ready", "http": {"url": "http://127.0.0.1:1", "path": "/v2/health/ready"}},
    {
        "name": "golden",
        "inference": {
            "url": "http://127.0.0.1:1",
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}],
        },
    },
]
SIGNAL = {
    "name": "errors",
    "prometheus": {"url": "http://p", "query": "q", "green": "<= 0.01", "red": "> 0.05"},
}


def spec_with(
    version: str = "1.0.0",
    amber: str = "hold",
    automatic: bool = True,
    monitoring: dict[str, Any] | None = None,
    timeout: str = "10m",
    strategy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec = make_spec(
        "minimal",
        version=version,
        verification={"timeout": timeout, "amberPolicy": amber, "probes": PROBES},
        rollback={"automatic": automatic},
    )
    if monitoring is not None:
        spec["monitoring"] = monitoring
    if strategy is not None:
        spec["strategy"] = strategy
    return spec


def live(sim: Simulator) -> None:
    """Take the simulator's current spec to its end state with GREEN probes."""
    sim.probe_script = {}
    sim.settle()


def second_release(sim: Simulator, version: str = "2.0.0", **kwargs: Any) -> None:
    spec = spec_with(version=version, **kwargs)
    sim.set_spec(spec, {**sim.annotations, **approvals_for(spec)})


IN_PLACE: dict[str, Any] = {"inPlace": {}}

DECISION_TABLE = [
    # (ready, golden, amberPolicy, automatic, phase, decision, Verified condition)
    ("GREEN", "GREEN", "hold", True, "Succeeded", "GREEN", ("True", "AllProbesGreen")),
    ("AMBER", "GREEN", "hold", True, "Held", "AMBER", ("False", "ProbesAmber")),
    ("AMBER", "GREEN", "proceed", True, "Succeeded", "AMBER", ("True", "AmberAccepted")),
    ("AMBER", "GREEN", "rollback", True, "RolledBack", "AMBER", None),
    ("GREEN", "RED", "hold", True, "RolledBack", "RED", None),
    ("AMBER", "RED", "proceed", True, "RolledBack", "RED", None),
    ("GREEN", "RED", "hold", False, "Held", "RED", ("False", "ProbesRed")),
]


@pytest.mark.parametrize(
    ("ready", "golden", "amber", "automatic", "phase", "decision", "verified"), DECISION_TABLE
)
def test_go_live_decision_for_a_second_release(
    ready: str,
    golden: str,
    amber: str,
    automatic: bool,
    phase: str,
    decision: str,
    verified: tuple[str, str] | None,
) -> None:
    sim = Simulator(spec_with())
    live(sim)
    assert sim.phase() == "Succeeded"
    second_release(sim, amber=amber, automatic=automatic)
    sim.probe_script = {"ready": ready, "golden": golden}
    sim.settle()
    if phase == "RolledBack":
        # The restored release verifies with the same probes: make them GREEN again.
        sim.probe_script = {}
        sim.settle()
    assert sim.phase() == phase
    assert sim.status.decision == decision
    if verified is not None:
        assert sim.condition("Verified") == verified


@pytest.mark.parametrize("edited_phase", ["RollingBack", "RolledBack"])
def test_an_unknown_rollback_trigger_in_status_never_crashes_decide(edited_phase: str) -> None:
    """A trigger written by another operator version (or by hand) is shown as it is, under
    a generic reason; decide() never raises on it, so the object cannot retry forever."""
    sim = Simulator(spec_with())
    live(sim)
    second_release(sim)
    sim.probe_script = {"golden": "RED"}
    sim.reconcile()
    sim.reconcile()
    assert sim.phase() == "RollingBack"
    sim.probe_script = {}
    if edited_phase == "RolledBack":
        sim.settle()
        assert sim.phase() == "RolledBack"
    sim.wire_status["rollback"]["trigger"] = "SomethingFromTheFuture"
    sim.settle()
    assert sim.phase() == "RolledBack"
    if edited_phase == "RollingBack":  # the rollback completes under the generic reason
        assert sim.condition("RolledBack") == ("True", "RolledBack")
        found = sim.status.condition("RolledBack")
        assert found is not None and "SomethingFromTheFuture" in found.message


def test_rollback_restores_the_previous_template_exactly_and_verifies_it() -> None:
    sim = Simulator(spec_with())
    live(sim)
    good_child = sim.child
    assert good_child is not None
    second_release(sim)
    sim.probe_script = {"golden": "RED"}
    sim.reconcile()  # Deploying: the 2.0.0 Deployment is applied
    assert sim.phase() == "Deploying"
    sim.reconcile()  # deployed -> Verifying -> probes RED -> RollingBack
    assert sim.phase() == "RollingBack"
    assert sim.status.rollback is not None
    assert sim.status.rollback.trigger == "ProbesRed"
    assert "golden" in sim.status.rollback.reason
    assert sim.child is not None
    assert sim.child["spec"]["template"] == good_child["spec"]["template"]
    assert sim.child["metadata"]["annotations"] == good_child["metadata"]["annotations"]
    sim.probe_script = {}
    sim.settle()
    assert sim.phase() == "RolledBack"
    assert sim.condition("RolledBack") == ("True", "ProbesRed")
    assert sim.status.rollback.restored_decision == "GREEN"
    assert sim.status.rollback.to_version == "1.0.0"
    assert sim.status.rollback.from_version == "2.0.0"
    assert "restore" in sim.probe_runs
    # It stays rolled back: reconciling again never redeploys 2.0.0.
    applied = len(sim.applied)
    sim.advance(3600)
    sim.settle()
    assert sim.phase() == "RolledBack" and len(sim.applied) == applied


def test_a_new_spec_after_a_rollback_goes_through_the_gate_again() -> None:
    sim = Simulator(spec_with())
    live(sim)
    second_release(sim)
    sim.probe_script = {"golden": "RED"}
    sim.settle()
    sim.probe_script = {}
    sim.settle()
    assert sim.phase() == "RolledBack"
    fixed = spec_with(version="2.0.1")
    sim.set_spec(fixed)  # approvals are for 2.0.0: stale
    sim.settle()
    assert sim.phase() == "AwaitingApproval"
    assert "Version 1.0.0 keeps serving" in (sim.status.message or "")
    sim.annotations.update(approvals_for(fixed))
    sim.settle()
    assert sim.phase() == "Succeeded"
    assert sim.status.last_good_release is not None
    assert sim.status.last_good_release.version == "2.0.1"


@pytest.mark.parametrize("watched", [False, True])
def test_a_release_without_probes_still_has_its_deployment_log(watched: bool) -> None:
    """Procedure step 13's deliverable exists for every executed deployment: with no
    verification probes it says so, instead of the log being skipped."""
    spec = make_spec("minimal")
    if watched:
        spec["monitoring"] = {"duration": "1m", "interval": "30s", "signals": [SIGNAL]}
    sim = Simulator(spec)
    sim.settle()
    if watched:
        assert sim.phase() == "Monitoring"
        sim.advance(61)
        sim.settle()
    assert sim.phase() == "Succeeded"
    assert sim.records == ["plan", "approval", "deployment-log", "closure"]
    (log,) = [r for r in sim.cluster.record_objects if r["spec"]["type"] == "deployment-log"]
    content = log["spec"]["content"]
    assert content["verification"] == "none configured"
    assert [s["step"] for s in content["steps"]] == ["rollout started", "went live"]
    assert "decision" not in content  # no probe decided anything: none is claimed


@pytest.mark.parametrize("strategy", [None, IN_PLACE])
def test_first_deployment_going_red_fails_with_zero_replicas(strategy: Any) -> None:
    sim = Simulator(spec_with(strategy=strategy))
    sim.probe_script = {"ready": "RED"}
    sim.settle()
    assert sim.phase() == "Failed"
    assert sim.condition("RolledBack") == ("False", "NoPreviousRelease")
    assert sim.records == ["plan", "approval", "deployment-log", "rollback", "closure"]
    sim.advance(600)
    sim.settle()
    assert sim.phase() == "Failed" and sim.serving_version() is None
    assert sim.status.traffic == [] and sim.status.stable_release is None
    if strategy is None:  # blue-green: the candidate is scaled to zero, then deleted
        assert sim.cluster.deployments == {}
        assert [w[0] for w in sim.cluster.writes if w[1] == "Deployment"] == [
            "apply",
            "scale",
            "delete",
        ]
    else:  # in place: the Deployment is kept, at zero replicas
        assert sim.child is not None and sim.child["spec"]["replicas"] == 0


def test_held_then_proceed_by_annotation_consumes_it() -> None:
    sim = Simulator(spec_with())
    live(sim)
    second_release(sim)
    sim.probe_script = {"ready": "AMBER"}
    sim.settle()
    assert sim.phase() == "Held"
    assert sim.condition("Ready") == ("False", "AwaitingGoLiveDecision")
    sim.annotations["aideploy.io/go-live"] = "proceed"
    sim.settle()
    assert sim.phase() == "Succeeded"
    assert sim.condition("Verified") == ("True", "GoLiveProceed")
    assert "aideploy.io/go-live" not in sim.annotations
    assert (
        sim.status.last_good_release is not None and sim.status.last_good_release.version == "2.0.0"
    )


def test_held_says_why_again_after_a_refusal_message_was_dropped() -> None:
    """A refused write replaced Held's message; once it went through, decide() sees no
    message (without_refusal_message) and must say the AMBER detail again, not a bare
    "Held for a go-live decision."."""
    sim = Simulator(spec_with())
    live(sim)
    second_release(sim)
    sim.probe_script = {"ready": "AMBER"}
    sim.settle()
    entered = sim.status.message
    assert sim.phase() == "Held" and entered is not None and "is AMBER" in entered
    sim.status = sim.status.replace(message=None)
    sim.settle()
    assert sim.phase() == "Held"
    assert sim.status.message == entered


def test_held_then_rollback_by_annotation() -> None:
    sim = Simulator(spec_with())
    live(sim)
    second_release(sim)
    sim.probe_script = {"ready": "AMBER"}
    sim.settle()
    sim.annotations["aideploy.io/go-live"] = "rollback"
    sim.probe_script = {}
    sim.settle()
    assert sim.phase() == "RolledBack"
    assert sim.condition("RolledBack") == ("True", "AmberRollback")
    assert "aideploy.io/go-live" not in sim.annotations


def test_nonsense_go_live_value_is_refused_with_an_event() -> None:
    sim = Simulator(spec_with())
    live(sim)
    second_release(sim)
    sim.probe_script = {"ready": "AMBER"}
    sim.settle()
    sim.annotations["aideploy.io/go-live"] = "yolo"
    sim.settle()
    assert sim.phase() == "Held"
    assert ("AwaitingGoLiveDecision", "Warning") in sim.events


def test_manual_rollback_during_monitoring() -> None:
    monitoring = {"duration": "1h", "interval": "1m", "signals": [SIGNAL]}
    sim = Simulator(spec_with(monitoring=monitoring))
    live(sim)
    sim.advance(3601)
    sim.settle()
    assert sim.phase() == "Succeeded"
    second_release(sim, monitoring=monitoring)
    sim.settle()
    assert sim.phase() == "Monitoring"
    sim.annotations["aideploy.io/rollback"] = "customer complaints"
    sim.settle()
    assert sim.phase() == "RolledBack"
    assert sim.condition("RolledBack") == ("True", "ManualRollback")
    assert sim.status.rollback is not None and "customer complaints" in sim.status.rollback.reason
    assert "aideploy.io/rollback" not in sim.annotations


def test_manual_rollback_after_the_watch_is_refused() -> None:
    sim = Simulator(spec_with())
    live(sim)
    sim.annotations["aideploy.io/rollback"] = "oops"
    sim.settle()
    assert sim.phase() == "Succeeded"
    assert ("RollbackNotPossible", "Warning") in sim.events
    assert "aideploy.io/rollback" not in sim.annotations


def test_monitoring_checks_each_interval_then_succeeds() -> None:
    monitoring = {"duration": "10m", "interval": "2m", "signals": [SIGNAL]}
    sim = Simulator(spec_with(monitoring=monitoring))
    plan = sim.settle()
    assert sim.phase() == "Monitoring"
    assert plan.requeue_after is not None and plan.requeue_after.total_seconds() == 120
    assert sim.status.last_good_release is None  # not yet: its own watch is running
    for _ in range(4):
        sim.advance(120)
        sim.settle()
        assert sim.phase() == "Monitoring"
    assert sim.status.monitoring is not None and sim.status.monitoring.checks == 4
    assert sim.condition("Healthy") == ("True", "SignalsGreen")
    sim.advance(120)
    sim.settle()
    assert sim.phase() == "Succeeded"
    assert sim.status.last_good_release is not None


@pytest.mark.parametrize(
    ("late", "next_in"),
    [
        (0, 120),  # on time
        (45, 75),  # a reconcile 45 s late: the next check keeps the schedule
        (200, 120),  # more than an interval late: no burst to catch up
    ],
)
def test_monitoring_checks_keep_a_fixed_rate_when_a_reconcile_comes_late(
    late: int, next_in: int
) -> None:
    monitoring = {"duration": "1h", "interval": "2m", "signals": [SIGNAL]}
    sim = Simulator(spec_with(monitoring=monitoring))
    sim.settle()
    sim.advance(120 + late)
    sim.settle()
    watch = sim.status.monitoring
    assert watch is not None and watch.checks == 1
    assert watch.next_check_at == rfc3339(sim.now + timedelta(seconds=next_in))


def test_monitoring_does_not_check_before_the_interval() -> None:
    monitoring = {"duration": "10m", "interval": "2m", "signals": [SIGNAL]}
    sim = Simulator(spec_with(monitoring=monitoring))
    sim.settle()
    runs = sim.probe_runs.count("monitoring")
    sim.advance(60)
    plan = sim.settle()
    assert sim.probe_runs.count("monitoring") == runs
    assert plan.requeue_after is not None and plan.requeue_after.total_seconds() == 60


def test_amber_signal_reports_once_without_rolling_back() -> None:
    monitoring = {"duration": "10m", "interval": "1m", "signals": [SIGNAL]}
    sim = Simulator(spec_with(monitoring=monitoring))
    sim.settle()
    sim.probe_script = {"errors": "AMBER"}
    for _ in range(3):
        sim.advance(60)
        sim.settle()
    assert sim.phase() == "Monitoring"
    assert sim.condition("Healthy") == ("False", "SignalsAmber")
    assert sim.events.count(("SignalsAmber", "Warning")) == 1


def test_red_signal_restores_the_release_before_the_one_being_watched() -> None:
    monitoring = {"duration": "10m", "interval": "1m", "signals": [SIGNAL]}
    sim = Simulator(spec_with(monitoring=monitoring))
    sim.settle()
    sim.advance(601)
    sim.settle()
    assert sim.phase() == "Succeeded"
    second_release(sim, monitoring=monitoring)
    sim.settle()
    assert sim.phase() == "Monitoring"
    sim.probe_script = {"errors": "RED"}
    sim.advance(60)
    sim.settle()
    assert sim.phase() in ("RollingBack", "RolledBack")
    sim.probe_script = {}
    sim.settle()
    assert sim.phase() == "RolledBack"
    assert sim.condition("RolledBack") == ("True", "SignalRed")
    assert sim.status.rollback is not None and sim.status.rollback.to_version == "1.0.0"


def test_a_newer_rollout_during_monitoring_makes_the_watched_release_the_target() -> None:
    monitoring = {"duration": "1h", "interval": "1m", "signals": [SIGNAL]}
    sim = Simulator(spec_with(monitoring=monitoring))
    sim.settle()
    assert sim.phase() == "Monitoring"
    second_release(sim, monitoring=monitoring)
    sim.probe_script = {"golden": "RED"}
    sim.settle()
    sim.probe_script = {}
    sim.settle()
    assert sim.phase() == "RolledBack"
    assert sim.status.rollback is not None and sim.status.rollback.to_version == "1.0.0"


def test_verification_timeout_while_deploying_is_red() -> None:
    sim = Simulator(spec_with(timeout="5m"))
    live(sim)
    second_release(sim, timeout="5m")
    sim.node_ready = False
    plan = sim.settle()
    assert sim.phase() == "Deploying"
    assert plan.requeue_after is not None and plan.requeue_after.total_seconds() == 300
    sim.advance(301)
    sim.node_ready = True
    sim.settle()
    assert sim.phase() == "RolledBack"
    assert sim.condition("RolledBack") == ("True", "VerificationTimeout")
    assert sim.condition("Verified") == ("False", "VerificationTimeout")
    assert sim.status.decision == "RED"


@pytest.mark.parametrize("strategy", [None, IN_PLACE])
def test_progress_deadline_exceeded_rolls_back(strategy: Any) -> None:
    sim = Simulator(spec_with(strategy=strategy))
    live(sim)
    second_release(sim, strategy=strategy)
    sim.node_ready = False
    sim.reconcile()
    release = sim.status.current_release
    assert release is not None and release.version == "2.0.0"
    rolling = sim.deployment_of(release.digest)
    assert rolling is not None
    rolling["status"]["conditions"] = [
        {
            "type": "Progressing",
            "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": "timed out",
        }
    ]
    sim.reconcile()
    assert sim.phase() == "RollingBack"
    sim.node_ready = True
    sim.settle()
    assert sim.phase() == "RolledBack"
    assert sim.condition("RolledBack") == ("True", "ProgressDeadlineExceeded")
    assert sim.serving_version() == "1.0.0"


def test_restart_during_verifying_runs_the_probes_again() -> None:
    sim = Simulator(spec_with())
    sim.reconcile()  # Deploying; the child is available at once
    asked = decide(sim.observe())  # Verifying: asks for probes; the operator dies here
    assert asked.status.phase is not None and asked.status.phase.value == "Verifying"
    sim.status = asked.status
    again = decide(sim.observe())  # a restarted operator's first look
    assert again.status.phase is not None and again.status.phase.value == "Verifying"
    assert again.run_probes is not None and again.run_probes.purpose == "verification"
    assert again.status.verification == asked.status.verification


def test_verification_status_is_bound_to_the_release_digest() -> None:
    sim = Simulator(spec_with())
    live(sim)
    assert sim.status.verification is not None
    assert sim.status.verification.digest == spec_digest(sim.spec)
    assert [p.name for p in sim.status.verification.probes] == ["ready", "golden"]


def test_a_watched_release_stays_the_rollback_target_when_the_next_spec_waits_at_the_gate() -> None:
    monitoring = {"duration": "24h", "interval": "1m", "signals": [SIGNAL]}
    sim = Simulator(spec_with(monitoring=monitoring))
    sim.settle()
    assert sim.phase() == "Monitoring"
    assert sim.status.last_good_release is None
    second = spec_with(version="2.0.0", monitoring=monitoring)
    sim.set_spec(
        second, {k: v for k, v in sim.annotations.items() if not k.startswith("approval.")}
    )
    sim.settle()
    assert sim.phase() == "AwaitingApproval"
    sim.annotations.update(approvals_for(second))
    sim.probe_script = {"golden": "RED"}
    sim.settle()
    sim.probe_script = {}
    sim.settle()
    assert sim.phase() == "RolledBack"
    assert sim.status.rollback is not None and sim.status.rollback.to_version == "1.0.0"


def test_reverting_to_the_current_release_while_a_newer_spec_waits_goes_through_the_gate() -> None:
    sim = Simulator(spec_with())
    live(sim)
    second_release(sim)
    sim.probe_script = {"golden": "RED"}
    sim.settle()
    sim.probe_script = {}
    sim.settle()
    assert sim.phase() == "RolledBack"
    failed_spec = sim.spec
    newer = spec_with(version="2.1.0")
    sim.set_spec(newer)
    sim.settle()
    assert sim.phase() == "AwaitingApproval"
    # Revert to the spec that was rolled back, with its approvals removed.
    sim.set_spec(
        failed_spec, {k: v for k, v in sim.annotations.items() if not k.startswith("approval.")}
    )
    applied = len(sim.applied)
    sim.settle()
    assert sim.phase() == "AwaitingApproval"
    assert len(sim.applied) == applied  # the failed 2.0.0 is not redeployed unapproved


def test_stray_one_shot_annotations_are_consumed_and_never_act_on_a_later_rollout() -> None:
    sim = Simulator(spec_with())
    live(sim)
    second = spec_with(version="2.0.0")
    sim.set_spec(
        second, {k: v for k, v in sim.annotations.items() if not k.startswith("approval.")}
    )
    sim.annotations["aideploy.io/go-live"] = "proceed"
    sim.annotations["aideploy.io/rollback"] = "v1.0 looks bad"
    sim.settle()
    assert sim.phase() == "AwaitingApproval"
    assert "aideploy.io/go-live" not in sim.annotations
    assert "aideploy.io/rollback" not in sim.annotations
    assert sim.events.count(("ActionIgnored", "Warning")) == 2
    sim.annotations.update(approvals_for(second))
    sim.probe_script = {"ready": "AMBER"}
    sim.settle()
    assert sim.phase() == "Held"  # nobody decided: the stray proceed did not count


def test_a_restore_that_never_becomes_available_fails_loudly_after_the_timeout() -> None:
    sim = Simulator(spec_with(timeout="5m"))
    live(sim)
    second_release(sim, timeout="5m")
    sim.probe_script = {"golden": "RED"}
    sim.reconcile()  # Deploying 2.0.0
    sim.reconcile()  # 2.0.0 is RED: 1.0.0 is restored
    assert sim.phase() == "RollingBack" and sim.child is not None
    sim.node_ready = False  # ... but its pods never come up
    sim.child["status"]["availableReplicas"] = 0
    plan = sim.reconcile()
    assert sim.phase() == "RollingBack"
    assert plan.requeue_after is not None
    sim.advance(301)
    sim.reconcile()
    assert sim.phase() == "Failed"
    assert sim.condition("RolledBack") == ("False", "RestoreFailed")
    assert sim.records[-2:] == ["rollback", "closure"]


@pytest.mark.parametrize("interval", ["0s", "500ms"])
def test_a_monitoring_interval_under_a_second_is_refused(interval: str) -> None:
    sim = Simulator(spec_with(monitoring={"duration": "1h", "interval": interval}))
    sim.reconcile()
    assert sim.phase() == "Failed"
    assert "shorter than 1s" in (sim.status.message or "")


def test_digest_pinning_and_sidecars_added_by_admission_are_not_drift() -> None:
    sim = Simulator(spec_with())
    live(sim)
    assert sim.child is not None
    containers = sim.child["spec"]["template"]["spec"]["containers"]
    containers[0]["image"] += "@sha256:" + "a" * 64  # pinned by an admission policy
    containers.append({"name": "istio-proxy", "image": "proxyv2:1"})  # injected
    applied = len(sim.applied)
    plan = sim.reconcile()
    assert plan.apply is None and len(sim.applied) == applied
    assert sim.phase() == "Succeeded"


def test_a_re_rollout_of_the_same_digest_is_never_its_own_rollback_target() -> None:
    monitoring = {"duration": "1h", "interval": "1m", "signals": [SIGNAL]}
    sim = Simulator(spec_with(monitoring=monitoring))
    sim.settle()
    sim.advance(3601)
    sim.settle()
    assert sim.phase() == "Succeeded"  # 1.0.0 is the last good release
    second = spec_with(version="2.0.0", monitoring=monitoring)
    sim.set_spec(second, {**sim.annotations, **approvals_for(second)})
    sim.settle()
    assert sim.phase() == "Monitoring"
    third = spec_with(version="3.0.0", monitoring=monitoring)
    sim.set_spec(third, {k: v for k, v in sim.annotations.items() if not k.startswith("approval.")})
    sim.settle()
    assert sim.phase() == "AwaitingApproval"
    sim.set_spec(second, {**sim.annotations, **approvals_for(second)})  # revert to 2.0.0
    sim.settle()
    assert sim.phase() == "Monitoring"
    assert sim.status.last_good_release is not None
    assert sim.status.last_good_release.version == "1.0.0"


def test_a_stale_progress_deadline_does_not_fail_a_healthy_restore() -> None:
    """In place, a restore is a new generation of the same Deployment."""
    sim = Simulator(spec_with(strategy=IN_PLACE))
    live(sim)
    second_release(sim, strategy=IN_PLACE)
    sim.node_ready = False
    sim.reconcile()
    assert sim.child is not None
    sim.child["status"]["conditions"] = [
        {
            "type": "Progressing",
            "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": "x",
        }
    ]
    sim.reconcile()
    assert sim.phase() == "RollingBack"
    # The restore was applied (new generation) but the controller has not observed it yet,
    # so the old generation's condition is still shown.
    sim.child["status"]["observedGeneration"] = sim.child["metadata"]["generation"] - 1
    sim.child["status"]["conditions"] = [
        {
            "type": "Progressing",
            "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": "x",
        }
    ]
    plan = decide(sim.observe())
    assert plan.status.phase is not None and plan.status.phase.value == "RollingBack"


def test_a_rolled_back_object_whose_spec_went_invalid_and_back_is_rolled_back_again() -> None:
    sim = Simulator(spec_with())
    live(sim)
    second_release(sim)
    sim.probe_script = {"golden": "RED"}
    sim.settle()
    sim.probe_script = {}
    sim.settle()
    assert sim.phase() == "RolledBack"
    failed_spec = sim.spec
    broken = spec_with(version="2.0.0")
    broken["template"] = {"spec": {"containers": [{"name": "server"}]}}  # no image
    sim.set_spec(broken)
    sim.settle()
    assert sim.phase() == "Failed"
    sim.set_spec(failed_spec)
    sim.child = None  # and someone deleted the Deployment meanwhile
    sim.settle()
    assert sim.phase() == "RolledBack"
    assert sim.child is not None
    assert (
        sim.child["spec"]["template"]["metadata"]["labels"]["aideploy.io/model-version"] == "1.0.0"
    )


def test_a_release_superseded_during_its_watch_is_closed_on_record() -> None:
    monitoring = {"duration": "1h", "interval": "1m", "signals": [SIGNAL]}
    sim = Simulator(spec_with(monitoring=monitoring))
    sim.settle()
    assert sim.phase() == "Monitoring"
    assert sim.records == ["plan", "approval", "deployment-log"]
    second_release(sim, monitoring=monitoring)
    sim.settle()
    assert sim.records[3:6] == ["closure", "plan", "approval"]
    sim.advance(3601)
    sim.settle()
    assert sim.records.count("closure") == 2  # each release closed exactly once
