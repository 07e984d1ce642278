"""Benchmark of the blue-green strategy on the local control plane (`make bench`): prints
figures, asserts nothing about speed.

Per round (ROUNDS of them), one AIDeployment goes 1.0.0 -> 2.0.0 (answers wrongly: RED at
verification) -> 3.0.0 (GREEN, then a RED signal during its watch). Measured:
- the status write that reports GREEN -> the stable Service switched to 3.0.0 (both seen by
  this process's watches, on one clock);
- status.rollback.redAt (the operator's clock, milliseconds) -> the stable Service back on
  1.0.0's running pods (seen by the watch);
- requests users sent to the stable Service while it reached a release not verified GREEN:
  a client calls it all along, and each answer is counted under the version the stable
  Service reached at that moment (2.0.0 never is; 3.0.0 only after its GREEN).

Run `python -m tests.bench.strategy [--rounds N]`, or against another cluster with
AIDEPLOY_TEST_KUBECONFIG (then nothing is started or stopped but a namespace).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from aideploy.api.digest import release_id
from aideploy.kube.crds import apply_crds
from aideploy.kube.rest import Rest
from tests.support import aid
from tests.support.aid import CRDS_DIR
from tests.support.backend import VersionedBackend
from tests.support.cluster import (
    ClusterHandle,
    api_client,
    create_namespace,
    delete_namespace,
    external_kubeconfig,
    open_cluster,
    start_local_cluster,
    stop_local_cluster,
    wait_for,
)
from tests.support.kubelet import SimulatedNode
from tests.support.modelserver import ModelServer
from tests.support.operator import OperatorProcess
from tests.support.prometheus import PrometheusServer
from tests.unit.factories import full_checklist, make_spec

ROLES = ["system-owner", "deployment-manager"]
NAME = "scorer"


def _spec(version: str, prometheus_url: str) -> dict[str, Any]:
    golden = {
        "name": "golden",
        "inference": {
            "model": "test-model",
            "timeout": "3s",
            "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [1], "data": [3]}],
            "expect": [{"name": "output-0", "data": [6], "tolerance": 0.001}],
        },
    }
    signal = {
        "name": "error-rate",
        "prometheus": {
            "url": prometheus_url,
            "query": "sum(rate(model_errors_total[5s]))",
            "green": "<= 0",
            "red": "> 0",
            "noData": "GREEN",
        },
    }
    return make_spec(
        "minimal",
        version=version,
        verification={"timeout": "60s", "probes": [golden]},
        monitoring={"duration": "10m", "interval": "1s", "signals": [signal]},
    )


class ServiceWatch:
    """When (time.time()) the stable Service started selecting each release id."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self._core = client.CoreV1Api(api)
        self._namespace = namespace
        self.selected_at: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            stream = watch.Watch()
            with contextlib.suppress(Exception):
                for event in stream.stream(
                    self._core.list_namespaced_service,
                    self._namespace,
                    field_selector=f"metadata.name={NAME}",
                    timeout_seconds=2,
                ):
                    rid = (event["object"].spec.selector or {}).get("aideploy.io/release")
                    if rid:
                        self.selected_at.setdefault(rid, time.time())
                    if self._stop.is_set():
                        stream.stop()

    def __enter__(self) -> ServiceWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class PhaseWatch:
    """When (time.time()) each (generation, phase) of the AIDeployment was first seen."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self._custom = client.CustomObjectsApi(api)
        self._namespace = namespace
        self.seen_at: dict[tuple[int, str], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            stream = watch.Watch()
            with contextlib.suppress(Exception):
                for event in stream.stream(
                    self._custom.list_namespaced_custom_object,
                    "aideploy.io",
                    "v1alpha1",
                    self._namespace,
                    "aideployments",
                    timeout_seconds=2,
                ):
                    obj = event["object"]
                    status = obj.get("status") or {}
                    key = (int(status.get("observedGeneration") or 0), str(status.get("phase")))
                    self.seen_at.setdefault(key, time.time())
                    if self._stop.is_set():
                        stream.stop()

    def __enter__(self) -> PhaseWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class Users:
    """A client calling the stable Service's stand-in every 20 ms; each answer is counted
    under the version the stable Service reached when it was sent."""

    def __init__(self, server: ModelServer, backend: VersionedBackend) -> None:
        self._server = server
        self._backend = backend
        self.served: Counter[str | None] = Counter()
        #: (time.time(), version) of every answered request.
        self.answers: list[tuple[float, str | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            version, sent = self._backend.deployed_version, time.time()
            try:
                urllib.request.urlopen(f"{self._server.url}/v2/health/live", timeout=1).close()
            except urllib.error.HTTPError:
                pass  # answered (with an error): it reached that version
            except OSError:
                time.sleep(0.02)
                continue
            self.served[version] += 1
            self.answers.append((sent, version))
            time.sleep(0.02)

    def __enter__(self) -> Users:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _deploy(rest: Rest, namespace: str, body: dict[str, Any]) -> int:
    if rest.request("GET", f"{aid.collection(namespace)}/{NAME}") is None:
        aid.create(rest, namespace, aid.manifest(NAME, body, full_checklist()))
    else:
        aid.merge_patch(rest, namespace, NAME, {"spec": body})
    return int(aid.approve_all(rest, namespace, NAME, ROLES)["metadata"]["generation"])


def _rid(rest: Rest, namespace: str) -> str:
    return release_id(str(aid.status(rest, namespace, NAME)["currentRelease"]["digest"]))


def one_round(
    handle: ClusterHandle, api: client.ApiClient, rest: Rest, workdir: Path, number: int
) -> dict[str, Any]:
    namespace = f"bench-strategy-{number}-{int(time.time())}"
    create_namespace(api, namespace)
    try:
        with contextlib.ExitStack() as stack:
            stable = stack.enter_context(ModelServer())
            preview = stack.enter_context(ModelServer())
            prometheus = stack.enter_context(
                PrometheusServer([stable.address], workdir / f"prometheus-{number}")
            )
            backend = stack.enter_context(
                VersionedBackend(api, namespace, NAME, stable, preview, modes={"2.0.0": "wrong"})
            )
            stack.enter_context(SimulatedNode(client.AppsV1Api(api), namespace, delay=0.5))
            operator = OperatorProcess(
                handle.kubeconfig,
                namespace,
                workdir / f"operator-{number}.log",
                base_args=["--probe-base-url", stable.url, "--probe-preview-url", preview.url],
            )
            stack.enter_context(operator)
            services = stack.enter_context(ServiceWatch(api, namespace))
            phases = stack.enter_context(PhaseWatch(api, namespace))
            users = stack.enter_context(Users(stable, backend))

            _deploy(rest, namespace, _spec("1.0.0", prometheus.url))
            aid.wait_phase(rest, namespace, NAME, "Monitoring", timeout=60)
            v1 = _rid(rest, namespace)
            _deploy(rest, namespace, _spec("2.0.0", prometheus.url))  # wrong: RED
            aid.wait_phase(rest, namespace, NAME, "RolledBack", timeout=60)
            generation = _deploy(rest, namespace, _spec("3.0.0", prometheus.url))
            aid.wait_phase(rest, namespace, NAME, "Monitoring", timeout=60)
            v3 = _rid(rest, namespace)
            wait_for(lambda: v3 in services.selected_at, message="the switch to 3.0.0")
            green_seen = phases.seen_at[(generation, "Monitoring")]
            green = services.selected_at[v3] - green_seen
            early = sum(1 for at, v in users.answers if v == "3.0.0" and at < green_seen)
            services.selected_at.pop(v1, None)
            backend.modes["3.0.0"] = "failing"  # errors counted by Prometheus: a RED signal
            status = aid.wait_phase(rest, namespace, NAME, "RolledBack", timeout=60)
            wait_for(lambda: v1 in services.selected_at, message="the switch back to 1.0.0")
            red_at = datetime.fromisoformat(status["rollback"]["redAt"].replace("Z", "+00:00"))
            red = services.selected_at[v1] - red_at.astimezone(UTC).timestamp()
            served = dict(users.served)
        return {
            "green_to_switch": green,
            "red_to_switch": red,
            "served": served,
            "before_green": early,
        }
    finally:
        delete_namespace(api, namespace)


@contextlib.contextmanager
def cluster(workdir: Path) -> Iterator[ClusterHandle]:
    kubeconfig = external_kubeconfig()
    if kubeconfig is not None:
        yield open_cluster(kubeconfig)
        return
    handle = start_local_cluster(workdir / "localcluster")
    try:
        yield handle
    finally:
        stop_local_cluster(handle)


def _ms(values: list[float]) -> str:
    return (
        f"median {statistics.median(values) * 1000:.0f} ms, "
        f"min {min(values) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aideploy-bench-") as tmp, cluster(Path(tmp)) as handle:
        api = api_client(handle)
        rest = Rest(api)
        apply_crds(rest, CRDS_DIR)
        results = [one_round(handle, api, rest, Path(tmp), n) for n in range(args.rounds)]
    served: Counter[str | None] = Counter()
    for result in results:
        served.update(result["served"])
    print(f"blue-green, {args.rounds} rounds (1.0.0 -> 2.0.0 RED -> 3.0.0 GREEN -> RED signal)")
    print(
        "  status reporting GREEN -> stable Service switched:  "
        + _ms([r["green_to_switch"] for r in results])
    )
    print(
        "  monitoring RED (redAt) -> stable Service switched back:  "
        + _ms([r["red_to_switch"] for r in results])
    )
    print(
        "  user requests by the version the stable Service reached: "
        + ", ".join(
            f"{version or 'nothing (before 1.0.0 went live)'}: {count}"
            for version, count in sorted(served.items(), key=lambda item: str(item[0]))
        )
    )
    print(f"  requests that reached 2.0.0 (RED, never verified): {served.get('2.0.0', 0)}")
    print(
        "  requests that reached 3.0.0 before its GREEN was reported: "
        f"{sum(r['before_green'] for r in results)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
