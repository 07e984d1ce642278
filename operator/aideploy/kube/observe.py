"""The read side of the I/O layer: an AIDeployment as the apiserver returned it, turned into
the Observation that `decide` takes. Pure (the reads happen before), and tolerant: a status
field that cannot be read is dropped, named in the log and rewritten by the next write."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from aideploy.admission.config import PodPolicy
from aideploy.api.status import AIDeploymentStatus
from aideploy.logic.gate import ApprovalPolicy
from aideploy.logic.plan import Observation, ProbeRun
from aideploy.logic.topology import Workloads
from aideploy.logic.workload import Owner, is_owned_by
from aideploy.logic.write_failure import without_refusal_message

logger = logging.getLogger(__name__)


def _status(obj: dict[str, Any]) -> AIDeploymentStatus:
    status, dropped = AIDeploymentStatus.salvage(obj.get("status") or {})
    if dropped:
        metadata = obj["metadata"]
        logger.warning(
            "%s/%s: status fields %s could not be read and will be rewritten",
            metadata.get("namespace"),
            metadata.get("name"),
            ", ".join(sorted(dropped)),
        )
    return status


def workloads(
    owner: Owner,
    deployments: list[dict[str, Any]],
    services: list[dict[str, Any]],
) -> Workloads:
    """The children as read, keyed by name; those that another owner holds are named as
    foreign (the decision reports the conflict instead of taking them over)."""
    owned: dict[str, dict[str, Any]] = {}
    owned_services: dict[str, dict[str, Any]] = {}
    foreign: list[tuple[str, str]] = []
    for kind, items, into in (
        ("Deployment", deployments, owned),
        ("Service", services, owned_services),
    ):
        for item in items:
            name = str(item["metadata"]["name"])
            if is_owned_by(item, owner):
                into[name] = item
            elif (kind, name) not in foreign:
                foreign.append((kind, name))
    return Workloads(deployments=owned, services=owned_services, foreign=tuple(foreign))


def owner_of(obj: dict[str, Any]) -> Owner:
    metadata = obj["metadata"]
    return Owner(name=metadata["name"], namespace=metadata["namespace"], uid=metadata["uid"])


def observe(
    obj: dict[str, Any],
    children: Workloads,
    now: datetime,
    probe_run: ProbeRun | None = None,
    staging: dict[str, Any] | None = None,
    policy: ApprovalPolicy | None = None,
    pod_policy: PodPolicy | None = None,
) -> Observation:
    metadata = obj["metadata"]
    return Observation(
        owner=owner_of(obj),
        generation=int(metadata.get("generation", 1)),
        annotations=dict(metadata.get("annotations") or {}),
        raw_spec=obj.get("spec") or {},
        status=without_refusal_message(_status(obj)),
        workloads=children,
        now=now,
        probe_run=probe_run,
        staging=staging,
        approval_policy=policy or ApprovalPolicy(),
        pod_policy=pod_policy,
    )
