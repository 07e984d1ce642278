"""Tests of the integration harness itself: the local control plane and the simulated node."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.support.cluster import ClusterHandle, api_client, wait_for
from tests.support.kubelet import SimulatedNode, is_available, mark_deployment_available

pytestmark = pytest.mark.integration


def _deployment(name: str, replicas: int = 2) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="server", image="model-server:1")]
                ),
            ),
        ),
    )


def _as_dict(api: client.ApiClient, obj: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.sanitize_for_serialization(obj)
    return result


def _conditions(dep: client.V1Deployment) -> dict[str, client.V1DeploymentCondition]:
    return {c.type: c for c in (dep.status.conditions or [])}


def test_apiserver_answers(kube_api: client.ApiClient) -> None:
    version = client.VersionApi(kube_api).get_code()
    assert version.git_version.startswith("v1.")
    names = {ns.metadata.name for ns in client.CoreV1Api(kube_api).list_namespace().items}
    assert {"default", "kube-system"} <= names


def test_namespace_fixture_creates_a_fresh_namespace(
    kube_api: client.ApiClient, namespace: str
) -> None:
    # Named after the test (without "test_"), truncated, with a random suffix.
    assert namespace.startswith("namespace-fixture-creates-a-fresh-names")
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", namespace)
    assert len(namespace) <= 63
    ns = client.CoreV1Api(kube_api).read_namespace(namespace)
    assert ns.status.phase == "Active"


def test_ordinary_user_is_authenticated_and_bound_by_rbac(
    kube_api: client.ApiClient,
    namespace: str,
    user_kubeconfig: Callable[[str], Path],
    kube_cluster: ClusterHandle,
) -> None:
    alice = api_client(kube_cluster, user_kubeconfig("alice"))
    bob = api_client(kube_cluster, user_kubeconfig("bob"))
    try:
        # Cluster-wide: authenticated as alice (the message names her), but forbidden.
        with pytest.raises(ApiException) as denied:
            client.CoreV1Api(alice).list_secret_for_all_namespaces()
        assert denied.value.status == 403
        message = json.loads(denied.value.body)["message"]
        assert 'User "alice" cannot list resource "secrets"' in message

        # Grant the group "qa" (alice's, not bob's) reading secrets in one namespace.
        rbac = client.RbacAuthorizationV1Api(kube_api)
        rbac.create_namespaced_role(
            namespace,
            {
                "metadata": {"name": "secret-reader"},
                "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}],
            },
        )
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": "qa-reads-secrets"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "secret-reader",
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "qa"}
                ],
            },
        )

        def alice_can_list() -> bool:
            try:
                client.CoreV1Api(alice).list_namespaced_secret(namespace)
            except ApiException as exc:
                assert exc.status == 403, exc
                return False
            return True

        wait_for(alice_can_list, timeout=10, message="alice's RoleBinding to take effect")
        with pytest.raises(ApiException) as bob_denied:
            client.CoreV1Api(bob).list_namespaced_secret(namespace)
        assert bob_denied.value.status == 403
        with pytest.raises(ApiException) as still_denied:
            client.CoreV1Api(alice).list_secret_for_all_namespaces()
        assert still_denied.value.status == 403
    finally:
        alice.close()
        bob.close()


def test_mark_deployment_available_writes_a_rolled_out_status(
    kube_api: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(namespace, _deployment("model", replicas=3))
    before = apps.read_namespaced_deployment("model", namespace)
    assert not before.status.available_replicas  # nothing plays the deployment controller

    mark_deployment_available(apps, namespace, "model")

    dep = apps.read_namespaced_deployment("model", namespace)
    assert dep.status.observed_generation == dep.metadata.generation
    assert dep.status.replicas == dep.status.updated_replicas == 3
    assert dep.status.ready_replicas == dep.status.available_replicas == 3
    conditions = _conditions(dep)
    assert conditions["Available"].status == "True"
    assert conditions["Progressing"].status == "True"
    assert conditions["Progressing"].reason == "NewReplicaSetAvailable"
    assert is_available(_as_dict(kube_api, dep))


def test_simulated_node_follows_generations_pauses_and_fails(
    kube_api: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(kube_api)

    def available() -> client.V1Deployment | None:
        dep = apps.read_namespaced_deployment("model", namespace)
        return dep if is_available(_as_dict(kube_api, dep)) else None

    with SimulatedNode(apps, namespace, delay=0.2) as node:
        apps.create_namespaced_deployment(namespace, _deployment("model"))
        first = wait_for(available, timeout=15, message="generation 1 available")
        assert first.status.available_replicas == 2

        # A spec change is a new generation: marked again.
        apps.patch_namespaced_deployment("model", namespace, {"spec": {"replicas": 4}})
        second = wait_for(available, timeout=15, message="generation 2 available")
        assert second.metadata.generation > first.metadata.generation
        assert second.status.available_replicas == 4

        # Paused: a new generation stays unobserved until resumed.
        node.pause()
        apps.patch_namespaced_deployment("model", namespace, {"spec": {"replicas": 1}})
        dep = apps.read_namespaced_deployment("model", namespace)
        assert dep.status.observed_generation < dep.metadata.generation
        node.resume()
        wait_for(available, timeout=15, message="generation 3 available after resume")

        # Failure to progress.
        node.fail(namespace, "model", "image pull failed")
        dep = apps.read_namespaced_deployment("model", namespace)
        progressing = _conditions(dep)["Progressing"]
        assert (progressing.status, progressing.reason) == ("False", "ProgressDeadlineExceeded")
        assert progressing.message == "image pull failed"
        assert _conditions(dep)["Available"].status == "False"
        node.recover(namespace, "model")
        wait_for(available, timeout=15, message="available again after recover")


def test_garbage_collector_deletes_dependents(kube_api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name="dependent",
                owner_references=[
                    client.V1OwnerReference(
                        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
                    )
                ],
            )
        ),
    )
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    def dependent_gone() -> bool:
        try:
            core.read_namespaced_config_map("dependent", namespace)
        except ApiException as exc:
            assert exc.status == 404, exc
            return True
        return False

    wait_for(dependent_gone, timeout=60, message="the garbage collector to delete 'dependent'")


def test_namespace_controller_finishes_deletion(kube_api: client.ApiClient) -> None:
    core = client.CoreV1Api(kube_api)
    name = "harness-ns-deletion"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_config_map(
        name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="content"))
    )
    core.delete_namespace(name)

    def gone() -> bool:
        try:
            core.read_namespace(name)
        except ApiException as exc:
            assert exc.status == 404, exc
            return True
        return False

    wait_for(gone, timeout=60, message=f"namespace {name} to be deleted")


def test_second_local_cluster_coexists(
    kube_cluster: ClusterHandle, tmp_path: Path, kube_api: client.ApiClient
) -> None:
    """Another state dir is another cluster on other ports; start/stop are idempotent."""
    if kube_cluster.local is None:
        pytest.skip("tests the suite's own LocalCluster; running against an external cluster")
    from tests.support.localcluster import LocalCluster

    other = LocalCluster(tmp_path / "other", detach=False)
    with other:
        assert other.server != kube_cluster.local.server
        assert other.start() is other  # already running: reused, not restarted
        pids = {p.name: p.pid for p in other.processes()}
        other_api = api_client(kube_cluster, other.kubeconfig)
        try:
            client.CoreV1Api(other_api).create_namespace(
                client.V1Namespace(metadata=client.V1ObjectMeta(name="only-in-other"))
            )
        finally:
            other_api.close()
        with pytest.raises(ApiException) as missing:
            client.CoreV1Api(kube_api).read_namespace("only-in-other")
        assert missing.value.status == 404
        assert {p.name: p.pid for p in other.processes()} == pids
    assert not any(p.running for p in other.processes())
    assert other.stop() == []  # second stop: nothing to do
    assert kube_cluster.local.is_running()


def test_down_then_up_at_once_with_a_watch_open(
    kube_cluster: ClusterHandle, tmp_path: Path
) -> None:
    """`make cluster-down` while an operator watches, then `make cluster-up` right away:
    the old apiserver (which waits for open watches) is gone when stop returns, and the new
    start finds its ports free and comes up where the kubeconfig points."""
    if kube_cluster.local is None:
        pytest.skip("tests the suite's own LocalCluster; running against an external cluster")
    from tests.support.localcluster import LocalCluster

    cluster = LocalCluster(tmp_path / "again", detach=False)
    cluster.start()
    try:
        server = cluster.server
        api = api_client(kube_cluster, cluster.kubeconfig)
        watch = client.CoreV1Api(api).list_namespace(watch=True, _preload_content=False)
        old_pids = {p.name: p.pid for p in cluster.processes()}
        assert cluster.stop() == ["kube-controller-manager", "kube-apiserver", "etcd"]
        assert not any(p.running for p in cluster.processes())
        watch.release_conn()
        api.close()
        cluster.start()
        assert cluster.is_running() and cluster.server == server
        assert all(p.pid != old_pids[p.name] for p in cluster.processes())
    finally:
        cluster.stop()


def test_a_start_failure_shows_that_start_s_log_only(tmp_path: Path) -> None:
    """Logs append across starts: the tail quoted for a failed start is its own."""
    from tests.support.localcluster import START_HEADER, _tail

    log = tmp_path / "kube-apiserver.log"
    log.write_text(
        f"{START_HEADER}2026-12-05T08:00:00 kube-apiserver --old\nold run: shutting down\n"
        f"{START_HEADER}2026-12-05T08:00:09 kube-apiserver --new\nnew run: bind: address in use\n"
    )
    tail = _tail(log)
    assert "new run: bind: address in use" in tail and "--new" in tail
    assert "old run" not in tail and "--old" not in tail
