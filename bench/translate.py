"""Micro-benchmark: translation cost per request and per stream chunk, for each native vendor.

Targets: <= 20 µs to translate a typical request (system prompt, a few turns,
two tools) and <= 5 µs per streamed chunk (vendor event in → canonical chunk
payload out, SSE/event-stream decoding included). Run:

    .venv/bin/python bench/translate.py

Numbers are the best of several repeats (the least disturbed by the machine),
in microseconds.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import orjson

from interlock.vendors.anthropic import chat as anthropic
from interlock.vendors.bedrock import chat as bedrock
from interlock.vendors.cohere import chat as cohere
from interlock.vendors.gemini import chat as gemini
from interlock.vendors.translate_common import Drops

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' Bedrock frame encoder

from tests.mock_vendors.eventstream import encode_message

REQUEST: dict[str, Any] = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant. Answer briefly and cite sources."},
        {"role": "user", "content": "What's the weather in Paris and in Oslo tomorrow?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 18, "sky": "clear"}'},
        {"role": "tool", "tool_call_id": "call_2", "content": '{"temp": 9, "sky": "rain"}'},
        {"role": "user", "content": "Thanks. Which one is better for a picnic?"},
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                                "parameters": {"type": "object",
                                                               "properties": {"city": {"type": "string"}},
                                                               "required": ["city"]}}},
              {"type": "function", "function": {"name": "search", "description": "Web search",
                                                "parameters": {"type": "object",
                                                               "properties": {"q": {"type": "string"}}}}}],
    "temperature": 0.3,
    "max_tokens": 512,
}


def best(fn: Callable[[], object], n: int, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - start) / n * 1e6)
    return min(times)


def request_costs() -> dict[str, float]:
    return {
        "anthropic": best(lambda: orjson.dumps(anthropic.encode_request(REQUEST, "claude", stream=True)[0]), 20000),
        "gemini": best(lambda: orjson.dumps(gemini.encode_request(REQUEST, Drops(REQUEST, "g"))), 20000),
        "bedrock": best(lambda: orjson.dumps(bedrock.encode_request(REQUEST, "anthropic.claude", Drops(REQUEST, "b"))[0]),
                        20000),
        "cohere": best(lambda: orjson.dumps(cohere.encode_request(REQUEST, "command", Drops(REQUEST, "c"), True)), 20000),
    }


class _Resp:
    status = 200
    headers: ClassVar[dict[str, str]] = {}

    def close(self) -> None:
        return None

    async def read(self) -> bytes:
        return b""

    async def iter_bytes(self) -> Any:
        yield b""


def _anthropic_events(n: int) -> bytes:
    start = {"type": "message_start", "message": {"id": "msg", "model": "claude", "usage": {"input_tokens": 5}}}
    events = [start, {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}]
    events += [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " token"}}] * n
    return b"".join(b"event: x\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)


def chunk_costs(n: int = 20000) -> dict[str, float]:
    out: dict[str, float] = {}
    data = _anthropic_events(n)

    def run_anthropic() -> None:
        stream = anthropic.AnthropicStream(_Resp(), (), "A", None)  # type: ignore[arg-type]
        sink: list[bytes] = []
        for i in range(0, len(data), 4096):
            stream.feed(data[i:i + 4096], sink)

    out["anthropic"] = best(run_anthropic, 1, 3) / n
    gem = b"".join(b"data: " + orjson.dumps({"candidates": [{"content": {"parts": [{"text": " token"}], "role": "model"},
                                                             "index": 0}], "modelVersion": "g", "responseId": "r"})
                   + b"\r\n\r\n" for _ in range(n))

    def run_gemini() -> None:
        stream = gemini.GeminiStream(_Resp(), (), "G")  # type: ignore[arg-type]
        sink: list[bytes] = []
        for i in range(0, len(gem), 4096):
            stream.feed(gem[i:i + 4096], sink)

    out["gemini"] = best(run_gemini, 1, 3) / n
    frame = encode_message({":event-type": "contentBlockDelta", ":content-type": "application/json",
                            ":message-type": "event"}, b'{"contentBlockIndex":0,"delta":{"text":" token"}}')
    es = frame * n

    def run_bedrock() -> None:
        stream = bedrock.BedrockStream(_Resp(), (), "B", None, "m")  # type: ignore[arg-type]
        sink: list[bytes] = []
        for i in range(0, len(es), 4096):
            stream.feed(es[i:i + 4096], sink)

    out["bedrock"] = best(run_bedrock, 1, 3) / n
    co = b"".join(b"event: content-delta\ndata: " + orjson.dumps(
        {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": " token"}}}}) + b"\n\n"
        for _ in range(n))

    def run_cohere() -> None:
        stream = cohere.CohereStream(_Resp(), (), "C", "m")  # type: ignore[arg-type]
        sink: list[bytes] = []
        for i in range(0, len(co), 4096):
            stream.feed(co[i:i + 4096], sink)

    out["cohere"] = best(run_cohere, 1, 3) / n
    return out


async def main() -> None:
    requests = request_costs()
    chunks = chunk_costs()
    print(f"{'vendor':<10} {'request µs':>11} {'chunk µs':>9}")
    for vendor in requests:
        print(f"{vendor:<10} {requests[vendor]:>11.2f} {chunks[vendor]:>9.2f}")
    worst_req, worst_chunk = max(requests.values()), max(chunks.values())
    print(f"targets: request <= 20 µs ({'ok' if worst_req <= 20 else 'MISSED'}), "
          f"chunk <= 5 µs ({'ok' if worst_chunk <= 5 else 'MISSED'})")


if __name__ == "__main__":
    asyncio.run(main())
