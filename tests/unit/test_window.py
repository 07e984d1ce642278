"""Deployment windows and freezes as tables of fixed clocks.

Local times are written in the window's zone and converted with `at`; instants on a
fall-back day, where a local time is ambiguous, are written in UTC.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from aideploy.api.constants import Reason
from aideploy.api.spec import Window
from aideploy.logic.window import (
    format_duration,
    format_time,
    window_gate,
    window_problem,
    window_state,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
WEEKNIGHTS = "0 22 * * 1-5"


def at(text: str, zone: str = "UTC") -> datetime:
    """A wall time in `zone` as an aware UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def window(
    schedule: str = WEEKNIGHTS,
    duration: str = "4h",
    zone: str = BERLIN,
    freezes: list[dict[str, Any]] | None = None,
) -> Window:
    return Window.model_validate(
        {"schedule": schedule, "duration": duration, "timeZone": zone, "freezes": freezes or []}
    )


def freeze(start: str, end: str, reason: str = "year-end freeze") -> dict[str, Any]:
    return {"start": start, "end": end, "reason": reason}


# (schedule, duration, zone, now, open, opens_at, closes_at)
ROWS = [
    # Weeknights 22:00 Berlin for 4h: across midnight into Saturday, not from Saturday.
    (
        WEEKNIGHTS,
        "4h",
        BERLIN,
        at("2026-11-27 23:30", BERLIN),
        True,
        None,
        at("2026-11-28 02:00", BERLIN),
    ),
    (
        WEEKNIGHTS,
        "4h",
        BERLIN,
        at("2026-11-28 01:59", BERLIN),
        True,
        None,
        at("2026-11-28 02:00", BERLIN),
    ),
    (
        WEEKNIGHTS,
        "4h",
        BERLIN,
        at("2026-11-28 02:00", BERLIN),
        False,
        at("2026-11-30 22:00", BERLIN),
        at("2026-12-01 02:00", BERLIN),
    ),
    (
        WEEKNIGHTS,
        "4h",
        BERLIN,
        at("2026-11-29 01:00", BERLIN),
        False,
        at("2026-11-30 22:00", BERLIN),
        at("2026-12-01 02:00", BERLIN),
    ),
    (
        WEEKNIGHTS,
        "4h",
        BERLIN,
        at("2026-11-30 21:59", BERLIN),
        False,
        at("2026-11-30 22:00", BERLIN),
        at("2026-12-01 02:00", BERLIN),
    ),
    (
        WEEKNIGHTS,
        "4h",
        BERLIN,
        at("2026-11-30 22:00", BERLIN),
        True,
        None,
        at("2026-12-01 02:00", BERLIN),
    ),
    (
        "0 22 * * MON-FRI",
        "4h",
        BERLIN,
        at("2026-12-01 01:00", BERLIN),
        True,
        None,
        at("2026-12-01 02:00", BERLIN),
    ),
    # Year end: Dec 31 22:00 for 4h runs into Jan 1; the next one is a year later.
    ("0 22 31 12 *", "4h", "UTC", at("2026-12-31 23:00"), True, None, at("2027-01-01 02:00")),
    ("0 22 31 12 *", "4h", "UTC", at("2027-01-01 01:59"), True, None, at("2027-01-01 02:00")),
    (
        "0 22 31 12 *",
        "4h",
        "UTC",
        at("2027-01-01 02:00"),
        False,
        at("2027-12-31 22:00"),
        at("2028-01-01 02:00"),
    ),
    # Spring forward in Berlin (Sun 2026-03-29, 02:00 CET -> 03:00 CEST): a start in the
    # gap moves forward by the gap, and the window still lasts 4h of elapsed time.
    (
        "30 2 * * *",
        "4h",
        BERLIN,
        at("2026-03-29 01:00"),
        False,
        at("2026-03-29 01:30"),
        at("2026-03-29 05:30"),
    ),
    ("30 2 * * *", "4h", BERLIN, at("2026-03-28 05:00"), True, None, at("2026-03-28 05:30")),
    (
        "0 2 * * *",
        "4h",
        BERLIN,
        at("2026-03-29 00:30"),
        False,
        at("2026-03-29 01:00"),
        at("2026-03-29 05:00"),
    ),
    ("0 0 * * *", "4h", BERLIN, at("2026-03-29 02:30"), True, None, at("2026-03-29 03:00")),
    (
        "0,30 2 * * *",
        "30m",
        BERLIN,
        at("2026-03-29 00:00"),
        False,
        at("2026-03-29 01:00"),
        at("2026-03-29 02:00"),
    ),
    # Fall back in Berlin (Sun 2026-10-25, 03:00 CEST -> 02:00 CET): 02:30 starts once, at
    # its first occurrence (00:30 UTC), and is not extended by the repeated 02:30.
    (
        "30 2 * * *",
        "4h",
        BERLIN,
        at("2026-10-25 00:00"),
        False,
        at("2026-10-25 00:30"),
        at("2026-10-25 04:30"),
    ),
    ("30 2 * * *", "4h", BERLIN, at("2026-10-25 01:45"), True, None, at("2026-10-25 04:30")),
    (
        "30 2 * * *",
        "4h",
        BERLIN,
        at("2026-10-25 04:30"),
        False,
        at("2026-10-26 01:30"),
        at("2026-10-26 05:30"),
    ),
    ("0 0 * * *", "4h", BERLIN, at("2026-10-25 01:00"), True, None, at("2026-10-25 02:00")),
    # Only "every hour" repeats in the repeated hour.
    ("0 * * * *", "30m", BERLIN, at("2026-10-25 01:10"), True, None, at("2026-10-25 01:30")),
    (
        "0 2 * * *",
        "30m",
        BERLIN,
        at("2026-10-25 01:10"),
        False,
        at("2026-10-26 01:00"),
        at("2026-10-26 01:30"),
    ),
    # New York: DST starts Sun 2026-03-08, ends Sun 2026-11-01.
    ("0 23 * * SAT", "4h", NEW_YORK, at("2026-03-08 05:00"), True, None, at("2026-03-08 08:00")),
    ("0 23 * * SAT", "4h", NEW_YORK, at("2026-11-01 06:59"), True, None, at("2026-11-01 07:00")),
    (
        "30 2 * * SUN",
        "1h",
        NEW_YORK,
        at("2026-03-08 00:00"),
        False,
        at("2026-03-08 07:30"),
        at("2026-03-08 08:30"),
    ),
    # Overlapping and back-to-back windows merge into one open period.
    ("0 9,10 * * *", "2h", "UTC", at("2026-11-26 10:30"), True, None, at("2026-11-26 12:00")),
    ("0 8,10 * * *", "2h", "UTC", at("2026-11-26 09:59"), True, None, at("2026-11-26 12:00")),
    (
        "0 9,10 * * *",
        "2h",
        "UTC",
        at("2026-11-26 12:00"),
        False,
        at("2026-11-27 09:00"),
        at("2026-11-27 12:00"),
    ),
    ("0 */4 * * *", "4h", "UTC", at("2026-11-26 12:00"), True, None, None),
    # Steps.
    ("*/15 * * * *", "5m", "UTC", at("2026-11-26 10:03"), True, None, at("2026-11-26 10:05")),
    (
        "*/15 * * * *",
        "5m",
        "UTC",
        at("2026-11-26 10:07"),
        False,
        at("2026-11-26 10:15"),
        at("2026-11-26 10:20"),
    ),
    # Both day fields restricted: the 13th OR a Friday.
    (
        "0 12 13 * FRI",
        "1h",
        "UTC",
        at("2026-12-12 00:00"),
        False,
        at("2026-12-13 12:00"),
        at("2026-12-13 13:00"),
    ),
    (
        "0 12 13 * FRI",
        "1h",
        "UTC",
        at("2026-12-14 00:00"),
        False,
        at("2026-12-18 12:00"),
        at("2026-12-18 13:00"),
    ),
    # A leap-day window is found more than a year ahead.
    (
        "0 0 29 2 *",
        "1h",
        "UTC",
        at("2026-11-26 00:00"),
        False,
        at("2028-02-29 00:00"),
        at("2028-02-29 01:00"),
    ),
]


@pytest.mark.parametrize(
    ("schedule", "duration", "zone", "now", "is_open", "opens_at", "closes_at"), ROWS
)
def test_window_arithmetic(
    schedule: str,
    duration: str,
    zone: str,
    now: datetime,
    is_open: bool,
    opens_at: datetime | None,
    closes_at: datetime | None,
) -> None:
    state = window_state(window(schedule, duration, zone), now)
    assert state.open is is_open, state.message
    assert state.reason is (Reason.IN_WINDOW if is_open else Reason.OUTSIDE_WINDOW)
    assert (state.opens_at, state.closes_at) == (opens_at, closes_at), state.message
    assert state.next_change == (closes_at if is_open else opens_at)


def test_message_names_local_and_utc_time_and_length() -> None:
    state = window_state(window(), at("2026-11-28 10:00", BERLIN))
    assert state.message == (
        "Outside the deployment window; the next window opens "
        "Mon 2026-11-30 22:00 CET (21:00 UTC) for 4h."
    )


def test_message_across_a_dst_change_uses_the_new_offset() -> None:
    state = window_state(window("0 23 * * SAT", "4h", NEW_YORK), at("2026-03-08 05:00"))
    assert (
        state.message == "Inside the deployment window until Sun 2026-03-08 04:00 EDT (08:00 UTC)."
    )
    before = window_state(window("0 23 * * SAT", "4h", NEW_YORK), at("2026-03-07 12:00", NEW_YORK))
    assert "opens Sat 2026-03-07 23:00 EST (Sun 2026-03-08 04:00 UTC) for 4h" in before.message


def test_fall_back_window_lasts_its_elapsed_duration_once() -> None:
    w = window("30 2 * * *", "4h", BERLIN)
    state = window_state(w, at("2026-10-25 00:00"))
    assert state.opens_at is not None and state.closes_at is not None
    assert state.closes_at - state.opens_at == timedelta(hours=4)
    assert "Sun 2026-10-25 02:30 CEST (00:30 UTC) for 4h" in state.message


def test_spring_forward_start_is_shifted_not_skipped() -> None:
    state = window_state(window("30 2 * * *", "4h", BERLIN), at("2026-03-29 01:00"))
    assert "Sun 2026-03-29 03:30 CEST (01:30 UTC) for 4h" in state.message


def test_always_open_schedule_has_no_end_and_is_cheap() -> None:
    started = time.perf_counter()
    state = window_state(window("* * * * *", "1m", "UTC"), at("2026-11-26 10:00:30"))
    assert time.perf_counter() - started < 1.0
    assert state.open and state.closes_at is None and state.next_change is None
    assert "stays open" in state.message


# Freezes ---------------------------------------------------------------------------------

MIGRATION = freeze("2026-11-30T23:00:00+01:00", "2026-12-01T00:00:00+01:00", "database migration")


def test_window_closes_early_when_a_freeze_begins() -> None:
    state = window_state(window(freezes=[MIGRATION]), at("2026-11-30 22:30", BERLIN))
    assert state.open
    assert state.closes_at == state.next_change == at("2026-11-30 23:00", BERLIN)
    assert state.message == (
        "Inside the deployment window until Mon 2026-11-30 23:00 CET (22:00 UTC), "
        "when the freeze (database migration) begins."
    )


def test_freeze_inside_a_window_reopens_the_rest_of_the_window() -> None:
    state = window_state(window(freezes=[MIGRATION]), at("2026-11-30 23:30", BERLIN))
    assert not state.open
    assert state.reason is Reason.FROZEN
    assert state.freeze is not None and state.freeze.reason == "database migration"
    assert state.next_change == state.opens_at == at("2026-12-01 00:00", BERLIN)
    assert state.closes_at == at("2026-12-01 02:00", BERLIN)
    assert state.message == (
        "Deployments are frozen (database migration) until Tue 2026-12-01 00:00 CET "
        "(Mon 2026-11-30 23:00 UTC); the deployment window is open then, until "
        "Tue 2026-12-01 02:00 CET (01:00 UTC)."
    )


def test_a_freeze_written_without_offset_reaches_status_as_utc() -> None:
    """A freeze without an offset is read in the window's zone; status says which instant
    that was, in UTC, never the naive text (which a reader would take for UTC)."""
    local = freeze("2026-11-30T23:00:00", "2026-12-01T00:00:00", "database migration")
    state = window_state(window(freezes=[local]), at("2026-11-30 23:30", BERLIN))
    assert state.reason is Reason.FROZEN
    assert state.to_wire()["freeze"] == {
        "start": "2026-11-30T22:00:00Z",
        "end": "2026-11-30T23:00:00Z",
        "reason": "database migration",
    }


def test_freeze_covering_the_next_window_skips_it() -> None:
    w = window(freezes=[freeze("2026-11-30T00:00:00Z", "2026-12-01T12:00:00Z")])
    state = window_state(w, at("2026-11-28 10:00"))
    assert not state.open and state.reason is Reason.OUTSIDE_WINDOW
    assert state.opens_at == at("2026-12-01 22:00", BERLIN)
    assert state.next_change == at("2026-11-30 00:00")  # the freeze begins before that
    assert "The window of Mon 2026-11-30 22:00 CET (21:00 UTC) falls in the freeze" in state.message


def test_freeze_ending_inside_a_window_opens_at_its_end() -> None:
    w = window(freezes=[freeze("2026-11-30T00:00:00Z", "2026-11-30T23:00:00Z")])
    state = window_state(w, at("2026-11-28 10:00"))
    assert (state.opens_at, state.closes_at) == (at("2026-11-30 23:00"), at("2026-12-01 01:00"))
    assert "for 2h" in state.message


def test_overlapping_freezes_chain() -> None:
    w = window(
        freezes=[
            freeze("2026-12-20T00:00:00Z", "2027-01-02T00:00:00Z"),
            freeze("2027-01-01T00:00:00Z", "2027-01-05T00:00:00Z", "inventory"),
        ]
    )
    state = window_state(w, at("2026-12-25 10:00"))
    assert state.reason is Reason.FROZEN
    assert state.next_change == at("2027-01-05 00:00")
    assert state.opens_at == at("2027-01-05 00:00")  # Monday's window runs until 01:00 UTC


def test_freeze_without_offset_is_read_in_the_window_zone() -> None:
    w = window(freezes=[freeze("2026-11-30T22:00:00", "2026-11-30T23:00:00", "naive")])
    state = window_state(w, at("2026-11-30 22:30", BERLIN))
    assert state.reason is Reason.FROZEN


def test_every_window_frozen_within_the_horizon() -> None:
    w = window(freezes=[freeze("2026-01-01T00:00:00Z", "2035-01-01T00:00:00Z", "moratorium")])
    state = window_state(w, at("2026-11-26 12:00"))
    assert state.reason is Reason.FROZEN and state.opens_at is None
    assert "falls in a freeze" in state.message


# Never-matching, missing and invalid windows --------------------------------------------


def test_schedule_that_never_opens() -> None:
    state = window_state(window("0 0 30 2 *", "1h", "UTC"), at("2026-11-26 12:00"))
    assert not state.open and state.opens_at is None and state.next_change is None
    assert state.message == (
        "Outside the deployment window, and the schedule '0 0 30 2 *' never opens a window: "
        "no day 30 exists in Feb."
    )


def test_never_opening_schedule_still_wakes_for_a_freeze() -> None:
    w = window("0 0 30 2 *", "1h", "UTC", [freeze("2026-12-20T00:00:00Z", "2027-01-05T00:00:00Z")])
    assert window_state(w, at("2026-11-26 12:00")).next_change == at("2026-12-20 00:00")


def test_no_window_is_always_open() -> None:
    state = window_state(None, at("2026-11-26 12:00"))
    assert state.open and state.reason is Reason.NO_WINDOW and state.next_change is None


@pytest.mark.parametrize(
    ("w", "fragment"),
    [
        (window(zone="Mars/Olympus_Mons"), "'Mars/Olympus_Mons' is not an IANA time zone"),
        (window(zone="Europe"), "is not an IANA time zone"),
        (window(schedule="0 25 * * *"), "hour field: 25 is outside 0-23"),
        (window(duration="0s"), "at least one second"),
    ],
)
def test_invalid_windows_stay_closed_and_say_why(w: Window, fragment: str) -> None:
    assert fragment in (window_problem(w) or "")
    state = window_state(w, at("2026-11-26 12:00"))
    assert not state.open and state.reason is Reason.INVALID_WINDOW
    assert fragment in state.message


def test_valid_window_has_no_problem() -> None:
    assert window_problem(window()) is None


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        window_state(window(), datetime(2026, 11, 26, 12, 0))


# Expedite ---------------------------------------------------------------------------------


def test_expedite_opens_outside_a_window_until_the_next_freeze() -> None:
    w = window(freezes=[freeze("2026-12-20T00:00:00Z", "2027-01-05T00:00:00Z")])
    state = window_gate(w, at("2026-11-28 10:00"), expedited=True)
    assert state.open and state.reason is Reason.EXPEDITED
    assert state.closes_at == at("2026-12-20 00:00")
    assert state.next_change == at("2026-11-30 22:00", BERLIN)  # then it is InWindow
    assert "expedited change may start now" in state.message


def test_expedite_never_opens_a_freeze() -> None:
    w = window(freezes=[freeze("2026-12-20T00:00:00Z", "2027-01-05T00:00:00Z")])
    state = window_gate(w, at("2026-12-25 10:00"), expedited=True)
    assert not state.open and state.reason is Reason.FROZEN
    assert "An expedited change waits for the freeze too." in state.message


@pytest.mark.parametrize(
    ("w", "now", "reason"),
    [
        (window(), at("2026-11-30 22:30", BERLIN), Reason.IN_WINDOW),
        (None, at("2026-11-30 12:00"), Reason.NO_WINDOW),
        (window(), at("2026-11-28 10:00"), Reason.OUTSIDE_WINDOW),
    ],
)
def test_gate_without_expedite_is_the_window_state(
    w: Window | None, now: datetime, reason: Reason
) -> None:
    assert window_gate(w, now, expedited=False) == window_state(w, now)
    assert window_gate(w, now, expedited=False).reason is reason


# Formatting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "zone", "text"),
    [
        (at("2026-11-30 21:00"), BERLIN, "Mon 2026-11-30 22:00 CET (21:00 UTC)"),
        (at("2026-12-31 23:30"), BERLIN, "Fri 2027-01-01 00:30 CET (Thu 2026-12-31 23:30 UTC)"),
        (at("2026-12-31 23:30"), "UTC", "Thu 2026-12-31 23:30 UTC"),
    ],
)
def test_format_time(moment: datetime, zone: str, text: str) -> None:
    assert format_time(moment, ZoneInfo(zone)) == text


@pytest.mark.parametrize(
    ("seconds", "text"), [(14400, "4h"), (5400, "1h30m"), (187200, "2d4h"), (45, "45s")]
)
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text


def test_to_wire() -> None:
    w = window(freezes=[MIGRATION])
    wire = window_state(w, at("2026-11-30 23:30", BERLIN)).to_wire()
    assert wire["open"] is False and wire["reason"] == "Frozen"
    assert wire["opensAt"] == "2026-11-30T23:00:00Z"
    assert wire["freeze"] == {
        "start": "2026-11-30T22:00:00Z",
        "end": "2026-11-30T23:00:00Z",
        "reason": "database migration",
    }
    assert "closesAt" in wire and "nextChange" in wire and wire["message"]
