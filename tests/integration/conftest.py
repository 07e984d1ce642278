"""Fixtures for tests that run the operator against the real control plane."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from aideploy.cli.main import main
from aideploy.kube.crds import apply_crds
from aideploy.kube.rest import Rest
from tests.support.aid import CRDS_DIR
from tests.support.backend import VersionedBackend
from tests.support.cluster import ClusterHandle
from tests.support.kubelet import SimulatedNode
from tests.support.modelserver import ModelServer
from tests.support.operator import OperatorProcess, running


@pytest.fixture(scope="session")
def rest(kube_api: client.ApiClient) -> Rest:
    return Rest(kube_api)


@pytest.fixture
def run(
    kube_cluster: ClusterHandle, namespace: str, crds: list[str], capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """`run("status", NAME)` -> (exit code, stdout, stderr): `kubectl aideploy` in process,
    in the test's namespace, as the cluster's admin (or with `kubeconfig=` as another
    user). Whatever it is asked, it never answers with a traceback."""

    def invoke(*argv: str, kubeconfig: Path | None = None) -> tuple[int, str, str]:
        capsys.readouterr()
        path = kubeconfig or kube_cluster.kubeconfig
        code = main([*argv, "--kubeconfig", str(path), "-n", namespace])
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return code, captured.out, captured.err

    return invoke


@pytest.fixture(scope="session")
def crds(rest: Rest) -> list[str]:
    return apply_crds(rest, CRDS_DIR)


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    """The stand-in model server (OIP v2 on 127.0.0.1) that probes are pointed at."""
    with ModelServer() as server:
        yield server


@pytest.fixture
def preview_server() -> Iterator[ModelServer]:
    """The stand-in for the preview Service `<name>-preview`, where a blue-green candidate
    is verified before any user reaches it."""
    with ModelServer() as server:
        yield server


@pytest.fixture
def backend(
    kube_api: client.ApiClient,
    namespace: str,
    model_server: ModelServer,
    preview_server: ModelServer,
) -> Iterator[VersionedBackend]:
    """The model servers behaving as the versions that AIDeployment `scorer`'s stable and
    preview Services select."""
    with VersionedBackend(kube_api, namespace, "scorer", model_server, preview_server) as b:
        yield b


def routed_args(model_server: ModelServer, preview_server: ModelServer) -> list[str]:
    """Probes that name no URL reach the stand-ins for the stable and preview Services
    (the tests run outside the cluster, where Service DNS names do not resolve)."""
    return [
        "--probe-base-url",
        model_server.url,
        "--probe-preview-url",
        preview_server.url,
    ]


@pytest.fixture
def routed_operator(
    kube_cluster: ClusterHandle,
    namespace: str,
    crds: list[str],
    tmp_path: Path,
    model_server: ModelServer,
    preview_server: ModelServer,
) -> Iterator[OperatorProcess]:
    """The operator with its probes routed to the Service stand-ins."""
    process = OperatorProcess(
        kube_cluster.kubeconfig,
        namespace,
        tmp_path / "operator.log",
        base_args=routed_args(model_server, preview_server),
    )
    with running(process):
        yield process


@pytest.fixture
def node(kube_api: client.ApiClient, namespace: str) -> Iterator[SimulatedNode]:
    """A simulated node that, like a real one, takes a moment (0.5 s) to make a new
    generation available, so a VersionedBackend has switched before probes run."""
    with SimulatedNode(client.AppsV1Api(kube_api), namespace, delay=0.5) as simulated:
        yield simulated


@pytest.fixture
def operator(
    kube_cluster: ClusterHandle, namespace: str, crds: list[str], tmp_path: Path
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(kube_cluster.kubeconfig, namespace, tmp_path / "operator.log")
    with running(process):
        yield process


PROVENANCE_SECRET = b"a secret only the operator can read"


@pytest.fixture
def provenance_key_file(tmp_path: Path) -> Path:
    key = tmp_path / "provenance.key"
    key.write_bytes(PROVENANCE_SECRET)
    return key


@pytest.fixture
def keyed_operator(
    kube_cluster: ClusterHandle,
    namespace: str,
    crds: list[str],
    tmp_path: Path,
    provenance_key_file: Path,
) -> Iterator[OperatorProcess]:
    """The operator holding a provenance key, as the chart runs it: it signs releases and
    records."""
    process = OperatorProcess(kube_cluster.kubeconfig, namespace, tmp_path / "operator.log")
    process.start(args=["--provenance-key-file", str(provenance_key_file)])
    try:
        yield process
    finally:
        process.stop()
        print(f"---- operator log ----\n{process.log_text()[-20000:]}")
