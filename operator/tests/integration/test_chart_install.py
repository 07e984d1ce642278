"""The Helm chart installed for real, and the operator run with exactly the chart's command
and arguments under the chart ServiceAccount's own token (not an admin's).

The operator then drives the minimal example (examples/minimal-risk.yaml) through approval
to Succeeded, which proves that the chart's RBAC is sufficient; and the same token is
refused what the operator does not need, which proves that it is no more than that.

There is no kubelet on the local control plane, so the chart's Deployment never gets a
pod: the test plays the pod's part by running the same command, with the container-only
parts replaced (loopback ports instead of the pod's own network namespace, KUBECONFIG with
the ServiceAccount token instead of the mounted one, POD_ID as the downward API sets it).
"""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aideploy.kube.rest import Rest
from tests.support import aid
from tests.support.chart import CHART_DIR
from tests.support.cluster import (
    ClusterHandle,
    api_client,
    create_namespace,
    delete_namespace,
    wait_for,
)
from tests.support.kubelet import SimulatedNode
from tests.support.modelserver import free_port
from tests.unit.factories import full_checklist

pytestmark = pytest.mark.integration

MINIMAL_ROLES = ["system-owner", "deployment-manager"]
EXAMPLE = "minimal-risk.yaml"
#: What an RBAC refusal looks like in the operator's log (the API server's message, and
#: kopf's warning when it falls back for lack of a permission). A cluster-wide operator may
#: also meet namespaces of earlier tests being deleted ("being terminated"): not RBAC.
FORBIDDEN_IN_LOG = ("forbidden: User", "Not enough permissions")


class InstalledChart:
    """A release of the chart, with what the test reads back from the cluster."""

    def __init__(self, config: helm_python.Config, release: str, namespace: str) -> None:
        self.config = config
        self.release = release
        self.namespace = namespace
        self.deployment: dict[str, Any] = {}
        self.service_account = ""


@pytest.fixture
def release_namespace(kube_api: client.ApiClient, namespace: str) -> Iterator[str]:
    """The operator's own namespace, apart from the watched one (as aideploy-system is)."""
    name = f"{namespace[:50]}-op"
    create_namespace(kube_api, name)
    try:
        yield name
    finally:
        delete_namespace(kube_api, name)


@contextlib.contextmanager
def install(
    kube_cluster: ClusterHandle,
    kube_api: client.ApiClient,
    release_namespace: str,
    values: dict[str, Any],
) -> Iterator[InstalledChart]:
    release = f"t{release_namespace[-9:-3]}"  # unique: cluster-scoped names derive from it
    with helm_python.Config(
        kubeconfig_path=str(kube_cluster.kubeconfig), namespace=release_namespace
    ) as config:
        started = time.monotonic()
        result = config.install(str(CHART_DIR), release, values, namespace=release_namespace)
        print(f"helm install: {time.monotonic() - started:.1f}s")
        assert result["status"] == "deployed", result
        installed = InstalledChart(config, release, release_namespace)
        apps = client.AppsV1Api(kube_api)
        (deployment,) = apps.list_namespaced_deployment(
            release_namespace, label_selector=f"app.kubernetes.io/instance={release}"
        ).items
        installed.deployment = kube_api.sanitize_for_serialization(deployment)  # type: ignore[no-untyped-call]
        pod = installed.deployment["spec"]["template"]["spec"]
        installed.service_account = pod["serviceAccountName"]
        try:
            yield installed
        finally:
            config.uninstall(release, ignore_not_found=True)


def service_account_kubeconfig(
    kube_cluster: ClusterHandle,
    kube_api: client.ApiClient,
    namespace: str,
    service_account: str,
    path: Path,
) -> Path:
    """A kubeconfig with a token of the ServiceAccount, made the 1.20 way: a
    kubernetes.io/service-account-token Secret that the token controller fills in."""
    core = client.CoreV1Api(kube_api)
    name = f"{service_account}-test-token"
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(
                name=name, annotations={"kubernetes.io/service-account.name": service_account}
            ),
            type="kubernetes.io/service-account-token",
        ),
    )

    def token() -> str | None:
        data = core.read_namespaced_secret(name, namespace).data or {}
        return base64.b64decode(data["token"]).decode() if "token" in data else None

    bearer = wait_for(token, timeout=30, message="the token controller to fill in the token")
    admin = yaml.safe_load(kube_cluster.kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    user = f"system:serviceaccount:{namespace}:{service_account}"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": user, "user": {"token": bearer}}],
                "contexts": [{"name": "sa", "context": {"cluster": cluster["name"], "user": user}}],
                "current-context": "sa",
            }
        )
    )
    path.chmod(0o600)
    return path


class ChartOperator:
    """The chart's container command, run as a local process."""

    def __init__(self, container: dict[str, Any], kubeconfig: Path, workdir: Path) -> None:
        self.log_path = workdir / "operator.log"
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.argv = self._argv(container)
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"}
        for var in container.get("env", []):
            if "value" in var:
                self.env[var["name"]] = var["value"]
            elif var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
                self.env[var["name"]] = "aideploy-operator-7d4b9c-x2x9z"  # as the pod would be
        self.workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None

    def _argv(self, container: dict[str, Any]) -> list[str]:
        (command,) = container["command"]  # the console script, on PATH in the image
        executable = Path(sys.executable).with_name(command)
        assert executable.is_file(), f"{command} is not installed in {executable.parent}"
        args = list(container["args"])
        # Container-only: the pod's ports (each pod has its own network namespace).
        liveness = args.index("--liveness") + 1
        assert args[liveness].startswith("http://0.0.0.0:")
        args[liveness] = f"http://127.0.0.1:{self.health_port}/healthz"
        if "--metrics-port" in args:
            args[args.index("--metrics-port") + 1] = str(self.metrics_port)
        return [str(executable), *args]

    def start(self, timeout: float = 60.0) -> None:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, env=self.env
            )
        # Ready as Kubernetes would see it: the readiness probe's endpoint answers 200.
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self._process.poll() is not None:
                raise RuntimeError(f"the operator exited at start:\n{self.log_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"/healthz never answered:\n{self.log_text()[-3000:]}")
            time.sleep(0.2)

    def healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return int(response.status) == 200
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def wait_phase(rest: Rest, namespace: str, name: str, phase: str, timeout: float = 60) -> Any:
    def probe() -> dict[str, Any] | None:
        current = aid.status(rest, namespace, name)
        return current if current.get("phase") == phase else None

    return wait_for(probe, timeout=timeout, message=f"{name} to reach phase {phase}")


def access(
    api: client.ApiClient, verb: str, resource: str, namespace: str = "", **more: str
) -> bool:
    """Would the API server allow this to the client's own identity? (SelfSubjectAccessReview)"""
    review = client.AuthorizationV1Api(api).create_self_subject_access_review(
        client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(
                    verb=verb, resource=resource, namespace=namespace or None, **more
                )
            )
        )
    )
    return review.status is not None and bool(review.status.allowed)


def assert_forbidden(call: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(ApiException) as caught:
        call(*args, **kwargs)
    assert caught.value.status == 403, caught.value


@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"])
def test_operator_with_the_charts_rbac_drives_the_example_to_succeeded(
    mode: str,
    kube_cluster: ClusterHandle,
    kube_api: client.ApiClient,
    rest: Rest,
    crds: list[str],
    namespace: str,
    release_namespace: str,
    simulated_node: SimulatedNode,
    tmp_path: Path,
) -> None:
    values: dict[str, Any] = {"watchNamespaces": [namespace]} if mode == "namespaced" else {}
    with contextlib.ExitStack() as cleanup:
        chart = cleanup.enter_context(install(kube_cluster, kube_api, release_namespace, values))
        kubeconfig = service_account_kubeconfig(
            kube_cluster,
            kube_api,
            release_namespace,
            chart.service_account,
            tmp_path / "sa.kubeconfig",
        )
        container = chart.deployment["spec"]["template"]["spec"]["containers"][0]
        operator = ChartOperator(container, kubeconfig, tmp_path)
        cleanup.callback(show_log, operator)
        cleanup.callback(operator.stop)
        started = time.monotonic()
        operator.start()
        print(f"operator ready (/healthz): {time.monotonic() - started:.1f}s; argv {operator.argv}")

        body = aid.load_example(EXAMPLE)
        name = body["metadata"]["name"]
        body["metadata"]["annotations"] = full_checklist()
        aid.create(rest, namespace, body)
        wait_phase(rest, namespace, name, "AwaitingApproval")
        approved = time.monotonic()
        aid.approve_all(rest, namespace, name, MINIMAL_ROLES)
        status = wait_phase(rest, namespace, name, "Succeeded")
        print(f"approval -> Succeeded: {time.monotonic() - approved:.1f}s")
        assert aid.condition(status, "Ready")["status"] == "True"
        assert aid.child_deployment(rest, namespace, name) is not None
        reasons = [e["reason"] for e in aid.events(rest, namespace, name)]
        assert "Succeeded" in reasons, reasons

        log = operator.log_text()
        assert not [w for w in FORBIDDEN_IN_LOG if w in log], log[-5000:]
        assert operator.healthy()

        sa_api = api_client(kube_cluster, kubeconfig)
        try:
            check_denials(sa_api, mode, namespace, release_namespace)
        finally:
            sa_api.close()  # type: ignore[no-untyped-call]


def show_log(operator: ChartOperator) -> None:
    """Shown by pytest only when the test failed."""
    print(f"---- operator log ----\n{operator.log_text()[-20000:]}")


def check_denials(api: client.ApiClient, mode: str, watched: str, own: str) -> None:
    core = client.CoreV1Api(api)
    # What it needs, it has...
    for verb in ("get", "list", "watch", "patch", "update"):
        assert access(api, verb, "aideployments", watched, group="aideploy.io")
    assert access(
        api, "update", "aideployments", watched, group="aideploy.io", subresource="status"
    )
    assert access(api, "create", "deployments", watched, group="apps")
    assert access(api, "create", "aideploymentrecords", watched, group="aideploy.io")
    assert access(api, "create", "events", watched)
    assert access(api, "watch", "customresourcedefinitions", group="apiextensions.k8s.io")
    # ...and nothing else: no Secrets, ConfigMaps or Pods, no deleting, no RBAC.
    for verb, resource, group in [
        ("get", "secrets", ""),
        ("list", "secrets", ""),
        ("get", "configmaps", ""),
        ("create", "pods", ""),
        ("delete", "aideployments", "aideploy.io"),
        ("delete", "deployments", "apps"),
        ("delete", "services", ""),
        ("update", "aideploymentrecords", "aideploy.io"),
        ("delete", "aideploymentrecords", "aideploy.io"),
        ("create", "rolebindings", "rbac.authorization.k8s.io"),
        ("create", "serviceaccounts/token", ""),
    ]:
        for ns in (watched, own):
            assert not access(api, verb, resource, ns, group=group), (verb, resource, ns)
    assert not access(api, "delete", "namespaces")
    assert not access(api, "update", "customresourcedefinitions", group="apiextensions.k8s.io")
    assert not access(api, "create", "clusterrolebindings", group="rbac.authorization.k8s.io")
    # The same, for real.
    assert_forbidden(core.list_namespaced_secret, watched)
    assert_forbidden(core.list_secret_for_all_namespaces)
    assert_forbidden(core.delete_namespace, watched)
    if mode == "namespaced":
        # Only the watched namespace: not the operator's own, not the cluster.
        assert not access(api, "list", "aideployments", own, group="aideploy.io")
        assert not access(api, "list", "aideployments", group="aideploy.io")
        assert not access(api, "list", "deployments", "default", group="apps")
        assert_forbidden(
            client.CustomObjectsApi(api).list_namespaced_custom_object,
            "aideploy.io",
            "v1alpha1",
            own,
            "aideployments",
        )
    else:
        # Cluster-wide kopf does not watch namespaces, so it is not allowed to.
        assert not access(api, "list", "namespaces")
