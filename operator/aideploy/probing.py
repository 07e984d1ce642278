"""Probes run for a reconcile: against which URL, and for how long they are waited for
(the request's deadline, or a person's action or a new spec that stops them)."""

from __future__ import annotations

import asyncio
import logging
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from aideploy.api.spec import Probe
from aideploy.api.status import ProbeOutcome
from aideploy.api.times import rfc3339
from aideploy.logic.plan import Observation, ProbeRequest, ProbeRun
from aideploy.logic.probe_url import probe_base_url
from aideploy.logic.topology import preview_name
from aideploy.metrics import Metrics
from aideploy.probes import ProbeResult, ProbeTarget

logger = logging.getLogger(__name__)

#: Past a probe request's deadline, so that decide() finds it passed.
DEADLINE_SLACK = 0.05
ProbeRunner = Callable[[Sequence[Probe], ProbeTarget], Awaitable[list[ProbeResult]]]


def probe_target(
    obs: Observation,
    request: ProbeRequest,
    cluster_domain: str,
    base_url: str | None,
    preview_url: str | None,
) -> ProbeTarget:
    """`base_url` replaces the child Service's URL for probes that name none; `preview_url`
    the preview Service's (see ReconcilerSettings)."""
    spec_model = (obs.raw_spec.get("model") or {}).get("name", obs.owner.name)
    service = request.service or obs.owner.name
    override = preview_url if service == preview_name(obs.owner) and preview_url else base_url
    base = probe_base_url(obs.owner.namespace, service, request.port, cluster_domain, override)
    return ProbeTarget(base_url=base, model_name=str(spec_model))


async def run_until_stopped(
    run_probes: ProbeRunner,
    obs: Observation,
    request: ProbeRequest,
    target: ProbeTarget,
    stop: asyncio.Event,
    clock: Callable[[], datetime],
    metrics: Metrics | None,
) -> ProbeRun | None:
    """The probes' results; None when no verdict may be waited for any longer: the
    request's deadline passed, or a person's action or a new spec pre-empted them."""
    key = (obs.owner.namespace, obs.owner.name)
    probing = asyncio.ensure_future(run_probes(request.probes, target))
    stopped = asyncio.ensure_future(stop.wait())
    budget = (
        None
        if request.deadline is None
        else max((request.deadline - clock()).total_seconds(), 0.0) + DEADLINE_SLACK
    )
    try:
        await asyncio.wait({probing, stopped}, timeout=budget, return_when=FIRST_COMPLETED)
    finally:
        for task in (probing, stopped):
            task.cancel()
        # Let a cut-off probe close its connections before going on.
        await asyncio.gather(probing, stopped, return_exceptions=True)
    if not probing.done() or probing.cancelled():
        why = "pre-empted" if stop.is_set() else "cut off at the verification deadline"
        logger.info("%s/%s: probes %s", key[0], key[1], why)
        return None
    results = probing.result()
    at = rfc3339(clock())
    outcomes = tuple(
        ProbeOutcome(
            name=r.name,
            kind=r.kind,
            result=r.result,
            value=r.value,
            message=r.message,
            at=at,
            duration_seconds=round(r.duration_seconds, 3),
        )
        for r in results
    )
    for outcome in outcomes:
        logger.debug("probe %s: %s %s", outcome.name, outcome.result, outcome.message)
        if metrics is not None:
            metrics.record_probe_result(outcome.name, outcome.result)
    return ProbeRun(purpose=request.purpose, digest=request.digest, outcomes=outcomes)
