"""The OpenAI Responses API in front of any vendor: input items → canonical request, completion → response.

``client.responses.create(...)`` callers send items (messages, function calls
and their outputs by ``call_id``, reasoning) plus ``instructions``; the
pipeline speaks Chat Completions, so this module translates both ways and keeps
what only the Responses API has (ids, ``previous_response_id``, ``store``,
``metadata``) out of the canonical request: it rides on :class:`ResponsesRequest`,
a dict subclass that serialises like the plain canonical dict.

A reasoning item maps to canonical thinking: its text to ``reasoning_content``
and its ``encrypted_content`` to the thinking block's signature, so Anthropic
thinking round-trips through ``previous_response_id`` or a replayed item.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from interlock.core.codec import UsageHook
from interlock.core.errors import GatewayError, InvalidRequest
from interlock.core.responses import Owner, ResponseStore, StoredResponse
from interlock.wire.openai_chat import _invalid, check_schema, copy_described, error_body, parse_json_object
from interlock.wire.responses_logprobs import attach, include_field, wants_logprobs
from interlock.wire.responses_output import (
    ResponsesMeta,
    meta_of,
    output_items,
    response_id,
    response_object,
    responses_usage,
    status_of,
)

if TYPE_CHECKING:
    from interlock.core.context import RequestContext
    from interlock.wire.responses_stream import ResponsesStreamEncoder

_ROLES = ("user", "system", "developer", "assistant")
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
_PASS_STRINGS = ("user", "safety_identifier", "prompt_cache_key", "service_tier")
_UNSUPPORTED = {
    "background": "background responses are not supported by interlock; poll-free streaming is",
    "conversation": "conversations are not supported by interlock; chain responses with previous_response_id",
    "prompt": "stored prompt templates are not supported by interlock; send instructions and input",
}


class ResponsesRequest(dict[str, Any]):
    """The canonical request, carrying the Responses-only facts in ``meta`` (never sent to a vendor)."""

    meta: ResponsesMeta


def _missing(param: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def _bad_value(param: str, value: Any, allowed: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid value for '{param}': {value!r}. Supported values are: {allowed}.", param=param,
                          code="invalid_value")


# ------------------------------------------------------------------ request in


def parse_responses_request(data: dict[str, Any], previous: StoredResponse | None = None) -> ResponsesRequest:
    model = data.get("model")
    if model is None:
        raise _missing("model")
    if not isinstance(model, str) or not model.strip():
        raise _invalid("model", "a non-empty string", model)
    raw_input = data.get("input")
    if raw_input is None and previous is None:
        raise _missing("input")
    items: list[Any] = [] if raw_input is None else (
        [{"type": "message", "role": "user", "content": raw_input}] if isinstance(raw_input, str) else raw_input)
    if not isinstance(items, list):
        raise _invalid("input", "a string or an array of input items", raw_input)
    turn = input_messages(items)

    out = ResponsesRequest(model=model)
    messages: list[dict[str, Any]] = []
    instructions = data.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise _invalid("instructions", "a string", instructions)
        messages.append({"role": "system", "content": instructions})
    history = previous.conversation if previous is not None else []
    messages.extend(history)
    messages.extend(turn)
    if not messages:
        raise InvalidRequest("'input' must contain at least one item.", param="input", code="empty_array")
    out["messages"] = messages
    echo = dict(_ECHO_DEFAULTS)
    echo["instructions"] = instructions
    # Only the fields present are looked at: a request names a handful of the ~20 optional ones.
    for key in data.keys() & _FIELDS.keys():
        value = data[key]
        if value is not None:
            _FIELDS[key](key, value, out, echo)
    if "tools" in data or "tool_choice" in data:
        _tools(data, out, echo)
    if data.get("text") is not None:
        _text(data["text"], out, echo)
    if data.get("reasoning") is not None:
        _reasoning(data["reasoning"], out, echo)
    out.meta = ResponsesMeta(input_items=items, history=history, turn=turn, echo=echo, store=echo["store"],
                             previous_response_id=previous.id if previous is not None else None,
                             created_at=int(time.time()), logprobs=wants_logprobs(data))
    return out


def _stream(key: str, value: Any, out: dict[str, Any], echo: dict[str, Any]) -> None:
    if not isinstance(value, bool):
        raise _invalid(key, "a boolean", value)
    if value:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}


def _max_output_tokens(key: str, value: Any, out: dict[str, Any], echo: dict[str, Any]) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(key, "an integer", value)
    if value < 1:
        raise InvalidRequest(f"Invalid '{key}': integer below minimum value. Expected a value >= 1, but got {value}.",
                             param=key, code="integer_below_min_value")
    out["max_completion_tokens"] = echo[key] = value


def _number(key: str, value: Any, out: dict[str, Any], echo: dict[str, Any]) -> None:
    low, high = _RANGES[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(key, "a number", value)
    if not low <= value <= high:
        raise InvalidRequest(f"Invalid '{key}': expected a value between {low:g} and {high:g}, but got {value}.",
                             param=key, code="number_out_of_range")
    out[key] = echo[key] = value


def _boolean(key: str, value: Any, out: dict[str, Any], echo: dict[str, Any]) -> None:
    if not isinstance(value, bool):
        raise _invalid(key, "a boolean", value)
    echo[key] = value
    if key == "parallel_tool_calls":
        out[key] = value


def _string(key: str, value: Any, out: dict[str, Any], echo: dict[str, Any]) -> None:
    if not isinstance(value, str):
        raise _invalid(key, "a string", value)
    out[key] = echo[key] = value


def _top_logprobs(key: str, value: Any, out: dict[str, Any], echo: dict[str, Any]) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 20:
        raise InvalidRequest("Invalid 'top_logprobs': expected an integer between 0 and 20.", param=key)
    out["logprobs"] = True
    out[key] = echo[key] = value


def _metadata(key: str, value: Any, out: dict[str, Any], echo: dict[str, Any]) -> None:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _invalid(key, "an object of string values", value)
    if len(value) > 16:
        raise InvalidRequest("Invalid 'metadata': at most 16 keys are allowed.", param=key)
    echo[key] = value


def _truncation(key: str, value: Any, out: dict[str, Any], echo: dict[str, Any]) -> None:
    if value not in ("auto", "disabled"):
        raise _bad_value(key, value, "'auto' and 'disabled'")
    echo[key] = value


def _unsupported(key: str, value: Any, out: dict[str, Any], echo: dict[str, Any]) -> None:
    if value is not False:
        raise InvalidRequest(f"Unsupported parameter: '{key}': {_UNSUPPORTED[key]}.", param=key,
                             code="unsupported_parameter")


_Field = Callable[[str, Any, dict[str, Any], dict[str, Any]], None]
_RANGES = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0)}
_FIELDS: dict[str, _Field] = {
    "stream": _stream, "max_output_tokens": _max_output_tokens, "temperature": _number, "top_p": _number,
    "parallel_tool_calls": _boolean, "store": _boolean, "top_logprobs": _top_logprobs, "metadata": _metadata,
    "truncation": _truncation, "include": include_field, **dict.fromkeys(_PASS_STRINGS, _string), **dict.fromkeys(_UNSUPPORTED, _unsupported),
}
#: What a response echoes when the request left a field out (shared, never mutated: echo values are replaced).
_ECHO_DEFAULTS: dict[str, Any] = {
    "instructions": None, "max_output_tokens": None, "temperature": 1.0, "top_p": 1.0, "parallel_tool_calls": True,
    "tools": (), "tool_choice": "auto", "text": {"format": {"type": "text"}},
    "reasoning": {"effort": None, "summary": None}, "metadata": {}, "truncation": "disabled", "store": True,
}


def _part(part: Any, where: str, assistant: bool) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise _invalid(where, "an object", part)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        text = part.get("text")
        if not isinstance(text, str):
            raise _invalid(f"{where}.text", "a string", text)
        return {"type": "text", "text": text}
    if kind == "refusal" and assistant:
        refusal = part.get("refusal")
        if not isinstance(refusal, str):
            raise _invalid(f"{where}.refusal", "a string", refusal)
        return {"type": "refusal", "refusal": refusal}
    if kind == "input_image" and not assistant:
        url = part.get("image_url")
        if not isinstance(url, str):
            if part.get("file_id") is not None:
                raise InvalidRequest(f"Unsupported value for '{where}.file_id': interlock has no Files API; send the "
                                     "image as image_url (a URL or a data URL).", param=f"{where}.file_id",
                                     code="unsupported_value")
            raise _missing(f"{where}.image_url")
        image: dict[str, Any] = {"url": url}
        detail = part.get("detail")
        if detail is not None:
            if not isinstance(detail, str):
                raise _invalid(f"{where}.detail", "a string", detail)
            image["detail"] = detail
        return {"type": "image_url", "image_url": image}
    if kind == "input_file" and not assistant:
        file: dict[str, Any] = {}
        for key in ("file_data", "file_id", "file_url", "filename"):
            value = part.get(key)
            if value is not None:
                if not isinstance(value, str):
                    raise _invalid(f"{where}.{key}", "a string", value)
                file[key] = value
        if not any(k in file for k in ("file_data", "file_id", "file_url")):
            raise _missing(f"{where}.file_data")
        return {"type": "file", "file": file}
    if kind == "input_audio" and not assistant:
        audio = part.get("input_audio")
        if not isinstance(audio, dict):
            raise _missing(f"{where}.input_audio")
        for key in ("data", "format"):
            if not isinstance(audio.get(key), str):
                raise _invalid(f"{where}.input_audio.{key}", "a string", audio.get(key))
        return {"type": "input_audio", "input_audio": audio}
    allowed = "'output_text' and 'refusal'" if assistant else "'input_text', 'input_image', 'input_file' and 'input_audio'"
    raise _bad_value(f"{where}.type", kind, allowed)


def _content(content: Any, where: str, assistant: bool) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _invalid(where, "a string or an array of content parts", content)
    return [_part(p, f"{where}[{j}]", assistant) for j, p in enumerate(content)]


def input_messages(items: list[Any]) -> list[dict[str, Any]]:
    """Input items → canonical messages.

    An assistant turn is several items (reasoning, message, function calls) but
    one Chat message: function calls join the assistant message before them, and
    reasoning waits for the next assistant message it belongs to.
    """
    messages: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []  # thinking blocks from reasoning items, for the next assistant message

    def assistant(start_new: bool) -> dict[str, Any]:
        last = messages[-1] if messages else None
        if start_new or last is None or last.get("role") != "assistant":
            last = {"role": "assistant", "content": None}
            messages.append(last)
        if pending:
            last.setdefault("thinking_blocks", []).extend(pending)
            last["reasoning_content"] = "".join(b.get("thinking", "") for b in last["thinking_blocks"])
            pending.clear()
        return last

    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise _invalid(where, "an object", item)
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role not in _ROLES:
                raise _bad_value(f"{where}.role", role, "'user', 'system', 'developer' and 'assistant'")
            if "content" not in item:
                raise _missing(f"{where}.content")
            content = _content(item["content"], f"{where}.content", role == "assistant")
            if role == "assistant":
                message = assistant(start_new=True)
                if isinstance(content, list) and all(p["type"] == "text" for p in content):
                    content = "".join(p["text"] for p in content)
                message["content"] = content
            else:
                messages.append({"role": role, "content": content})
        elif kind == "function_call":
            call_id, name, arguments = item.get("call_id"), item.get("name"), item.get("arguments")
            for key, value in (("call_id", call_id), ("name", name), ("arguments", arguments)):
                if not isinstance(value, str):
                    raise _missing(f"{where}.{key}") if value is None else _invalid(f"{where}.{key}", "a string", value)
            message = assistant(start_new=False)
            message.setdefault("tool_calls", []).append(
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}})
        elif kind == "function_call_output":
            call_id, output = item.get("call_id"), item.get("output")
            if not isinstance(call_id, str):
                raise _missing(f"{where}.call_id")
            if output is None:
                raise _missing(f"{where}.output")
            messages.append({"role": "tool", "tool_call_id": call_id,
                             "content": _content(output, f"{where}.output", False)})
        elif kind == "reasoning":
            pending.extend(_reasoning_item(item, where))
        elif kind == "item_reference":
            raise InvalidRequest(f"Unsupported value for '{where}.type': 'item_reference'; send the item itself or "
                                 "use previous_response_id.", param=f"{where}.type", code="unsupported_value")
        else:
            raise _bad_value(f"{where}.type", kind, "'message', 'function_call', 'function_call_output' and "
                                                    "'reasoning'")
    return messages


def _reasoning_item(item: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    parts = item.get("content") or item.get("summary") or []
    if not isinstance(parts, list):
        raise _invalid(f"{where}.content", "an array", parts)
    text = "".join(p.get("text", "") for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
    encrypted = item.get("encrypted_content")
    if encrypted is not None and not isinstance(encrypted, str):
        raise _invalid(f"{where}.encrypted_content", "a string", encrypted)
    if text:
        return [{"type": "thinking", "thinking": text, "signature": encrypted or ""}]
    return [{"type": "redacted_thinking", "data": encrypted}] if encrypted else []


def _tools(data: Mapping[str, Any], out: dict[str, Any], echo: dict[str, Any]) -> None:
    tools = data.get("tools")
    names: set[str] = set()
    if tools is not None:
        if not isinstance(tools, list):
            raise _invalid("tools", "an array", tools)
        converted = []
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise _invalid(f"tools[{i}]", "an object", tool)
            if tool.get("type") != "function":
                raise InvalidRequest(f"Unsupported value for 'tools[{i}].type': {tool.get('type')!r}. interlock "
                                     "runs function tools; hosted tools run only at OpenAI.",
                                     param=f"tools[{i}].type", code="unsupported_value")
            name = tool.get("name")
            if not isinstance(name, str) or not name:
                raise _missing(f"tools[{i}].name")
            params = tool.get("parameters")
            if params is not None:
                if not isinstance(params, dict):
                    raise _invalid(f"tools[{i}].parameters", "an object (a JSON Schema)", params)
                check_schema(params, f"tools[{i}].parameters")
            function: dict[str, Any] = {"name": name, "parameters": params or {"type": "object", "properties": {}}}
            copy_described(tool, function, f"tools[{i}]")
            names.add(name)
            converted.append({"type": "function", "function": function})
        if converted:
            out["tools"] = converted
    # FunctionTool requires strict and parameters (both nullable): echoed null when the request left them out.
    echo["tools"] = [{"strict": None, "parameters": None, **t} for t in tools] if tools else []
    choice = data.get("tool_choice")
    echo["tool_choice"] = choice if choice is not None else "auto"
    if choice is None:
        return
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise _bad_value("tool_choice", choice, "'none', 'auto' and 'required', or a function")
        out["tool_choice"] = choice
    elif isinstance(choice, dict) and choice.get("type") == "function":
        name = choice.get("name")
        if not isinstance(name, str):
            raise _missing("tool_choice.name")
        if name not in names:
            raise InvalidRequest(f"Invalid value for 'tool_choice.name': no function named '{name}' is in 'tools'.",
                                 param="tool_choice.name", code="invalid_value")
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        raise _bad_value("tool_choice", choice, "'none', 'auto', 'required' and {'type': 'function', 'name': ...}")


def _text(text: Any, out: dict[str, Any], echo: dict[str, Any]) -> None:
    if not isinstance(text, dict):
        raise _invalid("text", "an object", text)
    echo["text"] = text
    verbosity = text.get("verbosity")
    if verbosity is not None:
        if verbosity not in ("low", "medium", "high"):
            raise _bad_value("text.verbosity", verbosity, "'low', 'medium' and 'high'")
        out["verbosity"] = verbosity
    fmt = text.get("format")
    if fmt is None:
        return
    if not isinstance(fmt, dict):
        raise _invalid("text.format", "an object", fmt)
    kind = fmt.get("type")
    if kind == "json_object":
        out["response_format"] = {"type": "json_object"}
    elif kind == "json_schema":
        name, schema = fmt.get("name"), fmt.get("schema")
        if not isinstance(name, str) or not name:
            raise _missing("text.format.name")
        if not isinstance(schema, dict):
            raise _missing("text.format.schema")
        check_schema(schema, "text.format.schema")
        spec: dict[str, Any] = {"name": name, "schema": schema}
        copy_described(fmt, spec, "text.format")
        out["response_format"] = {"type": "json_schema", "json_schema": spec}
    elif kind != "text":
        raise _bad_value("text.format.type", kind, "'text', 'json_object' and 'json_schema'")


def _reasoning(reasoning: Any, out: dict[str, Any], echo: dict[str, Any]) -> None:
    if not isinstance(reasoning, dict):
        raise _invalid("reasoning", "an object", reasoning)
    effort = reasoning.get("effort")
    if effort is not None:
        if effort not in _EFFORTS:
            raise _bad_value("reasoning.effort", effort, "'none', 'minimal', 'low', 'medium', 'high' and 'xhigh'")
        out["reasoning_effort"] = effort
    echo["reasoning"] = {"effort": effort, "summary": reasoning.get("summary")}


# ------------------------------------------------------------------ answers out


def assistant_message(output: list[dict[str, Any]]) -> dict[str, Any]:
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

    def __init__(self, store: ResponseStore) -> None:
        self.store = store

    async def parse(self, body: bytes, ctx: RequestContext) -> dict[str, Any]:
        data = parse_json_object(body)
        previous_id = data.get("previous_response_id")
        previous = None
        if previous_id is not None:
            if not isinstance(previous_id, str):
                raise _invalid("previous_response_id", "a string", previous_id)
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
        return out

    def render_error(self, err: GatewayError) -> bytes:
        return error_body(err)

    def completion(self, ctx: RequestContext, request: dict[str, Any], data: dict[str, Any]) -> bytes:
        meta = meta_of(request)
        resp_id = response_id(ctx.id)
        choices = data.get("choices") or ()
        choice = choices[0] if choices and isinstance(choices[0], dict) else {}
        message = choice.get("message")
        message = message if isinstance(message, dict) else {}
        status, incomplete = status_of(choice.get("finish_reason"))
        usage = data.get("usage")
        if not isinstance(usage, dict) and ctx.usage is not None:
            usage = ctx.usage.to_openai()  # the pipeline's estimate: the vendor reported none
        output = output_items(message, resp_id[5:])
        if meta.logprobs:
            attach(output, choice.get("logprobs"))
        body = response_object(resp_id, ctx.requested_model or str(request.get("model")), meta, status, output,
                               responses_usage(usage if isinstance(usage, dict) else None), incomplete=incomplete)
        if meta.store:
            self.store.save_soon(stored(resp_id, ctx, meta, body))
        return orjson.dumps(body)

    def stream_encoder(self, ctx: RequestContext, request: dict[str, Any], on_usage: UsageHook) -> ResponsesStreamEncoder:
        # Imported here: responses_stream.py imports this module.
        from interlock.wire.responses_stream import ResponsesStreamEncoder

        return ResponsesStreamEncoder(self, ctx, meta_of(request), request, on_usage)
