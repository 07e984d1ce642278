"""Promotion from staging: production waits until staging verified the same thing."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from aideploy.admission.release_signature import release_signature
from aideploy.api.digest import spec_digest
from aideploy.api.spec import AIDeploymentSpec
from aideploy.api.status import Release
from aideploy.logic.promotion import container_images, image_differences, promotion_problem

from .factories import make_spec

STAGING = "fraud-scorer-staging"
PRODUCTION = AIDeploymentSpec.model_validate(
    make_spec("minimal", version="2.4.0", promotion={"fromStaging": STAGING})
)
PREFIX = f"Waiting for staging {STAGING}: "


def staging(**changes: Any) -> dict[str, Any]:
    """A staging object that passes; `changes` replace dotted paths ('status.phase')."""
    obj: dict[str, Any] = {
        "apiVersion": "aideploy.io/v1alpha1",
        "kind": "AIDeployment",
        "metadata": {"name": STAGING, "generation": 3},
        "spec": make_spec("minimal", version="2.4.0", environment="staging"),
        "status": {
            "observedGeneration": 3,
            "phase": "Monitoring",
            "decision": "GREEN",
            "currentRelease": {"version": "2.4.0", "digest": "sha256:abc"},
        },
    }
    obj = copy.deepcopy(obj)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = obj
        for key in parents:
            target = target[key]
        if value is None:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    return obj


def containers(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": n, "image": i} for n, i in pairs]}}


@pytest.mark.parametrize(
    ("obj", "problem"),
    [
        (staging(), None),
        (staging(status__phase="Succeeded"), None),
        (None, "it does not exist in this namespace."),
        (
            staging(status__phase="Verifying"),
            "it is in phase Verifying, not Monitoring or Succeeded.",
        ),
        (
            staging(status__phase="RolledBack", status__decision="RED"),
            "it is in phase RolledBack, not Monitoring or Succeeded; its verification decision is RED, not GREEN.",
        ),
        (staging(status__decision="AMBER"), "its verification decision is AMBER, not GREEN."),
        (staging(status__decision=None), "it has no verification decision (GREEN) yet."),
        (
            staging(status={}),
            "it has not reported a phase yet; it has no verification decision (GREEN) yet.",
        ),
        (
            staging(metadata__generation=4),
            "its status does not reflect its latest spec yet (generation 4, observed 3).",
        ),
        (
            staging(spec__model={"name": "fraud-scorer", "version": "2.3.0"}),
            "it runs model version 2.3.0, not 2.4.0.",
        ),
        (
            staging(status__currentRelease={"version": "2.3.0", "digest": "sha256:old"}),
            "its current release is still 2.3.0; 2.4.0 is not rolled out there yet.",
        ),
        (
            staging(spec__template=containers(("server", "mlserver:0"))),
            "container server uses image mlserver:0 there, mlserver:1 here.",
        ),
        (
            staging(spec__environment=None),
            "it is itself a production deployment (set spec.environment: staging on it).",
        ),
        (
            staging(spec__environment="production"),
            "it is itself a production deployment (set spec.environment: staging on it).",
        ),
    ],
)
def test_promotion_problem(obj: dict[str, Any] | None, problem: str | None) -> None:
    found = promotion_problem(PRODUCTION, obj, STAGING)
    assert found == (None if problem is None else PREFIX + problem)


def test_every_reason_is_named_at_once() -> None:
    obj = staging(
        spec__model={"name": "fraud-scorer", "version": "2.3.0"},
        spec__template=containers(("server", "a:1")),
        status__decision="AMBER",
        status__phase="Held",
    )
    production = AIDeploymentSpec.model_validate(
        make_spec("minimal", version="2.4.0", template=containers(("server", "a:2")))
    )
    assert promotion_problem(production, obj, STAGING) == (
        PREFIX + "it is in phase Held, not Monitoring or Succeeded; its verification decision "
        "is AMBER, not GREEN; it runs model version 2.3.0, not 2.4.0; container server uses "
        "image a:1 there, a:2 here."
    )


def test_image_differences_name_missing_and_extra_containers() -> None:
    there = {"server": "a:1", "sidecar": "envoy:1"}
    here = {"server": "a:1", "exporter": "prom:2"}
    assert image_differences(there, here) == [
        "container exporter (prom:2) does not exist there",
        "container sidecar (envoy:1) exists only there",
    ]


@pytest.mark.parametrize(
    ("template", "images"),
    [
        (containers(("a", "x:1"), ("b", "y:2")), {"a": "x:1", "b": "y:2"}),
        ({"spec": {"containers": [{"name": "a"}, "junk", {"image": "z"}]}}, {}),
        ({"spec": {"containers": "junk"}}, {}),
        (None, {}),
    ],
)
def test_container_images_tolerate_odd_shapes(template: Any, images: dict[str, str]) -> None:
    assert container_images(template) == images


def test_malformed_staging_object_is_reported_not_raised() -> None:
    found = promotion_problem(PRODUCTION, {"spec": "junk", "status": ["x"]}, STAGING)
    assert found == PREFIX + (
        "it is itself a production deployment (set spec.environment: staging on it); "
        "it has not reported a phase yet; it has no verification decision (GREEN) yet; "
        "it names no model version, not 2.4.0; container server (mlserver:1) does not exist there."
    )


KEY = b"operator-signing-key-for-tests!!"


def signed_staging(
    uid: str = "staging-uid", went_live: bool = True, **changes: Any
) -> dict[str, Any]:
    obj = staging(**changes)
    obj["metadata"]["uid"] = uid
    release = Release(
        version="2.4.0",
        digest=spec_digest(obj["spec"]),
        went_live_at="2026-11-26T12:00:00Z" if went_live else None,
    )
    release = release.replace(signature=release_signature(release, KEY, uid))
    obj["status"]["currentRelease"] = release.to_wire()
    return obj


def _copied_uid() -> dict[str, Any]:
    obj = signed_staging()
    obj["metadata"]["uid"] = "another-object"
    return obj


def _other_spec() -> dict[str, Any]:
    obj = signed_staging()
    obj["spec"]["replicas"] = 5
    return obj


@pytest.mark.parametrize(
    ("obj", "words"),
    [
        (signed_staging(), None),
        (staging(), "no release this operator signed"),  # forged by a status writer
        (_copied_uid(), "no release this operator signed"),
        (_other_spec(), "another spec than the one it has now"),
        (signed_staging(went_live=False), "has not passed verification there"),
    ],
)
def test_with_a_key_staging_status_is_not_taken_on_trust(
    obj: dict[str, Any], words: str | None
) -> None:
    problem = promotion_problem(PRODUCTION, obj, STAGING, KEY)
    if words is None:
        assert problem is None
    else:
        assert problem is not None and words in problem
