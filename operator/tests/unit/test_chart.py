"""The Helm chart, linted and rendered with Helm's own SDK (helm-python-sdk), for default
and non-default values; and the image (Dockerfile) against the chart and the Makefile.

What a reviewer would check by reading the manifests is checked here: the pod's security
context, the RBAC rules exactly, peering only with more than one replica, the CRDs equal to
crds/, the alerts equal to files/alerts.yaml, the image's command equal to the chart's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from aideploy.__main__ import parse_args
from tests.support.chart import (
    ALERTS,
    CHART_DIR,
    DOCKERFILE,
    MAKEFILE,
    OPERATOR_DIR,
    Manifest,
    dockerfile_instructions,
    exec_form,
    find,
    makefile_recipes,
    one,
    operator_container,
    pip_installs,
    render,
)

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
    ("apps", "deployments"): {"get", "list", "watch", "create", "patch", "update"},
    ("", "services"): {"get", "list", "watch", "create", "patch", "update"},
    ("", "events"): {"create", "patch"},
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


# ---- lint, schema --------------------------------------------------------------------------


@pytest.mark.parametrize("values", [{}, NON_DEFAULT], ids=["defaults", "non-default"])
def test_lint_strict_has_no_warnings(values: dict[str, Any]) -> None:
    report = helm_python.lint(str(CHART_DIR), values, strict=True, namespace="aideploy-system")
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


# ---- the Deployment ------------------------------------------------------------------------


def test_default_install_renders_the_minimal_set() -> None:
    kinds = sorted(m["kind"] for m in render())
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
        "ServiceAccount",
    ]


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


def test_probes_use_kopfs_health_endpoint_and_metrics_port_is_served() -> None:
    manifests = render()
    container = operator_container(manifests)
    args = args_of(manifests)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert args[args.index("--liveness") + 1] == f"http://0.0.0.0:{ports['health']}/healthz"
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert args[args.index("--metrics-port") + 1] == str(ports["metrics"]) == "9090"
    service = one(manifests, "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert (
        service["spec"]["selector"]
        == one(manifests, "Deployment")["spec"]["selector"]["matchLabels"]
    )


def test_metrics_can_be_turned_off() -> None:
    manifests = render({"metrics": {"enabled": False}, "serviceMonitor": {"enabled": True}})
    assert "--metrics-port" not in args_of(manifests)
    assert not find(manifests, "Service") and not find(manifests, "ServiceMonitor")


def test_chart_arguments_are_accepted_by_the_operator_cli() -> None:
    """The operator's own parser (aideploy/__main__.py) takes what the chart passes."""
    for values in ({}, NON_DEFAULT, {"replicas": 2, "verbose": True}):
        container = operator_container(render(values))
        assert container["command"] == ["aideploy-operator"]
        parse_args(container["args"])


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
        assert "--peering" not in args
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        assert not find(manifests, "ClusterKopfPeering")
        assert ("kopf.dev", "clusterkopfpeerings") not in cluster_rules
    else:
        name = args[args.index("--peering") + 1]
        assert args.count("--peering") == 1
        assert one(manifests, "ClusterKopfPeering")["metadata"]["name"] == name
        assert cluster_rules[("kopf.dev", "clusterkopfpeerings")] == PEERING_VERBS
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        assert not find(manifests, "KopfPeering")


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


# ---- monitoring ----------------------------------------------------------------------------


def test_prometheus_rule_is_the_alerts_file() -> None:
    assert not find(render(), "PrometheusRule")
    rule = one(render(NON_DEFAULT), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"] == yaml.safe_load(ALERTS.read_text())


def test_service_monitor_scrapes_the_metrics_service_as_job_aideploy_operator() -> None:
    manifests = render(NON_DEFAULT)
    monitor = one(manifests, "ServiceMonitor")
    service = one(manifests, "Service")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    # The alerts select job="aideploy-operator" and keep the objects' namespace label.
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "aideploy-operator"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["honorLabels"] is True


# ---- CRDs ----------------------------------------------------------------------------------


def test_chart_crds_are_the_operators_crds_byte_for_byte() -> None:
    source = {p.name: p.read_bytes() for p in (OPERATOR_DIR / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART_DIR / "crds").glob("*.yaml")}
    assert source, "no CRDs in crds/"
    for name, content in source.items():
        assert chart.get(name) == content, (
            f"charts/aideploy-operator/crds/{name} differs from crds/{name}: "
            "copy crds/*.yaml into the chart (make crds)"
        )
    assert set(chart) - set(source) == {"kopf-peering.yaml"}


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
    # The rest of the chart's default arguments (namespaces, peering) are empty by default.
    assert container["args"] == cmd


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
    """`make install` is `pip install -e '.[dev]'` into a venv; the image installs the same
    project the same way, minus editable mode and the dev tools."""

    def normalise(arguments: list[str]) -> list[str]:
        kept = [a for a in arguments if a != "-e"]
        return [a.split("[")[0] if a.startswith(".") else a for a in kept]

    make = [normalise(a) for a in pip_installs(makefile_recipes(MAKEFILE.read_text()))]
    image = [
        normalise(a) for a in pip_installs(args for name, args in dockerfile() if name == "RUN")
    ]
    assert make, "no pip install in the Makefile"
    for install in make:
        assert install in image, (
            f"the Makefile's `pip install {' '.join(install)}` is not in the image"
        )
    # And it installs the project itself (not a wheel from elsewhere).
    assert ["--quiet", "."] in image


def test_build_context_has_what_the_image_copies_and_no_local_state() -> None:
    ignore = [
        line.strip()
        for line in (OPERATOR_DIR / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "*"  # deny by default: .local/ holds the local cluster's tokens
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = set()
    for name, args in dockerfile():
        if name == "COPY" and not args.startswith("--from="):
            copied.update(args.split()[:-1])
    assert copied == allowed == {"pyproject.toml", "aideploy"}
