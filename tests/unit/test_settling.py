"""Which watch events are skipped: only the one bringing back the object exactly as this
process wrote it and decided on it, and only while no deadline it asked for has passed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from aideploy.settling import Settling, Wake

KEY = ("ml", "prod")
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
Step = Callable[[Settling], None]


def settle(version: str, due: datetime | None = None) -> Step:
    return lambda s: s.settle(KEY, version, due)


def event(version: object) -> Step:
    return lambda s: s.event(KEY, version)


def nudge(s: Settling) -> None:
    s.nudge(KEY)


def unsettle(s: Settling) -> None:
    s.unsettle(KEY)


def forget(s: Settling) -> None:
    s.forget(KEY)


def taken(s: Settling) -> None:
    s.take(KEY, NOW)


@pytest.mark.parametrize(
    ("steps", "wake"),
    [
        # The event of our own write, decided on already: skipped.
        ([settle("5"), event("5")], Wake(skip=True, resource_version="5")),
        # A deadline the settled decision asked for: the skip returns what is left of it...
        (
            [settle("5", NOW + timedelta(seconds=30)), event("5")],
            Wake(skip=True, requeue=timedelta(seconds=30), resource_version="5"),
        ),
        # ...and once it has passed, the object is reconciled in full.
        ([settle("5", NOW), event("5")], Wake(skip=False)),
        # Someone else's change: in full, and its records are worth reading at once.
        ([settle("5"), event("6")], Wake(skip=False, changed=True)),
        # Our write, then someone's: the latest event counts.
        ([settle("5"), event("5"), event("6")], Wake(skip=False, changed=True)),
        # A child's event, before or after the object's own: in full.
        ([settle("5"), nudge, event("5")], Wake(skip=False)),
        ([settle("5"), event("5"), nudge], Wake(skip=False)),
        # Woken by the timer alone (no event since the last reconcile): in full.
        ([settle("5")], Wake(skip=False)),
        # Never settled (a first reconcile), unsettled, or forgotten: in full.
        ([event("5")], Wake(skip=False)),
        ([settle("5"), unsettle, event("5")], Wake(skip=False)),
        ([settle("5"), forget, event("5")], Wake(skip=False)),
        # An event without a resourceVersion cannot be matched: in full.
        ([settle("5"), event(None)], Wake(skip=False)),
        ([settle("5"), event("")], Wake(skip=False)),
    ],
)
def test_what_a_reconcile_is_for(steps: list[Step], wake: Wake) -> None:
    settling = Settling()
    for step in steps:
        step(settling)
    assert settling.take(KEY, NOW) == wake


def test_what_woke_an_object_is_consumed_by_its_reconcile() -> None:
    settling = Settling()
    settling.settle(KEY, "5", None)
    settling.event(KEY, "5")
    assert settling.take(KEY, NOW).skip
    # The next reconcile (its timer) was not woken by that event again.
    assert settling.take(KEY, NOW) == Wake(skip=False)


def test_objects_are_kept_apart() -> None:
    settling = Settling()
    settling.settle(KEY, "5", None)
    settling.event(("ml", "other"), "5")
    assert settling.take(("ml", "other"), NOW) == Wake(skip=False)


BODY = {"metadata": {"name": "prod", "resourceVersion": "6"}}


@pytest.mark.parametrize(
    ("steps", "kept"),
    [
        # A person's change to a settled object: its reconcile starts from the event's body.
        ([settle("5"), lambda s: s.event(KEY, "6", BODY)], True),
        # An object this process has not reconciled yet (at a start, as listed): its
        # first reconcile starts from the event's body, even after a child's event.
        ([lambda s: s.event(KEY, "6", BODY)], True),
        ([lambda s: s.event(KEY, "6", BODY), nudge], True),
        # Our own write's event is skipped.
        ([settle("5"), lambda s: s.event(KEY, "5", BODY)], False),
        # Once reconciled and not settled, the object is read fresh.
        ([taken, lambda s: s.event(KEY, "6", BODY)], False),
        ([taken, unsettle, lambda s: s.event(KEY, "6", BODY)], False),
        # ...but a person's change to a settled object still starts from the event.
        ([taken, settle("5"), lambda s: s.event(KEY, "6", BODY)], True),
        # A forgotten object (deleted) starts over.
        ([taken, forget, lambda s: s.event(KEY, "6", BODY)], True),
        # A later event without one (or our own) drops the earlier body: never stale.
        ([settle("5"), lambda s: s.event(KEY, "6", BODY), event("7")], False),
        ([lambda s: s.event(KEY, "6", BODY), event("7")], False),
        ([lambda s: s.event(KEY, "6", BODY), event(None)], False),
    ],
)
def test_which_events_bodies_are_kept(steps: list[Step], kept: bool) -> None:
    settling = Settling()
    for step in steps:
        step(settling)
    assert (settling.take(KEY, NOW).body == BODY) is kept
