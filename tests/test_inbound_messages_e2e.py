"""End to end: the official ``anthropic`` SDK → a real gateway → OpenAI-style vendors (mock and simulator).

Besides the session gateway, a second gateway fronts :class:`ThinkingVendor`,
an OpenAI-dialect mock that answers with thinking (``reasoning_content`` plus
signed ``thinking_blocks``) and cache usage, the way a translating adapter
hands them to the pipeline.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from aiohttp import web

from tests.anthropic_required import check_count, check_error, check_event, check_message
from tests.conftest import MASTER_KEY, GatewayProcess, start_gateway, start_simulator
from tests.mock_openai import MockVendor

pytestmark = pytest.mark.slow

THOUGHT = "Two plus two is four."
SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgwnWnk7ZyxBvRiU2rQiMKBdCl0="
THINK_USAGE = {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160,
               "prompt_tokens_details": {"cached_tokens": 80, "cache_write_tokens": 30},
               "completion_tokens_details": {"reasoning_tokens": 25}}


class ThinkingVendor(MockVendor):
    """Answers every request with signed thinking, then text; records requests like the base mock."""

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body, "path": request.path_qs})
        base = {"id": "chatcmpl-think", "created": 1_700_000_000, "model": body.get("model")}
        if not body.get("stream"):
            message = {"role": "assistant", "content": "4", "reasoning_content": THOUGHT,
                       "thinking_blocks": [{"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE}]}
            return web.json_response({**base, "object": "chat.completion", "usage": THINK_USAGE,
                                      "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        deltas: list[tuple[dict[str, Any], str | None]] = [
            ({"role": "assistant", "reasoning_content": "Two plus two"}, None),
            ({"reasoning_content": " is four."}, None),
            ({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": SIGNATURE}]}, None),
            ({"content": "4"}, None),
            ({}, "stop"),
        ]
        for delta, finish in deltas:
            chunk = {**base, "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        final = {**base, "object": "chat.completion.chunk", "choices": [], "usage": THINK_USAGE}
        await resp.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
        await resp.write_eof()
        return resp


@pytest.fixture(scope="module")
def thinking_vendor() -> Iterator[ThinkingVendor]:
    vendor = ThinkingVendor().start()
    yield vendor
    vendor.stop()


@pytest.fixture(scope="module")
def thinking_gateway(thinking_vendor: ThinkingVendor, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[GatewayProcess]:
    config = f"""
vendors:
  think:
    type: openai
    base_url: {thinking_vendor.base_url}
    api_key: sk-think
"""
    gw = start_gateway(Path(tmp_path_factory.mktemp("thinking-gateway")), config)
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def anthropic_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """Anthropic in front of Anthropic: the gateway's Anthropic adapter → the simulator speaking Messages."""
    sim, port = start_simulator("anthropic")
    try:
        config = f"""
vendors:
  anthropic: {{base_url: "http://127.0.0.1:{port}", api_key: sk-ant-x}}
aliases:
  claude: anthropic/anthropic/claude-sonnet-4-5
simulator:
  enabled: false
"""
        gw = start_gateway(Path(tmp_path_factory.mktemp("anthropic-gateway")), config)
        yield gw
        gw.stop()
    finally:
        sim.terminate()
        sim.wait(10)


@pytest.fixture
def client(gateway: GatewayProcess) -> anthropic.Anthropic:
    return gateway.anthropic_client()


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def http(method: str, url: str, body: Any = None, key: str = MASTER_KEY) -> tuple[int, bytes]:
    """A raw call, for what the SDK would refuse to send."""
    status, data, _ = http_full(method, url, body, key)
    return status, data


def http_full(method: str, url: str, body: Any = None, key: str = MASTER_KEY) -> tuple[int, bytes, dict[str, str]]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={
        "x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, resp.read(), {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as err:
        return err.code, err.read(), {k.lower(): v for k, v in err.headers.items()}


def sse_events(body: bytes) -> list[dict[str, Any]]:
    """The payloads of an Anthropic SSE body, each checked against its ``event:`` name."""
    events = []
    for block in body.split(b"\n\n"):
        if not block.strip():
            continue
        name, _, data = block.partition(b"\ndata: ")
        payload = json.loads(data)
        assert name == b"event: " + payload["type"].encode()
        events.append(payload)
    return events


# -------------------------------------------------------------- happy paths


def test_sync_create_against_an_openai_vendor(client: anthropic.Anthropic, mock_vendor: MockVendor) -> None:
    raw = client.messages.with_raw_response.create(model="mock/ok", max_tokens=64, messages=user("hi"),
                                                   system="Be brief.", stop_sequences=["\n\n"],
                                                   metadata={"user_id": "u-7"}, extra_body={"temperature": 0.2})
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.id == "msg_" + raw.headers["x-interlock-request-id"].removeprefix("req_")
    assert [b.type for b in message.content] == ["text"] and message.content[0].text == "Hello from the mock."
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 5)
    sent = mock_vendor.last("ok")
    body = sent["body"]
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert (body["max_completion_tokens"], body["stop"], body["temperature"], body["user"]) == (64, ["\n\n"], 0.2,
                                                                                                 "u-7")
    assert MASTER_KEY not in json.dumps(sent["headers"])


async def test_async_create(gateway: GatewayProcess) -> None:
    aclient = anthropic.AsyncAnthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0, timeout=20)
    message = await aclient.messages.create(model="mock/ok", max_tokens=32, messages=user("hi"))
    assert message.content[0].type == "text" and message.stop_reason == "end_turn"


def test_stream_helper_assembles_text_and_usage(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="mock/ok", max_tokens=64, messages=user("hi")) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from the mock."
    assert final.content[0].type == "text" and final.content[0].text == text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 5 and final.usage.input_tokens == 12


async def test_async_raw_stream_events(gateway: GatewayProcess) -> None:
    aclient = anthropic.AsyncAnthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0, timeout=20)
    stream = await aclient.messages.create(model="mock/ok", max_tokens=64, messages=user("hi"), stream=True)
    kinds = [event.type async for event in stream]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 1


def test_tools_and_a_tool_result_round_trip(client: anthropic.Anthropic, mock_vendor: MockVendor) -> None:
    tools: Any = [{"name": "get_weather", "description": "Weather for a city",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    first = client.messages.create(model="mock/tools", max_tokens=64, messages=user("Weather in Paris?"),
                                   tools=tools, tool_choice={"type": "tool", "name": "get_weather"})
    assert first.stop_reason == "tool_use"
    call = first.content[-1]
    assert call.type == "tool_use" and call.name == "get_weather" and call.input == {"city": "Paris"}
    sent = mock_vendor.last("tools")["body"]
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}

    history: Any = [*user("Weather in Paris?"), {"role": "assistant", "content": first.content},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                                  "content": "18 degrees"}]}]
    client.messages.create(model="mock/echo", max_tokens=64, messages=history, tools=tools)
    replayed = mock_vendor.last("echo")["body"]["messages"]
    assert replayed[1]["tool_calls"][0]["id"] == call.id
    assert json.loads(replayed[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert replayed[2] == {"role": "tool", "tool_call_id": call.id, "content": "18 degrees"}


def test_streamed_tool_use(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="mock/tools", max_tokens=64, messages=user("Weather?"), tools=[
            {"name": "get_weather", "input_schema": {"type": "object"}}]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use" and final.content[0].input == {"city": "Paris"}


def test_images_and_cache_control_reach_the_vendor(client: anthropic.Anthropic, mock_vendor: MockVendor) -> None:
    content: Any = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {"type": "text", "text": "Describe", "cache_control": {"type": "ephemeral"}},
    ]
    client.messages.create(model="mock/echo", max_tokens=64, messages=[{"role": "user", "content": content}])
    parts = mock_vendor.last("echo")["body"]["messages"][0]["content"]
    assert parts == [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                     {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                     {"type": "text", "text": "Describe", "cache_control": {"type": "ephemeral"}}]


def test_catalog_model_on_the_simulator_is_priced(client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.create(model="anthropic/claude-sonnet-4-5", max_tokens=200,
                                                   messages=user("Tell me about gateways."))
    message = raw.parse()
    assert message.content[0].type == "text" and message.content[0].text
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert float(raw.headers["x-interlock-cost-usd"]) > 0
    with client.messages.stream(model="anthropic/claude-sonnet-4-5", max_tokens=200,
                                messages=user("Tell me about gateways.")) as stream:
        final = stream.get_final_message()
    assert final.usage.output_tokens > 0 and final.stop_reason in ("end_turn", "max_tokens")


def test_count_tokens(client: anthropic.Anthropic) -> None:
    short = client.messages.count_tokens(model="anthropic/claude-sonnet-4-5", messages=user("hello"))
    long = client.messages.count_tokens(model="anthropic/claude-sonnet-4-5", messages=user("hello " * 200),
                                        system="You are a careful assistant.")
    assert 0 < short.input_tokens < long.input_tokens


# -------------------------------------------------------------- thinking


def test_thinking_with_signature_both_ways(thinking_gateway: GatewayProcess, thinking_vendor: ThinkingVendor) -> None:
    client = thinking_gateway.anthropic_client()
    message = client.messages.create(model="think/r1", max_tokens=4096, messages=user("2+2?"),
                                     thinking={"type": "enabled", "budget_tokens": 2048})
    assert thinking_vendor.last("r1")["body"]["reasoning_effort"] == "low"
    thinking, text = message.content
    assert thinking.type == "thinking" and thinking.thinking == THOUGHT and thinking.signature == SIGNATURE
    assert text.type == "text" and text.text == "4"
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens,
            usage.output_tokens) == (10, 80, 30, 40)

    client.messages.create(model="think/r1", max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048},
                           messages=[*user("2+2?"), {"role": "assistant", "content": message.content},
                                     *user("and 3+3?")])
    replayed = thinking_vendor.last("r1")["body"]["messages"][1]
    assert replayed["thinking_blocks"] == [{"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE}]
    assert replayed["content"] == "4"


def test_streamed_thinking(thinking_gateway: GatewayProcess) -> None:
    client = thinking_gateway.anthropic_client()
    with client.messages.stream(model="think/r1", max_tokens=4096, messages=user("2+2?"),
                                thinking={"type": "enabled", "budget_tokens": 2048}) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert "signature" in kinds and "thinking" in kinds
    thinking, text = final.content
    assert thinking.type == "thinking" and thinking.thinking == THOUGHT and thinking.signature == SIGNATURE
    assert text.type == "text" and text.text == "4"
    assert final.usage.cache_read_input_tokens == 80 and final.usage.input_tokens == 10


def test_anthropic_behind_anthropic_keeps_thinking_signatures(anthropic_gateway: GatewayProcess) -> None:
    client = anthropic_gateway.anthropic_client()
    thinking: Any = {"type": "enabled", "budget_tokens": 2048}
    with client.messages.stream(model="claude", max_tokens=4096, thinking=thinking,
                                messages=user("Plan a trip to Paris.")) as stream:
        first = stream.get_final_message()
    block = first.content[0]
    assert block.type == "thinking" and block.thinking and len(block.signature) > 20
    assert first.content[-1].type == "text" and first.stop_reason == "end_turn"
    # Replaying the signed turn must be accepted as-is (the canonical request carries the blocks verbatim,
    # which the unit tests check field by field); the vendor then answers the longer conversation.
    second = client.messages.create(model="claude", max_tokens=4096, thinking=thinking, messages=[
        *user("Plan a trip to Paris."), {"role": "assistant", "content": first.content}, *user("And Rome?")])
    assert second.content[0].type == "thinking" and second.usage.input_tokens > first.usage.input_tokens


# -------------------------------------------------------------- errors, in Anthropic's shape


def _error_body(exc: anthropic.APIStatusError) -> Any:
    return exc.body


def test_wrong_key_is_an_authentication_error(gateway: GatewayProcess) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as info:
        client.messages.create(model="mock/ok", max_tokens=8, messages=user("hi"))
    assert _error_body(info.value)["type"] == "error"
    assert _error_body(info.value)["error"]["type"] == "authentication_error"
    with pytest.raises(anthropic.AuthenticationError):
        client.messages.count_tokens(model="mock/ok", messages=user("hi"))


def test_unknown_model_is_not_found(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.create(model="nowhere/model", max_tokens=8, messages=user("hi"))
    assert _error_body(info.value)["error"]["type"] == "not_found_error"


def test_invalid_request_names_the_field(gateway: GatewayProcess) -> None:
    status, body = http("POST", f"{gateway.url}/v1/messages", {"model": "mock/ok", "messages": user("hi")})
    assert status == 400
    error = json.loads(body)
    assert error["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}
    check_error(error)


def test_rate_limit_and_vendor_failure(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model="mock/status-429", max_tokens=8, messages=user("hi"))
    assert limited.value.response.headers["retry-after"] == "7"
    assert _error_body(limited.value)["error"]["type"] == "rate_limit_error"
    with pytest.raises(anthropic.InternalServerError) as failed:
        client.messages.create(model="mock/status-500", max_tokens=8, messages=user("hi"))
    assert failed.value.status_code == 502 and _error_body(failed.value)["error"]["type"] == "api_error"


def test_oversized_body_and_wrong_method(gateway: GatewayProcess) -> None:
    status, body = http("POST", f"{gateway.url}/v1/messages",
                        {"model": "mock/ok", "max_tokens": 8, "messages": user("x" * 300_000)})
    # The SDKs' ErrorType has no request_too_large: Anthropic's declared type for it is an invalid request.
    assert status == 413 and json.loads(body)["error"]["type"] == "invalid_request_error"
    check_error(json.loads(body))
    status, body = http("GET", f"{gateway.url}/v1/messages")
    assert status == 405 and json.loads(body)["type"] == "error"


def test_mid_stream_failure_is_an_error_event(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as info, client.messages.stream(
            model="mock/stall", max_tokens=64, messages=user("hi")) as stream:
        for _ in stream:
            pass
    # The vendor went silent past the idle timeout: Anthropic's type for a gateway timeout.
    assert _error_body(info.value)["error"]["type"] == "timeout_error"
    assert "idle" in _error_body(info.value)["error"]["message"]


def test_truncated_stream_is_an_error_not_success(gateway: GatewayProcess) -> None:
    status, body = http("POST", f"{gateway.url}/v1/messages",
                        {"model": "mock/truncate", "max_tokens": 8, "messages": user("hi"), "stream": True})
    assert status == 200
    assert b"event: error" in body and b"message_stop" not in body


async def test_concurrent_streams_stay_separate(gateway: GatewayProcess) -> None:
    aclient = anthropic.AsyncAnthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0, timeout=20)

    async def one() -> str:
        async with aclient.messages.stream(model="mock/ok", max_tokens=32, messages=user("hi")) as stream:
            return "".join([text async for text in stream.text_stream])

    assert await asyncio.gather(*(one() for _ in range(8))) == ["Hello from the mock."] * 8


# -------------------------------------------------------------- wire conformance (TypeScript SDK types)


def test_answers_carry_every_always_present_field(client: anthropic.Anthropic, gateway: GatewayProcess) -> None:
    raw = client.messages.with_raw_response.create(model="mock/ok", max_tokens=16, messages=user("hi"))
    body = raw.http_response.json()
    check_message(body)
    assert body["container"] is None and body["stop_details"] is None
    assert body["content"][0]["citations"] is None
    assert raw.parse().content[0].type == "text"  # and the SDK parses it
    status, data = http("POST", f"{gateway.url}/v1/messages",
                        {"model": "mock/ok", "max_tokens": 16, "messages": user("hi"), "stream": True})
    assert status == 200
    events = sse_events(data)
    for payload in events:
        check_event(payload)
    delta = next(e for e in events if e["type"] == "message_delta")
    assert delta["delta"]["container"] is None and delta["usage"]["server_tool_use"] is None


def test_tool_use_blocks_name_their_caller(client: anthropic.Anthropic, gateway: GatewayProcess) -> None:
    tool: Any = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
    request: dict[str, Any] = {"model": "anthropic/claude-sonnet-4-5", "max_tokens": 200, "tools": [tool],
                               "tool_choice": {"type": "tool", "name": "get_weather"}, "messages": user("Paris?")}
    status, data = http("POST", f"{gateway.url}/v1/messages", request)
    assert status == 200
    message = json.loads(data)
    check_message(message)
    assert [b["caller"] for b in message["content"] if b["type"] == "tool_use"] == [{"type": "direct"}]
    status, data = http("POST", f"{gateway.url}/v1/messages", {**request, "stream": True})
    starts = [e["content_block"] for e in sse_events(data) if e["type"] == "content_block_start"]
    for payload in sse_events(data):
        check_event(payload)
    assert {"type": "direct"} in [b.get("caller") for b in starts]


def test_anthropic_vendor_answers_conform_end_to_end(anthropic_gateway: GatewayProcess) -> None:
    """The adapter reads the simulator's full Anthropic shapes; the gateway's answer has them too."""
    request = {"model": "claude", "max_tokens": 64, "messages": user("Plan a trip to Paris.")}
    status, data = http("POST", f"{anthropic_gateway.url}/v1/messages", request)
    assert status == 200
    check_message(json.loads(data))
    status, data = http("POST", f"{anthropic_gateway.url}/v1/messages", {**request, "stream": True})
    events = sse_events(data)
    for payload in events:
        check_event(payload)
    assert events[-1]["type"] == "message_stop"


@pytest.mark.parametrize(("key", "body", "status", "etype"), [
    ("sk-wrong", {"model": "mock/ok", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}, 401,
     "authentication_error"),
    (MASTER_KEY, {"model": "nowhere/model", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}, 404,
     "not_found_error"),
    (MASTER_KEY, {"model": "mock/ok", "messages": [{"role": "user", "content": "hi"}]}, 400, "invalid_request_error"),
    (MASTER_KEY, {"model": "mock/status-429", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}, 429,
     "rate_limit_error"),
    (MASTER_KEY, {"model": "mock/status-500", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}, 502,
     "api_error"),
])
def test_error_bodies_carry_the_request_id(gateway: GatewayProcess, key: str, body: dict[str, Any], status: int,
                                           etype: str) -> None:
    got, data, headers = http_full("POST", f"{gateway.url}/v1/messages", body, key)
    error = json.loads(data)
    assert got == status and error["error"]["type"] == etype
    check_error(error)
    assert error["request_id"] == headers["x-interlock-request-id"] and error["request_id"].startswith("req_")


def test_stream_error_event_carries_the_request_id(gateway: GatewayProcess) -> None:
    status, data, headers = http_full("POST", f"{gateway.url}/v1/messages", {
        "model": "mock/truncate", "max_tokens": 8, "messages": user("hi"), "stream": True})
    assert status == 200
    error = sse_events(data)[-1]
    check_event(error)
    assert error["type"] == "error" and error["request_id"] == headers["x-interlock-request-id"]


def test_count_tokens_answers_exactly_and_errors_in_shape(gateway: GatewayProcess) -> None:
    url = f"{gateway.url}/v1/messages/count_tokens"
    status, data, headers = http_full("POST", url, {"model": "anthropic/claude-sonnet-4-5", "messages": user("hi")})
    assert status == 200 and json.loads(data)["input_tokens"] > 0
    check_count(json.loads(data))
    assert headers["x-interlock-request-id"].startswith("req_")
    for key, body, code, etype in [
            ("sk-wrong", {"model": "mock/ok", "messages": user("hi")}, 401, "authentication_error"),
            (MASTER_KEY, {"model": "mock/ok"}, 400, "invalid_request_error"),
            (MASTER_KEY, {"model": "nowhere/model", "messages": user("hi")}, 404, "not_found_error")]:
        status, data, headers = http_full("POST", url, body, key)
        error = json.loads(data)
        assert status == code and error["error"]["type"] == etype, error
        check_error(error)
        assert error["request_id"] == headers["x-interlock-request-id"]
