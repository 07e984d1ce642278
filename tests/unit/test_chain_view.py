"""What the writer extends a chain from: the watch cache's answer, completed with this
process's own recent records, and replaced by a quorum list when it lacks the head the
status names (aideploy.kube.chain_view)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from aideploy.api.status import RecordRef
from aideploy.kube.chain_view import OWN_RECORDS_SECONDS, ChainView
from aideploy.kube.resources import Resources
from aideploy.logic.workload import Owner

OWNER = Owner(name="prod", namespace="ml", uid="uid-1")


def record(sequence: int, uid: str = "uid-1") -> dict[str, Any]:
    return {
        "metadata": {"name": f"prod-{sequence}-{uid}", "namespace": "ml"},
        "spec": {
            "sequence": sequence,
            "hash": f"sha256:{sequence}",
            "deployment": {"name": "prod", "uid": uid},
        },
    }


def head(sequence: int) -> RecordRef:
    return RecordRef(name=f"prod-{sequence}-uid-1", sequence=sequence, hash=f"sha256:{sequence}")


@dataclass
class Store:
    """The store holds `stored`; the watch cache holds `cached` (it may lag)."""

    stored: list[dict[str, Any]]
    cached: list[dict[str, Any]]
    reads: list[str] = field(default_factory=list)

    def list_records(
        self, namespace: str, name: str, uid: str, from_cache: bool = False
    ) -> list[dict[str, Any]]:
        self.reads.append("cache" if from_cache else "quorum")
        return list(self.cached if from_cache else self.stored)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sequences(records: list[dict[str, Any]]) -> list[int]:
    return [r["spec"]["sequence"] for r in records]


@pytest.mark.parametrize(
    ("stored", "cached", "own", "status_head", "expected", "reads"),
    [
        # The cache is in step: one read, from the cache.
        ([1, 2], [1, 2], [], 2, [1, 2], ["cache"]),
        # A new object: nothing on record, nothing named in status.
        ([], [], [], None, [], ["cache"]),
        # The cache lags this process's own last write: completed, not read again.
        ([1, 2, 3], [1, 2], [3], 3, [1, 2, 3], ["cache"]),
        # ... also before the status names it (records are written before the status).
        ([1, 2, 3], [1, 2], [3], 2, [1, 2, 3], ["cache"]),
        # The cache lags a record another writer made and named in status: from the store.
        ([1, 2, 3], [1, 2], [], 3, [1, 2, 3], ["cache", "quorum"]),
        # ... still completed with this process's own records the store list may precede.
        ([1, 2, 3], [1], [3], 2, [1, 2, 3], ["cache", "quorum"]),
    ],
)
def test_the_chain_is_read_from_the_cache_and_checked(
    stored: list[int],
    cached: list[int],
    own: list[int],
    status_head: int | None,
    expected: list[int],
    reads: list[str],
) -> None:
    store = Store([record(n) for n in stored], [record(n) for n in cached])
    view = ChainView(cast(Resources, store), Clock())
    for n in own:
        view.wrote("ml", "prod", record(n))
    found = asyncio.run(
        view.records(OWNER, head(status_head) if status_head else None, listed=None)
    )
    assert sequences(found) == expected
    assert store.reads == reads


def test_records_already_listed_are_not_read_again() -> None:
    store = Store([record(1)], [record(1)])
    view = ChainView(cast(Resources, store), Clock())
    found = asyncio.run(view.records(OWNER, head(1), listed=[record(1)]))
    assert sequences(found) == [1]
    assert store.reads == []


def test_own_records_count_only_for_a_while_and_only_for_their_object() -> None:
    clock = Clock()
    store = Store([], [])
    view = ChainView(cast(Resources, store), clock)
    view.wrote("ml", "prod", record(1))
    view.wrote("ml", "prod", record(1, uid="uid-of-an-earlier-prod"))
    assert sequences(asyncio.run(view.records(OWNER, None, listed=None))) == [1]
    clock.now += OWN_RECORDS_SECONDS + 1
    assert asyncio.run(view.records(OWNER, None, listed=None)) == []


def test_a_forgotten_object_keeps_no_records() -> None:
    view = ChainView(cast(Resources, Store([], [])), Clock())
    view.wrote("ml", "prod", record(1))
    view.forget("ml", "prod")
    assert asyncio.run(view.records(OWNER, None, listed=None)) == []
