"""The test suites' view of a Kubernetes cluster: the suite's own LocalCluster or an external one.

``conftest.py`` turns these into fixtures; tests seldom need this module directly, except for
``wait_for``.
"""

from __future__ import annotations

import os
import re
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.support.localcluster import LocalCluster, LocalClusterError

#: Set to a kubeconfig path to run the integration tests against that cluster instead of
#: starting one (the suite then starts nothing and stops nothing).
EXTERNAL_KUBECONFIG_ENV = "AIDEPLOY_TEST_KUBECONFIG"

#: Label put on every namespace the suite creates (to find leftovers on an external cluster).
TEST_NAMESPACE_LABEL = "aideploy.test/namespace"

T = TypeVar("T")


class ClusterUnavailableError(RuntimeError):
    """The suite's cluster could not be built, started or reached."""


@dataclass
class ClusterHandle:
    """What the integration tests know about the cluster they run against."""

    kubeconfig: Path
    #: The suite's own cluster; None when running against AIDEPLOY_TEST_KUBECONFIG.
    local: LocalCluster | None = None

    @property
    def is_local(self) -> bool:
        return self.local is not None

    def user_kubeconfig(self, username: str) -> Path:
        """A kubeconfig authenticating as an ordinary user (alice, bob, carol).

        Only the suite's own cluster has these users.
        """
        if self.local is None:
            raise ClusterUnavailableError(
                f"user {username!r} exists only on the suite's own local cluster, "
                f"not on the external {EXTERNAL_KUBECONFIG_ENV} cluster"
            )
        try:
            return self.local.user_kubeconfig(username)
        except LocalClusterError as exc:
            raise ClusterUnavailableError(str(exc)) from exc


def external_kubeconfig() -> Path | None:
    value = os.environ.get(EXTERNAL_KUBECONFIG_ENV, "").strip()
    return Path(value).expanduser() if value else None


def start_local_cluster(state_dir: Path) -> ClusterHandle:
    """Start a private cluster in ``state_dir`` (builds the binaries first if needed)."""
    cluster = LocalCluster(state_dir, detach=False)
    try:
        cluster.start()
    except (LocalClusterError, OSError) as exc:
        raise ClusterUnavailableError(
            f"could not start the local control plane in {state_dir}: {exc}"
        ) from exc
    return ClusterHandle(kubeconfig=cluster.kubeconfig, local=cluster)


def stop_local_cluster(handle: ClusterHandle) -> None:
    if handle.local is None:
        return
    handle.local.stop()
    handle.local.wipe_data()  # etcd data is most of the disk use; logs stay for debugging


def open_cluster(kubeconfig: Path) -> ClusterHandle:
    """Use an existing cluster; check that it answers."""
    if not kubeconfig.is_file():
        raise ClusterUnavailableError(f"{EXTERNAL_KUBECONFIG_ENV}={kubeconfig}: no such file")
    handle = ClusterHandle(kubeconfig=kubeconfig)
    api = api_client(handle)
    try:
        client.VersionApi(api).get_code()
    except Exception as exc:  # any failure to reach it is fatal for the suite
        raise ClusterUnavailableError(f"cluster of {kubeconfig} does not answer: {exc}") from exc
    finally:
        api.close()
    return handle


def api_client(handle: ClusterHandle, kubeconfig: Path | None = None) -> client.ApiClient:
    """A configured ApiClient for the cluster (as admin, or from another kubeconfig)."""
    from kubernetes import config

    path = kubeconfig if kubeconfig is not None else handle.kubeconfig
    api: client.ApiClient = config.new_client_from_config(config_file=str(path))
    return api


# --------------------------------------------------------------------------------------
# Namespaces

_DNS_LABEL_MAX = 63
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits


def namespace_name_for(test_name: str, *, max_prefix: int = 40) -> str:
    """A fresh DNS-1123 label derived from a test's name, with a random suffix.

    ``test_widget_rollout[canary-10%]`` -> ``widget-rollout-canary-10-k3x9q``.
    """
    base = re.sub(r"^test_?", "", test_name.lower())
    base = re.sub(r"[^a-z0-9]+", "-", base).strip("-")[:max_prefix].strip("-") or "test"
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))
    name = f"{base}-{suffix}"
    if not name[0].isalpha():
        name = f"t-{name}"
    return name[:_DNS_LABEL_MAX]


def create_namespace(api: client.ApiClient, name: str) -> None:
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={TEST_NAMESPACE_LABEL: "true"})
        )
    )


def delete_namespace(api: client.ApiClient, name: str) -> None:
    """Start deleting ``name`` (the namespace controller finishes it); 404 is fine."""
    try:
        client.CoreV1Api(api).delete_namespace(name, propagation_policy="Background")
    except ApiException as exc:
        if exc.status != 404:
            raise


# --------------------------------------------------------------------------------------
# Polling


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    interval: float = 0.2,
    message: str = "condition",
) -> T:
    """Call ``probe`` until it returns something truthy; return that. ``TimeoutError`` else.

    Exceptions from ``probe`` propagate, except that the last one is shown on timeout if the
    probe raised ``AssertionError`` (so a probe may use plain asserts).
    """
    deadline = time.monotonic() + timeout
    last_error: AssertionError | None = None
    while True:
        try:
            value = probe()
        except AssertionError as exc:
            last_error, value = exc, None
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f": {last_error}" if last_error else ""
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {message}{detail}")
        time.sleep(interval)
