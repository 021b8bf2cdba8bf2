"""Random JSON values that validate against a JSON Schema.

Structured outputs and tool arguments are only useful in tests if they are
*valid*: a gateway's schema handling, a client's parser and a router's
fallback logic all break on the first value that does not fit. This module
generates instances for the subset of JSON Schema that OpenAI strict mode,
Anthropic tools and Gemini ``responseSchema`` use: ``type`` (and lists of
types, OpenAPI ``nullable``), ``properties``/``required``/
``additionalProperties``/``min|maxProperties``, ``items``/``prefixItems``/
``min|maxItems``/``uniqueItems``, ``enum``/``const``, ``anyOf``/``oneOf``/
``allOf``, local ``$ref`` into ``$defs``/``definitions`` (recursion bounded),
string ``min|maxLength``/``pattern``/``format`` and numeric bounds including
the exclusive forms and ``multipleOf``.

Values are plausible where a property name says what it holds (``email``,
``city``, ``created_at``...), because simulated output is also read by people.
:func:`conforms` is a small validator for the same subset; the generator uses
it to pick ``oneOf`` branches that match exactly once and to retry the rare
draw that breaks a cross-keyword constraint.
"""

from __future__ import annotations

import math
import random
import re
import uuid
from collections.abc import Mapping
from typing import Any

from interlock.simulator.regexgen import UnsupportedPattern, generate_matching

MAX_DEPTH = 6
#: What one instance may hold, whatever the schema asks: a client's ``minLength: 1e12`` or nested
#: ``minItems`` must not hang the simulator (in-process, it shares the gateway's event loop).
MAX_STRING = 4096
MAX_VALUES = 5_000
#: Nesting (and ``$ref`` chains) past this fail the draw instead of the interpreter's recursion limit.
MAX_NESTING = 64

_NAMES = ("Alex Morgan", "Priya Shah", "Jonas Berg", "Maria Lopez", "Kenji Sato", "Amara Okafor", "Lena Fischer")
_CITIES = ("Lisbon", "Toronto", "Nairobi", "Osaka", "Berlin", "Austin", "Melbourne", "Lyon")
_COUNTRIES = ("Portugal", "Canada", "Kenya", "Japan", "Germany", "United States", "Australia", "France")
_WORDS = (
    "reliable", "simple", "steady", "clear", "quick", "careful", "useful", "modern", "compact", "robust",
    "summary", "report", "update", "review", "draft", "signal", "pattern", "budget", "window", "answer",
)
_FORMATS = ("date", "date-time", "time", "email", "uri", "url", "uuid", "hostname", "ipv4", "ipv6")


class SchemaError(ValueError):
    """The schema cannot be satisfied (``false``, an empty ``enum``, contradictory bounds)."""


_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_MAPS = ("properties", "$defs", "definitions")
_SCHEMA_ONE = ("items", "additionalProperties", "not")
_NUMERIC = ("minimum", "maximum", "multipleOf", "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")


def check_schema(schema: Any, path: str = "", depth: int = 0) -> None:
    """Reject schemas whose *structure* is wrong (a vendor answers those with a 400).

    Only shapes are checked (``type`` is a string or a list of strings,
    ``properties`` a mapping of schemas, ``required`` a list of strings...);
    semantics are left to :func:`generate`.
    """
    where = path or "(root)"
    if isinstance(schema, bool):
        return
    if depth > MAX_NESTING:
        raise SchemaError(f"{where}: the schema is nested more than {MAX_NESTING} levels deep")
    if not isinstance(schema, Mapping):
        raise SchemaError(f"{where}: a schema must be an object or a boolean")
    kind = schema.get("type")
    if kind is not None and not (
        isinstance(kind, str) or (isinstance(kind, list) and kind and all(isinstance(k, str) for k in kind))
    ):
        raise SchemaError(f"{where}.type: must be a string or a list of strings")
    required = schema.get("required")
    if required is not None and not (isinstance(required, list) and all(isinstance(r, str) for r in required)):
        raise SchemaError(f"{where}.required: must be a list of strings")
    for key in ("enum",):
        if key in schema and not isinstance(schema[key], list):
            raise SchemaError(f"{where}.{key}: must be a list")
    for key in _NUMERIC:
        value = schema.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise SchemaError(f"{where}.{key}: must be a number")
    for key in ("pattern", "format", "$ref"):
        if key in schema and not isinstance(schema[key], str):
            raise SchemaError(f"{where}.{key}: must be a string")
    if "pattern" in schema:
        try:
            re.compile(schema["pattern"])
        except (re.error, RecursionError, OverflowError) as exc:
            raise SchemaError(f"{where}.pattern: not a valid regular expression ({exc})") from None
    for key in _SCHEMA_LISTS:
        if key in schema:
            value = schema[key]
            if not isinstance(value, list):
                raise SchemaError(f"{where}.{key}: must be a list of schemas")
            for i, sub in enumerate(value):
                check_schema(sub, f"{where}.{key}[{i}]", depth + 1)
    for key in _SCHEMA_MAPS:
        if key in schema:
            value = schema[key]
            if not isinstance(value, Mapping):
                raise SchemaError(f"{where}.{key}: must be an object")
            for name, sub in value.items():
                check_schema(sub, f"{where}.{key}.{name}", depth + 1)
    for key in _SCHEMA_ONE:
        if key in schema:
            check_schema(schema[key], f"{where}.{key}", depth + 1)
    ref = schema.get("$ref")
    if isinstance(ref, str) and not ref.startswith("#"):
        raise SchemaError(f"{where}.$ref: only local references (#/...) are supported")


def generate(schema: Any, rng: random.Random, *, attempts: int = 8) -> Any:
    """An instance of ``schema``, checked with :func:`conforms` (retried a few times)."""
    value: Any = None
    for _ in range(attempts):
        gen = _Gen(schema, rng)
        value = gen.value(schema, 0, None)
        if gen.left <= 0 or conforms(schema, value, schema):
            return value  # (a draw cut short by MAX_VALUES would be cut short again: no retry)
    return value


class _Gen:
    def __init__(self, root: Any, rng: random.Random) -> None:
        self.root = root
        self.rng = rng
        self.left = MAX_VALUES

    def value(self, schema: Any, depth: int, name: str | None) -> Any:
        rng = self.rng
        self.left -= 1
        if depth > MAX_NESTING:
            raise SchemaError(f"the schema nests (or refers to itself) more than {MAX_NESTING} levels deep")
        if schema is True or schema is None or schema == {}:
            return self._string({}, name)
        if schema is False:
            raise SchemaError("the schema 'false' admits no value")
        if not isinstance(schema, Mapping):
            raise SchemaError(f"not a schema: {schema!r}")
        if "$ref" in schema:
            target = resolve_ref(self.root, schema["$ref"])
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return self.value({**target, **rest} if rest else target, depth + 1, name)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            options = list(schema["enum"])
            if not options:
                raise SchemaError("empty enum")
            return rng.choice(options)
        if "allOf" in schema:
            return self.value(_merge_all(self.root, schema), depth, name)
        if "anyOf" in schema:
            return self._branch(schema, "anyOf", depth, name)
        if "oneOf" in schema:
            return self._branch(schema, "oneOf", depth, name)
        kind = self._type(schema, depth)
        if kind == "null":
            return None
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "integer":
            return self._integer(schema)
        if kind == "number":
            return self._number(schema)
        if kind == "array":
            return self._array(schema, depth, name)
        if kind == "object":
            return self._object(schema, depth)
        return self._string(schema, name)

    def _type(self, schema: Mapping[str, Any], depth: int) -> str:
        raw = schema.get("type")
        types = [raw] if isinstance(raw, str) else list(raw) if isinstance(raw, list) else []
        types = [t.lower() for t in types if isinstance(t, str)]  # Gemini writes OBJECT, STRING...
        nullable = schema.get("nullable") is True
        if not types:
            if "properties" in schema or "additionalProperties" in schema or "required" in schema:
                types = ["object"]
            elif "items" in schema or "prefixItems" in schema:
                types = ["array"]
            elif any(k in schema for k in ("minimum", "maximum", "multipleOf", "exclusiveMinimum")):
                types = ["number"]
            else:
                types = ["string"]
        non_null = [t for t in types if t != "null"]
        if ("null" in types or nullable) and (not non_null or self.rng.random() < 0.15 or depth > MAX_DEPTH):
            return "null"
        if depth > MAX_DEPTH:  # stop recursion: prefer leaves
            leaves = [t for t in non_null if t not in ("object", "array")]
            if leaves:
                return self.rng.choice(leaves)
        return self.rng.choice(non_null)

    def _branch(self, schema: Mapping[str, Any], key: str, depth: int, name: str | None) -> Any:
        options = list(schema[key])
        if not options:
            raise SchemaError(f"empty {key}")
        rest = {k: v for k, v in schema.items() if k != key}
        order = options[:]
        self.rng.shuffle(order)
        if depth > MAX_DEPTH:  # prefer branches that do not recurse
            order.sort(key=lambda s: "$ref" in s if isinstance(s, Mapping) else False)
        fallback: Any = None
        for option in order:
            branch = {**rest, **option} if rest and isinstance(option, Mapping) else option
            for _ in range(3):
                value = self.value(branch, depth + 1, name)
                if key == "anyOf" or sum(conforms(o, value, self.root) for o in options) == 1:
                    return value
                fallback = value
        return fallback

    def _integer(self, schema: Mapping[str, Any]) -> int:
        lo, hi = _bounds(schema, integer=True)
        step = schema.get("multipleOf")
        if isinstance(step, int | float) and step > 0:
            k_lo, k_hi = math.ceil(lo / step), math.floor(hi / step)
            if k_lo > k_hi:
                raise SchemaError("no multiple of multipleOf within the bounds")
            for _ in range(8):
                value = self.rng.randint(k_lo, k_hi) * step
                if float(value).is_integer():
                    return int(value)
            raise SchemaError("integer with a fractional multipleOf")
        if lo > hi:
            raise SchemaError("minimum is above maximum")
        return self.rng.randint(int(lo), int(hi))

    def _number(self, schema: Mapping[str, Any]) -> float | int:
        lo, hi = _bounds(schema, integer=False)
        if lo > hi:
            raise SchemaError("minimum is above maximum")
        step = schema.get("multipleOf")
        if isinstance(step, int | float) and step > 0:
            k_lo, k_hi = math.ceil(lo / step), math.floor(hi / step)
            if k_lo > k_hi:
                raise SchemaError("no multiple of multipleOf within the bounds")
            decimals = max(0, -math.floor(math.log10(step))) + 2 if step < 1 else 0
            for _ in range(16):
                value = round(self.rng.randint(k_lo, k_hi) * step, decimals)
                if lo <= value <= hi and _is_multiple(value, step):
                    return value
            return k_lo * step if isinstance(step, int) else float(k_lo * step)
        return round(self.rng.uniform(lo, hi), 2) if hi - lo > 0.02 else lo

    def _string(self, schema: Mapping[str, Any], name: str | None) -> str:
        rng = self.rng
        lo = min(int(schema.get("minLength", 0) or 0), MAX_STRING)
        hi_raw = schema.get("maxLength")
        hi = int(hi_raw) if isinstance(hi_raw, int) else None
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            for _ in range(8):
                try:
                    value = generate_matching(pattern, rng)
                except (UnsupportedPattern, re.error, RecursionError, OverflowError):
                    break
                if lo <= len(value) and (hi is None or len(value) <= hi) and re.search(pattern, value):
                    return value
        fmt = schema.get("format")
        value = _formatted(fmt, rng) if isinstance(fmt, str) and fmt in _FORMATS else _by_name(name, rng)
        if len(value) < lo:
            while len(value) < lo:
                value += " " + rng.choice(_WORDS)
            value = value[: max(lo, hi or lo)]
        if hi is not None and len(value) > hi:
            value = value[:hi]
        return value

    def _array(self, schema: Mapping[str, Any], depth: int, name: str | None) -> list[Any]:
        rng = self.rng
        prefix = schema.get("prefixItems") or []
        items = schema.get("items", True)
        lo = int(schema.get("minItems", 0) or 0)
        hi_raw = schema.get("maxItems")
        cap = len(prefix) if items is False else None
        hi = int(hi_raw) if isinstance(hi_raw, int) else max(lo, len(prefix)) + (1 if depth > 3 else 3)
        if cap is not None:
            hi = min(hi, cap)
        floor = max(lo, 1 if depth <= MAX_DEPTH and hi >= 1 else lo)
        size = rng.randint(min(floor, hi), hi) if hi >= floor else hi
        unique = schema.get("uniqueItems") is True
        out: list[Any] = []
        tries = 0
        while len(out) < size and tries < size * 10 + 10 and self.left > 0:
            tries += 1
            index = len(out)
            sub = prefix[index] if index < len(prefix) else items
            value = self.value(sub, depth + 1, _singular(name))
            if unique and any(_same(value, v) for v in out):
                continue
            out.append(value)
        return out

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        rng = self.rng
        props: Mapping[str, Any] = schema.get("properties") or {}
        required = [r for r in schema.get("required") or [] if isinstance(r, str)]
        out: dict[str, Any] = {}
        ordering = schema.get("propertyOrdering")
        names = list(ordering) if isinstance(ordering, list) else list(props)
        names += [n for n in props if n not in names]
        for key in names + [r for r in required if r not in props]:
            if key in out:
                continue
            if key in required or (depth <= MAX_DEPTH and rng.random() < 0.7):
                sub = props.get(key, schema.get("additionalProperties", True))
                out[key] = self.value(True if sub is False else sub, depth + 1, key)
        extra = schema.get("additionalProperties", True)
        lo = int(schema.get("minProperties", 0) or 0)
        n = 0
        while len(out) < lo and extra is not False and self.left > 0:
            n += 1
            out[f"extra_{n}"] = self.value(extra, depth + 1, None)
        hi = schema.get("maxProperties")
        if isinstance(hi, int):
            for key in [k for k in out if k not in required][: max(0, len(out) - hi)]:
                del out[key]
        return out


def resolve_ref(root: Any, ref: str) -> Any:
    """Follow a local ``#/...`` JSON pointer."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise SchemaError(f"only local $ref is supported, got {ref!r}")
    node = root
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise SchemaError(f"$ref {ref!r} does not resolve")
    return node


def _merge_all(root: Any, schema: Mapping[str, Any]) -> dict[str, Any]:
    """Fold ``allOf`` into one schema (union of properties and required, tightest bounds)."""
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema["allOf"]:
        if isinstance(part, Mapping) and "$ref" in part:
            part = resolve_ref(root, part["$ref"])
        if not isinstance(part, Mapping):
            continue
        if "allOf" in part:
            part = _merge_all(root, part)
        for key, value in part.items():
            if key == "properties":
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required":
                merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
            elif key in ("minimum", "exclusiveMinimum", "minLength", "minItems") and key in merged:
                merged[key] = max(merged[key], value)
            elif key in ("maximum", "exclusiveMaximum", "maxLength", "maxItems") and key in merged:
                merged[key] = min(merged[key], value)
            else:
                merged.setdefault(key, value)
    return merged


def _bounds(schema: Mapping[str, Any], *, integer: bool) -> tuple[float, float]:
    lo = schema.get("minimum")
    hi = schema.get("maximum")
    xlo = schema.get("exclusiveMinimum")
    xhi = schema.get("exclusiveMaximum")
    delta = 1 if integer else 0.01
    low = float(lo) if isinstance(lo, int | float) and not isinstance(lo, bool) else None
    high = float(hi) if isinstance(hi, int | float) and not isinstance(hi, bool) else None
    if xlo is True and low is not None:  # draft-4 boolean form
        low += delta
    elif isinstance(xlo, int | float) and not isinstance(xlo, bool):
        low = max(low if low is not None else -math.inf, float(xlo) + delta)
    if xhi is True and high is not None:
        high -= delta
    elif isinstance(xhi, int | float) and not isinstance(xhi, bool):
        high = min(high if high is not None else math.inf, float(xhi) - delta)
    if low is None and high is None:
        return (0.0, 100.0)
    if low is None:
        return (high - 100 if high is not None else 0.0, high if high is not None else 100.0)
    if high is None:
        return (low, low + 100)
    if integer:
        return (float(math.ceil(low)), float(math.floor(high)))
    return (low, high)


def _is_multiple(value: float, step: float) -> bool:
    quotient = value / step
    return float(quotient).is_integer()


def _singular(name: str | None) -> str | None:
    if name and name.endswith("s") and len(name) > 3:
        return name[:-1]
    return name


def _same(a: Any, b: Any) -> bool:
    return (type(a) is type(b) and a == b) or (isinstance(a, int | float) and isinstance(b, int | float) and a == b)


def _formatted(fmt: str, rng: random.Random) -> str:
    y, m, d = rng.randint(2019, 2026), rng.randint(1, 12), rng.randint(1, 28)
    hh, mm, ss = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    if fmt == "date":
        return f"{y:04d}-{m:02d}-{d:02d}"
    if fmt == "date-time":
        return f"{y:04d}-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}Z"
    if fmt == "time":
        return f"{hh:02d}:{mm:02d}:{ss:02d}Z"
    if fmt == "email":
        first, last = rng.choice(_NAMES).lower().split()
        return f"{first}.{last}@example.com"
    if fmt in ("uri", "url"):
        return f"https://example.com/{rng.choice(_WORDS)}/{rng.randint(1, 999)}"
    if fmt == "uuid":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if fmt == "hostname":
        return f"{rng.choice(_WORDS)}.example.com"
    if fmt == "ipv4":
        return ".".join(str(rng.randint(1, 254)) for _ in range(4))
    return ":".join(f"{rng.randint(0, 0xFFFF):x}" for _ in range(8))


def _by_name(name: str | None, rng: random.Random) -> str:
    key = (name or "").lower()
    if "email" in key:
        return _formatted("email", rng)
    if key.endswith("url") or key.endswith("uri") or "link" in key:
        return _formatted("uri", rng)
    if key.endswith("_at") or "timestamp" in key or "datetime" in key:
        return _formatted("date-time", rng)
    if "date" in key:
        return _formatted("date", rng)
    if key == "id" or key.endswith("_id") or (key.endswith("id") and len(key) <= 8):
        return f"{rng.choice(_WORDS)[:3]}_{rng.randint(1000, 99999)}"
    if "city" in key or "location" in key:
        return rng.choice(_CITIES)
    if "country" in key:
        return rng.choice(_COUNTRIES)
    if "name" in key or "author" in key:
        return rng.choice(_NAMES)
    if "unit" in key:
        return rng.choice(("celsius", "fahrenheit"))
    if any(w in key for w in ("description", "summary", "reason", "text", "content", "message", "answer")):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(5, 10))]
        return (" ".join(words)).capitalize() + "."
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 3)))


def _matches(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except (re.error, RecursionError, OverflowError):
        return False


def conforms(schema: Any, value: Any, root: Any, depth: int = 0) -> bool:
    """Whether ``value`` satisfies ``schema`` (the subset the generator supports)."""
    if depth > 64:
        return True
    if schema is True or schema is None:
        return True
    if schema is False:
        return False
    if not isinstance(schema, Mapping):
        return False
    if "$ref" in schema:
        try:
            target = resolve_ref(root, schema["$ref"])
        except SchemaError:
            return False
        if not conforms(target, value, root, depth + 1):
            return False
    if "const" in schema and not _same(value, schema["const"]):
        return False
    if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
        return False
    if "allOf" in schema and not all(conforms(s, value, root, depth + 1) for s in schema["allOf"]):
        return False
    if "anyOf" in schema and not any(conforms(s, value, root, depth + 1) for s in schema["anyOf"]):
        return False
    if "oneOf" in schema and sum(conforms(s, value, root, depth + 1) for s in schema["oneOf"]) != 1:
        return False
    if "not" in schema and conforms(schema["not"], value, root, depth + 1):
        return False
    return _conforms_type(schema, value, root, depth)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "unknown"


def _conforms_type(schema: Mapping[str, Any], value: Any, root: Any, depth: int) -> bool:
    raw = schema.get("type")
    if raw is not None:
        types = {t.lower() for t in ([raw] if isinstance(raw, str) else raw)}
        if schema.get("nullable") is True:
            types.add("null")
        actual = _json_type(value)
        if actual not in types and not (actual == "integer" and "number" in types):
            return False
    if isinstance(value, str):
        if len(value) < int(schema.get("minLength", 0) or 0):
            return False
        if isinstance(schema.get("maxLength"), int) and len(value) > schema["maxLength"]:
            return False
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and not _matches(pattern, value):
            return False
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not _numeric_ok(schema, value):
            return False
    elif isinstance(value, list):
        return _array_ok(schema, value, root, depth)
    elif isinstance(value, dict):
        return _object_ok(schema, value, root, depth)
    return True


def _numeric_ok(schema: Mapping[str, Any], value: float) -> bool:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    xlo, xhi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(lo, int | float) and (value < lo or (xlo is True and value == lo)):
        return False
    if isinstance(hi, int | float) and (value > hi or (xhi is True and value == hi)):
        return False
    if isinstance(xlo, int | float) and not isinstance(xlo, bool) and value <= xlo:
        return False
    if isinstance(xhi, int | float) and not isinstance(xhi, bool) and value >= xhi:
        return False
    step = schema.get("multipleOf")
    return not (isinstance(step, int | float) and step > 0 and not _is_multiple(value, step))


def _array_ok(schema: Mapping[str, Any], value: list[Any], root: Any, depth: int) -> bool:
    if len(value) < int(schema.get("minItems", 0) or 0):
        return False
    if isinstance(schema.get("maxItems"), int) and len(value) > schema["maxItems"]:
        return False
    prefix = schema.get("prefixItems") or []
    items = schema.get("items", True)
    for i, item in enumerate(value):
        sub = prefix[i] if i < len(prefix) else items
        if not conforms(sub, item, root, depth + 1):
            return False
    if schema.get("uniqueItems") is True:
        for i, a in enumerate(value):
            if any(_same(a, b) for b in value[i + 1 :]):
                return False
    return True


def _object_ok(schema: Mapping[str, Any], value: dict[str, Any], root: Any, depth: int) -> bool:
    props: Mapping[str, Any] = schema.get("properties") or {}
    for key in schema.get("required") or []:
        if key not in value:
            return False
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        sub = props.get(key, extra)
        if not conforms(sub, item, root, depth + 1):
            return False
    if len(value) < int(schema.get("minProperties", 0) or 0):
        return False
    return not (isinstance(schema.get("maxProperties"), int) and len(value) > schema["maxProperties"])
