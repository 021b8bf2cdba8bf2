"""What every translating adapter shares: parameter drops, content parts, canonical output, streams.

The gateway speaks Chat Completions; native vendors (Anthropic, Gemini, Bedrock,
Cohere) do not. Each adapter translates the request out and the answer back,
and the pieces they have in common live here so that the same OpenAI feature
is read the same way for every vendor:

* :class:`Drops` - a parameter a vendor cannot honour is dropped and named
  (the pipeline reports it in ``x-interlock-dropped-params``), or refused with
  a 400 when the caller set ``provider.require_parameters: true``;
* :func:`split_data_url` / :func:`file_part` - image and file parts in their
  URL and base64 forms;
* :class:`ChunkEmitter` - canonical ``chat.completion.chunk`` payloads, built
  from pre-encoded byte prefixes because one is made per vendor event;
* :class:`ToolIndexer` - OpenAI tool-call indexes assigned in order of
  appearance, whatever indexes (or none) the vendor uses;
* :class:`TranslatedStream` - the read loop, end-of-stream and truncation
  rules common to every streamed translation.

Canonical reasoning (documented in the README's *Native vendors* section): the assistant message
carries ``reasoning_content`` (the text) and ``thinking_blocks``, a list of
``{"type": "thinking", "thinking", "signature"}`` and
``{"type": "redacted_thinking", "data"}`` in vendor order - LiteLLM's shape -
so a client that sends the message back round-trips the signatures.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import orjson

from interlock.core.errors import GatewayError, InvalidRequest, UpstreamError
from interlock.core.pricing import Usage
from interlock.vendors.transport import UpstreamResponse

#: OpenAI's finish reasons, for validating what a vendor mapping produces.
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter")

#: ``reasoning_effort`` → thinking budget (tokens) for vendors that take a budget.
EFFORT_BUDGET = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}


class Drops:
    """Parameters a vendor cannot honour: dropped and listed, or refused when the caller requires them."""

    __slots__ = ("_strict", "names", "vendor")

    def __init__(self, request: Mapping[str, Any], vendor: str) -> None:
        provider = request.get("provider")
        self._strict = isinstance(provider, Mapping) and provider.get("require_parameters") is True
        self.vendor = vendor
        self.names: list[str] = []

    def add(self, param: str, why: str) -> None:
        if self._strict:
            raise InvalidRequest(f"{self.vendor} cannot honour '{param}' ({why}), and the request sets "
                                 "provider.require_parameters: true.", param=param, code="unsupported_parameter")
        if param not in self.names:
            self.names.append(param)

    def check_unsupported(self, request: Mapping[str, Any], names: Iterable[str]) -> None:
        """Drop every listed parameter the request actually sets (None / False / empty are unset)."""
        for name in names:
            value = request.get(name)
            if name == "parallel_tool_calls":
                # Parallel calls are every vendor's default: only turning them off is unsupported.
                if value is False:
                    self.add(name, "this vendor cannot disable parallel tool calls")
                continue
            if value is None or value is False or value == [] or value == {}:
                continue
            if name == "n" and value == 1:
                continue
            self.add(name, "not supported by this vendor")

    @property
    def dropped(self) -> tuple[str, ...]:
        return tuple(self.names)


class Turns(list[dict[str, Any]]):
    """A vendor's message list where consecutive turns of one role are merged.

    Anthropic, Bedrock and Gemini require alternating roles, so consecutive
    canonical messages of one role (several tool results, a user message after
    a tool result) become one turn: ``{"role": r, key: [...blocks]}``.
    """

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def push(self, role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if self and self[-1]["role"] == role:
            self[-1][self.key].extend(blocks)
        else:
            self.append({"role": role, self.key: blocks})


def max_tokens_of(request: Mapping[str, Any]) -> int | None:
    value = request.get("max_completion_tokens")
    if value is None:
        value = request.get("max_tokens")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def stop_list(request: Mapping[str, Any]) -> list[str]:
    stop = request.get("stop")
    if isinstance(stop, str):
        return [stop]
    return [s for s in stop if isinstance(s, str)] if isinstance(stop, list) else []


def text_of(content: Any) -> str:
    """The text of a message's content (string or parts); non-text parts contribute nothing."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def split_data_url(url: str) -> tuple[str, str] | None:
    """``data:<mime>;base64,<data>`` → (mime, data); None for any other URL."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url.partition(",")
    if not sep or not head.endswith(";base64"):
        raise InvalidRequest("An image or file data URL must be base64-encoded (data:<type>;base64,...).",
                             param="messages.content", code="invalid_value")
    return head[5:-7] or "application/octet-stream", data


_EXT_MIME = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
             "webp": "image/webp", "pdf": "application/pdf", "txt": "text/plain", "heic": "image/heic"}


def mime_from_name(name: str, default: str) -> str:
    ext = name.rsplit("?", 1)[0].rsplit(".", 1)[-1].lower() if "." in name else ""
    return _EXT_MIME.get(ext, default)


def file_part(part: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """An OpenAI ``file`` part → (mime, base64 data, filename). Only inline ``file_data`` can be forwarded."""
    file = part.get("file")
    if not isinstance(file, Mapping) or not isinstance(file.get("file_data"), str):
        raise InvalidRequest("Only file parts with inline 'file_data' can be sent to this vendor ('file_id' refers "
                             "to OpenAI's file store).", param="messages.content.file", code="unsupported_value")
    data = file["file_data"]
    filename = file.get("filename") if isinstance(file.get("filename"), str) else None
    split = split_data_url(data)
    if split is not None:
        return split[0], split[1], filename
    return mime_from_name(filename or "", "application/pdf"), data, filename


def parse_arguments(arguments: Any, where: str) -> Any:
    """Tool-call arguments (a JSON string in OpenAI's format) as a value for vendors that want objects."""
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or arguments == "":
        return {}
    try:
        return orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError):
        raise InvalidRequest(f"'{where}' must be a JSON string: this vendor needs the tool arguments as an object.",
                             param=where, code="invalid_value") from None


def tool_call_names(messages: Iterable[Any]) -> dict[str, str]:
    """Tool-call id → function name, for vendors whose tool results are keyed by name."""
    names: dict[str, str] = {}
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "assistant":
            for call in message.get("tool_calls") or ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict) and isinstance(call.get("id"), str):
                    names[call["id"]] = str(fn.get("name", ""))
    return names


def structured_output(request: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """``response_format`` as (name, JSON schema); json_object is the schema ``{"type": "object"}``."""
    fmt = request.get("response_format")
    if not isinstance(fmt, Mapping):
        return None
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        spec = spec if isinstance(spec, Mapping) else {}
        schema = spec.get("schema")
        return str(spec.get("name") or "json_output"), schema if isinstance(schema, dict) else {"type": "object"}
    if fmt.get("type") == "json_object":
        return "json_output", {"type": "object"}
    return None


def new_id(prefix: str = "chatcmpl-") -> str:
    return prefix + os.urandom(12).hex()


def call_id() -> str:
    return "call_" + os.urandom(12).hex()


def completion(cid: str, model: str, choices: list[dict[str, Any]], usage: Usage | None,
               created: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": model,
        "choices": choices,
    }
    if usage is not None:
        data["usage"] = usage.to_openai()
    return data


def message_choice(index: int, content: str | None, finish: str | None, *, reasoning: str | None = None,
                   thinking_blocks: list[dict[str, Any]] | None = None,
                   tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    # ``refusal`` is required (nullable) in OpenAI's message. No native vendor sends a refusal *message*:
    # Anthropic's stop_reason "refusal" (and Gemini/Bedrock safety stops) cut the answer off, which
    # OpenAI reports as finish_reason "content_filter" with the text produced so far as content.
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if reasoning:
        message["reasoning_content"] = reasoning
    if thinking_blocks:
        message["thinking_blocks"] = thinking_blocks
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {"index": index, "message": message, "logprobs": None, "finish_reason": finish}


def tool_call(cid: str, name: str, arguments: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"id": cid, "type": "function", "function": {"name": name, "arguments": arguments}}
    if extra:
        call["extra_content"] = extra
    return call


class ChunkEmitter:
    """Canonical chunk payloads with the id/model/created prefix encoded once per stream."""

    __slots__ = ("_head", "_prefixes")

    def __init__(self, cid: str, model: str, created: int | None = None) -> None:
        head = orjson.dumps({"id": cid, "object": "chat.completion.chunk",
                             "created": created if created is not None else int(time.time()), "model": model})
        self._head = head[:-1] + b',"choices":'
        self._prefixes: dict[int, bytes] = {}

    def delta(self, delta: dict[str, Any], finish: str | None = None, index: int = 0,
              logprobs: dict[str, Any] | None = None) -> bytes:
        prefix = self._prefixes.get(index)
        if prefix is None:
            prefix = self._prefixes[index] = self._head + b'[{"index":' + str(index).encode() + b',"delta":'
        tail = b',"logprobs":null,"finish_reason":null}]}' if finish is None else (
            b',"logprobs":null,"finish_reason":"' + finish.encode() + b'"}]}')
        if logprobs is not None:
            tail = b',"logprobs":' + orjson.dumps(logprobs) + tail[len(b',"logprobs":null'):]
        return prefix + orjson.dumps(delta) + tail

    def usage(self, usage: Usage) -> bytes:
        return self._head + b'[],"usage":' + orjson.dumps(usage.to_openai()) + b"}"


class ToolIndexer:
    """OpenAI tool-call indexes (0, 1, ...) in order of appearance.

    Vendors key streamed tool-call fragments by a content-block index, a
    tool index, an id, or nothing at all, and some reuse index 0 for every
    call. A *start* always opens a new canonical index; a fragment goes to the
    call its key names, or to the most recently started call when the key is
    absent or unknown.
    """

    __slots__ = ("_by_key", "_last", "count", "names")

    def __init__(self) -> None:
        self._by_key: dict[Any, int] = {}
        self._last = -1
        self.count = 0
        self.names: list[str] = []

    def start(self, key: Any, name: str) -> int:
        index = self.count
        self.count += 1
        self.names.append(name)
        if key is not None:
            self._by_key[key] = index
        self._last = index
        return index

    def find(self, key: Any) -> int:
        if key is not None:
            index = self._by_key.get(key)
            if index is not None:
                return index
        return self._last


class TranslatedStream:
    """The read loop of a translated stream; subclasses turn vendor events into canonical payloads.

    ``feed`` gets raw body bytes and returns payloads; ``end`` is called once
    at end of body and returns the closing payloads (finish and usage chunks),
    or sets ``truncated`` when the vendor never said the answer was complete.
    A vendor error event raises a :class:`GatewayError` from ``feed``.
    """

    truncated: bool
    dropped: tuple[str, ...]

    def __init__(self, resp: UpstreamResponse, dropped: tuple[str, ...], vendor: str) -> None:
        self._resp = resp
        self._iter: AsyncIterator[bytes] = resp.iter_bytes().__aiter__()
        self._done = False
        self._error: GatewayError | None = None
        self.truncated = False
        self.dropped = dropped
        self.vendor = vendor

    def feed(self, data: bytes, out: list[bytes]) -> None:
        """Append the canonical payloads for these body bytes to ``out``; raise on a vendor error event."""
        raise NotImplementedError

    def end(self) -> list[bytes]:
        raise NotImplementedError

    async def next_batch(self) -> list[bytes] | None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        while not self._done:
            try:
                data = await self._iter.__anext__()
            except StopAsyncIteration:
                self._done = True
                closing = self.end()
                return closing or None
            payloads: list[bytes] = []
            try:
                self.feed(data, payloads)
            except GatewayError as err:
                if not payloads:
                    raise
                # Deliver what came before the error first; the error is raised on the next call.
                self._done = True
                self._error = err
            if payloads:
                return payloads
        return None

    def close(self) -> None:
        self._resp.close()

    def invalid(self, what: str) -> GatewayError:
        return UpstreamError(f"{self.vendor} sent a stream event interlock cannot read: {what}",
                             code="upstream_stream_malformed")


def load_json(raw: bytes, vendor: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError(f"{vendor} sent an answer that is not valid JSON",
                            code="upstream_invalid_response") from None
