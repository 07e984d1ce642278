"""Shared verdict helpers: the worst of several probe results, in words, and which probes
a phase needs run."""

from __future__ import annotations

from aideploy.api.spec import AIDeploymentSpec, Analysis, Result
from aideploy.api.status import ProbeOutcome, Release
from aideploy.logic.plan import ProbePurpose, ProbeRequest
from aideploy.logic.workload import serving_port


def worst(outcomes: tuple[ProbeOutcome, ...] | list[ProbeOutcome]) -> Result | None:
    if not outcomes:
        return None
    return max((o.result for o in outcomes), key=lambda r: r.severity)


def describe(outcomes: list[ProbeOutcome] | tuple[ProbeOutcome, ...], result: Result) -> str:
    """`probe error-rate: 0.09 (above 0.05)`-style list of the probes with that result."""
    parts = [
        f"{o.name}: {o.message}" + (f" (value {o.value})" if o.value is not None else "")
        for o in outcomes
        if o.result == result
    ]
    return "; ".join(parts)


def analysis_request(
    spec: AIDeploymentSpec, release: Release, analysis: Analysis, service: str
) -> ProbeRequest | None:
    """A canary analysis step: the verification probes (those without a URL reach the
    canary through `service`), the monitoring signals, or both."""
    probes = tuple(spec.verification.probes) if analysis.probes else ()
    if analysis.signals and spec.monitoring is not None:
        probes += tuple(spec.monitoring.signals)
    if not probes:
        return None
    return ProbeRequest(
        purpose="analysis",
        digest=release.digest,
        probes=probes,
        port=serving_port(release, spec.serving.port),
        service=service,
    )


def probe_request(
    spec: AIDeploymentSpec, release: Release, purpose: ProbePurpose, service: str
) -> ProbeRequest | None:
    probes = tuple(spec.verification.probes)
    if purpose == "monitoring":
        probes = tuple(spec.monitoring.signals) if spec.monitoring else ()
    if not probes:
        return None
    return ProbeRequest(
        purpose=purpose,
        digest=release.digest,
        probes=probes,
        port=serving_port(release, spec.serving.port),
        service=service,
    )
