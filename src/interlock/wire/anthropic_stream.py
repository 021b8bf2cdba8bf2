"""Canonical answers → Anthropic: the ``message`` object, the streaming events and errors.

Anthropic streams typed blocks one after another (``content_block_start`` /
``..._delta`` / ``..._stop``, each with its index in the final ``content``),
while Chat chunks interleave fields of one delta. The encoder is a small state
machine: a delta of a different kind closes the open block and opens the next
one. The stop reason and usage come last in Chat (finish chunk, then the usage
chunk), so ``message_delta`` and ``message_stop`` are written by ``finish``.

Hot path: one ``orjson.loads`` per payload; text and JSON deltas are written
from preformatted byte prefixes with only the string itself serialised.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from interlock.core.canonical import (
    CanonicalUsage,
    ChatCompletion,
    ChatRequest,
    Choice,
    ChunkChoice,
    Delta,
    ToolCallDelta,
)
from interlock.core.codec import ESTIMATED, UsageHook
from interlock.core.context import RequestContext
from interlock.core.errors import GatewayError, anthropic_error_body, anthropic_error_type
from interlock.wire.anthropic_types import (
    AnthropicMessage,
    AnthropicUsage,
    ContentBlock,
    StopDetails,
    TextBlock,
    ToolUseBlock,
)
from interlock.wire.canonical import (
    NO_MESSAGE,
    ChunkTranslator,
    cache_write_tokens,
    reasoning_blocks,
    text_of_content,
)

_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                 "content_filter": "refusal"}
#: ``MessageDeltaUsage`` (TypeScript SDK, src/resources/messages/messages.ts): all present, nullable.
DELTA_USAGE = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens",
                "output_tokens_details", "server_tool_use")
#: What ``message_delta`` carries of a ``Usage``: ``MessageDeltaUsage``'s fields and interlock's extras.
_DELTA_KEYS = (*DELTA_USAGE, "cost", ESTIMATED)
_SERVICE_TIERS = {"default": "standard", "standard": "standard", "priority": "priority", "batch": "batch"}
_BLOCK_DELTA = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_TEXT = b',"delta":{"type":"text_delta","text":'
_THINKING = b',"delta":{"type":"thinking_delta","thinking":'
_SIGNATURE = b',"delta":{"type":"signature_delta","signature":'
_JSON = b',"delta":{"type":"input_json_delta","partial_json":'
_END = b"}}\n\n"
_PING = b'event: ping\ndata: {"type":"ping"}\n\n'
_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


def tool_input(arguments: object) -> dict[str, Any]:
    """Tool arguments as Anthropic's ``input`` object; text that is not a JSON object is kept, never dropped."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_raw_arguments": arguments}
    return value if isinstance(value, dict) else {"_value": value}


def _thinking_details(usage: CanonicalUsage) -> dict[str, int] | None:
    """``output_tokens_details``: the reasoning tokens, when the vendor counted them."""
    details = usage.get("completion_tokens_details")
    thinking = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return {"thinking_tokens": thinking} if isinstance(thinking, int) and not isinstance(thinking, bool) else None


def anthropic_usage(usage: CanonicalUsage, service_tier: str | None = None) -> AnthropicUsage:
    """Canonical (OpenAI) usage → Anthropic's ``Usage``, where ``input_tokens`` excludes cache reads and writes.

    Every field the TypeScript SDK declares without ``?`` is present (``null`` when
    unknown); interlock's ``cost`` and ``estimated`` are extras.
    """
    prompt = usage.get("prompt_tokens")
    prompt = prompt if isinstance(prompt, int) else 0
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    cached = cached if isinstance(cached, int) else usage.get("prompt_cache_hit_tokens", 0)
    cached = cached if isinstance(cached, int) else 0
    written = cache_write_tokens(usage)
    output = usage.get("completion_tokens")
    one_hour = details.get("cache_write_1h_tokens") if isinstance(details, dict) else None
    one_hour = min(one_hour, written) if isinstance(one_hour, int) and one_hour > 0 else 0
    out: AnthropicUsage = {
        "input_tokens": max(0, prompt - cached - written),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
        "cache_creation": {"ephemeral_5m_input_tokens": written - one_hour, "ephemeral_1h_input_tokens": one_hour},
        "output_tokens": output if isinstance(output, int) else 0,
        "output_tokens_details": _thinking_details(usage),
        "server_tool_use": None,
        "service_tier": service_tier,
        "inference_geo": None,
    }
    cost = usage.get("cost")
    if cost is not None:
        out["cost"] = cost
    if usage.get(ESTIMATED):
        out[ESTIMATED] = True
    return out


def empty_usage(service_tier: str | None = None) -> AnthropicUsage:
    """The usage of a message before (or without) any count: every always-present field, zeros and nulls."""
    return anthropic_usage({}, service_tier)


def delta_usage(usage: AnthropicUsage) -> dict[str, object]:
    """``message_delta``'s ``MessageDeltaUsage``: the cumulative counts, without the ``Usage``-only fields."""
    return {k: usage.get(k) for k in _DELTA_KEYS if k in usage}


def service_tier(data: ChatCompletion) -> str | None:
    """Anthropic's ``service_tier`` from a canonical completion's (OpenAI's tier names; unknown ones → null)."""
    tier = data.get("service_tier")
    return _SERVICE_TIERS.get(tier) if isinstance(tier, str) else None


def stop_reason(choice: Choice | ChunkChoice, stops: object, has_tool_calls: bool) -> tuple[str, str | None]:
    """Anthropic's ``stop_reason`` and ``stop_sequence`` for a canonical choice.

    Chat says ``stop`` both for a natural end and a stop sequence; the matched
    sequence is known only when the vendor reports it (``stop_sequence``, or
    vLLM's ``stop_reason``), so only then is ``stop_sequence`` answered.
    """
    finish = choice.get("finish_reason")
    if has_tool_calls and finish in (None, "stop", "tool_calls", "function_call"):
        return "tool_use", None
    if finish in (None, "stop"):
        matched = choice.get("stop_sequence")
        if not isinstance(matched, str):
            matched = choice.get("stop_reason")
        if isinstance(matched, str) and isinstance(stops, list) and matched in stops:
            return "stop_sequence", matched
        return "end_turn", None
    return _STOP_REASONS.get(str(finish), "end_turn"), None


def message_id(ctx_id: str) -> str:
    """The message id shares the request id's random part, so logs and answers correlate."""
    return "msg_" + ctx_id.removeprefix("req_")


def render_message(msg_id: str, model: str, request: ChatRequest, data: ChatCompletion,
                   usage: CanonicalUsage | None) -> AnthropicMessage:
    choices = data.get("choices") or ()
    choice: Choice = choices[0] if choices and isinstance(choices[0], dict) else {}
    found = choice.get("message")
    message = found if isinstance(found, dict) else NO_MESSAGE  # (a vendor's answer may hold anything)
    content: list[ContentBlock] = [*reasoning_blocks(message)]
    text = text_of_content(message.get("content"))
    refusal = message.get("refusal")
    if text:
        content.append(text_block(text))
    elif isinstance(refusal, str) and refusal:
        content.append(text_block(refusal))
    calls = [c for c in message.get("tool_calls") or () if isinstance(c, dict)]
    for call in calls:
        function = call.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        arguments = function.get("arguments") if isinstance(function, dict) else None
        content.append(tool_use_block(str(call.get("id") or ""), str(name or ""), tool_input(arguments)))
    reason, sequence = stop_reason(choice, request.get("stop"), bool(calls))
    tier = service_tier(data)
    return message_object(msg_id, model, content, reason, sequence,
                          anthropic_usage(usage, tier) if usage is not None else empty_usage(tier),
                          refusal if isinstance(refusal, str) else None)


def stop_details(reason: str | None, explanation: str | None = None) -> StopDetails | None:
    """``RefusalStopDetails`` for a refusal (interlock knows no policy category), else null."""
    if reason != "refusal":
        return None
    return {"type": "refusal", "category": None, "explanation": explanation or None}


def message_object(msg_id: str, model: str, content: list[ContentBlock], reason: str | None,
                   sequence: str | None, usage: AnthropicUsage, refusal: str | None = None) -> AnthropicMessage:
    """Anthropic's ``Message`` with every field the TypeScript SDK declares without ``?`` (``null`` when none)."""
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "stop_details": stop_details(reason, refusal),
        "container": None,
        "usage": usage,
    }


def text_block(text: str) -> TextBlock:
    return {"type": "text", "text": text, "citations": None}


def tool_use_block(call_id: str, name: str, arguments: dict[str, Any]) -> ToolUseBlock:
    """A ``tool_use`` block; the model called it directly (``caller``), the only kind a translated call can be."""
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments, "caller": {"type": "direct"}}


def anthropic_error(err: GatewayError, request_id: str | None = None) -> dict[str, object]:
    """``err`` as Anthropic's ``ErrorResponse``, carrying the request id its answer's header names."""
    return anthropic_error_body(anthropic_error_type(err.status), err.message, request_id or err.request_id)


def event(name: str, payload: Mapping[str, object]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class AnthropicStreamEncoder(ChunkTranslator):
    __slots__ = ("_finish", "_has_tools", "_index", "_model", "_open", "_refusal", "_request", "_started",
                 "_thought", "_tool_block")

    def __init__(self, ctx: RequestContext, request: ChatRequest, on_usage: UsageHook) -> None:
        super().__init__(ctx, on_usage)
        self._request = request
        self._model = ctx.requested_model or str(request.get("model"))
        self._started = False
        self._index = -1  # the index of the last block opened
        self._open: str | None = None  # the kind of the block still open
        self._thought: list[str] = []  # the open thinking block's text so far
        self._tool_block: dict[int, int] = {}  # canonical tool-call index → block index
        self._has_tools = False
        self._finish: ChunkChoice | None = None
        self._refusal: list[str] = []  # a vendor's refusal text (OpenAI ``refusal`` deltas), shown as text

    def _start(self) -> bytes:
        self._started = True
        return event("message_start", {"type": "message_start", "message": message_object(
            message_id(self._ctx.id), self._model, [], None, None, empty_usage())})

    def _begin(self, out: bytearray) -> None:
        if not self._started:
            out += self._start()

    def _finished(self, choice: ChunkChoice, out: bytearray) -> None:
        self._finish = choice
        self._close(out)

    # ------------------------------------------------------------ blocks

    def _close(self, out: bytearray) -> None:
        if self._open is not None:
            out += event("content_block_stop", {"type": "content_block_stop", "index": self._index})
            self._open = None

    def _open_block(self, out: bytearray, kind: str, block: ContentBlock) -> None:
        self._close(out)
        self._index += 1
        self._open = kind
        self._thought = []
        out += event("content_block_start", {"type": "content_block_start", "index": self._index,
                                             "content_block": block})
        if self._index == 0:
            out += _PING

    def _delta(self, delta: Delta, out: bytearray) -> None:
        if len(delta) == 1 and self._open == "text":
            # The common chunk - more text for the open text block - without probing every field.
            content = delta.get("content")
            if isinstance(content, str):
                out += _BLOCK_DELTA + str(self._index).encode() + _TEXT + orjson.dumps(content) + _END
                return
        text = delta.get("reasoning_content")
        if not isinstance(text, str):
            text = delta.get("reasoning")
        if isinstance(text, str) and text:
            self._thinking(out, text)
        else:
            text = None
        for key in ("thinking_blocks", "reasoning_details"):
            blocks = delta.get(key)
            if isinstance(blocks, list):
                for block in blocks:
                    if isinstance(block, dict):
                        self._thinking_block(out, block, text is None)
        content = delta.get("content")
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal and not (isinstance(content, str) and content):
            # Anthropic has no refusal block: the text says it, and ``stop_details`` explains the stop.
            self._refusal.append(refusal)
            content = refusal
        if isinstance(content, str) and content:
            if self._open != "text":
                self._open_block(out, "text", text_block(""))
            out += _BLOCK_DELTA + str(self._index).encode() + _TEXT + orjson.dumps(content) + _END
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for position, call in enumerate(calls):
                if isinstance(call, dict):
                    self._tool_call(out, call, position)

    def _thinking(self, out: bytearray, text: str) -> None:
        if self._open != "thinking":
            self._open_block(out, "thinking", {"type": "thinking", "thinking": "", "signature": ""})
        self._thought.append(text)
        out += _BLOCK_DELTA + str(self._index).encode() + _THINKING + orjson.dumps(text) + _END

    def _signature(self, out: bytearray, signature: str) -> None:
        if self._open != "thinking":
            self._open_block(out, "thinking", {"type": "thinking", "thinking": "", "signature": ""})
        out += _BLOCK_DELTA + str(self._index).encode() + _SIGNATURE + orjson.dumps(signature) + _END

    def _thinking_block(self, out: bytearray, block: Mapping[str, Any], take_text: bool) -> None:
        """A thinking block (``thinking_blocks``) or an OpenRouter reasoning detail (``reasoning_details``).

        Adapters send the text either as pieces here or as ``reasoning_content``
        deltas followed by the whole block with its signature when it ends; text
        equal to what the open block already holds is that summary, not more text.
        """
        kind = block.get("type")
        if kind in ("redacted_thinking", "reasoning.encrypted") and isinstance(block.get("data"), str):
            self._open_block(out, "redacted_thinking", {"type": "redacted_thinking", "data": block["data"]})
            self._close(out)
            return
        text = block.get("thinking") if kind == "thinking" else block.get("text")
        if take_text and isinstance(text, str) and text and not (
                self._open == "thinking" and text == "".join(self._thought)):
            self._thinking(out, text)
        signature = block.get("signature")
        if isinstance(signature, str) and signature:
            self._signature(out, signature)

    def _tool_call(self, out: bytearray, call: ToolCallDelta, position: int) -> None:
        index, new_id = self._new_call(call, position, "toolu_")
        function = call.get("function")
        if not isinstance(function, dict):
            function = {}
        if new_id is not None:
            self._has_tools = True
            self._open_block(out, "tool_use", tool_use_block(new_id, str(function.get("name") or ""), {}))
            self._tool_block[index] = self._index
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            # Deltas go to the call's own block, even when a vendor interleaves parallel calls.
            out += _BLOCK_DELTA + str(self._tool_block[index]).encode() + _JSON + orjson.dumps(arguments) + _END

    # ------------------------------------------------------------ end

    def finish(self, estimated: CanonicalUsage | None = None) -> bytes:
        if self.failed:
            return b""
        self._estimated(estimated)
        out = bytearray()
        if not self._started:
            out += self._start()
        self._close(out)
        reason, sequence = stop_reason(self._finish or {}, self._request.get("stop"), self._has_tools)
        usage = anthropic_usage(self._usage) if self._usage is not None else empty_usage()
        delta = {"stop_reason": reason, "stop_sequence": sequence, "stop_details": stop_details(reason, "".join(self._refusal)),
                 "container": None}
        out += event("message_delta", {"type": "message_delta", "delta": delta, "usage": delta_usage(usage)})
        out += _STOP
        return bytes(out)

    def error(self, err: GatewayError) -> bytes:
        return event("error", anthropic_error(err, self._ctx.id))
