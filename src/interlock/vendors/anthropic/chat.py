"""Anthropic Messages: the canonical request out, Messages answers and events back.

Reference: https://docs.anthropic.com/en/api/messages and .../messages-streaming.
The same translation serves Claude on Vertex AI (``vertex.py``), which differs
only in URL, credential and two body fields (``anthropic_version`` in the body,
no ``model``).

What maps to what (details in the README's *Native vendors* section):

* system and developer messages, wherever they appear, become the top-level
  ``system`` blocks in order (their ``cache_control`` kept);
* ``cache_control`` stays where the caller put it: on a content part, a tool, a
  tool call (its ``tool_use`` block); a message-level one marks the message's
  last block, and a tool message's marker goes on its ``tool_result`` block;
* tool results become ``tool_result`` blocks, and consecutive tool/user
  messages are merged into one user turn, as Messages requires;
* ``response_format`` becomes a forced tool (``tool_choice: {type: tool}``)
  whose input is returned as the message content - unless thinking is on, which
  cannot be combined with a forced tool; then ``output_config.format`` is used;
* ``reasoning_effort`` becomes a thinking budget; thinking blocks come back as
  ``reasoning_content`` + ``thinking_blocks`` and go out again with their
  signatures.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import orjson

from interlock.config import VendorConfig
from interlock.core.errors import GatewayError, InvalidRequest, UpstreamError
from interlock.core.pricing import Usage
from interlock.core.vendor import Completion
from interlock.vendors.anthropic.settings import AnthropicSettings
from interlock.vendors.anthropic.usage import usage_from_anthropic
from interlock.vendors.errors import check_stream_response, error_from_status
from interlock.vendors.translate_common import (
    EFFORT_BUDGET,
    ChunkEmitter,
    Drops,
    ToolIndexer,
    TranslatedStream,
    Turns,
    completion,
    file_part,
    load_json,
    max_tokens_of,
    message_choice,
    parse_arguments,
    split_data_url,
    stop_list,
    structured_output,
    tool_call,
)
from interlock.vendors.transport import Transport, UpstreamResponse
from interlock.wire.sse import SSEDecoder

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
_STOP = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
         "pause_turn": "stop", "refusal": "content_filter", "model_context_window_exceeded": "length"}
_UNSUPPORTED = ("n", "logprobs", "top_logprobs", "logit_bias", "presence_penalty", "frequency_penalty", "seed",
                "audio", "modalities", "prediction", "web_search_options", "service_tier", "store", "metadata")
#: Mid-stream error types → the HTTP status the same failure would have had.
ERROR_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
                "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
                "timeout_error": 504, "overloaded_error": 529}


# --------------------------------------------------------------------------- request


def _block(part: Mapping[str, Any], where: str, drops: Drops) -> dict[str, Any] | None:
    kind = part.get("type")
    block: dict[str, Any]
    if kind == "text":
        block = {"type": "text", "text": part.get("text", "")}
    elif kind == "image_url":
        image = part.get("image_url") or {}
        url = str(image.get("url", ""))
        split = split_data_url(url)
        source = ({"type": "base64", "media_type": split[0], "data": split[1]} if split is not None
                  else {"type": "url", "url": url})
        block = {"type": "image", "source": source}
    elif kind == "file":
        mime, data, name = file_part(part)
        if mime == "text/plain":
            source = {"type": "text", "media_type": "text/plain", "data": base64.b64decode(data).decode("utf-8")}
        else:
            source = {"type": "base64", "media_type": mime, "data": data}
        block = {"type": "document", "source": source}
        if name:
            block["title"] = name
    else:
        drops.add(f"{where}.{kind}", f"Anthropic does not accept '{kind}' content")
        return None
    cache = part.get("cache_control")
    if isinstance(cache, dict):
        block["cache_control"] = cache
    return block


def _content(content: Any, where: str, drops: Drops) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in content or ():
        block = _block(part, where, drops)
        if block is not None:
            blocks.append(block)
    return blocks


def _mark_last(blocks: list[dict[str, Any]], cache: Any) -> list[dict[str, Any]]:
    """A message-level ``cache_control`` (LiteLLM's shape) becomes the marker of the message's last block,
    unless that block has its own or cannot take one (Anthropic caches no thinking block directly)."""
    if isinstance(cache, dict) and blocks:
        last = blocks[-1]
        if "cache_control" not in last and last["type"] not in ("thinking", "redacted_thinking"):
            last["cache_control"] = cache
    return blocks


def _assistant_blocks(message: Mapping[str, Any], where: str, drops: Drops) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for tb in message.get("thinking_blocks") or ():
        if not isinstance(tb, dict):
            continue
        if tb.get("type") == "redacted_thinking":
            blocks.append({"type": "redacted_thinking", "data": tb.get("data", "")})
        elif tb.get("signature"):
            # A thinking block is only accepted back with its signature.
            blocks.append({"type": "thinking", "thinking": tb.get("thinking", ""), "signature": tb["signature"]})
    blocks += _content(message.get("content"), where, drops)
    for k, call in enumerate(message.get("tool_calls") or ()):
        fn = call.get("function") or {}
        block = {"type": "tool_use", "id": call.get("id") or f"toolu_{k}", "name": fn.get("name", ""),
                 "input": parse_arguments(fn.get("arguments"), f"{where}.tool_calls[{k}].function.arguments")}
        cache = call.get("cache_control")  # on the tool call (LiteLLM's shape): the tool_use block's marker
        if isinstance(cache, dict):
            block["cache_control"] = cache
        blocks.append(block)
    return _mark_last(blocks, message.get("cache_control"))


def _tool_result(message: Mapping[str, Any], where: str, drops: Drops) -> dict[str, Any]:
    """A ``tool_result`` block. Its marker (the message's ``cache_control``, or its last part's) goes on the
    block itself, where Anthropic documents caching a tool result."""
    content = message.get("content")
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.get("tool_call_id")}
    cache = message.get("cache_control")
    if isinstance(content, str):
        result["content"] = content
    else:
        blocks = _content(content, where, drops)
        if blocks and "cache_control" in blocks[-1]:
            part_cache = blocks[-1].pop("cache_control")
            if not isinstance(cache, dict):
                cache = part_cache
        result["content"] = blocks
    if message.get("is_error") is True:  # the canonical flag (the Messages codec's, Anthropic's own)
        result["is_error"] = True
    if isinstance(cache, dict):
        result["cache_control"] = cache
    return result


def build_messages(request: Mapping[str, Any], drops: Drops) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, messages) with same-role turns merged."""
    system: list[dict[str, Any]] = []
    turns = Turns("content")
    push = turns.push

    for i, message in enumerate(request.get("messages") or ()):
        role = message.get("role")
        where = f"messages[{i}].content"
        if role in ("system", "developer"):
            system.extend(_mark_last(_content(message.get("content"), where, drops), message.get("cache_control")))
        elif role == "user":
            push("user", _mark_last(_content(message.get("content"), where, drops), message.get("cache_control")))
        elif role == "assistant":
            push("assistant", _assistant_blocks(message, f"messages[{i}]", drops))
        elif role in ("tool", "function"):
            push("user", [_tool_result(message, where, drops)])
    return system, turns


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    out: dict[str, Any] | None
    if choice is None:
        out = None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "none":
        out = {"type": "none"}
    elif choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str):
            raise InvalidRequest("tool_choice must name a function.", param="tool_choice.function.name")
        out = {"type": "tool", "name": name}
    else:
        out = None
    if parallel is False:
        out = out or {"type": "auto"}
        if out["type"] != "none":
            out["disable_parallel_tool_use"] = True
    return out


def _thinking(request: Mapping[str, Any], max_tokens: int | None, drops: Drops) -> dict[str, Any] | None:
    native = request.get("thinking")
    if isinstance(native, dict):
        return dict(native)
    effort = request.get("reasoning_effort")
    if effort is None:
        return None
    if effort == "none":
        return {"type": "disabled"}
    budget = EFFORT_BUDGET.get(str(effort))
    if budget is None:
        drops.add("reasoning_effort", f"unknown effort {effort!r}")
        return None
    if max_tokens is not None and budget >= max_tokens:
        budget = max_tokens - 1
        if budget < 1024:
            drops.add("reasoning_effort", "max_tokens leaves no room for Anthropic's minimum thinking budget (1024)")
            return None
    return {"type": "enabled", "budget_tokens": budget}


def encode_request(request: Mapping[str, Any], vendor_model: str | None, *, stream: bool,
                   vendor: str = "Anthropic") -> tuple[dict[str, Any], Drops, str | None]:
    """The Messages body, the drops, and the name of the tool standing in for ``response_format`` (if any)."""
    drops = Drops(request, vendor)
    drops.check_unsupported(request, _UNSUPPORTED)
    system, messages = build_messages(request, drops)
    max_tokens = max_tokens_of(request)
    thinking = _thinking(request, max_tokens, drops)
    thinking_on = thinking is not None and thinking.get("type") in ("enabled", "adaptive")
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS
        if thinking_on and isinstance(thinking, dict) and isinstance(thinking.get("budget_tokens"), int):
            max_tokens += thinking["budget_tokens"]
    body: dict[str, Any] = {}
    if vendor_model is not None:
        body["model"] = vendor_model
    body["max_tokens"] = max_tokens
    body["messages"] = messages
    if system:
        body["system"] = system
    stops = stop_list(request)
    if stops:
        body["stop_sequences"] = stops
    for name in ("temperature", "top_p", "top_k"):
        value = request.get(name)
        if value is None:
            continue
        if thinking_on and (name != "top_p" or value < 0.95):
            drops.add(name, "Anthropic does not allow it together with extended thinking")
            continue
        body[name] = value
    if thinking is not None:
        body["thinking"] = thinking
    tools = []
    for tool in request.get("tools") or ():
        if tool.get("type", "function") != "function":
            tools.append(tool)  # an Anthropic server tool given natively: passed as-is
            continue
        fn = tool["function"]
        spec: dict[str, Any] = {"name": fn["name"],
                                "input_schema": fn.get("parameters") or {"type": "object", "properties": {}}}
        if fn.get("description"):
            spec["description"] = fn["description"]
        cache = tool.get("cache_control")
        if isinstance(cache, dict):
            spec["cache_control"] = cache
        tools.append(spec)
    choice = _tool_choice(request.get("tool_choice"), request.get("parallel_tool_calls"))
    forced: str | None = None
    schema = structured_output(request)
    if schema is not None:
        name, json_schema = schema
        if thinking_on:
            body["output_config"] = {"format": {"type": "json_schema", "schema": json_schema}}
        else:
            forced = name
            tools.append({"name": name, "description": "Respond with JSON that matches this schema.",
                          "input_schema": json_schema})
            choice = {"type": "tool", "name": name}
    if tools:
        body["tools"] = tools
        if choice is not None:
            body["tool_choice"] = choice
    elif choice is not None and choice.get("type") not in ("auto", "none"):
        raise InvalidRequest("tool_choice requires tools.", param="tool_choice")
    user = request.get("user")
    if isinstance(user, str):
        body["metadata"] = {"user_id": user}
    if stream:
        body["stream"] = True
    return body, drops, forced


# --------------------------------------------------------------------------- answer


def decode_message(data: Mapping[str, Any], forced: str | None) -> dict[str, Any]:
    texts: list[str] = []
    reasoning: list[str] = []
    blocks: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in data.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "thinking":
            reasoning.append(block.get("thinking", ""))
            blocks.append({"type": "thinking", "thinking": block.get("thinking", ""),
                           "signature": block.get("signature", "")})
        elif kind == "redacted_thinking":
            blocks.append({"type": "redacted_thinking", "data": block.get("data", "")})
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input", {})).decode()
            if forced is not None and block.get("name") == forced:
                texts.append(arguments)
            else:
                calls.append(tool_call(block.get("id", ""), block.get("name", ""), arguments))
    finish = _STOP.get(str(data.get("stop_reason")), "stop")
    if forced is not None and finish == "tool_calls" and not calls:
        finish = "stop"
    usage = usage_from_anthropic(data["usage"]) if isinstance(data.get("usage"), dict) else None
    content = "".join(texts) if texts or not calls else None
    choice = message_choice(0, content, finish, reasoning="".join(reasoning) or None, thinking_blocks=blocks,
                            tool_calls=calls)
    return completion(str(data.get("id", "")), str(data.get("model", "")), [choice], usage)


def stream_error(vendor: str, payload: Mapping[str, Any]) -> GatewayError:
    err = payload.get("error")
    status = ERROR_STATUS.get(str(err.get("type")) if isinstance(err, dict) else "", 500)
    return error_from_status(vendor, status, {}, orjson.dumps(payload))


class AnthropicStream(TranslatedStream):
    """Messages SSE events → canonical chunks (one pass, no buffering beyond a thinking block)."""

    def __init__(self, resp: UpstreamResponse, dropped: tuple[str, ...], vendor: str, forced: str | None) -> None:
        super().__init__(resp, dropped, vendor)
        self._sse = SSEDecoder()
        self._forced = forced
        self._emit: ChunkEmitter | None = None
        self._tools = ToolIndexer()
        self._blocks: dict[Any, dict[str, Any]] = {}
        self._usage: dict[str, Any] = {}
        self._stop: str | None = None
        self._finished = False

    def feed(self, data: bytes, out: list[bytes]) -> None:
        for event in self._sse.feed(data):
            if not event.data:
                continue
            try:
                payload = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                raise self.invalid(event.data[:100].decode("utf-8", "replace")) from None
            self._event(payload, out)

    def _event(self, ev: dict[str, Any], out: list[bytes]) -> None:
        kind = ev.get("type")
        if kind == "content_block_delta":
            self._delta(ev, out)
        elif kind == "content_block_start":
            self._start(ev, out)
        elif kind == "content_block_stop":
            block = self._blocks.pop(ev.get("index", -1), None)
            if block is not None and block["type"] == "thinking":
                assert self._emit is not None
                out.append(self._emit.delta({"thinking_blocks": [
                    {"type": "thinking", "thinking": block["thinking"], "signature": block["signature"]}]}))
        elif kind == "message_start":
            message = ev.get("message") or {}
            self._emit = ChunkEmitter(str(message.get("id", "")), str(message.get("model", "")))
            self._usage.update({k: v for k, v in (message.get("usage") or {}).items() if v is not None})
            out.append(self._emit.delta({"role": "assistant", "content": ""}))
        elif kind == "message_delta":
            self._stop = (ev.get("delta") or {}).get("stop_reason") or self._stop
            self._usage.update({k: v for k, v in (ev.get("usage") or {}).items() if v is not None})
        elif kind == "message_stop":
            out.extend(self._close())
        elif kind == "error":
            raise stream_error(self.vendor, ev)
        # ping and unknown future events carry nothing canonical

    def _start(self, ev: dict[str, Any], out: list[bytes]) -> None:
        emit = self._need()
        block = ev.get("content_block") or {}
        index = ev.get("index")
        kind = block.get("type")
        if kind == "text":
            self._blocks[index] = {"type": "text"}
            if block.get("text"):
                out.append(emit.delta({"content": block["text"]}))
        elif kind == "thinking":
            self._blocks[index] = {"type": "thinking", "thinking": block.get("thinking", ""),
                                   "signature": block.get("signature", "")}
        elif kind == "redacted_thinking":
            out.append(emit.delta({"thinking_blocks": [{"type": "redacted_thinking", "data": block.get("data", "")}]}))
        elif kind == "tool_use":
            name = str(block.get("name", ""))
            if self._forced is not None and name == self._forced:
                self._blocks[index] = {"type": "json"}
                return
            self._blocks[index] = {"type": "tool"}
            slot = self._tools.start(index, name)
            call = {"index": slot, "id": block.get("id", ""), "type": "function",
                    "function": {"name": name, "arguments": ""}}
            out.append(emit.delta({"tool_calls": [call]}))

    def _delta(self, ev: dict[str, Any], out: list[bytes]) -> None:
        emit = self._need()
        delta = ev.get("delta") or {}
        kind = delta.get("type")
        index = ev.get("index")
        if kind == "text_delta":
            out.append(emit.delta({"content": delta.get("text", "")}))
        elif kind == "input_json_delta":
            partial = delta.get("partial_json", "")
            block = self._blocks.get(index)
            if block is not None and block["type"] == "json":
                out.append(emit.delta({"content": partial}))
            elif partial:
                slot = self._tools.find(index)
                out.append(emit.delta({"tool_calls": [{"index": slot, "function": {"arguments": partial}}]}))
        elif kind == "thinking_delta":
            text = delta.get("thinking", "")
            block = self._blocks.get(index)
            if block is not None:
                block["thinking"] += text
            out.append(emit.delta({"reasoning_content": text}))
        elif kind == "signature_delta":
            block = self._blocks.get(index)
            if block is not None:
                block["signature"] += delta.get("signature", "")

    def _need(self) -> ChunkEmitter:
        if self._emit is None:
            raise self.invalid("content before message_start")
        return self._emit

    def _close(self) -> list[bytes]:
        if self._finished or self._emit is None:
            return []
        self._finished = True
        self._done = True
        finish = _STOP.get(str(self._stop), "stop")
        if finish == "tool_calls" and self._tools.count == 0:
            finish = "stop"  # the forced response_format tool, reported as content
        return [self._emit.delta({}, finish), self._emit.usage(self.usage())]

    def usage(self) -> Usage:
        return usage_from_anthropic(self._usage)

    def end(self) -> list[bytes]:
        if self._finished:
            return []
        if self._stop is not None:
            return self._close()  # message_delta said why it ended; only message_stop went missing
        self.truncated = True
        return []


# --------------------------------------------------------------------------- adapter


class AnthropicAdapter:
    """Anthropic's own API, or an Anthropic-compatible endpoint (``type: anthropic``)."""

    def __init__(self, vendor: VendorConfig, transport: Transport) -> None:
        self.vendor = vendor
        self.transport = transport
        self.name = vendor.spec.name
        headers = {"content-type": "application/json", "accept": "application/json",
                   "anthropic-version": vendor.settings_as(AnthropicSettings).anthropic_version or API_VERSION}
        if vendor.api_key is not None:
            headers["x-api-key"] = vendor.api_key
        headers.update(vendor.headers)
        self._headers = headers
        self._url = f"{vendor.base_url}/v1/messages"

    def url(self, vendor_model: str, stream: bool) -> str:
        return self._url

    def body(self, request: Mapping[str, Any], vendor_model: str, stream: bool) -> tuple[bytes, Drops, str | None]:
        payload, drops, forced = encode_request(request, vendor_model, stream=stream, vendor=self.name)
        return orjson.dumps(payload), drops, forced

    async def headers(self, extra: Mapping[str, str] | None, stream: bool) -> Mapping[str, str]:
        headers = {**self._headers, **extra} if extra else self._headers
        return {**headers, "accept": "text/event-stream"} if stream else headers

    async def complete(self, request: Mapping[str, Any], vendor_model: str,
                       extra_headers: Mapping[str, str] | None = None) -> Completion:
        body, drops, forced = self.body(request, vendor_model, False)
        resp = await self.transport.request("POST", self.url(vendor_model, False),
                                            await self.headers(extra_headers, False), body, self.vendor.timeouts)
        raw = await resp.read()
        if resp.status >= 400:
            raise error_from_status(self.name, resp.status, resp.headers, raw)
        data = load_json(raw, self.name)
        if not isinstance(data, dict) or data.get("type") == "error":
            raise UpstreamError(f"{self.name} sent an answer that is not a message", code="upstream_invalid_response")
        return Completion(decode_message(data, forced), resp.status, drops.dropped)

    async def stream(self, request: Mapping[str, Any], vendor_model: str,
                     extra_headers: Mapping[str, str] | None = None) -> AnthropicStream:
        body, drops, forced = self.body(request, vendor_model, True)
        resp = await self.transport.request("POST", self.url(vendor_model, True),
                                            await self.headers(extra_headers, True), body, self.vendor.timeouts)
        await check_stream_response(self.name, resp)
        return AnthropicStream(resp, drops.dropped, self.name, forced)
