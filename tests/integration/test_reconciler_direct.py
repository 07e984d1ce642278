"""The reconciler driven directly, in-process, against the real apiserver: its clock and
its probe runner are the seams, so what it writes can be checked to the second and for the
exact probes and target it asked for, with no operator process and no model server."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client

from aideploy.api.spec import Probe, Result
from aideploy.kube.resources import Resources
from aideploy.kube.rest import Rest
from aideploy.probes import ProbeResult, ProbeTarget
from aideploy.reconciler import Reconciler, ReconcilerSettings
from tests.support import aid
from tests.support.kubelet import mark_deployment_available
from tests.unit.factories import gate_annotations, make_spec

pytestmark = pytest.mark.integration

NAME = "direct"
CLOCK = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
PROBE_BASE = "http://probe-target.invalid:9999"


class FakeProbes:
    """Answers every probe with the result it was given, and remembers what it was asked."""

    def __init__(self, result: Result) -> None:
        self.result = result
        self.asked: list[tuple[list[str], ProbeTarget]] = []

    async def __call__(self, probes: Sequence[Probe], target: ProbeTarget) -> list[ProbeResult]:
        self.asked.append(([p.name for p in probes], target))
        return [
            ProbeResult(
                name=p.name,
                kind="http",
                result=self.result,
                value="200",
                message=f"the fake said {self.result.value}",
                duration_seconds=0.01,
            )
            for p in probes
        ]


def _spec() -> dict[str, object]:
    probe = {"name": "ready", "http": {"path": "/v2/health/ready", "timeout": "2s"}}
    return make_spec("minimal", verification={"timeout": "60s", "probes": [probe]})


def _child_name(rest: Rest, namespace: str) -> str:
    """The release's own Deployment (`<name>-<release id>` under blue-green)."""
    child = aid.child_deployment(rest, namespace, NAME)
    assert child is not None
    return str(child["metadata"]["name"])


def _reconciler(rest: Rest, probes: FakeProbes, now: list[datetime]) -> Reconciler:
    return Reconciler(
        Resources(rest),
        ReconcilerSettings(probe_base_url=PROBE_BASE),
        clock=lambda: now[0],
        probe_runner=probes,
    )


@pytest.mark.parametrize(
    ("result", "phase", "decision"),
    [(Result.GREEN, "Succeeded", "GREEN"), (Result.RED, "Failed", "RED")],
)
def test_reconciler_uses_its_clock_and_probe_runner(
    rest: Rest,
    kube_api: client.ApiClient,
    namespace: str,
    crds: list[str],
    result: Result,
    phase: str,
    decision: str,
) -> None:
    spec = _spec()
    aid.create(rest, namespace, aid.manifest(NAME, spec, gate_annotations(spec)))
    probes = FakeProbes(result)
    now = [CLOCK]
    reconcile = _reconciler(rest, probes, now)

    asyncio.run(reconcile((namespace, NAME)))
    status = aid.status(rest, namespace, NAME)
    assert status["phase"] == "Deploying", status
    assert status["phaseTransitionTime"] == "2026-03-02T10:00:00Z"  # the injected clock
    assert aid.child_deployment(rest, namespace, NAME) is not None
    assert probes.asked == []  # nothing is probed before the release is available

    mark_deployment_available(client.AppsV1Api(kube_api), namespace, _child_name(rest, namespace))
    now[0] = CLOCK + timedelta(seconds=30)
    asyncio.run(reconcile((namespace, NAME)))

    status = aid.status(rest, namespace, NAME)
    (asked,) = probes.asked
    assert asked[0] == ["ready"] and asked[1].base_url == PROBE_BASE
    assert status["decision"] == decision
    assert status["phase"] == phase, status
    (outcome,) = status["verification"]["probes"]
    assert outcome["result"] == decision and outcome["at"] == "2026-03-02T10:00:30Z"
    assert status["phaseTransitionTime"] == "2026-03-02T10:00:30Z"


def test_reconciling_a_settled_object_again_writes_nothing(
    rest: Rest, kube_api: client.ApiClient, namespace: str, crds: list[str]
) -> None:
    spec = _spec()
    aid.create(rest, namespace, aid.manifest(NAME, spec, gate_annotations(spec)))
    probes = FakeProbes(Result.GREEN)
    now = [CLOCK]
    reconcile = _reconciler(rest, probes, now)
    asyncio.run(reconcile((namespace, NAME)))
    mark_deployment_available(client.AppsV1Api(kube_api), namespace, _child_name(rest, namespace))
    asyncio.run(reconcile((namespace, NAME)))
    settled = aid.get(rest, namespace, NAME)
    assert settled["status"]["phase"] == "Succeeded"

    now[0] = CLOCK + timedelta(hours=1)
    requeue = asyncio.run(reconcile((namespace, NAME)))
    again = aid.get(rest, namespace, NAME)
    assert again["metadata"]["resourceVersion"] == settled["metadata"]["resourceVersion"]
    assert requeue is None
    assert len(probes.asked) == 1  # a settled release is not probed again
