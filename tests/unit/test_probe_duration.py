"""A probe's duration, measured by the runner, reaches the status's ProbeOutcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import cast

import pytest

from aideploy.api.spec import Probe, Result
from aideploy.kube.resources import Resources
from aideploy.logic.plan import Observation, ProbeRequest
from aideploy.probes import ProbeResult, ProbeTarget
from aideploy.reconciler import Reconciler


def test_probe_duration_reaches_the_outcome_rounded_to_milliseconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def runner(probes: Sequence[Probe], target: ProbeTarget) -> list[ProbeResult]:
        return [ProbeResult("ready", "http", Result.GREEN, "200", "ok", 0.123456)]

    reconciler = Reconciler(
        cast(Resources, None),
        clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
        probe_runner=runner,
    )
    monkeypatch.setattr(reconciler, "_target", lambda obs, req: ProbeTarget("http://m", "m"))
    request = ProbeRequest(purpose="verification", digest="sha256:0", probes=(), port=8080)

    obs = cast(
        Observation, SimpleNamespace(owner=SimpleNamespace(namespace="ml", name="m"), generation=1)
    )
    run = asyncio.run(reconciler._probe(obs, request))

    assert run is not None
    (outcome,) = run.outcomes
    assert outcome.duration_seconds == 0.123
    assert outcome.result is Result.GREEN
    assert outcome.to_wire()["durationSeconds"] == 0.123
