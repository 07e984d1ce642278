"""Promotion from staging (PROC-AI-DEPLOY-001 6.2: staging is the final validation).

A production AIDeployment with `spec.promotion.fromStaging` may roll out only what its
staging AIDeployment has verified: the same model version, served by the same container
images, with a GREEN verification that is current. The staging object is read as the raw
dict the apiserver returns, because it belongs to someone else and may be half-written or
from another operator version; nothing in it is trusted to have a shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import ValidationError

from aideploy.admission.release_signature import is_signed
from aideploy.api.constants import Phase
from aideploy.api.digest import spec_digest
from aideploy.api.spec import AIDeploymentSpec, Environment, Result
from aideploy.api.status import Release

# A staging release is verified once it has passed verification: it is being watched
# (Monitoring) or its watch ended well (Succeeded).
VERIFIED_PHASES: Final = (Phase.MONITORING.value, Phase.SUCCEEDED.value)


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def container_images(template: Any) -> dict[str, str]:
    """name → image of a pod template's containers (entries without both are skipped)."""
    containers = _get(template, "spec", "containers")
    images: dict[str, str] = {}
    if not isinstance(containers, list):
        return images
    for container in containers:
        name, image = _get(container, "name"), _get(container, "image")
        if isinstance(name, str) and isinstance(image, str):
            images[name] = image
    return images


def image_differences(staging: Mapping[str, str], production: Mapping[str, str]) -> list[str]:
    """Each container whose image differs, or that exists on one side only."""
    differences = []
    for name in sorted(staging.keys() | production.keys()):
        there, here = staging.get(name), production.get(name)
        if there == here:
            continue
        if there is None:
            differences.append(f"container {name} ({here}) does not exist there")
        elif here is None:
            differences.append(f"container {name} ({there}) exists only there")
        else:
            differences.append(f"container {name} uses image {there} there, {here} here")
    return differences


def _status_problems(staging: Mapping[str, Any]) -> list[str]:
    problems = []
    status = _get(staging, "status")
    generation = _get(staging, "metadata", "generation")
    observed = _get(status, "observedGeneration")
    if isinstance(generation, int) and isinstance(observed, int) and observed != generation:
        # Its phase and decision are about an older spec, perhaps an older model version.
        problems.append(
            f"its status does not reflect its latest spec yet (generation {generation}, "
            f"observed {observed})"
        )
    phase = _get(status, "phase")
    if phase is None:
        problems.append("it has not reported a phase yet")
    elif phase not in VERIFIED_PHASES:
        problems.append(f"it is in phase {phase}, not Monitoring or Succeeded")
    decision = _get(status, "decision")
    if decision is None:
        problems.append("it has no verification decision (GREEN) yet")
    elif decision != Result.GREEN:
        problems.append(f"its verification decision is {decision}, not GREEN")
    return problems


def _release_problem(staging: Mapping[str, Any], key: bytes | None) -> list[str]:
    """With a key, staging's status is not taken on trust: its current release must be one
    this operator signed, of staging's present spec, and have gone live (verified)."""
    if key is None:
        return []
    raw = _get(staging, "status", "currentRelease")
    uid = str(_get(staging, "metadata", "uid") or "")
    release = None
    if isinstance(raw, Mapping):
        try:
            release = Release.model_validate(Release.known_fields(raw)[0])
        except ValidationError:
            release = None
    if release is None or not is_signed(release, key, uid):
        return ["its status holds no release this operator signed (written by someone else?)"]
    if release.digest != spec_digest(_get(staging, "spec") or {}):
        return ["its signed release is of another spec than the one it has now"]
    if release.went_live_at is None:
        return ["its signed release has not passed verification there"]
    return []


def promotion_problem(
    production: AIDeploymentSpec,
    staging: Mapping[str, Any] | None,
    staging_name: str,
    key: bytes | None = None,
) -> str | None:
    """Why production may not yet take what staging runs, all reasons at once; or None.

    `staging` is the staging AIDeployment as the apiserver returns it (a dict with
    metadata, spec and status), None when it does not exist.
    """
    prefix = f"Waiting for staging {staging_name}"
    if staging is None:
        return f"{prefix}: it does not exist in this namespace."
    problems = []
    environment = _get(staging, "spec", "environment") or Environment.PRODUCTION.value
    if environment == Environment.PRODUCTION.value:
        problems.append(
            "it is itself a production deployment (set spec.environment: staging on it)"
        )
    problems.extend(_status_problems(staging))
    problems.extend(_release_problem(staging, key))
    version = _get(staging, "spec", "model", "version")
    if not isinstance(version, str):
        problems.append(f"it names no model version, not {production.model.version}")
    elif version != production.model.version:
        problems.append(f"it runs model version {version}, not {production.model.version}")
    else:
        released = _get(staging, "status", "currentRelease", "version")
        if released is not None and released != version:
            problems.append(
                f"its current release is still {released}; {version} is not rolled out there yet"
            )
    problems.extend(
        image_differences(
            container_images(_get(staging, "spec", "template")),
            container_images(production.template),
        )
    )
    if not problems:
        return None
    return f"{prefix}: {'; '.join(problems)}."
