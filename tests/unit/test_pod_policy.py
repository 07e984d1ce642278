"""The operator's pod policy (issue 11, attack 6): what it will not run, whoever approved
it, reported as InvalidSpec before any approval is asked for."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from aideploy.admission.config import ApproversConfig, PodPolicy
from aideploy.api.constants import Phase
from aideploy.api.spec import AIDeploymentSpec
from aideploy.logic.machine import decide
from aideploy.logic.podpolicy import pod_policy_problems

from .factories import gate_annotations, make_spec
from .test_machine import cond, observe

STRICT = ApproversConfig.model_validate(
    {
        "podPolicy": {
            "forbidHostNamespaces": True,
            "forbidHostPath": True,
            "serviceAccounts": ["model-server"],
            "requireImageDigest": {"environments": ["production"]},
        }
    }
).pod_policy
PINNED = "registry.example.com/mlserver@sha256:" + "a" * 64


def pod(environment: str = "production", **pod_spec: Any) -> dict[str, Any]:
    spec = make_spec("minimal", environment=environment)
    template = copy.deepcopy(spec["template"])
    template["spec"]["containers"][0]["image"] = PINNED
    template["spec"]["serviceAccountName"] = "model-server"
    template["spec"].update(pod_spec)
    spec["template"] = template
    return spec


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (pod(), []),
        (pod(hostNetwork=True), ["hostNetwork is true"]),
        (pod(hostPID=True, hostIPC=True), ["hostPID is true", "hostIPC is true"]),
        (pod(volumes=[{"name": "root", "hostPath": {"path": "/"}}]), ["'root' is a hostPath"]),
        (pod(serviceAccountName="cluster-admin-sa"), ["ServiceAccount 'cluster-admin-sa'"]),
        (pod(serviceAccountName=None), ["ServiceAccount 'default'"]),
        (
            pod(initContainers=[{"name": "fetch", "image": "busybox:latest"}]),
            ["'fetch' image 'busybox:latest' is not pinned by digest"],
        ),
        (make_spec("minimal", environment="staging"), ["ServiceAccount 'default'"]),
    ],
)
def test_pod_policy_table(spec: dict[str, Any], words: list[str]) -> None:
    problems = pod_policy_problems(AIDeploymentSpec.model_validate(spec), STRICT)
    assert len(problems) == len(words), problems
    for problem, word in zip(problems, words, strict=True):
        assert word in problem


def test_no_policy_and_the_default_policy_allow_anything() -> None:
    spec = AIDeploymentSpec.model_validate(pod(hostNetwork=True, serviceAccountName="x"))
    assert pod_policy_problems(spec, None) == []
    assert pod_policy_problems(spec, PodPolicy()) == []


def test_a_violation_is_invalid_spec_before_any_approval() -> None:
    spec = pod(hostPID=True)
    obs = dataclasses.replace(observe(spec, gate_annotations(spec)), pod_policy=STRICT)
    plan = decide(obs)
    assert plan.status.phase == Phase.FAILED and plan.apply is None
    assert cond(plan, "Ready") == ("False", "InvalidSpec")
    assert "hostPID is true" in (plan.status.message or "")
