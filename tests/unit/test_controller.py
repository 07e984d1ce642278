"""The per-object work queue, driven directly: one reconcile per object at a time, wake-ups
coalesced, requeue deadlines kept, failures retried with backoff and reported.

Each test waits on events the fake reconcile sets, never on wall-clock sleeps, and runs
under a hard timeout so a broken queue fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from aideploy import controller as controller_module
from aideploy.controller import Controller, ObjectKey, PromotionIndex

KEY: ObjectKey = ("ns", "churn")
OTHER: ObjectKey = ("ns", "fraud")


def run(test: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(test(), timeout=10)

    asyncio.run(bounded())


class FakeReconcile:
    """Records calls; each call blocks until the test releases it, so overlap is visible."""

    def __init__(self, requeue: timedelta | None = None, fail_times: int = 0) -> None:
        self.calls: list[ObjectKey] = []
        self.running: dict[ObjectKey, int] = {}
        self.max_concurrent: dict[ObjectKey, int] = {}
        self.started = asyncio.Queue[ObjectKey]()
        self.release = asyncio.Event()
        self.requeue = requeue
        self.fail_times = fail_times

    async def __call__(self, key: ObjectKey) -> timedelta | None:
        self.calls.append(key)
        self.running[key] = self.running.get(key, 0) + 1
        self.max_concurrent[key] = max(self.max_concurrent.get(key, 0), self.running[key])
        self.started.put_nowait(key)
        try:
            await self.release.wait()
            if self.fail_times > 0:
                self.fail_times -= 1
                raise RuntimeError("apiserver said no")
            return self.requeue
        finally:
            self.running[key] -= 1


def test_triggers_during_a_reconcile_coalesce_into_one_more() -> None:
    async def scenario() -> None:
        reconcile = FakeReconcile()
        queue = Controller(reconcile)
        queue.trigger(KEY)
        assert await reconcile.started.get() == KEY
        for _ in range(5):  # five watch events while the first reconcile runs
            queue.trigger(KEY)
        reconcile.release.set()
        assert await reconcile.started.get() == KEY  # exactly one follow-up
        await asyncio.sleep(0)  # let the worker park again
        assert reconcile.started.empty()
        assert reconcile.calls == [KEY, KEY]
        assert reconcile.max_concurrent[KEY] == 1
        await queue.stop()

    run(scenario)


def test_objects_reconcile_independently() -> None:
    async def scenario() -> None:
        reconcile = FakeReconcile()
        queue = Controller(reconcile)
        queue.trigger(KEY)
        queue.trigger(OTHER)
        started = {await reconcile.started.get(), await reconcile.started.get()}
        assert started == {KEY, OTHER}  # the second did not wait for the first
        reconcile.release.set()
        await queue.stop()

    run(scenario)


def test_requeue_after_wakes_the_object_without_a_trigger() -> None:
    async def scenario() -> None:
        reconcile = FakeReconcile(requeue=timedelta(milliseconds=10))
        reconcile.release.set()
        queue = Controller(reconcile)
        queue.trigger(KEY)
        assert await reconcile.started.get() == KEY
        assert await reconcile.started.get() == KEY  # woken by its own deadline
        await queue.stop()

    run(scenario)


def test_a_failing_reconcile_is_reported_and_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(controller_module, "INITIAL_BACKOFF", 0.01)
    errors: list[None] = []

    async def scenario() -> None:
        reconcile = FakeReconcile(fail_times=2)
        reconcile.release.set()
        queue = Controller(reconcile, on_error=lambda: errors.append(None))
        queue.trigger(KEY)
        for _ in range(3):  # two failures, then the retry that succeeds
            assert await reconcile.started.get() == KEY
        await asyncio.sleep(0)
        assert len(errors) == 2
        await queue.stop()

    run(scenario)


def test_an_apiserver_that_does_not_answer_is_one_line_and_a_short_backoff(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Connection refused (an apiserver restarting): no traceback, and the next attempt
    no later than UNREACHABLE_BACKOFF, however often it failed before."""
    monkeypatch.setattr(controller_module, "INITIAL_BACKOFF", 0.01)
    monkeypatch.setattr(controller_module, "UNREACHABLE_BACKOFF", 0.02)
    errors: list[None] = []

    class Unreachable(FakeReconcile):
        async def __call__(self, key: ObjectKey) -> timedelta | None:
            if self.fail_times > 0:
                self.fail_times -= 1
                self.started.put_nowait(key)
                raise ConnectionRefusedError(111, "Connection refused")
            return await super().__call__(key)

    async def scenario() -> None:
        reconcile = Unreachable(fail_times=12)  # 0.01 s doubled 12 times would be 40 s
        reconcile.release.set()
        queue = Controller(reconcile, on_error=lambda: errors.append(None))
        queue.trigger(KEY)
        for _ in range(13):
            assert await reconcile.started.get() == KEY
        await queue.stop()

    with caplog.at_level("WARNING"):
        run(scenario)
    assert len(errors) == 12
    lines = [r for r in caplog.records if r.name == "aideploy.controller"]
    assert lines and all(r.exc_info is None for r in lines)
    assert "ns/churn: the apiserver did not answer" in lines[0].getMessage()


def test_forget_stops_the_worker_after_its_reconcile() -> None:
    async def scenario() -> None:
        reconcile = FakeReconcile(requeue=timedelta(milliseconds=1))
        queue = Controller(reconcile)
        queue.trigger(KEY)
        await reconcile.started.get()
        (worker,) = [t for t in asyncio.all_tasks() if t.get_name() == f"reconcile:{KEY}"]
        queue.forget(KEY)
        reconcile.release.set()
        await worker  # the worker ends by itself, although its reconcile asked to requeue
        assert reconcile.calls == [KEY]
        await queue.stop()

    run(scenario)


def test_promotion_index_wakes_the_dependents_of_a_staging_object() -> None:
    index = PromotionIndex()
    index.record(("ns", "prod-a"), "staging")
    index.record(("ns", "prod-b"), "staging")
    index.record(("other", "prod-c"), "staging")
    index.record(("ns", "prod-d"), None)
    assert sorted(index.dependents(("ns", "staging"))) == [("ns", "prod-a"), ("ns", "prod-b")]
    index.record(("ns", "prod-a"), "")  # promotion removed from its spec
    index.forget(("ns", "prod-b"))
    assert index.dependents(("ns", "staging")) == []


HANDLER_CONTEXT: contextvars.ContextVar[object] = contextvars.ContextVar("handler_context")


def test_a_worker_keeps_nothing_of_the_context_that_triggered_it() -> None:
    """kopf triggers workers from its handler's context, whose variables hold the watch
    event's body: a worker parked for the object's lifetime must not keep a copy."""
    seen: list[object] = []
    reconciled = asyncio.Event()

    async def reconcile(key: ObjectKey) -> timedelta | None:
        seen.append(HANDLER_CONTEXT.get(None))
        reconciled.set()
        return None

    async def test() -> None:
        controller = Controller(reconcile)
        HANDLER_CONTEXT.set({"object": "a whole body"})
        controller.trigger(KEY)
        await reconciled.wait()
        await controller.stop()

    run(test)
    assert seen == [None]
