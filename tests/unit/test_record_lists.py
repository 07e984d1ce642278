"""Records read from a namespace's shared list are each object's own, in chain order, and
the list is bounded by what the batch warrants."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from aideploy.kube.record_lists import MAX_RECORDS, RECORDS_PER_REQUEST, RecordLists
from aideploy.kube.records import records_of
from aideploy.kube.resources import Resources


def record(name: str, owner: str, uid: str, sequence: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"sequence": sequence, "deployment": {"name": owner, "uid": uid}},
    }


LISTED = [
    record("churn-3", "churn", "u1", 3),
    record("fraud-1", "fraud", "u2", 1),
    record("churn-1", "churn", "u1", 1),
    record("churn-old-1", "churn", "u0", 1),  # a namesake deleted and re-created
    record("churn-2", "churn", "u1", 2),
    record("churn-x", "churn", "u1", "two"),  # an unreadable sequence sorts first
]


@pytest.mark.parametrize(
    ("name", "uid", "want"),
    [
        ("churn", "u1", ["churn-x", "churn-1", "churn-2", "churn-3"]),
        ("churn", "u0", ["churn-old-1"]),
        ("churn", None, ["churn-x", "churn-1", "churn-old-1", "churn-2", "churn-3"]),
        ("fraud", "u1", []),
        ("absent", "u9", []),
    ],
)
def test_records_of_picks_one_objects_chain_in_order(
    name: str, uid: str | None, want: list[str]
) -> None:
    assert [r["metadata"]["name"] for r in records_of(LISTED, name, uid)] == want


class FakeResources:
    """Counts lists; holds `size` records in every namespace."""

    def __init__(self, size: int = 0) -> None:
        self.lists: list[tuple[str, int]] = []
        self.size = size

    def list_kind(self, kind: str, namespace: str, limit: int) -> tuple[list[Any], bool]:
        assert kind == "AIDeploymentRecord"
        self.lists.append((namespace, limit))
        items = [record(f"r{n}", "x", "u", n) for n in range(min(self.size, limit))]
        return items, self.size > limit


def read_at_once(lists: RecordLists, namespaces: list[str]) -> list[Any]:
    async def run() -> list[Any]:
        return list(await asyncio.gather(*(lists.read(ns) for ns in namespaces)))

    return asyncio.run(run())


def test_approvals_reconciled_together_share_one_list_per_namespace() -> None:
    fake = FakeResources(size=10)
    answers = read_at_once(RecordLists(cast(Resources, fake)), ["a"] * 4 + ["b"] * 2)
    assert all(answer is not None and len(answer) == 10 for answer in answers)
    assert sorted(fake.lists) == [("a", 4 * RECORDS_PER_REQUEST), ("b", 2 * RECORDS_PER_REQUEST)]


def test_a_lone_approval_lists_its_own_records() -> None:
    fake = FakeResources()
    assert read_at_once(RecordLists(cast(Resources, fake)), ["a"]) == [None]
    assert fake.lists == []


def test_a_long_history_is_never_listed_whole() -> None:
    fake = FakeResources(size=MAX_RECORDS + 1)
    lists = RecordLists(cast(Resources, fake))
    requests = MAX_RECORDS // RECORDS_PER_REQUEST + 10
    assert set(read_at_once(lists, ["a"] * requests)) == {None}
    assert fake.lists == [("a", MAX_RECORDS)]  # bounded, found too large
    assert set(read_at_once(lists, ["a"] * requests)) == {None}
    assert len(fake.lists) == 1  # and not listed again


def test_a_namespace_outgrowing_small_batches_is_listed_again_for_a_large_one() -> None:
    fake = FakeResources(size=3 * RECORDS_PER_REQUEST)
    lists = RecordLists(cast(Resources, fake))
    assert read_at_once(lists, ["a"] * 2) == [None, None]
    answers = read_at_once(lists, ["a"] * 4)
    assert all(a is not None and len(a) == 3 * RECORDS_PER_REQUEST for a in answers)
