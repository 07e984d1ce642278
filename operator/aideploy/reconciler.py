"""Gathers what `decide` needs, and carries out the plan it returns.

When a plan asks for probes, the reconciler writes the plan's status first (so people see
`Verifying` while probes run), runs them, and asks `decide` again with their results.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aideploy.admission.config import PodPolicy
from aideploy.api.constants import KIND
from aideploy.api.records import DEFAULT_RETENTION
from aideploy.carry_out import Writer
from aideploy.controller import ObjectKey
from aideploy.kube.child_cache import ChildCache
from aideploy.kube.child_lists import ChildLists
from aideploy.kube.children import read_children, read_records, read_staging
from aideploy.kube.observe import observe
from aideploy.kube.record_lists import RecordLists
from aideploy.kube.resources import ConflictError, Resources
from aideploy.kube.writes import TRANSPORT, WriteRefusedError
from aideploy.logic.gate import ApprovalPolicy
from aideploy.logic.machine import decide
from aideploy.logic.plan import Observation, Plan, ProbeRequest, ProbeRun
from aideploy.logic.topology import Workloads
from aideploy.logic.write_failure import (
    retry_after,
)
from aideploy.metrics import Metrics
from aideploy.peering import PeeringGuard
from aideploy.preemption import Preemption, Seen, actions_of
from aideploy.probes import ProbeTarget, run_probes
from aideploy.probing import ProbeRunner, probe_target, run_until_stopped
from aideploy.records.signature import RecordSigner
from aideploy.settling import Settling, Wake

logger = logging.getLogger(__name__)

CONFLICT_RETRY = timedelta(milliseconds=200)
#: How long probe results whose writes were refused are decided on again, not re-measured.
RESULT_MAX_AGE = timedelta(minutes=5)
#: First reconciles (at start, every object's) in flight at once.
FIRST_RECONCILES = 64


class _ProbesStoppedError(Exception):
    """No verdict may be waited for any longer (an action, a new spec, the deadline)."""


#: How many fresh reads a probe result is decided on before it is given up (and run again).
RESULT_ATTEMPTS = 5
STANDBY_RECHECK = timedelta(seconds=30)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ReconcilerSettings:
    """Operator-wide settings. `probe_base_url` replaces the child Service's URL for probes
    that name none (tests, and networks where the operator cannot reach Services); it may
    name the Service with {namespace}, {service} and {port} (logic/probe_url.py)."""

    probe_base_url: str | None = None
    #: Replaces the preview Service's URL (probes of a blue-green candidate).
    probe_preview_url: str | None = None
    cluster_domain: str = "cluster.local"
    record_retention: timedelta = DEFAULT_RETENTION
    approval_policy: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    pod_policy: PodPolicy | None = None
    record_signer: RecordSigner | None = None


class Reconciler:
    def __init__(
        self,
        resources: Resources,
        settings: ReconcilerSettings | None = None,
        clock: Callable[[], datetime] = utcnow,
        probe_runner: ProbeRunner = run_probes,
        metrics: Metrics | None = None,
        peering: PeeringGuard | None = None,
        children: ChildCache | None = None,
    ) -> None:
        self._resources = resources
        #: Every child of the watched namespaces, as the informers last saw it.
        self._children = children
        self._metrics = metrics
        self._peering = peering
        self._settings = settings or ReconcilerSettings()
        self._clock = clock
        self._run_probes = probe_runner
        self._writer = Writer(
            resources, self._settings.record_retention, self._settings.record_signer, metrics
        )
        self._slots = asyncio.Semaphore(FIRST_RECONCILES)
        #: Objects reconciled once by this process (their first reconcile takes a slot),
        #: and those whose first reconcile holds one now.
        self._known: set[ObjectKey] = set()
        self._holding: set[ObjectKey] = set()
        #: What each running plan was decided on: a person's new action stops its probes.
        self._preemption = Preemption()
        #: Refused writes in a row, per object, and until when the next attempt waits.
        self._refusals: dict[ObjectKey, int] = {}
        self._backoff: dict[ObjectKey, tuple[datetime, Seen]] = {}
        #: Probe results measured but not yet carried out (a refused or conflicting
        #: write): decided on again, not measured again.
        self._results: dict[ObjectKey, tuple[datetime, ProbeRun]] = {}
        #: Objects as this process wrote them with nothing left to do (aideploy.settling).
        self._settling = Settling()
        #: Children of objects reconciled at the same time, read with shared lists.
        self._lists = ChildLists(resources)
        #: Records of objects approved at the same time, read with shared lists.
        self._record_lists = RecordLists(resources)

    def woken_by_event(
        self, key: ObjectKey, resource_version: object, body: dict[str, Any] | None = None
    ) -> None:
        """A watch event of the object itself (before the controller is triggered)."""
        self._settling.event(key, resource_version, body)

    def woken_otherwise(self, key: ObjectKey) -> None:
        """Anything else that triggers the object (a child, a staging object it follows)."""
        self._settling.nudge(key)

    async def __call__(self, key: ObjectKey) -> timedelta | None:
        namespace = key[0]
        if self._peering is not None and not await self._peering.active(namespace):
            return STANDBY_RECHECK  # another replica is active; look again later
        wake = self._settling.take(key, self._clock())
        if wake.skip:
            # The event of this process's own write, already decided on: nothing to do.
            _log_reconciled(key, wake.resource_version)
            return wake.requeue
        if key in self._known:
            return await self._reconcile(key, wake)
        # At start every object is due at once: their first reconciles go a few at a time,
        # not thousands at once each holding its object, children and plan (the peak of
        # the operator's memory). Later ones (a burst of approvals) are not held back, and
        # a slot is let go before probes run (they may take minutes).
        await self._slots.acquire()
        self._holding.add(key)
        try:
            return await self._reconcile(key, wake)
        finally:
            self._let_go(key)

    def _let_go(self, key: ObjectKey) -> None:
        if key in self._holding:
            self._holding.discard(key)
            self._slots.release()
            self._known.add(key)

    def forget(self, key: ObjectKey) -> None:
        """The object is gone: nothing kept for it may reach one created under its name."""
        for kept in (self._refusals, self._backoff, self._results):
            kept.pop(key, None)
        self._writer.forget(*key)
        self._known.discard(key)
        self._settling.forget(key)

    async def _reconcile(self, key: ObjectKey, wake: Wake | None = None) -> timedelta | None:
        """After a person's change to an object this process settled (typically an
        approval), the reconcile starts from the object as the watch event brought it and
        reads its records beside its children: two round trips fewer on the way from an
        approval to its Deployment. A stale body costs a conflict on the status write."""
        namespace, name = key
        wake = wake or Wake(skip=False)
        self._settling.unsettle(key)
        obj = wake.body
        if obj is None:
            obj = await asyncio.to_thread(self._resources.get, KIND, namespace, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            self.forget(key)
            return None
        if (waiting := self._backing_off(key, obj)) is not None:
            return waiting
        observed = obj["metadata"].get("resourceVersion")
        # The records are read while the rest is read and decided on: decide() does not
        # need them, and the writes do not start before they are in.
        reading = asyncio.create_task(
            read_records(self._resources, obj, wake.changed, self._record_lists)
        )
        await asyncio.sleep(0)  # sent before decide() holds the loop
        try:
            children, staging = await asyncio.gather(
                read_children(self._resources, obj, self._lists, self._children),
                read_staging(self._resources, obj),
            )
            observation = self._observe(key, obj, children, staging)
            plan = decide(observation)
            records = await reading
        finally:  # on a failure above, the read is let go and its outcome taken
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
        try:
            written = await self._act(key, obj, observation, plan, staging, records)
        except _ProbesStoppedError:
            return timedelta(0)  # decide now: on the action, the new spec or the deadline
        except ConflictError:
            logger.debug("status conflict, reconciling again", extra={"object": name})
            if self._metrics is not None:
                self._metrics.record_reconcile("conflict")
            return CONFLICT_RETRY
        except WriteRefusedError:
            # Reported on the object already; try again later, not at once.
            if self._metrics is not None:
                self._metrics.record_reconcile("error")
            return self._back_off(key, obj)
        self._refusals.pop(key, None)
        if self._metrics is not None:
            self._metrics.record_reconcile("ok")
        _log_reconciled(key, observed)
        if written is not None and not plan.apply:
            self._settle(key, obj, written, plan, children, staging)
        return plan.requeue_after

    def _observe(
        self,
        key: ObjectKey,
        obj: dict[str, Any],
        children: Workloads,
        staging: dict[str, Any] | None,
    ) -> Observation:
        return observe(
            obj,
            children,
            self._clock(),
            self._kept_result(key),  # measured, and not yet carried out
            staging=staging,
            policy=self._settings.approval_policy,
            pod_policy=self._settings.pod_policy,
        )

    def _settle(
        self,
        key: ObjectKey,
        read: dict[str, Any],
        written: dict[str, Any],
        plan: Plan,
        children: Workloads,
        staging: dict[str, Any] | None,
    ) -> None:
        """After a plan that changed no child: decide once more on the object as written
        and the children as just read (unchanged by the plan). When that writes nothing,
        the watch event of this write needs no reconcile (aideploy.settling)."""
        version = written["metadata"].get("resourceVersion")
        if not isinstance(version, str) or key in self._backoff:
            return
        observation = self._observe(key, written, children, staging)
        if version != read["metadata"].get("resourceVersion"):
            plan = decide(observation)
        if not self._writer.idle(written, plan, observation.now):
            return
        due = None if plan.requeue_after is None else observation.now + plan.requeue_after
        self._settling.settle(key, version, due)

    async def _act(
        self,
        key: ObjectKey,
        obj: dict[str, Any],
        observation: Observation,
        plan: Plan,
        staging: dict[str, Any] | None,
        records: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any] | None:
        """Carry the plan out; run the probes it asks for and carry out what is decided on
        them. Watched from before the first write, so that an action arriving while the
        plan is carried out still stops the probes. Returns the object as written, for a
        plan without probes (None after probes: decided on again in full)."""
        if plan.run_probes is None:
            written = await self._writer.carry_out(obj, observation, plan, records)
            self._results.pop(key, None)
            return written
        seen = self._preemption.watch(key, observation.generation, observation.annotations)
        try:
            obj = await self._writer.carry_out(obj, observation, plan)
            self._results.pop(key, None)
            self._let_go(key)
            run = await self._probe(observation, plan.run_probes, seen.stop)
        finally:
            self._preemption.release(key, seen)
        if run is None:
            raise _ProbesStoppedError
        try:
            await self._decide_on(obj, run, staging)
        except (ConflictError, WriteRefusedError, *TRANSPORT):
            if run.purpose != "monitoring":  # a later check runs anyway; a verdict must not
                self._results[key] = (self._clock(), run)  # be measured twice
            raise
        self._results.pop(key, None)
        return None

    def _kept_result(self, key: ObjectKey) -> ProbeRun | None:
        """A verdict kept while its write was refused, for as long as it is recent: a
        go-live must not rest on probes run long ago (they are run again then)."""
        kept = self._results.get(key)
        if kept is None:
            return None
        measured_at, run = kept
        if self._clock() - measured_at > RESULT_MAX_AGE:
            del self._results[key]
            return None
        return run

    def preempt(self, key: ObjectKey, generation: object, annotations: Mapping[str, str]) -> None:
        """A watch event: a person's new action or a new spec stops the wait for probes."""
        self._preemption.event(key, generation, annotations)

    def _backing_off(self, key: ObjectKey, obj: dict[str, Any]) -> timedelta | None:
        """While a refused write backs off, the events the operator's own writes cause do
        not bring the next attempt forward; a new spec or a person's action does."""
        backoff = self._backoff.get(key)
        if backoff is None:
            return None
        until, seen = backoff
        metadata = obj["metadata"]
        remaining = until - self._clock()
        if remaining <= timedelta(0) or seen.superseded_by(
            metadata.get("generation"), metadata.get("annotations") or {}
        ):
            del self._backoff[key]
            return None
        return remaining

    def _back_off(self, key: ObjectKey, obj: dict[str, Any]) -> timedelta:
        attempts = self._refusals[key] = self._refusals.get(key, 0) + 1
        delay = retry_after(attempts)
        metadata = obj["metadata"]
        seen = Seen(
            int(metadata.get("generation", 1)), actions_of(metadata.get("annotations") or {})
        )
        self._backoff[key] = (self._clock() + delay, seen)
        return delay

    async def _decide_on(
        self, obj: dict[str, Any], run: ProbeRun, staging: dict[str, Any] | None
    ) -> None:
        """Decide on probes that were run, and carry it out. The probes ran against a
        release, not a resourceVersion: a status write refused because the object changed
        meanwhile (an annotation, a label) is decided again on the fresh object with the
        same results, instead of running the probes anew (which a steady trickle of edits
        would otherwise repeat until the verification timed out). decide() uses the run
        only if it is for the release the fresh object still rolls out."""
        metadata = obj["metadata"]
        for attempt in range(1, RESULT_ATTEMPTS + 1):
            children = await read_children(self._resources, obj, self._lists, self._children)
            observation = observe(
                obj,
                children,
                self._clock(),
                run,
                staging,
                self._settings.approval_policy,
                self._settings.pod_policy,
            )
            try:
                await self._writer.carry_out(obj, observation, decide(observation))
                return
            except ConflictError:
                if attempt == RESULT_ATTEMPTS:
                    raise
                if self._metrics is not None:
                    self._metrics.record_reconcile("conflict")
                fresh = await asyncio.to_thread(
                    self._resources.get, KIND, metadata["namespace"], metadata["name"]
                )
                if fresh is None or fresh["metadata"].get("deletionTimestamp"):
                    return
                obj = fresh

    def _target(self, obs: Observation, request: ProbeRequest) -> ProbeTarget:
        settings = self._settings
        return probe_target(
            obs,
            request,
            settings.cluster_domain,
            settings.probe_base_url,
            settings.probe_preview_url,
        )

    async def _probe(
        self, obs: Observation, request: ProbeRequest, stop: asyncio.Event | None = None
    ) -> ProbeRun | None:
        target = self._target(obs, request)
        return await run_until_stopped(
            self._run_probes,
            obs,
            request,
            target,
            stop or asyncio.Event(),
            self._clock,
            self._metrics,
        )


def _log_reconciled(key: ObjectKey, resource_version: object) -> None:
    """Evidence for tests and for people reading a --verbose log: the object was decided
    on at this resourceVersion, and everything that decision asked for is done."""
    namespace, name = key
    logger.debug(
        "reconciled %s/%s resourceVersion=%s",
        namespace,
        name,
        resource_version,
        extra={"object": f"{namespace}/{name}", "resourceVersion": resource_version},
    )
