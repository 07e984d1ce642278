"""Gathers what `decide` needs, and carries out the plan it returns."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aideploy.api.constants import KIND
from aideploy.api.status import AIDeploymentStatus
from aideploy.controller import ObjectKey
from aideploy.kube.resources import ConflictError, Resources
from aideploy.logic.machine import Observation, Plan, decide
from aideploy.logic.workload import Owner

logger = logging.getLogger(__name__)

CONFLICT_RETRY = timedelta(milliseconds=200)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Reconciler:
    def __init__(self, resources: Resources, clock: Callable[[], datetime] = utcnow) -> None:
        self._resources = resources
        self._clock = clock

    async def __call__(self, key: ObjectKey) -> timedelta | None:
        namespace, name = key
        obj = await asyncio.to_thread(self._resources.get, KIND, namespace, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return None
        deployment = await asyncio.to_thread(self._resources.get, "Deployment", namespace, name)
        observation = observe(obj, deployment, self._clock())
        plan = decide(observation)
        try:
            await self._carry_out(obj, observation, plan)
        except ConflictError:
            logger.debug("status conflict, reconciling again", extra={"object": name})
            return CONFLICT_RETRY
        return plan.requeue_after

    async def _carry_out(self, obj: dict[str, Any], obs: Observation, plan: Plan) -> None:
        if plan.apply is not None:
            await asyncio.to_thread(self._resources.apply, plan.apply.service)
            await asyncio.to_thread(self._resources.apply, plan.apply.deployment)
        new_status = plan.status.to_wire()
        if new_status != obs.status.to_wire():
            updated = await asyncio.to_thread(self._resources.replace_status, obj, new_status)
            obj = updated
        if plan.status.phase != obs.status.phase:
            logger.info(
                "%s/%s: %s -> %s",
                obs.owner.namespace,
                obs.owner.name,
                obs.status.phase or "-",
                plan.status.phase,
            )
        for event in plan.events:
            await asyncio.to_thread(
                self._resources.emit_event, obj, event.type, event.reason, event.message, obs.now
            )


def observe(obj: dict[str, Any], deployment: dict[str, Any] | None, now: datetime) -> Observation:
    metadata = obj["metadata"]
    return Observation(
        owner=Owner(name=metadata["name"], namespace=metadata["namespace"], uid=metadata["uid"]),
        generation=int(metadata.get("generation", 1)),
        annotations=dict(metadata.get("annotations") or {}),
        raw_spec=obj.get("spec") or {},
        status=AIDeploymentStatus.model_validate(obj.get("status") or {}),
        deployment=deployment,
        now=now,
    )
