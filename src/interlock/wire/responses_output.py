"""Canonical answers → the Responses API's objects: usage, output items, the response object.

The usage and the output items are typed (``TypedDict``) as the OpenAPI document
declares them; the response object stays a plain dict, since it echoes the
request's fields as the caller sent them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypeAlias, TypedDict

from interlock.core.canonical import CanonicalUsage, ChatRequest, Message, ThinkingBlock
from interlock.wire.canonical import reasoning_blocks, text_of_content


class InputTokensDetails(TypedDict):
    cached_tokens: int
    cache_write_tokens: int


class OutputTokensDetails(TypedDict):
    reasoning_tokens: int


class ResponsesUsage(TypedDict):
    """Input includes cached tokens, output includes reasoning; ``cost`` and ``estimated`` are interlock's."""

    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int
    cost: NotRequired[float]
    estimated: NotRequired[bool]


class LogProb(TypedDict):
    """A token's log probability: ``LogProb`` on an ``output_text`` part (with ``bytes``), ``ResponseLogProb`` on
    the text events (without)."""

    token: str
    logprob: float
    bytes: NotRequired[list[int]]
    top_logprobs: NotRequired[list[LogProb]]


class OutputText(TypedDict):
    type: Literal["output_text"]
    text: str
    annotations: list[object]  # always empty: interlock adds no citations
    #: With ``include: ["message.output_text.logprobs"]``.
    logprobs: list[LogProb]


class OutputRefusal(TypedDict):
    type: Literal["refusal"]
    refusal: str


class MessageItem(TypedDict):
    id: str
    type: Literal["message"]
    status: str
    role: Literal["assistant"]
    content: list[OutputText | OutputRefusal]


class ReasoningText(TypedDict):
    type: Literal["reasoning_text"]
    text: str


class ReasoningItem(TypedDict):
    id: str
    type: Literal["reasoning"]
    summary: list[object]  # always empty: the text goes to content
    content: NotRequired[list[ReasoningText]]
    #: The thinking block's signature (or a redacted block's data), so that it round-trips.
    encrypted_content: NotRequired[str | None]


class FunctionCallItem(TypedDict):
    id: str
    type: Literal["function_call"]
    status: str
    call_id: str
    name: str
    arguments: str


OutputItem: TypeAlias = MessageItem | ReasoningItem | FunctionCallItem
#: What a response object echoes of its request: the caller's values (checked), written back as sent.
Echo: TypeAlias = dict[str, object]


@dataclass(slots=True)
class ResponsesMeta:
    """What the response object echoes and what is stored, kept beside the canonical request."""

    #: The caller's input items, as sent (a string input becomes one message item).
    input_items: list[object]
    #: Canonical messages before this request's input (from ``previous_response_id``).
    history: list[Message]
    #: Canonical messages of this request's input (no instructions).
    turn: list[Message]
    echo: Echo = field(default_factory=dict)
    store: bool = True
    previous_response_id: str | None = None
    created_at: int = 0
    logprobs: bool = False  # include: ["message.output_text.logprobs"]


def item_id(prefix: str, base: str, n: int) -> str:
    return f"{prefix}_{base}{n:04x}"


def responses_usage(usage: CanonicalUsage | None) -> ResponsesUsage | None:
    """Canonical usage → the Responses shape (input includes cached tokens, output includes reasoning)."""
    if usage is None:
        return None
    prompt = usage.get("prompt_tokens")
    prompt = prompt if isinstance(prompt, int) else 0
    completion = usage.get("completion_tokens")
    completion = completion if isinstance(completion, int) else 0
    pdet = usage.get("prompt_tokens_details")
    cdet = usage.get("completion_tokens_details")
    pdet = pdet if isinstance(pdet, dict) else {}
    cdet = cdet if isinstance(cdet, dict) else {}
    written = pdet.get("cache_write_tokens", pdet.get("cache_creation_tokens", usage.get("cache_creation_input_tokens")))
    out: ResponsesUsage = {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": pdet.get("cached_tokens") or 0,
                                 "cache_write_tokens": written if isinstance(written, int) else 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": cdet.get("reasoning_tokens") or 0},
        "total_tokens": prompt + completion,
    }
    if usage.get("cost") is not None:
        out["cost"] = usage["cost"]
    if usage.get("estimated"):
        out["estimated"] = True
    return out


def reasoning_item(rid: str, block: ThinkingBlock | Mapping[str, str | None]) -> ReasoningItem:
    """A reasoning output item for a thinking block (the stream encoder's may not have its signature yet)."""
    if block.get("type") == "redacted_thinking":
        return {"id": rid, "type": "reasoning", "summary": [], "encrypted_content": block.get("data")}
    return {"id": rid, "type": "reasoning", "summary": [],
            "content": [{"type": "reasoning_text", "text": block.get("thinking") or ""}],
            "encrypted_content": block.get("signature") or None}


def message_item(mid: str, text: str, refusal: str | None, status: str = "completed") -> MessageItem:
    part: OutputText | OutputRefusal = ({"type": "refusal", "refusal": refusal} if refusal is not None and not text else
                            {"type": "output_text", "text": text, "annotations": [], "logprobs": []})
    return {"id": mid, "type": "message", "status": status, "role": "assistant", "content": [part]}


def function_call_item(fid: str, call_id: str, name: str, arguments: str, status: str = "completed") -> FunctionCallItem:
    return {"id": fid, "type": "function_call", "status": status, "call_id": call_id, "name": name,
            "arguments": arguments}


def output_items(message: Message, base: str) -> list[OutputItem]:
    items: list[OutputItem] = []
    for block in reasoning_blocks(message):
        items.append(reasoning_item(item_id("rs", base, len(items)), block))
    text = text_of_content(message.get("content"))
    refusal = message.get("refusal")
    if text or isinstance(refusal, str):
        items.append(message_item(item_id("msg", base, len(items)), text, refusal if isinstance(refusal, str) else None))
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            items.append(function_call_item(item_id("fc", base, len(items)), str(call.get("id") or ""),
                                            str(function.get("name") or ""), str(function.get("arguments") or "")))
    return items


def status_of(finish: str | None) -> tuple[str, dict[str, str] | None]:
    if finish == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def response_object(resp_id: str, model: str, meta: ResponsesMeta, status: str, output: list[OutputItem],
                    usage: ResponsesUsage | None, *, incomplete: dict[str, str] | None = None,
                    error: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": resp_id, "object": "response", "created_at": meta.created_at, "status": status,
                            "error": error, "incomplete_details": incomplete, "model": model, "output": output,
                            "previous_response_id": meta.previous_response_id, "usage": usage}
    body.update(meta.echo)
    if status != "in_progress":
        body["completed_at"] = int(time.time()) if status == "completed" else None
    return body


def response_id(ctx_id: str) -> str:
    return "resp_" + ctx_id.removeprefix("req_")


def meta_of(request: ChatRequest) -> ResponsesMeta:
    meta = getattr(request, "meta", None)
    if isinstance(meta, ResponsesMeta):
        return meta
    # Only a request parsed by this codec reaches it; rebuild a minimal record rather than fail an answer.
    return ResponsesMeta(input_items=[], history=[], turn=list(request.get("messages") or ()), store=False,
                         created_at=int(time.time()))
