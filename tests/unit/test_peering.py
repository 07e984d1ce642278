"""Who is active among replicas: the same rule kopf's peering applies."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aideploy.__main__ import parse_args
from aideploy.peering import PeeringGuard, outranked_until

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
    assert (outranked_until(peers, "me", 10, NOW) is not None) is expected


@pytest.mark.parametrize(
    ("peers", "seconds"),
    [
        ({"me": peer(10)}, None),
        ({"me": peer(10), "older": peer(20)}, 55),
        ({"me": peer(10), "twin": peer(10, lifetime=10)}, 5),
        # Standing by lasts as long as the last outranking keep-alive.
        ({"me": peer(10), "a": peer(20, 50), "b": peer(30, 5)}, 55),
        ({"me": peer(10), "a": peer(20, 5), "b": peer(30, 50)}, 55),
        ({"me": peer(10), "newer": peer(5)}, None),
        ({"me": peer(10), "older-but-dead": peer(20, seen_seconds_ago=60)}, None),
    ],
)
def test_outranked_until(peers: dict[str, dict[str, object]], seconds: int | None) -> None:
    expected = None if seconds is None else NOW + timedelta(seconds=seconds)
    assert outranked_until(peers, "me", 10, NOW) == expected


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


class PeeringObject:
    """The peering object as the apiserver returns it: one outranking peer, last seen at
    NOW, whose keep-alive nobody renews (it was SIGKILLed)."""

    def __init__(self, lifetime: int) -> None:
        self.status = {"me": peer(10, 0), "active": peer(20, 0, lifetime)}
        self.reads = 0

    def request(self, method: str, path: str, *_: Any, **__: Any) -> dict[str, Any]:
        self.reads += 1
        return {"status": self.status}


def test_a_standby_verdict_is_not_kept_past_the_keep_alive_behind_it() -> None:
    """The verdict is cached a few seconds; a standby one must end when the outranking
    keep-alive expires, or the reconcile that kopf's resume triggers right then would be
    turned away for a standby recheck, long after the peering lifetime."""
    clock = [NOW]
    peering = PeeringObject(lifetime=2)
    guard = PeeringGuard(
        peering,  # type: ignore[arg-type]
        "aideploy",
        "me",
        priority=10,
        clusterwide=True,
        clock=lambda: clock[0],
    )
    assert asyncio.run(guard.active("ns")) is False
    clock[0] = NOW + timedelta(seconds=1)
    assert asyncio.run(guard.active("ns")) is False
    assert peering.reads == 1  # cached while the verdict holds
    clock[0] = NOW + timedelta(seconds=2)  # its keep-alive has expired
    assert asyncio.run(guard.active("ns")) is True
    assert peering.reads == 2
