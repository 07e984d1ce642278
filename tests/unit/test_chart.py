"""The Helm chart, linted and rendered with Helm's own SDK (helm-python-sdk), for default
and non-default values; and the image (Dockerfile) against the chart and the Makefile.

What a reviewer would check by reading the manifests is checked here: the pod's security
context, the RBAC rules exactly, peering only with more than one replica, the CRDs equal to
crds/, the alerts equal to files/alerts.yaml, the image's command equal to the chart's, the
admission webhook's rules and certificate, the approvers configuration in the operator's own
format, and the approvers' example RBAC.
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import time
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from aideploy.__main__ import parse_args
from aideploy.admission.config import ApproversConfig
from aideploy.api.constants import RiskLevel
from tests.support.chart import (
    ALERTS,
    CHART_DIR,
    DOCKERFILE,
    MAKEFILE,
    Manifest,
    decoded,
    dockerfile_instructions,
    exec_form,
    find,
    makefile_recipes,
    one,
    operator_container,
    pip_installs,
    render,
    service,
    tls_handshake,
    volume_files,
)
from tests.support.paths import CRDS_DIR, REPO_ROOT

NON_DEFAULT = {
    "replicas": 3,
    "watchNamespaces": ["team-a", "team-b"],
    "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    "prometheusRule": {"enabled": True},
    "logFormat": "plain",
}

# (apiGroup, resource) -> verbs: the operator's calls (aideploy/kube/resources.py) and kopf's.
NAMESPACED_RULES = {
    ("aideploy.io", "aideployments"): {"get", "list", "watch", "patch", "update"},
    ("aideploy.io", "aideployments/status"): {"get", "update", "patch"},
    ("aideploy.io", "aideploymentrecords"): {"get", "list", "create"},
    ("apps", "deployments"): {"get", "list", "watch", "create", "patch", "update", "delete"},
    ("", "services"): {"get", "list", "watch", "create", "patch", "update", "delete"},
    ("gateway.networking.k8s.io", "httproutes"): {"get", "patch"},
    ("", "events"): {"create", "patch"},
    ("aideploy.io", "aideploymentnotifiers"): {"get", "list", "watch"},
    ("aideploy.io", "aideploymentnotifiers/status"): {"get", "patch"},
}
KOPF_DISCOVERY = {("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"}}
KOPF_NAMESPACES = {("", "namespaces"): {"list", "watch"}}
PEERING_VERBS = {"get", "list", "watch", "patch"}


def rules_of(role: Manifest) -> dict[tuple[str, str], set[str]]:
    """Rules as {(group, resource): verbs}; fails on wildcards and on duplicates."""
    result: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert "*" not in (group, resource) and "*" not in rule["verbs"], rule
                key = (group, resource)
                assert key not in result, f"{key} granted twice"
                result[key] = set(rule["verbs"])
    return result


def args_of(manifests: list[Manifest]) -> list[str]:
    args: list[str] = operator_container(manifests)["args"]
    return args


def arg(manifests: list[Manifest], flag: str) -> str:
    args = args_of(manifests)
    assert args.count(flag) == 1, f"{flag} given {args.count(flag)} times: {args}"
    return args[args.index(flag) + 1]


ROLES = [
    "system-owner",
    "deployment-manager",
    "release-manager",
    "qa-lead",
    "risk-manager",
    "compliance-officer",
    "governance-committee",
]
#: The webhook's only rule: creates and updates of AIDeployments. Not the status subresource
#: (the operator's status writes never wait for it) and not DELETE (deletes always work).
WEBHOOK_RULES = [
    {
        "apiGroups": ["aideploy.io"],
        "apiVersions": ["v1alpha1"],
        "resources": ["aideployments"],
        "operations": ["CREATE", "UPDATE"],
        "scope": "Namespaced",
    }
]
APPROVERS = {
    "roles": {
        "qa-lead": {"users": ["alice"], "groups": ["qa"]},
        "compliance-officer": {"groups": ["compliance"]},
        "system-owner": {"users": ["dora", "erik"]},
    },
    "checklist": {"groups": ["release-engineers"]},
    "goLive": {"users": ["frank"], "groups": []},
    "separationOfDuties": {"riskLevels": ["high", "limited"], "roles": {"qa-lead": True}},
    "operator": {"users": ["system:serviceaccount:ops:auditor"]},
    "requireAuthenticatedApprovals": True,
}


def the_webhook(manifests: list[Manifest]) -> dict[str, Any]:
    (webhook,) = one(manifests, "MutatingWebhookConfiguration")["webhooks"]
    result: dict[str, Any] = webhook
    return result


def approvers_config(manifests: list[Manifest]) -> dict[str, Any]:
    """The approvers file as the operator reads it: the ConfigMap key mounted at the path
    that --approvers-config names."""
    volume, key = volume_files(manifests, arg(manifests, "--approvers-config"))
    name = volume["configMap"]["name"]
    (config_map,) = [m for m in find(manifests, "ConfigMap") if m["metadata"]["name"] == name]
    loaded: dict[str, Any] = yaml.safe_load(config_map["data"][key])
    return loaded


# ---- lint, schema --------------------------------------------------------------------------


WEBHOOK_VALUES = {
    "approvers": APPROVERS,
    "approverRoles": {"create": True},
    "webhook": {"failurePolicy": "Ignore", "timeoutSeconds": 10, "port": 8443},
}


@pytest.mark.parametrize(
    "values",
    [
        {},
        NON_DEFAULT,
        WEBHOOK_VALUES,
        {**NON_DEFAULT, **WEBHOOK_VALUES},
        {"webhook": {"enabled": False}},
    ],
    ids=["defaults", "non-default", "webhook", "webhook-namespaced", "no-webhook"],
)
@pytest.mark.parametrize("kube_version", [None, "v1.20.0"], ids=["latest", "1.20"])
def test_lint_strict_has_no_warnings(values: dict[str, Any], kube_version: str | None) -> None:
    report = helm_python.lint(
        str(CHART_DIR), values, strict=True, namespace="aideploy-system", kube_version=kube_version
    )
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


@pytest.mark.parametrize(
    "values",
    [
        {"replicas": 0},
        {"logFormat": "xml"},
        {"watchNamespaces": ["Team_A"]},
        {"metrics": {"port": 70000}},
        {"unknownKey": True},
        {"image": {"repository": ""}},
        {"webhook": {"failurePolicy": "Open"}},
        {"webhook": {"timeoutSeconds": 31}},
        {"webhook": {"port": 0}},
        {"webhook": {"url": "http://127.0.0.1:9443/provenance"}},
        {"webhook": {"certificate": {"caBundle": "not a certificate"}}},
        {"approvers": {"roles": {"qa-leed": {"users": ["alice"]}}}},
        {"approvers": {"roles": {"qa-lead": {"user": ["alice"]}}}},
        {"approvers": {"roles": {"qa-lead": {"users": "alice"}}}},
        {"approvers": {"separationOfDuties": {"riskLevels": ["extreme"]}}},
        {"approvers": {"separationOfDuties": {"roles": {"qa-lead": "yes"}}}},
        {"approvers": {"requireAuthenticatedApprovals": "yes"}},
        {"approverRoles": {"create": "yes"}},
    ],
    ids=str,
)
def test_schema_refuses_bad_values(values: dict[str, Any]) -> None:
    with helm_python.Chart.load(str(CHART_DIR)) as chart, pytest.raises(helm_python.HelmError):
        chart.validate_schema(chart.merge_values(values))


def test_schema_accepts_the_defaults_and_the_examples() -> None:
    with helm_python.Chart.load(str(CHART_DIR)) as chart:
        chart.validate_schema(chart.merge_values({}))
        chart.validate_schema(chart.merge_values(NON_DEFAULT))
        chart.validate_schema(chart.merge_values(WEBHOOK_VALUES))


# ---- the Deployment ------------------------------------------------------------------------


def test_default_install_renders_the_minimal_set() -> None:
    kinds = sorted(m["kind"] for m in render())
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",  # the approvers configuration
        "Deployment",
        "MutatingWebhookConfiguration",
        "Secret",  # the provenance signing key
        "Secret",  # the webhook's certificate
        "Service",  # metrics
        "Service",  # webhook
        "ServiceAccount",
        "ValidatingWebhookConfiguration",  # records are never edited
    ]


def test_records_are_guarded_by_a_validating_webhook_that_fails_closed() -> None:
    guard = one(render(), "ValidatingWebhookConfiguration")["webhooks"][0]
    assert guard["clientConfig"]["service"]["path"] == "/records"
    assert guard["rules"][0]["resources"] == ["aideploymentrecords"]
    assert guard["rules"][0]["operations"] == ["UPDATE", "DELETE"]
    assert guard["failurePolicy"] == "Fail"


@pytest.mark.parametrize("values", [{}, NON_DEFAULT], ids=["defaults", "non-default"])
def test_pod_is_locked_down(values: dict[str, Any]) -> None:
    manifests = render(values)
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    container = operator_container(manifests)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["runAsNonRoot"] is True
    assert security["privileged"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    assert pod["serviceAccountName"] == one(manifests, "ServiceAccount")["metadata"]["name"]
    # A writable /tmp, since the root filesystem is not.
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    # Everything else mounted is read-only: the approvers file and the webhook's key.
    for mount in container["volumeMounts"]:
        assert mount["name"] == "tmp" or mount.get("readOnly") is True, mount


def test_probes_use_kopfs_health_endpoint_and_metrics_port_is_served() -> None:
    manifests = render()
    container = operator_container(manifests)
    args = args_of(manifests)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert args[args.index("--liveness") + 1] == f"http://0.0.0.0:{ports['health']}/healthz"
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert args[args.index("--metrics-port") + 1] == str(ports["metrics"]) == "9090"
    metrics = service(manifests, "metrics")
    assert metrics["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert (
        metrics["spec"]["selector"]
        == one(manifests, "Deployment")["spec"]["selector"]["matchLabels"]
    )


def test_metrics_can_be_turned_off() -> None:
    manifests = render({"metrics": {"enabled": False}, "serviceMonitor": {"enabled": True}})
    assert "--metrics-port" not in args_of(manifests)
    assert not find(manifests, "ServiceMonitor")
    assert [s["metadata"]["name"] for s in find(manifests, "Service")] == [
        "aideploy-aideploy-operator-webhook"
    ]


@pytest.mark.parametrize(
    "values",
    [
        {},
        NON_DEFAULT,
        {"replicas": 2, "verbose": True, "peering": {"lifetime": 15}},
        WEBHOOK_VALUES,
        {"webhook": {"enabled": False}},
    ],
    ids=["defaults", "non-default", "peering", "webhook", "no-webhook"],
)
def test_chart_arguments_are_accepted_by_the_operator_cli(values: dict[str, Any]) -> None:
    """The operator's own parser (aideploy/__main__.py) takes what the chart passes."""
    manifests = render(values)
    container = operator_container(manifests)
    assert container["command"] == ["aideploy-operator"]
    try:
        parsed = parse_args(container["args"])
    except SystemExit as exc:  # argparse's way of refusing
        pytest.fail(f"aideploy-operator refuses the chart's arguments {container['args']}: {exc}")
    assert str(parsed.approvers_config) == arg(manifests, "--approvers-config")
    if "--peering" in container["args"]:
        assert parsed.peering_lifetime == values.get("peering", {}).get("lifetime", 60)
    if the_webhook_is_on(values):
        assert str(parsed.webhook_port) == arg(manifests, "--webhook-port")
        assert str(parsed.webhook_cert) == arg(manifests, "--webhook-cert")
        assert str(parsed.webhook_key) == arg(manifests, "--webhook-key")


def the_webhook_is_on(values: dict[str, Any]) -> bool:
    return bool(values.get("webhook", {}).get("enabled", True))


# ---- modes and peering -----------------------------------------------------------------------


def test_cluster_wide_rbac_is_exactly_what_the_operator_uses() -> None:
    manifests = render()
    assert not find(manifests, "Role") and not find(manifests, "RoleBinding")
    role = one(manifests, "ClusterRole")
    assert rules_of(role) == {**NAMESPACED_RULES, **KOPF_DISCOVERY}
    binding = one(manifests, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": one(manifests, "ServiceAccount")["metadata"]["name"],
            "namespace": "aideploy-system",
        }
    ]
    assert "--namespace" not in args_of(manifests)


def test_namespaced_mode_uses_roles_in_the_watched_namespaces_only() -> None:
    manifests = render(NON_DEFAULT)
    cluster_role = one(manifests, "ClusterRole")
    # Cluster-scoped reads for kopf's discovery; nothing inside any namespace.
    assert rules_of(cluster_role) == {**KOPF_DISCOVERY, **KOPF_NAMESPACES}
    sa = one(manifests, "ServiceAccount")["metadata"]["name"]
    for namespace in ("team-a", "team-b"):
        role = one(manifests, "Role", namespace)
        assert rules_of(role) == {**NAMESPACED_RULES, ("kopf.dev", "kopfpeerings"): PEERING_VERBS}
        binding = one(manifests, "RoleBinding", namespace)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": sa, "namespace": "aideploy-system"}
        ]
    assert len(find(manifests, "Role")) == 2
    args = args_of(manifests)
    assert [args[i + 1] for i, a in enumerate(args) if a == "--namespace"] == ["team-a", "team-b"]


@pytest.mark.parametrize("replicas", [1, 2, 3])
def test_peering_only_with_more_than_one_replica(replicas: int) -> None:
    manifests = render({"replicas": replicas})
    deployment = one(manifests, "Deployment")
    args = args_of(manifests)
    cluster_rules = rules_of(one(manifests, "ClusterRole"))
    assert deployment["spec"]["replicas"] == replicas
    env = {e["name"]: e for e in operator_container(manifests)["env"]}
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    if replicas == 1:
        assert not find(manifests, "PodDisruptionBudget")
        assert "--peering" not in args and "--peering-lifetime" not in args
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        assert not find(manifests, "ClusterKopfPeering")
        assert ("kopf.dev", "clusterkopfpeerings") not in cluster_rules
    else:
        name = args[args.index("--peering") + 1]
        assert args.count("--peering") == 1
        assert args[args.index("--peering-lifetime") + 1] == "60"  # kopf's own default
        assert one(manifests, "ClusterKopfPeering")["metadata"]["name"] == name
        assert cluster_rules[("kopf.dev", "clusterkopfpeerings")] == PEERING_VERBS
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        assert not find(manifests, "KopfPeering")
        # Every replica serves the webhook: a drain leaves at least one of them.
        budget = one(manifests, "PodDisruptionBudget")["spec"]
        assert budget["maxUnavailable"] == 1
        assert budget["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_namespaced_peering_has_a_peering_object_per_namespace() -> None:
    manifests = render(NON_DEFAULT)
    args = args_of(manifests)
    name = args[args.index("--peering") + 1]
    peerings = find(manifests, "KopfPeering")
    assert sorted((p["metadata"]["namespace"], p["metadata"]["name"]) for p in peerings) == [
        ("team-a", name),
        ("team-b", name),
    ]
    assert not find(manifests, "ClusterKopfPeering")


def test_peering_crds_match_what_kopf_looks_for() -> None:
    from kopf._cogs.structs import references

    docs = [d for d in yaml.safe_load_all((CHART_DIR / "crds" / "kopf-peering.yaml").read_text())]
    served = {(d["spec"]["group"], d["spec"]["names"]["plural"], d["spec"]["scope"]) for d in docs}
    cluster, namespaced = references.CLUSTER_PEERINGS_K, references.NAMESPACED_PEERINGS_K
    assert served == {
        (cluster.group, cluster.any_name, "Cluster"),
        (namespaced.group, namespaced.any_name, "Namespaced"),
    }
    assert {d["spec"]["versions"][0]["name"] for d in docs} == {cluster.version}


# ---- the admission webhook ------------------------------------------------------------------


@pytest.mark.parametrize("values", [{}, NON_DEFAULT], ids=["defaults", "non-default"])
def test_webhook_sees_creates_and_updates_of_aideployments_only(values: dict[str, Any]) -> None:
    manifests = render(values)
    configuration = one(manifests, "MutatingWebhookConfiguration")
    assert configuration["metadata"]["name"] == "aideploy-aideploy-operator"  # the release's
    webhook = the_webhook(manifests)
    assert webhook["name"] == "provenance.aideploy.io"
    assert webhook["rules"] == WEBHOOK_RULES
    # Fail closed: while the webhook is down nobody approves unchecked; the rules above keep
    # deletes and the operator's status writes away from it.
    assert webhook["failurePolicy"] == "Fail"
    assert webhook["timeoutSeconds"] == 5
    assert webhook["sideEffects"] == "None"
    assert webhook["admissionReviewVersions"] == ["v1", "v1beta1"]
    assert webhook["matchPolicy"] == "Equivalent"
    assert webhook["reinvocationPolicy"] == "Never"
    assert "objectSelector" not in webhook


def test_webhook_is_the_operators_port_behind_the_webhook_service() -> None:
    manifests = render()
    webhook = the_webhook(manifests)
    svc = service(manifests, "webhook")
    assert webhook["clientConfig"]["service"] == {
        "name": svc["metadata"]["name"],
        "namespace": "aideploy-system",
        "path": "/provenance",  # kopf serves a webhook handler at its id
        "port": 443,
    }
    assert "url" not in webhook["clientConfig"]
    assert svc["spec"]["ports"] == [
        {"name": "webhook", "port": 443, "targetPort": "webhook", "protocol": "TCP"}
    ]
    assert (
        svc["spec"]["selector"] == one(manifests, "Deployment")["spec"]["selector"]["matchLabels"]
    )
    ports = {p["name"]: p["containerPort"] for p in operator_container(manifests)["ports"]}
    assert ports["webhook"] == 9443 and arg(manifests, "--webhook-port") == "9443"


def test_webhook_values_are_honoured() -> None:
    manifests = render(WEBHOOK_VALUES)
    webhook = the_webhook(manifests)
    assert webhook["failurePolicy"] == "Ignore"
    assert webhook["timeoutSeconds"] == 10
    ports = {p["name"]: p["containerPort"] for p in operator_container(manifests)["ports"]}
    assert ports["webhook"] == 8443 and arg(manifests, "--webhook-port") == "8443"
    assert webhook["rules"] == WEBHOOK_RULES


def service_dns_names(name: str, namespace: str) -> list[str]:
    return [
        name,
        f"{name}.{namespace}",
        f"{name}.{namespace}.svc",
        f"{name}.{namespace}.svc.cluster.local",
    ]


@pytest.mark.parametrize("namespace", ["aideploy-system", "ml-ops"])
def test_generated_certificate_serves_the_service_names_and_is_trusted_by_the_ca_bundle(
    namespace: str,
) -> None:
    manifests = render(namespace=namespace)
    webhook = the_webhook(manifests)
    ca_bundle = base64.b64decode(webhook["clientConfig"]["caBundle"]).decode()
    assert ca_bundle.startswith("-----BEGIN CERTIFICATE-----")
    # The operator is given the certificate and key of the Secret the chart made.
    secret_volume, cert_key = volume_files(manifests, arg(manifests, "--webhook-cert"))
    same_volume, key_key = volume_files(manifests, arg(manifests, "--webhook-key"))
    assert secret_volume == same_volume and (cert_key, key_key) == ("tls.crt", "tls.key")
    assert secret_volume["secret"]["defaultMode"] == 0o440
    (secret,) = [
        s
        for s in find(manifests, "Secret")
        if s["metadata"]["name"] == secret_volume["secret"]["secretName"]
    ]
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"]["namespace"] == namespace
    assert decoded(secret, "ca.crt") == ca_bundle
    cert, key = decoded(secret, "tls.crt"), decoded(secret, "tls.key")
    # The API server calls <service>.<namespace>.svc and verifies it against caBundle: so
    # does this handshake, for each of the Service's names.
    name = webhook["clientConfig"]["service"]["name"]
    for dns_name in service_dns_names(name, namespace):
        seen = tls_handshake(ca_bundle, cert, key, dns_name)
        assert ("DNS", dns_name) in seen["subjectAltName"]
    assert {n for kind, n in seen["subjectAltName"]} == set(service_dns_names(name, namespace))
    expires = ssl.cert_time_to_seconds(seen["notAfter"])
    assert expires > time.time() + 3600 * 24 * 3000  # validityDays 3650
    # Not for another name, and not trusted by another CA.
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_handshake(ca_bundle, cert, key, f"{name}.other.svc")
    other_ca = base64.b64decode(
        the_webhook(render(namespace=namespace))["clientConfig"]["caBundle"]
    ).decode()
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_handshake(other_ca, cert, key, f"{name}.{namespace}.svc")


def tls_secret(manifests: list[Manifest]) -> Manifest:
    (secret,) = [s for s in find(manifests, "Secret") if s.get("type") == "kubernetes.io/tls"]
    return secret


def test_provenance_key_is_generated_once_kept_and_mounted() -> None:
    manifests = render()
    (secret,) = [s for s in find(manifests, "Secret") if s.get("type") == "Opaque"]
    assert len(decoded(secret, "key")) == 64
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    volume, item = volume_files(manifests, arg(manifests, "--provenance-key-file"))
    assert volume["secret"]["secretName"] == secret["metadata"]["name"] and item == "key"
    assert volume["secret"]["defaultMode"] == 0o440


def test_certificate_checksum_restarts_the_operator_only_when_the_certificate_changes() -> None:
    manifests = render()
    secret = tls_secret(manifests)
    annotations = one(manifests, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    # One certificate per render: the Secret, the caBundle and the pod's checksum agree.
    assert (
        decoded(secret, "ca.crt")
        == base64.b64decode(the_webhook(manifests)["clientConfig"]["caBundle"]).decode()
    )
    # The checksum is of the chart's TLS material as JSON (Helm's toJson: sorted keys).
    material = {
        "ca": decoded(secret, "ca.crt"),
        "caBundle": decoded(secret, "ca.crt"),
        "crt": decoded(secret, "tls.crt"),
        "key": decoded(secret, "tls.key"),
        "hosts": secret["metadata"]["annotations"]["aideploy.io/hosts"],
        "notAfter": secret["metadata"]["annotations"]["aideploy.io/not-after"],
    }
    as_json = json.dumps(material, sort_keys=True, separators=(",", ":"))
    assert annotations["checksum/webhook-tls"] == hashlib.sha256(as_json.encode()).hexdigest()
    without = one(render({"webhook": {"enabled": False}}), "Deployment")["spec"]["template"]
    assert "checksum/webhook-tls" not in without["metadata"]["annotations"]
    # What the chart checks before reusing the Secret on an upgrade (lookup).
    hosts = secret["metadata"]["annotations"]["aideploy.io/hosts"].split(",")
    assert sorted(hosts) == sorted(
        service_dns_names("aideploy-aideploy-operator-webhook", "aideploy-system")
    )
    not_after = int(secret["metadata"]["annotations"]["aideploy.io/not-after"])
    assert abs(not_after - (time.time() + 3650 * 86400)) < 3600


def test_webhook_url_replaces_the_service_and_the_certificate_follows_it() -> None:
    url = "https://127.0.0.1:9443/provenance"
    manifests = render({"webhook": {"url": url}})
    webhook = the_webhook(manifests)
    assert webhook["clientConfig"]["url"] == url
    assert "service" not in webhook["clientConfig"]
    assert [s["metadata"]["name"] for s in find(manifests, "Service")] == [
        "aideploy-aideploy-operator-metrics"
    ]
    ca_bundle = base64.b64decode(webhook["clientConfig"]["caBundle"]).decode()
    secret = tls_secret(manifests)
    seen = tls_handshake(
        ca_bundle, decoded(secret, "tls.crt"), decoded(secret, "tls.key"), "127.0.0.1"
    )
    assert ("IP Address", "127.0.0.1") in seen["subjectAltName"]
    manifests = render({"webhook": {"url": "https://operator.dev.example:8443/provenance"}})
    secret = tls_secret(manifests)
    ca_bundle = base64.b64decode(the_webhook(manifests)["clientConfig"]["caBundle"]).decode()
    seen = tls_handshake(
        ca_bundle, decoded(secret, "tls.crt"), decoded(secret, "tls.key"), "operator.dev.example"
    )
    assert seen["subjectAltName"] == (("DNS", "operator.dev.example"),)


def test_existing_secret_is_mounted_and_nothing_is_generated() -> None:
    ca = decoded(tls_secret(render()), "ca.crt")  # any PEM certificate
    manifests = render(
        {
            "webhook": {
                "certificate": {"existingSecret": "webhook-cert", "caBundle": ca},
                "provenanceKey": {"existingSecret": "provenance-key"},
            }
        }
    )
    assert not find(manifests, "Secret")
    key_volume, _ = volume_files(manifests, arg(manifests, "--provenance-key-file"))
    assert key_volume["secret"]["secretName"] == "provenance-key"
    volume, _ = volume_files(manifests, arg(manifests, "--webhook-cert"))
    assert volume["secret"]["secretName"] == "webhook-cert"
    assert base64.b64decode(the_webhook(manifests)["clientConfig"]["caBundle"]).decode() == ca
    # Without a caBundle (and offline, where lookup finds no ca.crt): none, e.g. for
    # cert-manager's CA injector, whose annotation the chart passes on.
    injected = {"cert-manager.io/inject-ca-from": "aideploy-system/webhook-cert"}
    manifests = render(
        {"webhook": {"certificate": {"existingSecret": "webhook-cert"}, "annotations": injected}}
    )
    assert "caBundle" not in the_webhook(manifests)["clientConfig"]
    assert one(manifests, "MutatingWebhookConfiguration")["metadata"]["annotations"] == injected


def test_namespace_selector_cluster_wide_namespaced_and_chosen() -> None:
    # Cluster-wide: every namespace.
    assert "namespaceSelector" not in the_webhook(render())
    # Namespaced, on Kubernetes >= 1.21 (offline rendering assumes a recent one): the watched
    # namespaces by the label the API server sets on each. (On 1.20, which has no such label,
    # all namespaces: the live install test checks that on the local 1.20 control plane.)
    assert the_webhook(render(NON_DEFAULT))["namespaceSelector"] == {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a", "team-b"]}
        ]
    }
    chosen = {"matchLabels": {"aideploy.io/approvals": "team-a"}}
    for values in ({}, NON_DEFAULT):
        webhook = the_webhook(render({**values, "webhook": {"namespaceSelector": chosen}}))
        assert webhook["namespaceSelector"] == chosen


def test_webhook_can_be_turned_off_but_the_approvers_configuration_stays() -> None:
    manifests = render({"webhook": {"enabled": False}})
    assert not find(manifests, "MutatingWebhookConfiguration")
    assert not find(manifests, "ValidatingWebhookConfiguration")
    # Without the webhook the operator still signs releases and records with its key.
    assert [s["metadata"]["name"] for s in find(manifests, "Secret")] == [
        "aideploy-aideploy-operator-provenance-key"
    ]
    args = args_of(manifests)
    assert args[args.index("--provenance-key-file") + 1] == "/etc/aideploy/provenance/key"
    assert [s["metadata"]["name"] for s in find(manifests, "Service")] == [
        "aideploy-aideploy-operator-metrics"
    ]
    container = operator_container(manifests)
    assert {p["name"] for p in container["ports"]} == {"health", "metrics"}
    assert not any(a.startswith("--webhook") for a in args_of(manifests))
    assert {m["name"] for m in container["volumeMounts"]} == {"tmp", "approvers", "provenance-key"}
    # requireAuthenticatedApprovals matters most where there is no webhook.
    strict = {"webhook": {"enabled": False}, "approvers": {"requireAuthenticatedApprovals": True}}
    assert approvers_config(render(strict))["requireAuthenticatedApprovals"] is True


# ---- the approvers configuration and their RBAC ---------------------------------------------


def test_default_approvers_configuration_is_the_operators_format() -> None:
    manifests = render()
    config = approvers_config(manifests)
    assert config == {
        "roles": {role: {"users": [], "groups": []} for role in ROLES},
        "separationOfDuties": {"riskLevels": ["high"], "roles": {}},
        "operator": {
            "users": ["system:serviceaccount:aideploy-system:aideploy-aideploy-operator"],
            "groups": [],
        },
        "requireAuthenticatedApprovals": False,
        "lowerGate": {"riskLevels": []},  # the procedure is the floor
        "podPolicy": {
            "forbidHostNamespaces": False,
            "forbidHostPath": False,
            "serviceAccounts": [],
            "requireImageDigest": {"environments": []},
        },
    }
    assert config["operator"]["users"] == [
        "system:serviceaccount:aideploy-system:"
        + one(manifests, "ServiceAccount")["metadata"]["name"]
    ]
    # As the operator reads it (aideploy/admission/config.py; unknown keys are refused).
    parsed = ApproversConfig.model_validate(config)
    assert parsed.checklist is None and parsed.go_live is None  # unrestricted
    assert parsed.lower_gate.risk_levels == []


def test_pod_policy_values_reach_the_operator() -> None:
    values = {
        "podPolicy": {
            "forbidHostPath": True,
            "requireImageDigest": {"environments": ["production"]},
        }
    }
    config = approvers_config(render({"approvers": values}))
    parsed = ApproversConfig.model_validate(config).pod_policy
    assert parsed.forbid_host_path is True and parsed.forbid_host_namespaces is False
    assert parsed.require_image_digest.environments == ["production"]


def test_lower_gate_values_reach_the_operator() -> None:
    config = approvers_config(render({"approvers": {"lowerGate": {"riskLevels": ["minimal"]}}}))
    assert config["lowerGate"] == {"riskLevels": ["minimal"]}
    assert ApproversConfig.model_validate(config).lower_gate.risk_levels == [RiskLevel.MINIMAL]


def test_approvers_values_reach_the_operator_with_its_own_service_account() -> None:
    manifests = render(
        {"approvers": APPROVERS, "serviceAccount": {"name": "approvals-bot"}}, namespace="ml-ops"
    )
    config = approvers_config(manifests)
    assert config["roles"]["qa-lead"] == {"users": ["alice"], "groups": ["qa"]}
    assert config["roles"]["compliance-officer"] == {"users": [], "groups": ["compliance"]}
    assert config["roles"]["system-owner"] == {"users": ["dora", "erik"], "groups": []}
    assert config["roles"]["risk-manager"] == {"users": [], "groups": []}
    assert config["checklist"] == {"users": [], "groups": ["release-engineers"]}
    assert config["goLive"] == {"users": ["frank"], "groups": []}
    assert config["separationOfDuties"] == {
        "riskLevels": ["high", "limited"],
        "roles": {"qa-lead": True},
    }
    assert config["operator"] == {
        "users": [
            "system:serviceaccount:ml-ops:approvals-bot",
            "system:serviceaccount:ops:auditor",
        ],
        "groups": [],
    }
    assert config["requireAuthenticatedApprovals"] is True
    ApproversConfig.model_validate(config)


def test_approvers_change_restarts_the_operator() -> None:
    def checksum(values: dict[str, Any]) -> str:
        pod = one(render(values), "Deployment")["spec"]["template"]
        value: str = pod["metadata"]["annotations"]["checksum/approvers"]
        return value

    assert checksum({}) == checksum({})
    assert checksum({}) != checksum({"approvers": APPROVERS})
    assert len(checksum({})) == len(hashlib.sha256().hexdigest())


def approver_objects(manifests: list[Manifest]) -> list[Manifest]:
    return [m for m in manifests if "aideploy.io/approval-role" in m["metadata"].get("labels", {})]


def test_no_approver_rbac_unless_asked() -> None:
    assert not approver_objects(render({"approvers": APPROVERS}))


@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"])
def test_approver_rbac_per_role_with_its_holders(mode: str) -> None:
    namespaces = ["team-a", "team-b"] if mode == "namespaced" else []
    manifests = render(
        {"approvers": APPROVERS, "approverRoles": {"create": True}, "watchNamespaces": namespaces}
    )
    expected_subjects = {
        "qa-lead": [("User", "alice"), ("Group", "qa")],
        "compliance-officer": [("Group", "compliance")],
        "system-owner": [("User", "dora"), ("User", "erik")],
    }  # roles nobody holds get nothing
    kind, binding_kind = (
        ("Role", "RoleBinding") if namespaces else ("ClusterRole", "ClusterRoleBinding")
    )
    objects = approver_objects(manifests)
    assert {m["kind"] for m in objects} == {kind, binding_kind}
    where: list[str | None] = [*namespaces] or [None]
    assert len(objects) == 2 * len(expected_subjects) * len(where)
    for role, subjects in expected_subjects.items():
        for namespace in where:
            (granted,) = [
                m
                for m in objects
                if m["kind"] == kind
                and m["metadata"]["labels"]["aideploy.io/approval-role"] == role
                and m["metadata"].get("namespace") == namespace
            ]
            assert granted["metadata"]["name"] == f"aideploy-aideploy-operator-approver-{role}"
            # kubectl annotate is a patch; get/list/watch to see what one approves.
            assert rules_of(granted) == {
                ("aideploy.io", "aideployments"): {"get", "list", "watch", "patch"}
            }
            (binding,) = [
                m
                for m in objects
                if m["kind"] == binding_kind
                and m["metadata"]["labels"]["aideploy.io/approval-role"] == role
                and m["metadata"].get("namespace") == namespace
            ]
            assert binding["roleRef"] == {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": kind,
                "name": granted["metadata"]["name"],
            }
            assert [(s["kind"], s["name"]) for s in binding["subjects"]] == subjects
            assert all(s["apiGroup"] == "rbac.authorization.k8s.io" for s in binding["subjects"])
            assert all("namespace" not in s for s in binding["subjects"])
    # The operator's own RBAC is unchanged by them.
    operator_roles = [m for m in find(manifests, kind) if m not in objects]
    assert operator_roles and all("approver" not in m["metadata"]["name"] for m in operator_roles)


# ---- monitoring ----------------------------------------------------------------------------


def test_prometheus_rule_is_the_alerts_file() -> None:
    assert not find(render(), "PrometheusRule")
    rule = one(render(NON_DEFAULT), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"] == yaml.safe_load(ALERTS.read_text())


def test_service_monitor_scrapes_the_metrics_service_as_job_aideploy_operator() -> None:
    manifests = render(NON_DEFAULT)
    monitor = one(manifests, "ServiceMonitor")
    metrics = service(manifests, "metrics")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= metrics["metadata"]["labels"].items()
    )
    # The alerts select job="aideploy-operator" and keep the objects' namespace label.
    assert metrics["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "aideploy-operator"
    # The monitor's selector picks the webhook Service too, but it has no port "metrics".
    assert all(p["name"] != "metrics" for p in service(manifests, "webhook")["spec"]["ports"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["honorLabels"] is True


# ---- CRDs ----------------------------------------------------------------------------------


def test_chart_crds_are_the_repositorys_crds_byte_for_byte() -> None:
    """`kubectl apply -f crds/` installs exactly what the chart installs, peering included."""
    source = {p.name: p.read_bytes() for p in CRDS_DIR.glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART_DIR / "crds").glob("*.yaml")}
    assert source, "no CRDs in crds/"
    for name, content in source.items():
        assert chart.get(name) == content, (
            f"charts/aideploy-operator/crds/{name} differs from crds/{name}: "
            "copy crds/*.yaml into the chart (make crds)"
        )
    assert set(chart) == set(source), "crds/ and the chart's crds/ hold different files"
    assert "kopf-peering.yaml" in source, "HA (--peering) needs kopf's CRDs in crds/"


def test_helm_loads_every_crd() -> None:
    with helm_python.Chart.load(str(CHART_DIR)) as chart:
        names = {Path(c["filename"]).name for c in chart.crds}
    assert names == {p.name for p in (CHART_DIR / "crds").glob("*.yaml")}


# ---- the image -------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    return dockerfile_instructions(DOCKERFILE.read_text())


def last(instruction: str) -> str:
    found = [args for name, args in dockerfile() if name == instruction]
    assert found, f"no {instruction} in the Dockerfile"
    return found[-1]


def test_image_entrypoint_and_cmd_are_what_the_chart_runs() -> None:
    container = operator_container(render())
    assert exec_form(last("ENTRYPOINT")) == container["command"]
    cmd = exec_form(last("CMD"))
    assert container["args"][: len(cmd)] == cmd
    # The rest of the chart's default arguments (namespaces, peering) are empty by default;
    # the files it mounts (approvers, the webhook's certificate) exist only in the pod.
    assert container["args"][len(cmd) :] == [
        "--approvers-config",
        "/etc/aideploy/approvers/approvers.yaml",
        "--webhook-port",
        "9443",
        "--webhook-cert",
        "/etc/aideploy/webhook/tls.crt",
        "--webhook-key",
        "/etc/aideploy/webhook/tls.key",
        "--provenance-key-file",
        "/etc/aideploy/provenance/key",
    ]


def test_image_runs_as_the_charts_numeric_non_root_user() -> None:
    user = last("USER").split(":")
    assert all(part.isdigit() for part in user), "USER must be numeric for runAsNonRoot"
    assert int(user[0]) != 0
    pod = one(render(), "Deployment")["spec"]["template"]["spec"]
    assert int(user[0]) == pod["securityContext"]["runAsUser"]
    assert int(user[1]) == pod["securityContext"]["runAsGroup"]


def test_image_is_multi_stage_on_a_slim_python() -> None:
    bases = [args for name, args in dockerfile() if name == "FROM"]
    assert len(bases) >= 2
    assert all("python:" in b and "-slim" in b for b in bases)
    assert any(name == "COPY" and args.startswith("--from=") for name, args in dockerfile())


def test_image_installs_the_package_as_make_install_does() -> None:
    """`make install` installs requirements-dev.lock with hashes, then the project editable
    with --no-deps; the image does the same with requirements.lock (no dev tools) and no
    editable mode: nothing else, and nothing unpinned."""

    def normalise(arguments: list[str]) -> list[str]:
        kept = [a for a in arguments if a != "-e"]
        return ["requirements.lock" if a == "requirements-dev.lock" else a for a in kept]

    make = [normalise(a) for a in pip_installs(makefile_recipes(MAKEFILE.read_text()))]
    image = [
        normalise(a) for a in pip_installs(args for name, args in dockerfile() if name == "RUN")
    ]
    assert make == [
        ["--quiet", "--require-hashes", "-r", "requirements.lock"],
        ["--quiet", "--no-deps", "."],
    ], "the Makefile installs other than the lock, then the project alone"
    assert image == make, f"the image's pip installs {image} are not the Makefile's {make}"


def test_image_installs_the_lock_before_it_copies_the_source() -> None:
    """The dependencies' layer is cached across code changes."""
    steps = [(name, args) for name, args in dockerfile() if name in {"COPY", "RUN"}]
    lock_install = next(i for i, (n, a) in enumerate(steps) if n == "RUN" and ".lock" in a)
    source_copy = next(i for i, (n, a) in enumerate(steps) if n == "COPY" and "operator/" in a)
    assert lock_install < source_copy


def test_build_context_has_what_the_image_copies_and_no_local_state() -> None:
    ignore = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "*"  # deny by default: .local/ holds the local cluster's tokens
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = set()
    for name, args in dockerfile():
        if name == "COPY" and not args.startswith("--from="):
            copied.update(args.split()[:-1])
    assert copied == allowed == {"requirements.lock", "pyproject.toml", "operator/aideploy"}


def test_notification_settings_become_flags() -> None:
    assert "--cluster-name" not in args_of(render())
    args = args_of(
        render({"notifications": {"clusterName": "prod-eu", "defaultNotifier": "ops/all"}})
    )
    assert args[args.index("--cluster-name") + 1] == "prod-eu"
    assert args[args.index("--default-notifier") + 1] == "ops/all"


@pytest.mark.parametrize("mode", [{}, NON_DEFAULT])
def test_only_the_secrets_named_for_notifications_are_readable(mode: dict[str, Any]) -> None:
    for role in find(render(mode), "ClusterRole") + find(render(mode), "Role"):
        assert not [r for r in role["rules"] if "secrets" in r["resources"]]
    values = {**mode, "notifications": {"secretNames": ["slack-webhook", "cdevents-receiver"]}}
    kind = "Role" if mode else "ClusterRole"
    for role in find(render(values), kind):
        (rule,) = [r for r in role["rules"] if "secrets" in r["resources"]]
        assert rule["verbs"] == ["get"]
        assert rule["resourceNames"] == ["slack-webhook", "cdevents-receiver"]
