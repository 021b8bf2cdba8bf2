"""Cohere v2 chat adapter: translation, answers and typed stream events over a socket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from interlock.core.errors import UpstreamError
from interlock.vendors.cohere.chat import CohereAdapter, encode_request
from interlock.vendors.translate_common import Drops
from interlock.vendors.transport import HttpTransport
from tests.mock_vendors.canonical import collect, reassemble, vendor_config
from tests.mock_vendors.server import ScriptedVendor, split_every

FIXTURES = Path(__file__).parent / "mock_vendors" / "fixtures"
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def adapter(vendor: ScriptedVendor, http: HttpTransport) -> CohereAdapter:
    return CohereAdapter(vendor_config("cohere", vendor.url, {"COHERE_API_KEY": "co-test"}), http)


def test_translation() -> None:
    request: dict[str, Any] = {"model": "m", "messages": [
        {"role": "system", "content": "A"}, {"role": "developer", "content": "B"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "reasoning_content": "plan",
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"}],
        "tools": [TOOL], "tool_choice": "required", "top_p": 0.5, "top_k": 9, "stop": "X", "seed": 2, "n": 1,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
        "user": "u"}
    drops = Drops(request, "Cohere")
    body = encode_request(request, "command-a-03-2025", drops, stream=True)
    assert body["messages"] == [
        {"role": "system", "content": "A\n\nB"}, {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_plan": "plan",
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]
    assert body["tool_choice"] == "REQUIRED" and body["p"] == 0.5 and body["k"] == 9 and body["seed"] == 2
    assert body["stop_sequences"] == ["X"] and body["stream"] is True
    assert body["response_format"] == {"type": "json_object", "json_schema": {"type": "object"}}
    assert drops.dropped == ("user",)


async def test_complete(vendor: ScriptedVendor, http: HttpTransport) -> None:
    vendor.reply(200, {"id": "c7a5", "finish_reason": "COMPLETE",
                       "message": {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
                       "usage": {"billed_units": {"input_tokens": 5, "output_tokens": 2},
                                 "tokens": {"input_tokens": 71, "output_tokens": 2}}})
    out = await adapter(vendor, http).complete({"model": "m", "messages": [{"role": "user", "content": "x"}]},
                                               "command-a-03-2025")
    assert vendor.last.path == "/v2/chat" and vendor.last.headers["authorization"] == "Bearer co-test"
    assert out.data["choices"][0]["message"]["content"] == "Hello!" and out.data["choices"][0]["finish_reason"] == "stop"
    assert out.data["usage"]["prompt_tokens"] == 5 and out.data["usage"]["completion_tokens"] == 2


@pytest.mark.parametrize("size", [9, 100_000])
async def test_stream_tool_calls(vendor: ScriptedVendor, http: HttpTransport, size: int) -> None:
    vendor.reply(200, chunks=split_every((FIXTURES / "cohere_stream_tools.sse").read_bytes(), size))
    source = await adapter(vendor, http).stream({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "c")
    out = reassemble(await collect(source))
    calls = out["message"]["tool_calls"]
    assert [orjson.loads(c["function"]["arguments"]) for c in calls] == [{"location": "Toronto"}, {"location": "Oslo"}]
    assert [c["id"] for c in calls] == ["get_weather_nsz5zm3w56q3", "get_weather_8hq3m4tb5d2c"]
    assert out["message"]["reasoning_content"] == "I will look up the weather in both cities."
    assert out["finish_reason"] == "tool_calls" and out["usage"]["prompt_tokens"] == 37 and not source.truncated


async def test_truncated_and_errors(vendor: ScriptedVendor, http: HttpTransport) -> None:
    data = (FIXTURES / "cohere_stream_tools.sse").read_bytes().split(b"event: message-end")[0]
    vendor.reply(200, chunks=[data])
    source = await adapter(vendor, http).stream({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "c")
    await collect(source)
    assert source.truncated
    vendor.reply(401, {"message": "invalid api token"})
    with pytest.raises(UpstreamError) as info:
        await adapter(vendor, http).complete({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "c")
    assert info.value.code == "upstream_auth_error"
