"""Deployment windows, freezes, expedited patches, promotion from staging and substantial
modification, against the real control plane with the operator running."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aideploy.kube.rest import Rest
from tests.support import aid
from tests.support.cluster import wait_for
from tests.support.kubelet import SimulatedNode
from tests.support.modelserver import DEFAULT_MODEL, ModelServer
from tests.support.operator import OperatorProcess
from tests.unit.factories import full_checklist, make_spec

pytestmark = pytest.mark.integration

MINIMAL = ["system-owner", "deployment-manager"]
HIGH = ["system-owner", "compliance-officer", "risk-manager", "qa-lead", "governance-committee"]
ALWAYS_OPEN = {"schedule": "* * * * *", "duration": "1m"}
NEVER_NOW = {"schedule": "0 3 29 2 *", "duration": "1h"}  # 03:00 on 29 February only


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_of(rest: Rest, namespace: str, name: str) -> dict[str, Any]:
    return aid.status(rest, namespace, name)


wait_phase = aid.wait_phase


def create_approved(
    rest: Rest, namespace: str, name: str, spec: dict[str, Any], roles: list[str]
) -> None:
    aid.create(rest, namespace, aid.manifest(name, spec, full_checklist()))
    aid.approve_all(rest, namespace, name, roles)


def update_approved(
    rest: Rest, namespace: str, name: str, spec: dict[str, Any], roles: list[str]
) -> None:
    aid.merge_patch(rest, namespace, name, {"spec": spec})
    aid.approve_all(rest, namespace, name, roles)


def test_waits_for_a_window_that_opens_shortly_then_deploys_on_its_own(
    rest: Rest, namespace: str, operator: OperatorProcess, simulated_node: SimulatedNode
) -> None:
    now = datetime.now(UTC)
    opens = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    window = {"schedule": f"{opens.minute} {opens.hour} * * *", "duration": "5m", "timeZone": "UTC"}
    create_approved(rest, namespace, "nightly", make_spec("minimal", window=window), MINIMAL)
    status = wait_phase(rest, namespace, "nightly", "AwaitingWindow")
    in_window = aid.condition(status, "InWindow")
    assert in_window["status"] == "False" and in_window["reason"] == "OutsideWindow"
    assert f"{opens:%H:%M}" in in_window["message"] and "UTC" in in_window["message"]
    assert status["gate"]["window"]["opensAt"] == rfc3339(opens)
    assert aid.child_deployment(rest, namespace, "nightly") is None
    # Nobody touches the object: the operator wakes at the opening by itself.
    status = wait_phase(rest, namespace, "nightly", "Succeeded", timeout=90)
    started = datetime.fromisoformat(status["currentRelease"]["deployedAt"].replace("Z", "+00:00"))
    print(f"window opened {opens:%H:%M:%S}, rollout started {started:%H:%M:%S}")
    assert started >= opens


def test_a_freeze_blocks_and_names_its_reason(
    rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    now = datetime.now(UTC)
    window = {
        **ALWAYS_OPEN,
        "freezes": [
            {
                "start": rfc3339(now - timedelta(hours=1)),
                "end": rfc3339(now + timedelta(days=3)),
                "reason": "Black Friday change freeze",
            }
        ],
    }
    create_approved(rest, namespace, "frozen", make_spec("minimal", window=window), MINIMAL)
    status = wait_phase(rest, namespace, "frozen", "AwaitingWindow")
    assert aid.condition(status, "InWindow")["reason"] == "Frozen"
    assert "Black Friday change freeze" in status["message"]
    assert status["gate"]["blockedBy"] == ["freeze"]
    assert aid.child_deployment(rest, namespace, "frozen") is None


def test_expedited_patch_deploys_outside_the_window(
    rest: Rest, namespace: str, operator: OperatorProcess, simulated_node: SimulatedNode
) -> None:
    create_approved(rest, namespace, "fraud", make_spec("high", window=ALWAYS_OPEN), HIGH)
    wait_phase(rest, namespace, "fraud", "Succeeded")
    patch = make_spec(
        "high", version="1.0.1", window=NEVER_NOW, expedite={"reason": "CVE-2026-1234 fix"}
    )
    update_approved(rest, namespace, "fraud", patch, HIGH)
    status = wait_for(
        lambda: (
            (s := status_of(rest, namespace, "fraud")).get("gate", {}).get("missingApprovals")
            == ["deployment-manager"]
            and s
        ),
        message="the expedite to require the deployment manager",
    )
    assert status["phase"] == "AwaitingApproval"
    aid.approve_all(rest, namespace, "fraud", ["deployment-manager"])
    status = wait_phase(rest, namespace, "fraud", "Succeeded")
    assert status["currentRelease"]["version"] == "1.0.1"
    assert status["changeType"] == "patch"
    assert aid.condition(status, "InWindow")["reason"] == "Expedited"


def test_a_rollback_is_not_held_by_a_freeze(
    rest: Rest, namespace: str, operator: OperatorProcess, simulated_node: SimulatedNode
) -> None:
    create_approved(rest, namespace, "scorer", make_spec("minimal", window=ALWAYS_OPEN), MINIMAL)
    wait_phase(rest, namespace, "scorer", "Succeeded")
    good = aid.child_deployment(rest, namespace, "scorer")
    assert good is not None
    freeze_start = datetime.now(UTC) + timedelta(seconds=6)
    window = {
        **ALWAYS_OPEN,
        "freezes": [
            {
                "start": rfc3339(freeze_start),
                "end": rfc3339(freeze_start + timedelta(days=1)),
                "reason": "year-end freeze",
            }
        ],
    }
    update_approved(
        rest,
        namespace,
        "scorer",
        make_spec(
            "minimal",
            version="1.1.0",
            window=window,
            monitoring={"duration": "1h", "interval": "1m"},
        ),
        MINIMAL,
    )
    wait_phase(rest, namespace, "scorer", "Monitoring")
    time.sleep(max(0.0, (freeze_start - datetime.now(UTC)).total_seconds()) + 1)
    aid.annotate(rest, namespace, "scorer", {"aideploy.io/rollback": "wrong scores for EUR"})
    status = wait_phase(rest, namespace, "scorer", "RolledBack")
    assert status["rollback"]["toVersion"] == "1.0.0"
    restored = aid.child_deployment(rest, namespace, "scorer")
    assert restored is not None and restored["spec"]["template"] == good["spec"]["template"]


def _staging_spec(server: ModelServer, version: str) -> dict[str, Any]:
    probe = {
        "name": "golden",
        "inference": {
            "url": server.url,
            "model": DEFAULT_MODEL,
            "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [1], "data": [2]}],
            "expect": [{"name": "output-0", "data": [4], "tolerance": 0.001}],
        },
    }
    return make_spec(
        "minimal", version=version, environment="staging", verification={"probes": [probe]}
    )


def test_production_waits_for_staging_then_proceeds(
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    simulated_node: SimulatedNode,
    model_server: ModelServer,
) -> None:
    aid.create(
        rest,
        namespace,
        aid.manifest("scorer-staging", _staging_spec(model_server, "2.0.0"), full_checklist()),
    )
    production = make_spec("minimal", version="2.0.0", promotion={"fromStaging": "scorer-staging"})
    create_approved(rest, namespace, "scorer", production, MINIMAL)
    status = wait_for(
        lambda: (
            (s := status_of(rest, namespace, "scorer")).get("gate", {}).get("blockedBy")
            == ["promotion"]
            and s
        ),
        message="production to wait for staging",
    )
    assert "scorer-staging" in status["gate"]["promotion"]
    assert status["phase"] == "AwaitingPromotion"
    assert aid.condition(status, "Ready")["reason"] == "PromotionPending"
    assert "Next: kubectl aideploy status scorer-staging -n " in status["message"]
    assert aid.child_deployment(rest, namespace, "scorer") is None
    # Staging is approved and verified GREEN: production proceeds without being touched.
    aid.approve_all(rest, namespace, "scorer-staging", MINIMAL)
    wait_phase(rest, namespace, "scorer-staging", "Succeeded")
    status = wait_phase(rest, namespace, "scorer", "Succeeded")
    assert status["currentRelease"]["version"] == "2.0.0"


def test_major_high_risk_change_needs_a_new_conformity_assessment(
    rest: Rest, namespace: str, operator: OperatorProcess, simulated_node: SimulatedNode
) -> None:
    create_approved(rest, namespace, "fraud", make_spec("high"), HIGH)
    wait_phase(rest, namespace, "fraud", "Succeeded")
    major = make_spec("high", version="2.0.0")
    major["compliance"]["substantialModification"] = True
    update_approved(rest, namespace, "fraud", major, HIGH)
    status = wait_for(
        lambda: (
            (s := status_of(rest, namespace, "fraud")).get("gate", {}).get("blockedBy")
            == ["compliance"]
            and s
        ),
        message="compliance to block the major change",
    )
    message = aid.condition(status, "ComplianceVerified")["message"]
    assert "new conformity assessment" in message and "CA-2026-014" in message
    major["compliance"]["conformityAssessment"] = "CA-2027-003"
    update_approved(rest, namespace, "fraud", major, HIGH)
    status = wait_phase(rest, namespace, "fraud", "Succeeded")
    assert status["currentRelease"]["version"] == "2.0.0"
    assert status["currentRelease"]["conformityAssessment"] == "CA-2027-003"
