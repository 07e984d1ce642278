"""Pydantic models of `AIDeployment.spec`.

These models and the CRD schema in crds/ describe the same contract; a test feeds the
same manifests to both. Semantic problems the schema cannot express (a pod template
without containers, a port clash) are not rejected here: the operator reports them in a
condition, so that `kubectl apply` of such a manifest still leaves a visible explanation.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from aideploy.api.constants import CHECKLIST_ITEMS, RiskLevel, Role
from aideploy.api.durations import Duration

# semver.org's recommended pattern.
SEMVER_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
CRON_PATTERN = r"^\S+\s+\S+\s+\S+\s+\S+\s+\S+$"
THRESHOLD_PATTERN = r"^\s*(<=|>=|<|>|==|!=)\s*-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$"
CHECKLIST_ITEM_PATTERN = r"^[1-5]\.[1-6]$"

Name = Annotated[str, Field(min_length=1, max_length=63, pattern=NAME_PATTERN)]
NonEmpty = Annotated[str, Field(min_length=1)]
# Kubernetes list markers, carried by the models into the generated CRD (api/structural.py).
_SET: dict[str, Any] = {"x-kubernetes-list-type": "set"}
_BY_NAME: dict[str, Any] = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["name"],
}


class ChangeType(StrEnum):
    INITIAL = "initial"
    MAJOR = "major"
    MINOR = "minor"
    PATCH = "patch"


class Environment(StrEnum):
    STAGING = "staging"
    PRODUCTION = "production"


class Result(StrEnum):
    """The one verdict vocabulary: a probe's result, a verification decision, a metric label.

    Members are declared from best to worst; `severity` ranks them (RED beats AMBER beats
    GREEN wherever results are combined).
    """

    GREEN = "GREEN"
    AMBER = "AMBER"
    RED = "RED"

    @property
    def severity(self) -> int:
        return list(Result).index(self)


class AmberPolicy(StrEnum):
    HOLD = "hold"
    PROCEED = "proceed"
    ROLLBACK = "rollback"


class SpecModel(BaseModel):
    """Base: camelCase on the wire, unknown fields are errors (they are typos)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class ModelRef(SpecModel):
    name: Name
    version: Annotated[str, Field(pattern=SEMVER_PATTERN)]
    uri: str | None = None


class Serving(SpecModel):
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    protocol: Literal["v2", "http"] = "v2"


class ApprovalsOverride(SpecModel):
    required: Annotated[
        list[Role],
        Field(
            min_length=1,
            json_schema_extra=_SET,
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
            json_schema_extra=_SET,
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
    reason: NonEmpty

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
        list[Freeze], Field(description="Periods in which no deployment starts.")
    ] = []


class Promotion(SpecModel):
    from_staging: Name


class Expedite(SpecModel):
    reason: NonEmpty


class Compliance(SpecModel):
    conformity_assessment: str | None = None
    declaration_of_conformity: str | None = None
    eu_database_registration: str | None = None
    ce_marking: bool | None = None
    instructions_for_use: str | None = None
    human_oversight: str | None = None
    substantial_modification: bool | None = None


class BodyExpectation(SpecModel):
    json_path: NonEmpty
    equals: Any


class HttpProbe(SpecModel):
    url: str | None = None
    method: Literal["GET", "POST", "HEAD", "PUT"] = "GET"
    path: str = "/"
    expect_status: Annotated[int, Field(ge=100, le=599)] = 200
    body: list[BodyExpectation] = []
    amber_latency: Duration | None = None
    timeout: Duration = "5s"
    retries: Annotated[int, Field(ge=0, le=10)] = 0


class Tensor(SpecModel):
    name: NonEmpty
    datatype: Literal[
        "BOOL",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "FP16",
        "FP32",
        "FP64",
        "BYTES",
    ]
    shape: list[Annotated[int, Field(ge=0)]]
    data: list[Any]


class OutputExpectation(SpecModel):
    name: NonEmpty
    data: list[Any]
    tolerance: Annotated[float, Field(ge=0)] = 0.0


class InferenceProbe(SpecModel):
    url: str | None = None
    model: str | None = None
    inputs: Annotated[list[Tensor], Field(min_length=1)]
    expect: list[OutputExpectation] = []
    timeout: Duration = "5s"


_THRESHOLD = "a comparator and a number, e.g. '<= 0.01'"


class PrometheusProbe(SpecModel):
    url: NonEmpty
    query: NonEmpty
    green: Annotated[str, Field(pattern=THRESHOLD_PATTERN, description=_THRESHOLD)]
    red: Annotated[str, Field(pattern=THRESHOLD_PATTERN, description=_THRESHOLD)]
    no_data: Result = Result.AMBER
    timeout: Duration = "5s"


class Probe(SpecModel):
    # The CRD says "exactly one kind" as far as a schema can; _exactly_one_kind says why.
    model_config = ConfigDict(
        json_schema_extra={
            "description": "Exactly one of http, inference, prometheus.",
            "oneOf": [{"required": [kind]} for kind in ("http", "inference", "prometheus")],
        }
    )

    name: Name
    http: HttpProbe | None = None
    inference: InferenceProbe | None = None
    prometheus: PrometheusProbe | None = None

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Probe:
        kinds = [k for k in ("http", "inference", "prometheus") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"probe {self.name!r} must set exactly one of http, inference, prometheus"
            )
        return self


def _unique_names(probes: list[Probe], where: str) -> None:
    names = [p.name for p in probes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{where} has duplicate names: {', '.join(duplicates)}")


class Verification(SpecModel):
    timeout: Duration = "10m"
    probes: Annotated[
        list[Probe],
        Field(json_schema_extra=_BY_NAME, description="Checks run once the rollout is done."),
    ] = []
    amber_policy: Annotated[
        AmberPolicy, Field(description="What an AMBER verification leads to.")
    ] = AmberPolicy.HOLD

    @model_validator(mode="after")
    def _names(self) -> Verification:
        _unique_names(self.probes, "verification.probes")
        return self


class Monitoring(SpecModel):
    duration: Duration = "24h"
    interval: Duration = "30s"
    signals: Annotated[
        list[Probe],
        Field(json_schema_extra=_BY_NAME, description="Checks repeated every interval."),
    ] = []

    @model_validator(mode="after")
    def _names(self) -> Monitoring:
        _unique_names(self.signals, "monitoring.signals")
        return self


class RollbackPolicy(SpecModel):
    automatic: bool = True


class BlueGreen(SpecModel):
    """Each release in its own Deployment; go-live is one switch of the stable Service."""

    preview_service: Annotated[
        bool,
        Field(
            description=(
                "Create the <name>-preview Service that selects the candidate; verification "
                "probes without a URL go to it."
            )
        ),
    ] = True
    scale_down_delay: Annotated[
        Duration,
        Field(
            description=(
                "How long the previous release keeps running after the monitoring window "
                "ends, so that a rollback is a selector switch."
            )
        ),
    ] = "30s"


class InPlace(SpecModel):
    """One Deployment updated in place: users meet the candidate while it is verified."""


def _about(text: str) -> Any:
    """A field's description, shown by `kubectl explain` (the CRD is generated from here)."""
    return Field(description=text)


class Pause(SpecModel):
    duration: Annotated[
        Duration | None,
        Field(
            description=(
                "How long to stay at this weight; omitted, until `kubectl aideploy promote`."
            )
        ),
    ] = None


class Analysis(SpecModel):
    """Checks run at the weight reached: the verification probes against the canary (the
    preview Service), the monitoring signals against what users are served, or both."""

    probes: Annotated[bool, _about("Run spec.verification.probes against the canary.")] = True
    signals: Annotated[bool, _about("Evaluate spec.monitoring.signals once.")] = False


class CanaryStep(SpecModel):
    """Exactly one of setWeight, pause, analysis."""

    set_weight: Annotated[
        int | None,
        Field(
            ge=0,
            le=99,
            description=(
                "The share of users (percent) the canary serves; 100% is what promotion "
                "after the last step gives."
            ),
        ),
    ] = None
    pause: Annotated[
        Pause | None, _about("Stay at this weight (for a while, or until promoted).")
    ] = None
    analysis: Annotated[
        Analysis | None, _about("Check the canary at this weight; RED rolls back.")
    ] = None

    @model_validator(mode="after")
    def _one(self) -> CanaryStep:
        chosen = [
            n
            for n, v in (
                ("setWeight", self.set_weight),
                ("pause", self.pause),
                ("analysis", self.analysis),
            )
            if v is not None
        ]
        if len(chosen) != 1:
            raise ValueError(
                "a canary step sets exactly one of setWeight, pause and analysis"
                + (f" (this one sets {' and '.join(chosen)})" if chosen else "")
            )
        return self

    def describe(self) -> str:
        if self.set_weight is not None:
            return f"setWeight {self.set_weight}"
        if self.pause is not None:
            return f"pause {self.pause.duration}" if self.pause.duration else "pause until promoted"
        return "analysis"


class HTTPRouteRef(SpecModel):
    http_route: Annotated[
        Name,
        _about(
            "The HTTPRoute (same namespace) whose backendRefs to the stable Service <name> "
            "and the canary Service <name>-preview get the weights."
        ),
    ]


class TrafficRouting(SpecModel):
    gateway_api: Annotated[
        HTTPRouteRef | None,
        Field(alias="gatewayAPI", description="Split by the weights of a Gateway API HTTPRoute."),
    ] = None


class Canary(SpecModel):
    """The candidate serves a growing share of users, step by step, after its verification;
    RED at any step puts its weight back to 0 and removes it."""

    steps: Annotated[
        list[CanaryStep],
        Field(min_length=1, description="Run in order; the canary is promoted after the last."),
    ]
    traffic_routing: Annotated[
        TrafficRouting | None,
        _about(
            "How the weight is applied; omitted, by replica ratio behind the stable Service "
            "(approximate: the share of pods, at most 50%)."
        ),
    ] = None
    scale_down_delay: Annotated[
        Duration,
        _about("How long the previous release keeps running after the monitoring window."),
    ] = "30s"


class Strategy(SpecModel):
    """How a release reaches users. Exactly one member; omitted, blueGreen."""

    blue_green: Annotated[
        BlueGreen | None,
        Field(description="The default: verify beside the serving release, then switch."),
    ] = None
    in_place: Annotated[
        InPlace | None,
        Field(
            description=(
                "For models too large for two copies: the only strategy where users are "
                "served by the candidate during its verification."
            )
        ),
    ] = None
    canary: Annotated[
        Canary | None,
        Field(description="Verified beside the serving release, then given users step by step."),
    ] = None

    @model_validator(mode="after")
    def _one(self) -> Strategy:
        members = (
            ("blueGreen", self.blue_green),
            ("inPlace", self.in_place),
            ("canary", self.canary),
        )
        chosen = [name for name, member in members if member is not None]
        if len(chosen) > 1:
            raise ValueError(f"strategy sets {' and '.join(chosen)}; choose one")
        return self

    @property
    def blue_green_or_default(self) -> BlueGreen | None:
        """The blue-green settings in force, or None under inPlace and canary."""
        if self.in_place is not None or self.canary is not None:
            return None
        return self.blue_green or BlueGreen()


class AIDeploymentSpec(SpecModel):
    system: Annotated[Name, _about("AI system id in the organisation's inventory")]
    risk_level: Annotated[
        RiskLevel, _about("EU AI Act risk level; decides the approvals and compliance needed.")
    ]
    change_type: Annotated[
        ChangeType | None,
        _about("initial, major, minor or patch; derived from the versions when unset."),
    ] = None
    environment: Annotated[Environment, _about("Where this deployment runs.")] = (
        Environment.PRODUCTION
    )
    model: Annotated[ModelRef, _about("The model and the version being deployed.")]
    replicas: Annotated[int, Field(ge=0, le=1000, description="Number of model server pods.")] = 1
    template: Annotated[dict[str, Any], _about("A PodTemplateSpec: the model server.")]
    serving: Annotated[Serving, _about("The port and protocol the model server speaks.")] = (
        Serving()
    )
    approvals: Annotated[
        ApprovalsOverride | None, _about("Overrides the approvals the risk level requires.")
    ] = None
    checklist: Annotated[
        ChecklistOverride | None, _about("Overrides the checklist items that must be checked.")
    ] = None
    window: Annotated[Window | None, _about("When the deployment may start.")] = None
    promotion: Annotated[
        Promotion | None, _about("The staging AIDeployment this one promotes.")
    ] = None
    compliance: Annotated[
        Compliance | None,
        _about("Required when riskLevel is high (PROC-AI-DEPLOY-001 section 7)."),
    ] = None
    verification: Annotated[
        Verification, _about("Checks that decide whether the new version goes live.")
    ] = Verification()
    monitoring: Annotated[
        Monitoring | None, _about("Checks after go-live that can trigger a rollback.")
    ] = None
    rollback: Annotated[
        RollbackPolicy, _about("Whether a RED result rolls back automatically.")
    ] = RollbackPolicy()
    expedite: Annotated[
        Expedite | None, _about("Deploys a patch outside the window, for the reason given.")
    ] = None
    strategy: Annotated[
        Strategy,
        _about("How a release reaches users: blueGreen (the default), canary or inPlace."),
    ] = Strategy()
