"""The Helm chart installed for real, and the operator run with exactly the chart's command
and arguments under the chart ServiceAccount's own token (not an admin's).

The operator then drives the minimal example (examples/minimal-risk.yaml) through approval
to Succeeded, which proves that the chart's RBAC is sufficient; and the same token is
refused what the operator does not need, which proves that it is no more than that.

There is no kubelet on the local control plane, so the chart's Deployment never gets a
pod: the test plays the pod's part by running the same command, with the container-only
parts replaced (loopback ports instead of the pod's own network namespace, KUBECONFIG with
the ServiceAccount token instead of the mounted one, POD_ID as the downward API sets it,
the Secret and ConfigMap volumes written to files as the kubelet would mount them).

The admission webhook is installed by the chart and called by the real API server. Since
no pod runs, the API server cannot reach the chart's webhook Service; the tests install
the chart with `webhook.url` on 127.0.0.1 (a value of the chart, for operators outside the
cluster), where the operator process serves it with the certificate the chart generated
and the caBundle the chart wrote: the chart's TLS, rules and path are what is exercised.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aideploy.api.digest import spec_digest
from aideploy.kube.rest import ApiError, Rest
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
from tests.unit.factories import full_checklist, make_spec

pytestmark = pytest.mark.integration

MINIMAL_ROLES = ["system-owner", "deployment-manager"]
EXAMPLE = "minimal-risk.yaml"
#: What an RBAC refusal looks like in the operator's log (the API server's message, and
#: kopf's warning when it falls back for lack of a permission). A cluster-wide operator may
#: also meet namespaces of earlier tests being deleted ("being terminated"): not RBAC.
FORBIDDEN_IN_LOG = ("forbidden: User", "Not enough permissions")
WEBHOOK = "provenance.aideploy.io"
#: Who approves in the main test: the suite's admin, whatever its user name (system:masters).
ADMINS = {"groups": ["system:masters"]}


def webhook_values(port: int) -> dict[str, Any]:
    """The chart's webhook, called by the API server at the operator process on loopback."""
    return {"webhook": {"url": f"https://127.0.0.1:{port}/provenance", "port": port}}


class InstalledChart:
    """A release of the chart, with what the test reads back from the cluster."""

    def __init__(self, config: helm_python.Config, release: str, namespace: str) -> None:
        self.config = config
        self.release = release
        self.namespace = namespace
        self.deployment: dict[str, Any] = {}
        self.service_account = ""
        self.fullname = ""

    @property
    def pod(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.deployment["spec"]["template"]["spec"]
        return spec

    @property
    def container(self) -> dict[str, Any]:
        (container,) = self.pod["containers"]
        result: dict[str, Any] = container
        return result

    def webhook_configuration(self, api: client.ApiClient) -> dict[str, Any]:
        found = client.AdmissionregistrationV1Api(api).read_mutating_webhook_configuration(
            self.fullname
        )
        result: dict[str, Any] = api.sanitize_for_serialization(found)  # type: ignore[no-untyped-call]
        return result


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
        installed.fullname = installed.deployment["metadata"]["name"]
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


def read_object(api: client.ApiClient, plural: str, namespace: str, name: str) -> dict[str, Any]:
    """A core/v1 object as the API server serves it (JSON; Secrets' data base64)."""
    found = Rest(api).request("GET", f"/api/v1/namespaces/{namespace}/{plural}/{name}")
    assert found is not None, f"{plural} {namespace}/{name} not found"
    return found


def mount_volumes(
    api: client.ApiClient, namespace: str, pod: dict[str, Any], directory: Path
) -> dict[str, Path]:
    """The pod's Secret and ConfigMap volumes written out as the kubelet mounts them (keys,
    or the listed items, as files; the Secret's mode): {mount path in the container: where
    its files are here}. Every such mount must be read-only."""
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounted: dict[str, Path] = {}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "secret" in volume:
            source = volume["secret"]
            secret = read_object(api, "secrets", namespace, source["secretName"])
            data = {k: base64.b64decode(v) for k, v in secret.get("data", {}).items()}
        elif "configMap" in volume:
            source = volume["configMap"]
            config_map = read_object(api, "configmaps", namespace, source["name"])
            data = {k: str(v).encode() for k, v in config_map.get("data", {}).items()}
        else:
            continue  # emptyDir: the process has its own /tmp
        assert mount.get("readOnly") is True, mount
        target = directory / mount["name"]
        target.mkdir(parents=True)
        items = source.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            path = target / item["path"]
            path.write_bytes(data[item["key"]])
            path.chmod(source.get("defaultMode", 0o644) & 0o600)  # ours only, here
        mounted[mount["mountPath"]] = target
    return mounted


class ChartOperator:
    """The chart's container command, run as a local process."""

    def __init__(
        self,
        container: dict[str, Any],
        kubeconfig: Path,
        workdir: Path,
        mounted: Mapping[str, Path] | None = None,
    ) -> None:
        self.log_path = workdir / "operator.log"
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.mounted = dict(mounted or {})
        self.kubeconfig = kubeconfig
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
        if "--webhook-port" in args:
            # The pod listens on all its addresses; a process on this machine, on loopback.
            args += ["--webhook-addr", "127.0.0.1"]
        # Files the pod sees in its volumes: where they were written here.
        for i, arg in enumerate(args):
            for mount_path, local in self.mounted.items():
                if arg.startswith(mount_path.rstrip("/") + "/"):
                    args[i] = str(local / arg[len(mount_path.rstrip("/")) + 1 :])
        return [str(executable), *args]

    @property
    def webhook_port(self) -> int | None:
        args = self.argv
        return int(args[args.index("--webhook-port") + 1]) if "--webhook-port" in args else None

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

    def wait_for_webhook(self, timeout: float = 30.0) -> None:
        """kopf opens the webhook's port once it has scanned the resources."""
        port = self.webhook_port
        assert port is not None, "the chart did not pass --webhook-port"

        def listening() -> bool:
            assert self._process is not None and self._process.poll() is None, "operator exited"
            with socket.socket() as sock:
                sock.settimeout(1)
                return sock.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, timeout=timeout, message=f"the webhook on port {port}")

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


def start_chart_operator(
    kube_cluster: ClusterHandle,
    kube_api: client.ApiClient,
    chart: InstalledChart,
    workdir: Path,
    cleanup: contextlib.ExitStack,
) -> ChartOperator:
    """The chart's pod, played by a local process under the chart ServiceAccount's token,
    with the chart's volumes; ready when /healthz answers and the webhook listens."""
    kubeconfig = service_account_kubeconfig(
        kube_cluster, kube_api, chart.namespace, chart.service_account, workdir / "sa.kubeconfig"
    )
    mounted = mount_volumes(kube_api, chart.namespace, chart.pod, workdir / "volumes")
    operator = ChartOperator(chart.container, kubeconfig, workdir, mounted)
    cleanup.callback(show_log, operator)
    cleanup.callback(operator.stop)
    started = time.monotonic()
    operator.start()
    if operator.webhook_port is not None:
        operator.wait_for_webhook()
    print(f"operator ready: {time.monotonic() - started:.1f}s; argv {operator.argv}")
    return operator


def provenance_of(rest: Rest, namespace: str, name: str, key: str) -> dict[str, Any]:
    annotations = aid.get(rest, namespace, name)["metadata"].get("annotations") or {}
    assert f"provenance.aideploy.io/{key}" in annotations, sorted(annotations)
    found: dict[str, Any] = json.loads(annotations[f"provenance.aideploy.io/{key}"])
    return found


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
    values |= webhook_values(free_port())
    values["approvers"] = {"roles": {role: ADMINS for role in MINIMAL_ROLES}}
    with contextlib.ExitStack() as cleanup:
        chart = cleanup.enter_context(install(kube_cluster, kube_api, release_namespace, values))
        check_webhook_configuration(kube_api, chart, mode)
        operator = start_chart_operator(kube_cluster, kube_api, chart, tmp_path, cleanup)

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
        # The Event follows the status write (and the traffic switch after it).
        wait_for(
            lambda: "Succeeded" in [e["reason"] for e in aid.events(rest, namespace, name)],
            message="the Succeeded Event",
        )
        # The API server called the chart's webhook (trusting the chart's certificate through
        # the chart's caBundle) on the create and on the approvals, and the operator recorded
        # the authenticated identity.
        assert provenance_of(rest, namespace, name, "spec-changed-by")["user"]
        for role in MINIMAL_ROLES:
            assert "system:masters" in provenance_of(rest, namespace, name, role)["groups"]

        log = operator.log_text()
        assert not [w for w in FORBIDDEN_IN_LOG if w in log], log[-5000:]
        assert operator.healthy()

        sa_api = api_client(kube_cluster, operator.kubeconfig)
        try:
            check_denials(sa_api, mode, namespace, release_namespace)
        finally:
            sa_api.close()  # type: ignore[no-untyped-call]

        # The webhook down: approvals are refused (fail closed), while status writes and
        # deletes, which the chart's rules keep away from the webhook, still work.
        operator.stop()
        check_webhook_down(rest, namespace, name)


def check_webhook_configuration(api: client.ApiClient, chart: InstalledChart, mode: str) -> None:
    """The chart's MutatingWebhookConfiguration as the API server stored it."""
    configuration = chart.webhook_configuration(api)
    (webhook,) = configuration["webhooks"]
    assert webhook["name"] == WEBHOOK
    assert webhook["rules"] == [
        {
            "apiGroups": ["aideploy.io"],
            "apiVersions": ["v1alpha1"],
            "resources": ["aideployments"],
            "operations": ["CREATE", "UPDATE"],
            "scope": "Namespaced",
        }
    ]
    assert (webhook["failurePolicy"], webhook["timeoutSeconds"]) == ("Fail", 5)
    secret = read_object(api, "secrets", chart.namespace, f"{chart.fullname}-webhook-tls")
    assert webhook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    # Which namespaces: none selected means all (the API server defaults it to {}). On 1.20
    # no label names a namespace, so the chart selects none in either mode.
    version = client.VersionApi(api).get_code()
    minor = int("".join(c for c in version.minor if c.isdigit()))
    selector = webhook.get("namespaceSelector") or {}
    if mode == "cluster-wide" or minor < 21:
        assert selector == {}, selector
    else:
        assert selector["matchExpressions"][0]["key"] == "kubernetes.io/metadata.name"


def check_webhook_down(rest: Rest, namespace: str, name: str) -> None:
    digest = spec_digest(aid.get(rest, namespace, name)["spec"])
    with pytest.raises(ApiError) as refused:
        aid.annotate(
            rest, namespace, name, {"approval.aideploy.io/release-manager": f"{digest}; late"}
        )
    assert "failed calling webhook" in str(refused.value) and WEBHOOK in str(refused.value)
    rest.request(
        "PATCH",
        f"{aid.collection(namespace)}/{name}/status",
        body={"status": {"message": "written while the webhook is down"}},
        content_type="application/merge-patch+json",
    )
    assert aid.status(rest, namespace, name)["message"] == "written while the webhook is down"
    rest.request("DELETE", f"{aid.collection(namespace)}/{name}")
    wait_for(
        lambda: rest.request("GET", f"{aid.collection(namespace)}/{name}") is None,
        message=f"{name} to be deleted",
    )


def test_charts_approver_roles_let_their_holders_approve_and_nobody_else(
    kube_cluster: ClusterHandle,
    kube_api: client.ApiClient,
    rest: Rest,
    crds: list[str],
    namespace: str,
    release_namespace: str,
    user_kubeconfig: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    """approverRoles.create, as the chart README documents it: alice (group qa) holds
    qa-lead, bob holds compliance-officer; each may annotate with nothing but the chart's
    Role, and the webhook keeps each to their own role. carol holds nothing."""
    values: dict[str, Any] = {
        "watchNamespaces": [namespace],
        "approverRoles": {"create": True},
        "approvers": {
            "roles": {"qa-lead": {"groups": ["qa"]}, "compliance-officer": {"users": ["bob"]}}
        },
        **webhook_values(free_port()),
    }
    users = {u: user_kubeconfig(u) for u in ("alice", "bob", "carol")}
    with contextlib.ExitStack() as cleanup:
        chart = cleanup.enter_context(install(kube_cluster, kube_api, release_namespace, values))
        start_chart_operator(kube_cluster, kube_api, chart, tmp_path, cleanup)
        aid.create(rest, namespace, aid.manifest("fraud", make_spec("high"), full_checklist()))
        digest = spec_digest(aid.get(rest, namespace, "fraud")["spec"])

        def approve(user: str, role: str) -> None:
            api = api_client(kube_cluster, users[user])
            cleanup.callback(api.close)
            aid.annotate(
                Rest(api),
                namespace,
                "fraud",
                {f"approval.aideploy.io/{role}": f"{digest}; by=the-cto; checked by {user}"},
            )

        approve("alice", "qa-lead")
        assert provenance_of(rest, namespace, "fraud", "qa-lead")["user"] == "alice"
        approve("bob", "compliance-officer")
        assert provenance_of(rest, namespace, "fraud", "compliance-officer")["user"] == "bob"
        # bob may patch (his Role), but not approve a role he does not hold (the webhook).
        with pytest.raises(ApiError) as denied:
            approve("bob", "qa-lead")
        assert denied.value.status == 403 and WEBHOOK in str(denied.value), denied.value
        assert "qa-lead" in str(denied.value)
        # carol has no Role: RBAC refuses her before any webhook.
        with pytest.raises(ApiError) as forbidden:
            approve("carol", "qa-lead")
        assert forbidden.value.status == 403 and 'User "carol"' in str(forbidden.value)
        annotations = aid.get(rest, namespace, "fraud")["metadata"]["annotations"]
        assert "by=the-cto" in annotations["approval.aideploy.io/qa-lead"]  # text as typed...
        assert provenance_of(rest, namespace, "fraud", "qa-lead")["user"] == "alice"  # ...who did

        # Exactly what the README says the Role grants, and only where the operator watches.
        alice = api_client(kube_cluster, users["alice"])
        cleanup.callback(alice.close)
        for verb in ("get", "list", "watch", "patch"):
            assert access(alice, verb, "aideployments", namespace, group="aideploy.io")
        for verb in ("create", "update", "delete"):
            assert not access(alice, verb, "aideployments", namespace, group="aideploy.io")
        assert not access(
            alice, "patch", "aideployments", namespace, group="aideploy.io", subresource="status"
        )
        assert not access(alice, "patch", "aideployments", release_namespace, group="aideploy.io")
        assert not access(alice, "create", "aideploymentrecords", namespace, group="aideploy.io")


def test_upgrade_keeps_the_generated_webhook_certificate(
    kube_cluster: ClusterHandle,
    kube_api: client.ApiClient,
    release_namespace: str,
) -> None:
    """helm upgrade reads the chart's certificate Secret back (lookup) and reuses it, so the
    operator is not restarted; deleting the Secret rotates the certificate on the next."""
    rest = Rest(kube_api)
    with install(kube_cluster, kube_api, release_namespace, {}) as chart:
        secret_name = f"{chart.fullname}-webhook-tls"

        def state() -> tuple[str, str, str]:
            secret = read_object(kube_api, "secrets", chart.namespace, secret_name)["data"]
            (webhook,) = chart.webhook_configuration(kube_api)["webhooks"]
            deployment = rest.request(
                "GET", f"/apis/apps/v1/namespaces/{chart.namespace}/deployments/{chart.fullname}"
            )
            assert deployment is not None
            pod = deployment["spec"]["template"]["metadata"]
            assert webhook["clientConfig"]["caBundle"] == secret["ca.crt"]
            return secret["tls.crt"], secret["tls.key"], pod["annotations"]["checksum/webhook-tls"]

        first = state()
        upgraded = chart.config.upgrade(
            str(CHART_DIR), chart.release, {}, namespace=chart.namespace
        )
        assert upgraded["status"] == "deployed", upgraded
        assert state() == first

        rest.request("DELETE", f"/api/v1/namespaces/{chart.namespace}/secrets/{secret_name}")
        chart.config.upgrade(str(CHART_DIR), chart.release, {}, namespace=chart.namespace)
        rotated = state()
        assert rotated[0] != first[0] and rotated[2] != first[2]


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
    # Retired releases' Deployments, and a preview Service turned off, are deleted.
    assert access(api, "delete", "deployments", watched, group="apps")
    assert access(api, "delete", "services", watched)
    assert access(api, "create", "aideploymentrecords", watched, group="aideploy.io")
    assert access(api, "create", "events", watched)
    assert access(api, "patch", "events", watched)  # a repeated Event bumps its count
    assert access(api, "watch", "customresourcedefinitions", group="apiextensions.k8s.io")
    # ...and nothing else: no Secrets, ConfigMaps or Pods, no other deleting, no RBAC.
    for verb, resource, group in [
        ("get", "secrets", ""),
        ("list", "secrets", ""),
        ("get", "configmaps", ""),
        ("create", "pods", ""),
        ("delete", "aideployments", "aideploy.io"),
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
        assert not access(api, "delete", "deployments", own, group="apps")
        assert not access(api, "delete", "services", own)
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
