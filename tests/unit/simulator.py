"""A deterministic stand-in for the reconciler and the cluster around `decide`, for unit
tables: it applies plans, keeps the child Deployment, runs 'probes' from a script and moves
a fixed clock. The real reconciler is exercised by the integration tests."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from aideploy.api.spec import Result
from aideploy.api.status import AIDeploymentStatus, ProbeOutcome
from aideploy.api.times import rfc3339
from aideploy.logic.machine import decide
from aideploy.logic.plan import Observation, Plan, ProbeRun
from aideploy.logic.workload import Owner

from .factories import NOW, gate_annotations

OWNER = Owner(name="fraud-scorer", namespace="ml", uid="uid-1")


class Simulator:
    def __init__(self, spec: dict[str, Any], annotations: dict[str, str] | None = None) -> None:
        self.spec = spec
        self.annotations = annotations if annotations is not None else gate_annotations(spec)
        self.status = AIDeploymentStatus()
        self.child: dict[str, Any] | None = None
        self.node_ready = True
        self.now: datetime = NOW
        self.generation = 1
        self.probe_script: dict[str, str] = {}
        self.probe_runs: list[str] = []
        self.events: list[tuple[str, str]] = []
        self.applied: list[dict[str, Any]] = []
        self.records: list[str] = []  # record types asked for, in order

    def set_spec(self, spec: dict[str, Any], annotations: dict[str, str] | None = None) -> None:
        self.spec = spec
        self.generation += 1
        if annotations is not None:
            self.annotations = annotations

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def observe(self, run: ProbeRun | None = None) -> Observation:
        return Observation(
            owner=OWNER,
            generation=self.generation,
            annotations=dict(self.annotations),
            raw_spec=self.spec,
            status=self.status,
            deployment=self.child,
            now=self.now,
            probe_run=run,
        )

    def reconcile(self) -> Plan:
        plan = decide(self.observe())
        self._carry_out(plan)
        if plan.run_probes is not None:
            request = plan.run_probes
            self.probe_runs.append(request.purpose)
            outcomes = tuple(
                ProbeOutcome(
                    name=probe.name,
                    kind="http" if probe.http else "inference" if probe.inference else "prometheus",
                    result=Result(self.probe_script.get(probe.name, "GREEN")).value,
                    value="1",
                    message=f"scripted {self.probe_script.get(probe.name, 'GREEN')}",
                    at=rfc3339(self.now),
                )
                for probe in request.probes
            )
            plan = decide(self.observe(ProbeRun(request.purpose, request.digest, outcomes)))
            self._carry_out(plan)
        return plan

    def settle(self, max_steps: int = 10) -> Plan:
        """Reconcile until nothing changes (what the watch events would cause)."""
        plan = self.reconcile()
        for _ in range(max_steps):
            before = self.status.to_wire()
            plan = self.reconcile()
            if self.status.to_wire() == before and plan.apply is None and plan.run_probes is None:
                return plan
        return plan

    def _carry_out(self, plan: Plan) -> None:
        self.status = plan.status
        self.events.extend((e.reason, e.type) for e in plan.events)
        self.records.extend(r.type.value for r in plan.records)
        for key in plan.remove_annotations:
            self.annotations.pop(key, None)
        if plan.apply is not None:
            deployment = copy.deepcopy(plan.apply.deployment)
            self.applied.append(deployment)
            generation = (self.child or {}).get("metadata", {}).get("generation", 0) + 1
            deployment["metadata"]["generation"] = generation
            self.child = deployment
        if self.child is not None:
            self._node(self.child)

    def _node(self, child: dict[str, Any]) -> None:
        replicas = child["spec"]["replicas"]
        generation = child["metadata"]["generation"]
        child["status"] = {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas if self.node_ready else 0,
        }

    def phase(self) -> str | None:
        return self.status.phase.value if self.status.phase else None

    def condition(self, type_: str) -> tuple[str, str]:
        found = self.status.condition(type_)
        assert found is not None, type_
        return found.status, found.reason
