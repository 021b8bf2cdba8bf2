"""The Anthropic Messages format in front of any vendor: requests in, and the codec.

Callers written for Anthropic (the official SDKs, Claude Code, tools built on
them) send ``POST /v1/messages``; the pipeline only speaks Chat Completions,
so this module translates both ways. The canonical conventions it relies on
(documented in the README's *Inbound APIs* section) are the ones outbound adapters read:

* thinking blocks travel on the assistant message as ``thinking_blocks`` (the
  Anthropic blocks verbatim, so signatures round-trip byte for byte) plus
  ``reasoning_content`` (their text, for vendors that read only that);
* ``cache_control`` stays on the content part, tool or tool call it marked;
* the thinking budget becomes ``reasoning_effort``; ``top_k`` keeps its name.

Errors name the field the way Anthropic does (``messages.0.content.1.source``)
and are rendered in Anthropic's ``{"type": "error", "error": {...}}`` shape
with the type its HTTP status implies, for every failure on the route.
Answers (whole messages and stream events) are written by ``anthropic_stream``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from interlock.core.codec import UsageHook
from interlock.core.errors import GatewayError, InvalidRequest
from interlock.wire.anthropic_stream import (
    AnthropicStreamEncoder,
    anthropic_error,
    message_id,
    render_message,
)
from interlock.wire.openai_chat import parse_json_object
from interlock.wire.shapes import SCHEMAS, dotted_step

if TYPE_CHECKING:
    from interlock.core.context import RequestContext

#: Thinking budget → reasoning effort: the budget bands Anthropic's docs use for light, normal and deep thinking.
_EFFORT_BANDS = ((4096, "low"), (16384, "medium"))
#: Anthropic's effort levels above "high" have no portable Chat equivalent (the simulator and most vendors
#: stop at "high"), so they ask for the most that is portable.
_OUTPUT_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
_TEXT_DOC_TYPES = ("text", "content")


def _bad(where: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{where}: {message}", param=where)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "object" if isinstance(value, dict) else type(value).__name__


def _require_str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if value is None:
        raise _bad(f"{where}.{key}" if where else key, "Field required")
    if not isinstance(value, str):
        raise _bad(f"{where}.{key}" if where else key, f"Input should be a valid string, got {_type_name(value)}")
    return value


def _check_schema(schema: dict[str, Any], where: str) -> None:
    found = SCHEMAS.problem(schema, where, dotted_step)
    if found is not None:
        raise InvalidRequest(f"{found[0]}: Invalid JSON Schema: {found[1]}", param=found[0], code="invalid_schema")


def _number(data: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(key, f"Input should be a valid number, got {_type_name(value)}")
    if not low <= value <= high:
        raise _bad(key, f"Input should be between {low:g} and {high:g}, got {value}")
    return value


def _with_cache(part: dict[str, Any], block: Mapping[str, Any], where: str) -> dict[str, Any]:
    cache = block.get("cache_control")
    if cache is not None:
        part["cache_control"] = _cache_control(cache, f"{where}.cache_control")
    return part


def _cache_control(cache: Any, where: str) -> dict[str, Any]:
    if not isinstance(cache, dict):
        raise _bad(where, f"Input should be a valid object, got {_type_name(cache)}")
    return cache


# ------------------------------------------------------------------ request in


def parse_messages_request(data: dict[str, Any], *, require_max_tokens: bool = True) -> dict[str, Any]:
    """Translate an Anthropic Messages request into the canonical Chat Completions request."""
    model = _require_str(data, "model", "")
    if not model.strip():
        raise _bad("model", "String should have at least 1 character")
    out: dict[str, Any] = {"model": model}
    messages: list[dict[str, Any]] = []
    system = data.get("system")
    if system is not None:
        messages.append({"role": "system", "content": _system(system)})
    raw = data.get("messages")
    if raw is None:
        raise _bad("messages", "Field required")
    if not isinstance(raw, list):
        raise _bad("messages", f"Input should be a valid list, got {_type_name(raw)}")
    if not raw:
        raise _bad("messages", "at least one message is required")
    for i, message in enumerate(raw):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise _bad(where, f"Input should be a valid object, got {_type_name(message)}")
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise _bad(f"{where}.role", f"Input should be 'user' or 'assistant', got {role!r}")
        content = message.get("content")
        if isinstance(content, str):
            messages.append({"role": role, "content": content})
        elif isinstance(content, list):
            if role == "user":
                _user_turn(content, where, messages)
            else:
                messages.append(_assistant_turn(content, where))
        elif content is None:
            raise _bad(f"{where}.content", "Field required")
        else:
            raise _bad(f"{where}.content", f"Input should be a valid string or list of content blocks, "
                                           f"got {_type_name(content)}")
    cache = data.get("cache_control")
    if cache is not None:
        if not isinstance(cache, dict):
            raise _bad("cache_control", f"Input should be a valid object, got {_type_name(cache)}")
        _mark_last_block(messages, cache)
    out["messages"] = messages

    max_tokens = data.get("max_tokens")
    if max_tokens is None:
        if require_max_tokens:
            raise _bad("max_tokens", "Field required")
    elif isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise _bad("max_tokens", f"Input should be a valid integer, got {_type_name(max_tokens)}")
    elif max_tokens < 1:
        raise _bad("max_tokens", f"Input should be greater than or equal to 1, got {max_tokens}")
    else:
        out["max_completion_tokens"] = max_tokens

    stream = data.get("stream")
    if stream is not None:
        if not isinstance(stream, bool):
            raise _bad("stream", f"Input should be a valid boolean, got {_type_name(stream)}")
        if stream:
            out["stream"] = True
            out["stream_options"] = {"include_usage": True}
    stops = data.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise _bad("stop_sequences", "Input should be a valid list of strings")
        if stops:
            out["stop"] = stops
    temperature = _number(data, "temperature", 0.0, 1.0)
    if temperature is not None:
        out["temperature"] = temperature
    top_p = _number(data, "top_p", 0.0, 1.0)
    if top_p is not None:
        out["top_p"] = top_p
    top_k = data.get("top_k")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
            raise _bad("top_k", "Input should be a non-negative integer")
        out["top_k"] = top_k
    metadata = data.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise _bad("metadata", f"Input should be a valid object, got {_type_name(metadata)}")
        user = metadata.get("user_id")
        if user is not None:
            if not isinstance(user, str):
                raise _bad("metadata.user_id", f"Input should be a valid string, got {_type_name(user)}")
            out["user"] = user
    _tools(data, out)
    _reasoning(data, out, max_tokens if isinstance(max_tokens, int) else None)
    _output_format(data, out)
    return out


def _mark_last_block(messages: list[dict[str, Any]], cache: dict[str, Any]) -> None:
    """Top-level ``cache_control`` marks the last cacheable block: the last part of the last message."""
    last = messages[-1]
    content = last.get("content")
    if isinstance(content, str):
        last["content"] = [{"type": "text", "text": content, "cache_control": cache}]
    elif isinstance(content, list) and content:
        content[-1] = {**content[-1], "cache_control": cache}
    elif last.get("tool_calls"):
        calls = last["tool_calls"]
        calls[-1] = {**calls[-1], "cache_control": cache}


def _system(system: Any) -> str | list[dict[str, Any]]:
    if isinstance(system, str):
        return system
    if not isinstance(system, list):
        raise _bad("system", f"Input should be a valid string or list of text blocks, got {_type_name(system)}")
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(system):
        where = f"system.{i}"
        if not isinstance(block, dict) or block.get("type") != "text":
            raise _bad(f"{where}.type", "Input should be 'text'")
        parts.append(_with_cache({"type": "text", "text": _require_str(block, "text", where)}, block, where))
    if all("cache_control" not in p for p in parts):
        return "\n\n".join(p["text"] for p in parts)
    return parts


def _image_part(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise _bad(f"{where}.source", "Field required")
    kind = source.get("type")
    if kind == "base64":
        media = _require_str(source, "media_type", f"{where}.source")
        url = f"data:{media};base64,{_require_str(source, 'data', f'{where}.source')}"
    elif kind == "url":
        url = _require_str(source, "url", f"{where}.source")
    else:
        raise _bad(f"{where}.source.type", f"Input should be 'base64' or 'url', got {kind!r} (interlock has no "
                                           "Files API: send the image inline or by URL)")
    return _with_cache({"type": "image_url", "image_url": {"url": url}}, block, where)


def _document_parts(block: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise _bad(f"{where}.source", "Field required")
    kind = source.get("type")
    swhere = f"{where}.source"
    title = block.get("title")
    if kind == "base64":
        media = _require_str(source, "media_type", swhere)
        file: dict[str, Any] = {"file_data": f"data:{media};base64,{_require_str(source, 'data', swhere)}"}
        file["filename"] = title if isinstance(title, str) and title else "document.pdf"
        return [_with_cache({"type": "file", "file": file}, block, where)]
    if kind == "url":
        file = {"file_url": _require_str(source, "url", swhere)}
        if isinstance(title, str) and title:
            file["filename"] = title
        return [_with_cache({"type": "file", "file": file}, block, where)]
    if kind == "text":
        return [_with_cache({"type": "text", "text": _require_str(source, "data", swhere)}, block, where)]
    if kind == "content":
        inner = source.get("content")
        if isinstance(inner, str):
            return [_with_cache({"type": "text", "text": inner}, block, where)]
        if not isinstance(inner, list):
            raise _bad(f"{swhere}.content", "Input should be a valid string or list of content blocks")
        return [_content_part(b, f"{swhere}.content.{j}") for j, b in enumerate(inner)]
    raise _bad(f"{swhere}.type", f"Input should be 'base64', 'url', 'text' or 'content', got {kind!r}")


def _content_part(block: Any, where: str) -> dict[str, Any]:
    """A text or image block (what user turns, tool results and documents may hold)."""
    if not isinstance(block, dict):
        raise _bad(where, f"Input should be a valid content block, got {_type_name(block)}")
    kind = block.get("type")
    if kind == "text":
        return _with_cache({"type": "text", "text": _require_str(block, "text", where)}, block, where)
    if kind == "image":
        return _image_part(block, where)
    raise _bad(f"{where}.type", f"Input should be 'text' or 'image', got {kind!r}")


def _user_turn(content: list[Any], where: str, messages: list[dict[str, Any]]) -> None:
    """Tool results become ``tool`` messages (first, as Chat requires after tool calls); the rest one user message."""
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        bwhere = f"{where}.content.{j}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "tool_result":
            messages.append(_tool_result(block, bwhere))
        elif kind == "document":
            parts.extend(_document_parts(block, bwhere))
        elif kind in ("thinking", "redacted_thinking", "tool_use"):
            raise _bad(f"{bwhere}.type", f"'{kind}' blocks are only allowed in assistant messages")
        elif kind in ("text", "image") or not isinstance(block, dict):
            parts.append(_content_part(block, bwhere))
        else:
            raise _bad(f"{bwhere}.type", f"Input tag {kind!r} is not a content block interlock can translate "
                                         "(text, image, document, tool_result)")
    if parts:
        if len(parts) == 1 and parts[0]["type"] == "text" and "cache_control" not in parts[0]:
            messages.append({"role": "user", "content": parts[0]["text"]})
        else:
            messages.append({"role": "user", "content": parts})


def _tool_result(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "tool", "tool_call_id": _require_str(block, "tool_use_id", where)}
    content = block.get("content")
    if content is None:
        body: str | list[dict[str, Any]] = ""
    elif isinstance(content, str):
        body = content
    elif isinstance(content, list):
        body = []
        for k, inner in enumerate(content):
            kind = inner.get("type") if isinstance(inner, dict) else None
            if kind == "document":
                body.extend(_document_parts(inner, f"{where}.content.{k}"))
            else:
                body.append(_content_part(inner, f"{where}.content.{k}"))
    else:
        raise _bad(f"{where}.content", "Input should be a valid string or list of content blocks")
    cache = block.get("cache_control")
    if cache is not None:
        cache = _cache_control(cache, f"{where}.cache_control")
        # The marker belongs to the result's last part, where Chat-shaped messages can carry it.
        if isinstance(body, str):
            body = [{"type": "text", "text": body}]
        if body:
            body[-1] = {**body[-1], "cache_control": cache}
    message["content"] = body
    is_error = block.get("is_error")
    if is_error is True:
        message["is_error"] = True
    return message


def _assistant_turn(content: list[Any], where: str) -> dict[str, Any]:
    texts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        bwhere = f"{where}.content.{j}"
        if not isinstance(block, dict):
            raise _bad(bwhere, f"Input should be a valid content block, got {_type_name(block)}")
        kind = block.get("type")
        if kind == "text":
            texts.append(_with_cache({"type": "text", "text": _require_str(block, "text", bwhere)}, block, bwhere))
        elif kind == "tool_use":
            arguments = block.get("input", {})
            if not isinstance(arguments, dict):
                raise _bad(f"{bwhere}.input", f"Input should be a valid object, got {_type_name(arguments)}")
            call = {"id": _require_str(block, "id", bwhere), "type": "function",
                    "function": {"name": _require_str(block, "name", bwhere),
                                 "arguments": orjson.dumps(arguments).decode()}}
            calls.append(_with_cache(call, block, bwhere))
        elif kind == "thinking":
            _require_str(block, "thinking", bwhere)
            _require_str(block, "signature", bwhere)
            thinking.append(dict(block))
        elif kind == "redacted_thinking":
            _require_str(block, "data", bwhere)
            thinking.append(dict(block))
        else:
            raise _bad(f"{bwhere}.type", f"Input tag {kind!r} is not a content block interlock can translate in an "
                                         "assistant message (text, tool_use, thinking, redacted_thinking)")
    message: dict[str, Any] = {"role": "assistant"}
    if not texts:
        message["content"] = None
    elif len(texts) == 1 and "cache_control" not in texts[0]:
        message["content"] = texts[0]["text"]
    else:
        message["content"] = texts
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["reasoning_content"] = "".join(b.get("thinking", "") for b in thinking)
        message["thinking_blocks"] = thinking
    return message


def _tools(data: Mapping[str, Any], out: dict[str, Any]) -> None:
    tools = data.get("tools")
    names: set[str] = set()
    if tools is not None:
        if not isinstance(tools, list):
            raise _bad("tools", f"Input should be a valid list, got {_type_name(tools)}")
        converted: list[dict[str, Any]] = []
        for i, tool in enumerate(tools):
            where = f"tools.{i}"
            if not isinstance(tool, dict):
                raise _bad(where, f"Input should be a valid object, got {_type_name(tool)}")
            name = _require_str(tool, "name", where)
            names.add(name)
            if tool.get("type") not in (None, "custom"):
                # A server tool (web search, code execution...): only an Anthropic vendor can run it.
                converted.append(dict(tool))
                continue
            schema = tool.get("input_schema")
            if not isinstance(schema, dict):
                raise _bad(f"{where}.input_schema", "Field required (a JSON Schema object)")
            _check_schema(schema, f"{where}.input_schema")
            function: dict[str, Any] = {"name": name, "parameters": schema}
            description = tool.get("description")
            if description is not None:
                if not isinstance(description, str):
                    raise _bad(f"{where}.description", f"Input should be a valid string, got {_type_name(description)}")
                function["description"] = description
            strict = tool.get("strict")
            if strict is not None:
                if not isinstance(strict, bool):
                    raise _bad(f"{where}.strict", f"Input should be a valid boolean, got {_type_name(strict)}")
                function["strict"] = strict
            converted.append(_with_cache({"type": "function", "function": function}, tool, where))
        if converted:
            out["tools"] = converted
    choice = data.get("tool_choice")
    if choice is None:
        return
    if not isinstance(choice, dict):
        raise _bad("tool_choice", f"Input should be a valid object, got {_type_name(choice)}")
    kind = choice.get("type")
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool":
        name = _require_str(choice, "name", "tool_choice")
        if name not in names:
            raise _bad("tool_choice.name", f"tool '{name}' was not found in tools")
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        raise _bad("tool_choice.type", f"Input tag {kind!r} is not one of 'auto', 'any', 'tool' or 'none'")
    if kind in ("any", "tool") and not names:
        raise _bad("tool_choice", f"tools must be provided when tool_choice is '{kind}'")
    disable = choice.get("disable_parallel_tool_use")
    if disable is not None:
        if not isinstance(disable, bool):
            raise _bad("tool_choice.disable_parallel_tool_use", "Input should be a valid boolean")
        if kind != "none":
            out["parallel_tool_calls"] = not disable


def effort_for_budget(budget: int) -> str:
    for limit, effort in _EFFORT_BANDS:
        if budget < limit:
            return effort
    return "high"


def _reasoning(data: Mapping[str, Any], out: dict[str, Any], max_tokens: int | None) -> None:
    thinking = data.get("thinking")
    if thinking is not None:
        if not isinstance(thinking, dict):
            raise _bad("thinking", f"Input should be a valid object, got {_type_name(thinking)}")
        kind = thinking.get("type")
        if kind == "enabled":
            budget = thinking.get("budget_tokens")
            if isinstance(budget, bool) or not isinstance(budget, int):
                raise _bad("thinking.budget_tokens", "Field required (an integer)")
            if budget < 1024:
                raise _bad("thinking.budget_tokens", "Input should be greater than or equal to 1024")
            if max_tokens is not None and budget >= max_tokens:
                raise _bad("thinking.budget_tokens", "`max_tokens` must be greater than `thinking.budget_tokens`")
            out["reasoning_effort"] = effort_for_budget(budget)
        elif kind not in ("disabled", "adaptive", "between_tools"):
            # The other modes leave the choice to the model's default: an OpenAI-style vendor rejects
            # 'none' on most reasoning models, so "disabled" is not sent as such.
            raise _bad("thinking.type", f"Input tag {kind!r} is not one of 'enabled', 'disabled', 'adaptive' or "
                                        "'between_tools'")
    config = data.get("output_config")
    if isinstance(config, dict) and config.get("effort") is not None:
        effort = config["effort"]
        if not isinstance(effort, str) or effort not in _OUTPUT_EFFORTS:
            raise _bad("output_config.effort", f"Input should be 'low', 'medium', 'high', 'xhigh' or 'max', "
                                               f"got {effort!r}")
        out["reasoning_effort"] = _OUTPUT_EFFORTS[effort]


def _output_format(data: Mapping[str, Any], out: dict[str, Any]) -> None:
    fmt = data.get("output_format")
    where = "output_format"
    config = data.get("output_config")
    if config is not None and not isinstance(config, dict):
        raise _bad("output_config", f"Input should be a valid object, got {_type_name(config)}")
    if fmt is None and config is not None and config.get("format") is not None:
        fmt, where = config["format"], "output_config.format"
    if fmt is None:
        return
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise _bad(f"{where}.type", "Input should be 'json_schema'")
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        raise _bad(f"{where}.schema", "Field required (a JSON Schema object)")
    _check_schema(schema, f"{where}.schema")
    out["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema,
                                                                     "strict": True}}


def error_body(err: GatewayError, request_id: str | None = None) -> bytes:
    """The route's error renderer: every failure on /v1/messages in Anthropic's shape.

    ``request_id`` is the id the answer's ``x-interlock-request-id`` header carries;
    without one (a refusal before any request context exists) the body says ``null``.
    """
    return orjson.dumps(anthropic_error(err, request_id))


class AnthropicMessagesCodec:
    """``POST /v1/messages``: Anthropic Messages in, Anthropic Messages out, any vendor behind."""

    name = "anthropic.messages"
    stream_content_type = "text/event-stream"

    async def parse(self, body: bytes, ctx: object) -> dict[str, Any]:
        return parse_messages_request(parse_json_object(body))

    def render_error(self, err: GatewayError) -> bytes:
        return error_body(err)

    def completion(self, ctx: RequestContext, request: dict[str, Any], data: dict[str, Any]) -> bytes:
        usage = data.get("usage")
        if not isinstance(usage, dict) and ctx.usage is not None:
            # The vendor reported none: show the pipeline's estimate (already priced and marked estimated).
            usage = ctx.usage.to_openai()
        model = ctx.requested_model or str(request.get("model"))
        return orjson.dumps(render_message(message_id(ctx.id), model, request, data,
                                           usage if isinstance(usage, dict) else None))

    def stream_encoder(self, ctx: RequestContext, request: dict[str, Any], on_usage: UsageHook) -> AnthropicStreamEncoder:
        return AnthropicStreamEncoder(ctx, request, on_usage)
