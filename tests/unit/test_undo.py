"""undo's spec and abort's rule, as tables (logic/undo.py)."""

from __future__ import annotations

from typing import Any

import pytest

from aideploy.api.status import AIDeploymentStatus
from aideploy.logic.undo import Undo, abort_refusal, undo_spec

GOOD_TEMPLATE = {"spec": {"containers": [{"name": "s", "image": "m:1"}]}}
NEW_TEMPLATE = {"spec": {"containers": [{"name": "s", "image": "m:2", "env": [{"name": "X"}]}]}}
SPEC = {
    "system": "fraud",
    "riskLevel": "minimal",
    "changeType": "minor",
    "expedite": {"reason": "CVE"},
    "model": {"name": "fraud", "version": "1.1.0", "uri": "s3://m/1.1.0"},
    "replicas": 3,
    "template": NEW_TEMPLATE,
    "verification": {"timeout": "5m"},
}
GOOD = {
    "version": "1.0.0",
    "digest": "sha256:" + "a" * 64,
    "template": GOOD_TEMPLATE,
    "replicas": 2,
    "serving": {"port": 9000},
}


def status(**fields: Any) -> AIDeploymentStatus:
    return AIDeploymentStatus.model_validate(fields)


def test_undo_restores_what_the_last_good_release_ran_and_keeps_the_rest() -> None:
    planned = undo_spec(SPEC, status(lastGoodRelease=GOOD), "sha256:" + "b" * 64)
    assert isinstance(planned, Undo)
    assert planned.spec["model"] == {"name": "fraud", "version": "1.0.0", "uri": "s3://m/1.1.0"}
    assert planned.spec["template"] == GOOD_TEMPLATE
    assert (planned.spec["replicas"], planned.spec["serving"]) == (2, {"port": 9000})
    assert planned.spec["verification"] == {"timeout": "5m"}
    assert "changeType" not in planned.spec and "expedite" not in planned.spec
    assert planned.dropped == ("changeType", "expedite")
    assert SPEC["template"] == NEW_TEMPLATE  # the input is not changed


@pytest.mark.parametrize(
    ("fields", "digest", "why"),
    [
        ({}, "sha256:" + "b" * 64, "no earlier good release"),
        ({"lastGoodRelease": GOOD}, GOOD["digest"], "already is version 1.0.0"),
        (
            {"lastGoodRelease": {**GOOD, "template": None}},
            "sha256:" + "b" * 64,
            "without its pod template",
        ),
    ],
)
def test_undo_refused(fields: dict[str, Any], digest: str, why: str) -> None:
    refused = undo_spec(SPEC, status(**fields), digest)
    assert isinstance(refused, str) and why in refused


D = "sha256:" + "c" * 64
CURRENT = {"version": "1.1.0", "digest": D}


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"phase": "Deploying", "currentRelease": CURRENT}, None),
        ({"phase": "Verifying", "currentRelease": CURRENT}, None),
        ({"phase": "Held", "currentRelease": CURRENT}, None),
        ({"phase": "Monitoring", "currentRelease": CURRENT}, None),  # a canary, not live yet
        (
            {
                "phase": "Monitoring",
                "currentRelease": {**CURRENT, "wentLiveAt": "2026-12-05T00:00:00Z"},
            },
            "already live and under its watch",
        ),
        ({"phase": "AwaitingApproval"}, "no rollout to abort"),
        ({"phase": "RolledBack", "currentRelease": CURRENT}, "already rolled back"),
        (
            {"phase": "Held", "currentRelease": {**CURRENT, "digest": "sha256:" + "d" * 64}},
            "spec changed",
        ),
    ],
)
def test_abort(fields: dict[str, Any], why: str | None) -> None:
    refused = abort_refusal(status(**fields), D)
    if why is None:
        assert refused is None
    else:
        assert refused is not None and why in refused
