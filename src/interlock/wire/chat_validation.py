"""Validation of a Chat Completions request: the caller's JSON checked field by field.

Every field OpenAI documents is type-checked and a wrong one is refused with a
400 naming its path (``messages[2].content``); a field it does not know passes
through untouched. Each field has its own validator, found in a table: the
scalar fields are checked in the order the request names them, the structured
ones after them in a fixed order, so the first bad field is the one reported.
The helpers here (JSON body, schema, type errors) are shared by the Responses codec.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from interlock.core.canonical import FunctionDefinition, JsonSchemaFormat
from interlock.core.errors import InvalidRequest
from interlock.wire.shapes import MAX_BODY_DEPTH, SCHEMAS, too_deep

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
PART_TYPES = frozenset({"text", "image_url", "input_audio", "file", "refusal"})

_NUMBER_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
}
_POSITIVE_INTS = ("max_tokens", "max_completion_tokens", "n")
_BOOLS = ("stream", "logprobs", "parallel_tool_calls", "store")
_STRINGS = ("user", "reasoning_effort", "service_tier", "prompt_cache_key", "safety_identifier", "verbosity")
_OBJECTS = ("metadata", "logit_bias", "stream_options", "prediction", "audio", "web_search_options")
_TOOL_CHOICES = ("none", "auto", "required")

#: Checks one field's value (never None: an absent or null field is not checked); raises a 400 naming ``key``.
Check = Callable[[str, object], None]


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def invalid_type(param: str, expected: str, value: object) -> InvalidRequest:
    return InvalidRequest(f"Invalid type for '{param}': expected {expected}, but got {type_name(value)}.", param=param,
                          code="invalid_type")


def _missing(param: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The caller's body as a JSON object, its values not yet validated (a 400 when it is not one)."""
    if not body:
        raise InvalidRequest("The request body is empty; expected a JSON object.", code="invalid_json")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc.msg} (at byte {exc.pos}).",
                             code="invalid_json") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"The request body must be a JSON object, got {type_name(data)}.", code="invalid_json")
    if too_deep(body, data):
        raise InvalidRequest(f"The request body nests arrays and objects more than {MAX_BODY_DEPTH} levels deep.",
                             code="invalid_json")
    return data


def check_schema(schema: object, param: str) -> None:
    """A client's JSON Schema (tool parameters, response format): a 400 naming the first keyword of a wrong shape."""
    found = SCHEMAS.problem(schema, param)
    if found is not None:
        raise InvalidRequest(f"Invalid schema at '{found[0]}': {found[1]}.", param=found[0], code="invalid_schema")


def copy_described(source: Mapping[str, object], out: FunctionDefinition | JsonSchemaFormat, where: str) -> None:
    """Copy ``description`` (a string) and ``strict`` (a boolean) when present."""
    description = source.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise invalid_type(f"{where}.description", "a string", description)
        out["description"] = description
    strict = source.get("strict")
    if strict is not None:
        if not isinstance(strict, bool):
            raise invalid_type(f"{where}.strict", "a boolean", strict)
        out["strict"] = strict


def check_str(obj: Mapping[str, object], key: str, where: str, *, required: bool = False) -> None:
    value = obj.get(key)
    if value is None:
        if required:
            raise _missing(f"{where}.{key}")
    elif not isinstance(value, str):
        raise invalid_type(f"{where}.{key}", "a string", value)


def primary_from_models(request: dict[str, object]) -> object:
    """OpenRouter: without ``model``, the first entry of ``models`` is the primary model (set as ``model``)."""
    models = request.get("models")
    if "model" in request or not isinstance(models, list) or not models:
        return request.get("model")
    request["model"] = models[0]
    return models[0]


def validate_chat_request(req: dict[str, object]) -> None:
    """Check the documented fields of a Chat Completions request; raise a 400 naming the first bad one.

    On return the request has the shape of :class:`~interlock.core.canonical.ChatRequest`.
    """
    model = req.get("model")
    if model is None:
        model = primary_from_models(req)
    if model is None:
        raise _missing("model")
    if not isinstance(model, str) or not model.strip():
        raise invalid_type("model", "a non-empty string", model)
    _check_messages(req.get("messages"))
    # Only the fields present are looked at (a request carries a handful of the ~25 checked here).
    for key, value in req.items():
        check = _SCALARS.get(key)
        if check is not None and value is not None:
            check(key, value)
    for key, check in _STRUCTURED:
        value = req.get(key)
        if value is not None:
            check(key, value)


# ------------------------------------------------------------------ scalar fields


def _boolean(key: str, value: object) -> None:
    if not isinstance(value, bool):
        raise invalid_type(key, "a boolean", value)


def _positive_int(key: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(key, "an integer", value)
    if value < 1:
        raise InvalidRequest(f"Invalid '{key}': integer below minimum value. Expected a value >= 1, but got {value}.",
                             param=key, code="integer_below_min_value")


def _number_in_range(key: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_type(key, "a number", value)
    low, high = _NUMBER_RANGES[key]
    if not low <= value <= high:
        raise InvalidRequest(f"Invalid '{key}': expected a value between {low:g} and {high:g}, but got {value}.",
                             param=key, code="number_out_of_range")


def _string(key: str, value: object) -> None:
    if not isinstance(value, str):
        raise invalid_type(key, "a string", value)


def _object(key: str, value: object) -> None:
    if not isinstance(value, dict):
        raise invalid_type(key, "an object", value)


#: Fields whose type alone is checked, in the order the request names them.
_SCALARS: dict[str, Check] = {
    **dict.fromkeys(_BOOLS, _boolean),
    **dict.fromkeys(_POSITIVE_INTS, _positive_int),
    **dict.fromkeys(_NUMBER_RANGES, _number_in_range),
    **dict.fromkeys(_STRINGS, _string),
    **dict.fromkeys(_OBJECTS, _object),
}


# ------------------------------------------------------------------ structured fields


def _seed(key: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(key, "an integer", value)


def _top_logprobs(key: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 20:
        raise InvalidRequest("Invalid 'top_logprobs': expected an integer between 0 and 20.", param=key)


def _stream_options(key: str, value: object) -> None:
    include = value.get("include_usage") if isinstance(value, dict) else None
    if include is not None and not isinstance(include, bool):
        raise invalid_type(f"{key}.include_usage", "a boolean", include)


def _logit_bias(key: str, value: object) -> None:
    for token, bias in value.items() if isinstance(value, dict) else ():
        if isinstance(bias, bool) or not isinstance(bias, int | float) or not -100 <= bias <= 100:
            raise InvalidRequest(f"Invalid value for '{key}.{token}': expected a number between -100 and 100.",
                                 param=f"{key}.{token}", code="invalid_value")


def _metadata(key: str, value: object) -> None:
    for name, item in value.items() if isinstance(value, dict) else ():
        if not isinstance(item, str):
            raise invalid_type(f"{key}.{name}", "a string", item)


def _modalities(key: str, value: object) -> None:
    if not (isinstance(value, list) and all(isinstance(m, str) for m in value)):
        raise invalid_type(key, "an array of strings", value)


def _stop(key: str, value: object) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise invalid_type(key, "a string or an array of strings", value)
    if len(value) > 4:
        raise InvalidRequest("Invalid 'stop': at most 4 stop sequences are allowed.", param=key)


def _tools(key: str, value: object) -> None:
    if not isinstance(value, list):
        raise invalid_type(key, "an array", value)
    for i, tool in enumerate(value):
        where = f"{key}[{i}]"
        if not isinstance(tool, dict):
            raise invalid_type(where, "an object", tool)
        kind = tool.get("type", "function")
        if not isinstance(kind, str):
            raise invalid_type(f"{where}.type", "a string", kind)
        if kind == "function":
            function = tool.get("function")
            if not isinstance(function, dict):
                raise _missing(f"{where}.function")
            _check_function(function, f"{where}.function")
        cache = tool.get("cache_control")
        if cache is not None and not isinstance(cache, dict):
            raise invalid_type(f"{where}.cache_control", "an object", cache)


def _functions(key: str, value: object) -> None:
    if not isinstance(value, list):
        raise invalid_type(key, "an array", value)
    for i, function in enumerate(value):
        if not isinstance(function, dict):
            raise invalid_type(f"{key}[{i}]", "an object", function)
        _check_function(function, f"{key}[{i}]")


def _check_function(function: Mapping[str, object], where: str) -> None:
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise _missing(f"{where}.name")
    _described_schema(function, where, "parameters", "an object (a JSON Schema)")


def _described_schema(obj: Mapping[str, object], where: str, key: str, what: str) -> None:
    """The ``description``, ``strict`` and JSON Schema (under ``key``) a function or a response format carries."""
    check_str(obj, "description", where)
    strict = obj.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise invalid_type(f"{where}.strict", "a boolean", strict)
    schema = obj.get(key)
    if schema is not None:
        if not isinstance(schema, dict):
            raise invalid_type(f"{where}.{key}", what, schema)
        check_schema(schema, f"{where}.{key}")


def _function_call(key: str, value: object) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, dict):
        raise invalid_type(key, "a string or an object", value)
    check_str(value, "name", key, required=True)


def _tool_choice(key: str, value: object) -> None:
    if isinstance(value, str):
        if value not in _TOOL_CHOICES:
            raise InvalidRequest(f"Invalid value for 'tool_choice': {value!r}. Supported values are: 'none', "
                                 "'auto' and 'required', or an object naming a function.", param=key,
                                 code="invalid_value")
        return
    if not isinstance(value, dict):
        raise invalid_type(key, "a string or an object", value)
    check_str(value, "type", key, required=True)
    if value["type"] == "function" or "function" in value:
        function = value.get("function")
        if not isinstance(function, dict):
            raise invalid_type(f"{key}.function", "an object", function)
        check_str(function, "name", f"{key}.function", required=True)


def _response_format(key: str, value: object) -> None:
    if not isinstance(value, dict):
        raise invalid_type(key, "an object", value)
    ftype = value.get("type")
    if ftype not in ("text", "json_object", "json_schema"):
        raise InvalidRequest(f"Invalid value for 'response_format.type': {ftype!r}. Supported values are: 'text', "
                             "'json_object' and 'json_schema'.", param=f"{key}.type", code="invalid_value")
    if ftype != "json_schema":
        return
    spec = value.get("json_schema")
    where = f"{key}.json_schema"
    if not isinstance(spec, dict):
        raise _missing(where)
    if not isinstance(spec.get("name"), str):
        raise _missing(f"{where}.name")
    _described_schema(spec, where, "schema", "an object")


#: Fields with a structure to check, after the scalars, in this order.
_STRUCTURED: tuple[tuple[str, Check], ...] = (
    ("seed", _seed), ("top_logprobs", _top_logprobs), ("stream_options", _stream_options),
    ("logit_bias", _logit_bias), ("metadata", _metadata), ("modalities", _modalities), ("stop", _stop),
    ("tools", _tools), ("functions", _functions), ("function_call", _function_call), ("tool_choice", _tool_choice),
    ("response_format", _response_format),
)


# ------------------------------------------------------------------ messages


def _check_messages(messages: object) -> None:
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise invalid_type("messages", "an array", messages)
    if not messages:
        raise InvalidRequest("'messages' must contain at least one message.", param="messages", code="empty_array")
    for i, message in enumerate(messages):
        _check_message(message, f"messages[{i}]")


def _check_part(part: object, pwhere: str) -> None:
    if not isinstance(part, dict):
        raise invalid_type(pwhere, "an object", part)
    ptype = part.get("type")
    if not isinstance(ptype, str) or ptype not in PART_TYPES:
        raise InvalidRequest(f"Invalid value for '{pwhere}.type': {ptype!r}. Supported values are: "
                             "'text', 'image_url', 'input_audio', 'file' and 'refusal'.",
                             param=f"{pwhere}.type", code="invalid_value")
    _PART_CHECKS[ptype](part, pwhere)
    cache = part.get("cache_control")
    if cache is not None and not isinstance(cache, dict):
        raise invalid_type(f"{pwhere}.cache_control", "an object", cache)


def _text_part(part: Mapping[str, object], pwhere: str) -> None:
    check_str(part, str(part["type"]), pwhere, required=True)  # "text" or "refusal": the key of the text


def _image_part(part: Mapping[str, object], pwhere: str) -> None:
    image = part.get("image_url")
    if not isinstance(image, dict) or not isinstance(image.get("url"), str):
        raise invalid_type(f"{pwhere}.image_url.url", "a string", image.get("url") if isinstance(image, dict) else image)
    check_str(image, "detail", f"{pwhere}.image_url")


def _audio_part(part: Mapping[str, object], pwhere: str) -> None:
    audio = part.get("input_audio")
    if not isinstance(audio, dict):
        raise invalid_type(f"{pwhere}.input_audio", "an object", audio)
    check_str(audio, "data", f"{pwhere}.input_audio", required=True)
    check_str(audio, "format", f"{pwhere}.input_audio")


def _file_part(part: Mapping[str, object], pwhere: str) -> None:
    file = part.get("file")
    if not isinstance(file, dict):
        raise invalid_type(f"{pwhere}.file", "an object", file)
    for key in ("file_data", "file_id", "filename", "file_url"):
        check_str(file, key, f"{pwhere}.file")


_PART_CHECKS: dict[str, Callable[[Mapping[str, object], str], None]] = {
    "text": _text_part, "refusal": _text_part, "image_url": _image_part, "input_audio": _audio_part, "file": _file_part,
}


def _check_message(message: object, where: str) -> None:
    if not isinstance(message, dict):
        raise invalid_type(where, "an object", message)
    role = message.get("role")
    if role is None:
        raise _missing(f"{where}.role")
    if not isinstance(role, str) or role not in ROLES:
        raise InvalidRequest(f"Invalid value for '{where}.role': {role!r}. Supported values are: "
                             "'system', 'developer', 'user', 'assistant', 'tool' and 'function'.",
                             param=f"{where}.role", code="invalid_value")
    content = message.get("content")
    if content is None:
        if role in ("user", "system", "developer", "tool"):
            raise _missing(f"{where}.content")
    elif isinstance(content, list):
        for j, part in enumerate(content):
            _check_part(part, f"{where}.content[{j}]")
    elif not isinstance(content, str):
        raise invalid_type(f"{where}.content", "a string or an array of content parts", content)
    if len(message) == 2 and role != "tool":
        return  # role and content: the common message has nothing more to check
    _check_message_fields(message, role, where)


def _check_message_fields(message: Mapping[str, object], role: str, where: str) -> None:
    """The fields beyond role and content: name, tool calls and results, thinking."""
    check_str(message, "name", where)
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise _missing(f"{where}.tool_call_id")
    tool_calls = message.get("tool_calls")
    if tool_calls is not None:
        if role != "assistant" or not isinstance(tool_calls, list):
            raise invalid_type(f"{where}.tool_calls", "an array on an assistant message", tool_calls)
        for k, call in enumerate(tool_calls):
            _check_tool_call(call, f"{where}.tool_calls[{k}]")
    legacy = message.get("function_call")
    if legacy is not None:
        if not isinstance(legacy, dict):
            raise invalid_type(f"{where}.function_call", "an object", legacy)
        check_str(legacy, "name", f"{where}.function_call", required=True)
        check_str(legacy, "arguments", f"{where}.function_call")
    check_str(message, "reasoning_content", where)
    check_str(message, "refusal", where)
    blocks = message.get("thinking_blocks")
    if blocks is not None:
        if not isinstance(blocks, list):
            raise invalid_type(f"{where}.thinking_blocks", "an array", blocks)
        for k, block in enumerate(blocks):
            if not isinstance(block, dict):
                raise invalid_type(f"{where}.thinking_blocks[{k}]", "an object", block)
            for key in ("type", "thinking", "signature", "data"):
                check_str(block, key, f"{where}.thinking_blocks[{k}]")
    for key in ("audio", "cache_control"):
        value = message.get(key)
        if value is not None and not isinstance(value, dict):
            raise invalid_type(f"{where}.{key}", "an object", value)


def _check_tool_call(call: object, cwhere: str) -> None:
    if not isinstance(call, dict):
        raise invalid_type(cwhere, "an object", call)
    function = call.get("function")
    if not isinstance(function, dict):
        raise invalid_type(f"{cwhere}.function", "an object", function)
    check_str(call, "id", cwhere)
    check_str(call, "type", cwhere)
    check_str(function, "name", f"{cwhere}.function", required=True)
    check_str(function, "arguments", f"{cwhere}.function")
