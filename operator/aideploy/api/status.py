"""Pydantic models of `AIDeployment.status`, as the operator writes it."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self, TypedDict, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from aideploy.api.constants import Phase
from aideploy.api.spec import Result
from aideploy.api.times import parse_time

ConditionStatus = Literal["True", "False", "Unknown"]


class StatusModel(BaseModel):
    """camelCase on the wire. Unknown fields are refused, so that a misspelled key in the
    operator's own code fails where it is written instead of reaching the cluster; what
    the operator reads goes through `AIDeploymentStatus.salvage`, which drops them."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes`, validated: pydantic's `model_copy(update=...)` checks
        neither the names nor the values."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        return type(self).model_validate({**values, **changes})

    @classmethod
    def known_fields(
        cls, raw: Mapping[str, Any], path: str = ""
    ) -> tuple[dict[str, Any], list[str]]:
        """`raw` without the keys this model does not know, at every level; and the dotted
        paths of those dropped."""
        fields = _fields_of(cls)
        kept: dict[str, Any] = {}
        dropped: list[str] = []
        for key, value in raw.items():
            if key not in fields:
                dropped.append(f"{path}{key}")
                continue
            nested = fields[key]
            if nested is not None and isinstance(value, Mapping):
                value, lost = nested.known_fields(value, f"{path}{key}.")
                dropped += lost
            elif nested is not None and isinstance(value, list):
                items = []
                for index, item in enumerate(value):
                    if isinstance(item, Mapping):
                        item, lost = nested.known_fields(item, f"{path}{key}[{index}].")
                        dropped += lost
                    items.append(item)
                value = items
            kept[key] = value
        return kept, dropped


@functools.cache
def _fields_of(model: type[StatusModel]) -> dict[str, type[StatusModel] | None]:
    """Each key a status model reads (its alias, or its name), with the model nested in
    it: worked out once per model, not on every read of every object's status."""
    fields: dict[str, type[StatusModel] | None] = {}
    for name, field in model.model_fields.items():
        nested = _nested_model(field.annotation)
        fields[name] = nested
        fields[field.alias or name] = nested
    return fields


def _nested_model(annotation: Any) -> type[StatusModel] | None:
    """The status model inside `Release | None` or `list[ProbeOutcome]`, if any."""
    if isinstance(annotation, type) and issubclass(annotation, StatusModel):
        return annotation
    for argument in get_args(annotation):
        found = _nested_model(argument)
        if found is not None:
            return found
    return None


class Condition(StatusModel):
    type: str
    status: ConditionStatus
    reason: str
    message: str
    last_transition_time: str
    observed_generation: int


class Release(StatusModel):
    """A release the operator rolled out: what it was, and enough to restore it exactly."""

    version: str
    digest: str
    generation: int | None = None
    deployed_at: str | None = None
    template: dict[str, Any] | None = None
    serving: dict[str, Any] | None = None
    replicas: int | None = None
    change_type: str | None = None
    conformity_assessment: str | None = None
    #: How it reaches users: blueGreen, canary or inPlace. None: started by an operator version
    #: without strategies, which updated its Deployment in place.
    strategy: str | None = None
    # When it passed verification (GREEN, accepted AMBER or a go-live decision) and served.
    went_live_at: str | None = None
    # When its closure record was asked for (Succeeded, rolled back, failed or superseded).
    closed_at: str | None = None
    #: The operator's HMAC over what it deploys of this release (logic/releases.py): a
    #: release in status that does not carry it was not written by the operator.
    signature: str | None = None


class ApprovalRecord(StatusModel):
    """An approval as read from its annotation, and whether it counts."""

    role: str
    by: str
    digest: str
    comment: str = ""
    valid: bool
    # True when the admission webhook vouched for this annotation: `by` is then the
    # authenticated identity of the request, not the annotation's free text.
    authenticated: bool = False
    groups: list[str] = []
    approved_at: str | None = None
    problem: str | None = None


class Gate(StatusModel):
    """What the gate still waits for; empty lists mean that part is satisfied."""

    missing_approvals: list[str] = []
    stale_approvals: list[str] = []
    rejected_approvals: list[str] = []
    missing_checklist: list[str] = []
    invalid_checklist: list[str] = []
    missing_compliance: list[str] = []
    compliance_problems: list[str] = []
    promotion: str | None = None
    window: dict[str, Any] | None = None
    blocked_by: list[str] = []
    #: Roles and checklist items the spec's overrides leave out of the procedure's floor.
    below_floor: list[str] = []
    #: True when the operator's lowerGate policy let those omissions stand.
    floor_lowered: bool = False


class ProbeOutcome(StatusModel):
    """One probe's result, as shown in status and kept in records."""

    name: str
    kind: str
    result: Result
    value: str | None = None
    message: str
    at: str
    #: How long the probe took, in seconds rounded to milliseconds (absent in old statuses).
    duration_seconds: float | None = None


class VerificationStatus(StatusModel):
    """Verification of one release (by digest): when it began, what the probes said."""

    digest: str
    started_at: str
    completed_at: str | None = None
    decision: Result | None = None
    probes: list[ProbeOutcome] = []


class MonitoringStatus(StatusModel):
    """The post-deployment watch. Times live here, not in memory, so that a restarted
    operator neither restarts the window nor misses a check."""

    digest: str
    started_at: str
    ends_at: str
    next_check_at: str
    last_check_at: str | None = None
    checks: int = 0
    signals: list[ProbeOutcome] = []


class RollbackStatus(StatusModel):
    """The last rollback: what triggered it, from which release to which, and how the
    restored release verified."""

    trigger: str
    reason: str
    from_version: str
    from_digest: str
    to_version: str | None = None
    to_digest: str | None = None
    red_at: str
    started_at: str
    completed_at: str | None = None
    verification: list[ProbeOutcome] = []
    restored_decision: Result | None = None


class ReleaseRef(StatusModel):
    """A release as people tell it apart: its id (in the Deployment's name and the pods'
    `aideploy.io/release` label) and its model version."""

    id: str
    version: str


class TrafficShare(StatusModel):
    """The share of the stable Service's traffic a release's pods receive, in percent."""

    release: str
    version: str
    weight: int


class CanaryStepRecord(StatusModel):
    """One canary step done: when, and what it did (a weight set, a pause over, a check)."""

    step: int
    at: str
    detail: str


class CanaryStatus(StatusModel):
    """Where the canary of `digest` is in spec.strategy.canary.steps. `step` is the index of
    the step under way (len(steps): all done, promoted); its start is kept here, so that a
    restart neither repeats nor skips a pause."""

    digest: str
    step: Annotated[int, Field(ge=0)] = 0
    step_started_at: str
    weight: Annotated[int, Field(ge=0, le=100)] = 0
    #: The HTTPRoute the weights were written to: reset to (100, 0) even if a later spec
    #: no longer names it.
    route: str | None = None
    #: An AMBER analysis waiting for `aideploy.io/promote` (its description); not re-run.
    held: str | None = None
    history: list[CanaryStepRecord] = []

    @field_validator("step_started_at")
    @classmethod
    def _a_time(cls, value: str) -> str:
        parse_time(value)  # a hand-edited time that cannot be read is dropped by salvage
        return value


class RecordRef(StatusModel):
    """The newest procedure record of this object: what `kubectl aideploy verify` needs to
    notice that the last record of a chain was deleted."""

    name: str
    sequence: int
    hash: str


class AIDeploymentStatus(StatusModel):
    observed_generation: int | None = None
    change_type: str | None = None
    spec_digest: str | None = None
    phase: Phase | None = None
    decision: Result | None = None
    message: str | None = None
    phase_transition_time: str | None = None
    current_release: Release | None = None
    last_good_release: Release | None = None
    gate: Gate | None = None
    approvals: list[ApprovalRecord] = []
    verification: VerificationStatus | None = None
    monitoring: MonitoringStatus | None = None
    canary: CanaryStatus | None = None
    rollback: RollbackStatus | None = None
    latest_record: RecordRef | None = None
    #: The release users are served by (the stable Service selects its pods).
    stable_release: ReleaseRef | None = None
    #: The release being verified beside it, behind the preview Service.
    candidate_release: ReleaseRef | None = None
    traffic: list[TrafficShare] = []
    conditions: list[Condition] = []

    @classmethod
    def salvage(cls, raw: Mapping[str, Any]) -> tuple[AIDeploymentStatus, list[str]]:
        """Read a status that may have been edited by hand or written by another version:
        keep every field that parses, drop unknown keys at every level, name what was
        dropped. A reconcile then rewrites them, instead of failing on the same bad field
        for ever."""
        known, dropped = cls.known_fields(raw)
        try:
            return cls.model_validate(known), dropped
        except ValidationError:
            kept: dict[str, Any] = {}
            for key, value in known.items():
                try:
                    cls.model_validate({key: value})
                except ValidationError:
                    dropped.append(key)
                else:
                    kept[key] = value
            return cls.model_validate(kept), dropped

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


class StatusUpdate(TypedDict, total=False):
    """The status fields a decision may set beside phase, message and conditions: typed,
    so that a misspelled key is a type error, and validated again when applied."""

    change_type: str | None
    decision: Result | None
    current_release: Release | None
    last_good_release: Release | None
    gate: Gate | None
    approvals: list[ApprovalRecord]
    verification: VerificationStatus | None
    monitoring: MonitoringStatus | None
    canary: CanaryStatus | None
    rollback: RollbackStatus | None
    latest_record: RecordRef | None
    stable_release: ReleaseRef | None
    candidate_release: ReleaseRef | None
    traffic: list[TrafficShare]
