"""The CRDs' structural schemas (AIDeployment, AIDeploymentRecord), built from the same
constants as the pydantic models and the record logic so that they cannot drift apart
silently. `make crds` writes both, as two documents of crds/aideployment.yaml; a test fails
when the committed file differs, and another feeds the same manifests to the apiserver and
to the models.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from aideploy.api.constants import (
    CHECKLIST_ITEMS,
    GROUP,
    KIND,
    PLURAL,
    RECORD_KIND,
    RECORD_PLURAL,
    VERSION,
    RiskLevel,
    Role,
)
from aideploy.api.durations import DURATION_PATTERN
from aideploy.api.records import HASH_PATTERN, PREVIOUS_HASH_PATTERN, RECORD_IDS, RecordType
from aideploy.api.spec import (
    CRON_PATTERN,
    NAME_PATTERN,
    SEMVER_PATTERN,
    THRESHOLD_PATTERN,
    AmberPolicy,
    ChangeType,
    Environment,
    Result,
)

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


_ANY: Schema = {"x-kubernetes-preserve-unknown-fields": True}
_FREE_OBJECT: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
NAME = _str(NAME_PATTERN, min_length=1, max_length=63)
DURATION = _str(DURATION_PATTERN)


def _probe() -> Schema:
    http = _obj(
        {
            "url": _str(),
            "method": _str(enum=["GET", "POST", "HEAD", "PUT"]),
            "path": _str(),
            "expectStatus": _int(100, 599),
            "body": _arr(_obj({"jsonPath": _str(min_length=1), "equals": _ANY}, ["jsonPath"])),
            "amberLatency": DURATION,
            "timeout": DURATION,
            "retries": _int(0, 10),
        }
    )
    tensor = _obj(
        {
            "name": _str(min_length=1),
            "datatype": _str(
                enum=[
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
            ),
            "shape": _arr(_int(0)),
            "data": _arr(_ANY),
        },
        ["name", "datatype", "shape", "data"],
    )
    inference = _obj(
        {
            "url": _str(),
            "model": _str(),
            "inputs": _arr(tensor, min_items=1),
            "expect": _arr(
                _obj(
                    {
                        "name": _str(min_length=1),
                        "data": _arr(_ANY),
                        "tolerance": {"type": "number", "minimum": 0},
                    },
                    ["name", "data"],
                )
            ),
            "timeout": DURATION,
        },
        ["inputs"],
    )
    threshold = _str(THRESHOLD_PATTERN, description="a comparator and a number, e.g. '<= 0.01'")
    prometheus = _obj(
        {
            "url": _str(min_length=1),
            "query": _str(min_length=1),
            "green": threshold,
            "red": threshold,
            "noData": _str(enum=[r.value for r in Result]),
            "timeout": DURATION,
        },
        ["url", "query", "green", "red"],
    )
    probe = _obj(
        {"name": NAME, "http": http, "inference": inference, "prometheus": prometheus},
        ["name"],
        description="Exactly one of http, inference, prometheus.",
    )
    probe["oneOf"] = [{"required": [kind]} for kind in ("http", "inference", "prometheus")]
    return probe


def _probes() -> Schema:
    """A list of probes keyed by name, so that the apiserver rejects duplicate names."""
    return {
        **_arr(_probe()),
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
    }


def spec_schema() -> Schema:
    roles = [r.value for r in Role]
    compliance = _obj(
        {
            "conformityAssessment": _str(),
            "declarationOfConformity": _str(),
            "euDatabaseRegistration": _str(),
            "ceMarking": {"type": "boolean"},
            "instructionsForUse": _str(),
            "humanOversight": _str(),
            "substantialModification": {"type": "boolean"},
        },
        description="Required when riskLevel is high (PROC-AI-DEPLOY-001 section 7).",
    )
    window = _obj(
        {
            "schedule": _str(CRON_PATTERN, description="cron, five fields, in timeZone"),
            "duration": DURATION,
            "timeZone": _str(),
            "freezes": _arr(
                _obj(
                    {
                        "start": _str(description="RFC 3339 time"),
                        "end": _str(description="RFC 3339 time"),
                        "reason": _str(min_length=1),
                    },
                    ["start", "end", "reason"],
                )
            ),
        },
        ["schedule", "duration"],
    )
    return _obj(
        {
            "system": _str(
                NAME_PATTERN,
                min_length=1,
                max_length=63,
                description="AI system id in the organisation's inventory",
            ),
            "riskLevel": _str(enum=[r.value for r in RiskLevel]),
            "changeType": _str(enum=[c.value for c in ChangeType]),
            "environment": _str(enum=[e.value for e in Environment]),
            "model": _obj(
                {"name": NAME, "version": _str(SEMVER_PATTERN), "uri": _str()}, ["name", "version"]
            ),
            "replicas": _int(0, 1000),
            "template": {**_FREE_OBJECT, "description": "A PodTemplateSpec: the model server."},
            "serving": _obj({"port": _int(1, 65535), "protocol": _str(enum=["v2", "http"])}),
            "approvals": _obj({"required": _set(_str(enum=roles))}, ["required"]),
            "checklist": _obj({"required": _set(_str(enum=list(CHECKLIST_ITEMS)))}, ["required"]),
            "window": window,
            "promotion": _obj({"fromStaging": NAME}, ["fromStaging"]),
            "compliance": compliance,
            "verification": _obj(
                {
                    "timeout": DURATION,
                    "probes": _probes(),
                    "amberPolicy": _str(enum=[a.value for a in AmberPolicy]),
                }
            ),
            "monitoring": _obj({"duration": DURATION, "interval": DURATION, "signals": _probes()}),
            "rollback": _obj({"automatic": {"type": "boolean"}}),
            "expedite": _obj({"reason": _str(min_length=1)}, ["reason"]),
        },
        ["system", "riskLevel", "model", "template"],
    )


def _crd(
    kind: str,
    plural: str,
    short_name: str,
    columns: list[Schema],
    properties: Schema,
    status: bool,
) -> dict[str, Any]:
    """A namespaced v1 CRD of the aideploy.io group with one served, stored version."""
    version: dict[str, Any] = {"name": VERSION, "served": True, "storage": True}
    if status:
        version["subresources"] = {"status": {}}
    version["additionalPrinterColumns"] = columns
    version["schema"] = {
        "openAPIV3Schema": _obj(
            {"apiVersion": _str(), "kind": _str(), "metadata": {"type": "object"}, **properties},
            ["spec"],
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


def _column(name: str, path: str, type_: str = "string") -> Schema:
    return {"name": name, "type": type_, "jsonPath": path}


def aideployment_crd() -> dict[str, Any]:
    columns = [
        _column("Model", ".spec.model.name"),
        _column("Version", ".spec.model.version"),
        _column("Risk", ".spec.riskLevel"),
        _column("Phase", ".status.phase"),
        _column("Decision", ".status.decision"),
        _column("Age", ".metadata.creationTimestamp", "date"),
    ]
    properties = {"spec": spec_schema(), "status": _FREE_OBJECT}
    return _crd(KIND, PLURAL, "aid", columns, properties, status=True)


def record_spec_schema() -> Schema:
    def time() -> Schema:
        return {"type": "string", "format": "date-time", "description": "RFC 3339 time, UTC"}

    return _obj(
        {
            "recordId": _str(enum=list(RECORD_IDS.values())),
            "type": _str(enum=[t.value for t in RecordType]),
            "deployment": _obj(
                {
                    "name": _str(min_length=1, max_length=253),
                    "uid": _str(min_length=1),
                    "generation": _int(1),
                    "specDigest": _str(HASH_PATTERN),
                },
                ["name", "uid", "generation", "specDigest"],
                description="The AIDeployment this record documents (not an owner: records "
                "outlive it).",
            ),
            "sequence": _int(1),
            "createdAt": time(),
            "retainUntil": time(),
            "content": {**_FREE_OBJECT, "description": "What the record says; by type."},
            # nullable only so that "" (the first record's link) passes: the apiserver's
            # OpenAPI validator takes a string's zero value for null otherwise.
            "previousHash": {
                **_str(
                    PREVIOUS_HASH_PATTERN,
                    description="hash of the previous record of the same AIDeployment; empty "
                    "for the first",
                ),
                "nullable": True,
            },
            "hash": _str(
                HASH_PATTERN,
                description="sha256 of the canonical JSON of every other field of this spec",
            ),
        },
        [
            "recordId",
            "type",
            "deployment",
            "sequence",
            "createdAt",
            "retainUntil",
            "content",
            "previousHash",
            "hash",
        ],
        description="Immutable once written (by convention: Kubernetes 1.20 has no CEL "
        "transition rules; the admission webhook enforces it). Any edit is detected by "
        "`kubectl aideploy verify`.",
    )


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
    return _crd(RECORD_KIND, RECORD_PLURAL, "aidr", columns, properties, status=False)


def render() -> str:
    """Both CRDs, as two YAML documents of one file (crds/aideployment.yaml)."""
    header = "# Generated by `make crds` from aideploy/api/crd.py; do not edit by hand.\n"
    documents = [aideployment_crd(), aideploymentrecord_crd()]
    return header + "---\n".join(
        yaml.safe_dump(doc, sort_keys=False, width=100) for doc in documents
    )


if __name__ == "__main__":
    sys.stdout.write(render())
