"""Operator-wide settings: command-line flags, with environment variables as defaults so
that the Helm chart and `make run` can set them the same way."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class OperatorConfig:
    namespaces: list[str] = field(default_factory=list)
    probe_base_url: str | None = None
    probe_preview_url: str | None = None
    cluster_domain: str = "cluster.local"
    metrics_port: int | None = None
    record_retention_days: int = 3653
    approvers_config: str | None = None
    require_authenticated_approvals: bool = False
    adopt_unsigned_releases: bool = False
    webhook_port: int | None = None
    webhook_addr: str = "0.0.0.0"
    webhook_host: str | None = None
    webhook_cert: str | None = None
    webhook_key: str | None = None
    webhook_managed: str | None = None
    provenance_key_file: str | None = None
    peering_name: str | None = None
    peering_priority: int = 0
    #: Seconds a keep-alive counts (kopf's settings.peering.lifetime).
    peering_lifetime: int = 60
    identity: str | None = None
    #: Notifications: the cluster's name in every event's subject; the default notifier
    #: ("namespace/name") for AIDeployments that no notifier of their namespace selects;
    #: how often (seconds) the notifiers are looked for and each sink is served.
    cluster_name: str = "kubernetes"
    default_notifier: str | None = None
    notify_interval: float = 2.0

    @classmethod
    def from_env(cls) -> OperatorConfig:
        port = os.environ.get("AIDEPLOY_METRICS_PORT")
        return cls(
            probe_base_url=os.environ.get("AIDEPLOY_PROBE_BASE_URL") or None,
            probe_preview_url=os.environ.get("AIDEPLOY_PROBE_PREVIEW_URL") or None,
            cluster_domain=os.environ.get("AIDEPLOY_CLUSTER_DOMAIN", "cluster.local"),
            metrics_port=int(port) if port else None,
            record_retention_days=int(os.environ.get("AIDEPLOY_RECORD_RETENTION_DAYS", "3653")),
            approvers_config=os.environ.get("AIDEPLOY_APPROVERS_CONFIG") or None,
            cluster_name=os.environ.get("AIDEPLOY_CLUSTER_NAME") or "kubernetes",
            default_notifier=os.environ.get("AIDEPLOY_DEFAULT_NOTIFIER") or None,
            notify_interval=float(os.environ.get("AIDEPLOY_NOTIFY_INTERVAL") or 2.0),
        )


_current = OperatorConfig.from_env()


def current() -> OperatorConfig:
    return _current


def configure(config: OperatorConfig) -> None:
    """Set by the command line before kopf starts the handlers."""
    global _current
    _current = config
