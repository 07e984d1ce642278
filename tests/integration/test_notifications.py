"""Notifications (issue 15) end to end: a real operator, a real apiserver, and a CloudEvents
receiver on loopback that parses what it gets with the CloudEvents SDK.

A lifecycle (1.0.0 approved, verified GREEN, live, closed; then 2.0.0 approved, RED, rolled
back, closed) must reach the receiver as exactly the expected sequence of types, each id
once after de-duplication, whatever happens to the receiver or the operator meanwhile.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from aideploy.api.constants import GROUP, VERSION
from aideploy.kube.records import list_records
from aideploy.kube.rest import Rest
from aideploy.logic import notify_events as ev
from aideploy.logic.notify_events import record_notifications
from tests.integration.conftest import routed_args
from tests.support import aid
from tests.support.backend import VersionedBackend
from tests.support.cluster import ClusterHandle, create_namespace, delete_namespace, wait_for
from tests.support.kubelet import SimulatedNode
from tests.support.modelserver import ModelServer
from tests.support.operator import OperatorProcess, running
from tests.support.paths import EXAMPLES_DIR
from tests.support.receiver import CloudEventsReceiver
from tests.unit.factories import full_checklist, make_spec

pytestmark = pytest.mark.integration

NAME = "scorer"
ROLES = ["system-owner", "deployment-manager"]
CLUSTER = "test-cluster"
NOTIFIERS = f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/aideploymentnotifiers"

FIRST = [
    ev.APPROVAL_REQUESTED,
    ev.APPROVAL_GIVEN,
    ev.SERVICE_DEPLOYED,
    ev.TESTSUITERUN_FINISHED,
    ev.SERVICE_PUBLISHED,
    ev.DEPLOYMENT_CLOSED,
]
SECOND = [
    ev.APPROVAL_REQUESTED,
    ev.APPROVAL_GIVEN,
    ev.SERVICE_UPGRADED,
    ev.TESTSUITERUN_FINISHED,
    ev.SERVICE_ROLLEDBACK,
    ev.DEPLOYMENT_CLOSED,
]


def notify_args(model_server: ModelServer, preview_server: ModelServer) -> list[str]:
    return [
        *routed_args(model_server, preview_server),
        "--notify-interval",
        "0.5",  # the smallest the operator takes
        "--cluster-name",
        CLUSTER,
    ]


@pytest.fixture
def notifying_operator(
    kube_cluster: ClusterHandle,
    namespace: str,
    crds: list[str],
    tmp_path: Path,
    model_server: ModelServer,
    preview_server: ModelServer,
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(
        kube_cluster.kubeconfig,
        namespace,
        tmp_path / "operator.log",
        base_args=notify_args(model_server, preview_server),
    )
    with running(process):
        yield process


@pytest.fixture
def receiver() -> Iterator[CloudEventsReceiver]:
    with CloudEventsReceiver() as r:
        yield r


def secret(rest: Rest, namespace: str, name: str, url: str) -> None:
    rest.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/secrets",
        body={
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "data": {"url": base64.b64encode(url.encode()).decode()},
        },
    )


def notifier(
    rest: Rest,
    namespace: str,
    sinks: dict[str, str],
    templates: dict[str, str] | None = None,
    events: dict[str, list[str]] | None = None,
    **spec: Any,
) -> None:
    """A notifier with one sink per (name, url): each URL in a Secret of its own."""
    specs = []
    for sink, url in sinks.items():
        secret(rest, namespace, f"{sink}-url", url)
        ref = {"url": {"secretKeyRef": {"name": f"{sink}-url", "key": "url"}}}
        template = (templates or {}).get(sink)
        kind = {"webhook": {**ref, "template": template}} if template else {"cloudEvents": ref}
        specs.append({"name": sink, **kind, "events": (events or {}).get(sink, [])})
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AIDeploymentNotifier",
        "metadata": {"name": "stakeholders"},
        "spec": {"sinks": specs, **spec},
    }
    rest.request("POST", NOTIFIERS.format(namespace=namespace), body=body)


def notifier_status(rest: Rest, namespace: str) -> dict[str, Any]:
    found = rest.request("GET", NOTIFIERS.format(namespace=namespace) + "/stakeholders") or {}
    return dict(found.get("status") or {})


def delivering(rest: Rest, namespace: str, sink: str) -> dict[str, Any] | None:
    sinks = notifier_status(rest, namespace).get("sinks") or {}
    conditions = (sinks.get(sink) or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Delivering"), None)


def spec(server: ModelServer, version: str) -> dict[str, Any]:
    probe = aid.golden_probe(server)
    del probe["inference"]["url"]  # routed to the stable and preview Services' stand-ins
    return make_spec("minimal", version=version, verification={"probes": [probe]})


def has(types: list[str]) -> Any:
    return lambda r: r.types()[: len(types)] == types and len(r.types()) >= len(types)


def first_rollout(rest: Rest, namespace: str, server: ModelServer, receiver: Any) -> None:
    aid.create(rest, namespace, aid.manifest(NAME, spec(server, "1.0.0"), full_checklist()))
    aid.wait_phase(rest, namespace, NAME, "AwaitingApproval")
    if receiver is not None:  # the request is sent while the object waits: see it first
        receiver.wait_for(has(FIRST[:1]))
    aid.approve_all(rest, namespace, NAME, ROLES)
    aid.wait_phase(rest, namespace, NAME, "Succeeded")


def second_rollout(
    rest: Rest, namespace: str, server: ModelServer, backend: VersionedBackend, receiver: Any
) -> None:
    backend.modes["2.0.0"] = "wrong"
    aid.merge_patch(rest, namespace, NAME, {"spec": spec(server, "2.0.0")})
    wait_for(
        lambda: (
            aid.status(rest, namespace, NAME).get("phase") == "AwaitingApproval"
            and aid.status(rest, namespace, NAME)["currentRelease"]["version"] == "1.0.0"
        ),
        message="2.0.0 waiting for approval",
    )
    if receiver is not None:
        receiver.wait_for(has([*FIRST, ev.APPROVAL_REQUESTED]))
    else:  # the sink cannot hear it now: wait until the operator has seen the wait
        wait_for(lambda: seen_waiting(rest, namespace), message="the wait kept in the cursor")
    aid.approve_all(rest, namespace, NAME, ROLES)
    aid.wait_phase(rest, namespace, NAME, "RolledBack")


def seen_waiting(rest: Rest, namespace: str, sink: str = "events") -> bool:
    """The sink's cursor keeps the wait for approval of the spec now stored: its request
    goes out once the sink answers, even if the gate opens first."""
    obj = aid.get(rest, namespace, NAME)
    digest = (obj.get("status") or {}).get("specDigest")
    sinks = notifier_status(rest, namespace).get("sinks") or {}
    cursor = ((sinks.get(sink) or {}).get("cursors") or {}).get(obj["metadata"]["uid"]) or {}
    return bool(digest) and (cursor.get("waiting") or {}).get("subject", [""])[-1] == digest


def expected_record_ids(rest: Rest, namespace: str) -> list[str]:
    """The ids the records make, computed here from the chain as stored."""
    return [
        n.id for n in record_notifications(list_records(rest, namespace, NAME), CLUSTER, namespace)
    ]


def assert_complete(rest: Rest, namespace: str, receiver: CloudEventsReceiver) -> None:
    """Exactly the lifecycle, in order, each id once after de-duplication, the ids those
    derived from the stored chain."""
    receiver.wait_for(has(FIRST + SECOND), timeout=90)
    unique = receiver.unique()
    assert [e.type for e in unique] == FIRST + SECOND
    # Every id is the one the stored chain makes (an approval record makes again the
    # request it answered, with the id of the wait's own request).
    assert [e.id for e in unique] == expected_record_ids(rest, namespace)
    for event in unique:
        custom = event.data["customData"]["aideploy"]
        assert (custom["cluster"], custom["namespace"], custom["name"]) == (
            CLUSTER,
            namespace,
            NAME,
        )
        assert custom["digest"].startswith("sha256:")
        # Each names the record it belongs to (the very first request: none exists yet).
        assert custom["record"]["hash"] or event is unique[0]
        assert event.data["context"]["id"] == event.id
        assert event.headers["content-type"].startswith("application/cloudevents+json")


def test_a_lifecycle_is_told_as_the_expected_cdevents_with_stable_ids(
    rest: Rest,
    namespace: str,
    notifying_operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
    receiver: CloudEventsReceiver,
) -> None:
    notifier(rest, namespace, {"events": receiver.url})
    first_rollout(rest, namespace, model_server, receiver)
    second_rollout(rest, namespace, model_server, backend, receiver)
    assert_complete(rest, namespace, receiver)
    assert len(receiver.ids()) == len(FIRST + SECOND)  # nothing went twice on a good day
    request = receiver.unique()[0].data["customData"]["aideploy"]
    assert request["missingRoles"] and any(
        "kubectl aideploy approve" in c for c in request["approve"]
    )
    rolled = receiver.unique()[-2].data["customData"]["aideploy"]
    assert rolled["trigger"] == "ProbesRed" and rolled["restored"]["version"] == "1.0.0"
    wait_for(lambda: (delivering(rest, namespace, "events") or {}).get("status") == "True")


def test_a_receiver_down_for_a_while_gets_everything_once_back(
    rest: Rest,
    namespace: str,
    notifying_operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
    receiver: CloudEventsReceiver,
) -> None:
    notifier(rest, namespace, {"events": receiver.url})
    first_rollout(rest, namespace, model_server, receiver)
    receiver.stop()  # the whole second rollout happens while the sink is unreachable
    second_rollout(rest, namespace, model_server, backend, None)
    condition = wait_for(
        lambda: (c := delivering(rest, namespace, "events")) and c["status"] == "False" and c,
        message="the sink reported unreachable",
    )
    assert condition["reason"] == "SinkUnreachable" and "once it answers" in condition["message"]
    receiver.start()
    assert_complete(rest, namespace, receiver)


def test_a_500_storm_loses_and_duplicates_nothing(
    rest: Rest,
    namespace: str,
    notifying_operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
    receiver: CloudEventsReceiver,
) -> None:
    notifier(rest, namespace, {"events": receiver.url})
    first_rollout(rest, namespace, model_server, receiver)
    before = receiver.requests
    receiver.status = 500
    second_rollout(rest, namespace, model_server, backend, None)
    # Retried with backoff (1, 2, 4 ... 30 s): three refused attempts are the storm's evidence.
    wait_for(lambda: receiver.requests >= before + 3, timeout=90, message="retries in the storm")
    receiver.status = 200
    assert_complete(rest, namespace, receiver)


def test_the_operator_killed_mid_delivery_delivers_the_rest_after_restart(
    rest: Rest,
    namespace: str,
    notifying_operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
    receiver: CloudEventsReceiver,
) -> None:
    notifier(rest, namespace, {"events": receiver.url})
    first_rollout(rest, namespace, model_server, receiver)
    receiver.stop()
    second_rollout(rest, namespace, model_server, backend, None)
    # The third event of the second rollout is held unanswered: the kill lands while its
    # delivery is under way, before the operator could move its cursor past it.
    receiver.hold_arrival = receiver.requests + 3
    receiver.start()
    assert receiver.holding.wait(timeout=60), "no delivery reached the receiver"
    notifying_operator.kill()
    receiver.release.set()  # taken now, though its sender is gone
    notifying_operator.start()
    assert_complete(rest, namespace, receiver)
    # Sent again by the restarted operator, under the same id: at-least-once.
    assert receiver.ids().count(receiver.held_id) >= 2, receiver.held_id


def test_a_sink_refusing_everything_holds_back_no_other_and_no_secret_leaks(
    rest: Rest,
    namespace: str,
    notifying_operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
    receiver: CloudEventsReceiver,
) -> None:
    token = "T0KEN-4c1d-never-shown"
    with CloudEventsReceiver() as refusing, CloudEventsReceiver() as chat:
        refusing.status = 403
        notifier(
            rest,
            namespace,
            {
                "events": f"{receiver.url}?token={token}",
                "refusing": f"{refusing.url}/{token}",
                "gone": f"http://127.0.0.1:9/{token}",  # nothing listens: refused
                # Where aiohttp's error text would carry it: a malformed URL, and the host.
                "malformed": f"http://[{token}/hook",
                "host": f"http://{token}.invalid/hook",
                "slack": f"{chat.url}/{token}",
            },
            templates={"slack": "slack"},
        )
        first_rollout(rest, namespace, model_server, receiver)
        second_rollout(rest, namespace, model_server, backend, receiver)
        assert_complete(rest, namespace, receiver)
        chat.wait_for(lambda r: len(r.bodies) >= len(FIRST + SECOND))
        assert chat.bodies[0]["text"] == f"Approval requested: {CLUSTER}/{namespace}/{NAME} 1.0.0"
        assert "kubectl aideploy approve" in chat.bodies[0]["blocks"][0]["text"]["text"]
    rejected = wait_for(lambda: delivering(rest, namespace, "refusing"), message="a condition")
    assert (rejected["status"], rejected["reason"]) == ("False", "SinkRejectedEvent")
    assert "HTTP 403" in rejected["message"]
    wait_for(
        lambda: any(
            e["reason"] == "SinkRejectedEvent"
            and e["involvedObject"]["kind"] == "AIDeploymentNotifier"
            for e in (rest.request("GET", f"/api/v1/namespaces/{namespace}/events") or {})["items"]
        ),
        message="an Event on the notifier",
    )
    assert (delivering(rest, namespace, "gone") or {}).get("reason") == "SinkUnreachable"
    malformed = wait_for(lambda: delivering(rest, namespace, "malformed"), message="a condition")
    assert malformed["reason"] == "SinkRejectedEvent"  # no retry makes it valid
    assert "an invalid URL" in malformed["message"]
    everything = [
        notifying_operator.log_text(),
        json.dumps(notifier_status(rest, namespace)),
        json.dumps(aid.status(rest, namespace, NAME)),
        json.dumps(rest.request("GET", f"/api/v1/namespaces/{namespace}/events")),
        json.dumps(list_records(rest, namespace, NAME)),
        json.dumps([e.data for e in receiver.events]),
    ]
    for text in everything:
        assert token.lower() not in text.lower()  # a host is lower-cased


def test_the_slack_example_is_accepted_by_the_apiserver(
    rest: Rest, namespace: str, crds: list[str]
) -> None:
    documents = yaml.safe_load_all((EXAMPLES_DIR / "notifications" / "slack.yaml").read_text())
    for document in documents:
        if document["kind"] == "Secret":
            path = f"/api/v1/namespaces/{namespace}/secrets"
        else:
            path = NOTIFIERS.format(namespace=namespace)
        rest.request("POST", path, body=document)
    stored = rest.request("GET", NOTIFIERS.format(namespace=namespace) + "/fraud-team") or {}
    assert [s["name"] for s in stored["spec"]["sinks"]] == ["cdevents", "slack"]
    assert stored["spec"]["reminders"]["escalateTo"] == "slack"


def test_reminders_while_waiting_and_one_escalation_to_the_second_sink(
    rest: Rest,
    namespace: str,
    notifying_operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
    receiver: CloudEventsReceiver,
) -> None:
    with CloudEventsReceiver() as managers:
        notifier(
            rest,
            namespace,
            {"events": receiver.url, "managers": managers.url},
            events={"managers": ["closed"]},
            # The shortest the API accepts: reminders are never more often than a minute.
            reminders={"interval": "1m", "escalateAfter": "1m", "escalateTo": "managers"},
        )
        aid.create(
            rest, namespace, aid.manifest(NAME, spec(model_server, "1.0.0"), full_checklist())
        )
        receiver.wait_for(lambda r: r.types().count(ev.APPROVAL_REQUESTED) >= 2, timeout=150)
        managers.wait_for(lambda r: len(r.unique()) >= 1, timeout=60)
        aid.approve_all(rest, namespace, NAME, ROLES)
        aid.wait_phase(rest, namespace, NAME, "Succeeded")
        receiver.wait_for(lambda r: ev.DEPLOYMENT_CLOSED in r.types())
        managers.wait_for(lambda r: len(r.unique()) >= 2)
        # The requests, reminders and escalation all came before the approval: none after.
        types = receiver.types()
        first_given = types.index(ev.APPROVAL_GIVEN)
        assert set(types[:first_given]) == {ev.APPROVAL_REQUESTED}
        assert types[first_given:] == FIRST[1:]
        reminders = [e.data["customData"]["aideploy"].get("reminder") for e in receiver.unique()]
        assert reminders[1:first_given] == list(range(1, first_given))
        # The managers heard the escalation once, then only what they chose: the closure.
        escalation, closed = managers.unique()
        assert escalation.data["customData"]["aideploy"]["escalated"] is True
        assert closed.type == ev.DEPLOYMENT_CLOSED


def test_the_default_notifier_reports_on_namespaces_without_their_own(
    rest: Rest,
    namespace: str,
    kube_cluster: ClusterHandle,
    kube_api: Any,
    crds: list[str],
    tmp_path: Path,
    node: SimulatedNode,
    model_server: ModelServer,
    preview_server: ModelServer,
    backend: VersionedBackend,
    receiver: CloudEventsReceiver,
) -> None:
    ops = f"{namespace[:50]}-ops"
    create_namespace(kube_api, ops)
    try:
        notifier(rest, ops, {"events": receiver.url})  # in a namespace the operator does not watch
        process = OperatorProcess(
            kube_cluster.kubeconfig,
            namespace,
            tmp_path / "operator.log",
            base_args=[
                *notify_args(model_server, preview_server),
                "--default-notifier",
                f"{ops}/stakeholders",
            ],
        )
        with running(process):
            first_rollout(rest, namespace, model_server, receiver)
            receiver.wait_for(has(FIRST))
        assert receiver.types() == FIRST
        assert {e.data["customData"]["aideploy"]["namespace"] for e in receiver.unique()} == {
            namespace
        }
    finally:
        delete_namespace(kube_api, ops)


def test_a_sink_added_later_hears_from_then_on_without_history(
    rest: Rest,
    namespace: str,
    notifying_operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
    receiver: CloudEventsReceiver,
) -> None:
    with CloudEventsReceiver() as late:
        notifier(rest, namespace, {"events": receiver.url})
        first_rollout(rest, namespace, model_server, receiver)
        receiver.wait_for(has(FIRST))
        secret(rest, namespace, "late-url", late.url)
        path = NOTIFIERS.format(namespace=namespace) + "/stakeholders"
        stored = rest.request("GET", path) or {}
        sinks = [
            *stored["spec"]["sinks"],
            {
                "name": "late",
                "cloudEvents": {"url": {"secretKeyRef": {"name": "late-url", "key": "url"}}},
            },
        ]
        rest.request(
            "PATCH",
            path,
            body={"spec": {"sinks": sinks}},
            content_type="application/merge-patch+json",
        )
        wait_for(
            lambda: ((notifier_status(rest, namespace).get("sinks") or {}).get("late") or {}).get(
                "since"
            ),
            message="the new sink's start kept in the status",
        )
        second_rollout(rest, namespace, model_server, backend, receiver)
        assert_complete(rest, namespace, receiver)
        late.wait_for(has(SECOND))
        assert late.types() == SECOND


def test_a_missing_secret_is_reported_and_events_wait_for_it(
    rest: Rest,
    namespace: str,
    notifying_operator: OperatorProcess,
    node: SimulatedNode,
    model_server: ModelServer,
    backend: VersionedBackend,
    receiver: CloudEventsReceiver,
) -> None:
    notifier(rest, namespace, {"events": receiver.url})
    rest.request("DELETE", f"/api/v1/namespaces/{namespace}/secrets/events-url")
    aid.create(rest, namespace, aid.manifest(NAME, spec(model_server, "1.0.0"), full_checklist()))
    condition = wait_for(
        lambda: (
            (c := delivering(rest, namespace, "events")) and c["reason"] == "SecretMissing" and c
        ),
        message="SecretMissing",
    )
    assert condition["status"] == "False" and condition["observedGeneration"] == 1
    assert (
        f"Secret {namespace}/events-url key url: no such Secret; create it" in condition["message"]
    )
    assert condition["lastTransitionTime"].endswith("Z")
    aid.approve_all(rest, namespace, NAME, ROLES)
    aid.wait_phase(rest, namespace, NAME, "Succeeded")  # the rollout never waits for a sink
    secret(rest, namespace, "events-url", receiver.url)
    receiver.wait_for(has(FIRST))
    assert receiver.types() == FIRST
