"""Who holds which approval role, and the other rules of the admission webhook.

Roles map to Kubernetes users and groups exactly as the apiserver authenticates them, so a
person cannot approve by typing someone else's name: the webhook checks the identity of the
request, not the text of the annotation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from aideploy.api.constants import RiskLevel, Role


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class Subjects(_Model):
    users: list[str] = []
    groups: list[str] = []

    def include(self, username: str, groups: tuple[str, ...]) -> bool:
        return username in self.users or any(g in self.groups for g in groups)

    def describe(self) -> str:
        parts = []
        if self.users:
            parts.append("users " + ", ".join(self.users))
        if self.groups:
            parts.append("groups " + ", ".join(self.groups))
        return " and ".join(parts) if parts else "nobody"


class SeparationOfDuties(_Model):
    """The identity that last changed a spec may not approve it: by default for high risk,
    with per-role overrides (true: always enforced, false: never)."""

    risk_levels: list[RiskLevel] = [RiskLevel.HIGH]
    roles: dict[Role, bool] = {}

    def applies(self, role: str, risk: str) -> bool:
        try:
            override = self.roles.get(Role(role))
        except ValueError:
            override = None
        if override is not None:
            return override
        return risk in {level.value for level in self.risk_levels}


class ImageDigestRule(_Model):
    environments: list[Literal["staging", "production"]] = []


class PodPolicy(_Model):
    """What the operator refuses to run whatever the approvals say (a confused deputy
    otherwise deploys any pod template): off unless configured. A violation is InvalidSpec,
    reported before any approval is asked for."""

    forbid_host_namespaces: bool = False  # hostNetwork, hostPID, hostIPC
    forbid_host_path: bool = False
    #: ServiceAccounts the pods may run as; empty: any.
    service_accounts: list[str] = []
    #: Environments whose images must be pinned by digest (`image@sha256:...`, the
    #: procedure's step 5, verify package integrity).
    require_image_digest: ImageDigestRule = Field(default_factory=ImageDigestRule)


class LowerGate(_Model):
    """Risk levels whose AIDeployments may drop roles or checklist items that the
    procedure requires (their `approvals.required` / `checklist.required` then replace the
    floor). Empty by default: the floor holds."""

    risk_levels: list[RiskLevel] = []


class ApproversConfig(_Model):
    roles: dict[Role, Subjects] = {}
    checklist: Subjects | None = None
    go_live: Subjects | None = None
    #: Who may record the EU database registration id (aideploy.io/eu-registration,
    #: `kubectl aideploy register`); not set: anyone who may update the AIDeployment.
    registration: Subjects | None = None
    separation_of_duties: SeparationOfDuties = Field(default_factory=SeparationOfDuties)
    operator: Subjects = Field(default_factory=Subjects)
    require_authenticated_approvals: bool = False
    lower_gate: LowerGate = Field(default_factory=LowerGate)
    pod_policy: PodPolicy = Field(default_factory=PodPolicy)
    #: Who may delete records once their retainUntil has passed; nobody when not set.
    record_retention: Subjects | None = None

    def holders(self, role: str) -> Subjects:
        try:
            return self.roles.get(Role(role), Subjects())
        except ValueError:
            return Subjects()


def load_approvers_config(path: Path | None) -> ApproversConfig:
    """The file named by --approvers-config; without one nobody holds a role (fail closed)."""
    if path is None:
        return ApproversConfig()
    loaded = yaml.safe_load(path.read_text()) or {}
    return ApproversConfig.model_validate(loaded)
