"""Go-style durations ("90s", "1h30m", "500ms"), as Kubernetes users write them."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Final

from pydantic import AfterValidator, Field

DURATION_PATTERN: Final = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$"
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
#: Ten years: longer than any window, watch or timeout, and well inside what timedelta holds.
MAX_DAYS: Final = 3650
MAX_SECONDS: Final = MAX_DAYS * 86400.0


def parse_duration(text: str) -> timedelta:
    """Parse a duration; raises ValueError naming the accepted form."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration; write it like 30s, 5m, 1h30m or 500ms")
    seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(text))
    if seconds > MAX_SECONDS:  # also what timedelta could not hold (an OverflowError)
        raise ValueError(f"{text!r} is longer than {MAX_DAYS}d; write a shorter duration")
    return timedelta(seconds=seconds)


def _check(text: str) -> str:
    parse_duration(text)
    return text


Duration = Annotated[str, Field(pattern=DURATION_PATTERN), AfterValidator(_check)]

#: A duration of at least a minute, as the CRD schema can say it without CEL: one of its
#: parts is a whole number (>= 1) of minutes, hours or days ("1m", "1h30m", "90m", "2d").
MINUTES_PATTERN: Final = (
    r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))*0*[1-9][0-9]*(\.[0-9]+)?(m|h|d)"
    r"([0-9]+(\.[0-9]+)?(ms|s|m|h|d))*$"
)


def _check_minutes(text: str) -> str:
    if parse_duration(text) < timedelta(minutes=1):  # the pattern says it; kept for clarity
        raise ValueError(f"{text!r} is shorter than 1m; write at least 1m")
    return text


#: For what repeats for a long time (reminders): never more often than once a minute.
MinutesDuration = Annotated[
    str, Field(pattern=MINUTES_PATTERN), AfterValidator(_check), AfterValidator(_check_minutes)
]
