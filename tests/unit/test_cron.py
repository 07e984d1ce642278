"""The cron parser and the start search, checked against a minute-by-minute brute force."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from aideploy.logic.cron import CronError, CronSchedule, ZonedSchedule, parse_cron

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("text", "minutes", "hours"),
    [
        ("0 22 * * 1-5", [0], [22]),
        ("*/15 * * * *", [0, 15, 30, 45], list(range(24))),
        ("5/20 8-10 * * *", [5, 25, 45], [8, 9, 10]),
        ("10-50/20 1,3 * * *", [10, 30, 50], [1, 3]),
        ("0,30 22-23 * * *", [0, 30], [22, 23]),
    ],
)
def test_minutes_and_hours(text: str, minutes: list[int], hours: list[int]) -> None:
    schedule = parse_cron(text)
    assert schedule.times == tuple(h * 60 + m for h in hours for m in minutes)


@pytest.mark.parametrize(
    ("text", "months", "weekdays"),
    [
        ("0 9 * JAN,mar MON-FRI", {1, 3}, {1, 2, 3, 4, 5}),
        ("0 9 * * FRI-SUN", set(range(1, 13)), {5, 6, 0}),
        ("0 9 * * 5-7", set(range(1, 13)), {5, 6, 0}),
        ("0 9 * * 7", set(range(1, 13)), {0}),
        ("0 9 * JUN-AUG sat,sun", {6, 7, 8}, {0, 6}),
        ("0 9 * */3 */2", {1, 4, 7, 10}, {0, 2, 4, 6}),
    ],
)
def test_names_and_sunday(text: str, months: set[int], weekdays: set[int]) -> None:
    schedule = parse_cron(text)
    assert schedule.months == months
    assert schedule.weekdays == weekdays


@pytest.mark.parametrize(
    ("text", "days_restricted", "weekdays_restricted"),
    [
        ("0 0 * * *", False, False),
        ("0 0 ? * ?", False, False),
        ("0 0 13 * *", True, False),
        ("0 0 * * FRI", False, True),
        ("0 0 13 * FRI", True, True),
        ("0 0 */2 * FRI", True, True),  # a step restricts, as in Kubernetes CronJob
        ("0 0 1-31 * FRI", True, True),
    ],
)
def test_which_day_fields_are_restricted(
    text: str, days_restricted: bool, weekdays_restricted: bool
) -> None:
    schedule = parse_cron(text)
    assert (schedule.days_restricted, schedule.weekdays_restricted) == (
        days_restricted,
        weekdays_restricted,
    )


@pytest.mark.parametrize(
    ("text", "day", "matches"),
    [
        ("0 12 13 * FRI", date(2026, 11, 13), True),  # Friday the 13th
        ("0 12 13 * FRI", date(2026, 12, 13), True),  # the 13th, a Sunday: either matches
        ("0 12 13 * FRI", date(2026, 12, 11), True),  # a Friday, not the 13th
        ("0 12 13 * FRI", date(2026, 12, 12), False),
        ("0 12 13 * *", date(2026, 12, 11), False),
        ("0 12 * * FRI", date(2026, 12, 13), False),
        ("0 12 */2 * MON", date(2026, 12, 8), False),  # Tuesday the 8th: neither
        ("0 12 */2 * MON", date(2026, 12, 7), True),  # Monday the 7th: the weekday
        ("0 12 */2 * MON", date(2026, 12, 9), True),  # the 9th, a Wednesday: the day
        ("0 12 * DEC *", date(2026, 11, 30), False),
    ],
)
def test_both_day_fields_rule(text: str, day: date, matches: bool) -> None:
    assert parse_cron(text).matches_day(day) is matches


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("0 22 * *", "five fields"),
        ("60 22 * * *", "minute field: 60 is outside 0-59"),
        ("0 24 * * *", "hour field: 24 is outside 0-23"),
        ("0 0 0 * *", "day-of-month field: 0 is outside 1-31"),
        ("0 0 * 13 *", "month field: 13 is outside 1-12"),
        ("0 0 * * 8", "day-of-week field: 8 is outside 0-7"),
        ("0 0 * * MOX", "'MOX' is not a number or a known name"),
        ("*/0 0 * * *", "step '0' must be a positive number"),
        ("0 23-1 * * *", "runs backwards"),
        ("0 ? * * *", "'?' is only allowed in the day fields"),
        ("0 0 L * *", "'L' is not a number"),
        ("0 0 1,,2 * *", "empty element"),
    ],
)
def test_parse_errors_name_the_field(text: str, fragment: str) -> None:
    with pytest.raises(CronError, match=re.escape(fragment)):
        parse_cron(text)


@pytest.mark.parametrize(
    ("text", "never"),
    [
        ("0 0 30 2 *", "no day 30 exists in Feb"),
        ("0 0 31 4,6,9,11 *", "no day 31 exists in Apr, Jun, Sep, Nov"),
        ("0 0 29 2 *", None),  # leap years
        ("0 0 30 2 MON", None),  # either day field: every Monday in February
        ("0 0 31 * *", None),
    ],
)
def test_never_matches(text: str, never: str | None) -> None:
    assert parse_cron(text).never_matches() == never


def _brute_force(
    schedule: CronSchedule, zone: ZoneInfo, start: datetime, end: datetime
) -> list[datetime]:
    """Every minute in [start, end) whose wall time in `zone` matches: the reference."""
    found = []
    moment = start
    while moment < end:
        local = moment.astimezone(zone)
        if schedule.matches_day(local.date()) and (
            local.hour * 60 + local.minute in schedule.times
        ):
            found.append(moment)
        moment += timedelta(minutes=1)
    return found


def _all_starts(zoned: ZonedSchedule, start: datetime, end: datetime) -> list[datetime]:
    found = []
    moment = zoned.next_start(start, end)
    while moment is not None:
        found.append(moment)
        moment = zoned.next_start(moment + timedelta(seconds=1), end)
    return found


@pytest.mark.parametrize(
    "text",
    [
        "0 22 * * 1-5",
        "*/15 * * * *",
        "7,59 */5 * * *",
        "0 12 13 * FRI",
        "30 0 1 * *",
        "* 3 * * SUN",
    ],
)
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
def test_search_agrees_with_brute_force_away_from_dst(text: str, zone: str) -> None:
    schedule = parse_cron(text)
    tz = ZoneInfo(zone)
    zoned = ZonedSchedule(schedule, tz)
    start = datetime(2026, 11, 25, 17, 3, tzinfo=UTC)
    end = start + timedelta(days=9)
    assert _all_starts(zoned, start, end) == _brute_force(schedule, tz, start, end)


def test_last_start_is_the_latest_at_or_before() -> None:
    zoned = ZonedSchedule(parse_cron("0 22 * * 1-5"), BERLIN)
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    friday_22 = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
    assert zoned.last_start(saturday, saturday - timedelta(days=3)) == friday_22
    assert zoned.last_start(friday_22, friday_22) == friday_22
    assert zoned.last_start(saturday, saturday - timedelta(hours=4)) is None


def test_next_start_respects_before() -> None:
    zoned = ZonedSchedule(parse_cron("0 22 * * 1-5"), BERLIN)
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert zoned.next_start(saturday, saturday + timedelta(days=1)) is None
    assert zoned.next_start(saturday, saturday + timedelta(days=3)) == datetime(
        2026, 11, 30, 21, 0, tzinfo=UTC
    )


def test_naive_times_are_refused() -> None:
    zoned = ZonedSchedule(parse_cron("0 22 * * *"), BERLIN)
    with pytest.raises(ValueError, match="timezone-aware"):
        zoned.next_start(datetime(2026, 1, 1), datetime(2026, 1, 2, tzinfo=UTC))
