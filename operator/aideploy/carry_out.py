"""Carries out a plan: records, Deployments, the status, traffic, Events, in that order.

Every write goes through `kube.writes.write`; one the apiserver refuses is reported on the
object (the WritesAccepted condition, the message, one Warning Event, a metric) before it
is raised to the reconciler, which retries with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from aideploy import failpoints
from aideploy.api.constants import KIND, ConditionType
from aideploy.api.status import AIDeploymentStatus, RecordRef
from aideploy.kube.chain_view import ChainView
from aideploy.kube.resources import ConflictError, Resources
from aideploy.kube.writes import WriteRefusedError, write
from aideploy.logic.announce import stored_transition
from aideploy.logic.plan import Event, Observation, Plan
from aideploy.logic.topology import WorkloadChanges
from aideploy.logic.write_failure import (
    WriteFailure,
    accepted_status,
    describe,
    refusal_kept,
    refusal_message,
    refused_status,
    traffic_write,
)
from aideploy.metric_mapping import observe_metrics
from aideploy.metrics import Metrics
from aideploy.records import DeploymentRef, build_record, find_record, next_link
from aideploy.records.signature import RecordSigner

logger = logging.getLogger(__name__)


class Writer:
    def __init__(
        self,
        resources: Resources,
        retention: timedelta,
        signer: RecordSigner | None,
        metrics: Metrics | None,
    ) -> None:
        self._resources = resources
        self._retention = retention
        self._signer = signer
        self._metrics = metrics
        #: By object: the transition whose Event this process knows is posted.
        self._announced: dict[tuple[str, str], str] = {}
        self._chain = ChainView(resources)

    def forget(self, namespace: str, name: str) -> None:
        self._announced.pop((namespace, name), None)
        self._chain.forget(namespace, name)

    def idle(self, obj: dict[str, Any], plan: Plan, now: datetime) -> bool:
        """Whether carrying `plan` out on `obj` would write nothing at all: no record, child,
        Event, annotation or probe, and the status as stored."""
        status = plan.status
        stored = AIDeploymentStatus.salvage(obj.get("status") or {})[0]
        transition = stored_transition(stored, now)
        metadata = obj["metadata"]
        return (
            not plan.records
            and not plan.apply
            and not plan.events
            and not plan.remove_annotations
            and plan.run_probes is None
            and refusal_message(status) is None
            and status.to_wire() == (obj.get("status") or {})
            and (
                transition is None
                or self._announced.get((metadata["namespace"], metadata["name"]))
                == transition.transition
            )
        )

    async def _write_records(
        self,
        obj: dict[str, Any],
        obs: Observation,
        plan: Plan,
        listed: list[dict[str, Any]] | None,
        said: list[str],
    ) -> Plan:
        """Write the plan's records (each exactly once, even across restarts: an event
        already on record is found, not written again) and name the newest in status.
        `listed`: the object's records if already read. Each record's Event message goes
        into `said`, as soon as the record is written, for the caller to post."""
        owner = obs.owner
        records = await self._chain.records(owner, obs.status.latest_record, listed)
        for intent in plan.records:
            if find_record(records, intent.type, intent.generation, intent.match) is not None:
                continue
            link = next_link(records)
            manifest = build_record(
                DeploymentRef(
                    owner.namespace, owner.name, owner.uid, intent.generation, intent.digest
                ),
                intent.type,
                sequence=link.sequence,
                previous_hash=link.previous_hash,
                content=intent.content,
                created_at=obs.now,
                retention=self._retention,
                signer=self._signer,
            )
            written = await write(
                manifest["kind"],
                f"{manifest['spec']['recordId']} ({intent.type.value})",
                "create",
                self._resources.write_record,
                manifest,
            )
            self._chain.wrote(owner.namespace, owner.name, written)
            failpoints.hit(f"after-record:{intent.type.value}")
            records.append(written)
            spec = written["spec"]
            said.append(
                f"{spec['recordId']} ({spec['type']}) written as {written['metadata']['name']}, "
                f"sequence {spec['sequence']}, hash {str(spec['hash'])[:19]}."
            )
        if records:
            last = max(records, key=lambda r: int(r["spec"]["sequence"]))
            latest = RecordRef(
                name=last["metadata"]["name"],
                sequence=int(last["spec"]["sequence"]),
                hash=str(last["spec"]["hash"]),
            )
            plan = replace(plan, status=plan.status.replace(latest_record=latest))
        return plan

    async def _record_events(self, obj: dict[str, Any], obs: Observation, said: list[str]) -> None:
        """The RecordWritten Events, one after the other (they keep the chain's order)."""
        for message in said:
            await asyncio.to_thread(
                self._resources.emit_event, obj, "Normal", "RecordWritten", message, obs.now
            )

    async def _patch_route(self, namespace: str, changes: WorkloadChanges) -> None:
        """The canary's weights. A route edited since it was read is left for the next
        reconcile, which reads it again (the step waits until the route carries it)."""
        if changes.route_patch is None or changes.route_name is None:
            return
        try:
            await write(
                "HTTPRoute",
                changes.route_name,
                "weight patch",
                self._resources.patch_route,
                namespace,
                changes.route_name,
                changes.route_patch,
            )
        except WriteRefusedError as refused:
            if refused.failure.code != 409:
                raise
            logger.info(
                "%s/%s: HTTPRoute changed since it was read; its weights are written again",
                namespace,
                changes.route_name,
            )

    async def _move_traffic(self, obs: Observation, changes: WorkloadChanges) -> None:
        """After the status that reports the decision: a restart then repeats the switch
        the stored decision asks for (skipped once made), instead of taking the decision
        again on probes run anew."""
        namespace = obs.owner.namespace
        if any(s["metadata"]["name"] == obs.owner.name for s in changes.services):
            failpoints.hit("before-traffic-switch")  # the stable Service: what users reach
        if changes.route_first:
            await self._patch_route(namespace, changes)
        for service in changes.services:
            name = service["metadata"]["name"]
            await write("Service", name, "apply", self._resources.apply, service)
        if not changes.route_first:
            await self._patch_route(namespace, changes)
        for name in changes.scale_downs:
            await write(
                "Deployment", name, "scale-down", self._resources.scale_to_zero, namespace, name
            )
        for kind, name in changes.deletes:
            await write(kind, name, "delete", self._resources.delete, kind, namespace, name)

    async def carry_out(
        self,
        obj: dict[str, Any],
        obs: Observation,
        plan: Plan,
        records: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """`records`: the object's records, when the caller has read them already."""
        # The Event of the phase as stored, if it was never posted (a crash, or a post that
        # failed): before this plan's, so that the Events tell the phases in order.
        await self._announce_stored(obj, obs)
        said: list[str] = []
        try:
            try:
                # Records first: nothing is rolled out (or restored) before it is on record.
                if plan.records:
                    plan = await self._write_records(obj, obs, plan, records, said)
                changes = plan.apply
                for deployment in changes.deployments if changes else ():
                    # Pods first; no traffic reaches them yet.
                    name = deployment["metadata"]["name"]
                    await write("Deployment", name, "apply", self._resources.apply, deployment)
            finally:
                # After the applies, which people wait for (Events posted beside them slowed
                # them on a busy apiserver), and whatever became of them: a refused apply
                # or record must not lose the Event of a record made.
                await self._record_events(obj, obs, said)
        except WriteRefusedError as refused:
            await self._report_refusal(obj, obs, refused.failure, planned=plan)
            raise
        later = changes is not None and _after_status(changes)
        status = plan.status
        kept = refusal_message(status)  # carried over from the stored status by decide
        if kept is not None:
            status = (
                _still_refused(status, obj, kept)
                if later
                else accepted_status(status, *obs_at(obs))
            )
        obj = await self._write_status(obj, obs, status.to_wire())
        if changes is not None and later:
            try:
                await self._move_traffic(obs, changes)
            except WriteRefusedError as refused:
                obj = await self._bookkeeping(obj, obs, plan)
                await self._report_refusal(obj, obs, refused.failure, written=status)
                raise
        obj = await self._bookkeeping(obj, obs, plan)
        if later and refusal_kept(status):
            # Best effort: the plan is carried out; a failed flip is made on the next try.
            with contextlib.suppress(ConflictError, WriteRefusedError):
                obj = await self._write_status(
                    obj, obs, accepted_status(plan.status, *obs_at(obs)).to_wire()
                )
        return obj

    async def _write_status(
        self, obj: dict[str, Any], obs: Observation, new_status: dict[str, Any]
    ) -> dict[str, Any]:
        """Compared with what is stored, not with what could be read of it: a field dropped
        as unreadable is rewritten even when the decision itself changed nothing. A refusal
        cannot be written to the status it refuses: its Event and metric still go out."""
        if new_status == (obj.get("status") or {}):
            return obj
        name = obj["metadata"]["name"]
        try:
            return await write(
                "status", name, "write", self._resources.replace_status, obj, new_status
            )
        except WriteRefusedError as refused:
            described = describe(refused.failure, obs.owner.namespace)
            self._count_refusal(obs, refused.failure, described.cause, described.message)
            await asyncio.to_thread(
                self._resources.emit_event,
                obj,
                "Warning",
                described.reason,
                described.message,
                obs.now,
            )
            raise

    def _count_refusal(
        self, obs: Observation, failure: WriteFailure, cause: str, message: str
    ) -> None:
        logger.warning(
            "%s/%s: %s",
            obs.owner.namespace,
            obs.owner.name,
            message,
            extra={"object": f"{obs.owner.namespace}/{obs.owner.name}", "cause": cause},
        )
        if self._metrics is not None:
            self._metrics.record_write_failure(failure.kind, cause)

    async def _report_refusal(
        self,
        obj: dict[str, Any],
        obs: Observation,
        failure: WriteFailure,
        *,
        planned: Plan | None = None,
        written: AIDeploymentStatus | None = None,
    ) -> None:
        """A condition, the message and one Warning Event, saying what refused the write."""
        described = describe(failure, obs.owner.namespace)
        self._count_refusal(obs, failure, described.cause, described.message)
        status = refused_status(
            # As stored, not as decide() saw it (without a refusal's own message or Ready).
            written or AIDeploymentStatus.salvage(obj.get("status") or {})[0],
            described,
            planned=planned.status if planned is not None else None,
            generation=obs.generation,
            now=obs.now,
        )
        with contextlib.suppress(ConflictError, WriteRefusedError):  # said again on the next try
            obj = await self._write_status(obj, obs, status.to_wire())
        await asyncio.to_thread(
            self._resources.emit_event, obj, "Warning", described.reason, described.message, obs.now
        )

    async def _bookkeeping(
        self, obj: dict[str, Any], obs: Observation, plan: Plan
    ) -> dict[str, Any]:
        """Once the plan's status is written: metrics, the log line, Events, and the
        one-shot annotations it consumed."""
        if self._metrics is not None:
            observe_metrics(self._metrics, obs, plan)
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
            await self._post(obj, obs, event)
        if plan.remove_annotations:
            try:
                obj = await write(
                    KIND,
                    obs.owner.name,
                    "removal of the consumed annotations",
                    self._resources.remove_annotations,
                    obj,
                    plan.remove_annotations,
                )
            except WriteRefusedError as refused:
                await self._report_refusal(obj, obs, refused.failure, written=plan.status)
                raise
        return obj

    async def _announce_stored(self, obj: dict[str, Any], obs: Observation) -> None:
        """The stored phase's Event, once per process, where its post may have been lost
        (see logic.announce): after a restart, a first POST that usually finds it."""
        status = AIDeploymentStatus.salvage(obj.get("status") or {})[0]
        event = stored_transition(status, obs.now)
        if event is not None and self._announced.get(_where(obs)) != event.transition:
            await self._post(obj, obs, event)

    async def _post(self, obj: dict[str, Any], obs: Observation, event: Event) -> None:
        """Post one Event; a transition's, once posted, is not announced again."""
        posted = await asyncio.to_thread(
            self._resources.emit_event,
            obj,
            event.type,
            event.reason,
            event.message,
            obs.now,
            event.transition,
        )
        if posted and event.transition:
            self._announced[_where(obs)] = event.transition


def _where(obs: Observation) -> tuple[str, str]:
    return obs.owner.namespace, obs.owner.name


def obs_at(obs: Observation) -> tuple[int, datetime]:
    return obs.generation, obs.now


def _after_status(changes: WorkloadChanges) -> bool:
    """Whether the plan writes anything after its status (traffic, scale-downs, deletes)."""
    return bool(changes.services or changes.route_patch or changes.scale_downs or changes.deletes)


def _still_refused(
    status: AIDeploymentStatus, obj: dict[str, Any], kept: str
) -> AIDeploymentStatus:
    """The plan's status while the refused write is tried again: the refusal's message,
    and its Ready where it holds users back, stay as stored, so that a refusal that
    persists rewrites nothing (and wakes nothing)."""
    status = status.replace(message=kept)
    if not traffic_write(kept):
        return status
    stored = AIDeploymentStatus.salvage(obj.get("status") or {})[0]
    ready = stored.condition(ConditionType.READY)
    if ready is None:
        return status
    return status.replace(
        conditions=[ready if c.type == ConditionType.READY else c for c in status.conditions]
    )
