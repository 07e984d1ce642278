"""Install the project's CRDs (server-side apply) and wait until the apiserver serves them.

Used by `make run` on a development cluster and by the test suite; in production the Helm
chart installs them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from aideploy.api.constants import FIELD_MANAGER
from aideploy.kube.rest import Rest

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def load_crds(directory: Path) -> list[dict[str, Any]]:
    crds: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        crds.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return crds


def apply_crds(rest: Rest, directory: Path, timeout_seconds: float = 60.0) -> list[str]:
    names = []
    for crd in load_crds(directory):
        name = crd["metadata"]["name"]
        rest.request(
            "PATCH",
            f"{CRD_PATH}/{name}",
            body=crd,
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )
        names.append(name)
    deadline = time.monotonic() + timeout_seconds
    for name in names:
        while True:
            current = rest.request("GET", f"{CRD_PATH}/{name}") or {}
            conditions = (current.get("status") or {}).get("conditions") or []
            if any(
                c.get("type") == "Established" and c.get("status") == "True" for c in conditions
            ):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} was not established within {timeout_seconds}s")
            time.sleep(0.2)
    return names
