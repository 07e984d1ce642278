"""The one way the operator writes and reads times: RFC 3339 in UTC.

Status fields, records and annotations are compared as strings and parsed back by other
tools, so there is one formatter (second precision, or millisecond precision for timings
people measure) and one parser. Naive datetimes are refused: a time without a zone written
as if it were UTC is the kind of error an auditor cannot see.
"""

from __future__ import annotations

from datetime import UTC, datetime


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: pass a time zone")
    return moment.astimezone(UTC)


def rfc3339(moment: datetime, *, milliseconds: bool = False) -> str:
    """`2026-01-31T12:00:00Z`, or `2026-01-31T12:00:00.123Z` with `milliseconds`."""
    utc = _aware(moment)
    if milliseconds:
        return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return utc.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Parse what `rfc3339` wrote (or any RFC 3339 time with an offset) into an aware UTC
    datetime; raises ValueError on anything without a zone."""
    return _aware(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
