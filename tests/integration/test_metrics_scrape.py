"""The operator's /metrics after a full lifecycle (rollout, RED, rollback), scraped over
HTTP from the running process; and again after a restart: gauges come back from the
cluster's state, counters do not count transitions that did not happen again."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from aideploy.kube.rest import Rest
from tests.support import aid
from tests.support.backend import VersionedBackend
from tests.support.cluster import wait_for
from tests.support.kubelet import SimulatedNode
from tests.support.modelserver import ModelServer, free_port
from tests.support.operator import OperatorProcess
from tests.unit.factories import full_checklist, make_spec

pytestmark = pytest.mark.integration

NAME = "scorer"
ROLES = ["system-owner", "deployment-manager"]


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def spec(server: ModelServer, version: str) -> dict[str, Any]:
    probe = aid.golden_probe(server)
    del probe["inference"]["url"]  # to the preview Service's stand-in (routed_operator)
    return make_spec("minimal", version=version, verification={"probes": [probe]})


def test_metrics_after_a_lifecycle_and_after_a_restart(
    rest: Rest,
    namespace: str,
    routed_operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    preview_server: ModelServer,
    kube_api: client.ApiClient,
) -> None:
    operator = routed_operator
    port = free_port()
    operator.stop()
    operator.start(args=["--metrics-port", str(port)])
    with VersionedBackend(
        kube_api, namespace, NAME, model_server, preview_server, modes={"2.0.0": "wrong"}
    ):
        aid.create(
            rest, namespace, aid.manifest(NAME, spec(model_server, "1.0.0"), full_checklist())
        )
        wait_for(
            lambda: value(scrape(port), "aideploy_deployments", phase="AwaitingApproval") == 1,
            message="the AwaitingApproval gauge",
        )
        blocked = scrape(port)
        assert value(blocked, "aideploy_gate_blocked", reason="approvals") == 1
        aid.approve_all(rest, namespace, NAME, ROLES)
        wait_for(
            lambda: aid.status(rest, namespace, NAME).get("phase") == "Succeeded",
            message="1.0.0 to go live",
        )
        aid.merge_patch(rest, namespace, NAME, {"spec": spec(model_server, "2.0.0")})
        aid.approve_all(rest, namespace, NAME, ROLES)
        wait_for(
            lambda: aid.status(rest, namespace, NAME).get("phase") == "RolledBack",
            message="2.0.0 to be rolled back",
        )
    wait_for(
        lambda: value(scrape(port), "aideploy_deployments", phase="RolledBack") == 1,
        message="the RolledBack gauge",
    )
    after = scrape(port)
    assert value(after, "aideploy_deployments", phase="Succeeded") == 0
    assert value(after, "aideploy_gate_blocked", reason="approvals") == 0
    assert value(after, "aideploy_rollbacks_total", reason="probe") == 1
    assert value(after, "aideploy_probe_results_total", probe="golden", result="GREEN") >= 2
    assert value(after, "aideploy_probe_results_total", probe="golden", result="RED") == 1
    # 1.0.0 waited for approval; 2.0.0 may have been approved before the operator saw it.
    assert value(after, "aideploy_approval_wait_seconds_count") >= 1
    assert value(after, "aideploy_red_to_rollback_seconds_count") == 1
    assert value(after, "aideploy_approval_to_ready_seconds_count") == 1
    assert value(after, "aideploy_reconcile_total", result="ok") > 0
    # A restarted operator: the gauges come back from the objects, the counters start at 0.
    operator.stop()
    operator.start(args=["--metrics-port", str(port)])
    wait_for(
        lambda: value(scrape(port), "aideploy_deployments", phase="RolledBack") == 1,
        message="the RolledBack gauge after a restart",
    )
    restarted = scrape(port)
    assert value(restarted, "aideploy_rollbacks_total", reason="probe") == 0
    assert value(restarted, "aideploy_red_to_rollback_seconds_count") == 0
