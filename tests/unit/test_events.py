"""Aggregation of repeated Events (the pure EventAggregator)."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest

from aideploy.kube.events import WINDOW, Bump, Create, EventAggregator, EventKey

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
