"""Deployment windows and freezes (PROC-AI-DEPLOY-001 6.1: "defined maintenance windows only").

`window_state` answers, for one instant, whether a rollout may start now, and if not, when
it next may. A window is open while `now` lies in [start, start + duration) for some start
of the cron schedule (evaluated in `window.timeZone`, UTC by default), so a window that
began before now still counts, across midnight or a year end. Overlapping or back-to-back
windows merge into one open period. A freeze (start <= now < end) closes everything.

Rules and choices, each tested:
- `duration` is elapsed time: a 4h window that spans a DST change still lasts 4h, and
  closes at 03:00 local instead of 04:00 when the clocks go back in between.
- DST at the start time (see aideploy.logic.cron): a start that does not exist moves
  forward by the gap; a start that exists twice starts once, at its first occurrence.
- Freeze times carry an offset (RFC 3339). One written without an offset is read in the
  window's time zone, because that is the zone the person wrote the schedule in.
- When closed, `opens_at` is the next instant that is inside a window AND outside every
  freeze: a window that starts inside a freeze opens when the freeze ends if it is still
  running then, else the next window after the freeze does. `closes_at` is the end of that
  open period (or of the current one when open).
- `next_change` is the next instant at which `open` or `reason` changes (a window opening
  or closing, a freeze starting or ending), so the operator can sleep exactly until then.
  None when nothing changes within the search horizon.
- The search looks SEARCH_HORIZON_DAYS ahead (four years, so a 29 FEB window is found); a
  schedule that cannot match any day (30 FEB) is reported as never opening.
- `expedite` (`window_gate(..., expedited=True)`) may deploy outside a window, never during
  a freeze. Whether a change is expedited (patch only, deployment-manager approval) is
  decided in aideploy.logic.change and the gate, not here.
- Rollbacks are never held by windows or freezes: restoring the last good release is an
  emergency procedure (PROC-AI-DEPLOY-001 section 5), so callers must not consult this
  module before a rollback.
- Which environments a window applies to is the caller's policy; this module evaluates
  whatever window it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aideploy.api.constants import Reason
from aideploy.api.durations import parse_duration
from aideploy.api.spec import Freeze, Window
from aideploy.api.times import rfc3339
from aideploy.logic.cron import CronError, ZonedSchedule, parse_cron

SEARCH_HORIZON_DAYS: Final = 4 * 366
_WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


#: The reasons a `WindowState` can carry: a subset of `Reason`, where each is declared once.
WINDOW_REASONS: Final = frozenset(
    {
        Reason.NO_WINDOW,
        Reason.IN_WINDOW,
        Reason.OUTSIDE_WINDOW,
        Reason.FROZEN,
        Reason.EXPEDITED,
        Reason.INVALID_WINDOW,
    }
)


@dataclass(frozen=True)
class WindowState:
    """Whether a rollout may start at one instant; all times are aware UTC."""

    open: bool
    reason: Reason  # one of WINDOW_REASONS
    opens_at: datetime | None
    closes_at: datetime | None
    freeze: Freeze | None
    message: str
    next_change: datetime | None

    def to_wire(self) -> dict[str, Any]:
        """camelCase for `status.gate.window`, times as RFC 3339 UTC."""
        wire: dict[str, Any] = {"open": self.open, "reason": self.reason.value}
        for key, moment in (
            ("opensAt", self.opens_at),
            ("closesAt", self.closes_at),
            ("nextChange", self.next_change),
        ):
            if moment is not None:
                wire[key] = rfc3339(moment)
        if self.freeze is not None:
            wire["freeze"] = {
                "start": rfc3339(self.freeze.start),
                "end": rfc3339(self.freeze.end),
                "reason": self.freeze.reason,
            }
        wire["message"] = self.message
        return wire


def window_problem(window: Window) -> str | None:
    """Why a window cannot be evaluated (for the InvalidSpec condition), or None."""
    try:
        parse_cron(window.schedule)
    except CronError as error:
        return f"spec.window.schedule: {error}"
    try:
        ZoneInfo(window.time_zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return (
            f"spec.window.timeZone: {window.time_zone!r} is not an IANA time zone "
            "(write it like Europe/Berlin, America/New_York or UTC)"
        )
    if parse_duration(window.duration) < timedelta(seconds=1):
        return "spec.window.duration must be at least one second"
    return None


def format_time(moment: datetime, zone: ZoneInfo) -> str:
    """'Mon 2026-11-30 22:00 CET (21:00 UTC)': local first, UTC for everyone else."""
    local = moment.astimezone(zone)
    utc = moment.astimezone(UTC)
    text = f"{_WEEKDAYS[local.weekday()]} {local:%Y-%m-%d %H:%M} {local.tzname()}"
    if local.utcoffset() == timedelta(0) and local.tzname() == "UTC":
        return text
    if utc.date() == local.date():
        return f"{text} ({utc:%H:%M} UTC)"
    return f"{text} ({_WEEKDAYS[utc.weekday()]} {utc:%Y-%m-%d %H:%M} UTC)"


def format_duration(length: timedelta) -> str:
    """'4h', '1h30m', '2d4h': the way the spec writes durations."""
    seconds = int(length.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


@dataclass(frozen=True)
class _Freeze:
    start: datetime
    end: datetime
    source: Freeze


class _Plan:
    """One window compiled for one evaluation: schedule, zone, freezes in UTC, horizon."""

    def __init__(self, window: Window, now: datetime) -> None:
        self.window = window
        self.now = now
        self.zone = ZoneInfo(window.time_zone)
        self.schedule = parse_cron(window.schedule)
        self.starts = ZonedSchedule(self.schedule, self.zone)
        self.duration = parse_duration(window.duration)
        self.horizon = now + timedelta(days=SEARCH_HORIZON_DAYS)
        self.freezes = sorted(
            (_Freeze(self._aware(f.start), self._aware(f.end), f) for f in window.freezes),
            key=lambda f: (f.start, f.end),
        )

    def _aware(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.zone)
        return moment.astimezone(UTC)

    def fmt(self, moment: datetime) -> str:
        return format_time(moment, self.zone)

    def active_freezes(self, moment: datetime) -> list[_Freeze]:
        return [f for f in self.freezes if f.start <= moment < f.end]

    def freeze_end(self, moment: datetime) -> datetime:
        """End of the freeze period at `moment`, chaining overlapping or touching freezes."""
        end = moment
        changed = True
        while changed:
            changed = False
            for freeze in self.freezes:
                if freeze.start <= end < freeze.end:
                    end, changed = freeze.end, True
        return end

    def next_freeze(self, after: datetime) -> _Freeze | None:
        return next((f for f in self.freezes if f.start > after), None)

    def covering_start(self, moment: datetime) -> datetime | None:
        """The latest window start whose window contains `moment`, if any."""
        start = self.starts.last_start(moment, moment - self.duration)
        if start is None or start + self.duration <= moment:
            return None
        return start

    def open_until(self, moment: datetime) -> datetime | None:
        """When an open period containing `moment` (inside a window, unfrozen) closes."""
        start = self.covering_start(moment)
        assert start is not None, "open_until needs a moment inside a window"
        freeze = self.next_freeze(moment)
        limit = self.horizon if freeze is None else min(freeze.start, self.horizon)
        end = self.starts.run_end(start, self.duration, limit)
        if end is not None:
            return end
        return None if freeze is None or freeze.start > self.horizon else freeze.start

    def next_open(self, moment: datetime) -> datetime | None:
        """The first instant at or after `moment` inside a window and outside every freeze."""
        current = moment
        while current < self.horizon:
            if self.active_freezes(current):
                current = self.freeze_end(current)
            elif self.covering_start(current) is not None:
                return current
            else:
                start = self.starts.next_start(current, self.horizon)
                if start is None:
                    return None
                current = start
        return None

    def never_message(self) -> str:
        impossible = self.schedule.never_matches()
        if impossible is not None:
            return f"the schedule {self.schedule.text!r} never opens a window: {impossible}"
        if self.starts.next_start(self.now, self.horizon) is not None:
            return (
                f"every window of the schedule {self.schedule.text!r} in the next "
                f"{SEARCH_HORIZON_DAYS} days falls in a freeze"
            )
        return (
            f"the schedule {self.schedule.text!r} ({self.window.time_zone}) opens no window "
            f"in the next {SEARCH_HORIZON_DAYS} days"
        )

    def opening(self, opens: datetime, closes: datetime | None) -> str:
        length = "and stays open" if closes is None else f"for {format_duration(closes - opens)}"
        return f"{self.fmt(opens)} {length}"


def _earliest(*moments: datetime | None) -> datetime | None:
    present = [m for m in moments if m is not None]
    return min(present) if present else None


def _frozen(plan: _Plan, now: datetime) -> WindowState:
    freeze = max(plan.active_freezes(now), key=lambda f: f.end)
    end = plan.freeze_end(now)
    opens = plan.next_open(end)
    closes = plan.open_until(opens) if opens is not None else None
    message = f"Deployments are frozen ({freeze.source.reason}) until {plan.fmt(end)}"
    if opens is None:
        message += f"; {plan.never_message()}."
    elif opens == end:
        until = "it stays open" if closes is None else f"until {plan.fmt(closes)}"
        message += f"; the deployment window is open then, {until}."
    else:
        message += f"; the next window then opens {plan.opening(opens, closes)}."
    # The spec's freeze may be written without an offset (read in the window's zone); status
    # gets it as the aware UTC instants it was evaluated as.
    aware = Freeze(start=freeze.start, end=freeze.end, reason=freeze.source.reason)
    return WindowState(False, Reason.FROZEN, opens, closes, aware, message, end)


def _inside(plan: _Plan, now: datetime) -> WindowState:
    closes = plan.open_until(now)
    freeze = plan.next_freeze(now)
    if closes is None:
        message = (
            f"Inside the deployment window; it stays open for at least the next "
            f"{SEARCH_HORIZON_DAYS} days."
        )
    elif freeze is not None and closes == freeze.start:
        message = (
            f"Inside the deployment window until {plan.fmt(closes)}, when the freeze "
            f"({freeze.source.reason}) begins."
        )
    else:
        message = f"Inside the deployment window until {plan.fmt(closes)}."
    return WindowState(True, Reason.IN_WINDOW, None, closes, None, message, closes)


def _outside(plan: _Plan, now: datetime) -> WindowState:
    opens = plan.next_open(now)
    upcoming = plan.next_freeze(now)
    next_change = _earliest(opens, upcoming.start if upcoming else None)
    if opens is None:
        message = f"Outside the deployment window, and {plan.never_message()}."
        return WindowState(False, Reason.OUTSIDE_WINDOW, None, None, None, message, next_change)
    closes = plan.open_until(opens)
    message = f"Outside the deployment window; the next window opens {plan.opening(opens, closes)}."
    first = plan.starts.next_start(now, opens)
    if first is not None:
        skipped = plan.active_freezes(first)
        if skipped:
            message += (
                f" The window of {plan.fmt(first)} falls in the freeze "
                f"({skipped[0].source.reason})."
            )
    return WindowState(False, Reason.OUTSIDE_WINDOW, opens, closes, None, message, next_change)


def window_state(window: Window | None, now: datetime) -> WindowState:
    """Whether `window` lets a rollout start at `now` (aware), and when that next changes."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    if window is None:
        return WindowState(
            True,
            Reason.NO_WINDOW,
            None,
            None,
            None,
            "No deployment window is configured; a rollout may start at any time.",
            None,
        )
    problem = window_problem(window)
    if problem is not None:
        return WindowState(
            False,
            Reason.INVALID_WINDOW,
            None,
            None,
            None,
            f"The deployment window cannot be evaluated: {problem}.",
            None,
        )
    plan = _Plan(window, now)
    if plan.active_freezes(now):
        return _frozen(plan, now)
    if plan.covering_start(now) is not None:
        return _inside(plan, now)
    return _outside(plan, now)


def window_gate(window: Window | None, now: datetime, expedited: bool) -> WindowState:
    """`window_state`, except that an expedited change may start outside a window.

    A freeze still holds an expedited change: a freeze is an organisational decision that
    nothing changes, and the expedite path exists for urgency, not to override it.
    """
    state = window_state(window, now)
    if expedited and state.reason is Reason.FROZEN:
        message = f"{state.message} An expedited change waits for the freeze too."
        return WindowState(
            False,
            state.reason,
            state.opens_at,
            state.closes_at,
            state.freeze,
            message,
            state.next_change,
        )
    if not expedited or state.reason is not Reason.OUTSIDE_WINDOW:
        return state
    assert window is not None
    plan = _Plan(window, now.astimezone(UTC))
    freeze = plan.next_freeze(now)
    freeze_start = freeze.start if freeze is not None and freeze.start < plan.horizon else None
    message = (
        "Outside the deployment window, but this expedited change may start now "
        "(freezes still apply)."
    )
    if freeze is not None and freeze_start is not None:
        message += f" The freeze ({freeze.source.reason}) begins {plan.fmt(freeze_start)}."
    return WindowState(
        True,
        Reason.EXPEDITED,
        None,
        freeze_start,
        None,
        message,
        _earliest(state.opens_at, freeze_start),
    )
