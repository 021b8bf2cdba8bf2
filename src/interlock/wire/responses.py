"""The OpenAI Responses API in front of any vendor: input items → canonical request, completion → response.

``client.responses.create(...)`` callers send items (messages, function calls
and their outputs by ``call_id``, reasoning) plus ``instructions``; the
pipeline speaks Chat Completions, so this module translates both ways and keeps
what only the Responses API has (ids, ``previous_response_id``, ``store``,
``metadata``) out of the canonical request: it rides on :class:`ResponsesRequest`,
a dict subclass that serialises like the plain canonical dict.

Input items are read by ``responses_input``; each other field has its validator
here, found in a table. A reasoning item maps to canonical thinking: its text to
``reasoning_content`` and its ``encrypted_content`` to the thinking block's
signature, so Anthropic thinking round-trips through ``previous_response_id`` or
a replayed item.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

import orjson

from interlock.core.canonical import (
    CanonicalUsage,
    ChatCompletion,
    ChatRequest,
    Choice,
    FunctionDefinition,
    JsonSchemaFormat,
    Message,
    ToolDefinition,
)
from interlock.core.codec import UsageHook
from interlock.core.context import RequestContext
from interlock.core.errors import GatewayError, InvalidRequest
from interlock.core.responses import Owner, ResponseStore, StoredResponse
from interlock.wire.canonical import NO_MESSAGE
from interlock.wire.chat_validation import check_schema, copy_described, invalid_type, parse_json_object
from interlock.wire.openai_chat import error_body
from interlock.wire.responses_input import bad_value, input_messages, missing
from interlock.wire.responses_logprobs import attach, include_field, wants_logprobs
from interlock.wire.responses_output import (
    Echo,
    OutputItem,
    ResponsesMeta,
    meta_of,
    output_items,
    response_id,
    response_object,
    responses_usage,
    status_of,
)

if TYPE_CHECKING:  # responses_stream imports this module: a cycle inside wire, for a type only
    from interlock.wire.responses_stream import ResponsesStreamEncoder

_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
_PASS_STRINGS = ("user", "safety_identifier", "prompt_cache_key", "service_tier")
_UNSUPPORTED = {
    "background": "background responses are not supported by interlock; poll-free streaming is",
    "conversation": "conversations are not supported by interlock; chain responses with previous_response_id",
    "prompt": "stored prompt templates are not supported by interlock; send instructions and input",
}


class ResponsesRequest(dict[str, Any]):
    """The canonical request, carrying the Responses-only facts in ``meta`` (never sent to a vendor).

    Its keys are a :class:`~interlock.core.canonical.ChatRequest`'s: the parser writes them through
    that type (a cast of this same dict, no copy).
    """

    meta: ResponsesMeta


# ------------------------------------------------------------------ request in


def parse_responses_request(data: Mapping[str, object], previous: StoredResponse | None = None) -> ResponsesRequest:
    model = data.get("model")
    if model is None:
        raise missing("model")
    if not isinstance(model, str) or not model.strip():
        raise invalid_type("model", "a non-empty string", model)
    items = _input_items(data.get("input"), previous)
    turn = input_messages(items)
    out = ResponsesRequest(model=model)
    request = cast("ChatRequest", out)  # the same dict, written as the canonical request it is (cast once)
    instructions = data.get("instructions")
    history = previous.conversation if previous is not None else []
    request["messages"] = _conversation(instructions, history, turn)
    echo = dict(_ECHO_DEFAULTS)
    echo["instructions"] = instructions
    # Only the fields present are looked at: a request names a handful of the ~20 optional ones.
    for key in data.keys() & _FIELDS.keys():
        value = data[key]
        if value is not None:
            _FIELDS[key](key, value, request, echo)
    if "tools" in data or "tool_choice" in data:
        _tools(data, request, echo)
    text = data.get("text")
    if text is not None:
        _text(text, request, echo)
    reasoning = data.get("reasoning")
    if reasoning is not None:
        _reasoning(reasoning, request, echo)
    out.meta = ResponsesMeta(input_items=items, history=history, turn=turn, echo=echo, store=echo["store"] is True,
                             previous_response_id=previous.id if previous is not None else None,
                             created_at=int(time.time()), logprobs=wants_logprobs(data))
    return out


def _input_items(raw_input: object, previous: StoredResponse | None) -> list[object]:
    """``input`` as a list of items (a string is one user message); absent only when continuing a response."""
    if raw_input is None and previous is None:
        raise missing("input")
    items: object = [] if raw_input is None else (
        [{"type": "message", "role": "user", "content": raw_input}] if isinstance(raw_input, str) else raw_input)
    if not isinstance(items, list):
        raise invalid_type("input", "a string or an array of input items", raw_input)
    return items


def _conversation(instructions: object, history: list[Message], turn: list[Message]) -> list[Message]:
    """The canonical messages: instructions (as the system message), the previous response's, this input's."""
    messages: list[Message] = []
    if instructions is not None:
        if not isinstance(instructions, str):
            raise invalid_type("instructions", "a string", instructions)
        messages.append({"role": "system", "content": instructions})
    messages.extend(history)
    messages.extend(turn)
    if not messages:
        raise InvalidRequest("'input' must contain at least one item.", param="input", code="empty_array")
    return messages


#: Checks one optional field (never None) and writes it to the canonical request and to the echo.
_Field = Callable[[str, object, ChatRequest, Echo], None]


def _stream(key: str, value: object, out: ChatRequest, echo: Echo) -> None:
    if not isinstance(value, bool):
        raise invalid_type(key, "a boolean", value)
    if value:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}


def _max_output_tokens(key: str, value: object, out: ChatRequest, echo: Echo) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(key, "an integer", value)
    if value < 1:
        raise InvalidRequest(f"Invalid '{key}': integer below minimum value. Expected a value >= 1, but got {value}.",
                             param=key, code="integer_below_min_value")
    out["max_completion_tokens"] = echo[key] = value


def _number(key: str, value: object, out: ChatRequest, echo: Echo) -> None:
    low, high = _RANGES[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_type(key, "a number", value)
    if not low <= value <= high:
        raise InvalidRequest(f"Invalid '{key}': expected a value between {low:g} and {high:g}, but got {value}.",
                             param=key, code="number_out_of_range")
    out[key] = echo[key] = value  # type: ignore[literal-required]  # temperature or top_p (the table's keys)


def _boolean(key: str, value: object, out: ChatRequest, echo: Echo) -> None:
    if not isinstance(value, bool):
        raise invalid_type(key, "a boolean", value)
    echo[key] = value
    if key == "parallel_tool_calls":
        out["parallel_tool_calls"] = value


def _string(key: str, value: object, out: ChatRequest, echo: Echo) -> None:
    if not isinstance(value, str):
        raise invalid_type(key, "a string", value)
    out[key] = echo[key] = value  # type: ignore[literal-required]  # one of _PASS_STRINGS: string fields of both


def _top_logprobs(key: str, value: object, out: ChatRequest, echo: Echo) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 20:
        raise InvalidRequest("Invalid 'top_logprobs': expected an integer between 0 and 20.", param=key)
    out["logprobs"] = True
    out["top_logprobs"] = echo[key] = value


def _metadata(key: str, value: object, out: ChatRequest, echo: Echo) -> None:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise invalid_type(key, "an object of string values", value)
    if len(value) > 16:
        raise InvalidRequest("Invalid 'metadata': at most 16 keys are allowed.", param=key)
    echo[key] = value


def _truncation(key: str, value: object, out: ChatRequest, echo: Echo) -> None:
    if value not in ("auto", "disabled"):
        raise bad_value(key, value, "'auto' and 'disabled'")
    echo[key] = value


def _unsupported(key: str, value: object, out: ChatRequest, echo: Echo) -> None:
    if value is not False:
        raise InvalidRequest(f"Unsupported parameter: '{key}': {_UNSUPPORTED[key]}.", param=key,
                             code="unsupported_parameter")


_RANGES = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0)}
_FIELDS: dict[str, _Field] = {
    "stream": _stream, "max_output_tokens": _max_output_tokens, "temperature": _number, "top_p": _number,
    "parallel_tool_calls": _boolean, "store": _boolean, "top_logprobs": _top_logprobs, "metadata": _metadata,
    "truncation": _truncation, "include": include_field, **dict.fromkeys(_PASS_STRINGS, _string),
    **dict.fromkeys(_UNSUPPORTED, _unsupported),
}
#: What a response echoes when the request left a field out (shared, never mutated: echo values are replaced).
_ECHO_DEFAULTS: Echo = {
    "instructions": None, "max_output_tokens": None, "temperature": 1.0, "top_p": 1.0, "parallel_tool_calls": True,
    "tools": (), "tool_choice": "auto", "text": {"format": {"type": "text"}},
    "reasoning": {"effort": None, "summary": None}, "metadata": {}, "truncation": "disabled", "store": True,
}


def _tools(data: Mapping[str, object], out: ChatRequest, echo: Echo) -> None:
    tools = data.get("tools")
    names: set[str] = set()
    if tools is not None:
        if not isinstance(tools, list):
            raise invalid_type("tools", "an array", tools)
        converted = [_tool(tool, i, names) for i, tool in enumerate(tools)]
        if converted:
            out["tools"] = converted
    # FunctionTool requires strict and parameters (both nullable): echoed null when the request left them out.
    echo["tools"] = [{"strict": None, "parameters": None, **t} for t in tools] if isinstance(tools, list) else []
    choice = data.get("tool_choice")
    echo["tool_choice"] = choice if choice is not None else "auto"
    if choice is not None:
        _tool_choice(choice, names, out)


def _tool(tool: object, i: int, names: set[str]) -> ToolDefinition:
    if not isinstance(tool, dict):
        raise invalid_type(f"tools[{i}]", "an object", tool)
    if tool.get("type") != "function":
        raise InvalidRequest(f"Unsupported value for 'tools[{i}].type': {tool.get('type')!r}. interlock "
                             "runs function tools; hosted tools run only at OpenAI.",
                             param=f"tools[{i}].type", code="unsupported_value")
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise missing(f"tools[{i}].name")
    params = tool.get("parameters")
    if params is not None:
        if not isinstance(params, dict):
            raise invalid_type(f"tools[{i}].parameters", "an object (a JSON Schema)", params)
        check_schema(params, f"tools[{i}].parameters")
    function: FunctionDefinition = {"name": name, "parameters": params or {"type": "object", "properties": {}}}
    copy_described(tool, function, f"tools[{i}]")
    names.add(name)
    return {"type": "function", "function": function}


def _tool_choice(choice: object, names: set[str], out: ChatRequest) -> None:
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise bad_value("tool_choice", choice, "'none', 'auto' and 'required', or a function")
        out["tool_choice"] = choice
    elif isinstance(choice, dict) and choice.get("type") == "function":
        name = choice.get("name")
        if not isinstance(name, str):
            raise missing("tool_choice.name")
        if name not in names:
            raise InvalidRequest(f"Invalid value for 'tool_choice.name': no function named '{name}' is in 'tools'.",
                                 param="tool_choice.name", code="invalid_value")
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        raise bad_value("tool_choice", choice, "'none', 'auto', 'required' and {'type': 'function', 'name': ...}")


def _text(text: object, out: ChatRequest, echo: Echo) -> None:
    if not isinstance(text, dict):
        raise invalid_type("text", "an object", text)
    echo["text"] = text
    verbosity = text.get("verbosity")
    if verbosity is not None:
        if verbosity not in ("low", "medium", "high"):
            raise bad_value("text.verbosity", verbosity, "'low', 'medium' and 'high'")
        out["verbosity"] = verbosity
    fmt = text.get("format")
    if fmt is None:
        return
    if not isinstance(fmt, dict):
        raise invalid_type("text.format", "an object", fmt)
    kind = fmt.get("type")
    if kind == "json_object":
        out["response_format"] = {"type": "json_object"}
    elif kind == "json_schema":
        name, schema = fmt.get("name"), fmt.get("schema")
        if not isinstance(name, str) or not name:
            raise missing("text.format.name")
        if not isinstance(schema, dict):
            raise missing("text.format.schema")
        check_schema(schema, "text.format.schema")
        spec: JsonSchemaFormat = {"name": name, "schema": schema}
        copy_described(fmt, spec, "text.format")
        out["response_format"] = {"type": "json_schema", "json_schema": spec}
    elif kind != "text":
        raise bad_value("text.format.type", kind, "'text', 'json_object' and 'json_schema'")


def _reasoning(reasoning: object, out: ChatRequest, echo: Echo) -> None:
    if not isinstance(reasoning, dict):
        raise invalid_type("reasoning", "an object", reasoning)
    effort = reasoning.get("effort")
    if effort is not None:
        if effort not in _EFFORTS:
            raise bad_value("reasoning.effort", effort, "'none', 'minimal', 'low', 'medium', 'high' and 'xhigh'")
        out["reasoning_effort"] = effort
    echo["reasoning"] = {"effort": effort, "summary": reasoning.get("summary")}


# ------------------------------------------------------------------ answers out


def assistant_message(output: list[OutputItem]) -> Message:
    """The canonical assistant message a follow-up replays for these output items."""
    return input_messages(output)[0] if output else {"role": "assistant", "content": ""}


def stored(resp_id: str, ctx: RequestContext, meta: ResponsesMeta, body: dict[str, Any]) -> StoredResponse:
    conversation = [*meta.history, *meta.turn, assistant_message(body["output"])]
    principal = ctx.principal
    return StoredResponse(id=resp_id, model=str(body.get("model")),
                          owner=principal.key_prefix if principal is not None else None,
                          previous_response_id=meta.previous_response_id, response=body,
                          input_items=meta.input_items, conversation=conversation, created_at=time.time(),
                          project=principal.project if principal is not None else None)


class ResponsesCodec:
    """``POST /v1/responses``: the Responses API in and out, any vendor behind, state in the store."""

    name = "openai.responses"
    stream_content_type = "text/event-stream"
    canonical_body = False

    def __init__(self, store: ResponseStore) -> None:
        self.store = store

    async def parse(self, body: bytes, ctx: RequestContext) -> ChatRequest:
        data = parse_json_object(body)
        previous_id = data.get("previous_response_id")
        previous = None
        if previous_id is not None:
            if not isinstance(previous_id, str):
                raise invalid_type("previous_response_id", "a string", previous_id)
            if ctx.zero_data_retention:
                raise InvalidRequest(
                    "'previous_response_id' cannot be used under zero data retention: interlock stores no "
                    "responses for this project, so there is nothing to continue from. Send the earlier turns "
                    "in 'input' instead.", param="previous_response_id", code="zero_data_retention")
            # Scoped to the caller's project: another project's id reads exactly as an unknown one.
            previous = await self.store.get(previous_id, Owner.of(ctx.principal))
            if previous is None:
                raise InvalidRequest(f"Previous response with id '{previous_id}' not found.",
                                     param="previous_response_id", code="previous_response_not_found")
        out = parse_responses_request(data, previous)
        if ctx.zero_data_retention:
            # Nothing is stored under ZDR. The API defaults ``store`` to true, so a plain SDK call must still
            # work: it is answered with ``store: false``, which says what happened.
            out.meta.store = False
            out.meta.echo["store"] = False
        return cast("ChatRequest", out)  # the canonical request, with meta riding on it (cast once, no copy)

    def render_error(self, err: GatewayError) -> bytes:
        return error_body(err)

    def completion(self, ctx: RequestContext, request: ChatRequest, data: ChatCompletion) -> bytes:
        meta = meta_of(request)
        resp_id = response_id(ctx.id)
        choices = data.get("choices") or ()
        choice: Choice = choices[0] if choices and isinstance(choices[0], dict) else {}
        found = choice.get("message")
        message = found if isinstance(found, dict) else NO_MESSAGE  # (a vendor's answer may hold anything)
        status, incomplete = status_of(choice.get("finish_reason"))
        usage = data.get("usage")
        if not isinstance(usage, dict) and ctx.usage is not None:
            # The pipeline's estimate (the vendor reported none): canonical, typed as a plain dict in core.pricing.
            usage = cast("CanonicalUsage", ctx.usage.to_openai())
        output = output_items(message, resp_id[5:])
        if meta.logprobs:
            attach(output, choice.get("logprobs"))
        body = response_object(resp_id, ctx.requested_model or str(request.get("model")), meta, status, output,
                               responses_usage(usage if isinstance(usage, dict) else None), incomplete=incomplete)
        if meta.store:
            self.store.save_soon(stored(resp_id, ctx, meta, body))
        return orjson.dumps(body)

    def stream_encoder(self, ctx: RequestContext, request: ChatRequest, on_usage: UsageHook) -> ResponsesStreamEncoder:
        # Imported here: responses_stream.py imports this module.
        from interlock.wire.responses_stream import ResponsesStreamEncoder

        return ResponsesStreamEncoder(self, ctx, meta_of(request), request, on_usage)
