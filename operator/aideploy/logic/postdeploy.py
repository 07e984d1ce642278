"""After go-live: the EU database registration (PROC-AI-DEPLOY-001 step 18) and the
deployment retrospective (step 20), both on record.

A high-risk production system may deploy with its registration only `prepared` or
`submitted`; the EU database gives the id later. Until someone records it (`kubectl
aideploy register NAME --id ID`, annotation `aideploy.io/eu-registration`), the
`Registered` condition is False with reason RegistrationPending. The id is recorded once
(REC-AI-DEPLOY-REG) and stays in the annotation: it belongs to the system, not to one
release, so the next release is registered too.

The retrospective (`kubectl aideploy close`, annotation `aideploy.io/retrospective`) is
one-shot: recorded under the closure's id (REC-AI-DEPLOY-CLOSE, type retrospective) for
the release that ended, then the annotation is removed. Until then the closure record says
it is outstanding.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from aideploy.api.constants import (
    REGISTRATION_ANNOTATION,
    RETROSPECTIVE_ANNOTATION,
    ConditionType,
    Reason,
    RiskLevel,
)
from aideploy.api.records import RecordType
from aideploy.api.spec import AIDeploymentSpec
from aideploy.api.spec_base import Environment
from aideploy.api.status import Release
from aideploy.logic.inventory import REGISTRATION_STATES
from aideploy.logic.plan import Draft, release_summary

OUTSTANDING: Final = "outstanding"
MAX_LESSONS: Final = 4000


@dataclass(frozen=True)
class Registration:
    """What is known of the system's EU database registration: a state, and the id once
    registered; `by` is who recorded an id given after go-live."""

    state: str  # "" (none stated), prepared, submitted, registered
    id: str = ""
    by: str = ""

    def describe(self) -> str:
        return f"registered as {self.id}" if self.id else (self.state or "not stated")

    def to_record(self) -> dict[str, str]:
        wire = {"state": self.state or "none", "id": self.id, "recordedBy": self.by}
        return {k: v for k, v in wire.items() if v}


def parse_registration_annotation(value: str) -> tuple[str, str]:
    """`<id>; by=<who>` -> (id, who); the id alone is accepted too."""
    registration_id, _, rest = value.partition(";")
    by = rest.strip().removeprefix("by=").strip() if rest.strip().startswith("by=") else ""
    return registration_id.strip(), by


def registration(spec: AIDeploymentSpec, annotations: Mapping[str, str]) -> Registration:
    """The annotation's id, if any, else the spec's state or id."""
    recorded = annotations.get(REGISTRATION_ANNOTATION, "").strip()
    if recorded:
        registration_id, by = parse_registration_annotation(recorded)
        if registration_id:
            return Registration("registered", registration_id, by)
    stated = (spec.compliance.eu_database_registration if spec.compliance else None) or ""
    stated = stated.strip()
    if not stated:
        return Registration("")
    if stated.lower() in REGISTRATION_STATES:
        return Registration(stated.lower())
    return Registration("registered", stated)


def needs_registration(spec: AIDeploymentSpec) -> bool:
    return spec.risk_level is RiskLevel.HIGH and spec.environment is Environment.PRODUCTION


def closure_fields(spec: AIDeploymentSpec, annotations: Mapping[str, str]) -> dict[str, Any]:
    """What the closure record adds for steps 18 and 20: the registration as known at
    closure, and the retrospective, outstanding until `kubectl aideploy close`."""
    return {
        "registration": registration(spec, annotations).to_record(),
        "retrospective": OUTSTANDING,
    }


def registered(draft: Draft, spec: AIDeploymentSpec, release: Release) -> None:
    """Succeeded: the Registered condition, and the registration record once an id is
    given after go-live (asked for once: the condition says it is on record)."""
    if not needs_registration(spec):
        return
    known = registration(spec, draft.obs.annotations)
    name = draft.obs.owner.name
    if not known.id:
        draft.condition(
            ConditionType.REGISTERED,
            False,
            Reason.REGISTRATION_PENDING,
            f"Version {release.version} is live and its EU database registration is "
            f"{known.describe()}: once the EU database gives the id, record it with "
            f"kubectl aideploy register {name} --id ID.",
        )
        return
    message = f"The system is registered in the EU database as {known.id}" + (
        f" (recorded by {known.by})." if known.by else "."
    )
    current = draft.status.condition(ConditionType.REGISTERED)
    if current is not None and current.status == "True" and current.message == message:
        return  # on record already
    if known.by or REGISTRATION_ANNOTATION in draft.obs.annotations:
        draft.record(
            RecordType.REGISTRATION,
            release,
            {
                "registration": known.to_record(),
                "release": release_summary(release),
                "system": spec.system,
            },
            event=f"registered {known.id}",
        )
        draft.event("Normal", Reason.REGISTERED, message)
    draft.condition(ConditionType.REGISTERED, True, Reason.REGISTERED, message)


def parse_retrospective(value: str) -> tuple[dict[str, str] | None, str]:
    """The annotation's {url, lessons, by}, or None and why it cannot be recorded."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return None, "it is not a JSON object"
    if not isinstance(parsed, dict):
        return None, "it is not a JSON object"
    url = str(parsed.get("url") or "").strip()
    lessons = str(parsed.get("lessons") or "").strip()
    if not url:
        return None, "it names no retrospective (url)"
    if len(lessons) > MAX_LESSONS:
        return None, f"its lessons are longer than {MAX_LESSONS} characters"
    entry = {"url": url, "lessons": lessons, "by": str(parsed.get("by") or "").strip()}
    return {k: v for k, v in entry.items() if v}, ""


def retrospective(draft: Draft, spec: AIDeploymentSpec, release: Release, final_phase: str) -> None:
    """Succeeded, RolledBack or Failed: record a retrospective asked for, then consume it."""
    value = draft.obs.annotations.get(RETROSPECTIVE_ANNOTATION)
    if value is None or RETROSPECTIVE_ANNOTATION in draft.remove_annotations:
        return
    draft.remove_annotations.append(RETROSPECTIVE_ANNOTATION)
    entry, problem = parse_retrospective(value)
    if entry is None:
        draft.event(
            "Warning",
            Reason.INVALID_RETROSPECTIVE,
            f"Ignored {RETROSPECTIVE_ANNOTATION}: {problem}. Record the retrospective with "
            f"kubectl aideploy close {draft.obs.owner.name} --retrospective URL --lessons TEXT.",
        )
        return
    draft.record(
        RecordType.RETROSPECTIVE,
        release,
        {
            "finalPhase": final_phase,
            "release": release_summary(release),
            "retrospective": entry,
            "registration": registration(spec, draft.obs.annotations).to_record(),
        },
        event="retrospective",
    )
    message = (
        f"The retrospective of version {release.version} is on record: {entry['url']}; "
        "the deployment record is closed."
    )
    draft.condition(ConditionType.CLOSED, True, Reason.RETROSPECTIVE_RECORDED, message)
    draft.event("Normal", Reason.RETROSPECTIVE_RECORDED, message)
