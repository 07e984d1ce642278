"""Plays the part of a Service in front of the model server: whatever model version the
child Deployment currently runs decides how the (single, local) model server behaves.
Since pods never run here, this is how a test makes "version 2.0.0 answers wrongly" true
for exactly as long as 2.0.0 is the deployed version."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Self

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aideploy.api.constants import LABEL_MODEL_VERSION
from tests.support.modelserver import ModelServer


class VersionedBackend:
    def __init__(
        self,
        apps: client.AppsV1Api,
        namespace: str,
        name: str,
        server: ModelServer,
        modes: dict[str, str] | None = None,
        interval: float = 0.05,
    ) -> None:
        self._apps = apps
        self._namespace = namespace
        self._name = name
        self._server = server
        self.modes: dict[str, str] = dict(modes or {})
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="versioned-backend")
        self.deployed_version: str | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                deployment = self._apps.read_namespaced_deployment(self._name, self._namespace)
                labels = deployment.spec.template.metadata.labels or {}
                version = labels.get(LABEL_MODEL_VERSION)
                replicas = deployment.spec.replicas or 0
                self.deployed_version = version if replicas else None
                wanted = self.modes.get(version or "", "healthy") if replicas else "not-ready"
                if self._server.mode != wanted:
                    self._server.set_mode(wanted)
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
