"""Plays the part of the AIDeployment's Services in front of the model servers: each stand-in
server behaves as the model version whose pods its Service selects. Since pods never run
here, this is how a test makes "version 2.0.0 answers wrongly" true for exactly as long as
2.0.0 is what that Service reaches.

- `stable`: the server behind the Service named after the AIDeployment (what users call,
  and what the operator's --probe-base-url points at);
- `preview`: the server behind `<name>-preview` (--probe-preview-url), when given.

A Service that selects no running pod makes its server answer `not-ready`."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aideploy.api.constants import LABEL_DEPLOYMENT, LABEL_MODEL_VERSION
from tests.support.modelserver import ModelServer


def pod_labels(deployment: Mapping[str, Any]) -> Mapping[str, Any]:
    template = (deployment.get("spec") or {}).get("template") or {}
    labels: Mapping[str, Any] = (template.get("metadata") or {}).get("labels") or {}
    return labels


def selects(service: Mapping[str, Any] | None, deployment: Mapping[str, Any]) -> bool:
    """Whether the Service's selector matches the Deployment's pods (an empty or missing
    selector selects nothing here: the operator never writes one)."""
    selector = ((service or {}).get("spec") or {}).get("selector") or {}
    labels = pod_labels(deployment)
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def selected_version(
    service: Mapping[str, Any] | None, deployments: list[Mapping[str, Any]]
) -> str | None:
    """The model version of the running pods a Service selects (None: none)."""
    for deployment in deployments:
        if (deployment.get("spec") or {}).get("replicas") and selects(service, deployment):
            version = pod_labels(deployment).get(LABEL_MODEL_VERSION)
            return str(version) if version else None
    return None


class VersionedBackend:
    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        name: str,
        stable: ModelServer,
        preview: ModelServer | None = None,
        modes: dict[str, str] | None = None,
        interval: float = 0.05,
    ) -> None:
        self._apps = client.AppsV1Api(api)
        self._core = client.CoreV1Api(api)
        self._serialize = api.sanitize_for_serialization
        self._namespace = namespace
        self._name = name
        self._servers = {name: stable}
        if preview is not None:
            self._servers[f"{name}-preview"] = preview
        self.modes: dict[str, str] = dict(modes or {})
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="versioned-backend")
        #: The version each Service reaches now, by Service name.
        self.reaches: dict[str, str | None] = {}
        #: Every change of what the stable Service reaches: (monotonic time, version).
        self.history: list[tuple[float, str | None]] = []

    @property
    def deployed_version(self) -> str | None:
        """What users are served: the version the stable Service reaches."""
        return self.reaches.get(self._name)

    def _read(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        listed = self._apps.list_namespaced_deployment(
            self._namespace, label_selector=f"{LABEL_DEPLOYMENT}={self._name}"
        )
        deployments = [self._serialize(item) for item in listed.items]
        services: dict[str, Any] = {}
        for service_name in self._servers:
            try:
                services[service_name] = self._serialize(
                    self._core.read_namespaced_service(service_name, self._namespace)
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise
        return services, deployments

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                services, deployments = self._read()
                for service_name, server in self._servers.items():
                    version = selected_version(services.get(service_name), deployments)
                    if service_name == self._name and (
                        not self.history or self.history[-1][1] != version
                    ):
                        self.history.append((time.monotonic(), version))
                    self.reaches[service_name] = version
                    wanted = self.modes.get(version, "healthy") if version else "not-ready"
                    if server.mode != wanted:
                        server.set_mode(wanted)
            except ApiException:
                pass
            time.sleep(self._interval)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
