"""When a 409 on the status write may be answered by putting the same status on the fresh
object (kube/resources.unrelated_change): only when nothing the decision read changed."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from aideploy.kube.resources import unrelated_change

READ: dict[str, Any] = {
    "metadata": {
        "uid": "u1",
        "generation": 3,
        "labels": {"team": "ml"},
        "annotations": {
            "approval.aideploy.io/qa-lead": "sha256:abc; ok",
            "example.com/touched": "1",
        },
    },
    "spec": {"replicas": 2},
    "status": {"phase": "Monitoring"},
}


def edited(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    fresh = copy.deepcopy(READ)
    node = fresh
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return fresh


@pytest.mark.parametrize(
    ("fresh", "unrelated"),
    [
        (edited(("metadata", "annotations", "example.com/touched"), "2"), True),
        (edited(("metadata", "labels", "team"), "search"), True),
        (edited(("metadata", "resourceVersion"), "99"), True),
        (edited(("metadata", "generation"), 4), False),  # a new spec
        (edited(("status", "phase"), "RollingBack"), False),  # another status writer
        (edited(("metadata", "annotations", "aideploy.io/rollback"), "now"), False),
        (edited(("metadata", "annotations", "approval.aideploy.io/qa-lead"), "x"), False),
        (edited(("metadata", "annotations", "checklist.aideploy.io/1.1"), "yes"), False),
        (edited(("metadata", "deletionTimestamp"), "2026-12-04T00:00:00Z"), False),
        (edited(("metadata", "uid"), "u2"), False),  # deleted and created again
    ],
)
def test_only_edits_the_decision_does_not_read_are_unrelated(
    fresh: dict[str, Any], unrelated: bool
) -> None:
    assert unrelated_change(READ, fresh) is unrelated
