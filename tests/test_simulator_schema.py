"""Generated JSON validates against its schema (checked by the real ``jsonschema`` validator)."""

from __future__ import annotations

import random
import re
from typing import Any

import jsonschema
import pytest

from interlock.simulator.jsonschema_gen import SchemaError, conforms, generate
from interlock.simulator.regexgen import UnsupportedPattern, generate_matching

ADDRESS = {
    "type": "object",
    "properties": {
        "street": {"type": "string", "minLength": 3},
        "city": {"type": "string"},
        "zip": {"type": "string", "pattern": "^[0-9]{5}(-[0-9]{4})?$"},
    },
    "required": ["street", "city", "zip"],
    "additionalProperties": False,
}

CORPUS: dict[str, dict[str, Any]] = {
    "flat_strict": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "vip": {"type": "boolean"}},
        "required": ["name", "age", "vip"],
        "additionalProperties": False,
    },
    "nested_objects": {
        "type": "object",
        "properties": {
            "user": {
                "type": "object",
                "properties": {"email": {"type": "string", "format": "email"}, "address": ADDRESS},
                "required": ["email", "address"],
                "additionalProperties": False,
            },
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "minItems": 1, "maxItems": 4},
        },
        "required": ["user", "tags"],
        "additionalProperties": False,
    },
    "enums_and_consts": {
        "type": "object",
        "properties": {
            "unit": {"enum": ["celsius", "fahrenheit"]},
            "version": {"const": 2},
            "level": {"type": "string", "enum": ["low", "mid", "high"]},
        },
        "required": ["unit", "version", "level"],
    },
    "anyof_nullable": {
        "type": "object",
        "properties": {
            "value": {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}]},
            "maybe": {"type": ["integer", "null"], "minimum": 0},
        },
        "required": ["value", "maybe"],
        "additionalProperties": False,
    },
    "oneof_disjoint": {
        "type": "object",
        "properties": {
            "shape": {
                "oneOf": [
                    {
                        "type": "object",
                        "properties": {"kind": {"const": "circle"}, "r": {"type": "number", "exclusiveMinimum": 0}},
                        "required": ["kind", "r"],
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "properties": {"kind": {"const": "square"}, "side": {"type": "number", "minimum": 1}},
                        "required": ["kind", "side"],
                        "additionalProperties": False,
                    },
                ]
            }
        },
        "required": ["shape"],
    },
    "refs_and_defs": {
        "$defs": {
            "item": {
                "type": "object",
                "properties": {"sku": {"type": "string", "pattern": "^[A-Z]{3}-\\d{4}$"}, "qty": {"$ref": "#/$defs/qty"}},
                "required": ["sku", "qty"],
                "additionalProperties": False,
            },
            "qty": {"type": "integer", "minimum": 1, "maximum": 99},
        },
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/item"}, "minItems": 2}},
        "required": ["items"],
        "additionalProperties": False,
    },
    "recursive_tree": {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
                "required": ["label", "children"],
                "additionalProperties": False,
            }
        },
        "$ref": "#/$defs/node",
    },
    "numbers": {
        "type": "object",
        "properties": {
            "price": {"type": "number", "minimum": 0.5, "maximum": 20, "multipleOf": 0.25},
            "count": {"type": "integer", "exclusiveMinimum": 10, "exclusiveMaximum": 15},
            "step": {"type": "integer", "multipleOf": 7, "minimum": 1, "maximum": 100},
            "ratio": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["price", "count", "step", "ratio"],
    },
    "arrays": {
        "type": "object",
        "properties": {
            "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False},
            "unique": {"type": "array", "items": {"enum": ["a", "b", "c", "d"]}, "uniqueItems": True, "minItems": 3},
            "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "number"}, "minItems": 2}},
        },
        "required": ["pair", "unique", "matrix"],
    },
    "formats": {
        "type": "object",
        "properties": {
            "day": {"type": "string", "format": "date"},
            "at": {"type": "string", "format": "date-time"},
            "home": {"type": "string", "format": "uri"},
            "id": {"type": "string", "format": "uuid"},
            "mail": {"type": "string", "format": "email"},
        },
        "required": ["day", "at", "home", "id", "mail"],
        "additionalProperties": False,
    },
    "allof_merge": {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "integer", "minimum": 3}}, "required": ["b"]},
        ]
    },
    "string_lengths": {
        "type": "object",
        "properties": {
            "code": {"type": "string", "minLength": 8, "maxLength": 8},
            "note": {"type": "string", "maxLength": 5},
            "long": {"type": "string", "minLength": 40},
        },
        "required": ["code", "note", "long"],
    },
    "min_properties_open": {"type": "object", "minProperties": 2, "additionalProperties": {"type": "integer"}},
    "top_level_array": {"type": "array", "items": ADDRESS, "minItems": 1, "maxItems": 2},
}

FORMAT_CHECKS = {
    "date": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "date-time": re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"),
    "uri": re.compile(r"^https://"),
    "uuid": re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"),
    "email": re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]+$"),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_generated_instances_validate(name: str) -> None:
    schema = CORPUS[name]
    validator = jsonschema.Draft202012Validator(schema)
    values = [generate(schema, random.Random(seed)) for seed in range(60)]
    for value in values:
        errors = sorted(validator.iter_errors(value), key=str)
        assert not errors, f"{name}: {value!r} -> {errors[0].message}"
    distinct = {repr(v) for v in values}
    if name != "enums_and_consts":
        assert len(distinct) > 5, "generation should vary with the seed"


def test_formats_are_well_formed() -> None:
    value = generate(CORPUS["formats"], random.Random(3))
    assert FORMAT_CHECKS["date"].match(value["day"])
    assert FORMAT_CHECKS["date-time"].match(value["at"])
    assert FORMAT_CHECKS["uri"].match(value["home"])
    assert FORMAT_CHECKS["uuid"].match(value["id"])
    assert FORMAT_CHECKS["email"].match(value["mail"])


def test_optional_properties_appear_and_strict_ones_always() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["a"]}
    seen_b = [("b" in generate(schema, random.Random(s))) for s in range(50)]
    assert all("a" in generate(schema, random.Random(s)) for s in range(50))
    assert any(seen_b) and not all(seen_b)


def test_gemini_uppercase_types_and_nullable() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {"n": {"type": "INTEGER", "nullable": True}, "s": {"type": "STRING"}},
        "required": ["n", "s"],
    }
    values = [generate(schema, random.Random(s)) for s in range(80)]
    assert all(isinstance(v["s"], str) for v in values)
    assert any(v["n"] is None for v in values) and any(isinstance(v["n"], int) for v in values)


def test_unsatisfiable_schema_raises() -> None:
    with pytest.raises(SchemaError):
        generate(False, random.Random(0))
    with pytest.raises(SchemaError):
        generate({"enum": []}, random.Random(0))
    with pytest.raises(SchemaError):
        generate({"type": "integer", "minimum": 5, "maximum": 1}, random.Random(0))


def test_conforms_agrees_with_jsonschema_on_bad_values() -> None:
    schema = CORPUS["nested_objects"]
    good = generate(schema, random.Random(1))
    bad_extra = {**good, "surprise": 1}
    bad_missing = {"tags": good["tags"]}
    bad_type = {**good, "tags": "not-a-list"}
    for value, ok in ((good, True), (bad_extra, False), (bad_missing, False), (bad_type, False)):
        assert conforms(schema, value, schema) is ok
        assert jsonschema.Draft202012Validator(schema).is_valid(value) is ok


@pytest.mark.parametrize(
    "pattern",
    [r"^[A-Z]{3}$", r"^\d{4}-\d{2}-\d{2}$", r"^(red|green|blue)$", r"^[a-z0-9_]+$", r"^\+?[0-9]{7,12}$", r"^[^@]+@x\.io$"],
)
def test_pattern_generation(pattern: str) -> None:
    rng = random.Random(5)
    for _ in range(100):
        value = generate_matching(pattern, rng)
        assert re.search(pattern, value), (pattern, value)


def test_unsupported_pattern_is_reported() -> None:
    with pytest.raises(UnsupportedPattern):
        generate_matching(r"(?=lookahead)x", random.Random(0))
