"""A per-object work queue: at most one reconcile per object at a time, woken by watch
events or by the deadline the last reconcile asked for. Nothing polls: an idle object
costs a parked coroutine.

kopf's daemons would serve too, but they put a finalizer on every object, which blocks
namespace deletion whenever the operator is down; this keeps objects free of finalizers.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from aideploy.kube.rest import ApiError
from aideploy.kube.writes import TRANSPORT

logger = logging.getLogger(__name__)

ObjectKey = tuple[str, str]  # (namespace, name)
Reconcile = Callable[[ObjectKey], Awaitable[timedelta | None]]

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 300.0
#: An apiserver that did not answer is tried again at least this often.
UNREACHABLE_BACKOFF = 10.0
# Every object is reconciled at least this often: kopf does not re-list after a watch
# reconnects, and the "not reconciling" alert needs a steady beat.
RESYNC_PERIOD = 300.0


@dataclass
class _Worker:
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    stopping: bool = False


class Controller:
    def __init__(self, reconcile: Reconcile, on_error: Callable[[], None] | None = None) -> None:
        self._reconcile = reconcile
        self._on_error = on_error
        self._workers: dict[ObjectKey, _Worker] = {}

    def trigger(self, key: ObjectKey) -> None:
        worker = self._workers.get(key)
        if worker is None or worker.task is None or worker.task.done():
            worker = _Worker()
            self._workers[key] = worker
            # A context of its own: the task lives as long as the object, and a copy of the
            # caller's (kopf's handler context) would keep the watch event's whole body.
            worker.task = asyncio.create_task(
                self._run(key, worker), name=f"reconcile:{key}", context=contextvars.Context()
            )
        worker.wake.set()

    def forget(self, key: ObjectKey) -> None:
        worker = self._workers.pop(key, None)
        if worker is not None:
            worker.stopping = True
            worker.wake.set()

    async def stop(self) -> None:
        workers = list(self._workers.values())
        self._workers.clear()
        for worker in workers:
            if worker.task is not None:
                worker.task.cancel()
        for worker in workers:
            if worker.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.task

    async def _run(self, key: ObjectKey, worker: _Worker) -> None:
        delay: float | None = None
        backoff = INITIAL_BACKOFF
        loop = asyncio.get_running_loop()
        while True:
            # A timer that sets the wake, not wait_for(): wait_for parks a second task per
            # object, and every object has a parked worker (10,000 objects, 10,000 more).
            timer = None if delay is None else loop.call_later(delay, worker.wake.set)
            try:
                await worker.wake.wait()
            finally:
                if timer is not None:
                    timer.cancel()
            if worker.stopping:
                return
            worker.wake.clear()
            try:
                requeue = await self._reconcile(key)
            except asyncio.CancelledError:
                raise
            except TRANSPORT as error:
                # The apiserver did not answer, or refused a read: one line, no traceback,
                # and a short backoff, so that the operator is back soon after it is.
                delay = min(backoff, UNREACHABLE_BACKOFF)
                what = "refused a read" if isinstance(error, ApiError) else "did not answer"
                logger.warning(
                    "reconcile of %s/%s: the apiserver %s (%s); retrying in %.0fs",
                    *key,
                    what,
                    f"{type(error).__name__}: {error}"[:300],
                    delay,
                    extra={"object": "/".join(key)},
                )
                if self._on_error is not None:
                    self._on_error()
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            except Exception:
                logger.exception(
                    "reconcile of %s/%s failed; retrying in %.0fs",
                    *key,
                    backoff,
                    extra={"object": "/".join(key)},
                )
                if self._on_error is not None:
                    self._on_error()
                delay = backoff
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = INITIAL_BACKOFF
            delay = (
                RESYNC_PERIOD
                if requeue is None
                else min(max(requeue.total_seconds(), 0.0), RESYNC_PERIOD)
            )


class PromotionIndex:
    """Which production objects promote from which staging object, so that a change to
    the staging object wakes them (level-based: rebuilt from every watch event)."""

    def __init__(self) -> None:
        self._source_of: dict[ObjectKey, ObjectKey] = {}

    def record(self, key: ObjectKey, staging_name: object) -> None:
        if isinstance(staging_name, str) and staging_name:
            self._source_of[key] = (key[0], staging_name)
        else:
            self._source_of.pop(key, None)

    def forget(self, key: ObjectKey) -> None:
        self._source_of.pop(key, None)

    def dependents(self, staging: ObjectKey) -> list[ObjectKey]:
        return [key for key, source in self._source_of.items() if source == staging]
