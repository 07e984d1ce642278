"""Gathers what `decide` needs, and carries out the plan it returns.

When a plan asks for probes, the reconciler writes the plan's status first (so people see
`Verifying` while probes run), runs them, and asks `decide` again with their results.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aideploy.api.constants import KIND
from aideploy.api.spec import Probe
from aideploy.api.status import AIDeploymentStatus, ProbeOutcome
from aideploy.controller import ObjectKey
from aideploy.kube.resources import ConflictError, Resources
from aideploy.logic.conditions import rfc3339
from aideploy.logic.machine import decide
from aideploy.logic.plan import Observation, Plan, ProbeRequest, ProbeRun
from aideploy.logic.workload import Owner
from aideploy.probes import ProbeResult, ProbeTarget, run_probes

logger = logging.getLogger(__name__)

CONFLICT_RETRY = timedelta(milliseconds=200)
ProbeRunner = Callable[[Sequence[Probe], ProbeTarget], Awaitable[list[ProbeResult]]]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ReconcilerSettings:
    """Operator-wide settings. `probe_base_url` replaces the child Service's URL for probes
    that name none (tests, and networks where the operator cannot reach Services)."""

    probe_base_url: str | None = None
    cluster_domain: str = "cluster.local"


class Reconciler:
    def __init__(
        self,
        resources: Resources,
        settings: ReconcilerSettings | None = None,
        clock: Callable[[], datetime] = utcnow,
        probe_runner: ProbeRunner = run_probes,
    ) -> None:
        self._resources = resources
        self._settings = settings or ReconcilerSettings()
        self._clock = clock
        self._run_probes = probe_runner

    async def __call__(self, key: ObjectKey) -> timedelta | None:
        namespace, name = key
        obj = await asyncio.to_thread(self._resources.get, KIND, namespace, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return None
        deployment = await asyncio.to_thread(self._resources.get, "Deployment", namespace, name)
        staging = await self._staging(obj)
        observation = observe(obj, deployment, self._clock(), staging=staging)
        plan = decide(observation)
        try:
            obj = await self._carry_out(obj, observation, plan)
            if plan.run_probes is not None:
                run = await self._probe(observation, plan.run_probes)
                deployment = await asyncio.to_thread(
                    self._resources.get, "Deployment", namespace, name
                )
                observation = observe(obj, deployment, self._clock(), run, staging)
                plan = decide(observation)
                obj = await self._carry_out(obj, observation, plan)
        except ConflictError:
            logger.debug("status conflict, reconciling again", extra={"object": name})
            return CONFLICT_RETRY
        return plan.requeue_after

    async def _staging(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """The staging object a production spec promotes from, read fresh each time."""
        promotion = (obj.get("spec") or {}).get("promotion") or {}
        staging_name = promotion.get("fromStaging")
        if not isinstance(staging_name, str) or not staging_name:
            return None
        return await asyncio.to_thread(
            self._resources.get, KIND, obj["metadata"]["namespace"], staging_name
        )

    def _target(self, obs: Observation, request: ProbeRequest) -> ProbeTarget:
        spec_model = (obs.raw_spec.get("model") or {}).get("name", obs.owner.name)
        base = self._settings.probe_base_url or (
            f"http://{obs.owner.name}.{obs.owner.namespace}.svc."
            f"{self._settings.cluster_domain}:{request.port}"
        )
        return ProbeTarget(base_url=base, model_name=str(spec_model))

    async def _probe(self, obs: Observation, request: ProbeRequest) -> ProbeRun:
        results = await self._run_probes(request.probes, self._target(obs, request))
        at = rfc3339(self._clock())
        outcomes = tuple(
            ProbeOutcome(
                name=r.name,
                kind=r.kind,
                result=r.result.value,
                value=r.value,
                message=r.message,
                at=at,
            )
            for r in results
        )
        for outcome in outcomes:
            logger.debug("probe %s: %s %s", outcome.name, outcome.result, outcome.message)
        return ProbeRun(purpose=request.purpose, digest=request.digest, outcomes=outcomes)

    async def _carry_out(self, obj: dict[str, Any], obs: Observation, plan: Plan) -> dict[str, Any]:
        if plan.apply is not None:
            await asyncio.to_thread(self._resources.apply, plan.apply.service)
            await asyncio.to_thread(self._resources.apply, plan.apply.deployment)
        new_status = plan.status.to_wire()
        if new_status != obs.status.to_wire():
            obj = await asyncio.to_thread(self._resources.replace_status, obj, new_status)
        if plan.status.phase != obs.status.phase:
            logger.info(
                "%s/%s: %s -> %s: %s",
                obs.owner.namespace,
                obs.owner.name,
                obs.status.phase or "-",
                plan.status.phase,
                plan.status.message,
            )
        for event in plan.events:
            await asyncio.to_thread(
                self._resources.emit_event, obj, event.type, event.reason, event.message, obs.now
            )
        if plan.remove_annotations:
            obj = await asyncio.to_thread(
                self._resources.remove_annotations, obj, plan.remove_annotations
            )
        return obj


def observe(
    obj: dict[str, Any],
    deployment: dict[str, Any] | None,
    now: datetime,
    probe_run: ProbeRun | None = None,
    staging: dict[str, Any] | None = None,
) -> Observation:
    metadata = obj["metadata"]
    return Observation(
        owner=Owner(name=metadata["name"], namespace=metadata["namespace"], uid=metadata["uid"]),
        generation=int(metadata.get("generation", 1)),
        annotations=dict(metadata.get("annotations") or {}),
        raw_spec=obj.get("spec") or {},
        status=AIDeploymentStatus.model_validate(obj.get("status") or {}),
        deployment=deployment,
        now=now,
        probe_run=probe_run,
        staging=staging,
    )
