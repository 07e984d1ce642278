"""Probes that hang (a server that accepts and never answers, a probe timeout of 10m) are
waited for no longer than the verification deadline, and a person's rollback or go-live
decision, or a new spec, stops the wait at once (Reconciler._probe and .preempt)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import cast

import pytest

from aideploy.api.spec import Probe, Result
from aideploy.kube.resources import Resources
from aideploy.logic.plan import Observation, ProbeRequest, ProbeRun
from aideploy.preemption import Preemption
from aideploy.probes import ProbeResult, ProbeTarget
from aideploy.reconciler import Reconciler

KEY = ("ml", "scorer")
NOW = datetime(2026, 1, 1, tzinfo=UTC)
OBS = cast(
    Observation, SimpleNamespace(owner=SimpleNamespace(namespace="ml", name="scorer"), generation=3)
)


class HangingProbes:
    """Probes that answer only when `release` is set (never, unless a test sets it)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.cancelled = False

    async def __call__(self, probes: Sequence[Probe], target: ProbeTarget) -> list[ProbeResult]:
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return [ProbeResult("ready", "http", Result.GREEN, "200", "ok", 0.1)]


def reconciler_with(runner: HangingProbes, monkeypatch: pytest.MonkeyPatch) -> Reconciler:
    reconciler = Reconciler(cast(Resources, None), clock=lambda: NOW, probe_runner=runner)
    monkeypatch.setattr(reconciler, "_target", lambda obs, req: ProbeTarget("http://m", "m"))
    return reconciler


def request(deadline: datetime | None = None) -> ProbeRequest:
    return ProbeRequest("verification", "sha256:0", (), 8080, deadline=deadline)


def test_the_verification_deadline_bounds_probes_that_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> None:
        runner = HangingProbes()
        reconciler = reconciler_with(runner, monkeypatch)
        # The deadline is 0.2 s away on the reconciler's clock.
        run = await reconciler._probe(OBS, request(NOW + timedelta(seconds=0.2)))
        assert run is None
        assert runner.cancelled, "the hanging probe is not left running"

    asyncio.run(asyncio.wait_for(scenario(), timeout=10))


SEEN_ACTIONS = {"aideploy.io/go-live": "proceed"}  # what the decision was taken on


@pytest.mark.parametrize(
    ("generation", "annotations", "stops"),
    [
        (3, {**SEEN_ACTIONS, "aideploy.io/rollback": "answers are wrong"}, True),
        (3, {"aideploy.io/go-live": "rollback"}, True),  # the decision changed
        (4, SEEN_ACTIONS, True),  # a new spec
        (3, {**SEEN_ACTIONS, "example.com/touched": "7"}, False),  # an unrelated edit
        (3, SEEN_ACTIONS, False),  # the action already decided on
        (3, {}, False),  # the operator consumed it (its own write's event)
        (2, {**SEEN_ACTIONS, "aideploy.io/rollback": "x"}, True),  # stale generation, new action
        (2, SEEN_ACTIONS, False),  # a stale event from before
    ],
)
def test_a_persons_new_action_or_a_new_spec_stops_the_wait_at_once(
    monkeypatch: pytest.MonkeyPatch, generation: int, annotations: dict[str, str], stops: bool
) -> None:
    async def scenario() -> None:
        runner = HangingProbes()
        reconciler = reconciler_with(runner, monkeypatch)
        preemption = Preemption()
        seen = preemption.watch(KEY, 3, SEEN_ACTIONS)
        probing = asyncio.create_task(reconciler._probe(OBS, request(), seen.stop))
        await runner.started.wait()
        preemption.event(KEY, generation, annotations)
        if not stops:
            for _ in range(20):  # the event loop turns: a stopped wait would end now
                await asyncio.sleep(0)
            assert not probing.done(), "the wait ended without a new action"
            runner.release.set()  # only the probes' own answer ends this wait
        run = await probing
        assert (run is None) == stops
        preemption.release(KEY, seen)
        preemption.event(KEY, 9, {})  # nothing is watched any more: nothing to stop

    asyncio.run(asyncio.wait_for(scenario(), timeout=10))


@pytest.mark.parametrize(("minutes", "kept"), [(0, True), (4, True), (6, False)])
def test_a_verdict_kept_through_a_refused_write_is_used_only_while_recent(
    minutes: int, kept: bool
) -> None:
    now = [NOW]
    reconciler = Reconciler(cast(Resources, None), clock=lambda: now[0])
    run = ProbeRun("verification", "sha256:0", ())
    reconciler._results[KEY] = (NOW, run)
    now[0] = NOW + timedelta(minutes=minutes)
    assert (reconciler._kept_result(KEY) is run) is kept
    assert (KEY in reconciler._results) is kept
