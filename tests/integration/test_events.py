"""Repeated Events are aggregated in the real apiserver: one Event object whose `count` and
`lastTimestamp` move, as Kubernetes' own recorder does, instead of one object per repeat."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aideploy.api.times import parse_time
from aideploy.kube.resources import Resources
from aideploy.kube.rest import Rest
from tests.support import aid
from tests.support.cluster import wait_for
from tests.support.operator import OperatorProcess
from tests.unit.factories import full_checklist, gate_annotations, make_spec

pytestmark = pytest.mark.integration

CLOCK = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)


def _warnings(rest: Rest, namespace: str, name: str) -> list[dict[str, Any]]:
    return [e for e in aid.events(rest, namespace, name) if e["type"] == "Warning"]


def test_repeats_bump_one_event_and_an_expired_one_is_posted_anew(
    rest: Rest, namespace: str, crds: list[str]
) -> None:
    spec = make_spec("minimal")
    obj = aid.create(rest, namespace, aid.manifest("flappy", spec, gate_annotations(spec)))
    resources = Resources(rest)
    for minute in range(3):
        at = CLOCK + timedelta(minutes=minute)
        resources.emit_event(obj, "Warning", "Held", "probe latency AMBER", at)
    (event,) = aid.events(rest, namespace, "flappy")
    assert event["count"] == 3
    assert event["firstTimestamp"] == "2026-03-02T10:00:00Z"
    assert event["lastTimestamp"] == "2026-03-02T10:02:00Z"
    assert event["involvedObject"]["uid"] == obj["metadata"]["uid"]

    resources.emit_event(obj, "Warning", "Held", "probe errors AMBER", CLOCK)
    assert sorted(e["count"] for e in aid.events(rest, namespace, "flappy")) == [1, 3]

    # The apiserver drops Events after its TTL; the next repeat posts a new one.
    path = f"/api/v1/namespaces/{namespace}/events/{event['metadata']['name']}"
    rest.request("DELETE", path)
    for minute in (3, 4):
        at = CLOCK + timedelta(minutes=minute)
        resources.emit_event(obj, "Warning", "Held", "probe latency AMBER", at)
    latency = [e for e in aid.events(rest, namespace, "flappy") if "latency" in e["message"]]
    assert [(e["count"], e["lastTimestamp"]) for e in latency] == [(2, "2026-03-02T10:04:00Z")]
    assert latency[0]["metadata"]["name"] != event["metadata"]["name"]


def test_a_flapping_object_is_one_event_with_a_count(
    rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    broken = make_spec("minimal", template={"spec": {"containers": []}})
    aid.create(rest, namespace, aid.manifest("flappy", broken, full_checklist()))
    aid.wait_phase(rest, namespace, "flappy", "Failed")
    (first,) = wait_for(lambda: _warnings(rest, namespace, "flappy"), message="a Warning Event")
    time.sleep(1.1)  # Event times have second precision
    for _ in range(2):  # fixed, then broken again: the same Warning each time
        aid.merge_patch(rest, namespace, "flappy", {"spec": {"template": make_spec()["template"]}})
        aid.wait_phase(rest, namespace, "flappy", "AwaitingApproval")
        aid.merge_patch(rest, namespace, "flappy", {"spec": {"template": broken["template"]}})
        aid.wait_phase(rest, namespace, "flappy", "Failed")
    (event,) = wait_for(
        lambda: [e for e in _warnings(rest, namespace, "flappy") if e["count"] >= 3] or None,
        message="the Warning Event to be counted three times",
    )
    assert event["metadata"]["name"] == first["metadata"]["name"]
    assert event["message"] == first["message"]
    assert parse_time(event["lastTimestamp"]) > parse_time(first["lastTimestamp"])
    assert len(_warnings(rest, namespace, "flappy")) == 1
    assert aid.emitted(rest, namespace, "flappy")["AwaitingApproval"] == 2
