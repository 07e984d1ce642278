"""The structural pass (api/structural.py), as tables: pydantic JSON schema in,
Kubernetes structural schema out; and the constructs it must refuse."""

from __future__ import annotations

from typing import Any

import pytest

from aideploy.api.crd import aideployment_crd, aideploymentrecord_crd
from aideploy.api.spec import AIDeploymentSpec
from aideploy.api.structural import UnsupportedSchemaError, structural

PRESERVE = "x-kubernetes-preserve-unknown-fields"

CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "titles and defaults dropped",
        {"type": "string", "title": "Path", "default": "/"},
        {"type": "string"},
    ),
    (
        "optional becomes its type",
        {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        {"type": "string"},
    ),
    (
        "optional with a pattern",
        {"anyOf": [{"type": "string", "pattern": "^a$"}, {"type": "null"}]},
        {"type": "string", "pattern": "^a$"},
    ),
    ("const becomes enum", {"const": "v2", "type": "string"}, {"enum": ["v2"], "type": "string"}),
    ("Any keeps anything", {"title": "Equals"}, {PRESERVE: True}),
    (
        "list of Any",
        {"type": "array", "items": {}},
        {"type": "array", "items": {PRESERVE: True}},
    ),
    (
        "dict[str, Any] is a free object",
        {"type": "object", "additionalProperties": True, "description": "d"},
        {"type": "object", PRESERVE: True, "description": "d"},
    ),
    (
        "extra=forbid needs no marker",
        {"type": "object", "additionalProperties": False, "properties": {"a": {"type": "string"}}},
        {"type": "object", "properties": {"a": {"type": "string"}}},
    ),
    (
        # Helm and kubectl re-encode a CRD through Go types, which drop an empty map: an
        # apply of ours that kept it would conflict with theirs on .spec.versions.
        "an empty model has no properties map",
        {"type": "object", "additionalProperties": False, "properties": {}},
        {"type": "object"},
    ),
    (
        "bounds, lengths and markers kept",
        {
            "type": "array",
            "minItems": 1,
            "x-kubernetes-list-type": "set",
            "items": {"type": "integer", "minimum": 0, "maximum": 9},
        },
        {
            "type": "array",
            "minItems": 1,
            "x-kubernetes-list-type": "set",
            "items": {"type": "integer", "minimum": 0, "maximum": 9},
        },
    ),
    (
        "date-time format dropped",
        {"type": "string", "format": "date-time", "description": "RFC 3339 time"},
        {"type": "string", "description": "RFC 3339 time"},
    ),
    (
        "oneOf of required lists kept",
        {"type": "object", "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
        {"type": "object", "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
    ),
]


@pytest.mark.parametrize(("name", "given", "expected"), CASES, ids=[c[0] for c in CASES])
def test_translation(name: str, given: dict[str, Any], expected: dict[str, Any]) -> None:
    assert structural(given) == expected


DEFS = {
    "Color": {"enum": ["red", "blue"], "title": "Color", "type": "string"},
    "Box": {
        "type": "object",
        "title": "Box",
        "description": "a box",
        "additionalProperties": False,
        "properties": {"color": {"$ref": "#/$defs/Color"}},
        "required": ["color"],
    },
}
BOX = {"type": "object", "description": "a box", "properties": {"color": DEFS["Color"]}}

REF_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "ref inlined, enum kept",
        {"$ref": "#/$defs/Color"},
        {"enum": ["red", "blue"], "type": "string"},
    ),
    (
        "optional ref with the field's description",
        {"anyOf": [{"$ref": "#/$defs/Color"}, {"type": "null"}], "description": "hue"},
        {"enum": ["red", "blue"], "type": "string", "description": "hue"},
    ),
    (
        "nested refs; the field's description wins",
        {"allOf": [{"$ref": "#/$defs/Box"}], "description": "the field"},
        {
            "type": "object",
            "description": "the field",
            "properties": {"color": {"enum": ["red", "blue"], "type": "string"}},
            "required": ["color"],
        },
    ),
]


@pytest.mark.parametrize(("name", "given", "expected"), REF_CASES, ids=[c[0] for c in REF_CASES])
def test_refs(name: str, given: dict[str, Any], expected: dict[str, Any]) -> None:
    assert structural({**given, "$defs": DEFS}) == expected


REFUSED: list[tuple[str, dict[str, Any]]] = [
    ("a real union", {"anyOf": [{"type": "string"}, {"type": "integer"}]}),
    ("a union with null", {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}),
    ("a oneOf of schemas", {"oneOf": [{"type": "string"}, {"type": "integer"}]}),
    (
        "additionalProperties of objects",
        {"type": "object", "additionalProperties": {"type": "object", "properties": {}}},
    ),
    ("an unknown keyword", {"type": "array", "uniqueItems": True}),
    ("an unknown ref", {"$ref": "#/$defs/Nope"}),
    (
        "a recursive model",
        {
            "$ref": "#/$defs/Node",
            "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
        },
    ),
    ("no type but constraints", {"minLength": 1}),
]


@pytest.mark.parametrize(("name", "given"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused(name: str, given: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedSchemaError):
        structural(given)


def _nodes(schema: Any) -> list[dict[str, Any]]:
    if not isinstance(schema, dict):
        return []
    found = [schema]
    for child in (schema.get("properties") or {}).values():
        found += _nodes(child)
    found += _nodes(schema.get("items"))
    return found


def test_the_spec_schema_is_structural() -> None:
    """Every node of the generated spec has a type or keeps unknown fields, and no JSON
    Schema keyword the apiserver rejects survives."""
    schema = structural(AIDeploymentSpec.model_json_schema(by_alias=True, mode="validation"))
    for node in _nodes(schema):
        assert "type" in node or node.get(PRESERVE), node
        assert not {"$ref", "$defs", "anyOf", "allOf", "title", "default"} & set(node), node
    assert schema["properties"]["template"] == {
        "type": "object",
        PRESERVE: True,
        "description": "A PodTemplateSpec: the model server.",
    }


def test_formats_kept_only_when_asked() -> None:
    given = {"type": "string", "format": "date-time"}
    assert structural(given) == {"type": "string"}
    assert structural(given, formats=frozenset({"date-time"})) == given


def _undescribed(schema: dict[str, Any], path: str) -> list[str]:
    """The paths of properties (at any depth, through arrays) that have no description."""
    missing: list[str] = []
    for name, child in (schema.get("properties") or {}).items():
        where = f"{path}.{name}"
        if not child.get("description"):
            missing.append(where)
        missing += _undescribed(child, where)
    if isinstance(schema.get("items"), dict):
        missing += _undescribed(schema["items"], f"{path}[]")
    return missing


@pytest.mark.parametrize("crd", [aideployment_crd(), aideploymentrecord_crd()], ids=["aid", "aidr"])
def test_every_crd_field_is_described(crd: dict[str, Any]) -> None:
    """`kubectl explain` teaches the API only where the CRD says what a field means: a new
    field without a description fails here, named by its path."""
    (version,) = crd["spec"]["versions"]
    root = version["schema"]["openAPIV3Schema"]
    assert root.get("description")
    # The apiserver allows nothing but a type on metadata; it documents ObjectMeta itself.
    assert root["properties"]["metadata"] == {"type": "object"}
    kind = crd["spec"]["names"]["kind"]
    assert _undescribed(root, kind) == [f"{kind}.metadata"]


def test_a_map_of_strings_keeps_its_value_type() -> None:
    """matchLabels (the notifier's selector) is a map of strings: a structural schema says so."""
    schema = {"type": "object", "additionalProperties": {"type": "string"}}
    assert structural(schema) == {"type": "object", "additionalProperties": {"type": "string"}}
