"""Shared fixtures.

Integration tests (marked ``integration``, or living under ``tests/integration/``) run
against a real kube-apiserver + kube-controller-manager + etcd:

- by default the suite starts its own private cluster (``tests/support/localcluster.py``) in a
  temporary directory, once per session, and stops it at the end;
- with ``AIDEPLOY_TEST_KUBECONFIG=/path/to/kubeconfig`` it uses that cluster instead and
  starts nothing (e.g. ``make cluster-up`` once, then iterate quickly).

If the cluster cannot be built or started, the tests that need it fail, with the reason;
they are never skipped silently. Unit tests never start it: deselect integration tests
with ``-m "not integration"`` or run ``tests/unit`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.support.cluster import (
    ClusterHandle,
    ClusterUnavailableError,
    api_client,
    create_namespace,
    delete_namespace,
    external_kubeconfig,
    namespace_name_for,
    open_cluster,
    start_local_cluster,
    stop_local_cluster,
)
from tests.support.kubelet import SimulatedNode

_INTEGRATION_DIR = Path(__file__).parent / "integration"
_CLUSTER_FIXTURES = {"kube_cluster", "kube_api", "namespace", "simulated_node", "user_kubeconfig"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark as ``integration`` every test under tests/integration/ or using the cluster.

    So ``-m "not integration"`` reliably keeps the control plane from being started.
    """
    for item in items:
        in_dir = _INTEGRATION_DIR in Path(str(item.path)).parents
        uses_cluster = bool(_CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())))
        if (in_dir or uses_cluster) and item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    """The cluster for this session: AIDEPLOY_TEST_KUBECONFIG's, or a private local one."""
    kubeconfig = external_kubeconfig()
    if kubeconfig is not None:
        try:
            external = open_cluster(kubeconfig)
        except ClusterUnavailableError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield external
        return
    try:
        handle = start_local_cluster(tmp_path_factory.mktemp("localcluster"))
    except ClusterUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield handle
    finally:
        stop_local_cluster(handle)


@pytest.fixture(scope="session")
def kube_api(kube_cluster: ClusterHandle) -> Iterator[client.ApiClient]:
    """An admin ``kubernetes.client.ApiClient`` for the session's cluster."""
    api = api_client(kube_cluster)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def namespace(request: pytest.FixtureRequest, kube_api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace named after the test; deleted afterwards (without waiting)."""
    name = namespace_name_for(request.node.name)
    create_namespace(kube_api, name)
    try:
        yield name
    finally:
        delete_namespace(kube_api, name)


@pytest.fixture
def simulated_node(kube_api: client.ApiClient, namespace: str) -> Iterator[SimulatedNode]:
    """A running SimulatedNode for the test's namespace (marks Deployments available)."""
    with SimulatedNode(client.AppsV1Api(kube_api), namespace) as node:
        yield node


@pytest.fixture
def user_kubeconfig(kube_cluster: ClusterHandle) -> Callable[[str], Path]:
    """``user_kubeconfig("alice")`` -> a kubeconfig authenticating as that ordinary user.

    The users (alice: qa, bob: compliance, carol: developers) exist only on the suite's own
    cluster; with AIDEPLOY_TEST_KUBECONFIG such tests are skipped, with that reason.
    """

    def make(username: str) -> Path:
        if not kube_cluster.is_local:
            pytest.skip(f"needs the suite's own cluster for token user {username!r}")
        try:
            return kube_cluster.user_kubeconfig(username)
        except ClusterUnavailableError as exc:
            pytest.fail(str(exc), pytrace=False)

    return make
