"""Status the operator writes is validated where it is built (a misspelled key or a bad
value fails in `decide`, not in the cluster); status it reads is salvaged (unknown keys at
any level are dropped and named, never a crash)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from aideploy.api.constants import Phase
from aideploy.api.status import AIDeploymentStatus, Release
from aideploy.logic.machine import decide
from aideploy.logic.plan import Draft

from .factories import gate_annotations, make_spec
from .test_machine import observe


def draft() -> Draft:
    return Draft(obs=observe(make_spec("minimal")), digest="sha256:" + "0" * 64)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("decison", "GREEN"),  # misspelled
        ("decision", "PURPLE"),  # not a verdict
        ("monitoring", "soon"),  # not a MonitoringStatus
        ("currentRelease", None),  # a wire name where field names are expected is unknown
    ],
)
def test_a_bad_status_update_fails_when_the_plan_is_built(key: str, value: Any) -> None:
    building = draft()
    building.updates[key] = value  # type: ignore[literal-required]
    with pytest.raises(ValidationError):
        building.finish(Phase.DEPLOYING, "Rolling out.")


def test_an_invalid_phase_fails_when_the_plan_is_built() -> None:
    with pytest.raises(ValidationError):
        draft().finish("Deployed", "Rolling out.")  # type: ignore[arg-type]


def test_a_good_update_is_applied() -> None:
    building = draft()
    building.updates["change_type"] = "initial"
    assert building.finish(Phase.DEPLOYING, "Rolling out.").status.change_type == "initial"


RELEASE = Release(version="1.0.0", digest="sha256:abc")


@pytest.mark.parametrize(
    "changes",
    [{"went_live": "2026-11-26T12:00:00Z"}, {"replicas": "many"}, {"version": None}],
)
def test_replace_validates_names_and_values(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RELEASE.replace(**changes)


def test_replace_keeps_what_it_does_not_change() -> None:
    replaced = RELEASE.replace(replicas=3)
    assert (replaced.version, replaced.digest, replaced.replicas) == ("1.0.0", "sha256:abc", 3)


CONDITION = {
    "type": "Ready",
    "status": "False",
    "reason": "GateBlocked",
    "message": "Approve it.",
    "lastTransitionTime": "2026-11-26T12:00:00Z",
    "observedGeneration": 1,
}


@pytest.mark.parametrize(
    ("raw", "dropped"),
    [
        ({"phase": "Deploying"}, []),
        ({"phase": "Deploying", "fooBar": 1}, ["fooBar"]),
        (
            {"currentRelease": {"version": "1", "digest": "d", "fooBar": {"x": 1}}},
            ["currentRelease.fooBar"],
        ),
        (
            {"conditions": [CONDITION, {**CONDITION, "type": "Deployed", "x": 1}]},
            ["conditions[1].x"],
        ),
        (
            {"rollback": {"trigger": "Red", "spare": 1, "verification": [{"extra": 2}]}},
            ["rollback.spare", "rollback.verification[0].extra", "rollback"],
        ),
        ({"phase": "Exploded"}, ["phase"]),
    ],
)
def test_salvage_drops_and_names_unknown_or_unreadable_fields(
    raw: dict[str, Any], dropped: list[str]
) -> None:
    status, lost = AIDeploymentStatus.salvage(raw)
    assert lost == dropped
    wire = status.to_wire()
    assert "fooBar" not in wire
    assert "fooBar" not in (wire.get("currentRelease") or {})


def test_decide_on_a_status_with_unknown_fields_writes_them_away() -> None:
    spec = make_spec("minimal")
    raw = {
        "phase": "AwaitingApproval",
        "fooBar": "from a newer operator",
        "conditions": [{**CONDITION, "extraNote": "hand-edited"}],
    }
    status, lost = AIDeploymentStatus.salvage(raw)
    assert lost == ["fooBar", "conditions[0].extraNote"]
    plan = decide(observe(spec, gate_annotations(spec), status=status))
    assert plan.status.phase == Phase.DEPLOYING
    wire = plan.status.to_wire()
    assert "fooBar" not in wire
    assert all("extraNote" not in condition for condition in wire["conditions"])
