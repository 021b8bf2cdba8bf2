"""The Anthropic Messages format in front of any vendor: the request's fields, and the codec.

Callers written for Anthropic (the official SDKs, Claude Code, tools built on
them) send ``POST /v1/messages``; the pipeline only speaks Chat Completions,
so this module translates both ways. The canonical conventions it relies on
(documented in the README's *Inbound APIs* section) are the ones outbound adapters read:

* thinking blocks travel on the assistant message as ``thinking_blocks`` (the
  Anthropic blocks verbatim, so signatures round-trip byte for byte) plus
  ``reasoning_content`` (their text, for vendors that read only that);
* ``cache_control`` stays on the content part, tool or tool call it marked;
* the thinking budget becomes ``reasoning_effort``; ``top_k`` keeps its name.

``system`` and ``messages`` are translated by ``anthropic_content``; each
other field has its translator here. Errors name the field the way Anthropic
does (``messages.0.content.1.source``) and are rendered in Anthropic's ``{"type": "error", "error": {...}}`` shape
with the type its HTTP status implies, for every failure on the route.
Answers (whole messages and stream events) are written by ``anthropic_stream``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import cast

import orjson

from interlock.core.canonical import (
    CanonicalUsage,
    ChatCompletion,
    ChatRequest,
    FunctionDefinition,
    JsonSchema,
    ToolDefinition,
)
from interlock.core.codec import UsageHook
from interlock.core.context import RequestContext
from interlock.core.errors import GatewayError, InvalidRequest
from interlock.wire.anthropic_content import bad, canonical_messages, require_str, type_name, with_cache
from interlock.wire.anthropic_stream import (
    AnthropicStreamEncoder,
    anthropic_error,
    message_id,
    render_message,
)
from interlock.wire.chat_validation import parse_json_object
from interlock.wire.shapes import SCHEMAS, dotted_step

#: Thinking budget → reasoning effort: the budget bands Anthropic's docs use for light, normal and deep thinking.
_EFFORT_BANDS = ((4096, "low"), (16384, "medium"))
#: Anthropic's effort levels above "high" have no portable Chat equivalent (the simulator and most vendors
#: stop at "high"), so they ask for the most that is portable.
_OUTPUT_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


def _check_schema(schema: JsonSchema, where: str) -> None:
    found = SCHEMAS.problem(schema, where, dotted_step)
    if found is not None:
        raise InvalidRequest(f"{found[0]}: Invalid JSON Schema: {found[1]}", param=found[0], code="invalid_schema")


def _number(key: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad(key, f"Input should be a valid number, got {type_name(value)}")
    if not low <= value <= high:
        raise bad(key, f"Input should be between {low:g} and {high:g}, got {value}")
    return value


# ------------------------------------------------------------------ request in


def parse_messages_request(data: Mapping[str, object], *, require_max_tokens: bool = True) -> ChatRequest:
    """Translate an Anthropic Messages request into the canonical Chat Completions request.

    Each field has its translator; they run in a fixed order, so the first bad field is the one reported.
    """
    model = require_str(data, "model", "")
    if not model.strip():
        raise bad("model", "String should have at least 1 character")
    out: ChatRequest = {"model": model, "messages": canonical_messages(data)}
    if require_max_tokens and data.get("max_tokens") is None:
        raise bad("max_tokens", "Field required")
    for key, translate in _FIELDS:
        value = data.get(key)
        if value is not None:
            translate(value, out)
    _tools(data, out)
    _reasoning(data, out)
    _output_format(data, out)
    return out


def _max_tokens(value: object, out: ChatRequest) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad("max_tokens", f"Input should be a valid integer, got {type_name(value)}")
    if value < 1:
        raise bad("max_tokens", f"Input should be greater than or equal to 1, got {value}")
    out["max_completion_tokens"] = value


def _stream(value: object, out: ChatRequest) -> None:
    if not isinstance(value, bool):
        raise bad("stream", f"Input should be a valid boolean, got {type_name(value)}")
    if value:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}


def _stop_sequences(value: object, out: ChatRequest) -> None:
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise bad("stop_sequences", "Input should be a valid list of strings")
    if value:
        out["stop"] = value


def _temperature(value: object, out: ChatRequest) -> None:
    out["temperature"] = _number("temperature", value, 0.0, 1.0)


def _top_p(value: object, out: ChatRequest) -> None:
    out["top_p"] = _number("top_p", value, 0.0, 1.0)


def _top_k(value: object, out: ChatRequest) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad("top_k", "Input should be a non-negative integer")
    out["top_k"] = value


def _metadata(value: object, out: ChatRequest) -> None:
    if not isinstance(value, dict):
        raise bad("metadata", f"Input should be a valid object, got {type_name(value)}")
    user = value.get("user_id")
    if user is not None:
        if not isinstance(user, str):
            raise bad("metadata.user_id", f"Input should be a valid string, got {type_name(user)}")
        out["user"] = user


#: The fields that translate one to one, in the order they are checked (``max_tokens`` first: thinking reads it).
_FIELDS: tuple[tuple[str, Callable[[object, ChatRequest], None]], ...] = (
    ("max_tokens", _max_tokens), ("stream", _stream), ("stop_sequences", _stop_sequences),
    ("temperature", _temperature), ("top_p", _top_p), ("top_k", _top_k), ("metadata", _metadata),
)


# ------------------------------------------------------------------ messages


# ------------------------------------------------------------------ tools, thinking, output format


def _tools(data: Mapping[str, object], out: ChatRequest) -> None:
    tools = data.get("tools")
    names: set[str] = set()
    if tools is not None:
        if not isinstance(tools, list):
            raise bad("tools", f"Input should be a valid list, got {type_name(tools)}")
        converted = [_tool(tool, f"tools.{i}", names) for i, tool in enumerate(tools)]
        if converted:
            out["tools"] = converted
    choice = data.get("tool_choice")
    if choice is not None:
        _tool_choice(choice, names, out)


def _tool(tool: object, where: str, names: set[str]) -> ToolDefinition:
    if not isinstance(tool, dict):
        raise bad(where, f"Input should be a valid object, got {type_name(tool)}")
    name = require_str(tool, "name", where)
    names.add(name)
    if tool.get("type") not in (None, "custom"):
        # A server tool (web search, code execution...): only an Anthropic vendor can run it.
        return cast("ToolDefinition", dict(tool))  # the caller's tool, verbatim: its fields are Anthropic's
    schema = tool.get("input_schema")
    if not isinstance(schema, dict):
        raise bad(f"{where}.input_schema", "Field required (a JSON Schema object)")
    _check_schema(schema, f"{where}.input_schema")
    function: FunctionDefinition = {"name": name, "parameters": schema}
    description = tool.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise bad(f"{where}.description", f"Input should be a valid string, got {type_name(description)}")
        function["description"] = description
    strict = tool.get("strict")
    if strict is not None:
        if not isinstance(strict, bool):
            raise bad(f"{where}.strict", f"Input should be a valid boolean, got {type_name(strict)}")
        function["strict"] = strict
    definition: ToolDefinition = {"type": "function", "function": function}
    return with_cache(definition, tool, where)


def _tool_choice(choice: object, names: set[str], out: ChatRequest) -> None:
    if not isinstance(choice, dict):
        raise bad("tool_choice", f"Input should be a valid object, got {type_name(choice)}")
    kind = choice.get("type")
    if kind == "tool":
        name = require_str(choice, "name", "tool_choice")
        if name not in names:
            raise bad("tool_choice.name", f"tool '{name}' was not found in tools")
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    elif isinstance(kind, str) and kind in _TOOL_CHOICES:
        out["tool_choice"] = _TOOL_CHOICES[kind]
    else:
        raise bad("tool_choice.type", f"Input tag {kind!r} is not one of 'auto', 'any', 'tool' or 'none'")
    if kind in ("any", "tool") and not names:
        raise bad("tool_choice", f"tools must be provided when tool_choice is '{kind}'")
    disable = choice.get("disable_parallel_tool_use")
    if disable is not None:
        if not isinstance(disable, bool):
            raise bad("tool_choice.disable_parallel_tool_use", "Input should be a valid boolean")
        if kind != "none":
            out["parallel_tool_calls"] = not disable


def effort_for_budget(budget: int) -> str:
    for limit, effort in _EFFORT_BANDS:
        if budget < limit:
            return effort
    return "high"


def _reasoning(data: Mapping[str, object], out: ChatRequest) -> None:
    thinking = data.get("thinking")
    if thinking is not None:
        _thinking(thinking, out)
    config = data.get("output_config")
    if isinstance(config, dict) and config.get("effort") is not None:
        effort = config["effort"]
        if not isinstance(effort, str) or effort not in _OUTPUT_EFFORTS:
            raise bad("output_config.effort", f"Input should be 'low', 'medium', 'high', 'xhigh' or 'max', "
                                              f"got {effort!r}")
        out["reasoning_effort"] = _OUTPUT_EFFORTS[effort]


def _thinking(thinking: object, out: ChatRequest) -> None:
    if not isinstance(thinking, dict):
        raise bad("thinking", f"Input should be a valid object, got {type_name(thinking)}")
    kind = thinking.get("type")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int):
            raise bad("thinking.budget_tokens", "Field required (an integer)")
        if budget < 1024:
            raise bad("thinking.budget_tokens", "Input should be greater than or equal to 1024")
        max_tokens = out.get("max_completion_tokens")
        if max_tokens is not None and budget >= max_tokens:
            raise bad("thinking.budget_tokens", "`max_tokens` must be greater than `thinking.budget_tokens`")
        out["reasoning_effort"] = effort_for_budget(budget)
    elif kind not in ("disabled", "adaptive", "between_tools"):
        # The other modes leave the choice to the model's default: an OpenAI-style vendor rejects
        # 'none' on most reasoning models, so "disabled" is not sent as such.
        raise bad("thinking.type", f"Input tag {kind!r} is not one of 'enabled', 'disabled', 'adaptive' or "
                                   "'between_tools'")


def _output_format(data: Mapping[str, object], out: ChatRequest) -> None:
    fmt = data.get("output_format")
    where = "output_format"
    config = data.get("output_config")
    if config is not None and not isinstance(config, dict):
        raise bad("output_config", f"Input should be a valid object, got {type_name(config)}")
    if fmt is None and config is not None and config.get("format") is not None:
        fmt, where = config["format"], "output_config.format"
    if fmt is None:
        return
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise bad(f"{where}.type", "Input should be 'json_schema'")
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        raise bad(f"{where}.schema", "Field required (a JSON Schema object)")
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
    canonical_body = False

    async def parse(self, body: bytes, ctx: object) -> ChatRequest:
        return parse_messages_request(parse_json_object(body))

    def render_error(self, err: GatewayError) -> bytes:
        return error_body(err)

    def completion(self, ctx: RequestContext, request: ChatRequest, data: ChatCompletion) -> bytes:
        usage = data.get("usage")
        if not isinstance(usage, dict) and ctx.usage is not None:
            # The vendor reported none: show the pipeline's estimate (already priced and marked estimated).
            usage = cast("CanonicalUsage", ctx.usage.to_openai())  # canonical, typed as a plain dict in core.pricing
        model = ctx.requested_model or str(request.get("model"))
        return orjson.dumps(render_message(message_id(ctx.id), model, request, data,
                                           usage if isinstance(usage, dict) else None))

    def stream_encoder(self, ctx: RequestContext, request: ChatRequest, on_usage: UsageHook) -> AnthropicStreamEncoder:
        return AnthropicStreamEncoder(ctx, request, on_usage)
