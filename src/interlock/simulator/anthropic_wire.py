"""Anthropic Messages as the vendor speaks it: request validation, JSON and SSE answers, errors.

A stream is ``event: NAME\\ndata: {...}\\n\\n`` events in the documented
order: ``message_start`` (usage with the input side), per content block
``content_block_start`` / ``content_block_delta`` (``text_delta``,
``input_json_delta``, ``thinking_delta`` then ``signature_delta``) /
``content_block_stop``, a ``ping`` after the first block starts,
``message_delta`` (stop reason, output tokens) and ``message_stop``. Errors are
``{"type": "error", "error": {"type", "message"}, "request_id"}``, also sent as
an ``event: error`` mid-stream (e.g. ``overloaded_error``).

Every object carries the fields the TypeScript SDK declares without ``?``
(``container``, ``stop_details``, ``citations``, ``caller``, the whole ``usage``),
``null`` when empty, as the API sends them.

Anthropic's ``input_tokens`` excludes cached input: cache reads and writes are
reported separately, and the three add up to the prompt. Caching follows
Anthropic's rules, not the automatic cache of the other wires: only prefixes
ending at a ``cache_control`` marker are cached (``anthropic_cache.py``).
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

import orjson

from interlock.core.errors import anthropic_error_body
from interlock.simulator.anthropic_cache import MAX_BREAKPOINTS, TTLS, CacheBlock, CacheUnit
from interlock.simulator.generate import Choice, Generation
from interlock.simulator.jsonschema_gen import SchemaError, check_schema
from interlock.simulator.plan import Meta
from interlock.simulator.request import (
    BadRequest,
    SimRequest,
    ToolChoice,
    ToolDef,
    canonical,
    document_tokens,
    expect_int,
    seed_material,
    text_of,
)
from interlock.wire.anthropic_stream import DELTA_USAGE

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request"),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found"),
    413: ("invalid_request_error", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    502: ("api_error", "Bad gateway"),
    503: ("api_error", "Service unavailable"),
    529: ("overloaded_error", "Overloaded"),
}
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class AnthropicWire:
    name = "anthropic"

    def parse(self, body: bytes, path_model: str | None, stream_path: bool) -> SimRequest:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise BadRequest("There was an error parsing the body of your request: invalid JSON") from None
        if not isinstance(data, dict):
            raise BadRequest("Request body must be a JSON object")
        model = data.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("model: Field required")
        max_tokens = expect_int(data, "max_tokens", lo=1)
        if max_tokens is None:
            raise BadRequest("max_tokens: Field required")
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages: at least one message is required")
        system = data.get("system")
        if system is not None and not isinstance(system, str | list):
            raise BadRequest("system: Input should be a valid string or a list of text blocks")
        converted: list[dict[str, Any]] = []
        if system:
            converted.append({"role": "system", "content": text_of(system)})
        extra = 0
        pieces: list[tuple[list[dict[str, Any]], int]] = []  # per message: counted as, documents
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                raise BadRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'")
            content = message.get("content")
            if not isinstance(content, str | list):
                raise BadRequest(f"messages.{i}.content: Input should be a valid string or list of content blocks")
            out, tokens = _convert_message(message["role"], content, i)
            converted.extend(out)
            pieces.append((out, tokens))
            extra += tokens
        stops = data.get("stop_sequences") or []
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise BadRequest("stop_sequences: Input should be a valid list of strings")
        tools = _tools(data.get("tools"))
        tool_choice, parallel = _tool_choice(data.get("tool_choice"), tools)
        budget, show = _thinking(data.get("thinking"), max_tokens)
        schema = _output_schema(data)
        count: dict[str, Any] = {"messages": converted}
        if tools:
            count["tools"] = [
                {"type": "function", "function": {"name": t.name, "parameters": t.parameters}} for t in tools
            ]
        last = messages[-1]
        last_content = last.get("content")
        only_results = isinstance(last_content, list) and last_content and all(
            isinstance(b, dict) and b.get("type") == "tool_result" for b in last_content
        )
        last_user = next((m for m in reversed(messages) if m.get("role") == "user"), last)
        return SimRequest(
            model=model,
            count_request=count,
            segments=[],
            last_role="tool" if only_results else str(last["role"]),
            prompt_text=text_of(last_user.get("content")),
            stream=data.get("stream") is True,
            include_usage=True,
            max_tokens=max_tokens,
            stop=list(stops),
            n=1,
            tools=tools,
            tool_choice=tool_choice,
            parallel_tool_calls=parallel,
            response_schema=schema,
            reasoning="medium" if budget else None,
            thinking_budget=budget,
            show_thinking=show,
            seed_material=seed_material(data, ("stream",)),
            cache_units=_cache_units(data, count, messages, pieces),
            extra_prompt_tokens=extra,
        )

    def render(self, gen: Generation, req: SimRequest, meta: Meta) -> bytes:
        choice = gen.choices[0]
        body = {
            "id": f"msg_01{meta.id[:22]}",
            "type": "message",
            "role": "assistant",
            "model": meta.model,
            "content": _blocks(choice),
            "stop_reason": _stop_reason(choice),
            "stop_sequence": choice.stop_sequence,
            "stop_details": None,
            "container": None,
            "usage": _usage(gen, final=True),
        }
        return orjson.dumps(body)

    def render_stream(self, gen: Generation, req: SimRequest, meta: Meta) -> list[tuple[float, bytes]]:
        choice = gen.choices[0]
        start: dict[str, Any] = {
            "id": f"msg_01{meta.id[:22]}",
            "type": "message",
            "role": "assistant",
            "model": meta.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "stop_details": None,
            "container": None,
            "usage": {**_usage(gen, final=False), "output_tokens": 1},
        }
        events: list[tuple[float, bytes]] = [(0.0, _event("message_start", {"type": "message_start", "message": start}))]
        blocks = _blocks(choice)
        pieces = max(1, len(choice.thinking) + len(choice.pieces) + sum(len(c.argument_pieces) for c in choice.tool_calls))
        weight = (choice.output_tokens + choice.reasoning_tokens * bool(choice.thinking)) / pieces
        for index, block in enumerate(blocks):
            kind = block["type"]
            opening = {**block}
            if kind == "text":
                opening["text"] = ""
            elif kind == "thinking":
                opening.update(thinking="", signature="")
            else:
                opening["input"] = {}
            events.append((0.0, _event("content_block_start", {"type": "content_block_start", "index": index, "content_block": opening})))
            if index == 0:
                events.append((0.0, _event("ping", {"type": "ping"})))
            for delta in _deltas(choice, block):
                payload = {"type": "content_block_delta", "index": index, "delta": delta}
                events.append((0.0 if delta["type"] == "signature_delta" else weight, _event("content_block_delta", payload)))
            events.append((0.0, _event("content_block_stop", {"type": "content_block_stop", "index": index})))
        delta = {"stop_reason": _stop_reason(choice), "stop_sequence": choice.stop_sequence, "stop_details": None,
                 "container": None}
        final = _usage(gen, final=True)
        usage = {key: final[key] for key in DELTA_USAGE}
        events.append((0.0, _event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})))
        events.append((0.0, _event("message_stop", {"type": "message_stop"})))
        return events

    def error(self, status: int, message: str, *, param: str | None = None, kind: str | None = None) -> bytes:
        etype, default = _ERRORS.get(status, ("api_error" if status >= 500 else "invalid_request_error", "Error"))
        if kind == "model_not_found":
            message = f"model: {message}"
        return orjson.dumps(anthropic_error_body(etype, message or default, _request_id()))

    def error_event(self, status: int) -> bytes:
        etype, message = _ERRORS.get(status, ("api_error", "Internal server error"))
        return _event("error", anthropic_error_body(etype, message, _request_id()))

    def content_type(self, stream: bool) -> str:
        return "text/event-stream; charset=utf-8" if stream else "application/json"

    def extra_headers(self, meta: Meta) -> dict[str, str]:
        return {"request-id": f"req_011{meta.id[:21]}", "anthropic-organization-id": "simulator"}


def _usage(gen: Generation, *, final: bool) -> dict[str, Any]:
    usage = gen.usage
    fresh = usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens
    write_5m = usage.cache_write_tokens - usage.cache_write_1h_tokens
    return {
        "input_tokens": max(0, fresh),
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation": {"ephemeral_5m_input_tokens": write_5m, "ephemeral_1h_input_tokens": usage.cache_write_1h_tokens},
        "output_tokens": usage.completion_tokens if final else 0,
        "output_tokens_details": {"thinking_tokens": usage.reasoning_tokens} if final and usage.reasoning_tokens
        else None,
        "server_tool_use": None,
        "service_tier": "standard",
        "inference_geo": None,
    }


def _request_id() -> str:
    """An error's ``request_id``: errors are planned without the answer's identity, so a fresh one."""
    return "req_011" + secrets.token_hex(11)[:21]


def _stop_reason(choice: Choice) -> str:
    return "stop_sequence" if choice.stop_sequence is not None else _STOP[choice.finish]


def _blocks(choice: Choice) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if choice.thinking:
        blocks.append({"type": "thinking", "thinking": "".join(choice.thinking), "signature": choice.signature})
    if choice.pieces or not choice.tool_calls:
        blocks.append({"type": "text", "text": choice.text, "citations": None})
    for call in choice.tool_calls:
        blocks.append({"type": "tool_use", "id": f"toolu_01{call.id[:22]}", "name": call.name, "input": orjson.loads(call.arguments),
                       "caller": {"type": "direct"}})
    return blocks


def _deltas(choice: Choice, block: dict[str, Any]) -> list[dict[str, Any]]:
    kind = block["type"]
    if kind == "thinking":
        out = [{"type": "thinking_delta", "thinking": p} for p in choice.thinking]
        return [*out, {"type": "signature_delta", "signature": choice.signature}]
    if kind == "text":
        return [{"type": "text_delta", "text": p} for p in choice.pieces]
    call = next(c for c in choice.tool_calls if block["id"] == f"toolu_01{c.id[:22]}")
    return [{"type": "input_json_delta", "partial_json": p} for p in call.argument_pieces]


def _cache_units(
    data: dict[str, Any],
    count: dict[str, Any],
    messages: list[Any],
    pieces: list[tuple[list[dict[str, Any]], int]],
) -> list[CacheUnit]:
    """The prompt's blocks in Anthropic's render order (tools, system, messages) with their markers.

    ``count`` is the request as the prompt estimate counts it and ``pieces`` each
    message's share of it. A marker inside a ``tool_result``'s content marks the
    whole result block; a top-level ``cache_control`` (automatic caching) marks
    the last block. Thinking blocks are left out, as the estimate leaves them out.
    """
    found = _count_markers(data)
    if found > MAX_BREAKPOINTS:
        raise BadRequest(f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {found}.")
    if not found:
        return []  # nothing is cached without a marker
    units: list[CacheUnit] = []
    system = data.get("system")
    stub = [{"role": "system", "content": ""}] if system else []  # the estimate counts tools less beside a system
    tools = [
        CacheBlock(_content(tool), {"tools": [{"type": "function", "function": {"name": tool.get("name"),
                   "parameters": tool.get("input_schema") or {}}}]}, ttl=_marker(tool, f"tools.{i}"))
        for i, tool in enumerate(data.get("tools") or ())
    ]
    if tools:
        units.append(CacheUnit({"tools": count.get("tools", []), "messages": stub}, tools, {"messages": stub}))
    if system:
        listed = [{"type": "text", "text": system}] if isinstance(system, str) else system
        blocks = [
            CacheBlock(_content(block, "system"), {"messages": [{"role": "system", "content": text_of([block])}]},
                       ttl=_marker(block, f"system.{j}"))
            for j, block in enumerate(listed)
        ]
        units.append(CacheUnit({"messages": [{"role": "system", "content": text_of(system)}]}, blocks))
    for i, (message, (out, _)) in enumerate(zip(messages, pieces, strict=True)):
        role, content = message["role"], message["content"]
        blocks = []
        for j, block in enumerate([{"type": "text", "text": content}] if isinstance(content, str) else content):
            if block.get("type") in ("thinking", "redacted_thinking"):
                continue
            alone, documents = _convert_message(role, [block], i)
            ttl = _marker(block, f"messages.{i}.content.{j}")
            inner = block.get("content") if block.get("type") == "tool_result" else None
            for k, part in enumerate(inner if isinstance(inner, list) else ()):
                ttl = _marker(part, f"messages.{i}.content.{j}.content.{k}") or ttl
            blocks.append(CacheBlock(_content(block, role, j == 0), {"messages": alone}, documents, ttl))
        units.append(CacheUnit({"messages": out}, blocks))
    automatic = _marker(data, "")
    last = next((unit.blocks for unit in reversed(units) if unit.blocks), None)
    if automatic is not None and last is not None and last[-1].ttl is None:
        last[-1] = dataclasses.replace(last[-1], ttl=automatic)
    return units


def _marker(value: Any, where: str) -> float | None:
    """The lifetime (seconds) of ``value``'s ``cache_control``, None without one; 400 when malformed."""
    raw = value.get("cache_control") if isinstance(value, dict) else None
    if raw is None:
        return None
    path = f"{where}.cache_control" if where else "cache_control"
    if not isinstance(raw, dict) or raw.get("type") != "ephemeral":
        raise BadRequest(f"{path}.type: Input should be 'ephemeral'")
    ttl = raw.get("ttl", "5m")
    if ttl not in TTLS:
        raise BadRequest(f"{path}.ephemeral.ttl: Input should be '5m' or '1h'")
    return TTLS[ttl]


def _count_markers(value: Any) -> int:
    """Every ``cache_control`` in the request (tools, system, blocks, nested and top-level)."""
    if isinstance(value, dict):
        return ("cache_control" in value) + sum(_count_markers(v) for v in value.values() if isinstance(v, list))
    if isinstance(value, list):
        return sum(_count_markers(v) for v in value)
    return 0


def _content(block: Any, *context: Any) -> bytes:
    """Canonical bytes of a block without its markers, so a moved marker keeps the prefix's hash."""
    if isinstance(block, dict):
        block = {k: _unmarked(v) for k, v in block.items() if k != "cache_control"}
    return canonical([*context, block])


def _unmarked(value: Any) -> Any:
    if isinstance(value, list):
        return [{k: v for k, v in p.items() if k != "cache_control"} if isinstance(p, dict) else p for p in value]
    return value


def _convert_message(role: str, content: Any, i: int) -> tuple[list[dict[str, Any]], int]:
    """One Anthropic message as OpenAI-shaped messages for counting, plus document tokens."""
    if isinstance(content, str):
        return [{"role": role, "content": content}], 0
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    extra = 0
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        source = block.get("source") if isinstance(block, dict) else None
        if kind in ("image", "document") and not isinstance(source, dict):
            raise BadRequest(f"messages.{i}.content.{j}.{kind}.source: Field required")
        if kind == "text":
            if not isinstance(block.get("text"), str):
                raise BadRequest(f"messages.{i}.content.{j}.text.text: Input should be a valid string")
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            source = block.get("source") or {}
            url = source.get("url") or f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
        elif kind == "document":
            source = block.get("source") or {}
            if source.get("type") == "text":
                parts.append({"type": "text", "text": str(source.get("data", ""))})
            else:
                extra += document_tokens(source.get("data"), str(source.get("media_type", "application/pdf")))
        elif kind == "tool_use":
            args = orjson.dumps(block.get("input", {})).decode()
            calls.append({"id": block.get("id"), "type": "function", "function": {"name": block.get("name"), "arguments": args}})
        elif kind == "tool_result":
            results.append({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text_of(block.get("content"))})
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise BadRequest(f"messages.{i}.content.{j}.type: Input tag '{kind}' is not a known content block type")
    out: list[dict[str, Any]] = results[:]
    if parts or calls or not results:
        message: dict[str, Any] = {"role": role, "content": parts}
        if calls:
            message["tool_calls"] = calls
        out.append(message)
    return out, extra


def _tools(raw: Any) -> list[ToolDef]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest("tools: Input should be a valid list")
    tools: list[ToolDef] = []
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise BadRequest(f"tools.{i}.name: Field required")
        if tool.get("type") not in (None, "custom"):
            continue  # server tools (web search, ...) run at the vendor: never called by the model here
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise BadRequest(f"tools.{i}.custom.input_schema: Field required")
        try:
            check_schema(schema)
        except SchemaError as exc:
            raise BadRequest(f"tools.{i}.custom.input_schema: JSON schema is invalid: {exc}") from None
        tools.append(ToolDef(name=tool["name"], parameters=schema))
    return tools


def _tool_choice(raw: Any, tools: list[ToolDef]) -> tuple[ToolChoice, bool]:
    if raw is None:
        return "auto", True
    if not isinstance(raw, dict) or raw.get("type") not in ("auto", "any", "tool", "none"):
        raise BadRequest("tool_choice: Input tag is not one of the expected tags: 'auto', 'any', 'tool', 'none'")
    parallel = raw.get("disable_parallel_tool_use") is not True
    kind = raw["type"]
    if kind == "none":
        return "none", parallel
    if kind == "auto":
        return "auto", parallel
    if not tools:
        raise BadRequest("tool_choice: tools must be provided when tool_choice is 'any' or 'tool'")
    if kind == "any":
        return "required", parallel
    name = raw.get("name")
    if not any(t.name == name for t in tools):
        raise BadRequest(f"tool_choice.name: tool '{name}' was not found in tools")
    return ("function", str(name)), parallel


def _thinking(raw: Any, max_tokens: int) -> tuple[int | None, bool]:
    if raw is None:
        return None, False
    if not isinstance(raw, dict) or raw.get("type") not in ("enabled", "disabled", "adaptive"):
        raise BadRequest("thinking.type: Input tag is not one of the expected tags: 'enabled', 'disabled', 'adaptive'")
    if raw["type"] == "disabled":
        return 0, False
    if raw["type"] == "adaptive":
        return max_tokens - 1, True
    budget = raw.get("budget_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise BadRequest("thinking.enabled.budget_tokens: Field required")
    if budget < 1024:
        raise BadRequest("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
    if budget >= max_tokens:
        raise BadRequest("`max_tokens` must be greater than `thinking.budget_tokens`.")
    return budget, True


def _output_schema(data: dict[str, Any]) -> Any:
    fmt = data.get("output_format")
    config = data.get("output_config")
    if fmt is None and isinstance(config, dict):
        fmt = config.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise BadRequest("output_format: expected {'type': 'json_schema', 'schema': {...}}")
    try:
        check_schema(fmt["schema"])
    except SchemaError as exc:
        raise BadRequest(f"output_format.schema: JSON schema is invalid: {exc}") from None
    return fmt["schema"]
