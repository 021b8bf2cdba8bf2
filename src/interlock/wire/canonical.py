"""Reading canonical answers whatever convention the vendor's adapter used.

Chat Completions has no standard field for thinking or for cache writes, and
vendors (or the adapters translating them) use a few conventions: Anthropic's
blocks in ``thinking_blocks``, OpenRouter's ``reasoning_details``, DeepSeek's
``reasoning_content``, vLLM's ``reasoning``; cache writes under
``prompt_tokens_details`` or Anthropic's ``cache_creation_input_tokens``. The
inbound codecs that render thinking and cache usage (Anthropic Messages,
Responses) read them all through these helpers.
"""

from __future__ import annotations

import os

import orjson

from interlock.core.canonical import (
    CanonicalUsage,
    ChatCompletionChunk,
    ChoiceLogprobs,
    ChunkChoice,
    Content,
    Delta,
    Message,
    ThinkingBlock,
    ToolCallDelta,
)
from interlock.core.codec import UsageHook, malformed_event, set_cost
from interlock.core.context import RequestContext
from interlock.core.errors import GatewayError, UpstreamError

#: What an answer without a readable message is read as (never written to).
NO_MESSAGE: Message = {"role": "assistant"}


def vendor_name(ctx: RequestContext | None) -> str:
    """The answering vendor's name for messages (``the vendor`` before one is known)."""
    target = ctx.target if ctx is not None else None
    return target.vendor.spec.name if target is not None else "the vendor"


def reasoning_blocks(message: Message | Delta) -> list[ThinkingBlock]:
    """Anthropic thinking blocks carried by a canonical message or delta, whatever convention the vendor used.

    ``thinking_blocks`` (Anthropic's blocks, signatures included) win; OpenRouter's
    ``reasoning_details`` are read next; a bare ``reasoning_content`` /
    ``reasoning`` string becomes one unsigned block.
    """
    blocks = message.get("thinking_blocks")
    if isinstance(blocks, list) and blocks:
        return [b for b in blocks if isinstance(b, dict) and b.get("type") in ("thinking", "redacted_thinking")]
    details = message.get("reasoning_details")
    if isinstance(details, list) and details:
        out: list[ThinkingBlock] = []
        for d in details:
            if not isinstance(d, dict):
                continue
            text = d.get("text") or d.get("summary")
            if d.get("type") == "reasoning.encrypted" and isinstance(d.get("data"), str):
                out.append({"type": "redacted_thinking", "data": d["data"]})
            elif isinstance(text, str):
                out.append({"type": "thinking", "thinking": text, "signature": d.get("signature") or ""})
        return out
    text = reasoning_text(message)
    return [{"type": "thinking", "thinking": text, "signature": ""}] if text else []


def reasoning_text(message: Message | Delta) -> str:
    text = message.get("reasoning_content")
    if not isinstance(text, str):
        text = message.get("reasoning")
    return text if isinstance(text, str) else ""


def text_of_content(content: Content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(text for p in content if isinstance(p, dict) and isinstance(text := p.get("text"), str))
    return ""


def cache_write_tokens(usage: CanonicalUsage) -> int:
    """Prompt tokens written to a vendor cache: the conventions adapters use for what Chat usage lacks."""
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict):
        for key in ("cache_write_tokens", "cache_creation_tokens"):
            value = details.get(key)
            if isinstance(value, int):
                return value
    value = usage.get("cache_creation_input_tokens")
    return value if isinstance(value, int) else 0


class ChunkTranslator:
    """What both translating stream encoders share: reading canonical chunks, pricing usage, failing cleanly.

    A subclass writes its format from ``_begin`` (once, before anything),
    ``_delta`` (the first choice's delta), ``_finished`` (its finish reason) and
    ``error``. A vendor's in-stream error object or an unreadable chunk ends the
    stream with the format's error event; later calls then write nothing.
    """

    __slots__ = ("_ctx", "_on_usage", "_tool_ids", "_usage", "failed", "usage_seen")

    #: :class:`~interlock.core.codec.StreamEncoder`'s flags.
    usage_seen: bool
    failed: bool

    def __init__(self, ctx: RequestContext, on_usage: UsageHook) -> None:
        self._ctx = ctx
        self._on_usage = on_usage
        self.failed = False
        self._usage: CanonicalUsage | None = None
        self._tool_ids: dict[int, str] = {}  # canonical tool-call index → the id of the call it holds now
        self.usage_seen = False

    def _begin(self, out: bytearray) -> None:
        raise NotImplementedError

    def _delta(self, delta: Delta, out: bytearray) -> None:
        raise NotImplementedError

    def _logprobs(self, logprobs: ChoiceLogprobs) -> None:
        """The chunk's ``choices[0].logprobs``, seen just before its delta (ignored unless overridden)."""

    def _finished(self, choice: ChunkChoice, out: bytearray) -> None:
        raise NotImplementedError

    def error(self, err: GatewayError) -> bytes:
        raise NotImplementedError

    def encode(self, payloads: list[bytes]) -> bytes:
        if self.failed:
            return b""
        out = bytearray()
        self._begin(out)
        for payload in payloads:
            try:
                # A vendor's payload may be any JSON: typed as the chunk it should be, checked just below.
                chunk: ChatCompletionChunk | None = orjson.loads(payload)
            except orjson.JSONDecodeError:
                chunk = None
            if not isinstance(chunk, dict):
                # A cut or fused event (broken JSON or SSE framing): never guess at what it held.
                return bytes(out) + self._fail(malformed_event(vendor_name(self._ctx)))
            error = chunk.get("error")
            if error is not None:
                message = error.get("message") if isinstance(error, dict) else error
                return bytes(out) + self._fail(UpstreamError(f"{vendor_name(self._ctx)} failed mid-stream: {message}",
                                                             code="upstream_stream_error"))
            for choice in chunk.get("choices") or ():
                # One answer per request: these formats have no ``n``.
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                logprobs = choice.get("logprobs")
                if logprobs is not None:
                    self._logprobs(logprobs)
                delta = choice.get("delta")
                if isinstance(delta, dict):
                    self._delta(delta, out)
                if choice.get("finish_reason") is not None:
                    self._finished(choice, out)
            usage = chunk.get("usage")
            if isinstance(usage, dict):
                self.usage_seen = True
                self._usage = set_cost(usage.copy(), self._on_usage(usage))
        return bytes(out)

    def _estimated(self, estimated: CanonicalUsage | None) -> None:
        """The usage to report at the end: the vendor's, else interlock's estimate (marked estimated)."""
        if self._usage is None and estimated is not None:
            self._usage = estimated

    def _fail(self, err: GatewayError) -> bytes:
        self._ctx.fail(err)
        out = self.error(err)
        self.failed = True
        return out

    def _new_call(self, call: ToolCallDelta, position: int, id_prefix: str) -> tuple[int, str | None]:
        """The call's canonical index, and its id when this delta starts a new call (None: more of one).

        A vendor that omits the index is read by position; one that reuses an
        index for the next call gives that call a new id.
        """
        index = call.get("index")
        if not isinstance(index, int):
            index = position
        call_id = call.get("id")
        known = self._tool_ids.get(index)
        if known is not None and not (isinstance(call_id, str) and call_id and call_id != known):
            return index, None
        new_id = call_id if isinstance(call_id, str) and call_id else id_prefix + os.urandom(12).hex()
        self._tool_ids[index] = new_id
        return index, new_id
