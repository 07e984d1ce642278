"""The CRDs' structural schemas (AIDeployment, AIDeploymentRecord, AIDeploymentNotifier).
Their specs are generated from their pydantic models (api/structural.py). `make crds`
writes them, as documents of crds/aideployment.yaml; a test fails when the committed
file differs, and another feeds the same manifests to the apiserver and to the models.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from aideploy.api.constants import (
    GROUP,
    KIND,
    PLURAL,
    RECORD_KIND,
    RECORD_PLURAL,
    VERSION,
)
from aideploy.api.notifier import NOTIFIER_KIND, NOTIFIER_PLURAL, NotifierSpec
from aideploy.api.records import RecordSpec
from aideploy.api.spec import AIDeploymentSpec
from aideploy.api.structural import structural

Schema = dict[str, Any]


def _str(
    pattern: str | None = None,
    enum: list[str] | None = None,
    min_length: int = 0,
    max_length: int | None = None,
    description: str | None = None,
) -> Schema:
    schema: Schema = {"type": "string"}
    if pattern:
        schema["pattern"] = pattern
    if enum:
        schema["enum"] = enum
    if min_length:
        schema["minLength"] = min_length
    if max_length:
        schema["maxLength"] = max_length
    if description:
        schema["description"] = description
    return schema


def _int(minimum: int | None = None, maximum: int | None = None) -> Schema:
    schema: Schema = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def _obj(
    properties: dict[str, Schema], required: list[str] | None = None, description: str | None = None
) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if description:
        schema["description"] = description
    return schema


def _arr(items: Schema, min_items: int = 0) -> Schema:
    schema: Schema = {"type": "array", "items": items}
    if min_items:
        schema["minItems"] = min_items
    return schema


def _set(items: Schema) -> Schema:
    return {**_arr(items, min_items=1), "x-kubernetes-list-type": "set"}


_FREE_OBJECT: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
# The words Kubernetes' own types give these fields, so `kubectl explain` reads the same.
_API_VERSION = "The versioned schema of this representation of an object."
_KIND = "The REST resource this object represents."
_STATUS = (
    "Written by the operator only: the phase, the gate, the releases, the verdicts and "
    "the conditions (see docs/api.md, Status). `kubectl aideploy status NAME` reads it."
)


def spec_schema() -> Schema:
    """AIDeployment.spec, generated from the pydantic models (the one source of its types,
    patterns, enums, bounds and descriptions); see api/structural.py for the translation."""
    return structural(AIDeploymentSpec.model_json_schema(by_alias=True, mode="validation"))


def _crd(
    kind: str,
    plural: str,
    short_name: str,
    columns: list[Schema],
    properties: Schema,
    status: bool,
    description: str,
) -> dict[str, Any]:
    """A namespaced v1 CRD of the aideploy.io group with one served, stored version."""
    version: dict[str, Any] = {"name": VERSION, "served": True, "storage": True}
    if status:
        version["subresources"] = {"status": {}}
    version["additionalPrinterColumns"] = columns
    version["schema"] = {
        "openAPIV3Schema": _obj(
            {
                "apiVersion": _str(description=_API_VERSION),
                "kind": _str(description=_KIND),
                # The apiserver refuses anything but a type here: explain shows ObjectMeta's.
                "metadata": {"type": "object"},
                **properties,
            },
            ["spec"],
            description=description,
        )
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "plural": plural,
                "singular": kind.lower(),
                "listKind": f"{kind}List",
                "shortNames": [short_name],
                "categories": ["aideploy"],
            },
            "versions": [version],
        },
    }


def _column(name: str, path: str, type_: str = "string", *, wide: bool = False) -> Schema:
    """A printer column; `wide` ones show only with `kubectl get -o wide` (priority 1)."""
    column: Schema = {"name": name, "type": type_, "jsonPath": path}
    if wide:
        column["priority"] = 1
    return column


def aideployment_crd() -> dict[str, Any]:
    columns = [
        _column("Model", ".spec.model.name"),
        _column("Version", ".spec.model.version"),
        _column("Risk", ".spec.riskLevel"),
        _column("Serving", ".status.stableRelease.version"),
        _column("Phase", ".status.phase"),
        _column("Decision", ".status.decision"),
        _column("Age", ".metadata.creationTimestamp", "date"),
        # The sentence that says what it waits for and the command to run next.
        _column("Message", ".status.message", wide=True),
    ]
    properties = {"spec": spec_schema(), "status": {**_FREE_OBJECT, "description": _STATUS}}
    description = (
        "An AI model deployment under PROC-AI-DEPLOY-001: approved for its exact spec, "
        "deployed in its window, verified before users reach it, watched after go-live."
    )
    return _crd(KIND, PLURAL, "aid", columns, properties, status=True, description=description)


def record_spec_schema() -> Schema:
    """AIDeploymentRecord.spec, generated from api/records.py's RecordSpec. Its times keep
    `format: date-time`: the operator writes them, always in RFC 3339 with Z."""
    schema = RecordSpec.model_json_schema(by_alias=True, mode="validation")
    return structural(schema, formats=frozenset({"date-time"}))


def aideploymentrecord_crd() -> dict[str, Any]:
    """Records have no status: everything they say is written once, in the spec."""
    columns = [
        _column("Deployment", ".spec.deployment.name"),
        _column("Type", ".spec.type"),
        _column("Record", ".spec.recordId"),
        _column("Sequence", ".spec.sequence", "integer"),
        _column("Created", ".spec.createdAt", "date"),
    ]
    properties = {"spec": record_spec_schema()}
    description = (
        "One tamper-evident evidence record of an AIDeployment, hash-chained to the one "
        "before it and signed by the operator; check with `kubectl aideploy verify`."
    )
    return _crd(
        RECORD_KIND,
        RECORD_PLURAL,
        "aidr",
        columns,
        properties,
        status=False,
        description=description,
    )


def aideploymentnotifier_crd() -> dict[str, Any]:
    """The notifier's status is the operator's: per sink, its delivery cursors (how far
    each AIDeployment's events were delivered) and its conditions."""
    columns = [
        _column("Sinks", ".spec.sinks[*].name"),
        _column("Age", ".metadata.creationTimestamp", "date"),
    ]
    properties = {
        "spec": structural(NotifierSpec.model_json_schema(by_alias=True, mode="validation")),
        "status": {
            **_FREE_OBJECT,
            "description": "Written by the operator only: per sink, how far each "
            "AIDeployment's events were delivered, and the sink's Delivering condition.",
        },
    }
    description = (
        "Tells stakeholders about AIDeployments' transitions (approval requested, deployment "
        "started, verified, live, rolled back, closed) as CDEvents or chat messages."
    )
    return _crd(
        NOTIFIER_KIND,
        NOTIFIER_PLURAL,
        "aidn",
        columns,
        properties,
        status=True,
        description=description,
    )


def render() -> str:
    """The CRDs, as YAML documents of one file (crds/aideployment.yaml)."""
    header = "# Generated by `make crds` from aideploy/api/crd.py; do not edit by hand.\n"
    documents = [aideployment_crd(), aideploymentrecord_crd(), aideploymentnotifier_crd()]
    return header + "---\n".join(
        yaml.dump(doc, Dumper=_PlainDumper, sort_keys=False, width=100) for doc in documents
    )


class _PlainDumper(yaml.SafeDumper):
    """Spell every shared sub-schema out: YAML anchors and aliases (&id001) are valid, but
    a reader of the CRD (and `kubectl explain`'s source) should see each field whole."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


if __name__ == "__main__":
    sys.stdout.write(render())
