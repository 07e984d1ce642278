"""Pydantic models of `AIDeployment.spec`.

These models and the CRD schema in crds/ describe the same contract; a test feeds the
same manifests to both. Semantic problems the schema cannot express (a pod template
without containers, a port clash) are not rejected here: the operator reports them in a
condition, so that `kubectl apply` of such a manifest still leaves a visible explanation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from aideploy.api.checks import (
    BodyExpectation,
    HttpProbe,
    InferenceProbe,
    Monitoring,
    OutputExpectation,
    Probe,
    PrometheusProbe,
    Tensor,
    Verification,
)
from aideploy.api.constants import CHECKLIST_ITEMS, RiskLevel, Role
from aideploy.api.durations import Duration
from aideploy.api.spec_base import (
    CHECKLIST_ITEM_PATTERN,
    CRON_PATTERN,
    LIST_BY_NAME,
    LIST_SET,
    NAME_PATTERN,
    SEMVER_PATTERN,
    THRESHOLD_PATTERN,
    AmberPolicy,
    ChangeType,
    Environment,
    Name,
    NonEmpty,
    Result,
    SpecModel,
    about,
)
from aideploy.api.strategy_spec import (
    Analysis,
    BlueGreen,
    Canary,
    CanaryStep,
    HTTPRouteRef,
    InPlace,
    Pause,
    Strategy,
    TrafficRouting,
)

# The spec's parts live in spec_base, checks and strategy_spec; importers keep naming them
# from here, the one place that is the whole of `AIDeployment.spec`.
__all__ = [
    "CHECKLIST_ITEM_PATTERN",
    "CRON_PATTERN",
    "LIST_BY_NAME",
    "LIST_SET",
    "NAME_PATTERN",
    "SEMVER_PATTERN",
    "THRESHOLD_PATTERN",
    "AIDeploymentSpec",
    "AmberPolicy",
    "Analysis",
    "ApprovalsOverride",
    "BlueGreen",
    "BodyExpectation",
    "Canary",
    "CanaryStep",
    "ChangeType",
    "ChecklistOverride",
    "Compliance",
    "Environment",
    "Expedite",
    "Freeze",
    "HTTPRouteRef",
    "HttpProbe",
    "InPlace",
    "InferenceProbe",
    "ModelRef",
    "Monitoring",
    "Name",
    "NonEmpty",
    "OutputExpectation",
    "Pause",
    "Probe",
    "PrometheusProbe",
    "Promotion",
    "Result",
    "RollbackPolicy",
    "Serving",
    "SpecModel",
    "Strategy",
    "Tensor",
    "TrafficRouting",
    "Verification",
    "Window",
    "about",
]


class ModelRef(SpecModel):
    name: Annotated[Name, about("The model's name; inference probes call it by this name.")]
    version: Annotated[
        str,
        Field(
            pattern=SEMVER_PATTERN,
            description="The version being deployed (semver); the change type is derived "
            "from it and the last good release's when changeType is unset.",
        ),
    ]
    uri: Annotated[
        str | None,
        about("Where the model's artifact lives (e.g. s3://...); kept in the plan record."),
    ] = None


class Serving(SpecModel):
    port: Annotated[
        int,
        Field(
            ge=1,
            le=65535,
            description="The container port the model server listens on; the Services "
            "send traffic to it and probes without a URL call it.",
        ),
    ] = 8080
    protocol: Annotated[
        Literal["v2", "http"],
        about(
            "The API the model server speaks: v2 (the Open Inference Protocol of KServe, "
            "Triton and MLServer) or plain http. Recorded with the release; the probes "
            "each say what they call."
        ),
    ] = "v2"


class ApprovalsOverride(SpecModel):
    required: Annotated[
        list[Role],
        Field(
            min_length=1,
            json_schema_extra=LIST_SET,
            description="Roles whose approval this deployment needs besides those its risk "
            "level requires (which stay required unless the operator's lowerGate policy "
            "lets this list replace them).",
        ),
    ]

    @model_validator(mode="after")
    def _unique(self) -> ApprovalsOverride:
        if len(set(self.required)) != len(self.required):
            raise ValueError("approvals.required lists a role twice")
        return self


class ChecklistOverride(SpecModel):
    required: Annotated[
        list[
            Annotated[
                str,
                Field(
                    pattern=CHECKLIST_ITEM_PATTERN,
                    json_schema_extra={"enum": list(CHECKLIST_ITEMS)},
                ),
            ]
        ],
        Field(
            min_length=1,
            json_schema_extra=LIST_SET,
            description="The CHK-AI-DEPLOY-001 items (e.g. 1.1) that must be checked; every "
            "item stays required unless the operator's lowerGate policy lets this list "
            "replace them.",
        ),
    ]

    @model_validator(mode="after")
    def _known_items(self) -> ChecklistOverride:
        unknown = [item for item in self.required if item not in CHECKLIST_ITEMS]
        if unknown:
            raise ValueError(
                f"checklist.required names items that CHK-AI-DEPLOY-001 does not have: "
                f"{', '.join(unknown)}"
            )
        return self


class Freeze(SpecModel):
    start: Annotated[datetime, Field(description="RFC 3339 time")]
    end: Annotated[datetime, Field(description="RFC 3339 time")]
    reason: Annotated[NonEmpty, about("Why nothing deploys then; shown while blocked.")]

    @model_validator(mode="after")
    def _ordered(self) -> Freeze:
        if (self.start.tzinfo is None) != (self.end.tzinfo is None):
            raise ValueError(
                f"freeze {self.reason!r}: give start and end both with an offset "
                "(e.g. 2026-12-20T00:00:00Z) or both without"
            )
        if self.end <= self.start:
            raise ValueError(f"freeze {self.reason!r} ends before it starts")
        return self


class Window(SpecModel):
    schedule: Annotated[
        str, Field(pattern=CRON_PATTERN, description="cron, five fields, in timeZone")
    ]
    duration: Annotated[Duration, Field(description="How long each window stays open.")]
    time_zone: Annotated[str, Field(description="IANA time zone of the schedule.")] = "UTC"
    freezes: Annotated[
        list[Freeze],
        Field(default_factory=list, description="Periods in which no deployment starts."),
    ]


class Promotion(SpecModel):
    from_staging: Annotated[
        Name,
        about(
            "The staging AIDeployment (same namespace) that must have gone live with the "
            "same model version before this one deploys."
        ),
    ]


class Expedite(SpecModel):
    reason: Annotated[
        NonEmpty,
        about("Why this patch cannot wait for the window (e.g. a CVE); kept in the records."),
    ]


#: PROC-AI-DEPLOY-001 section 7: what a high-risk deployment must state before it deploys.
_REFERENCE = "A reference the auditors can follow (document id or URL)"


class Compliance(SpecModel):
    conformity_assessment: Annotated[
        str | None,
        about(
            f"{_REFERENCE} to the conformity assessment of this release; a substantial "
            "modification needs a new one."
        ),
    ] = None
    declaration_of_conformity: Annotated[
        str | None, about(f"{_REFERENCE} to the EU declaration of conformity.")
    ] = None
    eu_database_registration: Annotated[
        str | None,
        about(
            "The system's EU database registration: its state, prepared or submitted (a "
            "high-risk production deployment needs at least prepared), or the id the EU "
            "database gave, which means registered. An id given after go-live is recorded "
            "with `kubectl aideploy register` instead, without a spec change."
        ),
    ] = None
    ce_marking: Annotated[bool | None, about("Whether the CE marking is affixed.")] = None
    instructions_for_use: Annotated[
        str | None, about(f"{_REFERENCE} to the instructions for use.")
    ] = None
    human_oversight: Annotated[
        str | None, about("How people oversee the system in use (EU AI Act art. 14).")
    ] = None
    substantial_modification: Annotated[
        bool | None,
        about(
            "Whether this change is a substantial modification (EU AI Act art. 43(4)); a "
            "major change of a high-risk system must say so."
        ),
    ] = None


class RollbackPolicy(SpecModel):
    automatic: Annotated[
        bool,
        about(
            "A RED verification rolls back at once; false holds it (Held) until a person "
            "decides with aideploy.io/go-live. Monitoring RED always rolls back."
        ),
    ] = True


class AIDeploymentSpec(SpecModel):
    """What to deploy, under which risk level, and how it is checked: the spec that
    approvals name by its digest (any change needs them again)."""

    system: Annotated[Name, about("AI system id in the organisation's inventory")]
    risk_level: Annotated[
        RiskLevel, about("EU AI Act risk level; decides the approvals and compliance needed.")
    ]
    change_type: Annotated[
        ChangeType | None,
        about("initial, major, minor or patch; derived from the versions when unset."),
    ] = None
    environment: Annotated[Environment, about("Where this deployment runs.")] = (
        Environment.PRODUCTION
    )
    model: Annotated[ModelRef, about("The model and the version being deployed.")]
    replicas: Annotated[int, Field(ge=0, le=1000, description="Number of model server pods.")] = 1
    template: Annotated[dict[str, Any], about("A PodTemplateSpec: the model server.")]
    serving: Annotated[Serving, about("The port and protocol the model server speaks.")] = Serving()
    approvals: Annotated[
        ApprovalsOverride | None, about("Overrides the approvals the risk level requires.")
    ] = None
    checklist: Annotated[
        ChecklistOverride | None, about("Overrides the checklist items that must be checked.")
    ] = None
    window: Annotated[Window | None, about("When the deployment may start.")] = None
    promotion: Annotated[Promotion | None, about("The staging AIDeployment this one promotes.")] = (
        None
    )
    compliance: Annotated[
        Compliance | None,
        about("Required when riskLevel is high (PROC-AI-DEPLOY-001 section 7)."),
    ] = None
    verification: Annotated[
        Verification, about("Checks that decide whether the new version goes live.")
    ] = Verification()
    monitoring: Annotated[
        Monitoring | None, about("Checks after go-live that can trigger a rollback.")
    ] = None
    rollback: Annotated[RollbackPolicy, about("Whether a RED result rolls back automatically.")] = (
        RollbackPolicy()
    )
    expedite: Annotated[
        Expedite | None, about("Deploys a patch outside the window, for the reason given.")
    ] = None
    strategy: Annotated[
        Strategy,
        about("How a release reaches users: blueGreen (the default), canary or inPlace."),
    ] = Strategy()
