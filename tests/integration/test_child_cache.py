"""The informers' cache of Deployments and Services against a real apiserver: what a
reconcile reads of its children, which owners a change wakes, and what a dropped stream
does to both (aideploy.kube.child_cache)."""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from aideploy.api.constants import KIND, LABEL_DEPLOYMENT, LABEL_MANAGED_BY, MANAGED_BY_VALUE
from aideploy.kube.child_cache import ChildCache
from aideploy.kube.client import make_api_client
from aideploy.kube.rest import Rest
from tests.support import aid
from tests.support.cluster import ClusterHandle, wait_for
from tests.support.tcpproxy import TcpProxy
from tests.unit.factories import make_spec


@pytest.fixture
def owner(rest: Rest, namespace: str, crds: list[str]) -> str:
    """A real AIDeployment "scorer" (no operator runs): the garbage collector deletes
    children whose owner does not exist. Its uid."""
    created = aid.create(rest, namespace, aid.manifest("scorer", make_spec("minimal")))
    return str(created["metadata"]["uid"])


def _owned(name: str, uid: str) -> dict[str, Any]:
    return {
        "labels": {LABEL_MANAGED_BY: MANAGED_BY_VALUE, LABEL_DEPLOYMENT: "scorer"},
        "ownerReferences": [
            {"apiVersion": "aideploy.io/v1alpha1", "kind": KIND, "name": "scorer", "uid": uid}
        ],
        "name": name,
    }


def deployment(namespace: str, metadata: dict[str, Any], replicas: int = 1) -> dict[str, Any]:
    labels = {"app": metadata["name"]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {**metadata, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "server", "image": "mlserver:1"}]},
            },
        },
    }


def service(namespace: str, metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {**metadata, "namespace": namespace},
        "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]},
    }


def create(rest: Rest, obj: dict[str, Any]) -> None:
    group = "/apis/apps/v1" if obj["kind"] == "Deployment" else "/api/v1"
    plural = obj["kind"].lower() + "s"
    rest.request("POST", f"{group}/namespaces/{obj['metadata']['namespace']}/{plural}", body=obj)


def scale(rest: Rest, namespace: str, name: str, replicas: int) -> None:
    rest.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
        body={"spec": {"replicas": replicas}},
        content_type="application/merge-patch+json",
    )


class Woken:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.owners: list[tuple[str, str]] = []

    def __call__(self, namespace: str, owner: str) -> None:
        with self._lock:
            self.owners.append((namespace, owner))


@pytest.fixture
def woken() -> Woken:
    return Woken()


@pytest.fixture
def cache(rest: Rest, namespace: str, woken: Woken) -> Iterator[ChildCache]:
    started = ChildCache(rest, [namespace], woken)
    started.start()
    try:
        yield started
    finally:
        started.stop()


def names(children: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None) -> Any:
    assert children is not None, "the cache answers once it has listed"
    deployments, services = children
    return [d["metadata"]["name"] for d in deployments], [s["metadata"]["name"] for s in services]


def replicas(cache: ChildCache, namespace: str) -> list[int]:
    deployments, _ = cache.children(namespace, "scorer", ()) or ([], [])
    return [d["spec"]["replicas"] for d in deployments]


def test_a_reconcile_reads_what_the_four_reads_would_answer(
    rest: Rest, namespace: str, owner: str, cache: ChildCache
) -> None:
    create(rest, deployment(namespace, _owned("scorer-aaa", owner)))
    create(rest, deployment(namespace, {"name": "scorer"}))  # someone else's, our name
    create(rest, deployment(namespace, {"name": "unrelated"}))
    create(rest, service(namespace, _owned("scorer-preview", owner)))
    create(rest, service(namespace, {"name": "scorer"}))  # someone else's, our name
    wanted = ("scorer", "scorer-preview")
    found = wait_for(
        lambda: (
            names(cache.children(namespace, "scorer", wanted))
            == (["scorer-aaa", "scorer"], ["scorer", "scorer-preview"])
        ),
        message="the children in the cache",
    )
    assert found
    deployments, services = cache.children(namespace, "scorer", wanted) or ([], [])
    ours, theirs = deployments
    # Ours whole (without managedFields), with the kind a list item lacks; theirs by name.
    assert ours["kind"] == "Deployment" and ours["spec"]["replicas"] == 1
    assert "managedFields" not in ours["metadata"]
    assert ours["metadata"]["ownerReferences"][0]["uid"] == owner
    assert "spec" not in theirs and theirs["metadata"]["name"] == "scorer"
    assert "spec" not in services[0] and services[1]["spec"]["ports"][0]["port"] == 80
    # A namespace it does not watch is never answered from it.
    assert cache.children("elsewhere", "scorer", wanted) is None


def test_only_a_change_to_a_child_of_ours_wakes_its_owner(
    rest: Rest, namespace: str, owner: str, cache: ChildCache, woken: Woken
) -> None:
    wait_for(lambda: cache.synced(namespace), message="the first lists")
    create(rest, deployment(namespace, {"name": "unrelated"}))
    create(rest, service(namespace, _owned("scorer", owner)))
    create(rest, deployment(namespace, _owned("scorer-aaa", owner)))
    wait_for(lambda: woken.owners, message="the owner woken")
    scale(rest, namespace, "scorer-aaa", 0)
    wait_for(lambda: replicas(cache, namespace) == [0], message="the scale-down in the cache")
    rest.request("DELETE", f"/apis/apps/v1/namespaces/{namespace}/deployments/scorer-aaa")
    wait_for(
        lambda: names(cache.children(namespace, "scorer", ()))[0] == [],
        message="the deletion in the cache",
    )
    # Woken for the Service, and for the Deployment's creation, scale-down and deletion (a
    # cluster's own controllers may add more); never for the unrelated Deployment.
    assert set(woken.owners) == {(namespace, "scorer")}
    assert len(woken.owners) >= 4  # the Service, the Deployment's creation, scale, deletion


@pytest.fixture
def proxied_rest(kube_cluster: ClusterHandle, tmp_path: Path) -> Iterator[tuple[Rest, TcpProxy]]:
    config = yaml.safe_load(kube_cluster.kubeconfig.read_text())
    server = urllib.parse.urlsplit(config["clusters"][0]["cluster"]["server"])
    assert server.hostname is not None and server.port is not None
    with TcpProxy(server.hostname, server.port) as proxy:
        for cluster in config["clusters"]:
            cluster["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
        kubeconfig = tmp_path / "proxied.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(config))
        yield Rest(make_api_client(str(kubeconfig))), proxy


def test_a_dropped_stream_answers_nothing_until_listed_again_and_wakes_what_changed(
    rest: Rest, namespace: str, owner: str, proxied_rest: tuple[Rest, TcpProxy], woken: Woken
) -> None:
    through, proxy = proxied_rest
    create(rest, deployment(namespace, _owned("scorer-aaa", owner)))
    cache = ChildCache(through, [namespace], woken)
    cache.start()
    try:
        wait_for(lambda: cache.synced(namespace), message="the first lists")
        cache.serve()
        with proxy.down():
            wait_for(lambda: not cache.synced(namespace), message="the cache to stop answering")
            assert cache.children(namespace, "scorer", ()) is None
            scale(rest, namespace, "scorer-aaa", 0)  # the cache cannot see this
            before = len(woken.owners)  # a cluster's own controllers may have woken it
        wait_for(lambda: cache.synced(namespace), timeout=60, message="the lists made again")
        assert replicas(cache, namespace) == [0]
        # The list after the gap saw the change the watch missed, and woke its owner.
        wait_for(lambda: woken.owners[before:], message="the owner woken")
        assert set(woken.owners[before:]) == {(namespace, "scorer")}
    finally:
        cache.stop()


def test_a_first_list_made_once_reconciles_run_wakes_what_it_holds(
    rest: Rest, namespace: str, owner: str, woken: Woken
) -> None:
    """The operator waits a while for the first lists before it reconciles; a list that
    comes later may bring changes that reconciles read with requests missed."""
    create(rest, deployment(namespace, _owned("scorer-aaa", owner)))
    create(rest, deployment(namespace, {"name": "unrelated"}))
    late = ChildCache(rest, [namespace], woken)
    late.serve()
    late.start()
    try:
        wait_for(lambda: woken.owners, message="the owner woken by the first list")
        assert set(woken.owners) == {(namespace, "scorer")}
    finally:
        late.stop()
