"""Turn a pydantic JSON schema into a Kubernetes structural schema.

The CRD's schema is generated from the pydantic models so that the models are the one
source of every type, pattern, enum and bound. Pydantic emits JSON Schema 2020-12
($defs/$ref, anyOf-with-null for optionals, titles, defaults); the apiserver accepts only
a structural subset of OpenAPI v3. This pass is pure and fails loudly on anything it does
not know how to translate, so that a new construct in the models is noticed at `make crds`
rather than at `kubectl apply` of the CRD.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Schema = dict[str, Any]

# Keys copied as they are: they mean the same in JSON Schema and in a structural schema.
_KEPT = frozenset(
    {
        "type",
        "description",
        "enum",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minItems",
        "maxItems",
        "required",
        "nullable",
    }
)
# Keys dropped: titles are noise in `kubectl explain`; defaults would make the apiserver
# default fields (changing stored objects and their digests) where the models default them
# in Python. `format` is dropped unless asked for: the apiserver's date-time differs from
# pydantic's datetime (pydantic takes a time without offset, a Freeze may use one).
_DROPPED = frozenset({"title", "default", "$defs", "examples"})
_PRESERVE = "x-kubernetes-preserve-unknown-fields"


class UnsupportedSchemaError(ValueError):
    """The models use a JSON Schema construct this pass does not translate."""


def structural(schema: Mapping[str, Any], formats: frozenset[str] = frozenset()) -> Schema:
    """The structural equivalent of a pydantic `model_json_schema()` (with its $defs).

    `formats` are the string formats to keep: where the model's writer is the operator
    (records, always RFC 3339 with Z) the apiserver may check them; where users write the
    field, the models' own parsing is the rule (see _DROPPED)."""
    return _convert(schema, schema.get("$defs", {}), (), formats)


def _resolve(
    schema: Mapping[str, Any], defs: Mapping[str, Any], seen: tuple[str, ...]
) -> tuple[Schema, tuple[str, ...]]:
    """Inline a $ref (and a one-element allOf, older pydantic's way of adding siblings).

    The field's own keys (a sibling description) win over the definition's. Recursion
    cannot be expressed in a structural schema, hence the error."""
    if "allOf" in schema:
        if len(schema["allOf"]) != 1:
            raise UnsupportedSchemaError(f"allOf with several schemas: {schema}")
        rest = {k: v for k, v in schema.items() if k != "allOf"}
        return _resolve({**schema["allOf"][0], **rest}, defs, seen)
    if "$ref" not in schema:
        return dict(schema), seen
    name = str(schema["$ref"]).removeprefix("#/$defs/")
    if name in seen:
        raise UnsupportedSchemaError(f"recursive model {' -> '.join((*seen, name))}")
    if name not in defs:
        raise UnsupportedSchemaError(f"unknown $ref {schema['$ref']}")
    siblings = {k: v for k, v in schema.items() if k != "$ref"}
    resolved, seen = _resolve(defs[name], defs, (*seen, name))
    if "enum" in resolved:
        # An enum class's docstring is written for developers; users read the field's own.
        resolved.pop("description", None)
    return {**resolved, **siblings}, seen


def _without_null(schema: Schema) -> Schema:
    """`X | None` becomes X: Kubernetes has no null type, and the apiserver drops a null
    of a field that is not nullable, which the models read as None (the default) too."""
    options = schema.pop("anyOf", None)
    if options is None:
        return schema
    kept = [o for o in options if o != {"type": "null"}]
    if len(kept) != 1:
        raise UnsupportedSchemaError(f"a union is not structural: {options}")
    return {**kept[0], **schema}


def _convert(
    schema: Mapping[str, Any],
    defs: Mapping[str, Any],
    seen: tuple[str, ...],
    formats: frozenset[str],
) -> Schema:
    node, seen = _resolve(schema, defs, seen)
    if "anyOf" in node:
        node, seen = _resolve(_without_null(node), defs, seen)
    out: Schema = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key in _KEPT or key.startswith("x-kubernetes-"):
            out[key] = value
        elif key == "format":
            if value in formats:
                out[key] = value
        elif key == "const":
            out["enum"] = [value]
        elif key == "properties":
            # An empty map is left out, as Go's typed clients (Helm, kubectl) leave it out
            # when they re-encode the CRD: otherwise their apply differs from ours and
            # conflicts with it.
            if value:
                out[key] = {k: _convert(v, defs, seen, formats) for k, v in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs, seen, formats)
        elif key == "additionalProperties":
            out.update(_additional(value, node))
        elif key == "oneOf":
            out[key] = _one_of(value)
        else:
            raise UnsupportedSchemaError(f"no structural form for {key!r} in {dict(node)}")
    if "type" not in out and not out.get(_PRESERVE):
        if set(out) - {"description"}:
            raise UnsupportedSchemaError(f"a schema without a type: {dict(node)}")
        out[_PRESERVE] = True  # `Any`: any JSON value, kept as it is
    return out


_SCALARS = ("string", "integer", "boolean")


def _additional(value: Any, node: Mapping[str, Any]) -> Schema:
    """`extra="forbid"` (False) has no structural form and needs none: the apiserver prunes
    unknown fields. `dict[str, Any]` (True, no properties) is a free object."""
    if value is False:
        return {}
    if value is True or value == {}:
        if "properties" in node:
            raise UnsupportedSchemaError(f"properties with free additionalProperties: {node}")
        return {_PRESERVE: True}
    if isinstance(value, Mapping) and set(value) == {"type"} and value["type"] in _SCALARS:
        return {"additionalProperties": {"type": value["type"]}}  # e.g. matchLabels
    raise UnsupportedSchemaError(f"typed additionalProperties are not translated: {value}")


def _one_of(options: list[Any]) -> list[Any]:
    """Only `oneOf` of `required` lists is kept (e.g. exactly one probe kind): a oneOf of
    schemas with types is not structural."""
    for option in options:
        if set(option) != {"required"}:
            raise UnsupportedSchemaError(f"oneOf may only list required fields: {option}")
    return list(options)
