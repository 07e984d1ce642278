"""kopf wiring only: watch events (kopf's, and the children informers') feed the
controller; the parts are built and started here, and nothing else happens here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kopf

from aideploy.admission.config import ApproversConfig, load_approvers_config
from aideploy.admission.policy import Requester, review
from aideploy.admission.provenance import load_key
from aideploy.admission.records_guard import review_record
from aideploy.api.constants import (
    GROUP,
    LABEL_DEPLOYMENT,
    LABEL_MANAGED_BY,
    MANAGED_BY_VALUE,
    PLURAL,
    RECORD_PLURAL,
    VERSION,
)
from aideploy.config import OperatorConfig, current
from aideploy.controller import Controller, PromotionIndex
from aideploy.kube.child_cache import ChildCache
from aideploy.kube.client import IO_THREADS, make_api_client
from aideploy.kube.resources import Resources
from aideploy.kube.rest import Rest
from aideploy.kube.webhook import NamespacedWebhookServer
from aideploy.logic.gate import ApprovalPolicy
from aideploy.metrics import Metrics
from aideploy.notify.worker import NotificationWorker, NotifySettings
from aideploy.peering import PeeringGuard
from aideploy.reconciler import Reconciler, ReconcilerSettings
from aideploy.records.signature import RecordSigner

logger = logging.getLogger(__name__)

#: How long the start waits for the first lists of Deployments and Services.
CHILDREN_LISTED_SECONDS = 10

WATCH_SERVER_TIMEOUT = 300
WATCH_CLIENT_TIMEOUT = 330
#: Objects per page of kopf's initial list: at a start with 10,000 objects, the list read
#: whole was 10,000 decoded bodies at once, the operator's peak memory.
LIST_CHUNK = 500


class _NoDiffBase(kopf.DiffBaseStorage):
    """kopf builds a deep copy of every object on every event, to diff it for on.create
    and on.update handlers. This operator registers none (it reconciles from on.event),
    so the copy, a tenth of its CPU in a burst of approvals, is never used."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Without explicit timeouts a watch can go silent forever (kopf issues 585, 614, 957).
    settings.watching.server_timeout = WATCH_SERVER_TIMEOUT
    settings.watching.client_timeout = WATCH_CLIENT_TIMEOUT
    settings.watching.connect_timeout = 30
    settings.watching.chunk_size = LIST_CHUNK
    settings.persistence.diffbase_storage = _NoDiffBase()
    # We post our own, meaningful Events; kopf's per-handler log events would be noise.
    settings.posting.enabled = False
    settings.posting.level = logging.WARNING
    config = current()
    # How long a dead active replica (no exit, no goodbye) holds the standbys back.
    settings.peering.lifetime = config.peering_lifetime
    approvers = load_approvers_config(
        Path(config.approvers_config) if config.approvers_config else None
    )
    memo["approvers"] = approvers
    provenance_key = load_key(config.provenance_key_file, config.webhook_key)
    memo["provenance_key"] = provenance_key
    signer = RecordSigner.from_secret(provenance_key) if provenance_key is not None else None
    _configure_webhook(settings, config)
    metrics = Metrics()
    if config.metrics_port is not None:
        metrics.serve(config.metrics_port)
        logger.info("metrics served on port %d at /metrics", config.metrics_port)
    memo["metrics"] = metrics
    # Every apiserver call runs in the loop's default executor (asyncio.to_thread).
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(IO_THREADS, thread_name_prefix="aideploy-io")
    )
    rest = Rest(make_api_client())
    peering = _peering_guard(rest, config)
    children = _start_child_cache(config, memo)
    reconciler = _reconciler(
        config,
        approvers,
        rest,
        metrics,
        provenance_key=provenance_key,
        signer=signer,
        peering=peering,
        children=children,
    )
    memo["reconciler"] = reconciler
    memo["controller"] = Controller(reconciler, on_error=lambda: metrics.record_reconcile("error"))
    memo["promotions"] = PromotionIndex()
    memo["notifications"] = _start_notifications(config, metrics, peering)
    if config.adopt_unsigned_releases:
        logger.warning(
            "--adopt-unsigned-releases is on: releases in status without a signature are "
            "trusted and signed; turn it off once every object has been reconciled"
        )
    if signer is None:
        logger.warning(
            "no provenance key (--provenance-key-file or the webhook's key): releases in "
            "status and records are not signed, so a status writer could change what is "
            "deployed and a record editor could rewrite the evidence"
        )
    else:
        logger.info(
            "records are signed by %s; check them with kubectl aideploy verify "
            "--public-key KEY, KEY being %s",
            signer.key_id,
            signer.public_key_base64(),
        )
    if children is not None:
        await _children_listed(children, memo)
    logger.info("aideploy operator started")


def _reconciler(
    config: OperatorConfig,
    approvers: ApproversConfig,
    rest: Rest,
    metrics: Metrics,
    *,
    provenance_key: bytes | None,
    signer: RecordSigner | None,
    peering: PeeringGuard | None,
    children: ChildCache | None,
) -> Reconciler:
    return Reconciler(
        Resources(rest),
        ReconcilerSettings(
            probe_base_url=config.probe_base_url,
            probe_preview_url=config.probe_preview_url,
            cluster_domain=config.cluster_domain,
            record_retention=timedelta(days=config.record_retention_days),
            approval_policy=ApprovalPolicy(
                require_authenticated=(
                    config.require_authenticated_approvals
                    or approvers.require_authenticated_approvals
                ),
                separation=approvers.separation_of_duties,
                provenance_key=provenance_key,
                lower_gate_for=frozenset(approvers.lower_gate.risk_levels),
                adopt_unsigned_releases=config.adopt_unsigned_releases,
            ),
            pod_policy=approvers.pod_policy,
            record_signer=signer,
        ),
        metrics=metrics,
        peering=peering,
        children=children,
    )


def _start_child_cache(config: OperatorConfig, memo: kopf.Memo) -> ChildCache | None:
    """The informers of Deployments and Services, with a client of their own (a watch
    holds its connection). They wake a child's owner on the loop, once the cache holds
    the change. None when a namespace is a pattern (only names can be listed): kopf then
    watches the Deployments, and reconciles read their children with requests."""
    if any(any(c in namespace for c in "*?[!") for namespace in config.namespaces):
        kopf.on.event("apps", "v1", "deployments", labels={LABEL_MANAGED_BY: MANAGED_BY_VALUE})(
            child_changed
        )
        return None
    loop = asyncio.get_running_loop()

    def wake(namespace: str, owner: str) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(_child_changed, memo, (namespace, owner))

    client = make_api_client(pool=ChildCache.connections(config.namespaces))
    cache = ChildCache(Rest(client), config.namespaces, wake)
    cache.start()
    memo["children"] = cache
    return cache


async def _children_listed(children: ChildCache, memo: kopf.Memo) -> None:
    """Reconciles start once the children are listed, so that the first ones read them
    from the cache. A list that comes later wakes the owners of what it holds: they may
    have been read with requests before a change it brings."""
    if not await asyncio.to_thread(children.wait_listed, CHILDREN_LISTED_SECONDS):
        logger.warning(
            "Deployments and Services not listed within %d s; reconciles read them with "
            "requests until they are",
            CHILDREN_LISTED_SECONDS,
        )
    children.serve()


def _child_changed(memo: Any, key: tuple[str, str]) -> None:
    if "controller" in memo:  # not while starting: every object's first reconcile is due
        memo["reconciler"].woken_otherwise(key)
        memo["controller"].trigger(key)


async def child_changed(labels: kopf.Labels, namespace: str | None, memo: Any, **_: Any) -> None:
    """kopf's Deployment events, when there are no informers (namespace patterns)."""
    owner = labels.get(LABEL_DEPLOYMENT)
    if owner and namespace:
        _child_changed(memo, (namespace, owner))


def _peering_guard(rest: Rest, config: OperatorConfig) -> PeeringGuard | None:
    """With --peering, the check that this replica is the active one (the reconciles and
    the notifications ask it)."""
    if not config.peering_name:
        return None
    return PeeringGuard(
        rest,
        config.peering_name,
        config.identity or "",
        config.peering_priority,
        clusterwide=not config.namespaces,
    )


def _start_notifications(
    config: OperatorConfig, metrics: Metrics, peering: PeeringGuard | None
) -> asyncio.Task[None]:
    """Notifications run in a task of their own, off the reconciles' path, with their own
    API client (kopf's handlers only wire it)."""
    worker = NotificationWorker(
        Rest(make_api_client()),
        metrics,
        NotifySettings(
            cluster=config.cluster_name,
            namespaces=tuple(config.namespaces),
            default=config.default_notifier,
            interval=config.notify_interval,
        ),
        peering,
    )
    return asyncio.create_task(worker.run(), name="aideploy-notifications")


def _configure_webhook(settings: kopf.OperatorSettings, config: OperatorConfig) -> None:
    if config.webhook_port is None:
        return
    settings.admission.server = NamespacedWebhookServer(
        addr=config.webhook_addr,
        port=config.webhook_port,
        host=config.webhook_host,
        certfile=config.webhook_cert,
        pkeyfile=config.webhook_key,
        cafile=config.webhook_cert,
    )
    if config.webhook_managed:
        settings.admission.managed = config.webhook_managed
    logger.info("admission webhook served on port %d", config.webhook_port)


def register_webhook() -> None:
    """Register the admission handler: only when a webhook server is configured, since kopf
    stops the operator when admission handlers exist without a server."""
    kopf.on.mutate(GROUP, VERSION, PLURAL, id="provenance", operations=["CREATE", "UPDATE"])(
        provenance
    )
    kopf.on.validate(GROUP, VERSION, RECORD_PLURAL, id="records", operations=["UPDATE", "DELETE"])(
        records_guard
    )


async def records_guard(userinfo: kopf.UserInfo, memo: Any, **kwargs: Any) -> None:
    """Admission: records are never edited, and deleted only after their retention."""
    watched = current().namespaces
    namespace = kwargs.get("namespace")
    if watched and namespace and namespace not in watched:
        return
    old: kopf.Body | None = kwargs.get("old")
    verdict = review_record(
        str(kwargs.get("operation") or "UPDATE"),
        Requester.from_userinfo(userinfo),
        _raw(old),
        memo["approvers"],
        datetime.now(UTC),
    )
    if not verdict.allowed:
        logger.info(
            "admission denied for %s/%s: %s", namespace, kwargs.get("name"), verdict.message
        )
        raise kopf.AdmissionError(verdict.message, code=403)


async def provenance(userinfo: kopf.UserInfo, patch: kopf.Patch, memo: Any, **kwargs: Any) -> None:
    """Admission: who may approve, who did, and nobody forges the bookkeeping."""
    old: kopf.Body | None = kwargs.get("old")
    new: kopf.Body | None = kwargs.get("new")
    watched = current().namespaces
    namespace = kwargs.get("namespace")
    if new is None or (watched and namespace and namespace not in watched):
        # Another namespace, not ours to judge (a 1.20 webhook cannot select namespaces).
        # The namespace is the request's (NamespacedWebhookServer), not the object's.
        return
    verdict = review(
        str(kwargs.get("operation") or "UPDATE"),
        Requester.from_userinfo(userinfo),
        _raw(old),
        _raw(new) or {},
        memo["approvers"],
        datetime.now(UTC),
        memo["provenance_key"],
    )
    if not verdict.allowed:
        logger.info(
            "admission denied for %s/%s: %s", namespace, kwargs.get("name"), verdict.message
        )
        raise kopf.AdmissionError(verdict.message, code=403)
    if verdict.set_annotations:
        annotations = patch.setdefault("metadata", {}).setdefault("annotations", {})
        annotations.update(verdict.set_annotations)


def _raw(body: kopf.Body | None) -> dict[str, Any] | None:
    if body is None:
        return None
    return {
        "metadata": {"annotations": dict(body.metadata.annotations)},
        "spec": dict(body.spec),
    }


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, **_: Any) -> None:
    notifications: asyncio.Task[None] | None = memo.get("notifications")
    if notifications is not None:
        notifications.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await notifications
    children: ChildCache | None = memo.get("children")
    if children is not None:  # first: no wake may come once the controller is stopped
        await asyncio.to_thread(children.stop)
    controller: Controller | None = memo.get("controller")
    if controller is not None:
        await controller.stop()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def aideployment_changed(
    event: kopf.RawEvent,
    name: str,
    namespace: str | None,
    spec: kopf.Spec,
    meta: kopf.Meta,
    annotations: kopf.Annotations,
    memo: Any,
    **_: Any,
) -> None:
    controller: Controller = memo["controller"]
    promotions: PromotionIndex = memo["promotions"]
    if namespace is None:
        return
    key = (namespace, name)
    if event.get("type") == "DELETED":
        controller.forget(key)
        memo["reconciler"].forget(key)
        promotions.forget(key)
        memo["metrics"].forget(key)
    else:
        reconciler: Reconciler = memo["reconciler"]
        reconciler.preempt(key, meta.get("generation"), annotations)
        body = event.get("object")
        reconciler.woken_by_event(key, meta.get("resourceVersion"), dict(body) if body else None)
        controller.trigger(key)
        promotions.record(key, (spec.get("promotion") or {}).get("fromStaging"))
    # Production objects promoting from this one re-check when it changes.
    for dependent in promotions.dependents(key):
        memo["reconciler"].woken_otherwise(dependent)
        controller.trigger(dependent)
