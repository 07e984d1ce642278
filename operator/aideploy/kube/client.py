"""One configured Kubernetes API client for the operator process."""

from __future__ import annotations

import os
from typing import Final

from kubernetes import client, config

#: Requests the operator has in flight at once: its blocking calls run in this many
#: threads (the loop's default executor, set in handlers.configure), each with a kept
#: connection. Python's default, CPU count plus four, kept 6 requests going on a 2-CPU
#: node while 64 first reconciles waited.
IO_THREADS: Final = max(16, min(32, (os.cpu_count() or 1) + 4))


def kubeconfig_env_is_stale(value: str) -> bool:
    """KUBECONFIG names files and none of them exists: what a stopped local cluster's
    kubeconfig, or a typo, leaves behind. The client would then report "no configuration
    found"; the operator and the plugin each say what to do instead."""
    paths = [p for p in value.split(os.pathsep) if p]
    return bool(paths) and not any(os.path.isfile(p) for p in paths)


def make_api_client(kubeconfig: str | None = None, pool: int = IO_THREADS) -> client.ApiClient:
    """From the given kubeconfig, KUBECONFIG or ~/.kube/config when present, else the
    in-cluster service account. `pool`: the connections kept (one per thread using it)."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    default = os.path.expanduser("~/.kube/config")
    configuration = client.Configuration()
    if path or os.path.exists(default):
        config.load_kube_config(config_file=path or None, client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    # One kept connection per thread: a smaller pool discards connections, and each
    # new one is a TLS handshake.
    configuration.connection_pool_maxsize = max(pool, configuration.connection_pool_maxsize)
    return client.ApiClient(configuration)
