"""The Helm chart, the image and the metrics as the tests see them: rendering with Helm's own
SDK (helm-python-sdk), parsing the Dockerfile, and the metric names aideploy/metrics.py
exports. Nothing here needs a cluster."""

from __future__ import annotations

import base64
import json
import re
import shlex
import ssl
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import CHART_DIR, REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
MAKEFILE = REPO_ROOT / "Makefile"
ALERTS = CHART_DIR / "files" / "alerts.yaml"
ALERTS_TEST = CHART_DIR / "files" / "alerts_test.yaml"
DASHBOARD = CHART_DIR / "files" / "dashboard.json"

Manifest = dict[str, Any]


def render(
    values: Mapping[str, Any] | None = None,
    *,
    release: str = "aideploy",
    namespace: str = "aideploy-system",
) -> list[Manifest]:
    """The chart's manifests for `values`, as `helm template` would give them (templates
    only; Helm installs crds/ separately)."""
    import helm_python

    with helm_python.Chart.load(str(CHART_DIR)) as chart:
        rendered = chart.render(
            dict(values or {}), name=release, namespace=namespace, is_install=True
        )
    manifests: list[Manifest] = []
    for path, text in sorted(rendered.items()):
        if not path.endswith((".yaml", ".yml")):
            continue  # NOTES.txt
        manifests.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return manifests


def find(manifests: Iterable[Manifest], kind: str, namespace: str | None = None) -> list[Manifest]:
    return [
        m
        for m in manifests
        if m["kind"] == kind and (namespace is None or m["metadata"].get("namespace") == namespace)
    ]


def one(manifests: Iterable[Manifest], kind: str, namespace: str | None = None) -> Manifest:
    found = find(manifests, kind, namespace)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def operator_container(manifests: Iterable[Manifest]) -> dict[str, Any]:
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    containers: list[dict[str, Any]] = pod["containers"]
    assert len(containers) == 1
    return containers[0]


def service(manifests: Iterable[Manifest], port_name: str) -> Manifest:
    """The one Service with a port of that name (the chart has a metrics and a webhook one)."""
    found = [
        m
        for m in find(manifests, "Service")
        if any(p["name"] == port_name for p in m["spec"]["ports"])
    ]
    assert len(found) == 1, f"expected one Service with port {port_name!r}, found {len(found)}"
    return found[0]


def volume_files(manifests: Iterable[Manifest], path: str) -> tuple[dict[str, Any], str]:
    """Which pod volume (and which key of it) the container sees at `path`, checking that the
    mount is read-only: (the volume, the key)."""
    manifests = list(manifests)
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    container = operator_container(manifests)
    for mount in container["volumeMounts"]:
        prefix = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(prefix):
            assert mount.get("readOnly") is True, mount
            (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
            relative = path[len(prefix) :]
            source = volume.get("secret") or volume.get("configMap") or {}
            items = {i["path"]: i["key"] for i in source.get("items", [])}
            return volume, items.get(relative, relative)
    raise AssertionError(f"nothing is mounted at {path}")


def decoded(secret: Manifest, key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


def tls_handshake(ca_pem: str, cert_pem: str, key_pem: str, server_name: str) -> dict[str, Any]:
    """A TLS handshake, in memory, between a server with this certificate and key and a
    client that trusts only `ca_pem` and checks the certificate against `server_name` (a DNS
    name or an IP address), as the API server does with a webhook's caBundle. Returns the
    certificate as the client saw it; raises ssl.SSLCertVerificationError if it does not
    verify."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as directory:
        cert_file, key_file = Path(directory, "tls.crt"), Path(directory, "tls.key")
        cert_file.write_text(cert_pem)
        key_file.write_text(key_pem)
        server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=ca_pem)
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    from_client, from_server = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_side = client.wrap_bio(to_client, from_client, server_hostname=server_name)
    server_side = server.wrap_bio(to_server, from_server, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, side in (("client", client_side), ("server", server_side)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        to_server.write(from_client.read())
        to_client.write(from_server.read())
        if all(done.values()):
            peer = client_side.getpeercert()
            assert peer is not None
            return dict(peer)
    raise AssertionError("the TLS handshake did not complete")


# ---- Dockerfile and Makefile ------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    if current:
        logical.append(current)
    result = []
    for line in logical:
        instruction, _, rest = line.partition(" ")
        result.append((instruction.upper(), rest.strip()))
    return result


def exec_form(arguments: str) -> list[str]:
    """ENTRYPOINT/CMD must use the JSON (exec) form: no shell between Kubernetes' signals
    and the operator."""
    parsed = json.loads(arguments)
    assert isinstance(parsed, list) and all(isinstance(a, str) for a in parsed), arguments
    return parsed


def pip_installs(commands: Iterable[str]) -> list[list[str]]:
    """Every `pip install ...` in shell command lines, as argument lists (`&&` split)."""
    installs = []
    for command in commands:
        for part in re.split(r"&&|;|\|\|", command):
            if "pip" not in part:
                continue
            words = shlex.split(part)
            for i in range(len(words) - 1):
                if Path(words[i]).name == "pip" and words[i + 1] == "install":
                    installs.append(words[i + 2 :])
    return installs


def makefile_recipes(text: str) -> list[str]:
    """Recipe lines (tab-indented), with backslash continuations joined."""
    recipes: list[str] = []
    current = ""
    for line in text.splitlines():
        if not line.startswith("\t") and not current:
            continue
        stripped = line.strip()
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        recipes.append(current + stripped)
        current = ""
    return recipes


# ---- metrics -----------------------------------------------------------------------------


def exported_metric_names() -> set[str]:
    """Every sample name a scrape of the operator can contain (counters' `_total`,
    histograms' `_bucket`/`_sum`/`_count`), from a fresh `Metrics` registry."""
    from aideploy.metrics import Metrics

    names: set[str] = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names.update({f"{family.name}_total", f"{family.name}_created"})
        elif family.type == "histogram":
            names.update(f"{family.name}{s}" for s in ("_bucket", "_sum", "_count", "_created"))
        else:
            names.add(family.name)
    return names


_METRIC = re.compile(r"\b(aideploy_[a-z0-9_]+|process_[a-z0-9_]+|up)\b")


def metric_names_in(expr: str) -> set[str]:
    """Metric names a PromQL expression uses (ours, process_*, and `up`)."""
    return {m for m in _METRIC.findall(expr)}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())
