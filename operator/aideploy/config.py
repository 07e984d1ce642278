"""Operator-wide settings: command-line flags, with environment variables as defaults so
that the Helm chart and `make run` can set them the same way."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Final


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
            notify_interval=_env_interval(os.environ.get("AIDEPLOY_NOTIFY_INTERVAL")),
        )


#: Below this, a notifier-less worker and every sink would poll in a busy loop.
MIN_NOTIFY_INTERVAL: Final = 0.5


def notify_interval(text: str) -> float:
    """--notify-interval / AIDEPLOY_NOTIFY_INTERVAL, in seconds; ValueError says why not."""
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of seconds") from None
    if not seconds >= MIN_NOTIFY_INTERVAL or seconds == float("inf"):  # also NaN
        raise ValueError(f"{text!r}: must be at least {MIN_NOTIFY_INTERVAL} seconds")
    return seconds


def _env_interval(text: str | None) -> float:
    if not text:
        return OperatorConfig.notify_interval  # the field's default
    try:
        return notify_interval(text)
    except ValueError as error:
        raise ValueError(f"AIDEPLOY_NOTIFY_INTERVAL={error}") from None


def _from_env_or_defaults() -> OperatorConfig:
    """At import: the command line (aideploy.__main__) reports a bad variable, one line."""
    try:
        return OperatorConfig.from_env()
    except ValueError:
        return OperatorConfig()


_current = _from_env_or_defaults()


def current() -> OperatorConfig:
    return _current


def configure(config: OperatorConfig) -> None:
    """Set by the command line before kopf starts the handlers."""
    global _current
    _current = config
