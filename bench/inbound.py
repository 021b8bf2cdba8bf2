"""Micro-benchmark of the inbound codecs: what translating a format costs per request and per stream chunk.

    .venv/bin/python bench/inbound.py            # all codecs, ~10 s
    .venv/bin/python bench/inbound.py --check    # exit 4 when a target is missed

Per request: parse the caller's body into the canonical request plus render
the canonical completion back (the two translations a non-streaming call
pays). Per chunk: encode one canonical content chunk into the caller's stream
format (the stream's opening and closing events are amortised over a
100-chunk stream). Targets (issue 5): ≤ 20 µs per request, ≤ 5 µs per chunk.
The OpenAI Chat codec, nearly the identity, is the baseline.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson

from interlock.core.context import RequestContext
from interlock.ledger.responses_store import SQLiteResponses
from interlock.wire.anthropic_messages import AnthropicMessagesCodec
from interlock.wire.openai_chat import OpenAIChatCodec
from interlock.wire.responses import ResponsesCodec

REQUEST_TARGET_US = 20.0
CHUNK_TARGET_US = 5.0
CHUNKS = 100

TOOLS = [{"name": "get_weather", "description": "Weather for a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
BODIES: dict[str, bytes] = {
    "openai.chat": orjson.dumps({"model": "openai/gpt-4.1-mini", "max_tokens": 256, "messages": [
        {"role": "system", "content": "You are terse."}, {"role": "user", "content": "What's the weather in Paris?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": TOOLS[0]["input_schema"]}}]}),
    "anthropic.messages": orjson.dumps({"model": "anthropic/claude-sonnet-4-5", "max_tokens": 256,
                                        "system": "You are terse.", "tools": TOOLS, "messages": [
                                            {"role": "user", "content": "What's the weather in Paris?"}]}),
    "openai.responses": orjson.dumps({"model": "openai/gpt-4.1-mini", "max_output_tokens": 256,
                                      "instructions": "You are terse.", "input": "What's the weather in Paris?",
                                      "store": False, "tools": [{"type": "function", "name": "get_weather",
                                                                 "parameters": TOOLS[0]["input_schema"]}]}),
}
COMPLETION = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4.1-mini", "choices": [{
    "index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "It is 18 degrees and sunny."}}],
    "usage": {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49, "cost": 0.0001,
              "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}}
CHUNK = orjson.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1-mini",
                      "choices": [{"index": 0, "delta": {"content": " sunny"}, "finish_reason": None}]})
FIRST = orjson.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1-mini",
                      "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
LAST = [orjson.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [
    {"index": 0, "delta": {}, "finish_reason": "stop"}]}),
    orjson.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": COMPLETION["usage"]})]


def best_of(fn: Callable[[], None], n: int, rounds: int = 5) -> float:
    """Seconds per call: the best of a few rounds, which discards scheduler noise."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n)
    return best


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Drive a coroutine that never suspends (these bodies read no state) without an event loop's overhead."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("parse suspended: the benchmark bodies must not need the store")


def measure(codec: Any, n: int) -> tuple[float, float]:
    body = BODIES[codec.name]
    ctx = RequestContext(codec.name)

    def request() -> None:
        parsed = run(codec.parse(body, ctx))
        ctx.requested_model = parsed["model"]
        codec.completion(ctx, parsed, {**COMPLETION, "usage": dict(COMPLETION["usage"])})

    per_request = best_of(request, n)
    parsed = run(codec.parse(body.replace(b'"max', b'"stream":true,"max', 1), ctx))
    batch = [CHUNK]

    def stream() -> None:
        encoder = codec.stream_encoder(ctx, parsed, lambda usage: 0.0001)
        encoder.encode([FIRST])
        for _ in range(CHUNKS):
            encoder.encode(batch)
        encoder.encode(LAST)
        encoder.finish()

    per_chunk = best_of(stream, max(1, n // CHUNKS)) / (CHUNKS + 3)
    return per_request * 1e6, per_chunk * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="requests per round (default 20000)")
    parser.add_argument("--check", action="store_true", help="exit 4 when a target is missed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteResponses(Path(tmp) / "bench.db")
        codecs = [OpenAIChatCodec(), AnthropicMessagesCodec(), ResponsesCodec(store)]
        print(f"{'codec':<22}{'µs/request':>12}{'µs/chunk':>12}   targets: ≤{REQUEST_TARGET_US:g} / ≤{CHUNK_TARGET_US:g}")
        missed = False
        for codec in codecs:
            per_request, per_chunk = measure(codec, args.n)
            ok = per_request <= REQUEST_TARGET_US and per_chunk <= CHUNK_TARGET_US
            missed = missed or (not ok and codec.name != "openai.chat")
            print(f"{codec.name:<22}{per_request:>12.2f}{per_chunk:>12.2f}   {'ok' if ok else 'MISSED'}")
        store.close()
    return 4 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
