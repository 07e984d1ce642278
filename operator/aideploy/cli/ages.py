"""Times as a person on call reads them: "3m ago", "in 2d4h", "1.2s".

An absolute timestamp makes the reader do arithmetic against a clock in another zone;
the age answers the question they have ("is this stale?"). The views take `now` as an
argument, so that the same status always renders to the same text in tests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aideploy.api.times import parse_time


def moment(value: Any) -> datetime | None:
    """A status time, or None when absent or unreadable (a view never fails on a time)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def span(seconds: float) -> str:
    """A duration in at most two units, in the manner of kubectl's AGE column: seconds
    under two minutes, minutes and seconds under ten, then coarser as it grows."""
    whole = int(max(seconds, 0))
    minutes, hours, days = whole // 60, whole // 3600, whole // 86400
    if whole < 120:
        return f"{whole}s"
    if minutes < 10:
        return f"{minutes}m{whole % 60}s" if whole % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if days < 2:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d"


def relative(value: Any, now: datetime) -> str:
    """'3m ago' or 'in 4m' for a status time; '-' when there is none."""
    then = moment(value)
    if then is None:
        return "-"
    delta = (now - then).total_seconds()
    if delta >= -1:  # clocks of the operator and the reader may differ by a second
        return f"{span(delta)} ago"
    return f"in {span(-delta)}"


def age(value: Any, now: datetime) -> str:
    """An AGE column cell: '3m', as kubectl prints it."""
    then = moment(value)
    return span((now - then).total_seconds()) if then is not None else "-"


def seconds(value: Any) -> str:
    """How long a probe took: '12ms', '1.2s', '2m5s'."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    if value < 1:
        return f"{round(value * 1000)}ms"
    if value < 60:
        return f"{value:.1f}s"
    return span(value)
