"""kopf wiring only: watch events feed the controller; nothing else happens here."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import kopf

from aideploy.api.constants import (
    GROUP,
    LABEL_DEPLOYMENT,
    LABEL_MANAGED_BY,
    MANAGED_BY_VALUE,
    PLURAL,
    VERSION,
)
from aideploy.config import current
from aideploy.controller import Controller, PromotionIndex
from aideploy.kube.client import make_api_client
from aideploy.kube.resources import Resources
from aideploy.kube.rest import Rest
from aideploy.metrics import Metrics
from aideploy.reconciler import Reconciler, ReconcilerSettings

logger = logging.getLogger(__name__)

WATCH_SERVER_TIMEOUT = 300
WATCH_CLIENT_TIMEOUT = 330


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Without explicit timeouts a watch can go silent forever (kopf issues 585, 614, 957).
    settings.watching.server_timeout = WATCH_SERVER_TIMEOUT
    settings.watching.client_timeout = WATCH_CLIENT_TIMEOUT
    settings.watching.connect_timeout = 30
    # We post our own, meaningful Events; kopf's per-handler log events would be noise.
    settings.posting.enabled = False
    settings.posting.level = logging.WARNING
    config = current()
    metrics = Metrics()
    if config.metrics_port is not None:
        metrics.serve(config.metrics_port)
        logger.info("metrics served on port %d at /metrics", config.metrics_port)
    memo["metrics"] = metrics
    reconciler = Reconciler(
        Resources(Rest(make_api_client())),
        ReconcilerSettings(
            probe_base_url=config.probe_base_url,
            cluster_domain=config.cluster_domain,
            record_retention=timedelta(days=config.record_retention_days),
        ),
        metrics=metrics,
    )
    memo["controller"] = Controller(reconciler, on_error=lambda: metrics.record_reconcile("error"))
    memo["promotions"] = PromotionIndex()
    logger.info("aideploy operator started")


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, **_: Any) -> None:
    controller: Controller | None = memo.get("controller")
    if controller is not None:
        await controller.stop()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def aideployment_changed(
    event: kopf.RawEvent, name: str, namespace: str | None, spec: kopf.Spec, memo: Any, **_: Any
) -> None:
    controller: Controller = memo["controller"]
    promotions: PromotionIndex = memo["promotions"]
    if namespace is None:
        return
    key = (namespace, name)
    if event.get("type") == "DELETED":
        controller.forget(key)
        promotions.forget(key)
        memo["metrics"].forget(key)
    else:
        controller.trigger(key)
        promotions.record(key, (spec.get("promotion") or {}).get("fromStaging"))
    # Production objects promoting from this one re-check when it changes.
    for dependent in promotions.dependents(key):
        controller.trigger(dependent)


@kopf.on.event("apps", "v1", "deployments", labels={LABEL_MANAGED_BY: MANAGED_BY_VALUE})
async def child_changed(labels: kopf.Labels, namespace: str | None, memo: Any, **_: Any) -> None:
    owner = labels.get(LABEL_DEPLOYMENT)
    if owner and namespace:
        controller: Controller = memo["controller"]
        controller.trigger((namespace, owner))
