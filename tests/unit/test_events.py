"""Aggregation of repeated Events (the pure EventAggregator), and how Resources.emit_event
turns its decisions into writes, over a scripted stand-in for the apiserver."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from aideploy.kube.events import WINDOW, Bump, Create, EventAggregator, EventKey
from aideploy.kube.resources import Resources
from aideploy.kube.rest import ApiError

from .factories import NOW

KEY = EventKey(
    uid="uid-1",
    kind="AIDeployment",
    namespace="ml",
    name="fraud-scorer",
    type="Normal",
    reason="AwaitingApproval",
    message="waiting for qa-lead",
    reporting_component="aideploy-operator",
)
KEYS = {
    "a": KEY,
    "other-message": replace(KEY, message="waiting for system-owner"),
    "other-reason": replace(KEY, reason="Deploying"),
    "other-type": replace(KEY, type="Warning"),
    "other-uid": replace(KEY, uid="uid-2"),  # same name, recreated object
    "other-component": replace(KEY, reporting_component="someone-else"),
}
MINUTE = 60.0
LATE = WINDOW.total_seconds() + 1

# Steps: (key, seconds after NOW, expected) where expected is "create", a bump's count, or
# "forget" (the step forgets the key instead of emitting). A Create is recorded as posted.
Step = tuple[str, float, "str | int"]


@pytest.mark.parametrize(
    ("steps", "max_keys"),
    [
        pytest.param([("a", 0, "create")], 4096, id="first emit creates"),
        pytest.param([("a", 0, "create"), ("a", 1, 2), ("a", 2, 3)], 4096, id="repeats bump 2, 3"),
        pytest.param(
            [("a", 0, "create"), ("other-message", 1, "create"), ("a", 2, 2)],
            4096,
            id="another message creates, the first keeps counting",
        ),
        *[
            pytest.param([("a", 0, "create"), (k, 1, "create")], 4096, id=f"{k} creates")
            for k in ("other-reason", "other-type", "other-uid", "other-component")
        ],
        pytest.param(
            [("a", 0, "create"), ("a", 9 * MINUTE, 2), ("a", 18 * MINUTE, 3)],
            4096,
            id="the window runs from the last occurrence",
        ),
        pytest.param(
            [("a", 0, "create"), ("a", LATE, "create"), ("a", LATE + 1, 2)],
            4096,
            id="after the window creates anew, then bumps that one",
        ),
        pytest.param(
            [("a", 0, "create"), ("a", WINDOW.total_seconds(), 2)],
            4096,
            id="exactly at the window still bumps",
        ),
        pytest.param(
            [("a", 0, "create"), ("a", -5, 2)], 4096, id="a clock that steps back still bumps"
        ),
        pytest.param(
            [("a", 0, "create"), ("a", 1, 2), ("a", 2, "forget"), ("a", 3, "create"), ("a", 4, 2)],
            4096,
            id="forget after a 404 creates, then counts afresh",
        ),
        pytest.param(
            [("a", 0, "create"), ("other-reason", 1, "create"), ("a", 2, "create")],
            1,
            id="LRU: the least recent key is evicted",
        ),
        pytest.param(
            [
                ("a", 0, "create"),
                ("other-reason", 1, "create"),
                ("a", 2, 2),  # `a` used last: `other-reason` is the one evicted
                ("other-type", 3, "create"),
                ("a", 4, 3),
                ("other-reason", 5, "create"),
            ],
            2,
            id="LRU: a bump counts as use",
        ),
    ],
)
def test_aggregator(steps: list[Step], max_keys: int) -> None:
    aggregator = EventAggregator(max_keys=max_keys)
    names: dict[str, str] = {}
    for label, seconds, expected in steps:
        key, now = KEYS[label], NOW + timedelta(seconds=seconds)
        if expected == "forget":
            aggregator.forget(key)
            continue
        decision = aggregator.decide(key, now)
        if expected == "create":
            assert isinstance(decision, Create), (label, seconds, decision)
            assert decision.name not in names.values(), "a fresh name each time"
            names[label] = decision.name
            aggregator.record_created(key, decision.name, now)
        else:
            assert decision == Bump(names[label], int(expected)), (label, seconds)


def test_a_create_not_recorded_as_posted_is_never_bumped() -> None:
    aggregator = EventAggregator()
    first = aggregator.decide(KEY, NOW)
    again = aggregator.decide(KEY, NOW)  # the POST of `first` failed: no record_created
    assert isinstance(first, Create) and isinstance(again, Create)
    assert first.name != again.name  # even at one and the same instant


@pytest.mark.parametrize(
    ("name", "expected_prefix"),
    [("fraud-scorer", "fraud-scorer."), ("x" * 234 + "-" + "y" * 18, "x" * 234 + ".")],
)
def test_names_are_dns_subdomains(name: str, expected_prefix: str) -> None:
    created = EventAggregator().decide(replace(KEY, name=name), NOW)
    assert isinstance(created, Create)
    assert created.name.startswith(expected_prefix)
    assert len(created.name) <= 253
    assert all(
        label and label[0].isalnum() and label[-1].isalnum() for label in created.name.split(".")
    )


def test_concurrent_repeats_are_all_counted() -> None:
    aggregator = EventAggregator()
    created = aggregator.decide(KEY, NOW)
    assert isinstance(created, Create)
    aggregator.record_created(KEY, created.name, NOW)
    counts: list[int] = []

    def emit() -> None:
        for _ in range(200):
            decision = aggregator.decide(KEY, NOW)
            assert isinstance(decision, Bump)
            counts.append(decision.count)

    threads = [threading.Thread(target=emit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(counts) == list(range(2, 802))


OBJ = {
    "apiVersion": "aideploy.io/v1alpha1",
    "kind": "AIDeployment",
    "metadata": {"name": "fraud-scorer", "namespace": "ml", "uid": "uid-1", "resourceVersion": "7"},
}
NOT_FOUND = ApiError(404, "NotFound", "events not found")
UNAVAILABLE = ApiError(503, "ServiceUnavailable", "etcd leader changed")


class ScriptedRest:
    """Answers each request with the next scripted failure (None: success), and records it."""

    def __init__(self, failures: list[Exception | None]) -> None:
        self.failures = failures
        self.requests: list[tuple[str, str, Any]] = []

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> dict[str, Any]:
        self.requests.append((method, path, body))
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            raise failure
        return {}


def _emit(rest: ScriptedRest, resources: Resources, seconds: float = 0) -> None:
    resources.emit_event(
        OBJ, "Normal", "AwaitingApproval", "waiting", NOW + timedelta(seconds=seconds)
    )


def test_emit_posts_then_merge_patches_count_and_last_timestamp() -> None:
    rest = ScriptedRest([])
    resources = Resources(rest)  # type: ignore[arg-type]
    for seconds in (0, 30, 60):
        _emit(rest, resources, seconds)
    (post, _, event), *bumps = rest.requests
    assert post == "POST" and event["count"] == 1
    assert event["metadata"]["name"].startswith("fraud-scorer.")
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2026-11-26T12:00:00Z"
    path = f"/api/v1/namespaces/ml/events/{event['metadata']['name']}"
    assert bumps == [
        ("PATCH", path, {"count": 2, "lastTimestamp": "2026-11-26T12:00:30Z"}),
        ("PATCH", path, {"count": 3, "lastTimestamp": "2026-11-26T12:01:00Z"}),
    ]


@pytest.mark.parametrize(
    ("failures", "methods", "warnings"),
    [
        pytest.param([None, NOT_FOUND], ["POST", "PATCH", "POST"], 0, id="bump 404 creates anew"),
        pytest.param([UNAVAILABLE], ["POST", "POST"], 1, id="failed create is not bumped"),
        pytest.param([None, UNAVAILABLE], ["POST", "PATCH"], 1, id="failed bump"),
        pytest.param(
            [None, NOT_FOUND, UNAVAILABLE], ["POST", "PATCH", "POST"], 1, id="404 then fail"
        ),
        pytest.param([ConnectionRefusedError("refused")], ["POST", "POST"], 1, id="no apiserver"),
    ],
)
def test_emit_is_best_effort(
    failures: list[Exception | None],
    methods: list[str],
    warnings: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rest = ScriptedRest(failures)
    resources = Resources(rest)  # type: ignore[arg-type]
    with caplog.at_level(logging.DEBUG, logger="aideploy.kube.resources"):
        _emit(rest, resources, 0)
        _emit(rest, resources, 1)  # never raises into the caller
    assert [method for method, _, _ in rest.requests] == methods
    assert [r.levelno for r in caplog.records] == [logging.WARNING] * warnings
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in caplog.records)


def test_the_recreated_event_is_bumped_next() -> None:
    rest = ScriptedRest([None, NOT_FOUND])
    resources = Resources(rest)  # type: ignore[arg-type]
    for seconds in (0, 1, 2):
        _emit(rest, resources, seconds)
    recreated = rest.requests[2][2]["metadata"]["name"]
    assert recreated != rest.requests[0][2]["metadata"]["name"]
    assert rest.requests[3][:2] == ("PATCH", f"/api/v1/namespaces/ml/events/{recreated}")
    assert rest.requests[3][2]["count"] == 2
