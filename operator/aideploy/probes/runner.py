"""Running probes: the I/O around the pure rules, with hard deadlines and no exceptions.

`run_probe` never raises for anything a server or network can do: refusals, timeouts,
garbage answers all become RED results with a sentence saying what happened, because the
caller (the reconciler) must record a verdict, not crash. Deadlines:
- http: each attempt gets `timeout`; with `retries` the whole probe is bounded by
  (retries + 1) * timeout, pauses between attempts included;
- inference: the readiness request and the inference share one `timeout`;
- prometheus: one request within `timeout` (also passed to Prometheus as its query timeout).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import quote

import aiohttp

from aideploy.api.durations import parse_duration
from aideploy.api.spec import HttpProbe, InferenceProbe, Probe, PrometheusProbe, Result
from aideploy.probes.base import Verdict, worst_result
from aideploy.probes.http_rules import map_http
from aideploy.probes.inference_rules import infer_request, map_inference, map_model_ready
from aideploy.probes.prometheus_rules import map_prometheus
from aideploy.probes.transport import TransportError, exchange

log = logging.getLogger(__name__)

ProbeKind = Literal["http", "inference", "prometheus"]

# Pause before retrying a fast failure (refused, 5xx), so a restarting server gets a moment.
# A timed-out attempt has waited long enough and is retried at once.
RETRY_PAUSE_SECONDS: Final = 0.25


@dataclass(frozen=True)
class ProbeTarget:
    """Where probes go by default: the base URL of the model server (the child Service, or
    an operator-wide override) and the model name inference probes ask for."""

    base_url: str
    model_name: str


@dataclass(frozen=True)
class ProbeResult:
    """One probe's outcome, as it goes into `status.verification.probes`."""

    name: str
    kind: ProbeKind
    result: Result
    value: str | None
    message: str
    duration_seconds: float


def join_url(base: str, path: str) -> str:
    """`base` + `path` with exactly one slash between them; a path prefix in `base` stays."""
    if not path:
        return base
    return base.rstrip("/") + "/" + path.lstrip("/")


def worst(results: Iterable[ProbeResult]) -> Result | None:
    """The most severe result (RED > AMBER > GREEN); None when no probe ran."""
    return worst_result(r.result for r in results)


async def run_probes(
    probes: Sequence[Probe], target: ProbeTarget, session: aiohttp.ClientSession | None = None
) -> list[ProbeResult]:
    """Run all probes concurrently; results come back in the order of `probes`."""
    if session is None:
        async with _new_session() as own:
            return await run_probes(probes, target, own)
    return list(await asyncio.gather(*(run_probe(p, target, session) for p in probes)))


async def run_probe(
    probe: Probe, target: ProbeTarget, session: aiohttp.ClientSession | None = None
) -> ProbeResult:
    """Run one probe; never raises for network or protocol problems (they are RED)."""
    if session is None:
        async with _new_session() as own:
            return await run_probe(probe, target, own)
    kind = _kind(probe)
    started = time.monotonic()
    try:
        verdict = await _dispatch(probe, target, session)
    except Exception as exc:  # a bug must not stop the reconciler from recording a verdict
        log.exception("probe %s failed unexpectedly", probe.name)
        verdict = Verdict(Result.RED, None, f"the probe failed unexpectedly: {exc!r}")
    return ProbeResult(
        name=probe.name,
        kind=kind,
        result=verdict.result,
        value=verdict.value,
        message=verdict.message,
        duration_seconds=time.monotonic() - started,
    )


def _kind(probe: Probe) -> ProbeKind:
    if probe.http is not None:
        return "http"
    if probe.inference is not None:
        return "inference"
    return "prometheus"


def _new_session() -> aiohttp.ClientSession:
    # No session-wide timeout: each request has its own hard deadline (see transport), and
    # aiohttp's default 5-minute total would otherwise cut longer probe timeouts short.
    # trust_env=False: probes go straight to the model server, never via an HTTP proxy.
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None), trust_env=False)


async def _dispatch(probe: Probe, target: ProbeTarget, session: aiohttp.ClientSession) -> Verdict:
    if probe.http is not None:
        return await _run_http(probe.http, target, session)
    if probe.inference is not None:
        return await _run_inference(probe.inference, target, session)
    if probe.prometheus is not None:
        return await _run_prometheus(probe.prometheus, session)
    raise ValueError(f"probe {probe.name!r} sets no kind")


async def _run_http(
    spec: HttpProbe, target: ProbeTarget, session: aiohttp.ClientSession
) -> Verdict:
    """Attempts until one is final: retry on transport errors and unexpected 5xx only, since
    a 4xx or a wrong body will not change by asking again. The last attempt decides."""
    url = join_url(spec.url or target.base_url, spec.path)
    timeout = parse_duration(spec.timeout).total_seconds()
    deadline = time.monotonic() + (spec.retries + 1) * timeout
    attempts = spec.retries + 1
    verdict = Verdict(Result.RED, None, f"{spec.method} {url}: not attempted")
    for attempt in range(1, attempts + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        suffix = f" (after {attempt} attempts)" if attempt > 1 else ""
        try:
            answer = await exchange(
                session,
                spec.method,
                url,
                time_limit=min(timeout, remaining),
                timeout_text=spec.timeout,
            )
        except TransportError as exc:
            verdict = Verdict(Result.RED, None, f"{exc}{suffix}")
            if exc.timed_out:
                continue
        else:
            verdict = map_http(spec, answer, attempts=attempt)
            if answer.status < 500 or answer.status == spec.expect_status:
                return verdict
        if attempt < attempts:
            await asyncio.sleep(max(0.0, min(RETRY_PAUSE_SECONDS, deadline - time.monotonic())))
    return verdict


async def _run_inference(
    spec: InferenceProbe, target: ProbeTarget, session: aiohttp.ClientSession
) -> Verdict:
    model = spec.model or target.model_name
    base = join_url(spec.url or target.base_url, f"v2/models/{quote(model, safe='')}")
    timeout = parse_duration(spec.timeout).total_seconds()
    deadline = time.monotonic() + timeout
    try:
        ready = await exchange(
            session, "GET", base + "/ready", time_limit=timeout, timeout_text=spec.timeout
        )
        not_ready = map_model_ready(model, ready)
        if not_ready is not None:
            return not_ready
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TransportError(f"POST {base}/infer: no time left within the probe's timeout")
        answer = await exchange(
            session,
            "POST",
            base + "/infer",
            time_limit=remaining,
            json_body=infer_request(spec),
            timeout_text=f"{spec.timeout} (the probe's timeout, shared with the readiness check)",
        )
    except TransportError as exc:
        return Verdict(Result.RED, None, str(exc))
    return map_inference(spec, model, answer)


async def _run_prometheus(spec: PrometheusProbe, session: aiohttp.ClientSession) -> Verdict:
    timeout = parse_duration(spec.timeout).total_seconds()
    url = join_url(spec.url, "api/v1/query")
    params = {"query": spec.query, "timeout": f"{timeout:g}"}  # seconds
    try:
        answer = await exchange(
            session, "GET", url, time_limit=timeout, params=params, timeout_text=spec.timeout
        )
    except TransportError as exc:
        return Verdict(Result.RED, None, str(exc))
    return map_prometheus(spec, answer)
