"""The real reconciler's `observe` and `_carry_out` around `decide`, over an in-memory
cluster, for unit tables: plans are carried out exactly as in production (records written
as a hash chain first, status, Events, consumed annotations), the child Deployment is
kept, 'probes' come from a script and the clock is fixed. Only the apiserver is replaced;
the integration tests run the same code against a real one."""

from __future__ import annotations

import asyncio
import copy
from datetime import datetime, timedelta
from typing import Any

from aideploy.api.constants import API_VERSION, KIND, LABEL_DEPLOYMENT, LABEL_RELEASE
from aideploy.api.digest import release_id
from aideploy.api.spec import Result
from aideploy.api.status import AIDeploymentStatus, ProbeOutcome
from aideploy.api.times import rfc3339
from aideploy.kube.children import read_children
from aideploy.kube.observe import observe
from aideploy.kube.resources import Resources
from aideploy.kube.writes import WriteRefusedError
from aideploy.logic.gate import ApprovalPolicy
from aideploy.logic.machine import decide
from aideploy.logic.plan import Observation, Plan, ProbeRun
from aideploy.logic.write_failure import WriteFailure
from aideploy.reconciler import Reconciler
from tests.support.backend import selects

from .factories import NOW, gate_annotations

NAMESPACE, NAME, UID = "ml", "fraud-scorer", "uid-1"


class MemoryCluster(Resources):
    """What the reconciler writes, kept in memory: the AIDeployment, its Deployments and
    Services, its records and Events. Every write the real Resources makes has its
    counterpart, and reads answer as the apiserver would (generation moves only when a
    Deployment's spec changes)."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim
        self.record_objects: list[dict[str, Any]] = []
        self.deployments: dict[str, dict[str, Any]] = {}
        self.services: dict[str, dict[str, Any]] = {}
        self.routes: dict[str, dict[str, Any]] = {}  # HTTPRoutes, which the operator patches
        #: Every write to a Deployment or Service, in order: ("apply"|"scale"|"delete", kind, name).
        self.writes: list[tuple[str, str, str]] = []
        #: Writes the 'apiserver' refuses, by (action, kind): action is apply, scale,
        #: delete, patch, create (records) or status. What is raised is what Rest raises.
        self.refuse: dict[tuple[str, str], Exception] = {}
        #: Transition Events posted (their one name each): posting one again finds it.
        self.announced: set[str] = set()

    def _refused(self, action: str, kind: str) -> None:
        error = self.refuse.get((action, kind))
        if error is not None:
            raise error

    def _store(self, kind: str) -> dict[str, dict[str, Any]]:
        if kind == "Deployment":
            return self.deployments
        if kind == "Service":
            return self.services
        if kind == "HTTPRoute":
            return self.routes
        raise AssertionError(f"the simulator does not keep {kind}")

    def list_records(
        self, namespace: str, name: str, uid: str, from_cache: bool = False
    ) -> list[dict[str, Any]]:
        """The simulator's watch cache never lags (tests/unit/test_chain_view.py: a lag)."""
        return [copy.deepcopy(r) for r in self.record_objects]

    def write_record(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self._refused("create", "AIDeploymentRecord")
        self.record_objects.append(copy.deepcopy(manifest))
        self._sim.records.append(str(manifest["spec"]["type"]))
        return copy.deepcopy(manifest)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = self._store(kind).get(name)
        return copy.deepcopy(found) if found is not None else None

    def list_children(self, kind: str, namespace: str, owner_name: str) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(obj)
            for obj in self._store(kind).values()
            if (obj["metadata"].get("labels") or {}).get(LABEL_DEPLOYMENT) == owner_name
        ]

    def apply(self, manifest: dict[str, Any]) -> None:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        self._refused("apply", kind)
        store = self._store(kind)
        self.writes.append(("apply", kind, name))
        obj = copy.deepcopy(manifest)
        live = store.get(name)
        if kind == "Deployment":
            self._sim.applied.append(copy.deepcopy(manifest))
            generation = (live or {}).get("metadata", {}).get("generation", 0)
            if live is None or live["spec"] != obj["spec"]:
                generation += 1
            obj["metadata"]["generation"] = generation
            obj["status"] = copy.deepcopy((live or {}).get("status") or {})
        store[name] = obj

    def scale_to_zero(self, namespace: str, name: str) -> None:
        self._refused("scale", "Deployment")
        self.writes.append(("scale", "Deployment", name))
        live = self.deployments[name]
        if live["spec"]["replicas"] != 0:
            live["spec"]["replicas"] = 0
            live["metadata"]["generation"] += 1

    def patch_route(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self._refused("patch", "HTTPRoute")
        self.writes.append(("patch", "HTTPRoute", name))
        live = self.routes[name]
        version = live["metadata"]["resourceVersion"]
        assert patch["metadata"]["resourceVersion"] == version, "a stale route was patched"
        live["spec"]["rules"] = copy.deepcopy(patch["spec"]["rules"])
        live["metadata"]["resourceVersion"] = str(int(version) + 1)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self._refused("delete", kind)
        self.writes.append(("delete", kind, name))
        self._store(kind).pop(name, None)

    def replace_status(self, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        self._refused("status", KIND)
        self._sim.status_writes += 1
        self._sim.wire_status = copy.deepcopy(status)
        return {**obj, "status": status}

    def remove_annotations(self, obj: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
        for key in keys:
            self._sim.annotations.pop(key, None)
        return obj

    def emit_event(
        self,
        obj: dict[str, Any],
        type_: str,
        reason: str,
        message: str,
        now: datetime,
        transition: str = "",
    ) -> bool:
        if transition:  # one name per transition, as the apiserver would answer 409
            if transition in self.announced:
                return True
            self.announced.add(transition)
        self._sim.events.append((reason, type_))
        self._sim.event_messages.append(message)
        return True

    def selected_by(self, service_name: str) -> dict[str, Any] | None:
        """The Deployment whose pods the Service selects (the live object, to edit)."""
        service = self.services.get(service_name)
        return next((d for d in self.deployments.values() if selects(service, d)), None)


class Simulator:
    def __init__(self, spec: dict[str, Any], annotations: dict[str, str] | None = None) -> None:
        self.spec = spec
        self.annotations = annotations if annotations is not None else gate_annotations(spec)
        self.wire_status: dict[str, Any] = {}
        self.node_ready = True
        self.now: datetime = NOW
        self.generation = 1
        self.probe_script: dict[str, str] = {}
        self.probe_runs: list[str] = []
        self.events: list[tuple[str, str]] = []
        self.event_messages: list[str] = []
        self.status_writes = 0
        #: Writes refused while carrying out plans (the reconciler reports them, then backs off).
        self.refusals: list[WriteFailure] = []
        self.applied: list[dict[str, Any]] = []
        self.records: list[str] = []  # record types written, in order
        self.policy: ApprovalPolicy | None = None  # the operator's (its key signs releases)
        self.cluster = MemoryCluster(self)
        self._reconciler = Reconciler(self.cluster, clock=lambda: self.now)

    def restart(self) -> None:
        """A new operator process: a fresh reconciler, nothing kept in memory, the same
        cluster (what the apiserver holds is all it knows)."""
        self._reconciler = Reconciler(self.cluster, clock=lambda: self.now)

    @property
    def child(self) -> dict[str, Any] | None:
        """The Deployment users are served by (the one the stable Service selects), or,
        while none is, the one running the current release: the live object, to edit."""
        serving = self.cluster.selected_by(NAME)
        if serving is not None:
            return serving
        current = self.status.current_release
        return self.deployment_of(current.digest) if current is not None else None

    @child.setter
    def child(self, value: None) -> None:
        """Someone deletes the child."""
        assert value is None
        found = self.child
        if found is not None:
            self.cluster.deployments.pop(found["metadata"]["name"])

    @property
    def candidate(self) -> dict[str, Any] | None:
        """The Deployment the preview Service selects."""
        return self.cluster.selected_by(f"{NAME}-preview")

    def deployment_of(self, digest: str) -> dict[str, Any] | None:
        rid = release_id(digest)
        for obj in self.cluster.deployments.values():
            labels = obj["spec"]["template"]["metadata"].get("labels") or {}
            if labels.get(LABEL_RELEASE) == rid:
                return obj
        return None

    def serving_version(self) -> str | None:
        """The model version the stable Service sends users to (None: nobody is served)."""
        serving = self.cluster.selected_by(NAME)
        if serving is None or serving["spec"]["replicas"] == 0:
            return None
        return str(serving["spec"]["template"]["metadata"]["labels"]["aideploy.io/model-version"])

    @property
    def status(self) -> AIDeploymentStatus:
        return AIDeploymentStatus.salvage(self.wire_status)[0]

    @status.setter
    def status(self, status: AIDeploymentStatus) -> None:
        """Stand a status in as the stored one (a write the operator made, then died)."""
        self.wire_status = status.to_wire()

    def set_spec(self, spec: dict[str, Any], annotations: dict[str, str] | None = None) -> None:
        self.spec = spec
        self.generation += 1
        if annotations is not None:
            self.annotations = annotations

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def _object(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {
                "name": NAME,
                "namespace": NAMESPACE,
                "uid": UID,
                "generation": self.generation,
                "resourceVersion": "1",
                "annotations": dict(self.annotations),
            },
            "spec": copy.deepcopy(self.spec),
            "status": copy.deepcopy(self.wire_status),
        }

    def observe(self, run: ProbeRun | None = None) -> Observation:
        obj = self._object()
        children = asyncio.run(read_children(self.cluster, obj))
        return observe(obj, children, self.now, run, policy=self.policy)

    def reconcile(self) -> Plan:
        """One reconcile as the real reconciler does it: decide, carry out, and when the
        plan asks for probes, run them (from the script) and decide again."""
        observation = self.observe()
        plan = decide(observation)
        if not self._carry_out(observation, plan):
            return plan  # refused: the reconciler backs off, and runs no probes
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
            observation = self.observe(ProbeRun(request.purpose, request.digest, outcomes))
            plan = decide(observation)
            self._carry_out(observation, plan)
        return plan

    def settle(self, max_steps: int = 10) -> Plan:
        """Reconcile until nothing changes (what the watch events would cause)."""
        plan = self.reconcile()
        for _ in range(max_steps):
            before = copy.deepcopy(self.wire_status)
            plan = self.reconcile()
            if self.wire_status == before and plan.apply is None and plan.run_probes is None:
                return plan
        return plan

    def _carry_out(self, observation: Observation, plan: Plan) -> bool:
        try:
            asyncio.run(self._reconciler._writer.carry_out(self._object(), observation, plan))
        except WriteRefusedError as refused:
            self.refusals.append(refused.failure)
            return False
        finally:
            for child in self.cluster.deployments.values():
                self._node(child)
        return True

    def _node(self, child: dict[str, Any]) -> None:
        """Plays the Deployment controller and kubelet: every pod asked for runs at once
        (available when `node_ready`); pods scaled away are gone."""
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
