"""The AIDeployment CRD's structural schema, built from the same constants as the pydantic
models so that the two cannot drift apart silently. `make crds` writes crds/ from this; a
test fails when the committed file differs, and another feeds the same manifests to the
apiserver and to the models.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from aideploy.api.constants import CHECKLIST_ITEMS, GROUP, KIND, PLURAL, VERSION, RiskLevel, Role
from aideploy.api.durations import DURATION_PATTERN
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


def aideployment_crd() -> dict[str, Any]:
    columns = [
        ("Model", ".spec.model.name"),
        ("Version", ".spec.model.version"),
        ("Risk", ".spec.riskLevel"),
        ("Phase", ".status.phase"),
        ("Decision", ".status.decision"),
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "plural": PLURAL,
                "singular": KIND.lower(),
                "listKind": f"{KIND}List",
                "shortNames": ["aid"],
                "categories": ["aideploy"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        *({"name": n, "type": "string", "jsonPath": p} for n, p in columns),
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": _obj(
                            {
                                "apiVersion": _str(),
                                "kind": _str(),
                                "metadata": {"type": "object"},
                                "spec": spec_schema(),
                                "status": _FREE_OBJECT,
                            },
                            ["spec"],
                        )
                    },
                }
            ],
        },
    }


def render() -> str:
    header = "# Generated by `make crds` from aideploy/api/crd.py; do not edit by hand.\n"
    return header + yaml.safe_dump(aideployment_crd(), sort_keys=False, width=100)


if __name__ == "__main__":
    sys.stdout.write(render())
