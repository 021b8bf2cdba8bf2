"""Cohere v2 chat (``POST /v2/chat``): close to Chat Completions, but not the same.

Reference: https://docs.cohere.com/reference/chat and .../chat-stream. Differences
handled here: sampling names (``p``, ``k``, ``stop_sequences``), ``tool_choice``
only as ``REQUIRED``/``NONE``, ``response_format`` as ``json_object`` with an
optional ``json_schema``, answers as typed content blocks, a ``tool_plan``
(the model's plan before it calls tools, surfaced as ``reasoning_content``
and sent back as ``tool_plan``), and streams of typed events
(``message-start`` ... ``message-end``) whose tool-call fragments are keyed by
``index``. Usage is ``billed_units`` (what Cohere charges for).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from interlock.config import VendorConfig
from interlock.core.errors import UpstreamError
from interlock.core.vendor import Completion
from interlock.vendors.cohere.usage import usage_from_cohere
from interlock.vendors.errors import check_stream_response, error_from_status
from interlock.vendors.translate_common import (
    EFFORT_BUDGET,
    ChunkEmitter,
    Drops,
    ToolIndexer,
    TranslatedStream,
    completion,
    load_json,
    max_tokens_of,
    message_choice,
    new_id,
    stop_list,
    structured_output,
    text_of,
    tool_call,
)
from interlock.vendors.transport import Transport, UpstreamResponse
from interlock.wire.sse import SSEDecoder

_FINISH = {"COMPLETE": "stop", "STOP_SEQUENCE": "stop", "MAX_TOKENS": "length", "TOOL_CALL": "tool_calls",
           "ERROR_TOXIC": "content_filter", "ERROR_LIMIT": "length", "TIMEOUT": "length"}
_UNSUPPORTED = ("n", "logit_bias", "logprobs", "top_logprobs", "audio", "modalities", "prediction", "web_search_options",
                "service_tier", "store", "metadata", "user", "parallel_tool_calls")


def _content(content: Any, where: str, drops: Drops) -> str | list[dict[str, Any]]:
    if isinstance(content, str) or content is None:
        return content or ""
    out: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            out.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            out.append({"type": "image_url", "image_url": {"url": (part.get("image_url") or {}).get("url", "")}})
        else:
            drops.add(f"{where}.{kind}", f"Cohere does not accept '{kind}' content")
    return out


def encode_request(request: Mapping[str, Any], vendor_model: str, drops: Drops, stream: bool) -> dict[str, Any]:
    drops.check_unsupported(request, _UNSUPPORTED)
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for i, message in enumerate(request.get("messages") or ()):
        role = message.get("role")
        where = f"messages[{i}].content"
        if role in ("system", "developer"):
            system.append(text_of(message.get("content")))
        elif role == "user":
            messages.append({"role": "user", "content": _content(message.get("content"), where, drops)})
        elif role == "assistant":
            out: dict[str, Any] = {"role": "assistant"}
            content = _content(message.get("content"), where, drops)
            if content:
                out["content"] = content
            calls = message.get("tool_calls")
            if calls:
                out["tool_calls"] = [{"id": c.get("id", ""), "type": "function",
                                      "function": {"name": (c.get("function") or {}).get("name", ""),
                                                   "arguments": (c.get("function") or {}).get("arguments") or "{}"}}
                                     for c in calls]
                if message.get("reasoning_content"):
                    out["tool_plan"] = message["reasoning_content"]
            messages.append(out)
        elif role in ("tool", "function"):
            messages.append({"role": "tool", "tool_call_id": message.get("tool_call_id", ""),
                             "content": text_of(message.get("content")) if not isinstance(message.get("content"), str)
                             else message["content"]})
    if system:
        # Cohere reads one system message; several are joined in order.
        messages.insert(0, {"role": "system", "content": "\n\n".join(system)})
    body: dict[str, Any] = {"model": vendor_model, "messages": messages}
    if stream:
        body["stream"] = True
    tools = [t for t in request.get("tools") or () if t.get("type", "function") == "function"]
    if tools:
        body["tools"] = [{"type": "function", "function": {k: v for k, v in t["function"].items()
                                                           if k in ("name", "description", "parameters")}}
                         for t in tools]
    choice = request.get("tool_choice")
    if choice == "required":
        body["tool_choice"] = "REQUIRED"
    elif choice == "none":
        body["tool_choice"] = "NONE"
    elif isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        body["tools"] = [t for t in body.get("tools", []) if t["function"]["name"] == name]
        body["tool_choice"] = "REQUIRED"
    limit = max_tokens_of(request)
    if limit is not None:
        body["max_tokens"] = limit
    for name, key in (("temperature", "temperature"), ("top_p", "p"), ("top_k", "k"), ("seed", "seed"),
                      ("frequency_penalty", "frequency_penalty"), ("presence_penalty", "presence_penalty")):
        if request.get(name) is not None:
            body[key] = request[name]
    stops = stop_list(request)
    if stops:
        body["stop_sequences"] = stops
    schema = structured_output(request)
    if schema is not None:
        fmt: dict[str, Any] = {"type": "json_object"}
        if (request.get("response_format") or {}).get("type") == "json_schema":
            fmt["json_schema"] = schema[1]
        body["response_format"] = fmt
    effort = request.get("reasoning_effort")
    if effort is not None:
        budget = EFFORT_BUDGET.get(str(effort))
        body["thinking"] = {"type": "disabled"} if effort == "none" or budget is None else {
            "type": "enabled", "token_budget": budget}
    return body


def decode_response(data: Mapping[str, Any]) -> dict[str, Any]:
    message = data.get("message") or {}
    texts: list[str] = []
    reasoning: list[str] = []
    for block in message.get("content") or ():
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "thinking":
            reasoning.append(block.get("thinking", ""))
    if message.get("tool_plan"):
        reasoning.append(message["tool_plan"])
    calls = [tool_call(c.get("id", ""), (c.get("function") or {}).get("name", ""),
                       (c.get("function") or {}).get("arguments") or "{}") for c in message.get("tool_calls") or ()]
    finish = _FINISH.get(str(data.get("finish_reason")), "stop")
    content = "".join(texts) if texts or not calls else None
    usage = usage_from_cohere(data["usage"]) if isinstance(data.get("usage"), dict) else None
    choice = message_choice(0, content, finish, reasoning="".join(reasoning) or None, tool_calls=calls)
    return completion(str(data.get("id") or new_id()), "", [choice], usage)


class CohereStream(TranslatedStream):
    def __init__(self, resp: UpstreamResponse, dropped: tuple[str, ...], vendor: str, model: str) -> None:
        super().__init__(resp, dropped, vendor)
        self._sse = SSEDecoder()
        self._model = model
        self._emit: ChunkEmitter | None = None
        self._tools = ToolIndexer()
        self._finished = False

    def feed(self, data: bytes, out: list[bytes]) -> None:
        for event in self._sse.feed(data):
            if not event.data or event.data == b"[DONE]":
                continue
            try:
                ev = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                raise self.invalid(event.data[:100].decode("utf-8", "replace")) from None
            self._event(ev, out)

    def _event(self, ev: dict[str, Any], out: list[bytes]) -> None:
        kind = ev.get("type")
        if self._emit is None:
            self._emit = ChunkEmitter(str(ev.get("id") or new_id()), self._model)
            out.append(self._emit.delta({"role": "assistant", "content": ""}))
        emit = self._emit
        message = ((ev.get("delta") or {}).get("message")) or {}
        if kind == "content-delta":
            content = message.get("content") or {}
            if content.get("text"):
                out.append(emit.delta({"content": content["text"]}))
            elif content.get("thinking"):
                out.append(emit.delta({"reasoning_content": content["thinking"]}))
        elif kind == "tool-plan-delta":
            if message.get("tool_plan"):
                out.append(emit.delta({"reasoning_content": message["tool_plan"]}))
        elif kind == "tool-call-start":
            call = message.get("tool_calls") or {}
            fn = call.get("function") or {}
            slot = self._tools.start(ev.get("index"), str(fn.get("name", "")))
            out.append(emit.delta({"tool_calls": [{"index": slot, "id": call.get("id", ""), "type": "function",
                                                   "function": {"name": fn.get("name", ""),
                                                                "arguments": fn.get("arguments") or ""}}]}))
        elif kind == "tool-call-delta":
            arguments = ((message.get("tool_calls") or {}).get("function") or {}).get("arguments")
            if arguments:
                out.append(emit.delta({"tool_calls": [{"index": self._tools.find(ev.get("index")),
                                                       "function": {"arguments": arguments}}]}))
        elif kind == "message-end":
            delta = ev.get("delta") or {}
            reason = str(delta.get("finish_reason"))
            if reason == "ERROR":
                raise UpstreamError(f"{self.vendor} ended the answer with an error", code="upstream_error")
            self._finished = True
            self._done = True
            out.append(emit.delta({}, _FINISH.get(reason, "stop")))
            if isinstance(delta.get("usage"), dict):
                out.append(emit.usage(usage_from_cohere(delta["usage"])))

    def end(self) -> list[bytes]:
        if not self._finished:
            self.truncated = True
        return []


class CohereAdapter:
    def __init__(self, vendor: VendorConfig, transport: Transport) -> None:
        self.vendor = vendor
        self.transport = transport
        self.name = vendor.spec.name
        headers = {"content-type": "application/json", "accept": "application/json"}
        if vendor.api_key is not None:
            headers["authorization"] = f"Bearer {vendor.api_key}"
        headers.update(vendor.headers)
        self._headers = headers
        self._url = f"{vendor.base_url}/v2/chat"

    async def complete(self, request: Mapping[str, Any], vendor_model: str,
                       extra_headers: Mapping[str, str] | None = None) -> Completion:
        drops = Drops(request, self.name)
        body = orjson.dumps(encode_request(request, vendor_model, drops, stream=False))
        headers = {**self._headers, **extra_headers} if extra_headers else self._headers
        resp = await self.transport.request("POST", self._url, headers, body, self.vendor.timeouts)
        raw = await resp.read()
        if resp.status >= 400:
            raise error_from_status(self.name, resp.status, resp.headers, raw)
        data = load_json(raw, self.name)
        if not isinstance(data, dict) or "message" not in data:
            raise UpstreamError(f"{self.name} sent an answer without 'message'", code="upstream_invalid_response")
        out = decode_response(data)
        out["model"] = vendor_model
        return Completion(out, resp.status, drops.dropped)

    async def stream(self, request: Mapping[str, Any], vendor_model: str,
                     extra_headers: Mapping[str, str] | None = None) -> CohereStream:
        drops = Drops(request, self.name)
        body = orjson.dumps(encode_request(request, vendor_model, drops, stream=True))
        headers = {**self._headers, **(extra_headers or {}), "accept": "text/event-stream"}
        resp = await self.transport.request("POST", self._url, headers, body, self.vendor.timeouts)
        await check_stream_response(self.name, resp)
        return CohereStream(resp, drops.dropped, self.name, vendor_model)
