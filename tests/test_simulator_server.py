"""The standalone simulator over real loopback sockets: aiohttp and the official SDKs as clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import jsonschema
import openai
import orjson
import pytest

from interlock.core.vendor import Timeouts
from interlock.simulator import SimulatorSettings, SimulatorTransport, server
from interlock.simulator.engine import Engine

MODEL = "openai/gpt-4.1-mini"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Say something about queues"}], "max_tokens": 40}
CLOCK = 1_700_000_000.0


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    engine = Engine(SimulatorSettings(time_scale=0, allow_fault_headers=True), clock=lambda: CLOCK)
    runner, port = await server.start(engine, "127.0.0.1", 0, time_scale=0)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def fault(spec: str) -> dict[str, str]:
    return {"x-interlock-simulator-fault": spec}


async def post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session, session.post(
        url, data=orjson.dumps(body), headers=headers or {}, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as response:
        return response.status, dict(response.headers), await response.read()


async def test_bytes_over_http_equal_the_in_process_transport(base_url: str) -> None:
    transport = SimulatorTransport(SimulatorSettings(time_scale=0), clock=lambda: CLOCK)
    for body in (CHAT, {**CHAT, "stream": True, "stream_options": {"include_usage": True}}):
        status, headers, data = await post(f"{base_url}/v1/chat/completions", body)
        local = await transport.request("POST", "http://simulator.internal/v1/chat/completions", {}, orjson.dumps(body), Timeouts())
        assert status == local.status == 200
        assert data == await local.read()
        assert headers["Content-Type"] == local.headers["content-type"]


async def test_refuse_is_a_connection_reset_with_no_response(base_url: str) -> None:
    with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        await post(f"{base_url}/v1/chat/completions", CHAT, fault("refuse"))


async def test_reset_after_headers(base_url: str) -> None:
    with pytest.raises(aiohttp.ClientPayloadError):
        await post(f"{base_url}/v1/chat/completions", {**CHAT, "stream": True}, fault("reset"))


async def test_hang_until_the_client_times_out(base_url: str) -> None:
    with pytest.raises(TimeoutError):
        await post(f"{base_url}/v1/chat/completions", CHAT, fault("hang"), timeout=0.5)


async def test_stop_after_drops_the_connection(base_url: str) -> None:
    received = b""
    async with aiohttp.ClientSession() as session, session.post(
        f"{base_url}/v1/chat/completions", data=orjson.dumps({**CHAT, "stream": True}), headers=fault("stop_after=2")
    ) as response:
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            async for chunk in response.content.iter_any():
                received += chunk
    assert received.count(b"data: ") == 2 and b"[DONE]" not in received


async def test_malformed_bodies_over_http(base_url: str) -> None:
    status, _, data = await post(f"{base_url}/v1/chat/completions", CHAT, fault("malformed_json"))
    assert status == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(data)
    status, _, data = await post(f"{base_url}/v1/chat/completions", {**CHAT, "stream": True}, fault("malformed_sse"))
    assert status == 200 and sum(e.count(b"data: ") > 1 for e in data.split(b"\n\n")) == 1


async def test_error_status_and_retry_after_over_http(base_url: str) -> None:
    status, headers, data = await post(f"{base_url}/v1/chat/completions", CHAT, fault("error=429;retry_after=3"))
    assert status == 429 and headers["Retry-After"] == "3"
    assert orjson.loads(data)["error"]["type"] == "requests"


async def test_format_restriction() -> None:
    engine = Engine(SimulatorSettings(time_scale=0))
    runner, port = await server.start(engine, "127.0.0.1", 0, formats=("anthropic",), time_scale=0)
    try:
        status, _, _ = await post(f"http://127.0.0.1:{port}/v1/chat/completions", CHAT)
        assert status == 404
        body = {"model": "anthropic/claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
        status, _, data = await post(f"http://127.0.0.1:{port}/v1/messages", body)
        assert status == 200 and orjson.loads(data)["type"] == "message"
    finally:
        await runner.cleanup()


async def test_openai_sdk_plain_stream_tools_and_errors(base_url: str) -> None:
    client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="sk-sim", max_retries=0)
    try:
        done = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hello"}], max_tokens=30)
        assert done.choices[0].message.content and done.usage is not None and done.usage.completion_tokens > 0
        stream = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hello"}], max_tokens=30, stream=True,
            stream_options={"include_usage": True},
        )
        text, usage = "", None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            usage = chunk.usage or usage
        assert text == done.choices[0].message.content and usage is not None and usage.total_tokens == done.usage.total_tokens
        schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": False}
        tooled = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "weather?"}],
            tools=[{"type": "function", "function": {"name": "weather", "parameters": schema, "strict": True}}],
            tool_choice="required",
        )
        calls = tooled.choices[0].message.tool_calls or []
        assert calls and all(jsonschema.Draft202012Validator(schema).is_valid(orjson.loads(c.function.arguments)) for c in calls)  # type: ignore[union-attr]
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "x"}], extra_headers=fault("error=429")
            )
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "x"}], extra_headers=fault("error=503")
            )
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="openai/unknown-model", messages=[{"role": "user", "content": "x"}])
        with pytest.raises(openai.APIError):
            broken = await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True, extra_headers=fault("error_event=500")
            )
            async for _ in broken:
                pass
    finally:
        await client.close()


async def test_anthropic_sdk_plain_stream_and_errors(base_url: str) -> None:
    client = anthropic.AsyncAnthropic(base_url=base_url, api_key="sk-ant-sim", max_retries=0)
    model = "anthropic/claude-sonnet-4-5"
    try:
        message = await client.messages.create(model=model, max_tokens=50, messages=[{"role": "user", "content": "hello"}])
        assert message.content[0].type == "text" and message.usage.output_tokens > 0
        async with client.messages.stream(
            model=model, max_tokens=3000, messages=[{"role": "user", "content": "hello"}],
            thinking={"type": "enabled", "budget_tokens": 1024},
        ) as stream:
            final = await stream.get_final_message()
        assert [b.type for b in final.content] == ["thinking", "text"]
        assert final.content[0].signature  # type: ignore[union-attr]
        with pytest.raises(anthropic.InternalServerError) as info:
            await client.messages.create(
                model=model, max_tokens=10, messages=[{"role": "user", "content": "x"}], extra_headers=fault("error=529")
            )
        assert info.value.status_code == 529
        with pytest.raises(anthropic.NotFoundError):
            await client.messages.create(model="anthropic/nope", max_tokens=10, messages=[{"role": "user", "content": "x"}])
        with pytest.raises(anthropic.APIStatusError):
            async with client.messages.stream(
                model=model, max_tokens=100, messages=[{"role": "user", "content": "x"}], extra_headers=fault("error_event")
            ) as broken:
                await broken.get_final_message()
    finally:
        await client.close()


async def test_gemini_over_http(base_url: str) -> None:
    body = {"contents": [{"parts": [{"text": "hello"}]}], "generationConfig": {"maxOutputTokens": 30}}
    status, headers, data = await post(f"{base_url}/v1beta/models/google/gemini-2.0-flash:streamGenerateContent?alt=sse", body)
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    chunks = [orjson.loads(e.removeprefix(b"data: ")) for e in data.split(b"\r\n\r\n") if e]
    assert "usageMetadata" in chunks[-1]
