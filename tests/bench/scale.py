"""Scale figures for `make bench`, each against the same local control plane:

- approval -> Deployment: the last approval annotation written, to the child Deployment
  seen by a watch; for the operator, and for a bare kopf operator making the same two
  writes (tests/bench/bare_operator.py), which is the floor;
- cold start of N objects: the operator started with N AIDeployments waiting at the gate,
  until every one has a phase; with the operator's peak RSS;
- idle writes: writes to settled objects over a window (a watch counts them);
- a burst of M approvals: the last of M annotations written, to all M Deployments seen;
- writes per lifecycle: the API calls the operator makes for one object from its approval
  to Succeeded (from its --verbose log), by verb and resource.

Nothing here asserts anything: these are figures to compare, on a noisy machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self

from kubernetes import client, watch

from aideploy.kube.rest import Rest
from tests.bench.bare_operator import COLD_MARK, READY, TRIGGER, cold_start_writes
from tests.support import aid
from tests.support.cluster import ClusterHandle, create_namespace, delete_namespace, wait_for
from tests.support.kubelet import SimulatedNode
from tests.support.operator import OperatorProcess
from tests.unit.factories import approvals_for, full_checklist, make_spec

WORKERS = 8


def _waiting_manifest(name: str) -> dict[str, Any]:
    """An object at the gate: everything but the deployment manager's approval."""
    spec = make_spec("minimal")
    annotations = {
        k: v for k, v in {**approvals_for(spec), **full_checklist()}.items() if k != TRIGGER
    }
    return aid.manifest(name, spec, annotations)


def _last_approval(name: str) -> dict[str, str]:
    return {TRIGGER: approvals_for(make_spec("minimal"))[TRIGGER]}


class _BackgroundWatch:
    """A watch of one namespace on a thread of its own, for as long as the `with` block."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self._api = api
        self._namespace = namespace
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        raise NotImplementedError


class DeploymentWatch(_BackgroundWatch):
    """When each owner's first Deployment was seen (by its aideploy.io/deployment or app
    label), on this process's clock."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        super().__init__(api, namespace)
        self.seen_at: dict[str, float] = {}

    def _run(self) -> None:
        apps = client.AppsV1Api(self._api)
        while not self._stop.is_set():
            stream = watch.Watch()
            with contextlib.suppress(Exception):
                for event in stream.stream(
                    apps.list_namespaced_deployment, self._namespace, timeout_seconds=5
                ):
                    labels = event["object"].metadata.labels or {}
                    owner = labels.get("aideploy.io/deployment") or labels.get("app")
                    if owner and owner not in self.seen_at:
                        self.seen_at[owner] = time.time()
                    if self._stop.is_set():
                        break


@contextlib.contextmanager
def _namespace(api: client.ApiClient, prefix: str) -> Iterator[str]:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    create_namespace(api, name)
    try:
        yield name
    finally:
        delete_namespace(api, name)


@contextlib.contextmanager
def _bare_operator(
    handle: ClusterHandle, namespace: str, log: Path, mode: str = "", records: int = 2
) -> Iterator[None]:
    script = Path(__file__).with_name("bare_operator.py")
    env = {**os.environ, "KUBECONFIG": str(handle.kubeconfig), "PYTHONUNBUFFERED": "1"}
    env["BARE_OPERATOR_MODE"] = mode
    env["BARE_OPERATOR_RECORDS"] = str(records)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "kopf", "run", "--standalone", "--namespace", namespace,
             str(script)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        try:
            wait_for(
                lambda: READY in log.read_text(),
                timeout=30,
                message="the bare kopf operator to start",
            )
            time.sleep(1.0)  # its watch established (it writes nothing to show it)
            yield
        finally:
            process.terminate()
            process.wait(timeout=15)


def approval_latencies(
    handle: ClusterHandle,
    api: client.ApiClient,
    rest: Rest,
    workdir: Path,
    rounds: int,
    bare: bool,
    records: int = 2,
) -> list[float]:
    """Seconds from the last approval's write to its Deployment seen, per round. `records`:
    how many records the bare operator writes before its apply (ours writes two)."""
    with _namespace(api, "bench-bare" if bare else "bench-approval") as namespace:
        if bare:
            running: contextlib.AbstractContextManager[Any] = _bare_operator(
                handle, namespace, workdir / f"bare-{namespace}.log", records=records
            )
        else:
            # Started by `with` (OperatorProcess.__enter__), once: a second start would
            # leave a first operator racing it for the same writes.
            running = OperatorProcess(
                handle.kubeconfig, namespace, workdir / f"op-{namespace}.log", verbose=False
            )
        latencies = []
        with running, DeploymentWatch(api, namespace) as deployments:
            for n in range(rounds):
                name = f"a{n}"
                aid.create(rest, namespace, _waiting_manifest(name))
                if bare:
                    time.sleep(0.3)  # the bare operator has seen it (it writes nothing)
                else:
                    # Its last write for the creation is the phase's Event, after the
                    # status: an approval sent before it would wait for that post.
                    wait_for(
                        lambda n=name: aid.emitted(rest, namespace, n)["AwaitingApproval"],
                        timeout=30,
                        message=f"{name} at the gate",
                    )
                started = time.time()
                aid.annotate(rest, namespace, name, _last_approval(name))
                wait_for(lambda n=name: n in deployments.seen_at, timeout=30, message=name)
                latencies.append(deployments.seen_at[name] - started)
        return latencies


def _create_many(rest: Rest, namespace: str, names: list[str]) -> None:
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda name: aid.create(rest, namespace, _waiting_manifest(name)), names))


class PhaseWatch(_BackgroundWatch):
    """Which AIDeployments in a namespace have a phase, kept by a watch. Listing every
    object twice a second instead (10,000 objects, tens of MB each time) took a share of
    the apiserver's CPU, and of this process's, that grew with the number of objects:
    the figure measured the poll as much as the operator."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        super().__init__(api, namespace)
        self.phased: set[str] = set()

    def _run(self) -> None:
        custom = client.CustomObjectsApi(self._api)
        args = ("aideploy.io", "v1alpha1", self._namespace, "aideployments")
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                listed = custom.list_namespaced_custom_object(*args)
                for item in listed.get("items", []):
                    self._note(item)
                stream = watch.Watch()
                for event in stream.stream(
                    custom.list_namespaced_custom_object,
                    *args,
                    resource_version=listed["metadata"]["resourceVersion"],
                    timeout_seconds=30,
                ):
                    self._note(event["object"])
                    if self._stop.is_set():
                        break

    def _note(self, item: dict[str, Any]) -> None:
        if (item.get("status") or {}).get("phase"):
            self.phased.add(item["metadata"]["name"])


class ColdMarkWatch(PhaseWatch):
    """The objects the bare kopf operator's cold start has written to."""

    def _note(self, item: dict[str, Any]) -> None:
        if (item.get("status") or {}).get("message") == COLD_MARK:
            self.phased.add(item["metadata"]["name"])


def _peak_rss_mib(pid: int | None) -> float:
    if pid is None:
        return 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _count_writes(api: client.ApiClient, namespace: str, seconds: float) -> int:
    """Watch events (writes) on AIDeployments and Deployments in `namespace` for `seconds`."""
    custom = client.CustomObjectsApi(api)
    apps = client.AppsV1Api(api)
    listed = custom.list_namespaced_custom_object(
        "aideploy.io", "v1alpha1", namespace, "aideployments"
    )
    deployments = apps.list_namespaced_deployment(namespace)
    counts = [0, 0]

    def count(index: int, lister: Callable[..., Any], *args: Any, version: str) -> None:
        stream = watch.Watch()
        with contextlib.suppress(Exception):
            for _ in stream.stream(
                lister, *args, resource_version=version, timeout_seconds=int(seconds)
            ):
                counts[index] += 1

    threads = [
        threading.Thread(
            target=count,
            args=(0, custom.list_namespaced_custom_object, "aideploy.io", "v1alpha1", namespace,
                  "aideployments"),
            kwargs={"version": listed["metadata"]["resourceVersion"]},
        ),
        threading.Thread(
            target=count,
            args=(1, apps.list_namespaced_deployment, namespace),
            kwargs={"version": deployments.metadata.resource_version},
        ),
    ]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 30)
    return sum(counts)


def cold_start_idle_and_burst(
    handle: ClusterHandle,
    api: client.ApiClient,
    rest: Rest,
    workdir: Path,
    objects: int,
    burst: int,
    idle_seconds: float,
) -> dict[str, float]:
    with _namespace(api, "bench-scale") as namespace:
        names = [f"s{n:05d}" for n in range(objects)]
        _create_many(rest, namespace, names)
        operator = OperatorProcess(
            handle.kubeconfig, namespace, workdir / f"op-{namespace}.log", verbose=False
        )
        with PhaseWatch(api, namespace) as phases:
            started = time.time()
            operator.start(timeout=120)
            try:
                wait_for(
                    lambda: len(phases.phased) == objects,
                    timeout=max(600.0, objects * 0.5),
                    interval=0.2,
                    message=f"all {objects} objects to have a phase",
                )
            except BaseException:
                operator.stop()
                raise
            cold = time.time() - started
        try:
            rss = _peak_rss_mib(operator.pid)
            time.sleep(5)  # the reconciles its own status writes caused, done
            idle = _count_writes(api, namespace, idle_seconds)
            chosen = names[:burst]
            with DeploymentWatch(api, namespace) as deployments:
                first = time.time()
                with ThreadPoolExecutor(WORKERS) as pool:
                    list(
                        pool.map(
                            lambda n: aid.annotate(rest, namespace, n, _last_approval(n)), chosen
                        )
                    )
                last = time.time()
                wait_for(
                    lambda: all(n in deployments.seen_at for n in chosen),
                    timeout=max(300.0, burst * 0.5),
                    interval=0.2,
                    message=f"all {burst} Deployments",
                )
                done = max(deployments.seen_at[n] for n in chosen)
            rss = max(rss, _peak_rss_mib(operator.pid))
        finally:
            operator.stop()
        floor = cold_start_floor(rest, namespace)
        kopf_floor = cold_start_bare_kopf(handle, api, namespace, workdir, objects)
        return {
            "cold_start_floor_seconds": floor,
            "cold_start_bare_kopf_seconds": kopf_floor,
            "cold_start_seconds": cold,
            "peak_rss_mib": rss,
            "idle_writes": float(idle),
            "burst_after_last_seconds": done - last,
            "burst_total_seconds": done - first,
            "burst_annotate_seconds": last - first,
        }


FLOOR_WORKERS = 16


def cold_start_bare_kopf(
    handle: ClusterHandle, api: client.ApiClient, namespace: str, workdir: Path, objects: int
) -> float:
    """Seconds a bare kopf operator takes, from its start, to make the writes of a cold
    start (a status write and an Event for each object), with ours stopped: what kopf's
    list, watch and per-event handling cost before any decision is made."""
    log = workdir / f"bare-cold-{namespace}.log"
    with ColdMarkWatch(api, namespace) as marked:
        started = time.time()
        with _bare_operator(handle, namespace, log, mode="cold-start"):
            wait_for(
                lambda: len(marked.phased) == objects,
                timeout=max(600.0, objects * 0.5),
                interval=0.2,
                message=f"the bare kopf operator to write to all {objects} objects",
            )
            return time.time() - started


def cold_start_floor(rest: Rest, namespace: str) -> float:
    """Seconds a bare client takes to make the writes a cold start needs of the
    apiserver, with the operator stopped: one list of the objects, then for each a status
    write (a PUT of the whole object, as the operator makes it) and an Event. The
    operator's shared lists of children are left out (a few per hundred objects)."""
    started = time.time()
    listed = rest.request("GET", aid.collection(namespace)) or {}
    message = f"floor {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"

    def write(obj: dict[str, Any]) -> None:
        cold_start_writes(rest, obj, message, "bench-floor")

    with ThreadPoolExecutor(FLOOR_WORKERS) as pool:
        list(pool.map(write, listed.get("items") or []))
    return time.time() - started


_REQUEST = re.compile(r'"(GET|POST|PUT|PATCH|DELETE) (/[^ ?"]*)')


def _resource(path: str) -> str:
    """`/apis/apps/v1/namespaces/x/deployments/y` -> `deployments`; a subresource kept."""
    parts = [p for p in path.split("/") if p]
    if "namespaces" in parts:
        parts = parts[parts.index("namespaces") + 2 :]
    return parts[0] + ("/" + parts[2] if len(parts) > 2 else "") if parts else path


def writes_per_lifecycle(
    handle: ClusterHandle, api: client.ApiClient, rest: Rest, workdir: Path
) -> tuple[Counter[str], Counter[str]]:
    """(writes, reads) the operator made for one object from approval to Succeeded."""
    with _namespace(api, "bench-lifecycle") as namespace:
        operator = OperatorProcess(handle.kubeconfig, namespace, workdir / f"op-{namespace}.log")
        with operator, SimulatedNode(client.AppsV1Api(api), namespace):
            aid.create(rest, namespace, _waiting_manifest("life"))
            aid.wait_phase(rest, namespace, "life", "AwaitingApproval", timeout=30)
            aid.settled(rest, operator, namespace, "life")
            offset = len(operator.log_text())
            aid.annotate(rest, namespace, "life", _last_approval("life"))
            aid.wait_phase(rest, namespace, "life", "Succeeded", timeout=60)
            aid.settled(rest, operator, namespace, "life")
            log = operator.log_text()[offset:]
    writes: Counter[str] = Counter()
    reads: Counter[str] = Counter()
    for verb, path in _REQUEST.findall(log):
        (reads if verb == "GET" else writes)[f"{verb} {_resource(path)}"] += 1
    return writes, reads
