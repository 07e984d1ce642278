"""Who is active among replicas: the same rule kopf's peering applies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aideploy.__main__ import parse_args
from aideploy.peering import outranked

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def peer(priority: int, seen_seconds_ago: int = 5, lifetime: int = 60) -> dict[str, object]:
    return {
        "priority": priority,
        "lifetime": lifetime,
        "lastseen": (NOW - timedelta(seconds=seen_seconds_ago)).isoformat(),
    }


@pytest.mark.parametrize(
    ("peers", "expected"),
    [
        ({}, False),
        ({"me": peer(10)}, False),
        ({"me": peer(10), "older": peer(20)}, True),
        ({"me": peer(10), "newer": peer(5)}, False),
        ({"me": peer(10), "twin": peer(10)}, True),  # kopf pauses everybody on a tie
        ({"me": peer(10), "older-but-dead": peer(20, seen_seconds_ago=61)}, False),
        ({"me": peer(10), "garbage": {"priority": "x"}}, False),
    ],
)
def test_outranked(peers: dict[str, dict[str, object]], expected: bool) -> None:
    assert outranked(peers, "me", 10, NOW) is expected


@pytest.mark.parametrize(
    ("argv", "lifetime"),
    [
        ([], 60),  # kopf's own default
        (["--peering-lifetime", "10"], 10),
        (["--peering-lifetime", "5"], 5),
        (["--peering-lifetime", "4"], None),  # could lapse between keep-alives
        (["--peering-lifetime", "0"], None),
        (["--peering-lifetime", "ten"], None),
    ],
)
def test_peering_lifetime(argv: list[str], lifetime: int | None) -> None:
    if lifetime is None:
        with pytest.raises(SystemExit):
            parse_args(argv)
    else:
        assert parse_args(argv).peering_lifetime == lifetime
