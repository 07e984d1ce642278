"""Children read from a namespace's shared lists are what the four GETs would have found,
and the lists are shared only by requests made before they were issued."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from aideploy.kube.child_lists import ITEMS_PER_OBJECT, ChildLists, Listed
from aideploy.kube.children import from_lists
from aideploy.kube.resources import Resources
from aideploy.logic.workload import Owner

OWNER = Owner(name="prod", namespace="ml", uid="u-1")


def item(name: str, deployment_label: str | None = None) -> dict[str, Any]:
    labels = {} if deployment_label is None else {"aideploy.io/deployment": deployment_label}
    return {"metadata": {"name": name, "labels": labels}}


def names(items: list[dict[str, Any]]) -> list[str]:
    return [i["metadata"]["name"] for i in items]


@pytest.mark.parametrize(
    ("deployments", "services", "want_deployments", "want_services"),
    [
        # Nothing in the namespace: nothing found (an object at the gate).
        ([], [], [], []),
        # Labelled as the owner's, whatever their names; another owner's are not.
        (
            [item("prod-r1", "prod"), item("prod-r2", "prod"), item("other", "other")],
            [],
            ["prod-r1", "prod-r2"],
            [],
        ),
        # The Deployment named after it, labelled or not (someone else's is found too).
        ([item("prod")], [], ["prod"], []),
        ([item("prod", "prod")], [], ["prod"], []),
        ([item("prod", "other"), item("prod-r1", "prod")], [], ["prod-r1", "prod"], []),
        # The stable and preview Services by name, stable first, whatever their labels.
        (
            [],
            [item("prod-preview"), item("prod", "x"), item("other")],
            [],
            ["prod", "prod-preview"],
        ),
    ],
)
def test_lists_answer_as_the_gets_would(
    deployments: list[dict[str, Any]],
    services: list[dict[str, Any]],
    want_deployments: list[str],
    want_services: list[str],
) -> None:
    found_deployments, found_services = from_lists(
        OWNER, Listed(tuple(deployments), tuple(services))
    )
    assert names(found_deployments) == want_deployments
    assert names(found_services) == want_services


class FakeResources:
    """Counts lists; holds `size` Deployments in every namespace."""

    def __init__(self, size: int = 0) -> None:
        self.lists: list[tuple[str, str, int]] = []
        self.size = size

    def list_kind(self, kind: str, namespace: str, limit: int) -> tuple[list[Any], bool]:
        self.lists.append((kind, namespace, limit))
        count = self.size if kind == "Deployment" else 0
        return [item(f"d{n}") for n in range(min(count, limit))], count > limit


def read_at_once(lists: ChildLists, namespaces: list[str]) -> list[Listed | None]:
    async def run() -> list[Listed | None]:
        return list(await asyncio.gather(*(lists.read(ns) for ns in namespaces)))

    return asyncio.run(run())


def test_requests_made_together_share_one_list_per_kind_and_namespace() -> None:
    fake = FakeResources()
    answers = read_at_once(ChildLists(cast(Resources, fake)), ["a"] * 5 + ["b"] * 3)
    assert all(answer == Listed((), ()) for answer in answers)
    assert sorted(fake.lists) == [
        ("Deployment", "a", 5 * ITEMS_PER_OBJECT),
        ("Deployment", "b", 3 * ITEMS_PER_OBJECT),
        ("Service", "a", 5 * ITEMS_PER_OBJECT),
        ("Service", "b", 3 * ITEMS_PER_OBJECT),
    ]


def test_a_request_alone_makes_its_own_gets() -> None:
    fake = FakeResources()
    assert read_at_once(ChildLists(cast(Resources, fake)), ["a"]) == [None]
    assert fake.lists == []


def test_a_namespace_larger_than_the_batch_is_read_with_gets_until_batches_grow() -> None:
    fake = FakeResources(size=3 * ITEMS_PER_OBJECT)
    lists = ChildLists(cast(Resources, fake))
    assert read_at_once(lists, ["a"] * 2) == [None, None]  # listed, found too large
    listed = len(fake.lists)
    assert read_at_once(lists, ["a"] * 2) == [None, None]  # not listed again
    assert len(fake.lists) == listed
    answers = read_at_once(lists, ["a"] * 4)  # a batch the namespace fits
    assert all(a is not None and len(a.deployments) == 3 * ITEMS_PER_OBJECT for a in answers)


def test_a_request_made_while_a_list_is_in_flight_waits_for_the_next() -> None:
    issued: list[int] = []

    class Slow(FakeResources):
        def list_kind(self, kind: str, namespace: str, limit: int) -> tuple[list[Any], bool]:
            issued.append(limit)
            return super().list_kind(kind, namespace, limit)

    fake = Slow()
    lists = ChildLists(cast(Resources, fake))

    async def run() -> None:
        first = [asyncio.ensure_future(lists.read("a")) for _ in range(2)]
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # the first list is in flight
        late = [asyncio.ensure_future(lists.read("a")) for _ in range(3)]
        await asyncio.gather(*first, *late)

    asyncio.run(run())
    assert issued == [2 * ITEMS_PER_OBJECT] * 2 + [3 * ITEMS_PER_OBJECT] * 2


def test_a_failed_list_fails_each_request_as_its_gets_would() -> None:
    class Failing(FakeResources):
        def list_kind(self, kind: str, namespace: str, limit: int) -> tuple[list[Any], bool]:
            raise OSError("connection refused")

    lists = ChildLists(cast(Resources, Failing()))

    async def run() -> list[Any]:
        return list(
            await asyncio.gather(*(lists.read("a") for _ in range(3)), return_exceptions=True)
        )

    assert all(isinstance(answer, OSError) for answer in asyncio.run(run()))
