"""The operator's Prometheus metrics (`/metrics`), as `docs/api.md` lists them.

Two kinds of numbers live here, and they are kept apart on purpose:

- State (gauges): how many AIDeployments are in each phase, blocked by each gate reason,
  and since when each object is in its phase. These are *recomputed* from a per-object
  map that every reconcile refreshes (`Metrics.set_object_state`), never incremented or
  decremented. So they are right after an operator restart (kopf lists every object at
  start, and every object is reconciled once), they cannot drift when an event is missed,
  and a deleted object disappears from them (`Metrics.forget`).
- Happenings (counters, histograms): rollbacks, probe results, approval waits. They must
  count each real transition once, so `Metrics.record_transition` counts only when the
  phase it is told about actually changed, and the reconciler calls it only after the
  new status was written (a conflict that makes it decide again counts nothing, and a
  restarted operator that finds a status already `RolledBack` sees no transition).

Every metric is registered in a `CollectorRegistry` owned by one `Metrics` object, not
in prometheus-client's global registry, so that tests (and two operators in one process)
each get fresh numbers.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aideploy.api.constants import Phase
from aideploy.api.spec import Result

ObjectKey = tuple[str, str]  # (namespace, name), as the controller uses it

PREFIX: Final = "aideploy"

PHASES: Final[tuple[str, ...]] = tuple(p.value for p in Phase)
#: The gate's `status.gate.blockedBy` reasons (docs/api.md).
GATE_REASONS: Final = ("approvals", "checklist", "compliance", "window", "freeze", "promotion")
ROLLBACK_REASONS: Final = ("probe", "signal", "deadline", "manual", "amber")
#: Rollbacks that follow a RED decision (the others follow a person or an AMBER policy).
RED_REASONS: Final = frozenset({"probe", "signal", "deadline"})
#: Probe results and verification decisions: the one vocabulary, aideploy.api.spec.Result.
RESULTS: Final[tuple[str, ...]] = tuple(r.value for r in Result)
RECONCILE_RESULTS: Final = ("ok", "conflict", "error")
#: A notification's delivery: delivered, failed (retried), rejected (a 4xx; retried too).
NOTIFICATION_RESULTS: Final = ("delivered", "failed", "rejected")
#: The labels of aideploy_ai_system_info after namespace and name, in this order.
INVENTORY_LABELS: Final = (
    "system",
    "environment",
    "risk_level",
    "version",
    "registration",
    "phase",
)
#: What refused a write (aideploy.logic.write_failure.describe), and what was written.
WRITE_FAILURE_CAUSES: Final = (
    "quota",
    "admission",
    "invalid",
    "too-large",
    "forbidden",
    "not-found",
    "conflict",
    "ip-range",
    "unavailable",
    "unreachable",
    "rejected",
)
WRITE_KINDS: Final = (
    "Deployment",
    "Service",
    "HTTPRoute",
    "AIDeploymentRecord",
    "AIDeployment",
    "status",
)

HOUR: Final = 3600.0
DAY: Final = 86400.0
# fmt: off
#: Approvals and their follow-up take minutes to days: people, time zones, weekends.
HUMAN_BUCKETS: Final = (
    60.0, 300.0, 900.0, 1800.0, HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR,
    DAY, 2 * DAY, 3 * DAY, 7 * DAY, 14 * DAY, 30 * DAY,
)
#: Approval to Ready covers the window wait, the rollout and verification.
ROLLOUT_BUCKETS: Final = (
    10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, HOUR, 4 * HOUR, 12 * HOUR,
    DAY, 3 * DAY, 7 * DAY,
)
#: RED to rollback done is machine time: seconds, at worst the Deployment's progress deadline.
RED_TO_ROLLBACK_BUCKETS: Final = (
    1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, HOUR,
)
# fmt: on

#: Leaving AwaitingApproval for one of these means people did their part (not e.g. Failed);
#: AwaitingPromotion then waits for the staging object, not for approvals.
_GATE_OPENED_TO: Final = frozenset(
    {
        Phase.AWAITING_PROMOTION,
        Phase.AWAITING_WINDOW,
        Phase.DEPLOYING,
        Phase.VERIFYING,
        Phase.MONITORING,
        Phase.SUCCEEDED,
    }
)
#: Entering one of these from a rollout phase is "Ready": the release serves, verified.
_READY_PHASES: Final = frozenset({Phase.MONITORING, Phase.SUCCEEDED})
_ROLLOUT_PHASES: Final = frozenset(
    {Phase.AWAITING_WINDOW, Phase.DEPLOYING, Phase.VERIFYING, Phase.HELD}
)


@dataclass(frozen=True)
class ObjectState:
    """What the gauges need to know about one AIDeployment."""

    phase: str
    blocked_by: tuple[str, ...]
    decision: str
    #: Unix time the object entered `phase` (status.phaseTransitionTime), if known.
    since: float | None


def _timestamp(value: datetime | float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def _check(value: str, allowed: Sequence[str], what: str) -> str:
    """Label values are a closed set: a typo must fail a test, not add a series."""
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")
    return value


class _StateCollector(Collector):
    """Gauges computed at scrape time from the per-object map (never stale, never drift)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        objects = self._metrics.snapshot()
        by_phase = dict.fromkeys(PHASES, 0)
        by_reason = dict.fromkeys(GATE_REASONS, 0)
        by_decision = dict.fromkeys(RESULTS, 0)
        for state in objects.values():
            by_phase[state.phase] = by_phase.get(state.phase, 0) + 1
            for reason in state.blocked_by:
                by_reason[reason] = by_reason.get(reason, 0) + 1
            if state.decision:
                by_decision[state.decision] = by_decision.get(state.decision, 0) + 1

        deployments = GaugeMetricFamily(
            f"{PREFIX}_deployments",
            "AIDeployments watched by this operator, by phase.",
            labels=["phase"],
        )
        for phase, count in by_phase.items():
            deployments.add_metric([phase], count)
        yield deployments

        blocked = GaugeMetricFamily(
            f"{PREFIX}_gate_blocked",
            "AIDeployments whose gate is blocked, by reason (one object may count under "
            "several reasons).",
            labels=["reason"],
        )
        for reason, count in by_reason.items():
            blocked.add_metric([reason], count)
        yield blocked

        decisions = GaugeMetricFamily(
            f"{PREFIX}_decisions",
            "AIDeployments by their current verification decision (GREEN, AMBER, RED).",
            labels=["decision"],
        )
        for decision, count in by_decision.items():
            decisions.add_metric([decision], count)
        yield decisions

        since = GaugeMetricFamily(
            f"{PREFIX}_deployment_phase_since_timestamp_seconds",
            "Unix time at which each AIDeployment entered its current phase; one series per "
            "object, for alerts on objects held or blocked for too long.",
            labels=["namespace", "name", "phase", "decision"],
        )
        for (namespace, name), state in sorted(objects.items()):
            if state.since is not None:
                since.add_metric([namespace, name, state.phase, state.decision], state.since)
        yield since

        inventory = GaugeMetricFamily(
            f"{PREFIX}_ai_system_info",
            "The AI System Inventory: 1 per AIDeployment, its identity in the labels (system, "
            "environment, risk level, version served, EU database registration, phase).",
            labels=["namespace", "name", *INVENTORY_LABELS],
        )
        for (namespace, name), labels in sorted(self._metrics.inventory().items()):
            inventory.add_metric([namespace, name, *labels], 1)
        yield inventory


class Metrics:
    """The operator's metrics, in a registry of their own.

    The reconciler calls `set_object_state` after each reconcile, `forget` when an object
    is gone, `record_transition` after a status write changed the phase,
    `record_probe_result` for each probe evaluation and `record_reconcile` for each
    reconcile. `serve(port)` exposes them.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, process: bool = True) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._lock = threading.Lock()
        self._objects: dict[ObjectKey, ObjectState] = {}
        self._inventory: dict[ObjectKey, tuple[str, ...]] = {}
        # When each object's gate opened and when it went RED, as seen by this process:
        # used when the caller cannot pass the time from the status (lost on restart, and
        # then that one observation is skipped rather than guessed).
        self._approved_at: dict[ObjectKey, float] = {}
        self._rollback_started: dict[ObjectKey, tuple[float, str]] = {}

        self.registry.register(_StateCollector(self))
        if process:
            # The standard process_* metrics (memory, CPU, open fds), for the dashboard.
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.registry.register(collector)

        self.rollbacks = Counter(
            f"{PREFIX}_rollbacks",
            "Rollbacks started, by reason (probe, signal, deadline, manual, amber).",
            ["reason"],
            registry=self.registry,
        )
        self.probe_results = Counter(
            f"{PREFIX}_probe_results",
            "Probe and signal evaluations, by probe name and result (GREEN, AMBER, RED).",
            ["probe", "result"],
            registry=self.registry,
        )
        self.approval_wait = Histogram(
            f"{PREFIX}_approval_wait_seconds",
            "Time from entering AwaitingApproval to the gate opening.",
            buckets=HUMAN_BUCKETS,
            registry=self.registry,
        )
        self.approval_to_ready = Histogram(
            f"{PREFIX}_approval_to_ready_seconds",
            "Time from the gate opening to the release serving verified (Monitoring or Succeeded).",
            buckets=ROLLOUT_BUCKETS,
            registry=self.registry,
        )
        self.red_to_rollback = Histogram(
            f"{PREFIX}_red_to_rollback_seconds",
            "Time from a RED decision to the rollback being done (RolledBack).",
            buckets=RED_TO_ROLLBACK_BUCKETS,
            registry=self.registry,
        )
        self.reconciles = Counter(
            f"{PREFIX}_reconcile",
            "Reconciles, by result (ok, conflict: retried after a stale read, error).",
            ["result"],
            registry=self.registry,
        )
        self.write_failures = Counter(
            f"{PREFIX}_write_failures",
            "Writes the apiserver refused or never answered, by what was written (kind) and "
            "what refused it (reason: quota, admission, invalid, ...).",
            ["kind", "reason"],
            registry=self.registry,
        )
        self.last_reconcile = Gauge(
            f"{PREFIX}_last_reconcile_timestamp_seconds",
            "Unix time of the last reconcile that completed without error; 0 before the "
            "first. For the 'operator not reconciling' alert.",
            registry=self.registry,
        )
        self.notifications = Counter(
            f"{PREFIX}_notifications",
            "Notification deliveries, by sink (namespace/notifier/sink) and result "
            "(delivered, failed, rejected).",
            ["sink", "result"],
            registry=self.registry,
        )
        self.notification_queue = Gauge(
            f"{PREFIX}_notification_queue_depth",
            "Events each sink has yet to receive (at its last delivery pass).",
            ["sink"],
            registry=self.registry,
        )
        # Zero series from the start: rate() and increase() then see the first event.
        for reason in ROLLBACK_REASONS:
            self.rollbacks.labels(reason=reason)
        for result in RECONCILE_RESULTS:
            self.reconciles.labels(result=result)

    # ---- state (gauges) ----------------------------------------------------------------

    def set_object_state(
        self,
        key: ObjectKey,
        phase: str,
        blocked_by: Iterable[str] = (),
        *,
        decision: str | None = None,
        since: datetime | float | None = None,
    ) -> None:
        """Record what one object looks like now; the gauges follow at the next scrape.

        Idempotent: call it after every reconcile, with the status as written (or as
        read, when nothing changed). `since` is status.phaseTransitionTime.
        """
        state = ObjectState(
            phase=_check(phase, PHASES, "phase"),
            blocked_by=tuple(
                sorted({_check(reason, GATE_REASONS, "gate reason") for reason in blocked_by})
            ),
            decision=_check(decision, RESULTS, "decision") if decision else "",
            since=_timestamp(since),
        )
        with self._lock:
            self._objects[key] = state

    def set_inventory(self, key: ObjectKey, labels: dict[str, str]) -> None:
        """The object's inventory entry (labels named by INVENTORY_LABELS; missing ones
        empty), for aideploy_ai_system_info."""
        with self._lock:
            self._inventory[key] = tuple(labels.get(label, "") for label in INVENTORY_LABELS)

    def inventory(self) -> dict[ObjectKey, tuple[str, ...]]:
        with self._lock:
            return dict(self._inventory)

    def forget(self, key: ObjectKey) -> None:
        """The object is gone (deleted, or no longer watched): drop it from every gauge."""
        with self._lock:
            self._objects.pop(key, None)
            self._inventory.pop(key, None)
            self._approved_at.pop(key, None)
            self._rollback_started.pop(key, None)

    def snapshot(self) -> dict[ObjectKey, ObjectState]:
        with self._lock:
            return dict(self._objects)

    # ---- happenings (counters, histograms) -------------------------------------------------

    def record_transition(
        self,
        key: ObjectKey,
        old_phase: str | None,
        new_phase: str,
        *,
        at: datetime | float,
        phase_entered_at: datetime | float | None = None,
        approved_at: datetime | float | None = None,
        red_at: datetime | float | None = None,
        rollback_reason: str | None = None,
    ) -> None:
        """Count one phase change that was just written to the object's status.

        Nothing happens when `old_phase == new_phase`, so calling this on every reconcile
        with the phase read and the phase written is safe; call it only once the write
        succeeded. `at` is the time of the change; `phase_entered_at` is when `old_phase`
        began (the old status.phaseTransitionTime).

        - Leaving AwaitingApproval forwards observes `aideploy_approval_wait_seconds`.
        - Reaching Monitoring or Succeeded from a rollout phase observes
          `aideploy_approval_to_ready_seconds`, from `approved_at` (when the status keeps
          it) or from the gate opening this process saw; otherwise nothing (after a
          restart, a guess would be wrong).
        - Entering RollingBack (or RolledBack directly) counts `aideploy_rollbacks_total`
          under `rollback_reason`.
        - Reaching RolledBack observes `aideploy_red_to_rollback_seconds` from `red_at`,
          or, for RED-driven rollbacks (probe, signal, deadline), from the rollback start
          this process saw.
        """
        if old_phase == new_phase:
            return
        new = Phase(_check(new_phase, PHASES, "phase"))
        old = Phase(old_phase) if old_phase else None
        now = _timestamp(at)
        assert now is not None
        if old == Phase.AWAITING_APPROVAL and new in _GATE_OPENED_TO:
            self._gate_opened(key, now, _timestamp(phase_entered_at))
        if new in _READY_PHASES and old in _ROLLOUT_PHASES:
            self._became_ready(key, now, _timestamp(approved_at))
        if new == Phase.ROLLING_BACK or (new == Phase.ROLLED_BACK and old != Phase.ROLLING_BACK):
            self._rollback_started_at(key, now, rollback_reason)
        if new == Phase.ROLLED_BACK:
            self._rolled_back(key, now, _timestamp(red_at))

    def _gate_opened(self, key: ObjectKey, now: float, waited_since: float | None) -> None:
        if waited_since is not None:
            self.approval_wait.observe(max(now - waited_since, 0.0))
        with self._lock:
            self._approved_at[key] = now

    def _became_ready(self, key: ObjectKey, now: float, approved_at: float | None) -> None:
        with self._lock:
            opened = approved_at or self._approved_at.pop(key, None)
        if opened is not None:
            self.approval_to_ready.observe(max(now - opened, 0.0))

    def _rollback_started_at(self, key: ObjectKey, now: float, reason: str | None) -> None:
        checked = _check(reason or "", ROLLBACK_REASONS, "rollback reason")
        self.rollbacks.labels(reason=checked).inc()
        with self._lock:
            self._rollback_started[key] = (now, checked)

    def _rolled_back(self, key: ObjectKey, now: float, red_at: float | None) -> None:
        with self._lock:
            started = self._rollback_started.pop(key, None)
        if red_at is None and started is not None and started[1] in RED_REASONS:
            red_at = started[0]
        if red_at is not None:
            self.red_to_rollback.observe(max(now - red_at, 0.0))

    def record_probe_result(self, probe: str, result: str) -> None:
        """One evaluation of a verification probe or monitoring signal."""
        self.probe_results.labels(probe=probe, result=_check(result, RESULTS, "result")).inc()

    def record_reconcile(self, result: str, at: datetime | float | None = None) -> None:
        """One reconcile finished: `ok`, `conflict` (will retry at once) or `error`."""
        self.reconciles.labels(result=_check(result, RECONCILE_RESULTS, "result")).inc()
        if result != "error":
            self.last_reconcile.set(_timestamp(at) or time.time())

    def record_notification(self, sink: str, result: str) -> None:
        self.notifications.labels(
            sink=sink, result=_check(result, NOTIFICATION_RESULTS, "result")
        ).inc()

    def set_notification_queue(self, sink: str, depth: int) -> None:
        self.notification_queue.labels(sink=sink).set(depth)

    def forget_notification_sink(self, sink: str) -> None:
        """A sink removed from its notifier: its queue gauge goes (its counters stay)."""
        with contextlib.suppress(KeyError):
            self.notification_queue.remove(sink)

    def record_write_failure(self, kind: str, reason: str) -> None:
        self.write_failures.labels(
            kind=_check(kind, WRITE_KINDS, "kind"),
            reason=_check(reason, WRITE_FAILURE_CAUSES, "reason"),
        ).inc()

    # ---- exposition ----------------------------------------------------------------------

    def serve(self, port: int, addr: str = "0.0.0.0") -> WSGIServer:
        """Serve /metrics on `port` in a daemon thread; `shutdown()` the result to stop."""
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        return server
