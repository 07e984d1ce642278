"""Watch streams dropped by the network: the operator misses nothing and does nothing twice.

The operator reaches the apiserver through a TCP proxy that drops every connection: at
once (it reconnects straight away), or for a while (a change made meanwhile must be seen
once the way is open again). The operator is never restarted.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from aideploy.kube.records import list_records
from aideploy.kube.rest import Rest
from aideploy.records import verify_chain
from tests.integration.test_gate_lifecycle import ROLES
from tests.support import aid
from tests.support.cluster import ClusterHandle, wait_for
from tests.support.kubelet import SimulatedNode
from tests.support.operator import OperatorProcess, running
from tests.support.tcpproxy import TcpProxy
from tests.unit.factories import full_checklist, make_spec

PHASES = ("AwaitingApproval", "Deploying", "Succeeded")


@pytest.fixture
def proxy(kube_cluster: ClusterHandle) -> Iterator[TcpProxy]:
    config = yaml.safe_load(kube_cluster.kubeconfig.read_text())
    server = urllib.parse.urlsplit(config["clusters"][0]["cluster"]["server"])
    assert server.hostname is not None and server.port is not None
    with TcpProxy(server.hostname, server.port) as started:
        yield started


@pytest.fixture
def proxied_operator(
    kube_cluster: ClusterHandle, proxy: TcpProxy, namespace: str, crds: list[str], tmp_path: Path
) -> Iterator[OperatorProcess]:
    """The operator, with every request and watch going through `proxy`. The proxy listens
    on 127.0.0.1, so the apiserver's certificate must name that address (the local one
    does; so does kind's)."""
    config = yaml.safe_load(kube_cluster.kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    kubeconfig = tmp_path / "proxied.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    with running(OperatorProcess(kubeconfig, namespace, tmp_path / "operator.log")) as process:
        yield process


def _nothing_twice(rest: Rest, namespace: str, name: str) -> None:
    records = list_records(rest, namespace, name)
    assert verify_chain(records, aid.status(rest, namespace, name).get("latestRecord")) == []
    emitted = aid.emitted(rest, namespace, name)
    # Never twice; a RecordWritten cut off in flight is not posted again (the record itself
    # is the evidence, and it is there).
    assert 0 < emitted["RecordWritten"] <= len(records), emitted
    # One Event per phase entered, none lost, none twice.
    phases = {reason: emitted[reason] for reason in PHASES}
    assert phases == dict.fromkeys(PHASES, 1), emitted
    # A write cut off mid-way may be reported (a Warning); it must not be left standing.
    conditions = aid.status(rest, namespace, name).get("conditions") or []
    refused = [c for c in conditions if c["type"] == "WritesAccepted" and c["status"] != "True"]
    assert refused == []
    assert len(aid.deployments_of(rest, namespace, name)) == 1


def test_a_change_made_while_the_streams_are_down_is_seen_when_they_return(
    rest: Rest,
    namespace: str,
    proxy: TcpProxy,
    proxied_operator: OperatorProcess,
    simulated_node: SimulatedNode,
) -> None:
    aid.create(rest, namespace, aid.manifest("scorer", make_spec("minimal"), full_checklist()))
    aid.wait_phase(rest, namespace, "scorer", "AwaitingApproval")
    wait_for(lambda: proxy.open_connections() > 0, message="the operator's watch streams")
    with proxy.down() as dropped:
        assert dropped > 0
        aid.approve_all(rest, namespace, "scorer", ROLES["minimal"])  # nobody can see it
    reconnected = proxy.accepted
    aid.wait_phase(rest, namespace, "scorer", "Succeeded")
    assert proxy.accepted > reconnected  # it came back through the proxy
    assert proxied_operator.running
    aid.settled(rest, proxied_operator, namespace, "scorer")
    _nothing_twice(rest, namespace, "scorer")


def test_streams_dropped_all_through_a_rollout_lose_and_repeat_nothing(
    rest: Rest,
    namespace: str,
    proxy: TcpProxy,
    proxied_operator: OperatorProcess,
    simulated_node: SimulatedNode,
) -> None:
    aid.create(rest, namespace, aid.manifest("scorer", make_spec("minimal"), full_checklist()))
    aid.wait_phase(rest, namespace, "scorer", "AwaitingApproval")
    stop = threading.Event()

    def keep_cutting() -> None:
        while not stop.wait(0.3):
            proxy.cut()

    cutter = threading.Thread(target=keep_cutting, daemon=True)
    cutter.start()
    try:
        aid.approve_all(rest, namespace, "scorer", ROLES["minimal"])
        aid.wait_phase(rest, namespace, "scorer", "Succeeded", timeout=120)
    finally:
        stop.set()
        cutter.join()
    assert proxy.cut_connections > 3
    assert proxied_operator.running
    aid.settled(rest, proxied_operator, namespace, "scorer")
    _nothing_twice(rest, namespace, "scorer")
