"""The Event of a phase transition is posted once, even when the process that made the
transition died before posting it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aideploy.api.constants import Phase
from aideploy.api.status import AIDeploymentStatus
from aideploy.api.times import rfc3339
from aideploy.logic.announce import HORIZON, stored_transition

from .factories import gate_annotations, make_spec
from .simulator import NOW, Simulator

SINCE = rfc3339(NOW - timedelta(minutes=5))


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (AIDeploymentStatus(), None),
        (AIDeploymentStatus(phase=Phase.SUCCEEDED), None),  # no time: nothing to name it by
        (
            AIDeploymentStatus(phase=Phase.SUCCEEDED, message="live", phase_transition_time=SINCE),
            ("Normal", "Succeeded", "live", f"Succeeded@{SINCE}"),
        ),
        (
            AIDeploymentStatus(phase=Phase.HELD, phase_transition_time=SINCE),
            ("Warning", "Held", "Held", f"Held@{SINCE}"),
        ),
        (
            AIDeploymentStatus(
                phase=Phase.SUCCEEDED,
                phase_transition_time=rfc3339(NOW - HORIZON - timedelta(seconds=1)),
            ),
            None,  # its Event has expired in the apiserver: old news
        ),
        (AIDeploymentStatus(phase=Phase.FAILED, phase_transition_time="yesterday"), None),
    ],
)
def test_the_stored_transition_to_announce(
    status: AIDeploymentStatus, expected: tuple[str, str, str, str] | None
) -> None:
    event = stored_transition(status, NOW)
    found = (event.type, event.reason, event.message, event.transition) if event else None
    assert found == expected


def phase_events(sim: Simulator) -> list[str]:
    phases = {p.value for p in Phase}
    return [reason for reason, _ in sim.events if reason in phases]


def test_a_transition_whose_event_was_lost_is_announced_once_after_a_restart() -> None:
    sim = Simulator(make_spec("minimal"))
    original = sim.cluster.emit_event
    sim.cluster.emit_event = lambda *args, **kwargs: False  # type: ignore[method-assign]
    sim.settle()  # the Events of every transition fail to post (the process 'dies')
    assert sim.phase() == "Succeeded"
    assert phase_events(sim) == []
    sim.cluster.emit_event = original  # type: ignore[method-assign]
    sim.restart()
    sim.settle()
    sim.restart()
    sim.settle()  # found posted: not again
    assert phase_events(sim) == ["Succeeded"]


def test_a_restart_does_not_announce_a_posted_transition_again() -> None:
    sim = Simulator(make_spec("minimal"))
    sim.settle()
    before = phase_events(sim)
    assert before[-1] == "Succeeded"
    sim.restart()
    sim.settle()
    assert phase_events(sim) == before


def test_a_transition_whose_post_failed_is_posted_before_the_next_one() -> None:
    """The Event of AwaitingApproval failed to post (a dropped connection); the operator
    lives on, and the approval moves the object on: that Event still comes, first."""
    spec = make_spec("minimal")
    sim = Simulator(spec, annotations={})
    original = sim.cluster.emit_event
    sim.cluster.emit_event = lambda *args, **kwargs: False  # type: ignore[method-assign]
    sim.settle()
    assert sim.phase() == "AwaitingApproval"
    assert phase_events(sim) == []
    sim.cluster.emit_event = original  # type: ignore[method-assign]
    sim.annotations.update(gate_annotations(spec))
    sim.settle()
    assert sim.phase() == "Succeeded"
    events = phase_events(sim)
    assert events[0] == "AwaitingApproval" and events.count("AwaitingApproval") == 1, events
