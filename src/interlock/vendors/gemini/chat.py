"""Google Gemini ``generateContent``: the canonical request out, GenerateContentResponse back.

Reference: https://ai.google.dev/api/generate-content. Vertex AI serves the same
body under another URL and credential (``vertex.py`` subclasses the adapter).

Mapping notes (full table in the README's *Native vendors* section):

* system/developer messages → ``systemInstruction``; assistant → role
  ``model``; tool results → ``functionResponse`` parts, consecutive ones in
  one user turn (Gemini wants every response to a turn's calls together);
* ``response_format`` → ``responseMimeType: application/json`` plus
  ``responseSchema`` (JSON Schema narrowed to the OpenAPI subset Gemini takes);
* ``reasoning_effort`` → ``thinkingConfig.thinkingBudget`` with thoughts
  included, so they come back as ``reasoning_content``;
* ``thoughtSignature`` round-trips: on a function call it is the tool call's
  ``extra_content.google.thought_signature`` (the form Google's own OpenAI
  endpoint uses); on any other part it becomes a ``thinking_blocks`` entry;
* Gemini reports ``STOP`` even when it called a function: the finish reason is
  ``tool_calls`` whenever the candidate holds calls.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import orjson

from interlock.config import VendorConfig
from interlock.core.errors import GatewayError, UpstreamError
from interlock.core.pricing import Usage
from interlock.core.vendor import Completion
from interlock.vendors.errors import check_stream_response, error_from_status
from interlock.vendors.gemini.usage import usage_from_gemini
from interlock.vendors.translate_common import (
    ChunkEmitter,
    Drops,
    TranslatedStream,
    Turns,
    call_id,
    completion,
    file_part,
    load_json,
    max_tokens_of,
    message_choice,
    mime_from_name,
    new_id,
    parse_arguments,
    split_data_url,
    stop_list,
    structured_output,
    tool_call,
    tool_call_names,
)
from interlock.vendors.transport import Transport, UpstreamResponse
from interlock.wire.sse import SSEDecoder

_FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter",
           "BLOCKLIST": "content_filter", "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
           "IMAGE_SAFETY": "content_filter", "LANGUAGE": "content_filter", "MALFORMED_FUNCTION_CALL": "stop",
           "OTHER": "stop", "FINISH_REASON_UNSPECIFIED": "stop"}
_EFFORT = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
_UNSUPPORTED = ("logit_bias", "audio", "modalities", "prediction", "web_search_options", "service_tier", "store",
                "metadata", "user", "parallel_tool_calls")
#: JSON Schema keywords Gemini's ``Schema`` (an OpenAPI 3.0 subset) accepts.
_SCHEMA_KEYS = frozenset({"type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
                          "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
                          "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum",
                          "maximum"})
_GOOGLE = "google"


def gemini_schema(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """A JSON Schema narrowed to Gemini's Schema: local ``$ref`` inlined, ``type: [x, "null"]`` → nullable."""
    if not isinstance(schema, dict) or depth > 32:
        return schema
    root = schema if root is None else root
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for key in ref[2:].split("/"):
            target = target.get(key) if isinstance(target, dict) else None
        return gemini_schema(target, root, depth + 1) if isinstance(target, dict) else {}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, list):
            kinds = [k for k in value if k != "null"]
            out["type"] = kinds[0] if kinds else "null"
            if "null" in value:
                out["nullable"] = True
        elif key == "const":
            out["enum"] = [value]
        elif key in ("properties",) and isinstance(value, dict):
            out[key] = {name: gemini_schema(sub, root, depth + 1) for name, sub in value.items()}
        elif key == "items":
            out[key] = gemini_schema(value, root, depth + 1)
        elif key in ("anyOf", "oneOf") and isinstance(value, list):
            out["anyOf"] = [gemini_schema(sub, root, depth + 1) for sub in value]
        elif key in _SCHEMA_KEYS:
            out[key] = value
    return out


def _part(part: Mapping[str, Any], i: int, drops: Drops) -> dict[str, Any] | None:
    kind = part.get("type")
    if kind == "text":
        return {"text": part.get("text", "")}
    if kind == "image_url":
        url = str((part.get("image_url") or {}).get("url", ""))
        split = split_data_url(url)
        if split is not None:
            return {"inlineData": {"mimeType": split[0], "data": split[1]}}
        return {"fileData": {"mimeType": mime_from_name(url, "image/jpeg"), "fileUri": url}}
    if kind == "file":
        mime, data, _ = file_part(part)
        return {"inlineData": {"mimeType": mime, "data": data}}
    if kind == "input_audio":
        audio = part.get("input_audio") or {}
        return {"inlineData": {"mimeType": f"audio/{audio.get('format', 'wav')}", "data": audio.get("data", "")}}
    drops.add(f"messages[{i}].content.{kind}", f"Gemini does not accept '{kind}' content")
    return None


def _parts(content: Any, i: int, drops: Drops) -> list[dict[str, Any]]:
    """Gemini parts of a message's content; ``i`` (the message index) names a dropped part."""
    if isinstance(content, str):
        return [{"text": content}] if content else []
    out = []
    for part in content or ():
        converted = _part(part, i, drops)
        if converted is not None:
            out.append(converted)
    return out


def _model_parts(message: Mapping[str, Any], i: int, drops: Drops, names: dict[str, str]) -> list[dict[str, Any]]:
    """An assistant message as ``model`` parts; its tool calls' names are recorded in ``names`` by id."""
    parts: list[dict[str, Any]] = []
    blocks = message.get("thinking_blocks")
    if blocks:
        for block in blocks:
            if isinstance(block, dict) and block.get("signature"):
                parts.append({"text": block.get("thinking", ""), "thought": True,
                              "thoughtSignature": block["signature"]})
    content = message.get("content")
    if content:
        parts += _parts(content, i, drops)
    calls = message.get("tool_calls")
    if calls:
        for k, call in enumerate(calls):
            fn = call.get("function") or {}
            name = fn.get("name", "")
            arguments = fn.get("arguments")
            try:
                args = orjson.loads(arguments) if isinstance(arguments, str) and arguments else None
            except orjson.JSONDecodeError:
                args = None
            if args is None:
                # Not a plain JSON string: an object, empty, or an error naming the argument.
                args = parse_arguments(arguments, f"messages[{i}].tool_calls[{k}].function.arguments")
            out: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
            extra = call.get("extra_content")
            if extra is not None:
                google = extra.get(_GOOGLE) if isinstance(extra, dict) else None
                signature = google.get("thought_signature") if isinstance(google, dict) else None
                if isinstance(signature, str):
                    out["thoughtSignature"] = signature
            parts.append(out)
            cid = call.get("id")
            if isinstance(cid, str):
                names[cid] = str(name)
    return parts


def _response_value(content: Any) -> dict[str, Any]:
    text = content if isinstance(content, str) else "".join(
        p.get("text", "") for p in content or () if isinstance(p, dict))
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"content": text}
    return value if isinstance(value, dict) else {"content": value}


def build_contents(request: Mapping[str, Any], drops: Drops) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    messages = request.get("messages") or ()
    # Tool-call id → name, filled as assistant messages go by (a tool result follows its call);
    # a result whose call comes later or nowhere falls back to a scan of every message.
    names: dict[str, str] = {}
    everything: dict[str, str] | None = None
    system: list[dict[str, Any]] = []
    contents = Turns("parts")
    push = contents.push

    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "user":
            push("user", _parts(message.get("content"), i, drops))
        elif role == "assistant":
            push("model", _model_parts(message, i, drops, names))
        elif role in ("system", "developer"):
            system.extend(_parts(message.get("content"), i, drops))
        elif role in ("tool", "function"):
            tid = message.get("tool_call_id")
            if isinstance(tid, str):
                name = names.get(tid)
                if name is None:
                    if everything is None:
                        everything = tool_call_names(messages)
                    name = everything.get(tid, message.get("name") or tid or "")
            else:
                name = message.get("name", "")
            response: dict[str, Any] = {"name": name, "response": _response_value(message.get("content"))}
            push("user", [{"functionResponse": response}])
    return ({"parts": system} if system else None), contents


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"functionCallingConfig": {"mode": "AUTO"}}
    if choice == "none":
        return {"functionCallingConfig": {"mode": "NONE"}}
    if choice == "required":
        return {"functionCallingConfig": {"mode": "ANY"}}
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}


class ConversionMemo:
    """Converted tool declarations and response schemas, by the JSON text of what they came from.

    Clients send the same tools and schemas request after request, and converting
    them is the largest part of encoding a request. The memo is bounded by entry
    count and by the bytes of the keys (the converted values are no larger than
    their sources); the oldest entries go first. Values are shared between
    requests: never mutate them.
    """

    __slots__ = ("_items", "max_bytes", "max_items", "size")

    def __init__(self, max_items: int = 512, max_bytes: int = 4 << 20) -> None:
        self._items: OrderedDict[bytes, Any] = OrderedDict()  # O(1) oldest-first eviction
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.size = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, prefix: bytes, source: Any, build: Callable[[Any], Any]) -> Any:
        """``build(source)``, remembered under ``prefix`` + ``source``'s serialised form."""
        try:
            key = prefix + orjson.dumps(source)
        except orjson.JSONEncodeError:
            return build(source)
        value = self._items.get(key)
        if value is not None:
            return value
        value = build(source)
        if len(key) <= self.max_bytes // 8:  # one huge tool set must not flush everything else
            self._items[key] = value
            self.size += len(key)
            while len(self._items) > self.max_items or self.size > self.max_bytes:
                oldest, _ = self._items.popitem(last=False)
                self.size -= len(oldest)
        return value


_MEMO = ConversionMemo()


def _declarations(tools: Any) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """Function declarations, and the types of the tools Gemini has no equivalent for."""
    declarations = []
    skipped = []
    for tool in tools:
        if tool.get("type", "function") != "function":
            skipped.append(str(tool.get("type")))
            continue
        fn = tool["function"]
        decl: dict[str, Any] = {"name": fn["name"]}
        if fn.get("description"):
            decl["description"] = fn["description"]
        if fn.get("parameters"):
            decl["parameters"] = gemini_schema(fn["parameters"])
        declarations.append(decl)
    return declarations, tuple(skipped)


_GENERATION = (("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK"), ("seed", "seed"),
               ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty"))


def encode_request(request: Mapping[str, Any], drops: Drops) -> dict[str, Any]:
    """The ``GenerateContentRequest`` body. Its tool declarations and schema may be shared: do not mutate them."""
    drops.check_unsupported(request, _UNSUPPORTED)
    system, contents = build_contents(request, drops)
    body: dict[str, Any] = {"contents": contents}
    if system is not None:
        body["systemInstruction"] = system
    tools = request.get("tools")
    if tools:
        declarations, skipped = _MEMO.get(b"t", tools, _declarations)
        for kind in skipped:
            drops.add("tools", f"Gemini has no '{kind}' tool")
        if declarations:
            body["tools"] = [{"functionDeclarations": declarations}]
            config = _tool_config(request.get("tool_choice"))
            if config is not None:
                body["toolConfig"] = config
    generation: dict[str, Any] = {}
    limit = max_tokens_of(request)
    if limit is not None:
        generation["maxOutputTokens"] = limit
    for name, key in _GENERATION:
        value = request.get(name)
        if value is not None:
            generation[key] = value
    n = request.get("n")
    if isinstance(n, int) and n > 1:
        generation["candidateCount"] = n
    stops = stop_list(request)
    if stops:
        generation["stopSequences"] = stops
    if request.get("logprobs"):
        generation["responseLogprobs"] = True
        if request.get("top_logprobs") is not None:
            generation["logprobs"] = request["top_logprobs"]
    schema = structured_output(request)
    if schema is not None:
        generation["responseMimeType"] = "application/json"
        fmt = request.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            generation["responseSchema"] = _MEMO.get(b"s", schema[1], gemini_schema)
    effort = request.get("reasoning_effort")
    native = request.get("thinking")
    if isinstance(native, dict) and isinstance(native.get("budget_tokens"), int):
        generation["thinkingConfig"] = {"thinkingBudget": native["budget_tokens"], "includeThoughts": True}
    elif effort is not None:
        budget = _EFFORT.get(str(effort))
        if budget is None:
            drops.add("reasoning_effort", f"unknown effort {effort!r}")
        else:
            generation["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": budget > 0}
    if generation:
        body["generationConfig"] = generation
    return body


# --------------------------------------------------------------------------- answers


def _finish(reason: Any, has_calls: bool) -> str:
    if has_calls and reason in ("STOP", None, "FINISH_REASON_UNSPECIFIED"):
        return "tool_calls"
    return _FINISH.get(str(reason), "stop")


def _signature_block(part: Mapping[str, Any]) -> dict[str, Any]:
    text = part.get("text", "") if part.get("thought") else ""
    return {"type": "thinking", "thinking": text, "signature": part["thoughtSignature"]}


def decode_response(data: Mapping[str, Any]) -> dict[str, Any]:
    choices = []
    for position, cand in enumerate(data.get("candidates") or ()):
        texts: list[str] = []
        thoughts: list[str] = []
        blocks: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        for part in (cand.get("content") or {}).get("parts") or ():
            call = part.get("functionCall")
            if isinstance(call, dict):
                extra = {_GOOGLE: {"thought_signature": part["thoughtSignature"]}} if "thoughtSignature" in part else None
                calls.append(tool_call(str(call.get("id") or call_id()), str(call.get("name", "")),
                                       orjson.dumps(call.get("args") or {}).decode(), extra))
                continue
            if "thoughtSignature" in part:
                blocks.append(_signature_block(part))
            if part.get("thought"):
                thoughts.append(part.get("text", ""))
            elif "text" in part:
                texts.append(part["text"])
        content = "".join(texts) if texts or not calls else None
        choice = message_choice(cand.get("index", position), content, _finish(cand.get("finishReason"), bool(calls)),
                                reasoning="".join(thoughts) or None, thinking_blocks=blocks, tool_calls=calls)
        choice["logprobs"] = openai_logprobs(cand.get("logprobsResult"))
        choices.append(choice)
    if not choices:
        # The prompt itself was blocked (promptFeedback.blockReason): an empty, filtered answer.
        choices.append(message_choice(0, "", "content_filter"))
    usage = usage_from_gemini(data["usageMetadata"]) if isinstance(data.get("usageMetadata"), dict) else None
    return completion(str(data.get("responseId") or new_id()), str(data.get("modelVersion", "")), choices, usage)


def _token_logprob(entry: Mapping[str, Any]) -> dict[str, Any]:
    token = str(entry.get("token", ""))
    value = entry.get("logProbability")
    return {"token": token, "logprob": float(value) if isinstance(value, int | float) else 0.0,
            "bytes": list(token.encode())}


def openai_logprobs(result: Any) -> dict[str, Any] | None:
    """Gemini's ``logprobsResult`` (``responseLogprobs``) as OpenAI's ``choices[].logprobs``."""
    if not isinstance(result, Mapping):
        return None
    chosen = result.get("chosenCandidates")
    if not isinstance(chosen, list):
        return None
    tops = result.get("topCandidates")
    tops = tops if isinstance(tops, list) else []
    content = []
    for i, entry in enumerate(chosen):
        if not isinstance(entry, Mapping):
            continue
        item = _token_logprob(entry)
        top = tops[i].get("candidates") if i < len(tops) and isinstance(tops[i], Mapping) else None
        item["top_logprobs"] = [_token_logprob(c) for c in top if isinstance(c, Mapping)] if isinstance(
            top, list) else []
        content.append(item)
    return {"content": content, "refusal": None}


def gemini_error(vendor: str, status: int, headers: Mapping[str, str], raw: bytes) -> GatewayError:
    """Gemini answers a bad API key with a 400 (``API_KEY_INVALID``): that is our credential, so a 502."""
    if status == 400 and (b"API_KEY_INVALID" in raw or b"API key not valid" in raw):
        status = 401
    return error_from_status(vendor, status, headers, raw)


class GeminiStream(TranslatedStream):
    """``streamGenerateContent?alt=sse``: each event a whole response object carrying a few tokens."""

    def __init__(self, resp: UpstreamResponse, dropped: tuple[str, ...], vendor: str) -> None:
        super().__init__(resp, dropped, vendor)
        self._sse = SSEDecoder()
        self._emit: ChunkEmitter | None = None
        self._started: set[int] = set()
        self._calls: dict[int, int] = {}
        self._finished: set[int] = set()
        self._usage: Usage | None = None

    def feed(self, data: bytes, out: list[bytes]) -> None:
        for event in self._sse.feed(data):
            if not event.data:
                continue
            try:
                payload = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                raise self.invalid(event.data[:100].decode("utf-8", "replace")) from None
            if not isinstance(payload, dict):
                raise self.invalid("an event that is not an object")
            self._event(payload, out)

    def _event(self, data: dict[str, Any], out: list[bytes]) -> None:
        error = data.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            raise gemini_error(self.vendor, code if isinstance(code, int) else 500, {}, orjson.dumps(data))
        if self._emit is None:
            self._emit = ChunkEmitter(str(data.get("responseId") or new_id()), str(data.get("modelVersion", "")))
        emit = self._emit
        if isinstance(data.get("usageMetadata"), dict):
            self._usage = usage_from_gemini(data["usageMetadata"])
        candidates = data.get("candidates") or ()
        if not candidates and (data.get("promptFeedback") or {}).get("blockReason"):
            self._finished.add(0)
            out.append(emit.delta({"role": "assistant", "content": ""}, "content_filter"))
        for position, cand in enumerate(candidates):
            index = cand.get("index", position)
            delta: dict[str, Any] = {}
            if index not in self._started:
                self._started.add(index)
                delta["role"] = "assistant"
            self._parts(cand, index, delta)
            logprobs = openai_logprobs(cand.get("logprobsResult"))
            reason = cand.get("finishReason")
            if reason is not None and index not in self._finished:
                self._finished.add(index)
                out.append(emit.delta(delta, _finish(reason, index in self._calls), index, logprobs))
            elif delta:
                out.append(emit.delta(delta, None, index, logprobs))

    def _parts(self, cand: Mapping[str, Any], index: int, delta: dict[str, Any]) -> None:
        for part in (cand.get("content") or {}).get("parts") or ():
            call = part.get("functionCall")
            if isinstance(call, dict):
                slot = self._calls.get(index, 0)
                self._calls[index] = slot + 1
                entry: dict[str, Any] = {"index": slot, "id": str(call.get("id") or call_id()), "type": "function",
                                         "function": {"name": call.get("name", ""),
                                                      "arguments": orjson.dumps(call.get("args") or {}).decode()}}
                if "thoughtSignature" in part:
                    entry["extra_content"] = {_GOOGLE: {"thought_signature": part["thoughtSignature"]}}
                delta.setdefault("tool_calls", []).append(entry)
                continue
            if "thoughtSignature" in part:
                delta.setdefault("thinking_blocks", []).append(_signature_block(part))
            if part.get("thought"):
                delta["reasoning_content"] = delta.get("reasoning_content", "") + part.get("text", "")
            elif "text" in part:
                delta["content"] = delta.get("content", "") + part["text"]

    def end(self) -> list[bytes]:
        if not self._finished or self._emit is None:
            self.truncated = True
            return []
        return [self._emit.usage(self._usage)] if self._usage is not None else []


class GeminiAdapter:
    """The Gemini Developer API (``x-goog-api-key``); :class:`VertexGeminiAdapter` overrides URL and auth."""

    def __init__(self, vendor: VendorConfig, transport: Transport) -> None:
        self.vendor = vendor
        self.transport = transport
        self.name = vendor.spec.name
        headers = {"content-type": "application/json"}
        if vendor.api_key is not None:
            headers["x-goog-api-key"] = vendor.api_key
        headers.update(vendor.headers)
        self._headers = headers

    def url(self, vendor_model: str, stream: bool) -> str:
        model = quote(vendor_model.removeprefix("models/"), safe="")
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"{self.vendor.base_url}/v1beta/models/{model}:{method}"

    async def headers(self, extra: Mapping[str, str] | None) -> Mapping[str, str]:
        return {**self._headers, **extra} if extra else self._headers

    async def complete(self, request: Mapping[str, Any], vendor_model: str,
                       extra_headers: Mapping[str, str] | None = None) -> Completion:
        drops = Drops(request, self.name)
        body = orjson.dumps(encode_request(request, drops))
        resp = await self.transport.request("POST", self.url(vendor_model, False), await self.headers(extra_headers),
                                            body, self.vendor.timeouts)
        raw = await resp.read()
        if resp.status >= 400:
            raise gemini_error(self.name, resp.status, resp.headers, raw)
        data = load_json(raw, self.name)
        if not isinstance(data, dict) or "error" in data:
            raise UpstreamError(f"{self.name} sent an answer without candidates", code="upstream_invalid_response")
        return Completion(decode_response(data), resp.status, drops.dropped)

    async def stream(self, request: Mapping[str, Any], vendor_model: str,
                     extra_headers: Mapping[str, str] | None = None) -> GeminiStream:
        drops = Drops(request, self.name)
        body = orjson.dumps(encode_request(request, drops))
        resp = await self.transport.request("POST", self.url(vendor_model, True), await self.headers(extra_headers),
                                            body, self.vendor.timeouts)
        if resp.status >= 400:
            raise gemini_error(self.name, resp.status, resp.headers, await resp.read())
        await check_stream_response(self.name, resp)
        return GeminiStream(resp, drops.dropped, self.name)
