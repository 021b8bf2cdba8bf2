"""The OpenAI Chat Completions format: the inbound codec, whose format is the canonical one.

Canonical requests and responses *are* Chat Completions dicts, so parsing is
validation (``chat_validation``: every documented field checked, unknown ones
passed through, so new vendor features work before we learn about them).
Answers are written back with the gateway's cost added; stream chunks are
relayed byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

import msgspec
import orjson

from interlock.core.canonical import CanonicalUsage, ChatCompletion, ChatCompletionChunk, ChatRequest
from interlock.core.codec import UsageHook, malformed_event, set_cost
from interlock.core.context import RequestContext
from interlock.core.errors import GatewayError, UpstreamError
from interlock.wire.canonical import vendor_name
from interlock.wire.chat_validation import parse_json_object, validate_chat_request
from interlock.wire.sse import DONE_FRAME

__all__ = ["ChunkWriter", "OpenAIChatCodec", "error_body", "parse_json_object", "validate_chat_request"]


def error_body(err: GatewayError) -> bytes:
    return orjson.dumps(err.to_openai())


# ----------------------------------------------------------------- streaming out


#: What the relay needs of a chunk: whether it carries usage or an error (other keys are skipped). Made
#: with ``defstruct``, not a class body: msgspec reads a class's field types from its annotations, which
#: a compiled module (make fast) does not keep, and every chunk would then fail the check.
_Event = msgspec.defstruct("_Event", [("usage", Any, None), ("error", Any, None)])


class _EventFields(Protocol):
    usage: object
    error: object


#: Checks that a payload is exactly one JSON object without building it, cheaper than ``orjson.loads``
#: on a typical chunk (measured by bench/pipeline.py --stream --instructions).
_check_event = cast("Callable[[bytes], _EventFields]", msgspec.json.Decoder(_Event).decode)


def _plain(payload: bytes) -> bool:
    """One JSON object, in UTF-8, with no usage or error: relayed as it is."""
    try:
        event = _check_event(payload)
    except msgspec.MsgspecError:
        return False
    return event.usage is None and event.error is None and (payload.isascii() or _utf8(payload))


def _utf8(payload: bytes) -> bool:
    try:
        payload.decode()
    except UnicodeDecodeError:
        return False
    return True


def _last_chunk(payload: bytes | None) -> ChatCompletionChunk:
    try:
        # A vendor's payload may be any JSON (an exact annotation: the compiled build checks it).
        chunk: object = orjson.loads(payload) if payload else None
    except orjson.JSONDecodeError:
        return {}
    return cast("ChatCompletionChunk", chunk) if isinstance(chunk, dict) else {}


class ChunkWriter:
    """Re-frames canonical chunk payloads as OpenAI SSE for the client.

    Payloads pass through byte for byte once checked to be one JSON object each
    (a fused or cut event would otherwise reach the client as broken JSON or a
    silently lost token); only a usage chunk is re-serialised, to add the
    gateway's cost (never the vendor's) - or dropped when the client did not ask
    for usage (interlock always asks the vendor, to bill exactly). A malformed
    payload or a vendor's error object ends the stream with OpenAI's mid-stream
    error event, recorded as the request's failure.
    """

    __slots__ = ("_ctx", "_include_usage", "_last", "_on_usage", "failed", "usage_seen")

    def __init__(self, include_usage: bool, on_usage: UsageHook, ctx: RequestContext | None = None) -> None:
        self._include_usage = include_usage
        self._on_usage = on_usage
        self._ctx = ctx
        #: The last relayed payload: the estimated usage chunk copies its id, created and model.
        self._last: bytes | None = None
        self.usage_seen = False
        self.failed = False

    def encode(self, payloads: list[bytes]) -> bytes:
        if not payloads or self.failed:
            return b""
        for i, payload in enumerate(payloads):
            if not _plain(payload):
                return self._slow(payloads, i)
        self._last = payloads[-1]
        return b"data: " + b"\n\ndata: ".join(payloads) + b"\n\n"

    def _slow(self, payloads: list[bytes], start: int) -> bytes:
        """A batch with a usage chunk, an error object or a malformed payload at ``start``: the plain
        payloads before it pass as they are, the rest one at a time."""
        kept = payloads[:start]
        failure: GatewayError | None = None
        for payload in payloads[start:]:
            if _plain(payload):
                kept.append(payload)
                self._last = payload
                continue
            try:
                # A vendor's payload may be any JSON (an exact annotation: the compiled build checks it).
                parsed: object = orjson.loads(payload)
            except orjson.JSONDecodeError:
                parsed = None
            if not isinstance(parsed, dict):
                failure = malformed_event(vendor_name(self._ctx))
                break
            chunk = cast("ChatCompletionChunk", parsed)
            error = chunk.get("error")
            if error is not None:
                message = error.get("message") if isinstance(error, dict) else error
                failure = UpstreamError(f"{vendor_name(self._ctx)} failed mid-stream: {message}",
                                        code="upstream_stream_error")
                break
            self._last = payload
            usage = chunk.get("usage")
            kept.append(self._usage_chunk(chunk, usage) if isinstance(usage, dict) else payload)
        joined = b"\n\ndata: ".join([p for p in kept if p])
        out = b"data: " + joined + b"\n\n" if joined else b""
        if failure is not None:
            self.failed = True
            if self._ctx is not None:
                self._ctx.fail(failure)
            out += self.error(failure)
        return out

    def _usage_chunk(self, chunk: ChatCompletionChunk, usage: CanonicalUsage) -> bytes:
        self.usage_seen = True
        cost = self._on_usage(usage)
        if not self._include_usage and not chunk.get("choices"):
            return b""
        set_cost(usage, cost)
        return orjson.dumps(chunk)

    def finish(self, estimated: CanonicalUsage | None = None) -> bytes:
        if self.failed:
            return b""
        if estimated is None or not self._include_usage:
            return DONE_FRAME
        # The vendor sent no usage: the final usage chunk carries interlock's estimate, marked as such.
        last = _last_chunk(self._last)
        chunk: ChatCompletionChunk = {"id": last.get("id", ""), "object": "chat.completion.chunk", "created": last.get("created", 0),
                 "model": last.get("model", ""), "choices": [], "usage": estimated}
        return b"data: " + orjson.dumps(chunk) + b"\n\n" + DONE_FRAME

    @staticmethod
    def error(err: GatewayError) -> bytes:
        # OpenAI reports a failure after the stream started as a data event carrying an error object.
        return b"data: " + error_body(err) + b"\n\n"


class OpenAIChatCodec:
    """The Chat Completions format: canonical already, so parsing is validation."""

    name = "openai.chat"
    stream_content_type = "text/event-stream"
    canonical_body = True

    async def parse(self, body: bytes, ctx: object) -> ChatRequest:
        request = parse_json_object(body)
        validate_chat_request(request)
        return cast("ChatRequest", request)  # validated: the caller's JSON is a ChatRequest (cast once, no copy)

    def render_error(self, err: GatewayError) -> bytes:
        return error_body(err)

    def completion(self, ctx: object, request: ChatRequest, data: ChatCompletion) -> bytes:
        # Required-nullable fields many OpenAI-compatible vendors leave out (vLLM, Groq, Together...).
        for choice in data.get("choices") or ():
            if isinstance(choice, dict):
                choice.setdefault("logprobs", None)
                message = choice.get("message")
                if isinstance(message, dict):
                    message.setdefault("refusal", None)
        return orjson.dumps(data)

    def stream_encoder(self, ctx: object, request: ChatRequest, on_usage: UsageHook) -> ChunkWriter:
        options = request.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return ChunkWriter(include_usage, on_usage, ctx if isinstance(ctx, RequestContext) else None)
