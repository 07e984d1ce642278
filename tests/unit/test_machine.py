"""The phase machine as a table of situations, plus the invariants that make reconciles
idempotent (deciding twice on the same inputs changes nothing)."""

from __future__ import annotations

import copy
import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from aideploy.api.constants import ANNOTATION_SPEC_DIGEST, Phase
from aideploy.api.digest import release_id, spec_digest
from aideploy.api.status import AIDeploymentStatus
from aideploy.kube.observe import workloads
from aideploy.logic.machine import Observation, Plan, decide
from aideploy.logic.topology import WorkloadChanges, Workloads
from aideploy.logic.workload import Owner

from .factories import NOW, approvals_for, full_checklist, gate_annotations, make_spec

OWNER = Owner(name="fraud-scorer", namespace="ml", uid="uid-1")


def observe(
    spec: dict[str, Any],
    annotations: dict[str, str] | None = None,
    status: AIDeploymentStatus | None = None,
    deployment: dict[str, Any] | Workloads | None = None,
    generation: int = 1,
    later: timedelta = timedelta(0),
) -> Observation:
    if isinstance(deployment, dict):  # one Deployment, read as the reconciler reads it
        deployment = workloads(OWNER, [deployment], [])
    return Observation(
        owner=OWNER,
        generation=generation,
        annotations=annotations or {},
        raw_spec=spec,
        status=status or AIDeploymentStatus(),
        workloads=deployment or Workloads(),
        now=NOW + later,
    )


def child_from(
    plan: Plan, available: bool, generation: int = 1, before: Workloads | None = None
) -> Workloads:
    """The children as the apiserver would return them after carrying out the plan over
    `before`, with every pod asked for running (available or not)."""
    deployments = {
        k: copy.deepcopy(dict(v)) for k, v in (before or Workloads()).deployments.items()
    }
    services = {k: copy.deepcopy(dict(v)) for k, v in (before or Workloads()).services.items()}
    changes = plan.apply or WorkloadChanges()
    for manifest in changes.deployments:
        deployments[manifest["metadata"]["name"]] = copy.deepcopy(manifest)
    for manifest in changes.services:
        services[manifest["metadata"]["name"]] = copy.deepcopy(manifest)
    for name in changes.scale_downs:
        deployments[name]["spec"]["replicas"] = 0
    for kind, name in changes.deletes:
        (deployments if kind == "Deployment" else services).pop(name, None)
    for child in deployments.values():
        replicas = child["spec"]["replicas"]
        child["metadata"] = {**child["metadata"], "generation": generation}
        child["status"] = {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas if available else 0,
        }
    return Workloads(deployments=deployments, services=services)


def applied(plan: Plan) -> dict[str, Any]:
    """The one Deployment the plan applies."""
    assert plan.apply is not None
    (deployment,) = plan.apply.deployments
    return deployment


def cond(plan: Plan, type_: str) -> tuple[str, str]:
    condition = plan.status.condition(type_)
    assert condition is not None, type_
    return condition.status, condition.reason


def test_no_approvals_awaits_approval_names_roles_and_creates_nothing() -> None:
    spec = make_spec("limited")
    plan = decide(observe(spec, full_checklist()))
    assert plan.status.phase == Phase.AWAITING_APPROVAL
    assert plan.apply is None
    assert plan.status.gate is not None
    assert plan.status.gate.missing_approvals == ["system-owner", "qa-lead", "deployment-manager"]
    assert cond(plan, "Approved") == ("False", "ApprovalsMissing")
    assert cond(plan, "ChecklistComplete") == ("True", "ChecklistComplete")
    assert cond(plan, "Ready") == ("False", "GateBlocked")
    assert "qa-lead" in (plan.status.message or "")
    assert plan.status.spec_digest == spec_digest(spec)
    assert [e.reason for e in plan.events] == ["AwaitingApproval"]


GATE_TABLE = [
    # (description, risk, annotation changes, spec changes, blocked_by)
    ("everything present", "minimal", {}, {}, []),
    (
        "one checklist item missing",
        "minimal",
        {"checklist.aideploy.io/3.2": None},
        {},
        ["checklist"],
    ),
    (
        "n/a where not allowed",
        "minimal",
        {"checklist.aideploy.io/1.1": "n/a later"},
        {},
        ["checklist"],
    ),
    ("high risk without compliance", "high", {}, {"compliance": None}, ["compliance"]),
    (
        "high risk, n/a on section 4",
        "high",
        {"checklist.aideploy.io/4.2": "n/a x"},
        {},
        ["checklist"],
    ),
    (
        "approval and checklist missing",
        "limited",
        {"approval.aideploy.io/qa-lead": None, "checklist.aideploy.io/5.1": None},
        {},
        ["approvals", "checklist"],
    ),
]


@pytest.mark.parametrize(
    ("what", "risk", "annotation_changes", "spec_changes", "blocked"), GATE_TABLE
)
def test_gate_table(
    what: str,
    risk: str,
    annotation_changes: dict[str, str | None],
    spec_changes: dict[str, Any],
    blocked: list[str],
) -> None:
    spec = make_spec(risk)
    for key, value in spec_changes.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    annotations: dict[str, str] = gate_annotations(spec)
    for key, value in annotation_changes.items():
        if value is None:
            annotations.pop(key, None)
        else:
            annotations[key] = value
    plan = decide(observe(spec, annotations))
    if blocked:
        assert plan.status.phase == Phase.AWAITING_APPROVAL, what
        assert plan.apply is None, what
        assert plan.status.gate is not None and plan.status.gate.blocked_by == blocked, what
    else:
        assert plan.status.phase == Phase.DEPLOYING, what
        assert plan.apply is not None, what


def test_complete_gate_starts_rollout_with_owned_labelled_children() -> None:
    spec = make_spec("minimal")
    plan = decide(observe(spec, gate_annotations(spec)))
    assert plan.status.phase == Phase.DEPLOYING
    deployment = applied(plan)
    rid = release_id(spec_digest(spec))
    assert deployment["metadata"]["name"] == f"fraud-scorer-{rid}"  # a person can tell them apart
    assert deployment["metadata"]["labels"]["aideploy.io/model-version"] == "1.0.0"
    assert deployment["spec"]["replicas"] == 2
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["aideploy.io/model"] == "fraud-scorer"
    assert labels["aideploy.io/model-version"] == "1.0.0"
    assert labels["aideploy.io/release"] == rid
    assert deployment["spec"]["selector"]["matchLabels"] == {
        "aideploy.io/deployment": "fraud-scorer",
        "aideploy.io/release": rid,
    }
    assert deployment["metadata"]["annotations"][ANNOTATION_SPEC_DIGEST] == spec_digest(spec)
    assert plan.apply is not None
    services = {s["metadata"]["name"]: s for s in plan.apply.services}
    # Users reach nothing until it is verified; the preview Service reaches the candidate.
    assert services["fraud-scorer"]["spec"]["selector"]["aideploy.io/release"] == "none"
    assert services["fraud-scorer-preview"]["spec"]["selector"]["aideploy.io/release"] == rid
    assert services["fraud-scorer"]["spec"]["ports"][0]["port"] == 8080
    assert plan.status.current_release is not None
    assert plan.status.current_release.version == "1.0.0"
    assert [a.role for a in plan.status.approvals if a.valid] == [
        "deployment-manager",
        "system-owner",
    ]


def test_rollout_reaches_succeeded_when_available() -> None:
    spec = make_spec("minimal")
    annotations = gate_annotations(spec)
    started = decide(observe(spec, annotations))
    waiting = decide(observe(spec, annotations, started.status, child_from(started, False)))
    assert waiting.status.phase == Phase.DEPLOYING
    assert waiting.apply is None
    assert cond(waiting, "Deployed") == ("False", "RolloutInProgress")
    done = decide(observe(spec, annotations, waiting.status, child_from(started, True)))
    assert done.status.phase == Phase.SUCCEEDED
    assert cond(done, "Deployed") == ("True", "RolloutComplete")
    assert cond(done, "Ready") == ("True", "ReleaseServing")
    assert done.status.last_good_release == done.status.current_release
    assert [e.reason for e in done.events] == ["Succeeded"]


def test_deciding_twice_changes_nothing() -> None:
    spec = make_spec("minimal")
    annotations = gate_annotations(spec)
    started = decide(observe(spec, annotations))
    child = child_from(started, True)
    done = decide(observe(spec, annotations, started.status, child))
    assert done.apply is not None and done.apply.services  # the go-live switch
    switched = child_from(done, True, before=child)
    again = decide(observe(spec, annotations, done.status, switched, later=timedelta(hours=1)))
    assert again.status.to_wire() == done.status.to_wire()
    assert again.apply is None and again.events == ()


def test_spec_change_makes_approvals_stale_and_keeps_old_version_serving() -> None:
    old_spec = make_spec("minimal", version="1.0.0")
    annotations = gate_annotations(old_spec)
    started = decide(observe(old_spec, annotations))
    done = decide(observe(old_spec, annotations, started.status, child_from(started, True)))
    child = child_from(done, True, before=child_from(started, True))
    new_spec = make_spec("minimal", version="1.1.0")
    blocked = decide(observe(new_spec, annotations, done.status, child, generation=2))
    assert blocked.status.phase == Phase.AWAITING_APPROVAL
    assert blocked.apply is None  # the 1.0.0 Deployment is left alone
    assert blocked.status.gate is not None
    assert blocked.status.gate.stale_approvals == ["system-owner", "deployment-manager"]
    assert "Version 1.0.0 keeps serving" in (blocked.status.message or "")
    assert blocked.status.current_release is not None
    assert blocked.status.current_release.version == "1.0.0"
    # Approving the new spec rolls it out.
    approved = {**annotations, **approvals_for(new_spec)}
    rolling = decide(observe(new_spec, approved, blocked.status, child, generation=2))
    assert rolling.status.phase == Phase.DEPLOYING
    new = applied(rolling)  # beside 1.0.0, which keeps serving
    assert new["spec"]["template"]["metadata"]["labels"]["aideploy.io/model-version"] == "1.1.0"
    assert new["metadata"]["name"] != "fraud-scorer-" + release_id(spec_digest(old_spec))
    assert rolling.apply is not None and not rolling.apply.scale_downs
    assert [s for s in rolling.apply.services if s["metadata"]["name"] == "fraud-scorer"] == []


def test_removing_an_approval_after_rollout_does_not_undeploy() -> None:
    spec = make_spec("minimal")
    annotations = gate_annotations(spec)
    started = decide(observe(spec, annotations))
    done = decide(observe(spec, annotations, started.status, child_from(started, True)))
    plan = decide(observe(spec, full_checklist(), done.status, child_from(started, True)))
    assert plan.status.phase == Phase.SUCCEEDED
    assert cond(plan, "Approved") == ("True", "AllApprovalsPresent")


def test_deleted_child_is_recreated_without_leaving_succeeded() -> None:
    spec = make_spec("minimal")
    annotations = gate_annotations(spec)
    started = decide(observe(spec, annotations))
    done = decide(observe(spec, annotations, started.status, child_from(started, True)))
    plan = decide(observe(spec, annotations, done.status, None))
    assert plan.apply is not None
    assert plan.status.phase == Phase.SUCCEEDED
    assert cond(plan, "Ready") == ("False", "ReplicasUnavailable")


INVALID_TABLE = [
    ("no containers", {"template": {"spec": {"containers": []}}}, "needs a container"),
    ("no pod spec", {"template": {}}, "needs a container"),
    (
        "container without image",
        {"template": {"spec": {"containers": [{"name": "a"}]}}},
        "has no image",
    ),
    (
        "duplicate container names",
        {
            "template": {
                "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]}
            }
        },
        "used twice",
    ),
    (
        "port clash",
        {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "a", "image": "x", "ports": [{"containerPort": 8080}]},
                        {"name": "b", "image": "y", "ports": [{"containerPort": 8080}]},
                    ]
                }
            }
        },
        "declared by both",
    ),
    ("serving port not exposed", {"serving": {"port": 9000}}, "9000 is not a containerPort"),
    (
        "a quantity the apiserver cannot parse",
        {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "a",
                            "image": "x",
                            "resources": {"limits": {"cpu": "lots"}, "requests": {"memory": "1Gi"}},
                        }
                    ]
                }
            }
        },
        "resources.limits.cpu 'lots' is not a Kubernetes quantity",
    ),
    (
        "a template too big for status (a 600 KB env var)",
        {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "a",
                            "image": "x",
                            "env": [{"name": "BIG", "value": "x" * 600_000}],
                        }
                    ]
                }
            }
        },
        "spec.template is 586 KiB",
    ),
    ("unknown checklist item in override", {"checklist": {"required": ["1.6"]}}, "1.6"),
    (
        "probe with two kinds",
        {
            "verification": {
                "probes": [
                    {
                        "name": "p",
                        "http": {},
                        "prometheus": {
                            "url": "http://p",
                            "query": "up",
                            "green": ">= 1",
                            "red": "< 1",
                        },
                    }
                ]
            }
        },
        "exactly one",
    ),
]


@pytest.mark.parametrize(("what", "changes", "words"), INVALID_TABLE)
def test_specs_that_cannot_work_fail_with_a_clear_message(
    what: str, changes: dict[str, Any], words: str
) -> None:
    spec = make_spec("minimal", **changes)
    plan = decide(observe(spec, gate_annotations(spec)))
    assert plan.status.phase == Phase.FAILED, what
    assert plan.apply is None, what
    assert cond(plan, "Ready") == ("False", "InvalidSpec")
    assert words in (plan.status.message or ""), plan.status.message
    assert plan.events and plan.events[0].type == "Warning"


def test_foreign_deployment_with_the_same_name_is_not_taken_over() -> None:
    spec = make_spec("minimal")
    foreign = {"metadata": {"name": "fraud-scorer", "ownerReferences": []}, "spec": {}}
    plan = decide(observe(spec, gate_annotations(spec), deployment=foreign))
    assert plan.status.phase == Phase.FAILED
    assert plan.apply is None
    assert cond(plan, "Ready") == ("False", "WorkloadConflict")


@pytest.mark.parametrize(
    ("strategy", "conflict"),
    [(None, True), ({"blueGreen": {"previewService": False}}, False)],
)
def test_a_foreign_preview_service_conflicts_only_where_a_preview_is_used(
    strategy: dict[str, Any] | None, conflict: bool
) -> None:
    spec = make_spec("minimal")
    if strategy is not None:
        spec["strategy"] = strategy
    foreign = {"metadata": {"name": "fraud-scorer-preview", "ownerReferences": []}, "spec": {}}
    plan = decide(observe(spec, gate_annotations(spec), deployment=workloads(OWNER, [], [foreign])))
    if conflict:
        assert plan.status.phase == Phase.FAILED and plan.apply is None
        assert cond(plan, "Ready") == ("False", "WorkloadConflict")
        assert "Service fraud-scorer-preview" in (plan.status.message or "")
    else:
        assert plan.status.phase == Phase.DEPLOYING


def test_progress_deadline_exceeded_fails_the_rollout() -> None:
    spec = make_spec("minimal")
    annotations = gate_annotations(spec)
    started = decide(observe(spec, annotations))
    children = child_from(started, False)
    (child,) = children.deployments.values()
    child["status"]["conditions"] = [
        {
            "type": "Progressing",
            "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet has timed out progressing.",
        }
    ]
    plan = decide(observe(spec, annotations, started.status, children))
    # A first deployment has nothing to restore: it fails and is taken out of service.
    assert plan.status.phase == Phase.FAILED
    assert cond(plan, "Ready") == ("False", "ProgressDeadlineExceeded")
    assert cond(plan, "RolledBack") == ("False", "NoPreviousRelease")
    assert plan.apply is not None and plan.apply.scale_downs == (child["metadata"]["name"],)
    assert plan.status.traffic == [] and plan.status.stable_release is None
    assert plan.status.decision == "RED"


def test_condition_transition_time_kept_until_status_flips() -> None:
    spec = make_spec("minimal")
    first = decide(observe(spec, full_checklist()))
    later = decide(observe(spec, full_checklist(), first.status, later=timedelta(minutes=5)))
    approved = first.status.condition("Approved")
    still = later.status.condition("Approved")
    assert approved is not None and still is not None
    assert approved.last_transition_time == still.last_transition_time
    flipped = decide(
        observe(spec, gate_annotations(spec), later.status, later=timedelta(minutes=9))
    )
    now_true = flipped.status.condition("Approved")
    assert now_true is not None and now_true.status == "True"
    assert now_true.last_transition_time == "2026-11-26T12:09:00Z"
    assert all(c.observed_generation == 1 for c in flipped.status.conditions)


def test_an_image_changed_by_hand_on_the_child_is_put_back() -> None:
    spec = make_spec("minimal")
    annotations = gate_annotations(spec)
    started = decide(observe(spec, annotations))
    done = decide(observe(spec, annotations, started.status, child_from(started, True)))
    children = child_from(done, True, before=child_from(started, True))
    again = decide(observe(spec, annotations, done.status, children))
    assert again.apply is None
    (child,) = children.deployments.values()
    child["spec"]["template"]["spec"]["containers"][0]["image"] = "mlserver:evil"
    plan = decide(observe(spec, annotations, done.status, children))
    assert applied(plan)["spec"]["template"]["spec"]["containers"][0]["image"] == "mlserver:1"


def test_a_status_with_unreadable_fields_is_salvaged_not_fatal() -> None:
    raw = {
        "phase": "Flying",
        "decision": "green",
        "observedGeneration": 3,
        "specDigest": "sha256:abc",
        "monitoring": {"digest": "x"},
    }
    status, dropped = AIDeploymentStatus.salvage(raw)
    assert sorted(dropped) == ["decision", "monitoring", "phase"]
    assert status.observed_generation == 3 and status.spec_digest == "sha256:abc"
    spec = make_spec("minimal")
    plan = decide(observe(spec, gate_annotations(spec), status))
    assert plan.status.phase == Phase.DEPLOYING


@pytest.mark.parametrize(
    ("length", "strategy", "fails"),
    [
        (55, None, False),
        (56, None, True),  # blue-green: <name>-preview would pass 63
        (63, {"inPlace": {}}, False),
        (64, {"inPlace": {}}, True),
    ],
)
def test_a_name_the_children_cannot_carry_fails_in_words(
    length: int, strategy: dict[str, Any] | None, fails: bool
) -> None:
    spec = make_spec("minimal")
    if strategy is not None:
        spec["strategy"] = strategy
    owner = Owner(name="a" * length, namespace="ml", uid="uid-1")
    obs = dataclasses.replace(observe(spec, gate_annotations(spec)), owner=owner)
    plan = decide(obs)
    if fails:
        assert plan.status.phase == Phase.FAILED and plan.apply is None
        assert cond(plan, "Ready") == ("False", "InvalidSpec")
        assert "shorter name" in (plan.status.message or "")
    else:
        assert plan.status.phase == Phase.DEPLOYING


@pytest.mark.parametrize("duration", ["99999999999999999999d", "3651d", "87601h"])
def test_a_duration_too_long_to_hold_fails_in_words_not_an_overflow(duration: str) -> None:
    spec = make_spec("minimal", monitoring={"duration": duration, "interval": "30s"})
    plan = decide(observe(spec, gate_annotations(spec)))
    assert plan.status.phase == Phase.FAILED
    assert cond(plan, "Ready") == ("False", "InvalidSpec")
    assert "longer than 3650d" in (plan.status.message or "")
