"""End to end: the official OpenAI SDK → a real gateway process → a mock vendor on a real socket."""

from __future__ import annotations

import json

import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayProcess
from tests.mock_openai import MockVendor

pytestmark = pytest.mark.slow


@pytest.fixture
def client(gateway: GatewayProcess) -> openai.OpenAI:
    return gateway.openai_client()


@pytest.fixture
def aclient(gateway: GatewayProcess) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0, timeout=20)


def test_sync_completion_and_headers(client: openai.OpenAI, mock_vendor: MockVendor) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="mock/ok", messages=[{"role": "user", "content": "hi"}])
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from the mock."
    assert completion.usage is not None and completion.usage.total_tokens == 17
    assert raw.headers["x-interlock-vendor"] == "mock"
    assert raw.headers["x-interlock-model"] == "mock/ok"
    assert raw.headers["x-interlock-request-id"].startswith("req_")
    seen = mock_vendor.last("ok")
    assert seen["headers"]["Authorization"] == "Bearer sk-mock-upstream-key"
    assert MASTER_KEY not in json.dumps(seen["headers"])


async def test_async_completion(aclient: openai.AsyncOpenAI) -> None:
    completion = await aclient.chat.completions.create(model="mock/ok", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].finish_reason == "stop"


def test_streaming_relays_chunks_and_usage(client: openai.OpenAI, mock_vendor: MockVendor) -> None:
    stream = client.chat.completions.create(model="mock/ok", messages=[{"role": "user", "content": "hi"}],
                                            stream=True, stream_options={"include_usage": True})
    text, usage = "", None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage is not None:
            usage = chunk.usage
    assert text == "Hello from the mock."
    assert usage is not None and usage.completion_tokens == 5


def test_stream_without_include_usage_hides_the_usage_chunk(client: openai.OpenAI, mock_vendor: MockVendor) -> None:
    chunks = list(client.chat.completions.create(model="mock/ok", messages=[{"role": "user", "content": "x"}],
                                                 stream=True))
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)
    # interlock always asks the vendor for usage so it can bill exactly.
    assert mock_vendor.last("ok")["body"]["stream_options"] == {"include_usage": True}


async def test_async_streaming(aclient: openai.AsyncOpenAI) -> None:
    stream = await aclient.chat.completions.create(model="mock/ok", messages=[{"role": "user", "content": "hi"}],
                                                   stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Hello from the mock."


def test_every_request_field_passes_through(client: openai.OpenAI, mock_vendor: MockVendor) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                               "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                              "required": ["city"]}}}]
    schema = {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": {
        "type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": False}}}
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "what is in this image?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}]}]
    client.chat.completions.create(
        model="mock/echo", messages=messages, tools=tools, tool_choice="auto",  # type: ignore[arg-type]
        response_format=schema, parallel_tool_calls=False, logprobs=True, top_logprobs=2, seed=7,  # type: ignore[arg-type]
        user="u-1", metadata={"team": "a"}, temperature=0.3, max_completion_tokens=50, store=False,
        extra_body={"vendor_specific": {"x": 1}})
    body = mock_vendor.last("echo")["body"]
    assert body["tools"] == tools
    assert body["tool_choice"] == "auto"
    assert body["response_format"] == schema
    assert body["messages"] == messages
    assert body["parallel_tool_calls"] is False
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    assert body["seed"] == 7 and body["user"] == "u-1" and body["metadata"] == {"team": "a"}
    assert body["max_completion_tokens"] == 50
    assert body["vendor_specific"] == {"x": 1}


def test_tool_call_passthrough(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="mock/tools", messages=[{"role": "user", "content": "weather?"}],
                                                tools=[{"type": "function", "function": {"name": "get_weather"}}])
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]


def test_streamed_tool_call_arguments_arrive_whole(client: openai.OpenAI) -> None:
    args = ""
    for chunk in client.chat.completions.create(model="mock/tools", messages=[{"role": "user", "content": "w"}],
                                                tools=[{"type": "function", "function": {"name": "get_weather"}}],
                                                stream=True):
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            args += call.function.arguments or "" if call.function else ""
    assert json.loads(args) == {"city": "Paris"}


def test_structured_output_passthrough(client: openai.OpenAI, mock_vendor: MockVendor) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    client.chat.completions.create(model="mock/echo", messages=[{"role": "user", "content": "j"}],
                                   response_format=fmt)  # type: ignore[arg-type]
    assert mock_vendor.last("echo")["body"]["response_format"] == fmt


def test_alias_resolves(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="fast", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-interlock-model"] == "mock/ok"


def test_simulator_answers_catalog_models(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="openai/gpt-4.1-mini", messages=[{"role": "user", "content": "Say hello"}])
    completion = raw.parse()
    assert raw.headers["x-interlock-vendor"] == "simulator"
    assert raw.headers["x-interlock-model"] == "openai/gpt-4.1-mini"
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    # Priced as OpenAI would price it.
    assert float(raw.headers["x-interlock-cost-usd"]) > 0


def test_models_list_parses_with_the_sdk(client: openai.OpenAI) -> None:
    models = client.models.list()
    ids = {m.id for m in models}
    assert "openai/gpt-4.1-mini" in ids
