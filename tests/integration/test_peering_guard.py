"""The standby check reads kopf's real peering object from the apiserver."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from aideploy.kube.crds import apply_crds
from aideploy.kube.rest import Rest
from aideploy.peering import PeeringGuard
from tests.support import aid, peering
from tests.support.operator import OperatorProcess
from tests.support.peering import CHART_CRDS
from tests.unit.factories import make_spec

pytestmark = pytest.mark.integration


def test_a_replica_stands_by_while_a_live_peer_outranks_it(rest: Rest, namespace: str) -> None:
    apply_crds(rest, CHART_CRDS)
    guard = PeeringGuard(rest, "aideploy", "me", priority=10, clusterwide=False)
    path = peering.collection(namespace)
    # No peering object: kopf keeps every replica paused, and so does the guard.
    assert asyncio.run(guard.active(namespace)) is False
    now = datetime.now(UTC)
    peering.create_peering(
        rest,
        namespace,
        "aideploy",
        {
            "me": {"priority": 10, "lifetime": 60, "lastseen": now.isoformat()},
            "older": {"priority": 20, "lifetime": 60, "lastseen": now.isoformat()},
        },
    )
    fresh = PeeringGuard(rest, "aideploy", "me", priority=10, clusterwide=False)
    assert asyncio.run(fresh.active(namespace)) is False
    stale = (now - timedelta(minutes=5)).isoformat()
    rest.request(
        "PATCH",
        f"{path}/aideploy",
        {"status": {"older": {"priority": 20, "lifetime": 60, "lastseen": stale}}},
        content_type="application/merge-patch+json",
    )
    again = PeeringGuard(rest, "aideploy", "me", priority=10, clusterwide=False)
    assert asyncio.run(again.active(namespace)) is True


def test_an_operator_with_peering_reconciles_as_the_only_replica(
    rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    peering.create_peering(rest, namespace, "aideploy")
    operator.stop()
    operator.start(args=["--peering", "aideploy"])
    aid.create(rest, namespace, aid.manifest("solo", make_spec("minimal")))
    aid.wait_phase(rest, namespace, "solo", "AwaitingApproval", timeout=30)
