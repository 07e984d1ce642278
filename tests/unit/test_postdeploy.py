"""After go-live (logic/postdeploy.py): the EU database registration (step 18) and the
retrospective (step 20) on record, through the real reconciler over the simulator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aideploy.api.constants import REGISTRATION_ANNOTATION, RETROSPECTIVE_ANNOTATION
from aideploy.logic.postdeploy import parse_registration_annotation, parse_retrospective
from aideploy.records import verify_chain

from .factories import COMPLIANCE, approvals_for, gate_annotations, make_spec
from .simulator import Simulator
from .test_verification import PROBES


def high(registration: str, environment: str = "production", **extra: Any) -> dict[str, Any]:
    compliance = {**COMPLIANCE, "euDatabaseRegistration": registration}
    return make_spec("high", compliance=compliance, environment=environment, **extra)


def contents(sim: Simulator, type_: str) -> list[dict[str, Any]]:
    return [r["spec"]["content"] for r in sim.cluster.record_objects if r["spec"]["type"] == type_]


def intact(sim: Simulator) -> bool:
    return verify_chain(sim.cluster.record_objects) == []


def test_a_high_risk_production_system_waits_for_its_registration_id_after_go_live() -> None:
    sim = Simulator(high("submitted"))
    sim.settle()
    assert sim.phase() == "Succeeded"
    assert sim.condition("Registered") == ("False", "RegistrationPending")
    assert "kubectl aideploy register fraud-scorer --id ID" in (
        sim.status.condition("Registered").message  # type: ignore[union-attr]
    )
    (closure,) = contents(sim, "closure")
    assert closure["registration"] == {"state": "submitted"}
    assert closure["retrospective"] == "outstanding"

    sim.annotations[REGISTRATION_ANNOTATION] = "EU-DB-42; by=carol"
    sim.settle()
    assert sim.condition("Registered") == ("True", "Registered")
    (registration,) = contents(sim, "registration")
    assert registration["registration"] == {
        "state": "registered",
        "id": "EU-DB-42",
        "recordedBy": "carol",
    }
    assert registration["release"]["version"] == "1.0.0"
    assert ("Registered", "Normal") in sim.events
    assert sim.records[-1] == "registration" and intact(sim)
    # Asked once: more reconciles, no second record and no second Event.
    count = len(sim.records)
    sim.advance(60)
    sim.settle()
    assert len(sim.records) == count
    assert sim.events.count(("Registered", "Normal")) == 1


def test_an_id_in_the_spec_is_registered_without_a_record_of_its_own() -> None:
    sim = Simulator(high("EU-DB-000123"))
    sim.settle()
    assert sim.condition("Registered") == ("True", "Registered")
    assert contents(sim, "registration") == []
    assert contents(sim, "closure")[0]["registration"] == {
        "state": "registered",
        "id": "EU-DB-000123",
    }


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(make_spec("minimal"), id="minimal risk"),
        pytest.param(high("prepared", "staging"), id="high risk in staging"),
    ],
)
def test_no_registration_condition_where_none_is_needed(spec: dict[str, Any]) -> None:
    sim = Simulator(spec)
    sim.settle()
    assert sim.phase() == "Succeeded"
    assert sim.status.condition("Registered") is None


def retrospective(**fields: str) -> str:
    return json.dumps({"url": "https://wiki.example.com/retro-7", **fields})


def test_the_retrospective_is_recorded_once_and_its_annotation_consumed() -> None:
    sim = Simulator(make_spec("minimal"))
    sim.settle()
    sim.annotations[RETROSPECTIVE_ANNOTATION] = retrospective(lessons="canary earlier", by="dan")
    sim.settle()
    assert RETROSPECTIVE_ANNOTATION not in sim.annotations
    (entry,) = contents(sim, "retrospective")
    assert entry["retrospective"] == {
        "url": "https://wiki.example.com/retro-7",
        "lessons": "canary earlier",
        "by": "dan",
    }
    assert entry["finalPhase"] == "Succeeded"
    assert entry["release"]["version"] == "1.0.0"
    assert sim.condition("Closed") == ("True", "RetrospectiveRecorded")
    written = [r for r in sim.cluster.record_objects if r["spec"]["type"] == "retrospective"]
    assert written[0]["spec"]["recordId"] == "REC-AI-DEPLOY-CLOSE"
    assert intact(sim)
    # The next release starts without it: its own retrospective is outstanding.
    second = make_spec("minimal", version="2.0.0")
    sim.set_spec(second, {**sim.annotations, **approvals_for(second)})
    sim.settle()
    assert sim.phase() == "Succeeded"
    assert sim.status.condition("Closed") is None
    assert contents(sim, "closure")[-1]["retrospective"] == "outstanding"


def test_a_rolled_back_deployment_gets_its_retrospective_too() -> None:
    spec = make_spec("minimal", verification={"probes": PROBES})
    sim = Simulator(spec)
    sim.settle()
    second = make_spec("minimal", version="2.0.0", verification={"probes": PROBES})
    sim.set_spec(second, {**sim.annotations, **approvals_for(second)})
    sim.probe_script = {"golden": "RED"}
    sim.settle()
    assert sim.phase() == "RolledBack"
    sim.annotations[RETROSPECTIVE_ANNOTATION] = retrospective()
    sim.settle()
    (entry,) = contents(sim, "retrospective")
    assert entry["finalPhase"] == "RolledBack"
    assert entry["release"]["version"] == "2.0.0"
    assert contents(sim, "closure")[-1]["retrospective"] == "outstanding"
    assert intact(sim)


def test_an_unreadable_retrospective_is_refused_in_an_event_and_consumed() -> None:
    sim = Simulator(make_spec("minimal"), gate_annotations(make_spec("minimal")))
    sim.settle()
    sim.annotations[RETROSPECTIVE_ANNOTATION] = "see the wiki"
    sim.settle()
    assert RETROSPECTIVE_ANNOTATION not in sim.annotations
    assert ("InvalidRetrospective", "Warning") in sim.events
    assert contents(sim, "retrospective") == []
    assert sim.status.condition("Closed") is None


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("EU-DB-1; by=carol", ("EU-DB-1", "carol")),
        ("EU-DB-1", ("EU-DB-1", "")),
        (" EU-DB-1 ;  by=carol ", ("EU-DB-1", "carol")),
        ("; by=carol", ("", "carol")),
    ],
)
def test_registration_annotation(value: str, parsed: tuple[str, str]) -> None:
    assert parse_registration_annotation(value) == parsed


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("[]", "not a JSON object"),
        ("{", "not a JSON object"),
        (json.dumps({"lessons": "x"}), "names no retrospective"),
        (json.dumps({"url": "u", "lessons": "x" * 4001}), "longer than 4000"),
    ],
)
def test_unreadable_retrospectives(value: str, problem: str) -> None:
    entry, why = parse_retrospective(value)
    assert entry is None and problem in why
