"""The one RFC 3339 formatter and parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from aideploy.api.times import parse_time, rfc3339

BERLIN_WINTER = timezone(timedelta(hours=1))


@pytest.mark.parametrize(
    ("moment", "milliseconds", "expected"),
    [
        (datetime(2026, 1, 31, 12, 0, 0, 987654, tzinfo=UTC), False, "2026-01-31T12:00:00Z"),
        (datetime(2026, 1, 31, 12, 0, 0, 987654, tzinfo=UTC), True, "2026-01-31T12:00:00.987Z"),
        (datetime(2026, 1, 31, 13, 0, 0, tzinfo=BERLIN_WINTER), False, "2026-01-31T12:00:00Z"),
        (datetime(2026, 1, 31, 13, 0, 0, tzinfo=BERLIN_WINTER), True, "2026-01-31T12:00:00.000Z"),
    ],
)
def test_rfc3339_writes_utc(moment: datetime, milliseconds: bool, expected: str) -> None:
    assert rfc3339(moment, milliseconds=milliseconds) == expected


def test_naive_times_are_refused_not_written_as_if_utc() -> None:
    with pytest.raises(ValueError, match="naive"):
        rfc3339(datetime(2026, 1, 31, 12, 0, 0))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31T12:00:00Z", datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31T12:00:00.250Z", datetime(2026, 1, 31, 12, 0, 0, 250000, tzinfo=UTC)),
        ("2026-01-31T13:00:00+01:00", datetime(2026, 1, 31, 12, tzinfo=UTC)),
    ],
)
def test_parse_time_reads_what_rfc3339_writes(text: str, expected: datetime) -> None:
    parsed = parse_time(text)
    assert parsed == expected and parsed.tzinfo is UTC
    assert parse_time(rfc3339(parsed, milliseconds=True)) == parsed


def test_parse_time_refuses_a_time_without_zone() -> None:
    with pytest.raises(ValueError, match="naive"):
        parse_time("2026-01-31T12:00:00")
