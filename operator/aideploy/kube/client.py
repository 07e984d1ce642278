"""One configured Kubernetes API client for the operator process."""

from __future__ import annotations

import os
from typing import cast

from kubernetes import client, config


def kubeconfig_env_is_stale(value: str) -> bool:
    """KUBECONFIG names files and none of them exists: what a stopped local cluster's
    kubeconfig, or a typo, leaves behind. The client would then report "no configuration
    found"; the operator and the plugin each say what to do instead."""
    paths = [p for p in value.split(os.pathsep) if p]
    return bool(paths) and not any(os.path.isfile(p) for p in paths)


def make_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """From the given kubeconfig, KUBECONFIG or ~/.kube/config when present, else the
    in-cluster service account."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    default = os.path.expanduser("~/.kube/config")
    if path or os.path.exists(default):
        return cast(client.ApiClient, config.new_client_from_config(config_file=path or None))  # type: ignore[no-untyped-call]
    config.load_incluster_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()
