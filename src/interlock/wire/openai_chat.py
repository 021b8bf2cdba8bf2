"""The OpenAI Chat Completions format: the inbound codec and the canonical shape.

Canonical requests and responses *are* Chat Completions dicts, so this codec
mostly checks: every field OpenAI documents is type-checked and a wrong one is
refused with a 400 naming it (``messages[2].content``), and every field it does
not know passes through untouched, so new vendor features work before we learn
about them. Responses are written back with the gateway's cost added.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import orjson

from interlock.core.codec import malformed_event, set_cost
from interlock.core.context import RequestContext
from interlock.core.errors import GatewayError, InvalidRequest, UpstreamError
from interlock.wire.canonical import vendor_name
from interlock.wire.shapes import MAX_BODY_DEPTH, SCHEMAS, too_deep
from interlock.wire.sse import DONE_FRAME

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
_BOOL, _POSITIVE_INT, _RANGE, _STRING, _OBJECT = range(5)
_KINDS: dict[str, int] = {
    **dict.fromkeys(_BOOLS, _BOOL),
    **dict.fromkeys(_POSITIVE_INTS, _POSITIVE_INT),
    **dict.fromkeys(_NUMBER_RANGES, _RANGE),
    **dict.fromkeys(_STRINGS, _STRING),
    **dict.fromkeys(_OBJECTS, _OBJECT),
}


def _type_name(value: Any) -> str:
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


def _invalid(param: str, expected: str, value: Any) -> InvalidRequest:
    return InvalidRequest(f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)}.", param=param,
                          code="invalid_type")


def parse_json_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise InvalidRequest("The request body is empty; expected a JSON object.", code="invalid_json")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc.msg} (at byte {exc.pos}).",
                             code="invalid_json") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"The request body must be a JSON object, got {_type_name(data)}.", code="invalid_json")
    if too_deep(body, data):
        raise InvalidRequest(f"The request body nests arrays and objects more than {MAX_BODY_DEPTH} levels deep.",
                             code="invalid_json")
    return data


def check_schema(schema: Any, param: str) -> None:
    """A client's JSON Schema (tool parameters, response format): a 400 naming the first keyword of a wrong shape."""
    found = SCHEMAS.problem(schema, param)
    if found is not None:
        raise InvalidRequest(f"Invalid schema at '{found[0]}': {found[1]}.", param=found[0], code="invalid_schema")


def copy_described(source: dict[str, Any], out: dict[str, Any], where: str) -> None:
    """Copy ``description`` (a string) and ``strict`` (a boolean) when present."""
    for key, kind, expected in (("description", str, "a string"), ("strict", bool, "a boolean")):
        value = source.get(key)
        if value is not None:
            if not isinstance(value, kind):
                raise _invalid(f"{where}.{key}", expected, value)
            out[key] = value


def _check_str(obj: dict[str, Any], key: str, where: str, *, required: bool = False) -> None:
    value = obj.get(key)
    if value is None:
        if required:
            raise InvalidRequest(f"Missing required parameter: '{where}.{key}'.", param=f"{where}.{key}",
                                 code="missing_required_parameter")
    elif not isinstance(value, str):
        raise _invalid(f"{where}.{key}", "a string", value)


def primary_from_models(request: dict[str, Any]) -> Any:
    """OpenRouter: without ``model``, the first entry of ``models`` is the primary model (set as ``model``)."""
    models = request.get("models")
    if "model" in request or not isinstance(models, list) or not models:
        return request.get("model")
    request["model"] = models[0]
    return models[0]


def validate_chat_request(req: dict[str, Any]) -> None:
    """Check the documented fields of a Chat Completions request; raise a 400 naming the first bad one."""
    model = req.get("model")
    if model is None:
        model = primary_from_models(req)
    if model is None:
        raise InvalidRequest("Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    if not isinstance(model, str) or not model.strip():
        raise _invalid("model", "a non-empty string", model)
    messages = req.get("messages")
    if messages is None:
        raise InvalidRequest("Missing required parameter: 'messages'.", param="messages",
                             code="missing_required_parameter")
    if not isinstance(messages, list):
        raise _invalid("messages", "an array", messages)
    if not messages:
        raise InvalidRequest("'messages' must contain at least one message.", param="messages", code="empty_array")
    for i, message in enumerate(messages):
        _check_message(message, f"messages[{i}]")

    # Only the fields present are looked at (a request carries a handful of the ~25 checked here).
    for key, value in req.items():
        kind = _KINDS.get(key)
        if kind is None or value is None:
            continue
        if kind == _BOOL:
            if not isinstance(value, bool):
                raise _invalid(key, "a boolean", value)
        elif kind == _POSITIVE_INT:
            if isinstance(value, bool) or not isinstance(value, int):
                raise _invalid(key, "an integer", value)
            if value < 1:
                raise InvalidRequest(f"Invalid '{key}': integer below minimum value. Expected a value >= 1, but got {value}.",
                                     param=key, code="integer_below_min_value")
        elif kind == _RANGE:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _invalid(key, "a number", value)
            low, high = _NUMBER_RANGES[key]
            if not low <= value <= high:
                raise InvalidRequest(f"Invalid '{key}': expected a value between {low:g} and {high:g}, but got {value}.",
                                     param=key, code="number_out_of_range")
        elif kind == _STRING:
            if not isinstance(value, str):
                raise _invalid(key, "a string", value)
        elif not isinstance(value, dict):
            raise _invalid(key, "an object", value)
    seed = req.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise _invalid("seed", "an integer", seed)
    top_logprobs = req.get("top_logprobs")
    if top_logprobs is not None and (isinstance(top_logprobs, bool) or not isinstance(top_logprobs, int)
                                     or not 0 <= top_logprobs <= 20):
        raise InvalidRequest("Invalid 'top_logprobs': expected an integer between 0 and 20.", param="top_logprobs")
    stream_options = req.get("stream_options")
    if stream_options is not None:
        include = stream_options.get("include_usage")
        if include is not None and not isinstance(include, bool):
            raise _invalid("stream_options.include_usage", "a boolean", include)
    logit_bias = req.get("logit_bias")
    if logit_bias:
        for token, bias in logit_bias.items():
            if isinstance(bias, bool) or not isinstance(bias, int | float) or not -100 <= bias <= 100:
                raise InvalidRequest(f"Invalid value for 'logit_bias.{token}': expected a number between -100 and "
                                     "100.", param=f"logit_bias.{token}", code="invalid_value")
    metadata = req.get("metadata")
    if metadata:
        for key, value in metadata.items():
            if not isinstance(value, str):
                raise _invalid(f"metadata.{key}", "a string", value)
    modalities = req.get("modalities")
    if modalities is not None and not (isinstance(modalities, list) and all(isinstance(m, str) for m in modalities)):
        raise _invalid("modalities", "an array of strings", modalities)
    stop = req.get("stop")
    if stop is not None and not isinstance(stop, str):
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise _invalid("stop", "a string or an array of strings", stop)
        if len(stop) > 4:
            raise InvalidRequest("Invalid 'stop': at most 4 stop sequences are allowed.", param="stop")
    _check_tools(req)
    _check_response_format(req.get("response_format"))


def _check_part(part: Any, pwhere: str) -> None:
    if not isinstance(part, dict):
        raise _invalid(pwhere, "an object", part)
    ptype = part.get("type")
    if not isinstance(ptype, str) or ptype not in PART_TYPES:
        raise InvalidRequest(f"Invalid value for '{pwhere}.type': {ptype!r}. Supported values are: "
                             "'text', 'image_url', 'input_audio', 'file' and 'refusal'.",
                             param=f"{pwhere}.type", code="invalid_value")
    if ptype == "text" or ptype == "refusal":
        _check_str(part, ptype, pwhere, required=True)
    elif ptype == "image_url":
        image = part.get("image_url")
        if not isinstance(image, dict) or not isinstance(image.get("url"), str):
            raise _invalid(f"{pwhere}.image_url.url", "a string", image.get("url") if isinstance(image, dict) else image)
        _check_str(image, "detail", f"{pwhere}.image_url")
    elif ptype == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, dict):
            raise _invalid(f"{pwhere}.input_audio", "an object", audio)
        _check_str(audio, "data", f"{pwhere}.input_audio", required=True)
        _check_str(audio, "format", f"{pwhere}.input_audio")
    else:
        file = part.get("file")
        if not isinstance(file, dict):
            raise _invalid(f"{pwhere}.file", "an object", file)
        for key in ("file_data", "file_id", "filename", "file_url"):
            _check_str(file, key, f"{pwhere}.file")
    cache = part.get("cache_control")
    if cache is not None and not isinstance(cache, dict):
        raise _invalid(f"{pwhere}.cache_control", "an object", cache)


def _check_message(message: Any, where: str) -> None:
    if not isinstance(message, dict):
        raise _invalid(where, "an object", message)
    role = message.get("role")
    if role is None:
        raise InvalidRequest(f"Missing required parameter: '{where}.role'.", param=f"{where}.role",
                             code="missing_required_parameter")
    if not isinstance(role, str) or role not in ROLES:
        raise InvalidRequest(f"Invalid value for '{where}.role': {role!r}. Supported values are: "
                             "'system', 'developer', 'user', 'assistant', 'tool' and 'function'.",
                             param=f"{where}.role", code="invalid_value")
    content = message.get("content")
    if content is None:
        if role in ("user", "system", "developer", "tool"):
            raise InvalidRequest(f"Missing required parameter: '{where}.content'.", param=f"{where}.content",
                                 code="missing_required_parameter")
    elif isinstance(content, list):
        for j, part in enumerate(content):
            _check_part(part, f"{where}.content[{j}]")
    elif not isinstance(content, str):
        raise _invalid(f"{where}.content", "a string or an array of content parts", content)
    if len(message) == 2 and role != "tool":
        return  # role and content: the common message has nothing more to check
    _check_str(message, "name", where)
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise InvalidRequest(f"Missing required parameter: '{where}.tool_call_id'.", param=f"{where}.tool_call_id",
                             code="missing_required_parameter")
    tool_calls = message.get("tool_calls")
    if tool_calls is not None:
        if role != "assistant" or not isinstance(tool_calls, list):
            raise _invalid(f"{where}.tool_calls", "an array on an assistant message", tool_calls)
        for k, call in enumerate(tool_calls):
            cwhere = f"{where}.tool_calls[{k}]"
            if not isinstance(call, dict):
                raise _invalid(cwhere, "an object", call)
            function = call.get("function")
            if not isinstance(function, dict):
                raise _invalid(f"{cwhere}.function", "an object", function)
            _check_str(call, "id", cwhere)
            _check_str(call, "type", cwhere)
            _check_str(function, "name", f"{cwhere}.function", required=True)
            _check_str(function, "arguments", f"{cwhere}.function")
    legacy = message.get("function_call")
    if legacy is not None:
        if not isinstance(legacy, dict):
            raise _invalid(f"{where}.function_call", "an object", legacy)
        _check_str(legacy, "name", f"{where}.function_call", required=True)
        _check_str(legacy, "arguments", f"{where}.function_call")
    _check_str(message, "reasoning_content", where)
    _check_str(message, "refusal", where)
    blocks = message.get("thinking_blocks")
    if blocks is not None:
        if not isinstance(blocks, list):
            raise _invalid(f"{where}.thinking_blocks", "an array", blocks)
        for k, block in enumerate(blocks):
            if not isinstance(block, dict):
                raise _invalid(f"{where}.thinking_blocks[{k}]", "an object", block)
            for key in ("type", "thinking", "signature", "data"):
                _check_str(block, key, f"{where}.thinking_blocks[{k}]")
    for key in ("audio", "cache_control"):
        value = message.get(key)
        if value is not None and not isinstance(value, dict):
            raise _invalid(f"{where}.{key}", "an object", value)


def _check_function(function: dict[str, Any], where: str) -> None:
    if not isinstance(function.get("name"), str) or not function["name"]:
        raise InvalidRequest(f"Missing required parameter: '{where}.name'.", param=f"{where}.name",
                             code="missing_required_parameter")
    _check_str(function, "description", where)
    strict = function.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise _invalid(f"{where}.strict", "a boolean", strict)
    params = function.get("parameters")
    if params is not None:
        if not isinstance(params, dict):
            raise _invalid(f"{where}.parameters", "an object (a JSON Schema)", params)
        check_schema(params, f"{where}.parameters")


def _check_tools(req: dict[str, Any]) -> None:
    tools = req.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _invalid("tools", "an array", tools)
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise _invalid(f"tools[{i}]", "an object", tool)
            kind = tool.get("type", "function")
            if not isinstance(kind, str):
                raise _invalid(f"tools[{i}].type", "a string", kind)
            if kind == "function":
                function = tool.get("function")
                if not isinstance(function, dict):
                    raise InvalidRequest(f"Missing required parameter: 'tools[{i}].function'.",
                                         param=f"tools[{i}].function", code="missing_required_parameter")
                _check_function(function, f"tools[{i}].function")
            cache = tool.get("cache_control")
            if cache is not None and not isinstance(cache, dict):
                raise _invalid(f"tools[{i}].cache_control", "an object", cache)
    functions = req.get("functions")
    if functions is not None:
        if not isinstance(functions, list):
            raise _invalid("functions", "an array", functions)
        for i, function in enumerate(functions):
            if not isinstance(function, dict):
                raise _invalid(f"functions[{i}]", "an object", function)
            _check_function(function, f"functions[{i}]")
    legacy = req.get("function_call")
    if legacy is not None and not isinstance(legacy, str):
        if not isinstance(legacy, dict):
            raise _invalid("function_call", "a string or an object", legacy)
        _check_str(legacy, "name", "function_call", required=True)
    choice = req.get("tool_choice")
    if choice is not None:
        if isinstance(choice, str):
            if choice not in ("none", "auto", "required"):
                raise InvalidRequest(f"Invalid value for 'tool_choice': {choice!r}. Supported values are: 'none', "
                                     "'auto' and 'required', or an object naming a function.", param="tool_choice",
                                     code="invalid_value")
        elif not isinstance(choice, dict):
            raise _invalid("tool_choice", "a string or an object", choice)
        else:
            _check_str(choice, "type", "tool_choice", required=True)
            if choice["type"] == "function" or "function" in choice:
                function = choice.get("function")
                if not isinstance(function, dict):
                    raise _invalid("tool_choice.function", "an object", function)
                _check_str(function, "name", "tool_choice.function", required=True)


def _check_response_format(fmt: Any) -> None:
    if fmt is None:
        return
    if not isinstance(fmt, dict):
        raise _invalid("response_format", "an object", fmt)
    ftype = fmt.get("type")
    if ftype not in ("text", "json_object", "json_schema"):
        raise InvalidRequest(f"Invalid value for 'response_format.type': {ftype!r}. Supported values are: 'text', "
                             "'json_object' and 'json_schema'.", param="response_format.type", code="invalid_value")
    if ftype == "json_schema":
        schema = fmt.get("json_schema")
        if not isinstance(schema, dict):
            raise InvalidRequest("Missing required parameter: 'response_format.json_schema'.",
                                 param="response_format.json_schema", code="missing_required_parameter")
        if not isinstance(schema.get("name"), str):
            raise InvalidRequest("Missing required parameter: 'response_format.json_schema.name'.",
                                 param="response_format.json_schema.name", code="missing_required_parameter")
        _check_str(schema, "description", "response_format.json_schema")
        strict = schema.get("strict")
        if strict is not None and not isinstance(strict, bool):
            raise _invalid("response_format.json_schema.strict", "a boolean", strict)
        if schema.get("schema") is not None:
            if not isinstance(schema["schema"], dict):
                raise _invalid("response_format.json_schema.schema", "an object", schema["schema"])
            check_schema(schema["schema"], "response_format.json_schema.schema")


def error_body(err: GatewayError) -> bytes:
    return orjson.dumps(err.to_openai())


# ----------------------------------------------------------------- streaming out


class _Event(msgspec.Struct):
    """What the relay needs of a chunk: whether it carries usage or an error (other keys are skipped)."""

    usage: Any = None
    error: Any = None


#: Checks that a payload is exactly one JSON object without building it: about a third of
#: ``orjson.loads``'s cost on a typical chunk (bench/pipeline.py --stream --instructions).
_check_event = msgspec.json.Decoder(_Event).decode


def _plain(payload: bytes) -> bool:
    """One JSON object, in UTF-8, with no usage or error: relayed as it is."""
    try:
        event = _check_event(payload)
    except msgspec.MsgspecError:
        return False
    return event.usage is None and event.error is None and (payload.isascii() or _utf8(payload))


def _utf8(payload: bytes) -> bool:
    try:
        payload.decode()
    except UnicodeDecodeError:
        return False
    return True


def _last_chunk(payload: bytes | None) -> dict[str, Any]:
    try:
        chunk = orjson.loads(payload) if payload else {}
    except orjson.JSONDecodeError:
        return {}
    return chunk if isinstance(chunk, dict) else {}


class ChunkWriter:
    """Re-frames canonical chunk payloads as OpenAI SSE for the client.

    Payloads pass through byte for byte once checked to be one JSON object each
    (a fused or cut event would otherwise reach the client as broken JSON or a
    silently lost token); only a usage chunk is re-serialised, to add the
    gateway's cost (never the vendor's) - or dropped when the client did not ask
    for usage (interlock always asks the vendor, to bill exactly). A malformed
    payload or a vendor's error object ends the stream with OpenAI's mid-stream
    error event, recorded as the request's failure.
    """

    __slots__ = ("_ctx", "_include_usage", "_last", "_on_usage", "failed", "usage_seen")

    def __init__(self, include_usage: bool, on_usage: Callable[[dict[str, Any]], float | None],
                 ctx: RequestContext | None = None) -> None:
        self._include_usage = include_usage
        self._on_usage = on_usage
        self._ctx = ctx
        #: The last relayed payload: the estimated usage chunk copies its id, created and model.
        self._last: bytes | None = None
        self.usage_seen = False
        self.failed = False

    def encode(self, payloads: list[bytes]) -> bytes:
        if not payloads or self.failed:
            return b""
        for i, payload in enumerate(payloads):
            if not _plain(payload):
                return self._slow(payloads, i)
        self._last = payloads[-1]
        return b"data: " + b"\n\ndata: ".join(payloads) + b"\n\n"

    def _slow(self, payloads: list[bytes], start: int) -> bytes:
        """A batch with a usage chunk, an error object or a malformed payload at ``start``: the plain
        payloads before it pass as they are, the rest one at a time."""
        kept = payloads[:start]
        failure: GatewayError | None = None
        for payload in payloads[start:]:
            if _plain(payload):
                kept.append(payload)
                self._last = payload
                continue
            try:
                chunk = orjson.loads(payload)
            except orjson.JSONDecodeError:
                chunk = None
            if not isinstance(chunk, dict):
                failure = malformed_event(vendor_name(self._ctx))
                break
            error = chunk.get("error")
            if error is not None:
                message = error.get("message") if isinstance(error, dict) else error
                failure = UpstreamError(f"{vendor_name(self._ctx)} failed mid-stream: {message}",
                                        code="upstream_stream_error")
                break
            self._last = payload
            usage = chunk.get("usage")
            kept.append(self._usage_chunk(chunk, usage) if isinstance(usage, dict) else payload)
        joined = b"\n\ndata: ".join([p for p in kept if p])
        out = b"data: " + joined + b"\n\n" if joined else b""
        if failure is not None:
            self.failed = True
            if self._ctx is not None:
                self._ctx.fail(failure)
            out += self.error(failure)
        return out

    def _usage_chunk(self, chunk: dict[str, Any], usage: dict[str, Any]) -> bytes:
        self.usage_seen = True
        cost = self._on_usage(usage)
        if not self._include_usage and not chunk.get("choices"):
            return b""
        set_cost(usage, cost)
        return orjson.dumps(chunk)

    def finish(self, estimated: dict[str, Any] | None = None) -> bytes:
        if self.failed:
            return b""
        if estimated is None or not self._include_usage:
            return DONE_FRAME
        # The vendor sent no usage: the final usage chunk carries interlock's estimate, marked as such.
        last = _last_chunk(self._last)
        chunk = {"id": last.get("id", ""), "object": "chat.completion.chunk", "created": last.get("created", 0),
                 "model": last.get("model", ""), "choices": [], "usage": estimated}
        return b"data: " + orjson.dumps(chunk) + b"\n\n" + DONE_FRAME

    @staticmethod
    def error(err: GatewayError) -> bytes:
        # OpenAI reports a failure after the stream started as a data event carrying an error object.
        return b"data: " + error_body(err) + b"\n\n"


class OpenAIChatCodec:
    """The Chat Completions format: canonical already, so parsing is validation."""

    name = "openai.chat"
    stream_content_type = "text/event-stream"

    async def parse(self, body: bytes, ctx: object) -> dict[str, Any]:
        request = parse_json_object(body)
        validate_chat_request(request)
        return request

    def render_error(self, err: GatewayError) -> bytes:
        return error_body(err)

    def completion(self, ctx: object, request: dict[str, Any], data: dict[str, Any]) -> bytes:
        # Required-nullable fields many OpenAI-compatible vendors leave out (vLLM, Groq, Together...).
        for choice in data.get("choices") or ():
            if isinstance(choice, dict):
                choice.setdefault("logprobs", None)
                message = choice.get("message")
                if isinstance(message, dict):
                    message.setdefault("refusal", None)
        return orjson.dumps(data)

    def stream_encoder(self, ctx: object, request: dict[str, Any],
                       on_usage: Callable[[dict[str, Any]], float | None]) -> ChunkWriter:
        options = request.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return ChunkWriter(include_usage, on_usage, ctx if isinstance(ctx, RequestContext) else None)
