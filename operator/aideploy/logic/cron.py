"""Five-field cron schedules, evaluated in an IANA time zone.

Deployment windows (`spec.window.schedule`) are written in cron because release managers
and Kubernetes users already read it. This module parses the classic five fields
(minute hour day-of-month month day-of-week) and finds the start times around a given
instant by skipping whole days, then bisecting the day's start minutes, never by stepping
minute by minute, so that a year-long search stays cheap enough for every reconcile.

Syntax: `*`, lists (`1,3,5`), ranges (`1-5`), steps (`*/15`, `10-50/20`, `5/15` = from 5
to the end of the range), names (`JAN`-`DEC`, `SUN`-`SAT`, any case), `?` as `*` in the
two day fields, and 0 or 7 for Sunday. A weekday range may end in Sunday (`FRI-SUN`);
other ranges do not wrap around, so a backwards range is an error rather than a guess.

Day fields, as in Kubernetes CronJob (robfig/cron): when both day-of-month and
day-of-week are restricted, a day matches if EITHER matches; when one of them is
unrestricted, both must match. A day field is unrestricted only when written `*` or `?`
(without a step): `*/2` restricts it. (Vixie cron counts `*/2` as unrestricted; for a
Kubernetes operator the CronJob reading is the less surprising one.)

Daylight saving time, following RFC 5545 (iCalendar) and Python's `fold=0`:
- A start time that does not exist (02:30 on the spring-forward day in Europe/Berlin) is
  not skipped: it is moved forward by the length of the gap (02:30 CET = 03:30 CEST), so
  that a weekly window does not silently disappear for a week.
- A start time that exists twice (02:30 on the fall-back day) starts once, at its first
  occurrence. Only when the hour field is unrestricted (every hour) does the repeated hour
  get its own starts too, because "every hour" means every elapsed hour.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

MONTH_NAMES: Final = (
    "JAN",
    "FEB",
    "MAR",
    "APR",
    "MAY",
    "JUN",
    "JUL",
    "AUG",
    "SEP",
    "OCT",
    "NOV",
    "DEC",
)
WEEKDAY_NAMES: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# The longest each month can be (February: in a leap year), to spot schedules like 30 FEB.
_MONTH_DAYS: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DAY: Final = timedelta(days=1)


class CronError(ValueError):
    """A schedule that cannot be parsed; the message says which field and why."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0
    question_mark: bool = False


_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DOM = _Field("day-of-month", 1, 31, question_mark=True)
_MONTH = _Field("month", 1, 12, MONTH_NAMES, 1)
_DOW = _Field("day-of-week", 0, 7, WEEKDAY_NAMES, 0, question_mark=True)


def _value(text: str, field: _Field) -> int:
    upper = text.upper()
    if upper in field.names:
        return field.names.index(upper) + field.name_base
    if not text.isdigit():
        raise CronError(f"{field.name} field: {text!r} is not a number or a known name")
    number = int(text)
    if not field.low <= number <= field.high:
        raise CronError(f"{field.name} field: {number} is outside {field.low}-{field.high}")
    return number


def _parse_field(text: str, field: _Field) -> tuple[frozenset[int], bool]:
    """The values a field allows, and whether it is restricted (not `*` or `?`)."""
    values: set[int] = set()
    restricted = True
    for element in text.split(","):
        base, slash, step_text = element.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{field.name} field: step {step_text!r} must be a positive number")
            step = int(step_text)
        if base in ("*", "?"):
            if base == "?" and not field.question_mark:
                raise CronError(f"{field.name} field: '?' is only allowed in the day fields")
            start, end = field.low, field.high
            restricted = restricted and step > 1
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _value(first, field), _value(last, field)
            if field is _DOW and end == 0 and start > 0:
                end = 7  # FRI-SUN
        elif base:
            start = _value(base, field)
            end = field.high if slash else start
        else:
            raise CronError(f"{field.name} field: empty element in {text!r}")
        if start > end:
            raise CronError(
                f"{field.name} field: range {element!r} runs backwards; cron ranges do not "
                "wrap around (write two ranges, e.g. 22-23,0-1)"
            )
        values.update(range(start, end + 1, step))
    if field is _DOW and 7 in values:
        values = (values - {7}) | {0}
    return frozenset(values), restricted


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule; `times` are its start minutes of the day, sorted."""

    text: str
    times: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool
    every_hour: bool

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = (day.weekday() + 1) % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays

    def never_matches(self) -> str | None:
        """Why no calendar day can ever match (e.g. 30 FEB), or None."""
        if self.weekdays_restricted or not self.days_restricted:
            return None
        if any(day <= _MONTH_DAYS[month - 1] for month in self.months for day in self.days):
            return None
        months = ", ".join(MONTH_NAMES[m - 1].title() for m in sorted(self.months))
        days = ", ".join(str(d) for d in sorted(self.days))
        return f"no day {days} exists in {months}"


def parse_cron(text: str) -> CronSchedule:
    """Parse a five-field schedule; raises CronError with a message for a release manager."""
    parts = text.split()
    if len(parts) != 5:
        raise CronError(
            f"schedule {text!r} must have five fields (minute hour day-of-month month "
            f"day-of-week), not {len(parts)}"
        )
    try:
        minutes, _ = _parse_field(parts[0], _MINUTE)
        hours, _ = _parse_field(parts[1], _HOUR)
        days, days_restricted = _parse_field(parts[2], _DOM)
        months, _ = _parse_field(parts[3], _MONTH)
        weekdays, weekdays_restricted = _parse_field(parts[4], _DOW)
    except CronError as error:
        raise CronError(f"schedule {text!r}: {error}") from None
    return CronSchedule(
        text=text,
        times=tuple(h * 60 + m for h in sorted(hours) for m in sorted(minutes)),
        days=days,
        months=months,
        weekdays=weekdays,
        days_restricted=days_restricted,
        weekdays_restricted=weekdays_restricted,
        every_hour=len(hours) == 24,
    )


@dataclass(frozen=True)
class _Day:
    """The starts of one matching local day.

    On a day with one UTC offset, `base` is the epoch second of local midnight and a start
    is `base + 60 * minute`; on a day with a DST change, `starts` lists them explicitly.
    """

    base: int | None
    starts: tuple[int, ...] = ()


def _epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError("times passed to the schedule must be timezone-aware")
    return moment.timestamp()


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class ZonedSchedule:
    """A schedule in one time zone: finds start instants (returned as aware UTC times).

    An instance memoises the days it has looked at; build one per evaluation.
    """

    def __init__(self, schedule: CronSchedule, zone: ZoneInfo) -> None:
        self.schedule = schedule
        self.zone = zone
        self._days: dict[date, _Day | None] = {}
        self._gaps: dict[int, list[int]] = {}

    def _day(self, day: date) -> _Day | None:
        if day not in self._days:
            self._days[day] = self._build_day(day) if self.schedule.matches_day(day) else None
        return self._days[day]

    def _build_day(self, day: date) -> _Day:
        midnight = datetime(day.year, day.month, day.day, tzinfo=self.zone)
        following = midnight.date() + _DAY
        offset = midnight.utcoffset()
        next_midnight = datetime(following.year, following.month, following.day, tzinfo=self.zone)
        if midnight.replace(fold=1).utcoffset() == offset == next_midnight.utcoffset():
            return _Day(base=int(midnight.timestamp()))
        starts: set[int] = set()
        for minute in self.schedule.times:
            hour, minute_of_hour = divmod(minute, 60)
            local = midnight.replace(hour=hour, minute=minute_of_hour)
            # fold=0: a time in the gap moves forward by the gap, a repeated time is the first.
            starts.add(int(local.timestamp()))
            second = local.replace(fold=1)
            exists = local.astimezone(UTC).astimezone(self.zone).replace(tzinfo=None) == (
                local.replace(tzinfo=None)
            )
            if exists and self.schedule.every_hour and second.utcoffset() != local.utcoffset():
                starts.add(int(second.timestamp()))
        return _Day(base=None, starts=tuple(sorted(starts)))

    def _date(self, epoch: float) -> date:
        return datetime.fromtimestamp(epoch, self.zone).date()

    def _first_in_day(self, day: _Day, at_or_after: int) -> int | None:
        if day.base is None:
            index = bisect_left(day.starts, at_or_after)
            return day.starts[index] if index < len(day.starts) else None
        times = self.schedule.times
        index = bisect_left(times, -((day.base - at_or_after) // 60))
        return day.base + 60 * times[index] if index < len(times) else None

    def _last_in_day(self, day: _Day, at_or_before: int) -> int | None:
        if day.base is None:
            index = bisect_right(day.starts, at_or_before) - 1
            return day.starts[index] if index >= 0 else None
        times = self.schedule.times
        index = bisect_right(times, (at_or_before - day.base) // 60) - 1
        return day.base + 60 * times[index] if index >= 0 else None

    def _next(self, at_or_after: int, before: int) -> int | None:
        day = self._date(at_or_after) - _DAY
        last_day = self._date(before) + _DAY
        while day <= last_day:
            matching = self._day(day)
            if matching is not None:
                start = self._first_in_day(matching, at_or_after)
                if start is not None:
                    return start if start < before else None
            day += _DAY
        return None

    def next_start(self, at_or_after: datetime, before: datetime) -> datetime | None:
        """The first start at or after `at_or_after` and before `before`, if any."""
        start = self._next(math.ceil(_epoch(at_or_after)), math.ceil(_epoch(before)))
        return None if start is None else _utc(start)

    def last_start(self, at_or_before: datetime, not_before: datetime) -> datetime | None:
        """The latest start at or before `at_or_before` and not before `not_before`."""
        limit = math.floor(_epoch(at_or_before))
        earliest = math.ceil(_epoch(not_before))
        day = self._date(limit) + _DAY
        first_day = self._date(earliest) - _DAY
        while day >= first_day:
            matching = self._day(day)
            if matching is not None:
                start = self._last_in_day(matching, limit)
                if start is not None:
                    return _utc(start) if start >= earliest else None
            day -= _DAY
        return None

    def _gap_indices(self, duration: int) -> list[int]:
        """Indices i of `times` after which a regular day's windows leave a gap."""
        if duration not in self._gaps:
            times = self.schedule.times
            self._gaps[duration] = [
                i for i in range(len(times) - 1) if (times[i + 1] - times[i]) * 60 > duration
            ]
        return self._gaps[duration]

    def _last_of_run_in_day(self, day: _Day, start: int, duration: int) -> tuple[int, bool]:
        """From `start`, the last start the run reaches in its day, and whether it ends there."""
        if day.base is None:
            index = bisect_left(day.starts, start)
            for i in range(index, len(day.starts) - 1):
                if day.starts[i + 1] - day.starts[i] > duration:
                    return day.starts[i], True
            return day.starts[-1], False
        times = self.schedule.times
        gaps = self._gap_indices(duration)
        position = bisect_left(gaps, bisect_left(times, (start - day.base) // 60))
        if position < len(gaps):
            return day.base + 60 * times[gaps[position]], True
        return day.base + 60 * times[-1], False

    def run_end(self, start: datetime, duration: timedelta, before: datetime) -> datetime | None:
        """When the run of overlapping or back-to-back windows that begins at `start` ends.

        `start` must be a start of the schedule. None when the run reaches `before`
        (the caller's horizon or the next freeze), so nothing beyond it is computed.
        """
        length = int(duration.total_seconds())
        current = int(_epoch(start))
        limit = math.ceil(_epoch(before))
        while current < limit:
            day = self._day(self._date(current))
            if day is None:  # not a start of the schedule: a window of its own
                end = current + length
                return _utc(end) if end < limit else None
            last, ended = self._last_of_run_in_day(day, current, length)
            end = last + length
            if not ended:
                following = self._next(last + 1, min(end + 1, limit))
                if following is not None:
                    current = following
                    continue
            return _utc(end) if end < limit else None
        return None
