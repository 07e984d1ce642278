"""Windows, freezes, change types, expedite, substantial modification and promotion as
seen through `decide` (their arithmetic has its own tables in test_window, test_change,
test_promotion)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aideploy.api.constants import Phase
from aideploy.logic.machine import decide

from .factories import COMPLIANCE, NOW, approvals_for, full_checklist, gate_annotations, make_spec
from .simulator import Simulator

# NOW is Thursday 2026-11-26 12:00 UTC.
NIGHTLY = {"schedule": "0 22 * * *", "duration": "4h", "timeZone": "UTC"}
FREEZE_NOW = {
    "start": "2026-11-20T00:00:00Z",
    "end": "2026-11-30T00:00:00Z",
    "reason": "Black Friday freeze",
}


def with_window(window: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return make_spec("minimal", window=window, **extra)


def test_outside_the_window_waits_and_wakes_when_it_opens() -> None:
    sim = Simulator(with_window(NIGHTLY))
    plan = sim.reconcile()
    assert sim.phase() == "AwaitingWindow"
    assert sim.condition("InWindow") == ("False", "OutsideWindow")
    assert sim.condition("Ready") == ("False", "OutsideWindow")
    assert "22:00" in (sim.status.message or "")
    assert sim.status.gate is not None and sim.status.gate.blocked_by == ["window"]
    assert plan.requeue_after == timedelta(hours=10)
    assert sim.child is None
    sim.advance(10 * 3600)
    sim.reconcile()
    assert sim.phase() == "Deploying"
    assert sim.condition("InWindow") == ("True", "InWindow")


def test_unapproved_objects_await_approval_even_outside_the_window() -> None:
    spec = with_window(NIGHTLY)
    sim = Simulator(spec, full_checklist())
    sim.reconcile()
    assert sim.phase() == "AwaitingApproval"
    assert sim.condition("InWindow")[0] == "False"
    assert sim.status.gate is not None and sim.status.gate.window is not None


def test_a_freeze_blocks_and_names_its_reason() -> None:
    sim = Simulator(with_window({**NIGHTLY, "schedule": "* * * * *", "freezes": [FREEZE_NOW]}))
    plan = sim.reconcile()
    assert sim.phase() == "AwaitingWindow"
    assert sim.condition("InWindow") == ("False", "Frozen")
    assert "Black Friday freeze" in (sim.status.message or "")
    assert sim.status.gate is not None and sim.status.gate.blocked_by == ["freeze"]
    assert plan.requeue_after is not None
    assert NOW + plan.requeue_after == NOW.replace(day=30, hour=0)


def test_expedited_patch_deploys_outside_the_window_with_the_deployment_manager() -> None:
    first = with_window({**NIGHTLY, "schedule": "* * * * *", "duration": "1m"})
    sim = Simulator(first)
    sim.settle()
    assert sim.phase() == "Succeeded"
    patch = with_window(NIGHTLY, expedite={"reason": "CVE-2026-1234"})
    patch["model"]["version"] = "1.0.1"
    sim.set_spec(patch, {**full_checklist(), **approvals_for(patch, ["system-owner"])})
    sim.reconcile()
    assert sim.phase() == "AwaitingApproval"
    assert sim.status.gate is not None and sim.status.gate.missing_approvals == [
        "deployment-manager"
    ]
    sim.annotations.update(approvals_for(patch, ["deployment-manager"]))
    sim.settle()
    assert sim.phase() == "Succeeded"
    assert sim.status.change_type == "patch"


def test_expedited_patch_still_waits_for_a_freeze() -> None:
    patch = with_window({**NIGHTLY, "freezes": [FREEZE_NOW]}, expedite={"reason": "CVE"})
    sim = Simulator(patch, {**gate_annotations(patch)})
    # First deployment is "initial", so expedite is refused before any window logic.
    sim.reconcile()
    assert sim.phase() == "Failed"
    assert "only patch changes may be expedited" in (sim.status.message or "")


def test_declared_change_type_contradicting_the_versions_is_an_error() -> None:
    sim = Simulator(make_spec("minimal"))
    sim.settle()
    wrong = make_spec("minimal", version="2.0.0", changeType="patch")
    sim.set_spec(wrong, gate_annotations(wrong))
    sim.reconcile()
    assert sim.phase() == "Failed"
    assert "changeType is patch" in (sim.status.message or "")
    assert "major" in (sim.status.message or "")
    assert sim.child is not None  # 1.0.0 keeps serving


def test_change_type_is_derived_and_recorded() -> None:
    sim = Simulator(make_spec("minimal"))
    sim.settle()
    assert sim.status.change_type == "initial"
    minor = make_spec("minimal", version="1.1.0")
    sim.set_spec(minor, gate_annotations(minor))
    sim.settle()
    assert sim.status.change_type == "minor"
    assert sim.status.current_release is not None
    assert sim.status.current_release.change_type == "minor"


def test_major_high_risk_change_needs_a_new_conformity_assessment() -> None:
    first = make_spec("high")
    sim = Simulator(first)
    sim.settle()
    assert sim.status.last_good_release is not None
    assert sim.status.last_good_release.conformity_assessment == COMPLIANCE["conformityAssessment"]
    major = make_spec("high", version="2.0.0")
    sim.set_spec(major, gate_annotations(major))
    sim.reconcile()
    assert sim.phase() == "AwaitingApproval"
    assert sim.condition("ComplianceVerified")[0] == "False"
    assert "substantialModification" in (sim.status.message or "")
    major["compliance"]["substantialModification"] = True
    sim.set_spec(major, gate_annotations(major))
    sim.reconcile()
    assert sim.phase() == "AwaitingApproval"
    assert "new conformity assessment" in (sim.status.message or "")
    major["compliance"]["conformityAssessment"] = "CA-2027-001"
    sim.set_spec(major, gate_annotations(major))
    sim.settle()
    assert sim.phase() == "Succeeded"


def staging_object(
    phase: str, version: str, decision: str = "GREEN", image: str = "mlserver:1"
) -> dict[str, Any]:
    spec = make_spec("minimal", version=version, environment="staging")
    spec["template"]["spec"]["containers"][0]["image"] = image
    return {
        "metadata": {"name": "scorer-staging", "generation": 1},
        "spec": spec,
        "status": {
            "phase": phase,
            "decision": decision,
            "observedGeneration": 1,
            "currentRelease": {"version": version, "digest": "sha256:x"},
        },
    }


def test_production_waits_for_staging_then_proceeds() -> None:
    spec = make_spec("minimal", promotion={"fromStaging": "scorer-staging"})
    sim = Simulator(spec)
    obs = sim.observe()
    waiting = decide(
        obs.__class__(**{**obs.__dict__, "staging": staging_object("Verifying", "1.0.0")})
    )
    # Approved and checked: only the staging object holds it, and the phase says so.
    assert waiting.status.phase == Phase.AWAITING_PROMOTION
    assert waiting.status.gate is not None and waiting.status.gate.blocked_by == ["promotion"]
    assert "scorer-staging" in (waiting.status.message or "")
    assert "Next: kubectl aideploy status scorer-staging" in (waiting.status.message or "")
    missing = decide(obs)
    assert missing.status.gate is not None and missing.status.gate.promotion is not None
    other_image = decide(
        obs.__class__(
            **{**obs.__dict__, "staging": staging_object("Succeeded", "1.0.0", image="mlserver:2")}
        )
    )
    assert "mlserver:2" in (other_image.status.message or "")
    ready = decide(
        obs.__class__(**{**obs.__dict__, "staging": staging_object("Succeeded", "1.0.0")})
    )
    assert ready.status.phase == Phase.DEPLOYING


def test_invalid_window_is_reported_as_invalid_spec() -> None:
    sim = Simulator(with_window({**NIGHTLY, "timeZone": "Mars/Olympus_Mons"}))
    sim.reconcile()
    assert sim.phase() == "Failed"
    assert sim.condition("Ready") == ("False", "InvalidSpec")
    assert "Mars/Olympus_Mons" in (sim.status.message or "")


def test_rollback_is_never_held_by_a_freeze() -> None:
    freeze = {
        "start": "2026-11-26T12:30:00Z",
        "end": "2026-12-31T00:00:00Z",
        "reason": "year-end freeze",
    }
    window = {"schedule": "* * * * *", "duration": "1m", "freezes": [freeze]}
    probes = [{"name": "ready", "http": {"url": "http://127.0.0.1:1"}}]
    first = make_spec("minimal", window=window, verification={"probes": probes})
    sim = Simulator(first)
    sim.settle()
    assert sim.phase() == "Succeeded"
    second = make_spec(
        "minimal",
        version="1.1.0",
        window=window,
        verification={"probes": probes},
        monitoring={"duration": "2h", "interval": "1m"},
    )
    sim.set_spec(second, gate_annotations(second))
    sim.settle()
    assert sim.phase() == "Monitoring"  # deployed at 12:00, before the freeze
    sim.advance(45 * 60)  # 12:45: inside the freeze
    sim.annotations["aideploy.io/rollback"] = "bad answers"
    sim.settle()
    assert sim.phase() == "RolledBack"
    assert sim.status.rollback is not None and sim.status.rollback.to_version == "1.0.0"
    # A new rollout, on the other hand, waits for the freeze to end.
    third = make_spec("minimal", version="1.1.1", window=window, verification={"probes": probes})
    sim.set_spec(third, gate_annotations(third))
    sim.settle()
    assert sim.phase() == "AwaitingWindow"
    assert "year-end freeze" in (sim.status.message or "")
