"""The vocabulary every part of `AIDeployment.spec` shares: the base model (camelCase on
the wire, unknown fields refused), names, patterns, the verdicts, and `about()`, the field
descriptions that `kubectl explain` shows (the CRD is generated from the models).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

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
LIST_SET: dict[str, Any] = {"x-kubernetes-list-type": "set"}
LIST_BY_NAME: dict[str, Any] = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["name"],
}


def about(text: str) -> Any:
    """A field's description, shown by `kubectl explain` (the CRD is generated from here)."""
    return Field(description=text)


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
