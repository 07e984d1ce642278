"""The operator's pod policy (approvers config `podPolicy`) applied to a spec's template:
what it will not run, whoever approved it."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from aideploy.admission.config import PodPolicy
from aideploy.api.spec import AIDeploymentSpec

_PINNED = re.compile(r"@sha256:[0-9a-f]{64}$")
_HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


def _containers(pod: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in pod.get(key) or []:
            if isinstance(container, Mapping):
                yield container


def pod_policy_problems(spec: AIDeploymentSpec, policy: PodPolicy | None) -> list[str]:
    """Each way the template breaks the policy, in words that say what to change."""
    if policy is None:
        return []
    pod = spec.template.get("spec")
    if not isinstance(pod, Mapping):
        return []
    problems = []
    if policy.forbid_host_namespaces:
        problems += [
            f"spec.template.spec.{key} is true, and the operator's pod policy forbids host "
            "namespaces"
            for key in _HOST_NAMESPACES
            if pod.get(key) is True
        ]
    if policy.forbid_host_path:
        problems += [
            f"volume {volume.get('name')!r} is a hostPath, which the operator's pod policy forbids"
            for volume in pod.get("volumes") or []
            if isinstance(volume, Mapping) and "hostPath" in volume
        ]
    account = str(pod.get("serviceAccountName") or pod.get("serviceAccount") or "default")
    if policy.service_accounts and account not in policy.service_accounts:
        problems.append(
            f"the pods would run as ServiceAccount {account!r}; the operator's pod policy "
            f"allows {', '.join(policy.service_accounts)}"
        )
    if spec.environment.value in policy.require_image_digest.environments:
        problems += [
            f"container {container.get('name')!r} image {container.get('image')!r} is not "
            f"pinned by digest (image@sha256:...), which {spec.environment.value} requires"
            for container in _containers(pod)
            if not _PINNED.search(str(container.get("image") or ""))
        ]
    return problems
