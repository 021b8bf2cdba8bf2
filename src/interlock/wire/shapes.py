"""Structural checks shared by the inbound codecs: client JSON Schemas and the nesting of a whole body.

A tool's ``parameters`` (``input_schema``) and a ``response_format`` schema are
read by much more than the vendor: the token estimator renders them, the
simulator generates values for them, the Gemini adapter rewrites them. Each of
those may assume JSON Schema's shape (``properties`` is an object of schemas,
``enum`` a list, ``required`` a list of strings), so the codecs check that
shape once, up front, and answer a 400 naming the exact path of the first
keyword that breaks it. Semantics (does the pattern compile, do the bounds
agree) are left to the vendor. The walk is iterative and visits each schema
node once, with one dictionary lookup per keyword present: plain type checks,
no schema compilation.

:func:`too_deep` bounds the nesting of a whole body: orjson parses 1,024
levels but serialises only 254, and several consumers recurse.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson

#: Levels orjson can write (it refuses the 255th).
_ORJSON_DEPTH = 254
#: Levels the adapters' envelopes may add around a client's values (Gemini and Bedrock wrap a few).
_MARGIN = 16
#: Nesting of a request body, in JSON containers: far above any real request, and writable by every adapter.
MAX_BODY_DEPTH = _ORJSON_DEPTH - _MARGIN
#: Nesting of one schema, in schemas (``properties`` → a property's schema is one level).
MAX_SCHEMA_DEPTH = 48

_MAP, _ONE, _LIST, _ITEMS, _COUNT, _NUMBER, _BOUND, _STRING, _TYPE, _REQUIRED, _ENUM, _BOOL, _DEP_REQ, _DEPS = range(14)
_KEYWORDS: dict[str, int] = {
    **dict.fromkeys(("properties", "patternProperties", "$defs", "definitions", "dependentSchemas"), _MAP),
    **dict.fromkeys(("additionalProperties", "additionalItems", "unevaluatedProperties", "unevaluatedItems", "not",
                     "contains", "propertyNames", "if", "then", "else"), _ONE),
    **dict.fromkeys(("anyOf", "oneOf", "allOf", "prefixItems"), _LIST),
    "items": _ITEMS,
    **dict.fromkeys(("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties",
                     "minContains", "maxContains"), _COUNT),
    **dict.fromkeys(("minimum", "maximum", "multipleOf"), _NUMBER),
    **dict.fromkeys(("exclusiveMinimum", "exclusiveMaximum"), _BOUND),
    **dict.fromkeys(("pattern", "format", "$ref", "title", "description", "$id", "$schema", "$anchor", "$comment",
                     "contentMediaType", "contentEncoding"), _STRING),
    "type": _TYPE,
    "required": _REQUIRED,
    "enum": _ENUM,
    **dict.fromkeys(("nullable", "uniqueItems", "readOnly", "writeOnly", "deprecated"), _BOOL),
    "dependentRequired": _DEP_REQ,
    "dependencies": _DEPS,
}

#: How a codec writes a path step: ``(path, key_or_index) -> path``.
Step = Callable[[str, "str | int"], str]


def openai_step(path: str, key: str | int) -> str:
    """``tools[0].function.parameters`` + ``properties`` → ``...parameters.properties``; indexes in brackets."""
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}"


def dotted_step(path: str, key: str | int) -> str:
    """Anthropic's style: ``tools.0.input_schema.properties``."""
    return f"{path}.{key}"


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def _is_strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _path(trail: object, step: Step) -> str:
    keys: list[str | int] = []
    while isinstance(trail, tuple):
        trail, key = trail
        keys.append(key)
    path = str(trail)
    for key in reversed(keys):
        path = step(path, key)
    return path


def schema_problem(schema: object, path: str, step: Step = openai_step) -> tuple[str, str] | None:
    """``(param, problem)`` for the first structural fault of a JSON Schema, or None when its shape is sound.

    A schema is an object or a boolean; subschema keywords hold schemas (or
    objects / lists of them); ``enum`` is a list; ``required`` a list of strings;
    ``type`` a string or a non-empty list of strings; count keywords are
    non-negative numbers; string keywords are strings.
    """
    # A trail is the path as nested (parent, key) pairs: the string is built only for an error.
    stack: list[tuple[Any, Any, int]] = [(schema, path, 1)]
    problem: str | None = None
    while stack:
        node, trail, depth = stack.pop()
        if node is True or node is False:
            continue
        if type(node) is not dict:
            return _path(trail, step), "a schema must be an object (or a boolean)"
        if depth > MAX_SCHEMA_DEPTH:
            return _path(trail, step), f"the schema is nested more than {MAX_SCHEMA_DEPTH} levels deep"
        depth += 1
        for key, value in node.items():
            kind = _KEYWORDS.get(key)
            if kind is None:
                continue
            if kind == _STRING:
                if type(value) is not str:
                    problem = "must be a string"
            elif kind == _MAP:
                if type(value) is not dict:
                    problem = "must be an object mapping names to schemas"
                else:
                    at = (trail, key)
                    stack.extend([(sub, (at, name), depth) for name, sub in value.items()])
            elif kind == _TYPE:
                if not (type(value) is str or (_is_strings(value) and value)):
                    problem = "must be a type name or a non-empty array of type names"
            elif kind == _ONE:
                stack.append((value, (trail, key), depth))
            elif kind == _LIST or (kind == _ITEMS and type(value) is list):
                if type(value) is not list or (not value and kind == _LIST and key != "prefixItems"):
                    problem = "must be a non-empty array of schemas"
                else:
                    at = (trail, key)
                    stack.extend([(sub, (at, i), depth) for i, sub in enumerate(value)])
            elif kind == _ITEMS:
                stack.append((value, (trail, key), depth))
            elif kind == _REQUIRED:
                if not _is_strings(value):
                    problem = "must be an array of property names (strings)"
            elif kind == _ENUM:
                if type(value) is not list:
                    problem = "must be an array of values"
            elif kind == _COUNT:
                if not _is_number(value) or value < 0:
                    problem = "must be a non-negative integer"
            elif kind == _NUMBER:
                if not _is_number(value):
                    problem = "must be a number"
                elif key == "multipleOf" and value <= 0:
                    problem = "must be a positive number"
            elif kind == _BOUND:
                if not (_is_number(value) or type(value) is bool):
                    problem = "must be a number"
            elif kind == _BOOL:
                if type(value) is not bool:
                    problem = "must be a boolean"
            elif type(value) is not dict:  # dependentRequired, dependencies
                problem = "must be an object"
            else:
                at = (trail, key)
                for name, sub in value.items():
                    if _is_strings(sub):
                        continue
                    if kind == _DEP_REQ:
                        return _path((at, name), step), "must be an array of property names (strings)"
                    stack.append((sub, (at, name), depth))
            if problem is not None:
                return _path((trail, key), step), problem
    return None


class SchemaMemo:
    """Schemas already found sound, by their JSON text: clients send the same tools on every request.

    Serialising a schema is C code and a few times cheaper than walking it in
    Python, so a repeated schema costs one ``orjson.dumps`` and a set lookup.
    Bounded by entries and by bytes; the oldest go first.
    """

    __slots__ = ("_seen", "max_bytes", "max_items", "size")

    def __init__(self, max_items: int = 2048, max_bytes: int = 8 << 20) -> None:
        self._seen: OrderedDict[bytes, None] = OrderedDict()  # O(1) oldest-first eviction
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.size = 0

    def problem(self, schema: object, path: str, step: Step = openai_step) -> tuple[str, str] | None:
        try:
            key = orjson.dumps(schema)
        except orjson.JSONEncodeError:
            return schema_problem(schema, path, step)
        if key in self._seen:
            return None
        found = schema_problem(schema, path, step)
        if found is None and len(key) <= self.max_bytes // 16:
            self._seen[key] = None
            self.size += len(key)
            while len(self._seen) > self.max_items or self.size > self.max_bytes:
                oldest, _ = self._seen.popitem(last=False)
                self.size -= len(oldest)
        return found


#: The process's memo, shared by every codec.
SCHEMAS = SchemaMemo()


def too_deep(body: bytes, data: object) -> bool:
    """True when ``data`` (parsed from ``body``) nests containers more than :data:`MAX_BODY_DEPTH` levels.

    The check serialises the value inside ``_MARGIN`` extra levels: orjson
    refuses past 254 levels, in C, several times faster than parsing and far
    faster than any walk here. A body too short to hold that many brackets is
    not checked.
    """
    if len(body) <= 2 * MAX_BODY_DEPTH:
        return False
    wrapped: object = data
    for _ in range(_MARGIN):
        wrapped = [wrapped]
    try:
        orjson.dumps(wrapped)
    except orjson.JSONEncodeError as exc:
        return "recursion" in str(exc).lower()
    return False
