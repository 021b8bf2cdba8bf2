"""A finished MCP tool-loop answer as a Responses event stream (``stream: true``).

The loop's rounds run to completion before the answer exists (a tool's output decides the next round), so
the events are written once it does, in the order and shapes of OpenAI's stream: ``response.created``,
``response.in_progress``, per output item ``response.output_item.added`` → its own events
(``response.mcp_list_tools.in_progress|completed|failed``, ``response.mcp_call_arguments.delta|done`` and
``response.mcp_call.in_progress|completed|failed``, ``response.content_part.added`` →
``response.output_text.delta|done`` → ``response.content_part.done``, ``response.function_call_arguments.
delta|done``) → ``response.output_item.done``, and ``response.completed`` (or ``response.incomplete``).
"""

from __future__ import annotations

from typing import Any

import orjson

from interlock.core import exchange
from interlock.core.exchange import Exchange


def events(answer: dict[str, Any]) -> list[bytes]:
    out: list[bytes] = []

    def emit(kind: str, fields: dict[str, Any]) -> None:
        payload = {"type": kind, **fields, "sequence_number": len(out)}
        out.append(b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n")

    started = {**answer, "status": "in_progress", "output": [], "usage": None, "incomplete_details": None}
    emit("response.created", {"response": started})
    emit("response.in_progress", {"response": started})
    for index, item in enumerate(answer.get("output") or []):
        kind = item.get("type")
        item_id = item.get("id")
        at = {"output_index": index, "item_id": item_id}
        emit("response.output_item.added", {"output_index": index, "item": _opening(item)})
        if kind == "mcp_list_tools":
            emit("response.mcp_list_tools.in_progress", at)
            emit("response.mcp_list_tools.failed" if item.get("error") and not item.get("tools")
                 else "response.mcp_list_tools.completed", at)
        elif kind == "mcp_call":
            arguments = item.get("arguments") or ""
            emit("response.mcp_call_arguments.delta", {**at, "delta": arguments})
            emit("response.mcp_call_arguments.done", {**at, "arguments": arguments})
            emit("response.mcp_call.in_progress", at)
            emit("response.mcp_call.failed" if item.get("status") == "failed" else "response.mcp_call.completed",
                 at)
        elif kind == "message":
            for part_index, part in enumerate(item.get("content") or []):
                where = {**at, "content_index": part_index}
                emit("response.content_part.added", {**where, "part": {**part, "text": ""}
                                                     if part.get("type") == "output_text" else part})
                if part.get("type") == "output_text":
                    emit("response.output_text.delta", {**where, "delta": part.get("text", ""), "logprobs": []})
                    emit("response.output_text.done", {**where, "text": part.get("text", ""), "logprobs": []})
                emit("response.content_part.done", {**where, "part": part})
        elif kind == "function_call":
            arguments = item.get("arguments") or ""
            emit("response.function_call_arguments.delta", {**at, "delta": arguments})
            emit("response.function_call_arguments.done", {**at, "arguments": arguments})
        emit("response.output_item.done", {"output_index": index, "item": item})
    final = "response.incomplete" if answer.get("status") == "incomplete" else "response.completed"
    emit(final, {"response": answer})
    return out


def _opening(item: dict[str, Any]) -> dict[str, Any]:
    kind = item.get("type")
    if kind == "message":
        return {**item, "status": "in_progress", "content": []}
    if kind == "mcp_call":
        return {**item, "status": "in_progress", "output": None, "error": None, "arguments": ""}
    if kind == "mcp_list_tools":
        return {**item, "tools": []}
    if kind == "function_call":
        return {**item, "status": "in_progress", "arguments": ""}
    return item


async def stream_response(ex: Exchange, answer: dict[str, Any], headers: list[tuple[str, str]]) -> None:
    """Write the whole event stream (the stream ends when the handler returns, so this is awaited)."""
    kept = [(k, v) for k, v in headers if k.lower() not in ("content-type", "content-length")]
    out = ex.stream(200, [("content-type", "text/event-stream"), ("cache-control", "no-cache"), *kept])
    try:
        await out.send_bytes(b"".join(events(answer)))
    except exchange.CLIENT_GONE:
        return
