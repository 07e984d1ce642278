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
    required: Annotated[list[Role], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> ApprovalsOverride:
        if len(set(self.required)) != len(self.required):
            raise ValueError("approvals.required lists a role twice")
        return self


class ChecklistOverride(SpecModel):
    required: Annotated[
        list[Annotated[str, Field(pattern=CHECKLIST_ITEM_PATTERN)]], Field(min_length=1)
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
    start: datetime
    end: datetime
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
    schedule: Annotated[str, Field(pattern=CRON_PATTERN)]
    duration: Duration
    time_zone: str = "UTC"
    freezes: list[Freeze] = []


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


class PrometheusProbe(SpecModel):
    url: NonEmpty
    query: NonEmpty
    green: Annotated[str, Field(pattern=THRESHOLD_PATTERN)]
    red: Annotated[str, Field(pattern=THRESHOLD_PATTERN)]
    no_data: Result = Result.AMBER
    timeout: Duration = "5s"


class Probe(SpecModel):
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
    probes: list[Probe] = []
    amber_policy: AmberPolicy = AmberPolicy.HOLD

    @model_validator(mode="after")
    def _names(self) -> Verification:
        _unique_names(self.probes, "verification.probes")
        return self


class Monitoring(SpecModel):
    duration: Duration = "24h"
    interval: Duration = "30s"
    signals: list[Probe] = []

    @model_validator(mode="after")
    def _names(self) -> Monitoring:
        _unique_names(self.signals, "monitoring.signals")
        return self


class RollbackPolicy(SpecModel):
    automatic: bool = True


class AIDeploymentSpec(SpecModel):
    system: Name
    risk_level: RiskLevel
    change_type: ChangeType | None = None
    environment: Environment = Environment.PRODUCTION
    model: ModelRef
    replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    template: dict[str, Any]
    serving: Serving = Serving()
    approvals: ApprovalsOverride | None = None
    checklist: ChecklistOverride | None = None
    window: Window | None = None
    promotion: Promotion | None = None
    compliance: Compliance | None = None
    verification: Verification = Verification()
    monitoring: Monitoring | None = None
    rollback: RollbackPolicy = RollbackPolicy()
    expedite: Expedite | None = None
