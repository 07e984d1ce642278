"""Which phase transition still needs its Event after a restart.

The Event that announces a transition is posted after the status that makes it (Events
must never announce what the status does not say). A crash in between (the traffic switch
runs there) would lose it for good: the next process finds the phase already entered and
sees no transition. So the first reconcile of an object in a process announces the stored
phase again, under the transition's own name: the apiserver answers "already exists" when
it was posted, and the Event appears once either way.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from aideploy.api.status import AIDeploymentStatus
from aideploy.api.times import parse_time
from aideploy.logic.plan import WARNING_PHASES, Event, EventType, transition_key

#: The apiserver's default Event TTL (--event-ttl 1h): a transition older than this had its
#: Event expire anyway, and announcing it now would tell of old news as new.
HORIZON = timedelta(hours=1)


def stored_transition(
    status: AIDeploymentStatus, now: datetime, horizon: timedelta = HORIZON
) -> Event | None:
    """The Event of the transition that `status` reports, if recent enough to announce."""
    if status.phase is None or not status.phase_transition_time:
        return None
    try:
        since = parse_time(status.phase_transition_time)
    except ValueError:
        return None
    if now - since > horizon:
        return None
    phase = status.phase
    event_type: EventType = "Warning" if phase in WARNING_PHASES else "Normal"
    return Event(
        event_type,
        phase.value,
        status.message or phase.value,
        transition_key(phase.value, status.phase_transition_time),
    )
