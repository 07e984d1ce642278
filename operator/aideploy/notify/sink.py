"""One sink's delivery loop: what its AIDeployments have yet to tell it, sent in order, the
cursor moved after each delivery.

Each sink has its own task, so a sink that is down or refuses everything (4xx) holds back
only itself. An event the sink refuses holds back that AIDeployment's later events
(order per AIDeployment), not the next AIDeployments'; a sink that does not answer stops
the pass. Either is retried with exponential backoff, and is reported in the sink's
condition, an Event and the metrics.
The records are the outbox: memory holds at most QUEUE_LIMIT events of one pass, and an
operator restart continues from the cursors in the notifier's status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final, TypeVar

import aiohttp

from aideploy.api import notifier as api
from aideploy.api.durations import parse_duration
from aideploy.api.notifier import EventKind, NotifierSpec, Sink
from aideploy.api.status import Condition
from aideploy.api.times import parse_time, rfc3339
from aideploy.kube.records import list_records
from aideploy.kube.rest import Rest
from aideploy.logic.conditions import set_condition
from aideploy.logic.notify_events import Notification, Waiting, record_notifications
from aideploy.logic.notify_route import (
    Cursor,
    already_told,
    approvals_due,
    labels_of,
    pending,
    reads_records,
    risk_of,
    selects,
    settled,
    sink_takes,
    start_cursor,
    wait_forgotten,
    waiting_of,
    with_waiting,
)
from aideploy.metrics import Metrics
from aideploy.notify import store
from aideploy.notify.send import Outcome, Sent, send

logger = logging.getLogger(__name__)

QUEUE_LIMIT: Final = 1000
MAX_BACKOFF: Final = 30.0
T = TypeVar("T")


@dataclass(frozen=True)
class Assignment:
    """A sink as its notifier says it now: re-read on every pass of the worker."""

    notifier: dict[str, Any]
    spec: NotifierSpec
    sink: Sink
    #: The operator's default notifier: it reports on every watched namespace's
    #: AIDeployments that no notifier of their own namespace selects.
    default: bool = False
    scope: tuple[str, ...] = ()
    #: Which (namespace, labels) a namespaced notifier selects, for the default to skip.
    covered: Callable[[Mapping[str, Any]], bool] = lambda _obj: False


def _sequence(record: Mapping[str, Any]) -> int:
    return int((record.get("spec") or {}).get("sequence", 0))


class SinkWorker:
    def __init__(
        self,
        rest: Rest,
        executor: Executor,
        metrics: Metrics,
        cluster: str,
        assignment: Assignment,
        active: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self._rest = rest
        self._executor = executor
        self._metrics = metrics
        self._cluster = cluster
        self.assignment = assignment
        #: With peering: whether this replica is the one that works on a namespace now.
        self._active = active
        self._standing_by = False
        #: The default notifier's namespaces this replica delivers for (namespaced peering).
        self._active_namespaces: frozenset[str] = frozenset()
        meta = assignment.notifier["metadata"]
        self.label = f"{meta['namespace']}/{meta['name']}/{assignment.sink.name}"
        self._load(assignment.notifier)
        self._backoff = 0.0

    def _load(self, notifier: Mapping[str, Any]) -> None:
        """Cursors and conditions as the status has them: authoritative from then on, as
        this task is the only writer of its sink's status."""
        status = (notifier.get("status") or {}).get("sinks") or {}
        mine = status.get(self.assignment.sink.name) or {}
        raw = mine.get("cursors") or {}
        self._cursors: dict[str, Cursor] = {
            uid: c for uid, w in raw.items() if (c := Cursor.from_wire(w)) is not None
        }
        #: The uids whose cursor is in the status (a new one is written before delivering).
        self._persisted: set[str] = set(self._cursors)
        self._conditions = [Condition.model_validate(c) for c in mine.get("conditions") or []]
        since = mine.get("since")
        self._since = parse_time(since) if isinstance(since, str) else None

    async def _start(self) -> datetime:
        """From when this sink is told about records: kept in its status the first time.
        A sink of the notifier as created starts at its creation; one added later starts
        when it is first seen, so that adding a sink replays no history."""
        if self._since is None:
            meta = self.assignment.notifier["metadata"]
            created = meta.get("creationTimestamp")
            original = int(meta.get("generation") or 1) == 1 and isinstance(created, str)
            self._since = parse_time(created) if original else datetime.now(UTC)
            await self._patch({"since": rfc3339(self._since)})
        return self._since

    async def _may_deliver(self) -> bool:
        """With peering, only the active replica delivers; one that takes over reads the
        cursors afresh, as the replica before it moved them."""
        if self._active is None:
            return True
        meta = self.assignment.notifier["metadata"]
        if self.assignment.default:
            return True  # its AIDeployments are in other namespaces: checked each in _queue
        if not await self._active(meta["namespace"]):
            self._standing_by = True
            return False
        return await self._took_over()

    async def _took_over(self) -> bool:
        """After standing by: the cursors as the replica before this one left them."""
        meta = self.assignment.notifier["metadata"]
        if self._standing_by:
            fresh = await self._io(store.get_notifier, self._rest, meta["namespace"], meta["name"])
            if fresh is None:
                return False
            self._load(fresh)
            self._standing_by = False
        return True

    async def _io(self, call: Callable[..., T], *args: Any) -> T:
        """Blocking cluster calls run on the notifications' own threads, never on the
        ones the reconciles use."""
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, partial(call, *args)
        )

    async def run(self, session: aiohttp.ClientSession, interval: float) -> None:
        while True:
            try:
                ok = await self.deliver_pass(session)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the loop must outlive any one bad pass
                logger.warning(
                    "notifications %s: pass failed: %s", self.label, type(error).__name__
                )
                ok = False
            self._backoff = 0.0 if ok else min(max(1.0, self._backoff * 2), MAX_BACKOFF)
            await asyncio.sleep(self._backoff or interval)

    async def deliver_pass(self, session: aiohttp.ClientSession) -> bool:
        """Deliver what is due; False when a delivery failed (then back off)."""
        if not await self._may_deliver():
            return True
        a = self.assignment
        namespace = a.notifier["metadata"]["namespace"]
        ref = (a.sink.cloud_events or a.sink.webhook).url.secret_key_ref  # type: ignore[union-attr]
        queue = await self._queue()
        depth = sum(1 for _, risk, q, _, _ in queue for n in q if self._takes(n, risk))
        self._metrics.set_notification_queue(self.label, depth)
        url = ""
        if depth:  # the Secret is read only when there is something to send: not at rest
            try:
                url = await self._io(store.read_secret, self._rest, namespace, ref)
            except store.SecretMissingError as error:
                message = f"{error}; events wait until it can be read."
                await self._report(False, api.REASON_SECRET_MISSING, message)
                return False
        budget = QUEUE_LIMIT
        failed = False
        for uid, risk, events, read_up_to, live in queue:
            whole = len(events) <= budget  # else the rest waits for the next pass
            skipped = False
            stopped = False
            for n in events[:budget]:
                budget -= 1
                told = already_told(self._cursors[uid], n)
                if told or not self._takes(n, risk):  # passed over, not sent
                    self._cursors[uid] = self._cursors[uid].after(n)
                    skipped = True
                    continue
                sent = await send(session, url, n, a.sink)
                self._metrics.record_notification(self.label, sent.outcome.value)
                if sent.outcome is not Outcome.DELIVERED:
                    await self._failed(n, sent)
                    if skipped:
                        await self._advance(uid, None)
                    if not sent.answered:
                        return False  # the sink is down: the others would only wait too
                    # It answered, refusing this event: this AIDeployment's later events
                    # wait (order), the next AIDeployments' go out; the pass backs off.
                    failed = stopped = True
                    break
                await self._advance(uid, n)
                skipped = False
            if stopped:
                continue
            if whole:  # all of it out: past its latest record, so at rest it costs no LIST
                moved = wait_forgotten(settled(self._cursors[uid], read_up_to), live)
                skipped = skipped or moved != self._cursors[uid]
                self._cursors[uid] = moved
            if skipped:
                await self._advance(uid, None)
        if failed:
            return False
        if a.default and self._active is not None and not self._active_namespaces:
            return True  # standing by for all of them: the active replicas report
        await self._report(True, api.REASON_DELIVERED, "Every due event was delivered.")
        return True

    def _takes(self, n: Notification, risk: str) -> bool:
        if n.position is None:
            return True  # a wait's requests: approval_notifications chose for this sink
        return sink_takes(self.assignment.sink, n.kind, risk)

    async def _queue(
        self,
    ) -> list[tuple[str, str, list[Notification], int | None, Waiting | None]]:
        """(uid, risk level, events not delivered yet, the latest record sequence read or
        None, its wait for approvals now) per selected AIDeployment."""
        a = self.assignment
        namespace = a.notifier["metadata"]["namespace"]
        scope = list(a.scope) if a.default else [namespace]
        objects = await self._io(store.list_deployments, self._rest, scope)
        chosen = [
            o
            for o in objects
            if selects(a.spec.selector, labels_of(o)) and not (a.default and a.covered(o))
        ]
        if a.default and self._active is not None:
            chosen = await self._active_only(chosen)
        chosen.sort(key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))
        queue = []
        now = datetime.now(UTC)
        for obj in chosen:
            ns, uid = obj["metadata"]["namespace"], obj["metadata"]["uid"]
            chain = await self._chain(obj)
            live = waiting_of(obj, self._cluster)
            cursor = await self._cursor(uid, chain, live)
            events = pending(
                record_notifications(chain, self._cluster, ns),
                self._approvals(obj, cursor, now),
                cursor,
            )
            read_up_to = max((_sequence(r) for r in chain), default=None)
            queue.append((uid, risk_of(obj), events, read_up_to, live))
        await self._prune({o["metadata"]["uid"] for o in objects})
        return queue

    async def _active_only(self, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The default notifier's AIDeployments of the namespaces this replica works on
        now (with namespaced peering, each namespace has its own active replica; the
        notifier's own namespace may be one the operator does not even watch)."""
        assert self._active is not None
        namespaces = sorted({o["metadata"]["namespace"] for o in objects})
        verdicts = {ns: await self._active(ns) for ns in namespaces}
        active = frozenset(ns for ns, verdict in verdicts.items() if verdict)
        if active - self._active_namespaces:
            self._standing_by = True  # it takes some over: their cursors afresh
        self._active_namespaces = active
        if active and not await self._took_over():
            return []
        return [o for o in objects if o["metadata"]["namespace"] in active]

    async def _chain(self, obj: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The AIDeployment's records, read only when its status says that one may be
        past its cursor: at rest, a pass reads no record."""
        meta = obj["metadata"]
        latest = ((obj.get("status") or {}).get("latestRecord") or {}).get("sequence")
        if not reads_records(
            self._cursors.get(meta["uid"]), latest if isinstance(latest, int) else None
        ):
            return []
        namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
        return await self._io(list_records, self._rest, namespace, name, uid)

    async def _cursor(
        self, uid: str, chain: list[dict[str, Any]], waiting: Waiting | None
    ) -> Cursor:
        """The AIDeployment's cursor; a wait for approvals seen for the first time is kept
        in it at once, so that its request is delivered even if the gate opens first."""
        cursor = self._cursors.get(uid)
        if cursor is None:
            cursor = start_cursor(chain, await self._start())
        updated = with_waiting(cursor, waiting)
        self._cursors[uid] = updated
        if updated is not cursor or uid not in self._persisted:
            await self._patch({"cursors": {uid: updated.to_merge_patch()}})
            self._persisted.add(uid)
        return updated

    def _approvals(
        self, obj: Mapping[str, Any], cursor: Cursor, now: datetime
    ) -> list[Notification]:
        a = self.assignment
        reminders = a.spec.reminders
        every = reminders.interval if reminders else None
        after = reminders.escalate_after if reminders else None
        return approvals_due(
            waiting_of(obj, self._cluster),
            cursor,
            now,
            remind_every=parse_duration(every) if every else None,
            escalate_after=parse_duration(after) if after else None,
            requests=sink_takes(a.sink, EventKind.APPROVAL_REQUESTED, risk_of(obj)),
            escalations=reminders is not None and reminders.escalate_to == a.sink.name,
        )

    async def _advance(self, uid: str, n: Notification | None) -> None:
        """Move the cursor past `n` (None: it was moved already) and write it."""
        if n is not None:
            self._cursors[uid] = self._cursors[uid].after(n)
        await self._patch({"cursors": {uid: self._cursors[uid].to_merge_patch()}})

    async def _prune(self, alive: set[str]) -> None:
        """Forget the cursors of AIDeployments that are gone (their uid never returns)."""
        gone = [uid for uid in self._cursors if uid not in alive]
        if gone:
            for uid in gone:
                del self._cursors[uid]
                self._persisted.discard(uid)
            await self._patch({"cursors": dict.fromkeys(gone)})

    async def _failed(self, n: Notification, sent: Sent) -> None:
        if sent.outcome is Outcome.REJECTED:
            reason = api.REASON_REJECTED
            advice = "fix the sink's URL or its receiver; the event is retried until accepted"
        else:
            reason = api.REASON_UNREACHABLE
            advice = "events wait in order and are delivered once it answers"
        what = f"answered {sent.detail} to" if sent.answered else f"got {sent.detail} for"
        message = f"Sink {self.assignment.sink.name} {what} event {n.id}: {advice}."
        logger.info("notifications %s: event %s not delivered: %s", self.label, n.id, sent.detail)
        await self._report(False, reason, message)

    async def _report(self, ok: bool, reason: str, message: str) -> None:
        """Set the sink's Delivering condition; a change to failing also posts an Event."""
        previous = next((c for c in self._conditions if c.type == api.CONDITION_DELIVERING), None)
        if previous is not None and (previous.status == "True") == ok and previous.reason == reason:
            return
        generation = int(self.assignment.notifier["metadata"].get("generation") or 0)
        now = datetime.now(UTC)
        self._conditions = set_condition(
            self._conditions,
            api.CONDITION_DELIVERING,
            "True" if ok else "False",
            reason,
            message,
            generation,
            now,
        )
        await self._patch({"conditions": [c.to_wire() for c in self._conditions]})
        if not ok:  # best effort: the condition and metric say it too
            await self._io(
                store.post_event, self._rest, self.assignment.notifier, reason, message, now
            )

    async def _patch(self, patch: Mapping[str, Any]) -> None:
        await self._io(
            store.patch_sink_status,
            self._rest,
            self.assignment.notifier,
            self.assignment.sink.name,
            patch,
        )
