"""The simulator's Anthropic Messages format through the in-process transport."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import orjson

from interlock.catalog import count_tokens, load_catalog
from interlock.core.vendor import Timeouts
from interlock.simulator import SimulatorSettings, SimulatorTransport
from tests.anthropic_required import check_error, check_event, check_message

URL = "http://simulator.internal/v1/messages"
MODEL = "anthropic/claude-sonnet-4-5"
EVENT = re.compile(rb"event: ([a-z_]+)\ndata: (\{.*?\})\n\n", re.S)
TOOL = {
    "name": "lookup_order",
    "description": "Find an order",
    "input_schema": {
        "type": "object",
        "properties": {"order_id": {"type": "string", "pattern": "^ORD-[0-9]{6}$"}, "include_items": {"type": "boolean"}},
        "required": ["order_id"],
    },
}


def transport() -> SimulatorTransport:
    return SimulatorTransport(SimulatorSettings(time_scale=0), clock=lambda: 1_700_000_000.0)


def body(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 300, "messages": [{"role": "user", "content": "Summarise our incident process"}], **extra}


async def call(t: SimulatorTransport, payload: dict[str, Any]) -> tuple[int, bytes]:
    response = await t.request("POST", URL, {"anthropic-version": "2023-06-01"}, orjson.dumps(payload), Timeouts())
    return response.status, b"".join([c async for c in response.iter_bytes()])


def parse(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    found = EVENT.findall(data)
    assert b"".join(b"event: " + n + b"\ndata: " + d + b"\n\n" for n, d in found) == data
    out = [(n.decode(), orjson.loads(d)) for n, d in found]
    assert all(name == payload["type"] for name, payload in out)
    for _, payload in out:
        check_event(payload)  # the TypeScript SDK's always-present fields, as the API sends them
    return out


async def test_message_shape_and_usage() -> None:
    status, data = await call(transport(), body())
    assert status == 200
    msg = orjson.loads(data)
    check_message(msg)
    assert msg["type"] == "message" and msg["role"] == "assistant" and msg["id"].startswith("msg_")
    assert msg["stop_reason"] in ("end_turn", "max_tokens") and msg["stop_sequence"] is None
    (block,) = msg["content"]
    assert block["type"] == "text"
    assert msg["usage"]["output_tokens"] == count_tokens(block["text"], load_catalog().get(MODEL))
    assert msg["usage"]["cache_read_input_tokens"] == 0 and msg["usage"]["input_tokens"] > 0


async def test_stream_event_sequence_is_exact() -> None:
    t = transport()
    plain = orjson.loads((await call(t, body()))[1])
    status, data = await call(t, body(stream=True))
    assert status == 200
    events = parse(data)
    names = [n for n, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    start = events[0][1]["message"]
    assert start["content"] == [] and start["usage"]["input_tokens"] == plain["usage"]["input_tokens"]
    text = "".join(p["delta"]["text"] for n, p in events if n == "content_block_delta")
    assert text == plain["content"][0]["text"]
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == plain["stop_reason"]
    assert delta["usage"]["output_tokens"] == plain["usage"]["output_tokens"]


async def test_thinking_blocks_with_signature() -> None:
    payload = body(max_tokens=4000, thinking={"type": "enabled", "budget_tokens": 2048}, stream=True)
    events = parse((await call(transport(), payload))[1])
    starts = [p["content_block"]["type"] for n, p in events if n == "content_block_start"]
    assert starts == ["thinking", "text"]
    kinds = [p["delta"]["type"] for n, p in events if n == "content_block_delta" and p["index"] == 0]
    assert kinds[-1] == "signature_delta" and set(kinds[:-1]) == {"thinking_delta"}
    thinking = "".join(p["delta"].get("thinking", "") for n, p in events if n == "content_block_delta" and p["index"] == 0)
    plain = orjson.loads((await call(transport(), {**payload, "stream": False}))[1])
    assert plain["content"][0]["type"] == "thinking" and plain["content"][0]["thinking"] == thinking
    assert len(plain["content"][0]["signature"]) > 20
    no_thinking = orjson.loads((await call(transport(), body()))[1])
    assert [b["type"] for b in no_thinking["content"]] == ["text"]


async def test_tool_use_streams_input_json_that_validates() -> None:
    payload = body(tools=[TOOL], tool_choice={"type": "tool", "name": "lookup_order"}, stream=True)
    events = parse((await call(transport(), payload))[1])
    start = next(p for n, p in events if n == "content_block_start" and p["content_block"]["type"] == "tool_use")
    assert start["content_block"]["input"] == {} and start["content_block"]["id"].startswith("toolu_")
    partial = "".join(p["delta"]["partial_json"] for n, p in events if n == "content_block_delta")
    jsonschema.validate(orjson.loads(partial), TOOL["input_schema"])
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


async def test_tool_choice_any_none_and_after_tool_result() -> None:
    t = transport()
    for seed in range(10):
        prompt = f"Where is order {seed}?"
        anyc = orjson.loads((await call(t, {**body(tools=[TOOL], tool_choice={"type": "any"}), "messages": [{"role": "user", "content": prompt}]}))[1])
        assert anyc["stop_reason"] == "tool_use"
        none = orjson.loads((await call(t, {**body(tools=[TOOL], tool_choice={"type": "none"}), "messages": [{"role": "user", "content": prompt}]}))[1])
        assert none["stop_reason"] != "tool_use"
    history = [
        {"role": "user", "content": "Where is my order?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup_order", "input": {"order_id": "ORD-000001"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "shipped"}]},
    ]
    after = orjson.loads((await call(t, {**body(tools=[TOOL]), "messages": history}))[1])
    assert after["stop_reason"] != "tool_use"


async def test_stop_sequences_report_the_match() -> None:
    msg = orjson.loads((await call(transport(), body(stop_sequences=["."])))[1])
    assert msg["stop_reason"] == "stop_sequence" and msg["stop_sequence"] == "."
    assert "." not in msg["content"][0]["text"]


async def test_caching_reports_reads_and_writes() -> None:
    t = transport()
    system = [{"type": "text", "text": "You are a support agent. " * 300, "cache_control": {"type": "ephemeral"}}]
    first = orjson.loads((await call(t, body(system=system)))[1])["usage"]
    second = orjson.loads((await call(t, body(system=system)))[1])["usage"]
    assert first["cache_creation_input_tokens"] > 1024 and first["cache_read_input_tokens"] == 0
    assert second["cache_read_input_tokens"] >= 1024 and second["cache_creation_input_tokens"] == 0
    total_first = first["input_tokens"] + first["cache_creation_input_tokens"]
    total_second = second["input_tokens"] + second["cache_read_input_tokens"]
    assert total_first == total_second


async def test_errors_in_anthropic_shape() -> None:
    t = transport()
    status, data = await call(t, body() | {"model": "anthropic/claude-nope"})
    assert status == 404
    error = orjson.loads(data)
    check_error(error)
    assert error["error"] == {"type": "not_found_error", "message": "model: anthropic/claude-nope"}
    assert error["request_id"].startswith("req_011")
    status, data = await call(t, {"model": MODEL, "messages": [{"role": "user", "content": "x"}]})
    assert status == 400 and orjson.loads(data)["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}
    status, data = await call(t, body(thinking={"type": "enabled", "budget_tokens": 5000}))
    assert status == 400 and "budget_tokens" in orjson.loads(data)["error"]["message"]


async def test_images_and_documents_count() -> None:
    t = transport()
    base = orjson.loads((await call(t, body()))[1])["usage"]["input_tokens"]
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    doc = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQKL1R5cGUgL1BhZ2UK"}}
    content = [{"type": "text", "text": "Summarise our incident process"}, image, doc]
    usage = orjson.loads((await call(t, {**body(), "messages": [{"role": "user", "content": content}]}))[1])["usage"]
    assert usage["input_tokens"] > base + 1500
