"""The kopf handlers called directly: they only route watch events to the controller and
admission requests to the policy, so each routing rule is one row here."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import kopf
import pytest

from aideploy import config as config_module
from aideploy import handlers
from aideploy.admission.config import ApproversConfig
from aideploy.api.constants import LABEL_DEPLOYMENT
from aideploy.config import OperatorConfig
from aideploy.controller import ObjectKey, PromotionIndex
from tests.unit.factories import make_spec

KEY: ObjectKey = ("ml", "prod")


class RecordingController:
    def __init__(self) -> None:
        self.triggered: list[ObjectKey] = []
        self.forgotten: list[ObjectKey] = []

    def trigger(self, key: ObjectKey) -> None:
        self.triggered.append(key)

    def forget(self, key: ObjectKey) -> None:
        self.forgotten.append(key)


class RecordingReconciler:
    def __init__(self) -> None:
        self.preempted: list[tuple[ObjectKey, object, dict[str, str]]] = []
        self.forgotten: list[ObjectKey] = []
        #: (key, resourceVersion) per watch event of the object; (key, None) otherwise.
        self.woken: list[tuple[ObjectKey, object]] = []

    def woken_by_event(
        self, key: ObjectKey, resource_version: object, body: dict[str, Any] | None = None
    ) -> None:
        self.woken.append((key, resource_version))

    def woken_otherwise(self, key: ObjectKey) -> None:
        self.woken.append((key, None))

    def preempt(self, key: ObjectKey, generation: object, annotations: dict[str, str]) -> None:
        self.preempted.append((key, generation, dict(annotations)))

    def forget(self, key: ObjectKey) -> None:
        self.forgotten.append(key)


class RecordingMetrics:
    def __init__(self) -> None:
        self.forgotten: list[ObjectKey] = []

    def forget(self, key: ObjectKey) -> None:
        self.forgotten.append(key)


@pytest.fixture
def memo() -> dict[str, Any]:
    return {
        "controller": RecordingController(),
        "reconciler": RecordingReconciler(),
        "promotions": PromotionIndex(),
        "metrics": RecordingMetrics(),
        "approvers": ApproversConfig(),
        "provenance_key": b"k" * 32,
    }


@pytest.fixture
def watched_namespaces() -> Iterator[None]:
    before = config_module.current()
    config_module.configure(OperatorConfig(namespaces=["ml"]))
    yield
    config_module.configure(before)


def changed(
    memo: dict[str, Any],
    event: str,
    name: str,
    spec: dict[str, Any],
    annotations: dict[str, str] | None = None,
) -> None:
    asyncio.run(
        handlers.aideployment_changed(
            event={"type": event},
            name=name,
            namespace="ml",
            spec=spec,
            meta={"generation": 2, "resourceVersion": f"rv-{name}"},
            annotations=annotations or {},
            memo=memo,
        )
    )


def test_every_change_may_pre_empt_the_probes_of_its_object(memo: dict[str, Any]) -> None:
    """The reconciler judges (tests/unit/test_preemption.py); the handler only tells it."""
    changed(memo, "MODIFIED", "prod", {}, {"aideploy.io/rollback": "bad answers"})
    assert memo["reconciler"].preempted == [(KEY, 2, {"aideploy.io/rollback": "bad answers"})]


def test_a_change_triggers_its_object_and_what_promotes_from_it(memo: dict[str, Any]) -> None:
    changed(memo, "ADDED", "prod", {"promotion": {"fromStaging": "staging"}})
    changed(memo, "MODIFIED", "staging", {})
    assert memo["controller"].triggered == [KEY, ("ml", "staging"), KEY]
    # The object's own events say at which resourceVersion; a dependent is told it was
    # woken by something else (it is then reconciled in full, aideploy.settling).
    assert memo["reconciler"].woken == [
        (KEY, "rv-prod"),
        (("ml", "staging"), "rv-staging"),
        (KEY, None),
    ]


def test_a_deletion_forgets_the_object_everywhere(memo: dict[str, Any]) -> None:
    changed(memo, "ADDED", "prod", {"promotion": {"fromStaging": "staging"}})
    changed(memo, "DELETED", "prod", {})
    assert memo["controller"].forgotten == [KEY]
    assert memo["metrics"].forgotten == [KEY]
    assert memo["reconciler"].forgotten == [KEY]
    assert memo["promotions"].dependents(("ml", "staging")) == []


def test_a_child_change_wakes_its_owner(memo: dict[str, Any]) -> None:
    """Called on the loop by the informers (aideploy.kube.child_cache), which pick the
    owner from the child's labels."""
    handlers._child_changed(memo, KEY)
    assert memo["controller"].triggered == [KEY]
    assert memo["reconciler"].woken == [(KEY, None)]


@pytest.mark.parametrize(
    ("labels", "namespace", "triggered"),
    [
        ({LABEL_DEPLOYMENT: "prod"}, "ml", [KEY]),
        ({}, "ml", []),  # a managed Deployment that names no owner
        ({LABEL_DEPLOYMENT: "prod"}, None, []),
    ],
)
def test_without_informers_kopf_s_deployment_events_wake_the_owner(
    memo: dict[str, Any], labels: dict[str, str], namespace: str | None, triggered: list[ObjectKey]
) -> None:
    """Namespace patterns cannot be listed: kopf watches the Deployments instead."""
    asyncio.run(handlers.child_changed(labels=labels, namespace=namespace, memo=memo))
    assert memo["controller"].triggered == triggered
    assert memo["reconciler"].woken == [(key, None) for key in triggered]


def test_a_child_change_while_starting_wakes_nobody() -> None:
    """Before the controller exists every object's first reconcile is due anyway."""
    memo: dict[str, Any] = {"reconciler": RecordingReconciler()}
    handlers._child_changed(memo, KEY)
    assert memo["reconciler"].woken == []


def _admission(memo: dict[str, Any], namespace: str, annotations: dict[str, str]) -> kopf.Patch:
    patch = kopf.Patch()
    spec = make_spec("minimal")
    new = kopf.Body({"metadata": {"annotations": annotations}, "spec": spec})
    old = kopf.Body({"metadata": {"annotations": {}}, "spec": spec})
    asyncio.run(
        handlers.provenance(
            userinfo={"username": "mallory", "groups": ["developers"]},
            patch=patch,
            memo=memo,
            old=old,
            new=new,
            namespace=namespace,
            operation="UPDATE",
        )
    )
    return patch


def test_admission_refuses_an_approval_by_someone_without_the_role(
    memo: dict[str, Any], watched_namespaces: None
) -> None:
    with pytest.raises(kopf.AdmissionError, match="may not approve as system-owner"):
        _admission(memo, "ml", {"approval.aideploy.io/system-owner": "sha256:abc; by=me"})


def test_admission_leaves_namespaces_it_does_not_watch_alone(
    memo: dict[str, Any], watched_namespaces: None
) -> None:
    patch = _admission(memo, "elsewhere", {"approval.aideploy.io/system-owner": "sha256:abc"})
    assert dict(patch) == {}


def test_admission_stamps_provenance_on_a_checklist_answer(
    memo: dict[str, Any], watched_namespaces: None
) -> None:
    patch = _admission(memo, "ml", {"checklist.aideploy.io/1.1": "yes https://e.example/1"})
    stamped = patch["metadata"]["annotations"]
    assert list(stamped) == ["provenance.aideploy.io/checklist-1.1"]
