"""AWS Bedrock Converse / ConverseStream: one request shape for every model family on Bedrock.

References: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html and
``API_runtime_ConverseStream.html``. Requests are signed with SigV4 (``sigv4.py``); the stream is
the binary event-stream framing (``eventstream.py``) whose ``:event-type`` header names each event.

Mapping notes: ``cache_control`` on a content part, system part, tool, tool call
or (LiteLLM's shape) whole message becomes a ``cachePoint`` block right after it
(a tool message's marker: after its ``toolResult``, whose ``status`` is ``error``
for ``is_error``); thinking blocks are
``reasoningContent`` (text + signature, or redacted bytes); ``response_format``
is a forced tool, as Converse has no JSON mode; ``top_k`` and reasoning go in
``additionalModelRequestFields`` for Anthropic models (the only family whose
field names are known here) and are dropped for others. Converse has no
``tool_choice: none``: the tools are left out when the history has no tool
blocks, otherwise the choice is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from interlock.config import VendorConfig
from interlock.core.errors import GatewayError, InvalidRequest, UpstreamError
from interlock.core.pricing import Usage
from interlock.core.vendor import Completion
from interlock.vendors.bedrock.credentials import credential_source
from interlock.vendors.bedrock.eventstream import EventStreamDecoder
from interlock.vendors.bedrock.settings import BedrockSettings
from interlock.vendors.bedrock.sigv4 import sign_headers
from interlock.vendors.bedrock.usage import usage_from_bedrock
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
    new_id,
    parse_arguments,
    split_data_url,
    stop_list,
    structured_output,
    tool_call,
)
from interlock.vendors.transport import Transport, UpstreamResponse

EVENTSTREAM = "application/vnd.amazon.eventstream"
_STOP = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
         "guardrail_intervened": "content_filter", "content_filtered": "content_filter",
         "model_context_window_exceeded": "length"}
_UNSUPPORTED = ("n", "logprobs", "top_logprobs", "logit_bias", "presence_penalty", "frequency_penalty", "seed",
                "audio", "modalities", "prediction", "web_search_options", "service_tier", "store", "metadata", "user",
                "parallel_tool_calls")
_EXCEPTION_STATUS = {"throttlingException": 429, "validationException": 400, "accessDeniedException": 403,
                     "resourceNotFoundException": 404, "serviceUnavailableException": 503,
                     "internalServerException": 500, "modelStreamErrorException": 502, "modelTimeoutException": 504}
_CACHE_POINT = {"cachePoint": {"type": "default"}}
_DOC_NAME = re.compile(r"[^A-Za-z0-9\s\-()\[\]]")


def _with_cache(block: dict[str, Any], part: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [block, _CACHE_POINT] if isinstance(part.get("cache_control"), dict) else [block]


def _mark_end(blocks: list[dict[str, Any]], message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A message-level ``cache_control`` (LiteLLM's shape): a cache point after the message's last block."""
    if isinstance(message.get("cache_control"), dict) and blocks and blocks[-1] != _CACHE_POINT:
        blocks.append(_CACHE_POINT)
    return blocks


def _blocks(content: Any, where: str, drops: Drops) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    out: list[dict[str, Any]] = []
    for part in content or ():
        kind = part.get("type")
        if kind == "text":
            out += _with_cache({"text": part.get("text", "")}, part)
        elif kind == "image_url":
            url = str((part.get("image_url") or {}).get("url", ""))
            split = split_data_url(url)
            if split is not None:
                image = {"format": split[0].split("/")[-1].replace("jpg", "jpeg"), "source": {"bytes": split[1]}}
            elif url.startswith("s3://"):
                image = {"format": url.rsplit(".", 1)[-1].lower().replace("jpg", "jpeg"),
                         "source": {"s3Location": {"uri": url}}}
            else:
                raise InvalidRequest("Bedrock takes images inline (a base64 data URL) or from S3 (s3://), not by "
                                     "http URL.", param=f"{where}.image_url.url", code="unsupported_value")
            out += _with_cache({"image": image}, part)
        elif kind == "file":
            mime, data, name = file_part(part)
            fmt = {"application/pdf": "pdf", "text/plain": "txt", "text/csv": "csv", "text/html": "html",
                   "text/markdown": "md"}.get(mime, mime.split("/")[-1])
            doc_name = _DOC_NAME.sub(" ", (name or "document").rsplit(".", 1)[0]).strip() or "document"
            out += _with_cache({"document": {"format": fmt, "name": doc_name, "source": {"bytes": data}}}, part)
        else:
            drops.add(f"{where}.{kind}", f"Bedrock Converse does not accept '{kind}' content")
    return out


def _assistant(message: Mapping[str, Any], where: str, drops: Drops) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for tb in message.get("thinking_blocks") or ():
        if not isinstance(tb, dict):
            continue
        if tb.get("type") == "redacted_thinking":
            out.append({"reasoningContent": {"redactedContent": tb.get("data", "")}})
        elif tb.get("signature"):
            out.append({"reasoningContent": {"reasoningText": {"text": tb.get("thinking", ""),
                                                               "signature": tb["signature"]}}})
    out += _blocks(message.get("content"), f"{where}.content", drops)
    for k, call in enumerate(message.get("tool_calls") or ()):
        fn = call.get("function") or {}
        out += _with_cache({"toolUse": {"toolUseId": call.get("id", ""), "name": fn.get("name", ""), "input":
                            parse_arguments(fn.get("arguments"), f"{where}.tool_calls[{k}].function.arguments")}},
                           call)
    return _mark_end(out, message)


def build_messages(request: Mapping[str, Any], drops: Drops) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
    """(system blocks, messages, whether the history holds tool blocks)."""
    system: list[dict[str, Any]] = []
    messages = Turns("content")
    has_tools = False
    push = messages.push

    for i, message in enumerate(request.get("messages") or ()):
        role = message.get("role")
        where = f"messages[{i}].content"
        if role in ("system", "developer"):
            system += _mark_end(_blocks(message.get("content"), where, drops), message)
        elif role == "user":
            push("user", _mark_end(_blocks(message.get("content"), where, drops), message))
        elif role == "assistant":
            has_tools = has_tools or bool(message.get("tool_calls"))
            push("assistant", _assistant(message, f"messages[{i}]", drops))
        elif role in ("tool", "function"):
            has_tools = True
            content = message.get("content")
            text = content if isinstance(content, str) else "".join(
                p.get("text", "") for p in content or () if isinstance(p, dict))
            result: dict[str, Any] = {"toolUseId": message.get("tool_call_id", ""), "content": [{"text": text}]}
            if message.get("is_error") is True:
                result["status"] = "error"
            parts = content if isinstance(content, list) else ()
            marked = any(isinstance(p, dict) and isinstance(p.get("cache_control"), dict) for p in parts)
            block = [{"toolResult": result}, _CACHE_POINT] if marked else [{"toolResult": result}]
            push("user", _mark_end(block, message))
    return system, messages, has_tools


def encode_request(request: Mapping[str, Any], vendor_model: str, drops: Drops) -> tuple[dict[str, Any], str | None]:
    drops.check_unsupported(request, _UNSUPPORTED)
    system, messages, history_tools = build_messages(request, drops)
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = system
    inference: dict[str, Any] = {}
    limit = max_tokens_of(request)
    if limit is not None:
        inference["maxTokens"] = limit
    if request.get("temperature") is not None:
        inference["temperature"] = request["temperature"]
    if request.get("top_p") is not None:
        inference["topP"] = request["top_p"]
    stops = stop_list(request)
    if stops:
        inference["stopSequences"] = stops
    extra: dict[str, Any] = {}
    claude = "anthropic." in vendor_model or vendor_model.startswith("anthropic")
    if request.get("top_k") is not None:
        if claude:
            extra["top_k"] = request["top_k"]
        else:
            drops.add("top_k", "Converse takes top_k only for Anthropic models here")
    effort = request.get("reasoning_effort")
    if effort is not None and effort != "none":
        budget = EFFORT_BUDGET.get(str(effort))
        if claude and budget is not None:
            extra["thinking"] = {"type": "enabled", "budget_tokens": budget}
            inference.pop("temperature", None)
            if limit is None or limit <= budget:
                inference["maxTokens"] = budget + (limit or 4096)
        else:
            drops.add("reasoning_effort", "reasoning controls are passed for Anthropic models on Bedrock only")
    if inference:
        body["inferenceConfig"] = inference
    if extra:
        body["additionalModelRequestFields"] = extra
    tools: list[dict[str, Any]] = []
    for tool in request.get("tools") or ():
        fn = tool.get("function") or {}
        spec: dict[str, Any] = {"name": fn.get("name", ""),
                                "inputSchema": {"json": fn.get("parameters") or {"type": "object", "properties": {}}}}
        if fn.get("description"):
            spec["description"] = fn["description"]
        tools.append({"toolSpec": spec})
        if isinstance(tool.get("cache_control"), dict):
            tools.append(_CACHE_POINT)
    choice = request.get("tool_choice")
    tool_choice: dict[str, Any] | None = None
    if choice == "required":
        tool_choice = {"any": {}}
    elif choice == "auto":
        tool_choice = {"auto": {}}
    elif isinstance(choice, dict):
        function = choice.get("function")
        tool_choice = {"tool": {"name": str(function.get("name", "")) if isinstance(function, dict) else ""}}
    elif choice == "none" and tools:
        if history_tools:
            drops.add("tool_choice", "Converse has no 'none' tool choice")
        else:
            tools = []
    forced: str | None = None
    schema = structured_output(request)
    if schema is not None:
        forced = schema[0]
        tools.append({"toolSpec": {"name": forced, "description": "Respond with JSON that matches this schema.",
                                   "inputSchema": {"json": schema[1]}}})
        tool_choice = {"tool": {"name": forced}}
    if tools:
        body["toolConfig"] = {"tools": tools}
        if tool_choice is not None:
            body["toolConfig"]["toolChoice"] = tool_choice
    return body, forced


def decode_response(data: Mapping[str, Any], forced: str | None, model: str) -> dict[str, Any]:
    texts: list[str] = []
    reasoning: list[str] = []
    blocks: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in ((data.get("output") or {}).get("message") or {}).get("content") or ():
        if "text" in block:
            texts.append(block["text"])
        elif "reasoningContent" in block:
            rc = block["reasoningContent"]
            if "reasoningText" in rc:
                text = rc["reasoningText"].get("text", "")
                reasoning.append(text)
                blocks.append({"type": "thinking", "thinking": text, "signature": rc["reasoningText"].get("signature", "")})
            elif "redactedContent" in rc:
                blocks.append({"type": "redacted_thinking", "data": rc["redactedContent"]})
        elif "toolUse" in block:
            use = block["toolUse"]
            arguments = orjson.dumps(use.get("input") or {}).decode()
            if forced is not None and use.get("name") == forced:
                texts.append(arguments)
            else:
                calls.append(tool_call(use.get("toolUseId", ""), use.get("name", ""), arguments))
    finish = _STOP.get(str(data.get("stopReason")), "stop")
    if finish == "tool_calls" and not calls:
        finish = "stop"
    usage = usage_from_bedrock(data["usage"]) if isinstance(data.get("usage"), dict) else None
    content = "".join(texts) if texts or not calls else None
    choice = message_choice(0, content, finish, reasoning="".join(reasoning) or None, thinking_blocks=blocks,
                            tool_calls=calls)
    return completion(new_id(), model, [choice], usage)


def exception_error(vendor: str, kind: str, payload: bytes) -> GatewayError:
    return error_from_status(vendor, _EXCEPTION_STATUS.get(kind, 500), {}, payload)


class BedrockStream(TranslatedStream):
    def __init__(self, resp: UpstreamResponse, dropped: tuple[str, ...], vendor: str, forced: str | None,
                 model: str) -> None:
        super().__init__(resp, dropped, vendor)
        self._decoder = EventStreamDecoder()
        self._emit = ChunkEmitter(new_id(), model)
        self._forced = forced
        self._tools = ToolIndexer()
        self._kinds: dict[Any, str] = {}
        self._thinking: dict[Any, dict[str, str]] = {}
        self._stop: str | None = None
        self._usage: Usage | None = None
        self._finished = False

    def feed(self, data: bytes, out: list[bytes]) -> None:
        for message in self._decoder.feed(data):
            kind = message.headers.get(":message-type")
            if kind == "exception":
                raise exception_error(self.vendor, str(message.headers.get(":exception-type")), message.payload)
            if kind == "error":
                text = str(message.headers.get(":error-message") or message.headers.get(":error-code"))
                raise UpstreamError(f"{self.vendor} failed mid-stream: {text}")
            try:
                payload = orjson.loads(message.payload) if message.payload else {}
            except orjson.JSONDecodeError:
                raise self.invalid("an event payload that is not JSON") from None
            self._event(str(message.headers.get(":event-type")), payload, out)

    def _event(self, kind: str, ev: dict[str, Any], out: list[bytes]) -> None:
        emit = self._emit
        index = ev.get("contentBlockIndex")
        if kind == "contentBlockDelta":
            delta = ev.get("delta") or {}
            if "text" in delta:
                out.append(emit.delta({"content": delta["text"]}))
            elif "toolUse" in delta:
                partial = (delta["toolUse"] or {}).get("input", "")
                if self._kinds.get(index) == "json":
                    out.append(emit.delta({"content": partial}))
                elif partial:
                    out.append(emit.delta({"tool_calls": [{"index": self._tools.find(index),
                                                           "function": {"arguments": partial}}]}))
            elif "reasoningContent" in delta:
                self._reasoning(index, delta["reasoningContent"], out)
        elif kind == "contentBlockStart":
            use = (ev.get("start") or {}).get("toolUse")
            if isinstance(use, dict):
                name = str(use.get("name", ""))
                if self._forced is not None and name == self._forced:
                    self._kinds[index] = "json"
                    return
                slot = self._tools.start(index, name)
                out.append(emit.delta({"tool_calls": [{"index": slot, "id": use.get("toolUseId", ""), "type": "function",
                                                       "function": {"name": name, "arguments": ""}}]}))
        elif kind == "contentBlockStop":
            block = self._thinking.pop(index, None)
            if block is not None:
                out.append(emit.delta({"thinking_blocks": [{"type": "thinking", **block}]}))
        elif kind == "messageStart":
            out.append(emit.delta({"role": ev.get("role", "assistant"), "content": ""}))
        elif kind == "messageStop":
            self._stop = str(ev.get("stopReason"))
        elif kind == "metadata":
            if isinstance(ev.get("usage"), dict):
                self._usage = usage_from_bedrock(ev["usage"])
            out.extend(self._close())

    def _reasoning(self, index: Any, rc: Mapping[str, Any], out: list[bytes]) -> None:
        block = self._thinking.setdefault(index, {"thinking": "", "signature": ""})
        if "text" in rc:
            block["thinking"] += rc["text"]
            out.append(self._emit.delta({"reasoning_content": rc["text"]}))
        elif "signature" in rc:
            block["signature"] += rc["signature"]
        elif "redactedContent" in rc:
            self._thinking.pop(index, None)
            out.append(self._emit.delta({"thinking_blocks": [{"type": "redacted_thinking",
                                                              "data": rc["redactedContent"]}]}))

    def _close(self) -> list[bytes]:
        if self._finished or self._stop is None:
            return []
        self._finished = True
        self._done = True
        finish = _STOP.get(self._stop, "stop")
        if finish == "tool_calls" and self._tools.count == 0:
            finish = "stop"
        out = [self._emit.delta({}, finish)]
        if self._usage is not None:
            out.append(self._emit.usage(self._usage))
        return out

    def end(self) -> list[bytes]:
        if self._finished:
            return []
        if self._stop is None:
            self.truncated = True
            return []
        return self._close()


class BedrockAdapter:
    def __init__(self, vendor: VendorConfig, transport: Transport) -> None:
        self.vendor = vendor
        self.transport = transport
        self.name = vendor.spec.name
        settings = vendor.settings_as(BedrockSettings)
        self.region = settings.region or "us-east-1"
        self.credentials = credential_source(settings)

    def url(self, vendor_model: str, stream: bool) -> str:
        return f"{self.vendor.base_url}/model/{quote(vendor_model, safe='')}/{'converse-stream' if stream else 'converse'}"

    async def _headers(self, url: str, body: bytes, stream: bool, extra: Mapping[str, str] | None) -> dict[str, str]:
        base = {"content-type": "application/json",
                "accept": EVENTSTREAM if stream else "application/json", **self.vendor.headers}
        signed = sign_headers(await self.credentials.get(), "POST", url, body, self.region, "bedrock", base)
        return {**signed, **extra} if extra else signed

    async def complete(self, request: Mapping[str, Any], vendor_model: str,
                       extra_headers: Mapping[str, str] | None = None) -> Completion:
        drops = Drops(request, self.name)
        payload, forced = encode_request(request, vendor_model, drops)
        body = orjson.dumps(payload)
        url = self.url(vendor_model, False)
        resp = await self.transport.request("POST", url, await self._headers(url, body, False, extra_headers), body,
                                            self.vendor.timeouts)
        raw = await resp.read()
        if resp.status >= 400:
            raise error_from_status(self.name, resp.status, resp.headers, raw)
        data = load_json(raw, self.name)
        if not isinstance(data, dict) or "output" not in data:
            raise UpstreamError(f"{self.name} sent an answer without 'output'", code="upstream_invalid_response")
        return Completion(decode_response(data, forced, vendor_model), resp.status, drops.dropped)

    async def stream(self, request: Mapping[str, Any], vendor_model: str,
                     extra_headers: Mapping[str, str] | None = None) -> BedrockStream:
        drops = Drops(request, self.name)
        payload, forced = encode_request(request, vendor_model, drops)
        body = orjson.dumps(payload)
        url = self.url(vendor_model, True)
        resp = await self.transport.request("POST", url, await self._headers(url, body, True, extra_headers), body,
                                            self.vendor.timeouts)
        await check_stream_response(self.name, resp, EVENTSTREAM)
        return BedrockStream(resp, drops.dropped, self.name, forced, vendor_model)
