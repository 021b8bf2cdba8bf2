"""Test-side helpers: build vendor configs, drive an adapter over a real socket, reassemble canonical streams."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from interlock.config import VendorConfig, load_settings
from interlock.core.vendor import Timeouts
from interlock.vendors.registry import VENDOR_TABLE
from interlock.vendors.transport import HttpTransport

TIMEOUTS = Timeouts(connect=2, first_byte=5, idle=5, total=20)


def vendor_config(vid: str, base_url: str, environ: dict[str, str] | None = None, **fields: Any) -> VendorConfig:
    settings = load_settings(None, vendor_table=VENDOR_TABLE, environ=environ or {})
    config = settings.vendors[vid]
    return dataclasses.replace(config, base_url=base_url, timeouts=TIMEOUTS, **fields)


def reassemble(payloads: list[bytes]) -> dict[str, Any]:
    """Canonical chunk payloads → one message, the way an OpenAI client accumulates a stream."""
    message: dict[str, Any] = {"content": "", "reasoning_content": "", "thinking_blocks": [], "tool_calls": []}
    out: dict[str, Any] = {"message": message, "finish_reason": None, "usage": None, "role": None, "ids": set()}
    for payload in payloads:
        chunk = orjson.loads(payload)
        assert chunk["object"] == "chat.completion.chunk"
        out["ids"].add(chunk["id"])
        if chunk.get("usage") is not None:
            assert chunk["choices"] == []
            out["usage"] = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice["delta"]
            if "role" in delta:
                out["role"] = delta["role"]
            message["content"] += delta.get("content") or ""
            message["reasoning_content"] += delta.get("reasoning_content") or ""
            message["thinking_blocks"] += delta.get("thinking_blocks") or []
            for call in delta.get("tool_calls") or ():
                calls = message["tool_calls"]
                index = call["index"]
                assert index <= len(calls), "tool-call indexes must be dense and in order"
                if index == len(calls):
                    assert call.get("id"), "the first fragment of a tool call carries its id"
                    calls.append({"id": call["id"], "type": "function",
                                  "function": {"name": call["function"]["name"], "arguments": ""}})
                    if call.get("extra_content"):
                        calls[index]["extra_content"] = call["extra_content"]
                calls[index]["function"]["arguments"] += call["function"].get("arguments") or ""
            if choice["finish_reason"] is not None:
                assert out["finish_reason"] is None, "one finish reason per choice"
                out["finish_reason"] = choice["finish_reason"]
    return out


async def collect(source: Any) -> list[bytes]:
    payloads: list[bytes] = []
    try:
        while True:
            batch = await source.next_batch()
            if batch is None:
                return payloads
            assert batch, "a batch is never empty"
            payloads.extend(batch)
    finally:
        source.close()


def transport() -> HttpTransport:
    return HttpTransport()
