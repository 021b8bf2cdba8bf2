"""A Messages response rendered as the documented SSE event sequence (what Anthropic's server streams).

Opening blocks, ``message_delta``'s ``delta`` and its ``MessageDeltaUsage`` carry every field the
TypeScript SDK declares without ``?`` (``null`` when empty), as the API sends them.
"""

from __future__ import annotations

from typing import Any

import orjson


def _event(payload: dict[str, Any]) -> bytes:
    return b"event: " + payload["type"].encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _pieces(text: str, n: int = 3) -> list[str]:
    step = max(1, len(text) // n)
    return [text[i:i + step] for i in range(0, len(text), step)]


def render_stream(message: dict[str, Any]) -> bytes:
    usage = dict(message["usage"])
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    out = [_event({"type": "message_start", "message": start}), _event({"type": "ping"})]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        opening = {"text": {"type": "text", "text": "", "citations": None}, "thinking": {"type": "thinking", "thinking": "", "signature": ""},
                   "tool_use": {**block, "input": {}}}.get(kind, block)
        out.append(_event({"type": "content_block_start", "index": index, "content_block": opening}))
        deltas: list[dict[str, Any]] = []
        if kind == "text":
            deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"])]
        elif kind == "thinking":
            deltas = [{"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif kind == "tool_use":
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in _pieces(orjson.dumps(block["input"]).decode())]
        for delta in deltas:
            out.append(_event({"type": "content_block_delta", "index": index, "delta": delta}))
        out.append(_event({"type": "content_block_stop", "index": index}))
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None, "stop_details": None, "container": None}
    counts = {key: usage.get(key) for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
                                              "output_tokens_details", "server_tool_use")}
    out.append(_event({"type": "message_delta", "delta": delta,
                       "usage": {**counts, "output_tokens": usage["output_tokens"]}}))
    out.append(_event({"type": "message_stop"}))
    return b"".join(out)
