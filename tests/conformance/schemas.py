"""The vendored schemas, loaded once, and validators that also collect extra (allowed) fields.

OpenAI's document is OpenAPI 3.1 (JSON Schema 2020-12) but still uses 3.0's ``nullable: true`` in
places; it is rewritten to a ``null`` alternative on load. Anthropic's file is plain JSON Schema.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators  # type: ignore[import-untyped]
from referencing import Registry
from referencing.jsonschema import DRAFT202012

HERE = Path(__file__).resolve().parent
OPENAI_URI = "urn:openai-openapi"
ANTHROPIC_URI = "urn:anthropic-sdk"
_OPENAI_REF = "#/components/schemas/"

#: Extra fields seen during the current validation: (schema name, field name).
_extras: set[tuple[str, str]] = set()


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` as JSON Schema: the type, enum or reference, or null."""
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: (v if k == "enum" else _nullable(v)) for k, v in node.items()}
    if out.pop("nullable", False) is True:
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        elif "type" not in out:
            return {"anyOf": [out, {"type": "null"}]}
    return out


def _allof_props(schemas: dict[str, Any], node: dict[str, Any]) -> set[str]:
    """Property names an ``allOf`` gives, following references into members."""
    names: set[str] = set(node.get("properties", {}))
    for member in node.get("allOf", []):
        ref = member.get("$ref", "")
        target = schemas[ref[len(_OPENAI_REF):]] if ref.startswith(_OPENAI_REF) else member
        target["x-allof-member"] = True
        names |= _allof_props(schemas, target)
    return names


def _mark(schemas: dict[str, Any], node: Any, name: str) -> None:
    """Name every object schema after its component (for the extras report) and resolve allOf names."""
    if isinstance(node, list):
        for item in node:
            _mark(schemas, item, name)
    elif isinstance(node, dict):
        if "properties" in node or "allOf" in node:
            node.setdefault("x-name", name)
        if "allOf" in node:
            node["x-allof-props"] = sorted(_allof_props(schemas, node))
        for key, value in node.items():
            if key == "properties":
                for prop, sub in value.items():
                    _mark(schemas, sub, f"{name}.{prop}")
            elif key not in ("enum", "required", "x-allof-props"):
                _mark(schemas, value, name)


def _record_extras(schema: dict[str, Any], instance: Any, known: set[str]) -> None:
    name = schema.get("x-name", "?")
    if schema.get("additionalProperties") is False:
        return  # the validator itself reports them as errors
    for key in instance:
        if key not in known:
            _extras.add((name, key))


def _properties(validator: Any, properties: Any, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    errors = list(Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, schema))
    yield from errors
    if (not errors and properties and isinstance(instance, dict) and "x-allof-member" not in schema
            and "x-allof-props" not in schema and all(k in instance for k in schema.get("required", ()))):
        _record_extras(schema, instance, set(properties))


def _all_of(validator: Any, all_of: Any, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    errors = list(Draft202012Validator.VALIDATORS["allOf"](validator, all_of, instance, schema))
    yield from errors
    if not errors and isinstance(instance, dict):
        _record_extras(schema, instance, set(schema.get("x-allof-props", ())))


_Validator = validators.extend(Draft202012Validator, {"properties": _properties, "allOf": _all_of})


@cache
def _registry() -> tuple[Registry, dict[str, Any], dict[str, Any]]:
    openai = json.loads((HERE / "openai_subset.json").read_text())
    schemas = _nullable(openai["components"]["schemas"])
    for name, schema in schemas.items():
        _mark(schemas, schema, name)
    anthropic = json.loads((HERE / "anthropic_schemas.json").read_text())
    for name, schema in anthropic["$defs"].items():
        _mark({}, schema, name)
    registry: Registry = Registry().with_resources([
        (OPENAI_URI, DRAFT202012.create_resource({"components": {"schemas": schemas}})),
        (ANTHROPIC_URI, DRAFT202012.create_resource({"$defs": anthropic["$defs"]})),
    ])
    return registry, schemas, anthropic


def openai_schemas() -> dict[str, Any]:
    return _registry()[1]


def anthropic_defs() -> dict[str, Any]:
    return dict(_registry()[2]["$defs"])


def openai_source() -> dict[str, Any]:
    return dict(json.loads((HERE / "openai_subset.json").read_text())["source"])


@cache
def validator(ref: str) -> Any:
    """A validator of ``openai:Name``, ``anthropic:Name`` or an inline JSON schema string."""
    registry = _registry()[0]
    vendor, _, name = ref.partition(":")
    if vendor == "openai":
        schema: dict[str, Any] = {"$ref": f"{OPENAI_URI}{_OPENAI_REF}{name}"}
    elif vendor == "anthropic":
        schema = {"$ref": f"{ANTHROPIC_URI}#/$defs/{name}"}
    else:
        raise KeyError(ref)
    return _Validator(schema, registry=registry)


def validate(ref: str, instance: Any, *, schema: dict[str, Any] | None = None) -> tuple[list[ValidationError],
                                                                                        set[tuple[str, str]]]:
    """Errors of ``instance`` against ``ref`` (or an inline ``schema``) and the extra fields it carries."""
    _extras.clear()
    if schema is not None:
        check = _Validator(copy.deepcopy(schema), registry=_registry()[0])
    else:
        check = validator(ref)
    errors = sorted(check.iter_errors(instance), key=lambda e: list(e.absolute_path))
    return errors, set(_extras)
