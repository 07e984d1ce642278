"""When a rollback or go-live request acts: the table of the rule, and the phase machine
agreeing with it (the CLI refuses exactly what the operator would ignore)."""

from __future__ import annotations

from typing import Any

import pytest

from aideploy.api.constants import GO_LIVE_ANNOTATION, ROLLBACK_ANNOTATION, Phase
from aideploy.api.digest import spec_digest
from aideploy.api.status import AIDeploymentStatus, Release, RollbackStatus
from aideploy.logic.oneshot import go_live_refusal, rollback_refusal
from tests.unit.factories import gate_annotations, make_spec
from tests.unit.simulator import Simulator

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
RELEASE = Release(version="1.1.0", digest=DIGEST)
BACK = RollbackStatus(
    trigger="ManualRollback",
    reason="x",
    from_version="1.1.0",
    from_digest=DIGEST,
    red_at="2026-01-01T00:00:00Z",
    started_at="2026-01-01T00:00:00Z",
)


def status(
    phase: Phase | None, current: Release | None = RELEASE, **more: Any
) -> AIDeploymentStatus:
    return AIDeploymentStatus(phase=phase, current_release=current, **more)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (status(None, None), "nothing has been rolled out yet (not reconciled yet)"),
        (status(Phase.AWAITING_APPROVAL, None), "nothing has been rolled out yet"),
        (status(Phase.MONITORING, Release(version="1.0.0", digest=OTHER)), "spec changed"),
        (status(Phase.DEPLOYING), None),
        (status(Phase.VERIFYING), None),
        (status(Phase.HELD), None),
        (status(Phase.MONITORING), None),
        (status(Phase.SUCCEEDED), "completed its watch and is the last good release"),
        (status(Phase.ROLLING_BACK, rollback=BACK), "already rolling back"),
        (status(Phase.ROLLED_BACK, rollback=BACK), "already rolled back"),
        (status(Phase.FAILED, rollback=BACK), "taken out of service"),
        (status(Phase.FAILED), "it is Failed; a rollback applies only in phases Deploying"),
    ],
)
def test_rollback_refusal(state: AIDeploymentStatus, expected: str | None) -> None:
    refusal = rollback_refusal(state, DIGEST)
    if expected is None:
        assert refusal is None
    else:
        assert refusal is not None and expected in refusal


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (status(Phase.HELD), None),
        (status(Phase.HELD, Release(version="1.0.0", digest=OTHER)), "spec changed"),
        (status(Phase.AWAITING_APPROVAL, None), "nothing has been rolled out yet"),
        (status(Phase.MONITORING), "it is Monitoring, not Held"),
        (status(Phase.SUCCEEDED), "it is Succeeded, not Held"),
    ],
)
def test_go_live_refusal(state: AIDeploymentStatus, expected: str | None) -> None:
    refusal = go_live_refusal(state, DIGEST)
    if expected is None:
        assert refusal is None
    else:
        assert refusal is not None and expected in refusal


def _acted_on_rollback(sim: Simulator) -> bool:
    before = sim.status.rollback
    sim.annotations[ROLLBACK_ANNOTATION] = "bad answers"
    sim.reconcile()
    return sim.status.rollback is not None and sim.status.rollback != before


SPEC = make_spec(
    "minimal",
    version="1.1.0",
    verification={"probes": [{"name": "ready", "http": {"url": "http://127.0.0.1:1"}}]},
    monitoring={"duration": "2h", "interval": "1m"},
)


@pytest.mark.parametrize(
    ("script", "annotations", "expected_phase"),
    [
        ("GREEN", {}, "AwaitingApproval"),
        ("GREEN", None, "Monitoring"),
        ("AMBER", None, "Held"),
    ],
)
def test_the_machine_rolls_back_exactly_when_the_rule_says(
    script: str, annotations: dict[str, str] | None, expected_phase: str
) -> None:
    spec: dict[str, Any] = {**SPEC, "verification": {**SPEC["verification"], "amberPolicy": "hold"}}
    sim = Simulator(spec, annotations)
    sim.probe_script["ready"] = script
    sim.settle()
    assert sim.phase() == expected_phase
    refusal = rollback_refusal(sim.status, spec_digest(spec))
    assert _acted_on_rollback(sim) is (refusal is None)


def test_the_machine_ignores_a_rollback_of_a_succeeded_release_as_the_rule_says() -> None:
    spec = make_spec("minimal")
    sim = Simulator(spec)
    sim.settle()
    assert sim.phase() == "Succeeded"
    assert rollback_refusal(sim.status, spec_digest(spec)) is not None
    assert not _acted_on_rollback(sim)
    assert sim.phase() == "Succeeded"
    # A new spec waiting at the gate: the serving release is not this spec's.
    newer = make_spec("minimal", version="1.1.0")
    sim.set_spec(newer, {})
    assert rollback_refusal(sim.status, spec_digest(newer)) is not None
    assert not _acted_on_rollback(sim)


def test_the_machine_takes_a_go_live_decision_exactly_when_the_rule_says() -> None:
    spec: dict[str, Any] = {**SPEC, "verification": {**SPEC["verification"], "amberPolicy": "hold"}}
    sim = Simulator(spec, gate_annotations(spec))
    sim.probe_script["ready"] = "AMBER"
    sim.settle()
    assert sim.phase() == "Held"
    assert go_live_refusal(sim.status, spec_digest(spec)) is None
    sim.annotations[GO_LIVE_ANNOTATION] = "proceed"
    sim.reconcile()
    assert sim.phase() == "Monitoring"
    assert go_live_refusal(sim.status, spec_digest(spec)) is not None
