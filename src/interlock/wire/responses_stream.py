"""Canonical chunk payloads → the Responses API's streaming events.

The Responses stream is a sequence of typed events, each numbered
(``sequence_number`` from 0): ``response.created`` and ``response.in_progress``,
then per output item ``response.output_item.added``, its content events
(``content_part.added`` / ``output_text.delta``... / ``output_text.done`` /
``content_part.done``, or ``function_call_arguments.delta``... / ``.done``, or
``reasoning_text`` events) and ``response.output_item.done``, then one
terminal event: ``response.completed`` (``response.incomplete`` when the
output limit cut it short) carrying the whole response with usage. A failure
after the stream started is an ``error`` event followed by ``response.failed``,
whose output holds what was streamed (the open item's text or arguments so far).

Chat chunks interleave fields of one delta, so this encoder is a state machine
like the Anthropic one: a delta of another kind closes the open item. The
finished items are kept, since the terminal event repeats them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from interlock.core.canonical import (
    CanonicalUsage,
    ChatRequest,
    ChoiceLogprobs,
    ChunkChoice,
    Delta,
    TokenLogprob,
    ToolCallDelta,
)
from interlock.core.codec import UsageHook
from interlock.core.context import RequestContext
from interlock.core.errors import GatewayError
from interlock.wire.canonical import ChunkTranslator
from interlock.wire.responses import stored
from interlock.wire.responses_logprobs import chat_entries, event_logprobs, part_logprobs
from interlock.wire.responses_output import (
    FunctionCallItem,
    OutputItem,
    OutputText,
    ResponsesMeta,
    function_call_item,
    item_id,
    message_item,
    reasoning_item,
    response_id,
    response_object,
    responses_usage,
    status_of,
)

if TYPE_CHECKING:  # responses imports this module: a cycle inside wire, for a type only
    from interlock.wire.responses import ResponsesCodec

_TEXT_DELTA = b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","item_id":'
_TEXT_MIDDLE = b',"logprobs":[],"sequence_number":'


class ResponsesStreamEncoder(ChunkTranslator):
    __slots__ = ("_base", "_call_index", "_codec", "_finish", "_item", "_lp_pending", "_lp_text", "_meta", "_model",
                 "_open", "_output", "_resp_id", "_seq", "_signature", "_started", "_text", "_text_prefix",
                 "_tool_args", "_tool_items")

    def __init__(self, codec: ResponsesCodec, ctx: RequestContext, meta: ResponsesMeta, request: ChatRequest,
                 on_usage: UsageHook) -> None:
        super().__init__(ctx, on_usage)
        self._codec = codec
        self._meta = meta
        self._model = ctx.requested_model or str(request.get("model"))
        self._resp_id = response_id(ctx.id)
        self._base = self._resp_id[5:]
        self._seq = 0
        self._started = False
        self._output: list[OutputItem] = []  # items in output_index order (in progress, then final)
        self._open: str | None = None  # kind of the item still open
        self._item: OutputItem | None = None  # the item still open
        self._call_index = 0  # the canonical tool-call index of the open function_call item
        self._text: list[str] = []
        self._text_prefix = b""
        self._signature: str | None = None
        self._tool_items: dict[int, int] = {}  # canonical tool-call index → output_index
        self._tool_args: dict[int, list[str]] = {}
        self._finish: str | None = None
        #: With include message.output_text.logprobs: the chunk's logprobs, and the open message's so far.
        self._lp_pending: ChoiceLogprobs | None = None
        self._lp_text: list[TokenLogprob] = []

    def _emit(self, out: bytearray, kind: str, fields: dict[str, object]) -> None:
        fields["sequence_number"] = self._seq
        self._seq += 1
        out += b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **fields}) + b"\n\n"

    def _response(self, status: str, **extra: dict[str, str] | None) -> dict[str, Any]:
        return response_object(self._resp_id, self._model, self._meta, status, list(self._output),
                               responses_usage(self._usage), **extra)

    def _begin(self, out: bytearray) -> None:
        if not self._started:
            self._start(out)

    def _finished(self, choice: ChunkChoice, out: bytearray) -> None:
        self._finish = choice["finish_reason"]
        self._close(out)

    def _start(self, out: bytearray) -> None:
        self._started = True
        self._emit(out, "response.created", {"response": self._response("in_progress")})
        self._emit(out, "response.in_progress", {"response": self._response("in_progress")})

    # ------------------------------------------------------------ items

    def _add(self, out: bytearray, kind: str, item: OutputItem) -> int:
        self._close(out)
        self._open = kind
        self._item = item
        self._text = []
        self._lp_text = []
        self._output.append(item)
        index = len(self._output) - 1
        self._emit(out, "response.output_item.added", {"output_index": index, "item": item})
        return index

    def _take_open(self) -> tuple[int, OutputItem, str] | None:
        """The item still open (output index, item, id), now closed; None when none is."""
        item = self._item
        if self._open is None or item is None:
            return None
        self._open = None
        return len(self._output) - 1, item, item["id"]

    def _close(self, out: bytearray) -> None:
        taken = self._take_open()
        if taken is None:
            return
        index, item, iid = taken
        final: OutputItem
        if item["type"] == "message":
            text = "".join(self._text)
            logprobs: ChoiceLogprobs = {"content": self._lp_text}
            part: OutputText = {"type": "output_text", "text": text, "annotations": [], "logprobs": part_logprobs(logprobs)}
            self._emit(out, "response.output_text.done", {"item_id": iid, "output_index": index, "content_index": 0,
                                                          "text": text, "logprobs": event_logprobs(logprobs)})
            self._emit(out, "response.content_part.done",
                       {"item_id": iid, "output_index": index, "content_index": 0, "part": part})
            final = message_item(iid, text, None)
            final["content"] = [part]
        elif item["type"] == "reasoning":
            text = "".join(self._text)
            if text:
                self._emit(out, "response.reasoning_text.done",
                           {"item_id": iid, "output_index": index, "content_index": 0, "text": text})
                self._emit(out, "response.content_part.done", {"item_id": iid, "output_index": index,
                                                               "content_index": 0,
                                                               "part": {"type": "reasoning_text", "text": text}})
                final = reasoning_item(iid, {"type": "thinking", "thinking": text, "signature": self._signature})
            else:
                final = reasoning_item(iid, {"type": "redacted_thinking", "data": self._signature})
            self._signature = None
        else:
            arguments = "".join(self._tool_args[self._call_index])
            self._emit(out, "response.function_call_arguments.done",
                       {"item_id": iid, "name": item["name"], "output_index": index, "arguments": arguments})
            final = function_call_item(iid, item["call_id"], item["name"], arguments)
        self._output[index] = final
        self._emit(out, "response.output_item.done", {"output_index": index, "item": final})

    def _logprobs(self, logprobs: ChoiceLogprobs) -> None:
        if self._meta.logprobs:
            self._lp_pending = logprobs

    def _delta(self, delta: Delta, out: bytearray) -> None:
        pending, self._lp_pending = self._lp_pending, None
        if len(delta) == 1 and self._open == "message" and pending is None:
            # The common chunk - more text for the open message - from a preformatted event prefix.
            content = delta.get("content")
            if isinstance(content, str):
                self._text.append(content)
                out += self._text_prefix + orjson.dumps(content) + _TEXT_MIDDLE + str(self._seq).encode() + b"}\n\n"
                self._seq += 1
                return
        text = delta.get("reasoning_content")
        if not isinstance(text, str):
            text = delta.get("reasoning")
        has_text = isinstance(text, str) and bool(text)
        if has_text:
            self._reasoning_text(out, str(text))
        for key in ("thinking_blocks", "reasoning_details"):
            blocks = delta.get(key)
            if isinstance(blocks, list):
                for block in blocks:
                    if isinstance(block, dict):
                        self._reasoning_block(out, block, not has_text)
        content = delta.get("content")
        if isinstance(content, str) and content:
            if self._open != "message":
                iid = item_id("msg", self._base, len(self._output))
                index = self._add(out, "message", {"id": iid, "type": "message", "status": "in_progress",
                                                   "role": "assistant", "content": []})
                self._emit(out, "response.content_part.added", {
                    "item_id": iid, "output_index": index, "content_index": 0,
                    "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}})
                self._text_prefix = (_TEXT_DELTA + orjson.dumps(iid) + b',"output_index":' + str(index).encode()
                                     + b',"content_index":0,"delta":')
            self._text.append(content)
            if pending is not None:
                self._lp_text += chat_entries(pending)
            self._emit(out, "response.output_text.delta", {"item_id": self._output[-1]["id"],
                                                           "output_index": len(self._output) - 1, "content_index": 0,
                                                           "delta": content, "logprobs": event_logprobs(pending)})
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for position, call in enumerate(calls):
                if isinstance(call, dict):
                    self._tool_call(out, call, position)

    def _open_reasoning(self, out: bytearray, with_text: bool) -> None:
        iid = item_id("rs", self._base, len(self._output))
        index = self._add(out, "reasoning", {"id": iid, "type": "reasoning", "summary": []})
        if with_text:
            self._emit(out, "response.content_part.added", {"item_id": iid, "output_index": index,
                                                            "content_index": 0,
                                                            "part": {"type": "reasoning_text", "text": ""}})

    def _reasoning_text(self, out: bytearray, text: str) -> None:
        if self._open != "reasoning" or not self._text:
            if self._open == "reasoning":
                self._close(out)
            self._open_reasoning(out, with_text=True)
        self._text.append(text)
        self._emit(out, "response.reasoning_text.delta", {"item_id": self._output[-1]["id"],
                                                          "output_index": len(self._output) - 1,
                                                          "content_index": 0, "delta": text})

    def _reasoning_block(self, out: bytearray, block: Mapping[str, Any], take_text: bool) -> None:
        kind = block.get("type")
        if kind in ("redacted_thinking", "reasoning.encrypted") and isinstance(block.get("data"), str):
            self._open_reasoning(out, with_text=False)
            self._signature = block["data"]
            self._close(out)
            return
        text = block.get("thinking") if kind == "thinking" else block.get("text")
        # Text equal to the open item's is the adapter's closing summary of the block, not more text.
        if take_text and isinstance(text, str) and text and not (
                self._open == "reasoning" and text == "".join(self._text)):
            self._reasoning_text(out, text)
        signature = block.get("signature")
        if isinstance(signature, str) and signature:
            if self._open != "reasoning":
                self._open_reasoning(out, with_text=False)
            self._signature = signature

    def _tool_call(self, out: bytearray, call: ToolCallDelta, position: int) -> None:
        index, new_id = self._new_call(call, position, "call_")
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        if new_id is not None:
            self._tool_args[index] = []
            iid = item_id("fc", self._base, len(self._output))
            item: FunctionCallItem = {"id": iid, "type": "function_call", "status": "in_progress", "call_id": new_id,
                                      "name": str(function.get("name") or ""), "arguments": ""}
            self._tool_items[index] = self._add(out, "function_call", item)
            self._call_index = index
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            self._tool_args[index].append(arguments)
            output_index = self._tool_items[index]
            self._emit(out, "response.function_call_arguments.delta",
                       {"item_id": self._output[output_index]["id"], "output_index": output_index, "delta": arguments})
            if output_index != len(self._output) - 1 or self._open != "function_call":
                # A vendor interleaving parallel calls: that item was already closed, so bring it up to date.
                done = self._output[output_index]
                if done["type"] == "function_call":
                    done["arguments"] = "".join(self._tool_args[index])

    # ------------------------------------------------------------ end

    def finish(self, estimated: CanonicalUsage | None = None) -> bytes:
        if self.failed:
            return b""
        self._estimated(estimated)
        out = bytearray()
        if not self._started:
            self._start(out)
        self._close(out)
        status, incomplete = status_of(self._finish)
        body = self._response(status, incomplete=incomplete)
        self._emit(out, "response.completed" if status == "completed" else "response.incomplete", {"response": body})
        if self._meta.store:
            self._codec.store.save_soon(stored(self._resp_id, self._ctx, self._meta, body))
        return bytes(out)

    def _partial(self) -> None:
        """The item still open when the stream failed, holding what was streamed of it (status incomplete)."""
        taken = self._take_open()
        if taken is None:
            return
        index, item, iid = taken
        text = "".join(self._text)
        if item["type"] == "message":
            self._output[index] = message_item(iid, text, None, status="incomplete")
        elif item["type"] == "reasoning":
            self._output[index] = reasoning_item(iid, {"type": "thinking", "thinking": text,
                                                       "signature": self._signature} if text else
                                                 {"type": "redacted_thinking", "data": self._signature})
        else:
            self._output[index] = function_call_item(iid, item["call_id"], item["name"],
                                                     "".join(self._tool_args[self._call_index]), status="incomplete")

    def error(self, err: GatewayError) -> bytes:
        self.failed = True
        self._partial()
        out = bytearray()
        self._emit(out, "error", {"code": err.code, "message": err.message, "param": err.param})
        code = "rate_limit_exceeded" if err.status == 429 else "server_error"
        self._emit(out, "response.failed", {"response": self._response("failed", error={"code": code,
                                                                                        "message": err.message})})
        return bytes(out)
