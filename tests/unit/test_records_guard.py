"""Records are never edited, and deleted only after their retention (issue 11, attack 3)."""

from __future__ import annotations

from typing import Any

import pytest

from aideploy.admission.config import ApproversConfig
from aideploy.admission.policy import Requester
from aideploy.admission.records_guard import NAMESPACE_CONTROLLER, review_record

from .factories import NOW

CONFIG = ApproversConfig.model_validate(
    {
        "operator": {"users": ["system:serviceaccount:aideploy:operator"]},
        "recordRetention": {"groups": ["records-officers"]},
    }
)
OPERATOR = Requester("system:serviceaccount:aideploy:operator")
ADMIN = Requester("admin", ("system:masters",))
OFFICER = Requester("dora", ("records-officers",))


def record(retain_until: str) -> dict[str, Any]:
    return {"metadata": {"name": "fraud-g1-0001-plan"}, "spec": {"retainUntil": retain_until}}


EXPIRED, KEPT = record("2020-01-01T00:00:00Z"), record("2036-01-01T00:00:00Z")


@pytest.mark.parametrize(
    ("operation", "who", "old", "allowed", "words"),
    [
        ("UPDATE", ADMIN, KEPT, False, "may not change fraud-g1-0001-plan"),
        ("UPDATE", OFFICER, EXPIRED, False, "never edited"),
        ("UPDATE", OPERATOR, KEPT, True, ""),
        ("DELETE", ADMIN, EXPIRED, False, "only holders of recordRetention"),
        ("DELETE", OFFICER, KEPT, False, "must be kept until 2036-01-01"),
        ("DELETE", OFFICER, EXPIRED, True, ""),
        ("DELETE", OFFICER, record("not a time"), False, "must be kept until unknown"),
        ("DELETE", Requester(NAMESPACE_CONTROLLER), KEPT, True, ""),
    ],
)
def test_records_guard(
    operation: str, who: Requester, old: dict[str, Any], allowed: bool, words: str
) -> None:
    verdict = review_record(operation, who, old, CONFIG, NOW)
    assert verdict.allowed is allowed
    assert words in verdict.message


def test_without_retention_holders_nobody_deletes() -> None:
    verdict = review_record("DELETE", OFFICER, EXPIRED, ApproversConfig(), NOW)
    assert not verdict.allowed
