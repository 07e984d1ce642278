"""The notification worker: one task beside the reconciles, never on their path.

Every `interval` it lists the notifiers (one request; nothing else happens while there are
none) and keeps one SinkWorker task per sink of each. The default notifier, named by the
operator's configuration, reports on every watched namespace's AIDeployments that no
notifier of their own namespace selects. Its own threads and API client keep a slow
apiserver or sink from taking the reconciles' threads or connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final

import aiohttp
from pydantic import ValidationError

from aideploy.api.notifier import NotifierSpec
from aideploy.kube.rest import Rest
from aideploy.logic.notify_route import labels_of, selects
from aideploy.metrics import Metrics
from aideploy.notify import store
from aideploy.notify.send import ExecutorResolver
from aideploy.notify.sink import Assignment, SinkWorker
from aideploy.peering import PeeringGuard

logger = logging.getLogger(__name__)

REASON_INVALID: Final = "InvalidNotifier"

SinkKey = tuple[str, str, str, str]  # (namespace, notifier, its uid, sink)


@dataclass(frozen=True)
class NotifySettings:
    cluster: str
    namespaces: tuple[str, ...] = ()
    #: "namespace/name" of the default notifier; None for none.
    default: str | None = None
    interval: float = 2.0


class NotificationWorker:
    def __init__(
        self,
        rest: Rest,
        metrics: Metrics,
        settings: NotifySettings,
        peering: PeeringGuard | None = None,
    ) -> None:
        self._rest = rest
        self._metrics = metrics
        self._settings = settings
        self._peering = peering
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="notify")
        self._sinks: dict[SinkKey, tuple[SinkWorker, asyncio.Task[None]]] = {}
        self._invalid: set[tuple[str, str, str]] = set()
        #: Invalid notifiers seen, not yet told so by a Warning Event on them.
        self._unreported: list[tuple[dict[str, Any], str]] = []

    async def run(self) -> None:
        resolver = ExecutorResolver(self._executor)
        connector = aiohttp.TCPConnector(resolver=resolver)
        async with aiohttp.ClientSession(connector=connector) as session:
            try:
                while True:
                    # First wait: the operator's start (kopf's lists, the first reconciles)
                    # goes first; notifications are never urgent to the second.
                    await asyncio.sleep(self._settings.interval)
                    try:
                        await self._discover(session)
                    except asyncio.CancelledError:
                        raise
                    except Exception as error:  # e.g. the apiserver away: next time
                        logger.warning("notifications: cannot list notifiers: %s", error)
            finally:
                await self.stop()

    async def stop(self) -> None:
        tasks = [task for _, task in self._sinks.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._sinks.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _discover(self, session: aiohttp.ClientSession) -> None:
        loop = asyncio.get_running_loop()
        namespaces = list(self._settings.namespaces)
        listed = await loop.run_in_executor(
            self._executor, store.list_notifiers, self._rest, namespaces
        )
        default = await self._default(listed)
        wanted: dict[SinkKey, Assignment] = {}
        for notifier in listed:
            if default is None or notifier["metadata"]["uid"] != default["metadata"]["uid"]:
                wanted.update(self._assignments(notifier, listed, is_default=False))
        if default is not None:
            wanted.update(self._assignments(default, listed, is_default=True))
        await self._report_invalid()
        for key in list(self._sinks):
            if key not in wanted:
                worker, task = self._sinks.pop(key)
                task.cancel()
                self._metrics.forget_notification_sink(worker.label)
        for key, assignment in wanted.items():
            if key in self._sinks:
                self._sinks[key][0].assignment = assignment
            else:
                try:
                    worker = SinkWorker(
                        self._rest,
                        self._executor,
                        self._metrics,
                        self._settings.cluster,
                        assignment,
                        self._peering.active if self._peering is not None else None,
                    )
                except Exception as error:  # e.g. its status unreadable: the others go on
                    namespace, name, _, sink = key
                    logger.warning(
                        "notifications: notifier %s/%s sink %s not served (tried again "
                        "next time): %s",
                        namespace,
                        name,
                        sink,
                        type(error).__name__,
                    )
                    continue
                task = asyncio.create_task(worker.run(session, self._settings.interval))
                self._sinks[key] = (worker, task)
                logger.info("notifications: delivering to sink %s", worker.label)

    async def _report_invalid(self) -> None:
        """A Warning Event on each invalid notifier (once per version of it), so that
        `kubectl describe` says why nothing is delivered, not only the operator's log."""
        loop = asyncio.get_running_loop()
        while self._unreported:
            notifier, message = self._unreported.pop()
            # Best effort, as every Event: a failure is logged where it is made.
            await loop.run_in_executor(
                self._executor,
                partial(
                    store.post_event,
                    self._rest,
                    notifier,
                    REASON_INVALID,
                    message,
                    datetime.now(UTC),
                ),
            )

    async def _default(self, listed: list[dict[str, Any]]) -> dict[str, Any] | None:
        if not self._settings.default:
            return None
        namespace, _, name = self._settings.default.partition("/")
        for notifier in listed:
            meta = notifier["metadata"]
            if (meta["namespace"], meta["name"]) == (namespace, name):
                return notifier
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, store.get_notifier, self._rest, namespace, name
        )

    def _assignments(
        self, notifier: dict[str, Any], listed: list[dict[str, Any]], *, is_default: bool
    ) -> dict[SinkKey, Assignment]:
        meta = notifier["metadata"]
        try:
            spec = NotifierSpec.model_validate(notifier.get("spec") or {})
        except ValidationError as error:
            key = (meta["namespace"], meta["name"], str(meta.get("resourceVersion")))
            if key not in self._invalid:
                self._invalid.add(key)
                problems = error.errors(include_url=False, include_input=False)
                logger.warning(
                    "notifier %s/%s is invalid, not used: %s",
                    meta["namespace"],
                    meta["name"],
                    problems,
                )
                self._unreported.append((notifier, _invalid_message(problems)))
            return {}
        others = [n for n in listed if n is not notifier]
        return {
            (meta["namespace"], meta["name"], meta["uid"], sink.name): Assignment(
                notifier=notifier,
                spec=spec,
                sink=sink,
                default=is_default,
                scope=self._settings.namespaces,
                covered=covered_by(others) if is_default else _nobody,
            )
            for sink in spec.sinks
        }


def _invalid_message(problems: Sequence[Mapping[str, Any]]) -> str:
    said = "; ".join(
        f"{'.'.join(str(p) for p in problem.get('loc', ()))}: {problem.get('msg', '')}".lstrip(": ")
        for problem in problems
    )
    return f"Notifier is invalid and not used, nothing is delivered: {said}"[:1000]


def _nobody(_obj: Mapping[str, Any]) -> bool:
    return False


def covered_by(notifiers: list[dict[str, Any]]) -> Callable[[Mapping[str, Any]], bool]:
    """Whether a notifier of the AIDeployment's own namespace selects it."""
    specs: list[tuple[str, NotifierSpec]] = []
    for n in notifiers:
        try:
            specs.append((n["metadata"]["namespace"], NotifierSpec.model_validate(n["spec"])))
        except (ValidationError, KeyError):
            continue

    def covered(obj: Mapping[str, Any]) -> bool:
        namespace = obj["metadata"]["namespace"]
        return any(ns == namespace and selects(s.selector, labels_of(obj)) for ns, s in specs)

    return covered
