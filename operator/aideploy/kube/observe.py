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
from aideploy.logic.workload import Owner

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


def observe(
    obj: dict[str, Any],
    deployment: dict[str, Any] | None,
    now: datetime,
    probe_run: ProbeRun | None = None,
    staging: dict[str, Any] | None = None,
    policy: ApprovalPolicy | None = None,
    pod_policy: PodPolicy | None = None,
) -> Observation:
    metadata = obj["metadata"]
    return Observation(
        owner=Owner(name=metadata["name"], namespace=metadata["namespace"], uid=metadata["uid"]),
        generation=int(metadata.get("generation", 1)),
        annotations=dict(metadata.get("annotations") or {}),
        raw_spec=obj.get("spec") or {},
        status=_status(obj),
        deployment=deployment,
        now=now,
        probe_run=probe_run,
        staging=staging,
        approval_policy=policy or ApprovalPolicy(),
        pod_policy=pod_policy,
    )
